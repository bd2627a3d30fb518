//! The act step: carry out each decision exactly once per decision epoch (idempotency record before the call),
//! under the function's lease (every ledger write is fenced), honouring dry-run, with an audit record per
//! action, per hold and per dry-run would-act when it begins or changes (`notes`), and an outcome event when an
//! action fails.

use crate::decide::{Action, Decision, Kind, Memory, Outcome};
use autopilot_shared::clients::AwsClients;
use autopilot_shared::cpu::{self, Step};
use autopilot_shared::effect::{Bookkeeping, CallError, Effect, Performed, announce};
use autopilot_shared::ledger::LedgerError;
use autopilot_shared::ledger::audit::{AuditRecord, Outcome as AuditOutcome};
use autopilot_shared::ledger::idempotency::IdempotencyKey;
use autopilot_shared::ledger::state::{StateWrite, Versioned};
use autopilot_shared::notes::{Change, Note, RecordedFailure};
use autopilot_shared::report::ActionResult;

use futures::Stream;
use serde::Serialize;
use std::borrow::Borrow;
use std::collections::BTreeMap;

pub use autopilot_shared::effect::ActContext;

/// What became of one decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionReport {
    pub resource: String,
    pub name: String,
    pub outcome: Outcome,
    pub reason: String,
    pub result: ActionResult,
    pub error: Option<String>,
}

/// A failure that stops the whole act step (the ledger or the lease is gone): everything else is per item.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ActError(#[from] pub LedgerError);

/// The AWS call for an action.
async fn call(aws: &AwsClients, decision: &Decision, action: Action) -> Result<(), CallError> {
    let id = decision.resource.id().to_owned();
    let describe = |e: &dyn std::fmt::Debug| CallError::Failed(format!("{e:?}"));
    match (decision.kind, action) {
        (Kind::Pool, Action::SetDesired { to, .. }) => {
            let capacity = aws_sdk_workspaces::types::Capacity::builder()
                .desired_user_sessions(i32::try_from(to).unwrap_or(i32::MAX))
                .build()
                .map_err(|e| describe(&e))?;
            aws.workspaces
                .update_workspaces_pool()
                .pool_id(id)
                .capacity(capacity)
                .send()
                .await
                .map(drop)
                .map_err(|e| CallError::from_sdk(&e, &[]))
        }
        (Kind::Pool, Action::Start) => aws
            .workspaces
            .start_workspaces_pool()
            .pool_id(id)
            .send()
            .await
            .map(drop)
            .map_err(|e| CallError::from_sdk(&e, &[])),
        (Kind::Pool, Action::Stop) => aws
            .workspaces
            .stop_workspaces_pool()
            .pool_id(id)
            .send()
            .await
            .map(drop)
            .map_err(|e| CallError::from_sdk(&e, &[])),
        (Kind::SingleSessionFleet | Kind::MultiSessionFleet, Action::SetDesired { to, .. }) => {
            let value = i32::try_from(to).unwrap_or(i32::MAX);
            let capacity = if decision.kind == Kind::MultiSessionFleet {
                aws_sdk_appstream::types::ComputeCapacity::builder().desired_sessions(value).build()
            } else {
                aws_sdk_appstream::types::ComputeCapacity::builder().desired_instances(value).build()
            };
            aws.appstream
                .update_fleet()
                .name(id)
                .compute_capacity(capacity)
                .send()
                .await
                .map(drop)
                .map_err(|e| CallError::from_sdk(&e, &[]))
        }
        // Never decided (an elastic fleet is skipped), refused rather than guessed.
        (Kind::ElasticFleet, Action::SetDesired { .. }) => {
            Err(CallError::Failed("an elastic fleet has no desired capacity to set".into()))
        }
        (_, Action::Start) => {
            aws.appstream.start_fleet().name(id).send().await.map(drop).map_err(|e| CallError::from_sdk(&e, &[]))
        }
        (_, Action::Stop) => {
            aws.appstream.stop_fleet().name(id).send().await.map(drop).map_err(|e| CallError::from_sdk(&e, &[]))
        }
    }
}

fn action_name(kind: Kind, action: Action) -> &'static str {
    match (kind, action) {
        (Kind::Pool, Action::SetDesired { .. }) => "UpdateWorkspacesPool",
        (Kind::Pool, Action::Start) => "StartWorkspacesPool",
        (Kind::Pool, Action::Stop) => "StopWorkspacesPool",
        (_, Action::SetDesired { .. }) => "UpdateFleet",
        (_, Action::Start) => "StartFleet",
        (_, Action::Stop) => "StopFleet",
    }
}

/// Carries out the decisions. `stored` holds each resource's memory as read (with its version). Reports in
/// resource order: [`act_streamed`] over them.
pub async fn act(
    ctx: &ActContext<'_>,
    epoch: &str,
    decisions: &[Decision],
    stored: &BTreeMap<String, Versioned<Memory>>,
) -> Result<Vec<ActionReport>, ActError> {
    act_streamed(ctx, epoch, futures::stream::iter(decisions), stored).await
}

/// Carries out decisions as they arrive (a resource is acted on as soon as it is decided, while the others'
/// tags are still being read), and reports on every one in resource order (the order `observe` sorts in).
/// `stored` holds each resource's memory as read (with its version); `epoch` is the decision epoch (the tick's
/// schedule and time, or the event id): with the resource it keys each action's idempotency.
pub async fn act_streamed<D: Borrow<Decision>>(
    ctx: &ActContext<'_>,
    epoch: &str,
    decisions: impl Stream<Item = D>,
    stored: &BTreeMap<String, Versioned<Memory>>,
) -> Result<Vec<ActionReport>, ActError> {
    // One lane per operation: a paced UpdateFleet never holds up the pools' updates (`pacing::in_lanes_streamed`).
    let lane = |decision: &D| {
        let decision = decision.borrow();
        match decision.outcome {
            Outcome::Act(action) => action_name(decision.kind, action),
            _ => "memory",
        }
    };
    // Claims taken in batches as the decisions arrive, completions written a transaction at a time.
    let book = &Bookkeeping::new(ctx.ledger, ctx.fence, ctx.now, ctx.remaining);
    let decisions = book.decided(decisions, |decision: &D| {
        let decision = decision.borrow();
        let Outcome::Act(action) = decision.outcome else { return None };
        (!ctx.dry_run).then(|| (effect_key(ctx, epoch, decision), action))
    });
    let acted = autopilot_shared::pacing::in_lanes_streamed(decisions, lane, |decision| async move {
        let decision = decision.borrow();
        let report = cpu::metered(Step::Act, act_on(ctx, book, epoch, decision, stored)).await?;
        Ok::<_, ActError>((decision.resource.clone(), report))
    })
    .await;
    let finished = cpu::metered(Step::Act, book.finish()).await;
    let mut reports = acted?;
    finished?;
    reports.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reports.into_iter().map(|(_, report)| report).collect())
}

/// One decision: its action exactly once (or its memory kept), a hold or a dry-run would-act recorded when it
/// changes, and its report.
/// The idempotency key of a decision's action: the resource and the decision epoch.
fn effect_key(ctx: &ActContext<'_>, epoch: &str, decision: &Decision) -> IdempotencyKey {
    IdempotencyKey::new(ctx.function, format!("{}#{epoch}", decision.resource.key()))
}

async fn act_on(
    ctx: &ActContext<'_>,
    book: &Bookkeeping<'_>,
    epoch: &str,
    decision: &Decision,
    stored: &BTreeMap<String, Versioned<Memory>>,
) -> Result<ActionReport, ActError> {
    let key = decision.resource.key();
    let previous = stored.get(&key);
    let report = |result: ActionResult, error: Option<String>| ActionReport {
        resource: key.clone(),
        name: decision.name.clone(),
        outcome: decision.outcome.clone(),
        reason: decision.reason.clone(),
        result,
        error,
    };
    let record = |action: &str, outcome: AuditOutcome, details: serde_json::Value| AuditRecord {
        at: ctx.now,
        function: ctx.function.to_owned(),
        resource: key.clone(),
        action: action.to_owned(),
        outcome,
        reason: decision.reason.clone(),
        correlation_id: ctx.correlation_id.to_owned(),
        details,
    };
    let note = match decision.outcome {
        Outcome::Skip => Some(Note::Held { reason: decision.reason.clone() }),
        Outcome::Act(action) if ctx.dry_run => Some(Note::WouldAct { action: would_act(decision.kind, action) }),
        _ => None,
    };
    let before = previous.and_then(|p| p.state.note.as_ref());
    let change = Change::between(before, note.as_ref());
    let details = serde_json::json!({ "name": decision.name, "epoch": epoch });
    if let Some(hold) = change.record(record("", AuditOutcome::Skipped, details)) {
        ctx.ledger.append_audit(&hold).await?;
    }
    let Outcome::Act(action) = decision.outcome else {
        // No action; keep the memory (idle clock, manual change, the note) if it changed.
        let memory = Memory { note, ..decision.memory.clone() };
        if previous.map(|p| &p.state) != Some(&memory) {
            book.save_state(state_write(&decision.resource, &memory, previous)).await?;
        }
        let result = if decision.outcome == Outcome::Skip { ActionResult::Skipped } else { ActionResult::NotActed };
        return Ok(report(result, None));
    };
    if ctx.dry_run && change == Change::Unchanged {
        // The same would-act as recorded at an earlier tick: counted, not recorded again.
        metrics::counter!("actions_dry_run").increment(1);
        return Ok(report(ActionResult::DryRun, None));
    }
    let name = action_name(decision.kind, action);
    let recorded = previous.and_then(|p| p.state.failure.as_ref());
    let effect = Effect {
        ledger: ctx.ledger,
        key: effect_key(ctx, epoch, decision),
        payload: &action,
        audit: record(
            name,
            AuditOutcome::DryRun,
            serde_json::json!({ "action": action, "epoch": epoch, "name": decision.name }),
        ),
        dry_run: ctx.dry_run,
        now: ctx.now,
        remaining: ctx.remaining,
        fence: ctx.fence,
        recorded_failure: RecordedFailure::of(recorded, name),
    };
    // Written with the action once it succeeds: the failure it recorded is over.
    let memory = Memory { note: None, failure: None, ..decision.memory.clone() };
    let write = state_write(&decision.resource, &memory, previous);
    let performed = book.perform_with_state(effect, async || call(ctx.aws, decision, action).await, write).await?;
    match &performed {
        // A failure that persists is recorded and announced once (the audit's record by `settle`, this event and
        // the memory here), not at every tick; an announcement EventBridge did not take is sent again.
        Performed::Failed(error) if RecordedFailure::to_announce(recorded, name, error) => {
            let unannounced = !announce_failure(ctx, decision, name, error).await;
            let failure = RecordedFailure { action: name.to_owned(), error: error.clone(), unannounced };
            let remembered = Memory { failure: Some(failure), ..previous.map(|p| p.state.clone()).unwrap_or_default() };
            book.save_state(state_write(&decision.resource, &remembered, previous)).await?;
        }
        // Dry-run changes nothing but the note: the would-act is recorded once until the plan changes.
        Performed::DryRun => {
            let unchanged = previous.map(|p| p.state.clone()).unwrap_or_default();
            let memory = Memory { note, ..unchanged };
            book.save_state(state_write(&decision.resource, &memory, previous)).await?;
        }
        _ => {}
    }
    Ok(report(performed.result(), performed.detail()))
}

/// A dry-run would-act as its note: the operation and what it would set.
fn would_act(kind: Kind, action: Action) -> String {
    match action {
        Action::SetDesired { to, .. } => format!("{} to {to}", action_name(kind, action)),
        Action::Start | Action::Stop => action_name(kind, action).to_owned(),
    }
}

/// A resource's new memory, to be written at the version it was read at.
fn state_write<'a>(
    resource: &'a autopilot_shared::resource::ResourceRef,
    memory: &'a Memory,
    previous: Option<&Versioned<Memory>>,
) -> StateWrite<'a, Memory> {
    StateWrite { resource, state: memory, expected: previous.map(|p| p.version) }
}

/// Publishes `Capacity Action Failed`; whether EventBridge took it (if not, it is logged and sent again at the
/// next tick; the audit holds the record).
async fn announce_failure(ctx: &ActContext<'_>, decision: &Decision, action: &str, error: &str) -> bool {
    let detail = serde_json::json!({
        "resource": decision.resource.key(),
        "name": decision.name,
        "action": action,
        "reason": decision.reason,
        "error": error,
        "correlationId": ctx.correlation_id,
    });
    announce(&ctx.aws.eventbridge, ctx.event_bus, "Capacity Action Failed", &detail).await.is_ok()
}

impl autopilot_shared::report::ReportItem for ActionReport {
    fn result(&self) -> &str {
        self.result.as_str()
    }
}

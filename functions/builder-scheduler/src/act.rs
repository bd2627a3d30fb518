//! The act step: each action exactly once per cause (the idempotency key is the builder and the cause, not
//! the tick), under the function's lease (memory writes are fenced), honouring dry-run, audited. A start or
//! stop the service refuses because the builder changed state under us is a deferral, not a failure.
//! Warnings honour dry-run (a dry run stops nothing, so announcing a stop would be false); reports of FAILED
//! or unknown states are sent in dry-run too (they describe, they change nothing).

use crate::decide::{Action, Decision, Memory, Outcome};
use autopilot_shared::cpu::{self, Step};
use autopilot_shared::effect::{Bookkeeping, CallError, Effect, Performed, announce};
use autopilot_shared::ledger::LedgerError;
use autopilot_shared::ledger::audit::{AuditRecord, Outcome as AuditOutcome};
use autopilot_shared::ledger::idempotency::IdempotencyKey;
use autopilot_shared::ledger::state::{StateWrite, Versioned};
use autopilot_shared::notes::{Change, HOLD, Note, RecordedFailure};
use autopilot_shared::report::ActionResult;
use aws_sdk_appstream::error::ProvideErrorMetadata;
use futures::Stream;
use serde::Serialize;
use std::borrow::Borrow;
use std::collections::BTreeMap;

/// Service error codes that mean "the builder is no longer in the state we decided on" (from the SDK's error
/// models: `StopImageBuilder` refuses a builder that is not RUNNING with `OperationNotPermittedException`,
/// `StartImageBuilder` one that is not STOPPED with `ResourceNotAvailableException`; either may answer
/// `ConcurrentModificationException`; a builder deleted meanwhile is `ResourceNotFoundException`).
const STATE_CHANGED: [&str; 4] = [
    "OperationNotPermittedException",
    "ResourceNotAvailableException",
    "ConcurrentModificationException",
    "ResourceNotFoundException",
];

pub use autopilot_shared::effect::ActContext;

/// What became of one decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionReport {
    pub resource: String,
    pub name: String,
    pub state: String,
    pub outcome: Outcome,
    pub reason: String,
    pub result: ActionResult,
    pub error: Option<String>,
}

/// A failure that stops the whole act step (the ledger or the lease is gone): everything else is per item.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ActError(#[from] pub LedgerError);

fn call_error<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    error: &aws_sdk_appstream::error::SdkError<E, R>,
) -> CallError {
    CallError::from_sdk(error, &STATE_CHANGED)
}

/// The outcome event for a warning or a report.
fn event_detail(ctx: &ActContext<'_>, decision: &Decision, action: &Action) -> serde_json::Value {
    let mut detail = serde_json::json!({
        "resource": decision.resource.key(),
        "imageBuilder": decision.name,
        "state": decision.state,
        "reason": decision.reason,
        "correlationId": ctx.correlation_id,
    });
    match action {
        Action::Warn { cause, stop_at } => {
            detail["stopAt"] = serde_json::json!(stop_at);
            detail["cause"] = serde_json::json!(cause);
        }
        Action::Report { since, .. } => {
            detail["since"] = serde_json::json!(since);
            detail["errors"] = serde_json::json!(decision.errors);
        }
        Action::Start { .. } | Action::Stop { .. } => {}
    }
    detail
}

async fn call(ctx: &ActContext<'_>, decision: &Decision, action: &Action) -> Result<(), CallError> {
    let name = decision.name.clone();
    match action {
        Action::Start { .. } => {
            ctx.aws.appstream.start_image_builder().name(name).send().await.map(drop).map_err(|e| call_error(&e))
        }
        Action::Stop { .. } => {
            ctx.aws.appstream.stop_image_builder().name(name).send().await.map(drop).map_err(|e| call_error(&e))
        }
        Action::Warn { .. } | Action::Report { .. } => {
            let detail = event_detail(ctx, decision, action);
            announce(&ctx.aws.eventbridge, ctx.event_bus, action.name(), &detail).await.map_err(CallError::from)
        }
    }
}

/// Carries out the decisions. `stored` holds each builder's memory as read (with its version). Reports in
/// resource order: [`act_streamed`] over them.
pub async fn act(
    ctx: &ActContext<'_>,
    decisions: &[Decision],
    stored: &BTreeMap<String, Versioned<Memory>>,
) -> Result<Vec<ActionReport>, ActError> {
    act_streamed(ctx, futures::stream::iter(decisions), stored).await
}

/// Carries out decisions as they arrive (a builder is acted on as soon as it is decided, while the others' tags
/// are still being read), one lane per kind of action (`pacing::in_lanes_streamed`: a paced StartImageBuilder
/// never holds up the stops), and reports on every one in resource order (the order `observe` sorts in).
/// `stored` holds each builder's memory as read (with its version).
///
/// The bookkeeping is batched ([`Bookkeeping`]): claims as the decisions arrive, completions and the memories
/// that change without an action (most of a tick's writes: builders moving between states) a fenced
/// transaction at a time, the rest once every lane has finished — also when another lane failed (its error is
/// then the answer).
pub async fn act_streamed<D: Borrow<Decision>>(
    ctx: &ActContext<'_>,
    decisions: impl Stream<Item = D>,
    stored: &BTreeMap<String, Versioned<Memory>>,
) -> Result<Vec<ActionReport>, ActError> {
    let lane = |decision: &D| match &decision.borrow().outcome {
        Outcome::Act(action) => action.name(),
        _ => "memory",
    };
    // Claims taken in batches as the decisions arrive; completions, and the memories that changed without an
    // action, written a transaction at a time.
    let book = &Bookkeeping::new(ctx.ledger, ctx.fence, ctx.now, ctx.remaining);
    let decisions = book.decided(decisions, |decision: &D| {
        let decision = decision.borrow();
        let Outcome::Act(action) = &decision.outcome else { return None };
        (!ctx.dry_run).then(|| (effect_key(ctx, decision, action), action.clone()))
    });
    let acted = autopilot_shared::pacing::in_lanes_streamed(decisions, lane, |decision| async move {
        let decision = decision.borrow();
        let (report, changed) = cpu::metered(Step::Act, act_on(ctx, book, decision, stored)).await?;
        if let Some(memory) = changed {
            let expected = stored.get(&decision.resource.key()).map(|p| p.version);
            let write = StateWrite { resource: &decision.resource, state: &memory, expected };
            cpu::metered(Step::Act, book.save_state(write)).await?;
        }
        Ok::<_, ActError>((decision.resource.clone(), report))
    })
    .await;
    let finished = cpu::metered(Step::Act, book.finish()).await;
    let mut reports = acted?;
    finished?;
    reports.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reports.into_iter().map(|(_, report)| report).collect())
}

/// One decision: its action exactly once per cause (an applied action, or a dry-run warning, writes the
/// memory with it); or no action, a deferral recorded once per cause and a hold when it begins, changes or
/// ends. Answers its report, and the memory still to be written when it changed and no action wrote it
/// ([`act_streamed`] writes those in batches).
/// The idempotency key of a decision's action (the builder and the action's cause).
fn effect_key(ctx: &ActContext<'_>, decision: &Decision, action: &Action) -> IdempotencyKey {
    IdempotencyKey::new(ctx.function, action.business_key(&decision.resource.key()))
}

async fn act_on(
    ctx: &ActContext<'_>,
    book: &Bookkeeping<'_>,
    decision: &Decision,
    stored: &BTreeMap<String, Versioned<Memory>>,
) -> Result<(ActionReport, Option<Memory>), ActError> {
    let key = decision.resource.key();
    let previous = stored.get(&key);
    let audit = |action: &str| AuditRecord {
        at: ctx.now,
        function: ctx.function.to_owned(),
        resource: key.clone(),
        action: action.to_owned(),
        outcome: AuditOutcome::DryRun,
        reason: decision.reason.clone(),
        correlation_id: ctx.correlation_id.to_owned(),
        details: serde_json::json!({ "name": decision.name, "state": decision.state }),
    };
    let report = |result: ActionResult, error: Option<String>| ActionReport {
        resource: key.clone(),
        name: decision.name.clone(),
        state: decision.state.clone(),
        outcome: decision.outcome.clone(),
        reason: decision.reason.clone(),
        result,
        error,
    };
    // In dry-run a start or stop is a would-act, recorded once until it changes (its idempotency record alone
    // would let it be recorded again once it expires).
    let would_act = match &decision.outcome {
        Outcome::Act(action @ (Action::Start { cause } | Action::Stop { cause })) if ctx.dry_run => {
            Some(Note::WouldAct { action: format!("{} ({cause})", action.name()) })
        }
        _ => None,
    };
    let note = match decision.outcome {
        Outcome::Skip => Some(Note::Held { reason: decision.reason.clone() }),
        _ => would_act,
    };
    let change = Change::between(previous.and_then(|p| p.state.note.as_ref()), note.as_ref());
    if let Some(hold) = change.record(audit(HOLD)) {
        ctx.ledger.append_audit(&hold).await?;
    }
    if matches!(note, Some(Note::WouldAct { .. })) && change == Change::Unchanged {
        metrics::counter!("actions_dry_run").increment(1);
        return Ok((report(ActionResult::DryRun, None), None));
    }
    let memory = Memory { note, ..decision.memory.clone() };
    let Outcome::Act(action) = &decision.outcome else {
        let previous_memory = previous.map(|p| &p.state);
        if decision.outcome == Outcome::Defer
            && previous_memory.and_then(|m| m.deferred.as_ref()) != decision.memory.deferred.as_ref()
        {
            // Each deferral (cause and state) is recorded once, with its reason.
            let mut record = audit("StopImageBuilder");
            record.outcome = AuditOutcome::Deferred;
            ctx.ledger.append_audit(&record).await?;
            metrics::counter!("deferrals").increment(1);
            tracing::info!(resource = %key, reason = %decision.reason, "stop deferred");
        }
        let result = if decision.outcome == Outcome::Skip { ActionResult::Skipped } else { ActionResult::NotActed };
        return Ok((report(result, None), (previous_memory != Some(&memory)).then_some(memory)));
    };
    let mut record = audit(action.name());
    record.details["action"] = serde_json::json!(action);
    let recorded = previous.and_then(|p| p.state.failure.as_ref());
    // Written with the action once it succeeds: the failure it recorded is over.
    let memory = Memory { failure: None, ..memory };
    let effect = Effect {
        ledger: ctx.ledger,
        key: effect_key(ctx, decision, action),
        payload: action,
        audit: record,
        // Reports describe; they change nothing and are sent in dry-run too.
        dry_run: ctx.dry_run && !matches!(action, Action::Report { .. }),
        now: ctx.now,
        remaining: ctx.remaining,
        fence: ctx.fence,
        recorded_failure: RecordedFailure::of(recorded, action.name()),
    };
    let performed = book
        .perform_with_state(
            effect,
            async || call(ctx, decision, action).await,
            StateWrite { resource: &decision.resource, state: &memory, expected: previous.map(|p| p.version) },
        )
        .await?;
    match &performed {
        // A dry-run warning still counts as given, or the would-stop would never be recorded.
        // A dry-run start or stop changes nothing but the note.
        Performed::DryRun if matches!(action, Action::Start { .. } | Action::Stop { .. }) => {
            let unchanged = previous.map(|p| p.state.clone()).unwrap_or_default();
            let noted = Memory { note: memory.note.clone(), ..unchanged };
            let write =
                StateWrite { resource: &decision.resource, state: &noted, expected: previous.map(|p| p.version) };
            book.save_state(write).await?;
        }
        Performed::DryRun if matches!(action, Action::Warn { .. }) => {
            let write =
                StateWrite { resource: &decision.resource, state: &memory, expected: previous.map(|p| p.version) };
            book.save_state(write).await?;
        }
        // A failure that persists is recorded and announced once (the audit's record by `settle`, this event and
        // the memory here), not at every tick; an announcement EventBridge did not take is sent again.
        Performed::Failed(error) if RecordedFailure::to_announce(recorded, action.name(), error) => {
            let unannounced = match action {
                Action::Start { .. } | Action::Stop { .. } => {
                    let detail = serde_json::json!({
                        "resource": key,
                        "imageBuilder": decision.name,
                        "action": action.name(),
                        "reason": decision.reason,
                        "error": error,
                        "correlationId": ctx.correlation_id,
                    });
                    announce(&ctx.aws.eventbridge, ctx.event_bus, "Image Builder Action Failed", &detail).await.is_err()
                }
                // The announcement is the action: it is tried again at the next tick.
                Action::Warn { .. } | Action::Report { .. } => false,
            };
            let failure = RecordedFailure { action: action.name().to_owned(), error: error.clone(), unannounced };
            let remembered = Memory { failure: Some(failure), ..previous.map(|p| p.state.clone()).unwrap_or_default() };
            let write =
                StateWrite { resource: &decision.resource, state: &remembered, expected: previous.map(|p| p.version) };
            book.save_state(write).await?;
        }
        _ => {}
    }
    Ok((report(performed.result(), performed.detail()), None))
}

impl autopilot_shared::report::ReportItem for ActionReport {
    fn result(&self) -> &str {
        self.result.as_str()
    }
}

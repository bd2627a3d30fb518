//! The act step. Reboots go out in batches of 25 (`RebootWorkspaces`), each WorkSpace claimed on its own so a
//! duplicate delivery drops out item by item, and every `FailedRequests` item is settled on its own: a
//! WorkSpace that changed state is a deferral, any other failure is audited, counted in its episode and
//! retried on the next sweep (escalated after [`crate::decide::MAX_FAILED_ATTEMPTS`]). Rebuilds go one at a
//! time (the API takes one). Escalations are outcome events, sent once per episode and cause — in dry-run
//! too, because they describe what is wrong and change nothing. Episode and budget writes are fenced by the
//! function lease; budgets are reserved before the calls (a crash over-counts, never under-counts), and what a
//! deferred or duplicate action did not spend is given back after them.

use crate::decide::{Action, Budget, Decision, Episode, Note, Plan};
use crate::observe::BATCH;
use autopilot_shared::effect::{
    CallError, Effect, Performed, THROTTLED, announce, outbox, perform_batch, perform_once,
};
use autopilot_shared::ledger::LedgerError;
use autopilot_shared::ledger::audit::{AuditRecord, Outcome as AuditOutcome};
use autopilot_shared::ledger::idempotency::IdempotencyKey;
use autopilot_shared::ledger::state::Versioned;
use autopilot_shared::ledger::state::{WorkItemListing, WorkItemWrite};
use autopilot_shared::report::ActionResult;
use autopilot_shared::resource::ResourceRef;
use aws_sdk_workspaces::types::{RebootRequest, RebuildRequest};
use chrono::Duration;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

pub use autopilot_shared::effect::ActContext;

/// Open episodes are ledger work items of this kind (id = the resource key).
pub const KIND: &str = "REMEDY";
/// Per-selection budgets (id = the selection name).
pub const BUDGET_KIND: &str = "REMEDY-BUDGET";
/// How long a closed episode is kept.
const CLOSED_RETENTION: Duration = Duration::days(30);

/// What the ledger held when the sweep began.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// Open episodes by resource key.
    pub episodes: BTreeMap<String, Versioned<Episode>>,
    /// Budgets by selection name.
    pub budgets: BTreeMap<String, Versioned<Budget>>,
}

/// What became of one decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionReport {
    pub resource: String,
    pub name: String,
    pub state: String,
    pub selection: Option<String>,
    pub action: Option<Action>,
    pub reason: String,
    /// applied | dry-run | duplicate | deferred | failed | skipped | noted | closed | not-acted
    pub result: ActionResult,
    pub error: Option<String>,
}

/// A failure that stops the whole act step (the ledger or the lease is gone): everything else is per item.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ActError(#[from] pub LedgerError);

/// Episode versions as they move during the step (each write advances one).
struct Books<'a> {
    ctx: &'a ActContext<'a>,
    versions: Mutex<BTreeMap<String, u64>>,
    stored: &'a Stored,
}

impl Books<'_> {
    /// Writes the episode of `resource`: open, or closed (kept for [`CLOSED_RETENTION`]) when `episode` is
    /// `None`. An episode that never existed is not written closed; a new episode takes the place of a closed
    /// one (its item is read for the version), never of an open one another writer created meanwhile.
    async fn save(&self, resource: &ResourceRef, episode: Option<&Episode>) -> Result<(), LedgerError> {
        let key = resource.key();
        let known = self.versions.lock().map(|v| v.get(&key).copied()).unwrap_or_default();
        let ctx = self.ctx;
        let written = match episode {
            Some(episode) => {
                let version = match known {
                    Some(version) => Some(version),
                    None => match ctx.ledger.get_work_item::<Episode>(KIND, &key).await? {
                        Some(previous) if previous.state.closed => Some(previous.version),
                        Some(previous) => {
                            return Err(LedgerError::VersionConflict {
                                key,
                                expected: None,
                                found: Some(previous.version),
                            });
                        }
                        None => None,
                    },
                };
                ctx.ledger
                    .put_work_item(
                        WorkItemWrite {
                            kind: KIND,
                            id: &key,
                            state: episode,
                            expected: version,
                            listing: WorkItemListing::Open,
                        },
                        ctx.fence,
                        ctx.now,
                    )
                    .await?
            }
            None => {
                let Some(last) = self.stored.episodes.get(&key) else { return Ok(()) };
                let closed = Episode { closed: true, ..last.state.clone() };
                let expires = Some(ctx.now + CLOSED_RETENTION);
                ctx.ledger
                    .put_work_item(
                        WorkItemWrite {
                            kind: KIND,
                            id: &key,
                            state: &closed,
                            expected: known,
                            listing: WorkItemListing::Closed { expires_at: expires },
                        },
                        ctx.fence,
                        ctx.now,
                    )
                    .await?
            }
        };
        if let Ok(mut versions) = self.versions.lock() {
            versions.insert(key, written);
        }
        Ok(())
    }
}

fn audit(ctx: &ActContext<'_>, decision: &Decision, action: &str) -> AuditRecord {
    AuditRecord {
        at: ctx.now,
        function: ctx.function.to_owned(),
        resource: decision.resource.key(),
        action: action.to_owned(),
        outcome: AuditOutcome::DryRun,
        reason: decision.reason.clone(),
        correlation_id: ctx.correlation_id.to_owned(),
        details: serde_json::json!({
            "name": decision.name,
            "state": decision.state,
            "selection": decision.selection,
            "details": decision.details,
        }),
    }
}

fn report(decision: &Decision, result: ActionResult, error: Option<String>) -> ActionReport {
    ActionReport {
        resource: decision.resource.key(),
        name: decision.name.clone(),
        state: decision.state.clone(),
        selection: decision.selection.clone(),
        action: decision.action.clone(),
        reason: decision.reason.clone(),
        result,
        error,
    }
}

fn effect<'a>(ctx: &'a ActContext<'a>, decision: &Decision, action: &'a Action) -> Effect<'a, Action> {
    // A person's new round may rebuild or escalate again: its actions are keyed by the round, not the episode.
    let since = decision.episode.as_ref().map_or(ctx.now, |e| e.round_since.unwrap_or(e.since));
    let mut record = audit(ctx, decision, action.name());
    record.details["action"] = serde_json::json!(action);
    Effect {
        ledger: ctx.ledger,
        key: IdempotencyKey::new(ctx.function, action.business_key(&decision.resource, since)),
        payload: action,
        audit: record,
        // Escalations describe; they change nothing and are sent in dry-run too.
        dry_run: ctx.dry_run && !matches!(action, Action::Escalate { .. }),
        now: ctx.now,
        remaining: ctx.remaining,
        fence: ctx.fence,
        recorded_failure: None,
    }
}

/// The episode after a performed action: what the next sweep must know.
fn after(decision: &Decision, performed: &Performed, now: chrono::DateTime<chrono::Utc>) -> Option<Episode> {
    let mut episode = decision.episode.clone()?;
    match (performed, &decision.action) {
        (Performed::Applied, Some(Action::Reboot { .. } | Action::Rebuild)) => {
            if matches!(decision.action, Some(Action::Rebuild)) {
                episode.rebuilt_at = Some(now);
            } else {
                episode.reboots.push(now);
            }
            episode.last_action_at = Some(now);
            episode.unhealthy_since = None;
            episode.failures = 0;
            episode.noted = None;
        }
        (Performed::Failed(_), Some(Action::Reboot { .. } | Action::Rebuild)) => episode.failures += 1,
        // Refused for its state (not throttled): the next sweep looks again, and a WorkSpace that still looks
        // remediable but is refused every time is escalated after `MAX_FAILED_ATTEMPTS`, not retried for ever.
        (Performed::Deferred(why), Some(Action::Reboot { .. } | Action::Rebuild)) if !why.starts_with(THROTTLED) => {
            episode.failures += 1
        }
        // Not sent: the next sweep tries again.
        (Performed::Failed(_) | Performed::Deferred(_), Some(Action::Escalate { cause })) => {
            episode.escalated.remove(cause);
        }
        _ => {}
    }
    Some(episode)
}

/// `RebootWorkspaces` for up to 25 WorkSpaces: one result per id, from `FailedRequests`.
async fn reboot(ctx: &ActContext<'_>, ids: &[String]) -> Result<Vec<Result<(), CallError>>, CallError> {
    let requests = ids
        .iter()
        .map(|id| RebootRequest::builder().workspace_id(id).build().map_err(|e| CallError::Failed(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let output = ctx
        .aws
        .workspaces
        .reboot_workspaces()
        .set_reboot_workspace_requests(Some(requests))
        .send()
        .await
        .map_err(|e| CallError::from_sdk(&e, &STATE_CHANGED))?;
    Ok(ids.iter().map(|id| item_result(output.failed_requests(), id)).collect())
}

/// A WorkSpace that is no longer in a state the operation accepts (or is gone) changed under us: a deferral,
/// not a failure.
const STATE_CHANGED: [&str; 2] = ["InvalidResourceStateException", "ResourceNotFoundException"];

/// One WorkSpace's error in a `FailedRequests` list: a changed state or throttling defers, anything else fails.
fn call_error(code: &str, message: String) -> CallError {
    if autopilot_shared::error::is_throttling(code) {
        CallError::Throttled(message)
    } else if code.contains("InvalidResourceState") || code.contains("ResourceNotFound") {
        CallError::StateChanged(message)
    } else {
        CallError::Failed(message)
    }
}

/// The result for `id` in a `FailedRequests` list.
fn item_result(failed: &[aws_sdk_workspaces::types::FailedWorkspaceChangeRequest], id: &str) -> Result<(), CallError> {
    let Some(failure) = failed.iter().find(|f| f.workspace_id() == Some(id)) else { return Ok(()) };
    let code = failure.error_code().unwrap_or("Unknown");
    Err(call_error(code, format!("{code}: {}", failure.error_message().unwrap_or_default())))
}

async fn rebuild(ctx: &ActContext<'_>, id: &str) -> Result<(), CallError> {
    let request = RebuildRequest::builder().workspace_id(id).build().map_err(|e| CallError::Failed(e.to_string()))?;
    let output = ctx
        .aws
        .workspaces
        .rebuild_workspaces()
        .rebuild_workspace_requests(request)
        .send()
        .await
        .map_err(|e| CallError::from_sdk(&e, &STATE_CHANGED))?;
    item_result(output.failed_requests(), id)
}

fn escalation(ctx: &ActContext<'_>, decision: &Decision, cause: &str) -> serde_json::Value {
    serde_json::json!({
        "resource": decision.resource.key(),
        "resourceType": decision.resource.kind().as_str(),
        "name": decision.name,
        "state": decision.state,
        "cause": cause,
        "reason": decision.reason,
        "details": decision.details,
        "since": decision.episode.as_ref().map(|e| e.since),
        "selection": decision.selection,
        "correlationId": ctx.correlation_id,
    })
}

/// Carries out the plan; returns a report per decision and the number of AWS calls made (batches count once).
pub async fn act(ctx: &ActContext<'_>, plan: &Plan, stored: &Stored) -> Result<(Vec<ActionReport>, u32), ActError> {
    let calls = std::sync::atomic::AtomicU32::new(0);
    let count = || calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let books = Books {
        ctx,
        versions: Mutex::new(stored.episodes.iter().map(|(k, v)| (k.clone(), v.version)).collect()),
        stored,
    };
    // Budgets first: reserved before any call is made.
    let mut reserved: BTreeMap<&str, (Budget, u64)> = BTreeMap::new();
    if !ctx.dry_run {
        for (selection, budget) in &plan.budgets {
            let version = save_budget(ctx, selection, budget, stored.budgets.get(selection).map(|b| b.version)).await?;
            reserved.insert(selection, (*budget, version));
        }
    }
    // Reserved actions that changed nothing (deferred: throttled or refused for the state; a duplicate: another
    // delivery acted, on its own budget) are given back at the end.
    let mut unspent: BTreeMap<String, u32> = BTreeMap::new();
    let mut give_back = |decision: &Decision, performed: &Performed| {
        if matches!(performed, Performed::Deferred(_) | Performed::Duplicate)
            && let Some(selection) = &decision.selection
        {
            *unspent.entry(selection.clone()).or_default() += 1;
        }
    };

    let mut reports = Vec::with_capacity(plan.decisions.len());
    let mut applied = Vec::new();
    let reboots: Vec<(&Decision, &Action)> = plan
        .decisions
        .iter()
        .filter_map(|d| d.action.as_ref().filter(|a| matches!(a, Action::Reboot { .. })).map(|a| (d, a)))
        .collect();
    for chunk in reboots.chunks(BATCH) {
        let effects: Vec<Effect<'_, Action>> = chunk.iter().map(|(d, a)| effect(ctx, d, a)).collect();
        let performed = perform_batch(
            effects,
            async |indices: &[usize]| {
                let ids: Vec<String> = indices.iter().map(|&i| chunk[i].0.name.clone()).collect();
                count();
                reboot(ctx, &ids).await
            },
            async |index: usize| {
                let decision = chunk[index].0;
                books.save(&decision.resource, after(decision, &Performed::Applied, ctx.now).as_ref()).await
            },
        )
        .await?;
        for ((decision, _), performed) in chunk.iter().zip(performed) {
            settle(&books, decision, &performed).await?;
            give_back(decision, &performed);
            if performed == Performed::Applied {
                applied.push(*decision);
            }
            reports.push(report(decision, performed.result(), performed.detail()));
        }
    }

    for decision in &plan.decisions {
        match &decision.action {
            Some(Action::Reboot { .. }) => {}
            Some(action @ (Action::Rebuild | Action::Escalate { .. })) => {
                let performed = perform_once(
                    effect(ctx, decision, action),
                    async || {
                        count();
                        match action {
                            Action::Escalate { cause } => {
                                let detail = escalation(ctx, decision, cause);
                                announce(&ctx.aws.eventbridge, ctx.event_bus, "Escalation", &detail)
                                    .await
                                    .map_err(CallError::from)
                            }
                            _ => rebuild(ctx, &decision.name).await,
                        }
                    },
                    async || {
                        books.save(&decision.resource, after(decision, &Performed::Applied, ctx.now).as_ref()).await
                    },
                )
                .await?;
                settle(&books, decision, &performed).await?;
                if matches!(action, Action::Rebuild) {
                    give_back(decision, &performed);
                    if performed == Performed::Applied {
                        applied.push(decision);
                    }
                }
                if matches!(action, Action::Escalate { .. }) && performed.called() {
                    metrics::counter!("escalations").increment(1);
                }
                reports.push(report(decision, performed.result(), performed.detail()));
            }
            None => {
                let result = note(ctx, decision).await?;
                let stored_episode = stored.episodes.get(&decision.resource.key()).map(|v| &v.state);
                if decision.episode.as_ref() != stored_episode {
                    books.save(&decision.resource, decision.episode.as_ref()).await?;
                }
                let result = match (result, &decision.episode) {
                    (Some(result), _) => result,
                    (None, None) => ActionResult::Closed,
                    (None, Some(_)) => ActionResult::NotActed,
                };
                reports.push(report(decision, result, None));
            }
        }
    }

    for (selection, count) in unspent {
        if let Some((budget, version)) = reserved.get(selection.as_str()) {
            let left = Budget { used: budget.used.saturating_sub(count), ..*budget };
            save_budget(ctx, &selection, &left, Some(*version)).await?;
        }
    }

    // Announced after the actions (ten to a call); what EventBridge does not take is kept and sent again by
    // the next sweep, with that sweep's.
    let details: Vec<serde_json::Value> = applied
        .iter()
        .map(|d| {
            serde_json::json!({
                "resource": d.resource.key(),
                "workspaceId": d.name,
                "action": d.action,
                "reason": d.reason,
                "selection": d.selection,
                "correlationId": ctx.correlation_id,
            })
        })
        .collect();
    let announced = outbox::announce_kept(ctx, "Remediation Applied", details).await?;
    calls.fetch_add(announced as u32, std::sync::atomic::Ordering::Relaxed);
    Ok((reports, calls.into_inner()))
}

/// Writes a selection's budget at `expected` (fenced by the function lease); returns its new version. It expires
/// after its hour has passed.
async fn save_budget(
    ctx: &ActContext<'_>,
    selection: &str,
    budget: &Budget,
    expected: Option<u64>,
) -> Result<u64, LedgerError> {
    let expires = Some(budget.window + Duration::hours(2));
    let write = WorkItemWrite {
        kind: BUDGET_KIND,
        id: selection,
        state: budget,
        expected,
        listing: WorkItemListing::Closed { expires_at: expires },
    };
    ctx.ledger.put_work_item(write, ctx.fence, ctx.now).await
}

/// After a performed action: the episode as the next sweep must see it (unless another delivery owns it).
async fn settle(books: &Books<'_>, decision: &Decision, performed: &Performed) -> Result<(), LedgerError> {
    match performed {
        // Written inside the claim already.
        Performed::Applied => Ok(()),
        // Another delivery acted (or is acting): its bookkeeping wins.
        Performed::Duplicate => Ok(()),
        Performed::DryRun | Performed::Deferred(_) | Performed::Failed(_) => {
            books.save(&decision.resource, after(decision, performed, books.ctx.now).as_ref()).await
        }
    }
}

/// Audits a skip or deferral the first time its reason appears in the episode.
async fn note(ctx: &ActContext<'_>, decision: &Decision) -> Result<Option<ActionResult>, LedgerError> {
    let Some(note) = decision.note else { return Ok(None) };
    let mut record = audit(ctx, decision, "Remediate");
    record.outcome = match note {
        Note::Skipped => AuditOutcome::Skipped,
        Note::Deferred => AuditOutcome::Deferred,
    };
    ctx.ledger.append_audit(&record).await?;
    metrics::counter!(match note {
        Note::Skipped => "skips",
        Note::Deferred => "deferrals",
    })
    .increment(1);
    tracing::info!(resource = %decision.resource, reason = %decision.reason, "not acted");
    Ok(Some(match note {
        Note::Skipped => ActionResult::Skipped,
        Note::Deferred => ActionResult::Deferred,
    }))
}

impl autopilot_shared::report::ReportItem for ActionReport {
    fn result(&self) -> &str {
        self.result.as_str()
    }
}

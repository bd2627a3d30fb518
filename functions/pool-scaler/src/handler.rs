//! The handler: the pool-scaler's steps in the shared invocation — a tick reconciles everything, a session start
//! or access event one fleet or directory (debounced: at most once a minute; a session end is ignored), a
//! CloudTrail call is noted as a manual change (or marks cached tags stale). Callable in process (the `autopilot` tool and the tests call it directly).

use crate::act::{ActContext, ActionReport, act_streamed};
use crate::decide::{Decision, Memory, Trigger, plan};
use crate::observe::{CACHED_TAGS, Scope, list, tagged};
use autopilot_shared::error::AutopilotError;
use autopilot_shared::events::{self, ApiCall, Input};
use autopilot_shared::invocation::{self, Call, PolicyCell, Route, Steps, Worked, not_ours};
use autopilot_shared::ledger::LedgerError;
use autopilot_shared::ledger::idempotency::{Acquired, IdempotencyKey};
use autopilot_shared::lookups::tags_changed;
use autopilot_shared::report::Status;
use autopilot_shared::resource::ResourceKind;
use autopilot_shared::runtime::{ActivePolicy, classified, is_own_call};
pub use autopilot_shared::runtime::{Config, Deps};
use std::sync::atomic::AtomicU32;

/// The function's name: its service name in logs, metrics and ledger keys.
pub const FUNCTION: &str = "pool-scaler";

/// The `eventType` of an `AppStream Session Notification` for a session that ended.
const SESSION_ENDED: &str = "SESSION_ENDED";

/// What one invocation did; `status` is `reconciled`, `recorded` (manual change noted), `tags-changed` (a pool's
/// or fleet's cached tags marked stale), `ours`, `ignored`, `debounced`, or `busy` (another invocation holds the
/// lease).
pub type Report = autopilot_shared::report::Report<ActionReport>;

/// Handles one event. `remaining` is the invocation's remaining time.
pub async fn handle(
    deps: &Deps,
    payload: serde_json::Value,
    remaining: std::time::Duration,
) -> Result<Report, AutopilotError> {
    invocation::invoke(&PoolScaler, deps, payload, remaining).await
}

/// What an input asks to reconcile: a scope, in a decision epoch (with the resource, it keys each action).
#[derive(Debug)]
pub struct Reconcile {
    scope: Scope,
    epoch: String,
}

struct PoolScaler;

impl Steps for PoolScaler {
    const FUNCTION: &'static str = FUNCTION;
    type Work = Reconcile;
    type Item = ActionReport;

    async fn route(
        &self,
        call: &Call<'_>,
        input: Input,
        _: &mut PolicyCell<'_>,
    ) -> Result<Route<Reconcile>, AutopilotError> {
        let correlation_id = call.correlation_id.to_owned();
        let (scope, epoch) = match &input {
            Input::Tick(tick) => (Scope::All, Input::tick_key(tick)),
            // A session that ends frees capacity: it cannot put a fleet under pressure. Scale-in waits for the tick.
            Input::AppStreamSession(event) if event.detail.event_type == SESSION_ENDED => {
                return Ok(Route::Done(Status::Ignored));
            }
            Input::AppStreamSession(event) => (Scope::Fleet(event.detail.fleet_name.clone()), correlation_id),
            Input::WorkSpacesAccess(event) => (Scope::Directory(event.detail.directory_id.clone()), correlation_id),
            Input::CloudTrail(event) => return record_manual_change(call, &event.detail).await.map(Route::Done),
            Input::Alarm(_) | Input::Command(_) | Input::ShardTick(_) => {
                return Err(not_ours(FUNCTION, call.correlation_id));
            }
        };
        let must_not_be_lost = scope != Scope::All;
        // Session and access events come in bursts: reconcile a resource at most once a minute.
        if must_not_be_lost && !first_this_minute(call, &scope).await? {
            return Ok(Route::Done(Status::Debounced));
        }
        // An event for one resource must not be lost while a tick runs: it fails retryably, EventBridge retries.
        Ok(Route::Work { work: Reconcile { scope, epoch }, must_not_be_lost })
    }

    async fn work(
        &self,
        ctx: &ActContext<'_>,
        policy: &ActivePolicy,
        work: Reconcile,
    ) -> Result<Worked<ActionReport>, AutopilotError> {
        reconcile(ctx, policy, &work).await
    }
}

/// Whether this is the first reconcile of `scope` in the current minute (a completed idempotency claim per scope
/// and minute).
async fn first_this_minute(call: &Call<'_>, scope: &Scope) -> Result<bool, AutopilotError> {
    let (ledger, now) = (&call.ledger, call.now);
    let minute = now.format("%Y-%m-%dT%H:%M").to_string();
    let key = IdempotencyKey::new(FUNCTION, format!("debounce#{scope:?}#{minute}"));
    match ledger.acquire_idempotency(&key, "debounce", now, call.remaining, None).await {
        Ok(Acquired::Proceed(claim)) => {
            ledger.complete_idempotency(&claim, &"reconciled", now).await.map_err(classified)?;
            Ok(true)
        }
        Ok(Acquired::AlreadyCompleted { .. }) | Err(LedgerError::InProgress { .. }) => Ok(false),
        Err(other) => Err(classified(other)),
    }
}

/// Observe, decide, act, pipelined ([`autopilot_shared::reconcile::streamed`]): everything in scope listed, its
/// memories read, then decided and acted on batch by batch as the tags are known. Returns the AWS calls made and
/// a report on every decision, in resource order.
async fn reconcile(
    ctx: &ActContext<'_>,
    policy: &ActivePolicy,
    work: &Reconcile,
) -> Result<Worked<ActionReport>, AutopilotError> {
    let calls = AtomicU32::new(0);
    let listed = list(ctx.aws, &work.scope, ctx.region, &calls).await.map_err(classified)?;
    // Estate totals, not one metric per resource: each dimension value is a CloudWatch custom metric of its own
    // (10,000 pools and fleets would be 20,000 billed metrics). Per resource: the audit trail and the logs.
    let (desired, in_use) =
        listed.iter().fold((0u64, 0u64), |(d, u), r| (d + u64::from(r.desired), u + u64::from(r.in_use)));
    metrics::gauge!("desired_capacity").set(desired as f64);
    metrics::gauge!("sessions_in_use").set(in_use as f64);
    metrics::gauge!("utilization").set(if desired == 0 { 0.0 } else { in_use as f64 / desired as f64 });
    let resources = listed.resources();
    let trigger = if work.scope == Scope::All { Trigger::Tick } else { Trigger::SessionEvent };
    let decide = |batch: &[_], memories: &_| -> Vec<Decision> {
        let decisions = plan(batch, &policy.policy, memories, ctx.tag_prefix, ctx.now, trigger);
        for decision in &decisions {
            tracing::debug!(resource = %decision.resource, outcome = ?decision.outcome, reason = %decision.reason, "decided");
        }
        decisions
    };
    let tagged = tagged(ctx.aws, ctx.ledger, ctx.now, listed, &calls);
    let actions =
        autopilot_shared::reconcile::streamed(ctx.ledger, &resources, tagged, decide, async |decisions, stored| {
            act_streamed(ctx, &work.epoch, decisions, stored).await.map_err(|e| classified(e.0))
        })
        .await?;
    let api_calls = calls.into_inner() + actions.iter().filter(|a| a.result.called()).count() as u32;
    Ok(Worked { status: Status::Reconciled, api_calls, items: actions })
}

/// A CloudTrail call that changed a pool or fleet: unless we made it, remember it as a manual change. A call
/// that changed one's tags marks its cached tags stale, whoever made it.
async fn record_manual_change(call: &Call<'_>, trail: &events::CloudTrailCall) -> Result<Status, AutopilotError> {
    let deps = call.deps;
    let api_call = trail.api_call().map_err(classified)?;
    if let ApiCall::TagsChanged { resource, .. } = &api_call {
        return tags_changed(&call.ledger, trail, resource.as_ref(), call.now, &CACHED_TAGS).await.map_err(classified);
    }
    if is_own_call(trail, &deps.config.own_role_name) {
        return Ok(Status::Ours);
    }
    let (kind, id) = match api_call {
        ApiCall::UpdateWorkspacesPool { pool_id, .. }
        | ApiCall::StartWorkspacesPool { pool_id }
        | ApiCall::StopWorkspacesPool { pool_id } => (ResourceKind::WorkspacesPool, pool_id),
        ApiCall::UpdateFleet { name, .. } | ApiCall::StartFleet { name } | ApiCall::StopFleet { name } => {
            (ResourceKind::Fleet, name)
        }
        _ => return Ok(Status::Ignored),
    };
    let resource = trail.place().resource(kind, id).map_err(AutopilotError::invalid_input)?;
    let stored = call.ledger.get_state::<Memory>(&resource).await.map_err(classified)?;
    let mut memory = stored.as_ref().map(|s| s.state.clone()).unwrap_or_default();
    memory.manual_change_at = Some(trail.event_time.min(call.now));
    call.ledger.put_state(&resource, &memory, stored.map(|s| s.version), None, call.now).await.map_err(classified)?;
    tracing::info!(resource = %resource, "manual change recorded");
    Ok(Status::Recorded)
}

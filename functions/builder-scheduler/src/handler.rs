//! The handler: a tick reconciles every builder under the function's lease (observe, decide, act); a
//! CloudTrail call updates one builder's memory (when a run began, a person's start or stop, an image being
//! created) so the next tick decides with it, or marks its cached tags stale (a tag change). Callable
//! in-process (the `autopilot` tool and the tests).

use crate::act::{ActContext, ActionReport, act_streamed};
use crate::decide::{Change, Direction, Memory, plan};
use crate::observe::{CACHED_TAGS, list, tagged};
use autopilot_shared::error::AutopilotError;
use autopilot_shared::events::{ApiCall, CloudTrailCall, Input};
use autopilot_shared::invocation::{self, Call, PolicyCell, Route, Steps, Worked, not_ours};
use autopilot_shared::lookups::tags_changed;
use autopilot_shared::report::Status;
use autopilot_shared::resource::ResourceKind;
use autopilot_shared::runtime::{ActivePolicy, classified, is_own_call};
pub use autopilot_shared::runtime::{Config, Deps};
use std::sync::atomic::AtomicU32;

/// The function's name: its service name in logs, metrics and ledger keys.
pub const FUNCTION: &str = "builder-scheduler";

/// What one invocation did; `status` is `reconciled`, `recorded` (a CloudTrail call noted), `ours` (our own call
/// echoed), `tags-changed` (a builder's cached tags marked stale), `ignored`, or `busy` (another invocation holds
/// the lease).
pub type Report = autopilot_shared::report::Report<ActionReport>;

/// Handles one event. `remaining` is the invocation's remaining time.
pub async fn handle(
    deps: &Deps,
    payload: serde_json::Value,
    remaining: std::time::Duration,
) -> Result<Report, AutopilotError> {
    invocation::invoke(&BuilderScheduler, deps, payload, remaining).await
}

struct BuilderScheduler;

impl Steps for BuilderScheduler {
    const FUNCTION: &'static str = FUNCTION;
    /// A tick: every builder.
    type Work = ();
    type Item = ActionReport;

    async fn route(&self, call: &Call<'_>, input: Input, _: &mut PolicyCell<'_>) -> Result<Route<()>, AutopilotError> {
        match &input {
            Input::Tick(_) => Ok(Route::Work { work: (), must_not_be_lost: false }),
            Input::CloudTrail(event) => record_call(call, &event.detail).await.map(Route::Done),
            Input::AppStreamSession(_)
            | Input::WorkSpacesAccess(_)
            | Input::Alarm(_)
            | Input::Command(_)
            | Input::ShardTick(_) => Err(not_ours(FUNCTION, call.correlation_id)),
        }
    }

    async fn work(
        &self,
        ctx: &ActContext<'_>,
        policy: &ActivePolicy,
        (): (),
    ) -> Result<Worked<ActionReport>, AutopilotError> {
        reconcile(ctx, policy).await
    }
}

/// Observe, decide, act, pipelined ([`autopilot_shared::reconcile::streamed`]): every builder listed, its memory
/// read, then decided and acted on batch by batch as the tags are known. Returns the AWS calls made and a report
/// on every decision, in resource order.
async fn reconcile(ctx: &ActContext<'_>, policy: &ActivePolicy) -> Result<Worked<ActionReport>, AutopilotError> {
    let calls = AtomicU32::new(0);
    let listed = list(ctx.aws, ctx.region, &calls).await.map_err(classified)?;
    let running = listed.iter().filter(|b| b.item.state == "RUNNING").count();
    metrics::gauge!("builders_running").set(running as f64);
    let resources: Vec<_> = listed.iter().map(|b| b.resource.clone()).collect();
    let decide = |batch: &[_], memories: &_| {
        let decisions = plan(batch, &policy.policy, memories, ctx.tag_prefix, ctx.now);
        for decision in &decisions {
            tracing::debug!(resource = %decision.resource, outcome = ?decision.outcome, reason = %decision.reason, "decided");
        }
        decisions
    };
    let tagged = tagged(ctx.aws, ctx.ledger, ctx.now, listed, &calls);
    let actions =
        autopilot_shared::reconcile::streamed(ctx.ledger, &resources, tagged, decide, async |decisions, stored| {
            act_streamed(ctx, decisions, stored).await.map_err(|e| classified(e.0))
        })
        .await?;
    let api_calls = calls.into_inner() + actions.iter().filter(|a| a.result.called()).count() as u32;
    Ok(Worked { status: Status::Reconciled, api_calls, items: actions })
}

/// A CloudTrail call about an image builder, folded into its memory. The event time is when it happened:
/// a start by anyone starts the max-runtime clock then (not at the next tick); a start or stop by someone
/// else is a manual change; `CreateImage` means a snapshot is coming. Events older than what the memory
/// already knows (out-of-order delivery) change nothing.
async fn record_call(invocation: &Call<'_>, call: &CloudTrailCall) -> Result<Status, AutopilotError> {
    let (deps, now) = (invocation.deps, invocation.now);
    let api_call = call.api_call().map_err(classified)?;
    if let ApiCall::TagsChanged { resource, .. } = &api_call {
        return tags_changed(&invocation.ledger, call, resource.as_ref(), now, &CACHED_TAGS).await.map_err(classified);
    }
    let name = match &api_call {
        ApiCall::StartImageBuilder { name }
        | ApiCall::CreateImageBuilder { name }
        | ApiCall::StopImageBuilder { name } => name,
        ApiCall::CreateImage { image_builder_name, .. } => image_builder_name,
        _ => return Ok(Status::Ignored),
    };
    let resource = call.place().resource(ResourceKind::ImageBuilder, name).map_err(AutopilotError::invalid_input)?;
    let ours = is_own_call(call, &deps.config.own_role_name);
    let at = call.event_time.min(now);
    let stored = invocation.ledger.get_state::<Memory>(&resource).await.map_err(classified)?;
    let mut memory = stored.as_ref().map(|s| s.state.clone()).unwrap_or_default();
    let before = memory.clone();
    match api_call {
        // A start older than the down period we saw the builder in belongs to an earlier run.
        ApiCall::StartImageBuilder { .. } | ApiCall::CreateImageBuilder { .. }
            if memory.last_down_at.is_none_or(|down| at >= down) =>
        {
            memory.running_since = Some(memory.running_since.map_or(at, |since| since.min(at)));
            if !ours && memory.manual_change.is_none_or(|m| m.direction != Direction::Start || m.at > at) {
                memory.manual_change = Some(Change { direction: Direction::Start, at });
            }
        }
        // A stop older than the current run's start is stale.
        ApiCall::StopImageBuilder { .. }
            if !ours
                && memory.running_since.is_none_or(|since| at >= since)
                && memory.manual_change.is_none_or(|m| m.direction != Direction::Stop || m.at > at) =>
        {
            memory.manual_change = Some(Change { direction: Direction::Stop, at });
        }
        ApiCall::CreateImage { .. } if memory.snapshot_requested_at.is_none_or(|previous| at > previous) => {
            memory.snapshot_requested_at = Some(at);
        }
        _ => {}
    }
    let status = if ours { Status::Ours } else { Status::Recorded };
    if memory == before {
        return Ok(status);
    }
    invocation.ledger.put_state(&resource, &memory, stored.map(|s| s.version), None, now).await.map_err(classified)?;
    tracing::info!(resource = %resource, event = %call.event_name, at = %at, ours, "builder call recorded");
    Ok(status)
}

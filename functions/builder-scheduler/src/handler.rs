//! The handler: a tick reconciles every builder under the function's lease (observe, decide, act); a
//! CloudTrail call updates one builder's memory (when a run began, a person's start or stop, an image being
//! created) so the next tick decides with it, or marks its cached tags stale (a tag change). Callable
//! in-process (the `autopilot` tool and the tests).

use crate::act::{ActContext, ActionReport, act_streamed};
use crate::decide::{Change, Direction, Memory, plan};
use crate::observe::{CACHED_TAGS, list, tagged};
use autopilot_shared::cpu::{self, Step};
use autopilot_shared::error::AutopilotError;
use autopilot_shared::events::{self, ApiCall, CloudTrailCall, Input};
use autopilot_shared::ledger::state::Versioned;
use autopilot_shared::lookups::tags_changed;
use autopilot_shared::resource::{ResourceKind, ResourceRef};
pub use autopilot_shared::runtime::{Config, Deps};
use autopilot_shared::runtime::{
    acquire_function_lease, call_account, classified, finish_under_lease, is_own_call, load_policy,
};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU32;

/// The function's name: its service name in logs, metrics and ledger keys.
pub const FUNCTION: &str = "builder-scheduler";

/// What one invocation did; `status` is `reconciled`, `recorded` (a CloudTrail call noted), `ours` (our own call
/// echoed), `tags-changed` (a builder's cached tags marked stale), `ignored`, or `busy` (another invocation holds
/// the lease).
pub type Report = autopilot_shared::runtime::Report<ActionReport>;

/// Handles one event. `remaining` is the invocation's remaining time.
pub async fn handle(
    deps: &Deps,
    payload: serde_json::Value,
    remaining: std::time::Duration,
) -> Result<Report, AutopilotError> {
    let input = events::parse(payload).map_err(classified)?;
    let correlation_id = input.id().to_owned();
    let now = deps.clock.now();
    let mut report = Report::new(correlation_id.clone());
    match &input {
        Input::Tick(_) => {}
        Input::CloudTrail(event) => return record_call(deps, &event.detail, report, now).await,
        Input::AppStreamSession(_) | Input::WorkSpacesAccess(_) | Input::Alarm(_) | Input::Command(_) => {
            return Err(AutopilotError::invalid_input(format!(
                "{FUNCTION} does not handle this input (event {correlation_id}); check the EventBridge rules"
            )));
        }
    }
    let active = load_policy(deps).await?;
    report.policy_version = active.version;
    report.dry_run = active.dry_run;
    let Some(lease) = acquire_function_lease(deps, FUNCTION, &correlation_id, now, remaining).await? else {
        report.status = "busy".into();
        return Ok(report);
    };
    let result = reconcile(
        deps,
        &active.policy,
        &correlation_id,
        active.dry_run,
        &lease.fence_on(deps.clock.clone()),
        now,
        remaining,
    )
    .await;
    // The lease is given back whatever happened; losing it now only matters to the next holder's token.
    finish_under_lease(deps, FUNCTION, &lease, &correlation_id).await;
    let (api_calls, actions) = result?;
    report.status = "reconciled".into();
    report.api_calls = api_calls;
    report.set_actions(actions);
    Ok(report)
}

/// Observe, decide, act, pipelined: every builder is listed first, then every listed builder's memory is read
/// (one batched pass), then the tags stream in and each batch is decided (pure) and handed to the act step's
/// lanes while the rest are still read, so the reads and the (slower) starts and stops overlap. A failed tag
/// read stops the stream: what was already decided is carried out, then the reconcile fails. Returns the AWS
/// calls made and a report on every decision, in resource order.
async fn reconcile(
    deps: &Deps,
    policy: &autopilot_shared::policy::Policy,
    correlation_id: &str,
    dry_run: bool,
    fence: &autopilot_shared::ledger::lease::Fence,
    now: DateTime<Utc>,
    remaining: std::time::Duration,
) -> Result<(u32, Vec<ActionReport>), AutopilotError> {
    let started = std::time::Instant::now();
    let aws = deps.aws.with_deadline(remaining);
    let calls = AtomicU32::new(0);
    // Observe: the listing, then the memories…
    let listed = list(&aws, &deps.config.region, &calls).await.map_err(classified)?;
    let running = listed.iter().filter(|b| b.item.state == "RUNNING").count();
    metrics::gauge!("builders_running").set(running as f64);
    let resources: Vec<_> = listed.iter().map(|b| b.resource.clone()).collect();
    let stored: BTreeMap<String, Versioned<Memory>> = deps.ledger.get_states(&resources).await.map_err(classified)?;
    let memories: BTreeMap<String, Memory> = stored.iter().map(|(k, v)| (k.clone(), v.state.clone())).collect();
    // …then the tags, batch by batch as they become known, each batch decided at once (pure)…
    let mut failure = None;
    let decisions = tagged(&aws, &deps.ledger, now, listed, &calls)
        .scan(&mut failure, |failure, batch| {
            std::future::ready(batch.map_err(|error| **failure = Some(error)).ok())
        })
        .flat_map(|batch| {
            let decisions =
                cpu::measure(Step::Decide, || plan(&batch, policy, &memories, &deps.config.tag_prefix, now));
            for decision in &decisions {
                tracing::debug!(resource = %decision.resource, outcome = ?decision.outcome, reason = %decision.reason, "decided");
            }
            futures::stream::iter(decisions)
        });
    // …and acted on while the rest are read.
    let ctx = ActContext {
        aws: &aws,
        ledger: &deps.ledger,
        function: FUNCTION,
        correlation_id,
        dry_run,
        fence: Some(fence),
        now,
        remaining,
        event_bus: deps.config.event_bus.as_deref(),
    };
    let actions = act_streamed(&ctx, decisions, &stored).await.map_err(|e| classified(e.0))?;
    if let Some(error) = failure {
        return Err(classified(error));
    }
    let calls =
        calls.into_inner() + actions.iter().filter(|a| a.result == "applied" || a.error.is_some()).count() as u32;
    metrics::counter!("api_calls").increment(u64::from(calls));
    metrics::histogram!("reconcile_duration_ms").record(started.elapsed().as_secs_f64() * 1000.0);
    Ok((calls, actions))
}

/// A CloudTrail call about an image builder, folded into its memory. The event time is when it happened:
/// a start by anyone starts the max-runtime clock then (not at the next tick); a start or stop by someone
/// else is a manual change; `CreateImage` means a snapshot is coming. Events older than what the memory
/// already knows (out-of-order delivery) change nothing.
async fn record_call(
    deps: &Deps,
    call: &CloudTrailCall,
    mut report: Report,
    now: DateTime<Utc>,
) -> Result<Report, AutopilotError> {
    let api_call = call.api_call().map_err(classified)?;
    if let ApiCall::TagsChanged { resource, .. } = &api_call {
        report.status =
            tags_changed(&deps.ledger, call, resource.as_ref(), now, &CACHED_TAGS).await.map_err(classified)?.into();
        return Ok(report);
    }
    let name = match &api_call {
        ApiCall::StartImageBuilder { name }
        | ApiCall::CreateImageBuilder { name }
        | ApiCall::StopImageBuilder { name } => name,
        ApiCall::CreateImage { image_builder_name, .. } => image_builder_name,
        _ => {
            report.status = "ignored".into();
            return Ok(report);
        }
    };
    let resource = ResourceRef::new(call_account(call), &call.aws_region, ResourceKind::ImageBuilder, name)
        .map_err(AutopilotError::invalid_input)?;
    let ours = is_own_call(call, &deps.config.own_role_name);
    let at = call.event_time.min(now);
    let stored = deps.ledger.get_state::<Memory>(&resource).await.map_err(classified)?;
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
    if memory == before {
        report.status = if ours { "ours".into() } else { "recorded".into() };
        return Ok(report);
    }
    deps.ledger.put_state(&resource, &memory, stored.map(|s| s.version), None, now).await.map_err(classified)?;
    tracing::info!(resource = %resource, event = %call.event_name, at = %at, ours, "builder call recorded");
    report.status = if ours { "ours".into() } else { "recorded".into() };
    Ok(report)
}

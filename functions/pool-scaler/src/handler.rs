//! The handler: parse the input, pick the scope and the decision epoch, take the lease, observe, decide, act,
//! and report. Callable in-process (the `autopilot` tool and the tests call it directly).

use crate::act::{ActContext, ActionReport, act_streamed};
use crate::decide::{Decision, Memory, plan};
use crate::observe::{CACHED_TAGS, Scope, list, tagged};
use autopilot_shared::clients::AwsClients;
use autopilot_shared::cpu::{self, Step};
use autopilot_shared::error::AutopilotError;
use autopilot_shared::events::{self, ApiCall, Input};
use autopilot_shared::ledger::LedgerError;
use autopilot_shared::ledger::idempotency::{Acquired, IdempotencyKey};
use autopilot_shared::ledger::state::Versioned;
use autopilot_shared::lookups::tags_changed;
use autopilot_shared::resource::{ResourceKind, ResourceRef};
pub use autopilot_shared::runtime::{Config, Deps};
use autopilot_shared::runtime::{
    call_account, classified, finish_under_lease, is_own_call, lease_or_yield, load_policy,
};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU32;

/// The function's name: its service name in logs, metrics and ledger keys.
pub const FUNCTION: &str = "pool-scaler";

/// What one invocation did; `status` is `reconciled`, `recorded` (manual change noted), `tags-changed` (a pool's
/// or fleet's cached tags marked stale), `ours`, `ignored`, `debounced`, or `busy` (another invocation holds the
/// lease).
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
    let aws = deps.aws.with_deadline(remaining);
    let (scope, epoch) = match &input {
        Input::Tick(tick) => (Scope::All, Input::tick_key(tick)),
        Input::AppStreamSession(event) => (Scope::Fleet(event.detail.fleet_name.clone()), correlation_id.clone()),
        Input::WorkSpacesAccess(event) => (Scope::Directory(event.detail.directory_id.clone()), correlation_id.clone()),
        Input::CloudTrail(event) => return record_manual_change(deps, &event.detail, &correlation_id, now).await,
        Input::Alarm(_) | Input::Command(_) => {
            return Err(AutopilotError::invalid_input(format!(
                "{FUNCTION} does not handle this input (event {correlation_id}); check the EventBridge rules"
            )));
        }
    };
    let mut report = Report::new(correlation_id.clone());

    // Session and access events come in bursts: reconcile a resource at most once a minute.
    if scope != Scope::All {
        let minute = now.format("%Y-%m-%dT%H:%M").to_string();
        let key = IdempotencyKey::new(FUNCTION, format!("debounce#{scope:?}#{minute}"));
        match deps.ledger.acquire_idempotency(&key, "debounce", now, remaining, None).await {
            Ok(Acquired::Proceed(claim)) => {
                deps.ledger.complete_idempotency(&claim, &"reconciled", now).await.map_err(classified)?;
            }
            Ok(Acquired::AlreadyCompleted { .. }) | Err(LedgerError::InProgress { .. }) => {
                report.status = "debounced".into();
                return Ok(report);
            }
            Err(other) => return Err(classified(other)),
        }
    }

    let active = load_policy(deps).await?;
    let policy = active.policy;
    report.policy_version = active.version;
    report.dry_run = active.dry_run;

    // An event for one resource must not be lost while a tick runs: it fails retryably, EventBridge retries.
    let Some(lease) = lease_or_yield(deps, FUNCTION, &correlation_id, now, remaining, scope != Scope::All).await?
    else {
        report.status = "busy".into();
        return Ok(report);
    };

    let result = reconcile(
        deps,
        &aws,
        &policy,
        &scope,
        &epoch,
        &correlation_id,
        report.dry_run,
        &lease.fence_on(deps.clock.clone()),
        now,
        remaining,
    )
    .await;
    // The lease is given back whatever happened; losing it now only matters to the next holder's token.
    finish_under_lease(deps, FUNCTION, &lease, &correlation_id).await;
    let (observe_calls, actions) = result?;
    report.status = "reconciled".into();
    report.api_calls =
        observe_calls + actions.iter().filter(|a| matches!(a.result.as_str(), "applied" | "failed")).count() as u32;
    metrics::counter!("api_calls").increment(u64::from(report.api_calls));
    report.set_actions(actions);
    Ok(report)
}

/// Observe, decide, act, pipelined: everything in scope is listed first, then every listed resource's memory is
/// read (one batched pass), then the tags stream in and each batch is decided (pure) and handed to the act
/// step's lanes while the rest are still read, so the reads and the (slower) mutations overlap. A failed tag
/// read stops the stream: what was already decided is carried out, then the reconcile fails. Returns the
/// observe step's AWS calls and a report on every decision, in resource order.
#[allow(clippy::too_many_arguments)]
async fn reconcile(
    deps: &Deps,
    aws: &AwsClients,
    policy: &autopilot_shared::policy::Policy,
    scope: &Scope,
    epoch: &str,
    correlation_id: &str,
    dry_run: bool,
    fence: &autopilot_shared::ledger::lease::Fence,
    now: chrono::DateTime<chrono::Utc>,
    remaining: std::time::Duration,
) -> Result<(u32, Vec<ActionReport>), AutopilotError> {
    let started = std::time::Instant::now();
    let calls = AtomicU32::new(0);
    // Observe: the listing, then the memories…
    let listed = list(aws, scope, &deps.config.region, &calls).await.map_err(classified)?;
    // Estate totals, not one metric per resource: each dimension value is a CloudWatch custom metric of its own
    // (10,000 pools and fleets would be 20,000 billed metrics). Per resource: the audit trail and the logs.
    let (desired, in_use) =
        listed.iter().fold((0u64, 0u64), |(d, u), r| (d + u64::from(r.desired), u + u64::from(r.in_use)));
    metrics::gauge!("desired_capacity").set(desired as f64);
    metrics::gauge!("sessions_in_use").set(in_use as f64);
    metrics::gauge!("utilization").set(if desired == 0 { 0.0 } else { in_use as f64 / desired as f64 });
    let stored: BTreeMap<String, Versioned<Memory>> =
        deps.ledger.get_states(&listed.resources()).await.map_err(classified)?;
    let memories: BTreeMap<String, Memory> = stored.iter().map(|(k, v)| (k.clone(), v.state.clone())).collect();
    // …then the tags, batch by batch as they become known, each batch decided at once (pure)…
    let mut failure = None;
    let decisions = tagged(aws, &deps.ledger, now, listed, &calls)
        .scan(&mut failure, |failure, batch| {
            std::future::ready(batch.map_err(|error| **failure = Some(error)).ok())
        })
        .flat_map(|batch| {
            let decisions: Vec<Decision> =
                cpu::measure(Step::Decide, || plan(&batch, policy, &memories, &deps.config.tag_prefix, now));
            for decision in &decisions {
                tracing::debug!(resource = %decision.resource, outcome = ?decision.outcome, reason = %decision.reason, "decided");
            }
            futures::stream::iter(decisions)
        });
    // …and acted on while the rest are read.
    let ctx = ActContext {
        aws,
        ledger: &deps.ledger,
        function: FUNCTION,
        epoch,
        correlation_id,
        dry_run,
        fence,
        now,
        remaining,
        event_bus: deps.config.event_bus.as_deref(),
    };
    let actions = act_streamed(&ctx, decisions, &stored).await.map_err(|e| classified(e.0))?;
    if let Some(error) = failure {
        return Err(classified(error));
    }
    metrics::histogram!("reconcile_duration_ms").record(started.elapsed().as_secs_f64() * 1000.0);
    Ok((calls.into_inner(), actions))
}

/// A CloudTrail call that changed a pool or fleet: unless we made it, remember it as a manual change. A call
/// that changed one's tags marks its cached tags stale, whoever made it.
async fn record_manual_change(
    deps: &Deps,
    call: &events::CloudTrailCall,
    correlation_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Report, AutopilotError> {
    let mut report = Report { status: "recorded".into(), ..Report::new(correlation_id) };
    let api_call = call.api_call().map_err(classified)?;
    if let ApiCall::TagsChanged { resource, .. } = &api_call {
        report.status =
            tags_changed(&deps.ledger, call, resource.as_ref(), now, &CACHED_TAGS).await.map_err(classified)?.into();
        return Ok(report);
    }
    if is_own_call(call, &deps.config.own_role_name) {
        report.status = "ours".into();
        return Ok(report);
    }
    let (kind, id) = match api_call {
        ApiCall::UpdateWorkspacesPool { pool_id, .. }
        | ApiCall::StartWorkspacesPool { pool_id }
        | ApiCall::StopWorkspacesPool { pool_id } => (ResourceKind::WorkspacesPool, pool_id),
        ApiCall::UpdateFleet { name, .. } | ApiCall::StartFleet { name } | ApiCall::StopFleet { name } => {
            (ResourceKind::Fleet, name)
        }
        _ => {
            report.status = "ignored".into();
            return Ok(report);
        }
    };
    let resource =
        ResourceRef::new(call_account(call), &call.aws_region, kind, id).map_err(AutopilotError::invalid_input)?;
    let stored = deps.ledger.get_state::<Memory>(&resource).await.map_err(classified)?;
    let mut memory = stored.as_ref().map(|s| s.state.clone()).unwrap_or_default();
    memory.manual_change_at = Some(call.event_time.min(now));
    deps.ledger.put_state(&resource, &memory, stored.map(|s| s.version), None, now).await.map_err(classified)?;
    tracing::info!(resource = %resource, "manual change recorded");
    Ok(report)
}

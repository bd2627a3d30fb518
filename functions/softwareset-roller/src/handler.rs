//! The handler: `Rollout Requested` starts a rollout (refused with a reason when it cannot), `Rollout Paused` /
//! `Resumed` / `Aborted` control one, and a tick warns of ending support, announces a new software set (and
//! starts its rollout unless approval is required), and steps every open rollout. A tag change of an
//! environment (CloudTrail) marks its cached tags stale. Everything that changes a
//! rollout runs under the function lease, so two requests cannot both claim an environment.

use crate::act::{self, ActContext, StepReport, notify};
use crate::machine::{Rollout, Status, Transition, supported};
use crate::observe::{CACHED_TAGS, EnvironmentView, SoftwareSetView, environments, software_sets};
use crate::plan;
use autopilot_shared::cpu::{self, Step};
use autopilot_shared::error::AutopilotError;
use autopilot_shared::events::{ApiCall, CloudTrailCall, Command, Input, RolloutControl};
use autopilot_shared::ledger::LedgerError;
use autopilot_shared::ledger::audit::{AuditRecord, Outcome as AuditOutcome};
use autopilot_shared::lookups::tags_changed;
use autopilot_shared::policy::RolloutPolicy;
use autopilot_shared::resource::{ResourceKind, ResourceRef, account_region};
pub use autopilot_shared::runtime::{Config, Deps};
use autopilot_shared::runtime::{begin, classified, finish_under_lease, lease_or_yield};
use std::collections::BTreeMap;

/// The function's name: its service name in logs, metrics and ledger keys.
pub const FUNCTION: &str = "softwareset-roller";

/// What one invocation did; `status` is `requested`, `duplicate`, `dry-run`, `paused`, `resumed`, `aborted`,
/// `already-rolling` (the set is already rolling to those environments), `stepped`, `busy`, `no-rollouts`
/// (the policy has no `rollouts` section), `tags-changed` (an environment's cached tags marked stale) or
/// `ignored` (a tag change of something else).
pub type Report = autopilot_shared::runtime::Report<StepReport>;

/// Handles one event. `remaining` is the invocation's remaining time.
pub async fn handle(
    deps: &Deps,
    payload: serde_json::Value,
    remaining: std::time::Duration,
) -> Result<Report, AutopilotError> {
    let (input, now, active, mut report) = begin(deps, payload).await?;
    let correlation_id = report.correlation_id.clone();
    let origin = input.origin(&deps.config.region);
    let command = match &input {
        Input::Command(command) => Some(&command.command),
        Input::Tick(_) => None,
        Input::CloudTrail(event) => return tags_changed_call(deps, &event.detail, now, report).await,
        Input::AppStreamSession(_) | Input::WorkSpacesAccess(_) | Input::Alarm(_) => {
            return Err(AutopilotError::invalid_input(format!(
                "{FUNCTION} does not handle this input (event {correlation_id}); check the EventBridge rules"
            )));
        }
    };
    let Some(policy) = active.policy.rollouts.clone() else {
        if command.is_some() {
            return Err(AutopilotError::invalid_input(
                "the policy has no `rollouts` section: nothing can be rolled out",
            ));
        }
        report.status = "no-rollouts".into();
        return Ok(report);
    };
    let Some(lease) = lease_or_yield(deps, FUNCTION, &correlation_id, now, remaining, command.is_some()).await? else {
        report.status = "busy".into();
        return Ok(report);
    };
    let fence = lease.fence_on(deps.clock.clone());
    let aws = deps.aws.with_deadline(remaining);
    let ctx = ActContext {
        aws: &aws,
        ledger: &deps.ledger,
        function: FUNCTION,
        correlation_id: &correlation_id,
        dry_run: active.dry_run,
        fence: Some(&fence),
        now,
        remaining,
        event_bus: deps.config.event_bus.as_deref(),
    };
    let result = match command {
        Some(Command::RolloutRequested(request)) => {
            let reason = request.reason.as_deref();
            Box::pin(requested(&ctx, &policy, &request.software_set_id, reason, &origin, &mut report)).await
        }
        Some(Command::RolloutPaused(control)) => controlled(&ctx, control, Control::Pause, &mut report).await,
        Some(Command::RolloutResumed(control)) => controlled(&ctx, control, Control::Resume, &mut report).await,
        Some(Command::RolloutAborted(control)) => controlled(&ctx, control, Control::Abort, &mut report).await,
        Some(_) => {
            Err(AutopilotError::invalid_input(format!("{FUNCTION} does not handle this command ({correlation_id})")))
        }
        None => Box::pin(tick(&ctx, &policy, &origin, &mut report)).await,
    };
    finish_under_lease(deps, FUNCTION, &lease, &correlation_id).await;
    result.map(|()| report)
}

/// A CloudTrail call: an environment's tags changed (its cached tags are marked stale); no other call reaches
/// the roller.
async fn tags_changed_call(
    deps: &Deps,
    call: &CloudTrailCall,
    now: chrono::DateTime<chrono::Utc>,
    mut report: Report,
) -> Result<Report, AutopilotError> {
    let ApiCall::TagsChanged { resource, .. } = call.api_call().map_err(classified)? else {
        return Err(AutopilotError::invalid_input(format!(
            "{FUNCTION} does not handle this input ({}, event {}); check the EventBridge rules",
            call.event_name, report.correlation_id
        )));
    };
    report.status =
        tags_changed(&deps.ledger, call, resource.as_ref(), now, &CACHED_TAGS).await.map_err(classified)?.into();
    Ok(report)
}

/// Every open rollout, freshly read.
async fn open_rollouts(ctx: &ActContext<'_>) -> Result<Vec<(Rollout, u64)>, AutopilotError> {
    let listed = ctx.ledger.open_work_items::<Rollout>(act::KIND).await.map_err(classified)?;
    let mut rollouts = Vec::new();
    for (id, _) in listed {
        if let Some(fresh) = ctx.ledger.get_work_item::<Rollout>(act::KIND, &id).await.map_err(classified)? {
            rollouts.push((fresh.state, fresh.version));
        }
    }
    Ok(rollouts)
}

fn audit(ctx: &ActContext<'_>, resource: String, action: &str, outcome: AuditOutcome, reason: String) -> AuditRecord {
    AuditRecord {
        at: ctx.now,
        function: FUNCTION.into(),
        resource,
        action: action.into(),
        outcome,
        reason,
        correlation_id: ctx.correlation_id.to_owned(),
        details: serde_json::Value::Null,
    }
}

/// What a request or a tick observed: the environments, the software sets, and the account and region the
/// invocation acts in.
struct Seen {
    envs: Vec<EnvironmentView>,
    sets: Vec<SoftwareSetView>,
    origin: (String, String),
}

async fn observe_all(
    ctx: &ActContext<'_>,
    origin: &(String, String),
    report: &mut Report,
) -> Result<Seen, AutopilotError> {
    let (envs, env_calls) = environments(ctx.aws, ctx.ledger, ctx.now, &origin.1).await.map_err(classified)?;
    let (sets, set_calls) = software_sets(ctx.aws).await.map_err(classified)?;
    report.api_calls += env_calls + set_calls;
    Ok(Seen { envs, sets, origin: origin.clone() })
}

/// Starts a rollout of `target` with id `id` (the request's event id, or `auto-<set>`), unless refused.
async fn start(
    ctx: &ActContext<'_>,
    policy: &RolloutPolicy,
    id: &str,
    target: &str,
    seen: &Seen,
    why: &str,
    report: &mut Report,
) -> Result<(), AutopilotError> {
    let (envs, sets) = (seen.envs.as_slice(), seen.sets.as_slice());
    if ctx.ledger.get_work_item::<Rollout>(act::KIND, id).await.map_err(classified)?.is_some() {
        report.status = "duplicate".into();
        return Ok(());
    }
    let planned = plan::rings(policy, envs);
    let active: Vec<Rollout> = open_rollouts(ctx).await?.into_iter().map(|(r, _)| r).collect();
    let resource = ResourceRef::new(&seen.origin.0, &seen.origin.1, ResourceKind::Rollout, id)
        .map_err(AutopilotError::invalid_input)?
        .key();
    if let Some(covering) = plan::covering(target, &planned, &active) {
        // The set is already rolling to every environment the rings hold (a rollout started automatically
        // while this request waited for a retry, or an earlier request): nothing to start, nothing refused.
        let reason = format!("software set {target} is already rolling out in rollout {covering}");
        match ctx.ledger.put_work_item(act::ALIAS_KIND, id, &covering, None, ctx.fence, ctx.now, false, None).await {
            Ok(_) | Err(LedgerError::VersionConflict { .. }) => {}
            Err(error) => return Err(classified(error)),
        }
        ctx.ledger
            .append_audit(&audit(ctx, resource, "Rollout Requested", AuditOutcome::Skipped, reason))
            .await
            .map_err(classified)?;
        report.status = "already-rolling".into();
        return Ok(());
    }
    if let Some(reason) = plan::refusal(target, sets, &planned, &active, ctx.now) {
        ctx.ledger
            .append_audit(&audit(ctx, resource, "Rollout Requested", AuditOutcome::Failed, reason.clone()))
            .await
            .map_err(classified)?;
        return Err(AutopilotError::non_retryable(format!("rollout of {target} refused: {reason}")));
    }
    if ctx.dry_run {
        let reason = format!("{why} (dry-run: no rollout started)");
        ctx.ledger
            .append_audit(&audit(ctx, resource, "Rollout Requested", AuditOutcome::DryRun, reason))
            .await
            .map_err(classified)?;
        report.status = "dry-run".into();
        return Ok(());
    }
    let rollout = Rollout {
        id: id.to_owned(),
        resource: resource.clone(),
        target_set: target.to_owned(),
        target_supported_until: sets.iter().find(|s| s.id == target).and_then(|s| s.supported_until),
        requested_at: ctx.now,
        status: Status::Pending,
        paused: false,
        current: 0,
        rings: planned,
        validated: sets.iter().any(|s| s.id == target && s.validation_status == "VALIDATED"),
        history: vec![Transition {
            at: ctx.now,
            ring: None,
            from: Status::Pending,
            to: Status::Pending,
            reason: why.to_owned(),
        }],
        commands: Default::default(),
    };
    let version = match act::save(ctx, &rollout, None).await {
        Ok(version) => version,
        Err(LedgerError::VersionConflict { .. }) => {
            report.status = "duplicate".into();
            return Ok(());
        }
        Err(error) => return Err(classified(error)),
    };
    let supported_sets = supported_lookup(sets, ctx.now);
    let done = act::step(ctx, rollout, version, policy, None, &supported_sets).await?;
    report.api_calls += done.api_calls;
    report.actions.push(done);
    report.status = "requested".into();
    Ok(())
}

fn supported_lookup(sets: &[SoftwareSetView], now: chrono::DateTime<chrono::Utc>) -> impl Fn(&str) -> bool + '_ {
    move |id: &str| sets.iter().find(|s| s.id == id).is_some_and(|s| supported(s.supported_until, now))
}

async fn requested(
    ctx: &ActContext<'_>,
    policy: &RolloutPolicy,
    target: &str,
    reason: Option<&str>,
    origin: &(String, String),
    report: &mut Report,
) -> Result<(), AutopilotError> {
    let seen = observe_all(ctx, origin, report).await?;
    let why = format!("Rollout Requested{}", reason.map(|r| format!(": {r}")).unwrap_or_default());
    start(ctx, policy, ctx.correlation_id, target, &seen, &why, report).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Pause,
    Resume,
    Abort,
}

async fn controlled(
    ctx: &ActContext<'_>,
    control: &RolloutControl,
    what: Control,
    report: &mut Report,
) -> Result<(), AutopilotError> {
    let get = async |id: &str| ctx.ledger.get_work_item::<Rollout>(act::KIND, id).await.map_err(classified);
    let mut stored = get(&control.rollout_id).await?;
    if stored.is_none() {
        // A request answered by the rollout that already covered it reaches that rollout.
        let alias =
            ctx.ledger.get_work_item::<String>(act::ALIAS_KIND, &control.rollout_id).await.map_err(classified)?;
        if let Some(alias) = alias {
            stored = get(&alias.state).await?;
        }
    }
    let Some(stored) = stored else {
        return Err(AutopilotError::invalid_input(format!("detail.rolloutId: no rollout {}", control.rollout_id)));
    };
    let mut rollout = stored.state;
    let status = match what {
        Control::Pause => "paused",
        Control::Resume => "resumed",
        Control::Abort => "aborted",
    };
    if rollout.commands.contains(ctx.correlation_id) {
        // A redelivery of a command already applied (EventBridge delivers at least once).
        report.status = status.into();
        return Ok(());
    }
    if rollout.status.is_final() {
        return Err(AutopilotError::non_retryable(format!(
            "rollout {} is {:?}: it can no longer be paused, resumed or aborted",
            rollout.id, rollout.status
        )));
    }
    let reason = control.reason.clone().unwrap_or_else(|| "operator command".into());
    let event = match what {
        Control::Pause => {
            rollout.paused = true;
            "Rollout Pause Confirmed"
        }
        Control::Resume => {
            rollout.paused = false;
            "Rollout Resume Confirmed"
        }
        Control::Abort => {
            rollout.history.push(Transition {
                at: ctx.now,
                ring: rollout.rings.get(rollout.current).map(|r| r.name.clone()),
                from: rollout.status,
                to: Status::Aborted,
                reason: reason.clone(),
            });
            rollout.status = Status::Aborted;
            "Rollout Abort Confirmed"
        }
    };
    rollout.commands.insert(ctx.correlation_id.to_owned());
    let detail = serde_json::json!({ "rollout": rollout.id, "softwareSet": rollout.target_set, "reason": reason });
    let key = format!("{}#{}", rollout.id, ctx.correlation_id);
    notify(ctx, act::audit_resource(&rollout), key, event, detail, reason).await.map_err(classified)?;
    act::save(ctx, &rollout, Some(stored.version)).await.map_err(classified)?;
    report.status = status.into();
    Ok(())
}

/// Notices already sent about one resource (kept in its ledger state, so each is sent once ever, not once per
/// idempotency window).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Notices {
    sent: std::collections::BTreeSet<String>,
}

/// Sends `detail_type` about the resource `kind`/`id` in `place` (account, region) once ever for `notice`.
#[allow(clippy::too_many_arguments)]
async fn notice_once(
    ctx: &ActContext<'_>,
    place: (String, String),
    kind: ResourceKind,
    id: &str,
    notice: String,
    detail_type: &str,
    detail: serde_json::Value,
    reason: String,
) -> Result<(), AutopilotError> {
    let resource = ResourceRef::new(place.0, place.1, kind, id).map_err(AutopilotError::invalid_input)?;
    let stored = ctx.ledger.get_state::<Notices>(&resource).await.map_err(classified)?;
    let mut notices = stored.as_ref().map(|s| s.state.clone()).unwrap_or_default();
    if notices.sent.contains(&notice) {
        return Ok(());
    }
    notify(ctx, resource.key(), format!("{}#{notice}", resource.key()), detail_type, detail, reason)
        .await
        .map_err(classified)?;
    notices.sent.insert(notice);
    ctx.ledger
        .put_state(&resource, &notices, stored.map(|s| s.version), ctx.fence, ctx.now)
        .await
        .map_err(classified)?;
    Ok(())
}

async fn tick(
    ctx: &ActContext<'_>,
    policy: &RolloutPolicy,
    origin: &(String, String),
    report: &mut Report,
) -> Result<(), AutopilotError> {
    let seen = observe_all(ctx, origin, report).await?;
    let (envs, sets) = (seen.envs.as_slice(), seen.sets.as_slice());

    // Step every open rollout first, with what was just observed (a rollout started below waits for the next
    // tick's observation of the environments it set).
    let by_id: BTreeMap<String, EnvironmentView> = envs.iter().map(|e| (e.id.clone(), e.clone())).collect();
    let supported_sets = supported_lookup(sets, ctx.now);
    for (rollout, version) in open_rollouts(ctx).await? {
        let (observation, calls) = act::observe_ring(ctx.aws, &rollout, policy, &by_id, ctx.now).await?;
        report.api_calls += calls;
        let step = act::step(ctx, rollout, version, policy, observation.as_ref(), &supported_sets);
        let done = cpu::metered(Step::Act, step).await?;
        report.api_calls += done.api_calls;
        report.actions.push(done);
    }

    // Support ending: once per environment and set.
    for env in envs {
        let Some(set) = env.desired_software_set_id.as_ref().and_then(|id| sets.iter().find(|s| &s.id == id)) else {
            continue;
        };
        if let Some(until) = set.supported_until.filter(|until| *until - policy.warn_support_ending <= ctx.now) {
            let detail = serde_json::json!({ "environment": env.id, "softwareSet": set.id, "version": set.version, "supportedUntil": until });
            let reason = format!("environment {} runs software set {} supported until {until}", env.id, set.id);
            let notice = format!("support-ending#{}", set.id);
            let event = "Software Set Support Ending";
            let notice = notice_once(
                ctx,
                account_region(&env.arn, &seen.origin.1),
                ResourceKind::Environment,
                &env.id,
                notice,
                event,
                detail,
                reason,
            );
            cpu::metered(Step::Act, notice).await?;
        }
    }

    // A new software set: announce once; start its rollout unless approval is required.
    let candidate = cpu::measure(Step::Decide, || plan::candidate(sets, &plan::rings(policy, envs), ctx.now));
    if let Some(set) = candidate {
        let detail = serde_json::json!({ "softwareSet": set.id, "version": set.version, "releasedAt": set.released_at,
            "supportedUntil": set.supported_until, "approvalRequired": policy.require_approval });
        let reason = format!("software set {} ({}) is newer than what the rings run", set.id, set.version);
        let event = "Software Set Available";
        let notice = notice_once(
            ctx,
            account_region(&set.arn, &seen.origin.1),
            ResourceKind::SoftwareSet,
            &set.id,
            "available".into(),
            event,
            detail,
            reason.clone(),
        );
        cpu::metered(Step::Act, notice).await?;
        let busy = open_rollouts(ctx).await?.iter().any(|(r, _)| !r.status.is_final());
        if !policy.require_approval && !busy {
            let id = format!("auto-{}", set.id);
            let started = Box::pin(start(ctx, policy, &id, &set.id, &seen, &reason, report));
            if let Err(error) = cpu::metered(Step::Act, started).await {
                tracing::warn!(%error, "automatic rollout not started");
            }
        }
    }
    report.status = "stepped".into();
    Ok(())
}

//! The act step: one rollout's next step. Each `UpdateEnvironment` / `UpdateSoftwareSet` is made once per
//! rollout, ring and environment (business keys through the shared `perform_once`); the transition is saved
//! with the rollout's version only when every action of the step succeeded, then audited and announced once
//! per history entry. A crash anywhere repeats the step without repeating a call that was made.

use crate::machine::{Action, Next, RingObservation, Rollout, Status, Transition, next};
use autopilot_shared::effect::{CallError, Effect, Performed, announce, perform_once};
use autopilot_shared::error::{AutopilotError, sdk_error_message};
use autopilot_shared::ledger::LedgerError;
use autopilot_shared::ledger::audit::{AuditRecord, Outcome as AuditOutcome};
use autopilot_shared::ledger::idempotency::IdempotencyKey;
use autopilot_shared::ledger::state::{WorkItemListing, WorkItemWrite};
use autopilot_shared::policy::RolloutPolicy;
use autopilot_shared::runtime::classified;
use aws_sdk_workspacesthinclient::types::{SoftwareSetUpdateMode, SoftwareSetValidationStatus};
use chrono::Duration;
use serde::Serialize;

/// The work item kind of rollouts.
pub const KIND: &str = "ROLLOUT";
/// Work-item kind of a request answered by another rollout (`ROLLOUTREF#<request id>` → the rollout's id), so
/// that pause, resume and abort addressed to the request reach the rollout that covers it.
pub const ALIAS_KIND: &str = "ROLLOUTREF";
/// How long a finished rollout stays in the ledger.
pub const KEEP_FINISHED: Duration = Duration::days(400);

pub use autopilot_shared::effect::ActContext;

/// A stepped rollout is counted under the status it reached.
impl autopilot_shared::report::ReportItem for StepReport {
    fn result(&self) -> &str {
        self.status.as_str()
    }
}

/// What one step did to one rollout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    pub rollout: String,
    pub status: Status,
    pub actions: Vec<String>,
    pub transition: Option<String>,
    pub api_calls: u32,
}

/// Saves a rollout (open until final) and returns the new version.
pub async fn save(ctx: &ActContext<'_>, rollout: &Rollout, version: Option<u64>) -> Result<u64, LedgerError> {
    let open = !rollout.status.is_final();
    let expires = (!open).then_some(ctx.now + KEEP_FINISHED);
    ctx.ledger
        .put_work_item(
            WorkItemWrite {
                kind: KIND,
                id: &rollout.id,
                state: rollout,
                expected: version,
                listing: WorkItemListing::of(open, expires),
            },
            ctx.fence,
            ctx.now,
        )
        .await
}

/// The resource key a rollout's audit records are filed under.
pub fn audit_resource(rollout: &Rollout) -> String {
    rollout.resource.clone()
}

/// An audit record of `action` about `resource`, by this invocation.
pub fn audit(
    ctx: &ActContext<'_>,
    resource: String,
    action: &str,
    outcome: AuditOutcome,
    reason: String,
) -> AuditRecord {
    AuditRecord {
        at: ctx.now,
        function: ctx.function.to_owned(),
        resource,
        action: action.to_owned(),
        outcome,
        reason,
        correlation_id: ctx.correlation_id.to_owned(),
        details: serde_json::Value::Null,
    }
}

fn record(ctx: &ActContext<'_>, rollout: &Rollout, action: &str, reason: String) -> AuditRecord {
    AuditRecord {
        at: ctx.now,
        function: ctx.function.to_owned(),
        resource: audit_resource(rollout),
        action: action.to_owned(),
        outcome: AuditOutcome::Applied,
        reason,
        correlation_id: ctx.correlation_id.to_owned(),
        details: serde_json::json!({ "rollout": rollout.id, "softwareSet": rollout.target_set }),
    }
}

/// Publishes `detail_type` once per `key` (dry-run does not stop announcements: they describe the rollout's
/// own state, which dry-run also keeps).
pub async fn notify(
    ctx: &ActContext<'_>,
    resource: String,
    key: String,
    detail_type: &str,
    detail: serde_json::Value,
    reason: String,
) -> Result<Performed, LedgerError> {
    let audit = AuditRecord {
        at: ctx.now,
        function: ctx.function.to_owned(),
        resource,
        action: detail_type.to_owned(),
        outcome: AuditOutcome::Applied,
        reason,
        correlation_id: ctx.correlation_id.to_owned(),
        details: detail.clone(),
    };
    let effect = Effect {
        ledger: ctx.ledger,
        key: IdempotencyKey::new(ctx.function, key),
        payload: &detail,
        audit,
        dry_run: false,
        now: ctx.now,
        remaining: ctx.remaining,
        fence: ctx.fence,
    };
    perform_once(
        effect,
        async || announce(&ctx.aws.eventbridge, ctx.event_bus, detail_type, &detail).await.map_err(CallError::from),
        async || Ok(()),
    )
    .await
}

/// The outcome event of a transition.
pub fn event_name(from: Status, to: Status) -> &'static str {
    match to {
        Status::Applying if from == Status::Pending => "Rollout Started",
        Status::Applying => "Rollout Ring Advanced",
        Status::Baking => "Rollout Ring Updated",
        Status::Completed => "Rollout Completed",
        Status::Halted => "Rollout Halted",
        Status::RolledBack => "Rollout Rolled Back",
        Status::Aborted => "Rollout Abort Confirmed",
        Status::Pending => "Rollout Pending",
    }
}

async fn call(ctx: &ActContext<'_>, action: &Action) -> Result<(), CallError> {
    let failed = |e: String| CallError::Failed(e);
    match action {
        Action::SetDesired { environment, software_set } => ctx
            .aws
            .thinclient
            .update_environment()
            .id(environment)
            .desired_software_set_id(software_set)
            .software_set_update_mode(SoftwareSetUpdateMode::UseDesired)
            .send()
            .await
            .map(drop)
            .map_err(|e| failed(sdk_error_message(&e))),
        Action::Restore { environment, software_set, mode } => ctx
            .aws
            .thinclient
            .update_environment()
            .id(environment)
            .set_desired_software_set_id(software_set.clone())
            .software_set_update_mode(SoftwareSetUpdateMode::from(mode.as_str()))
            .send()
            .await
            .map(drop)
            .map_err(|e| failed(sdk_error_message(&e))),
        Action::Validate { software_set } => ctx
            .aws
            .thinclient
            .update_software_set()
            .id(software_set)
            .validation_status(SoftwareSetValidationStatus::Validated)
            .send()
            .await
            .map(drop)
            .map_err(|e| failed(sdk_error_message(&e))),
    }
}

fn action_key(rollout: &Rollout, action: &Action) -> (String, &'static str) {
    let ring = rollout.current;
    match action {
        Action::SetDesired { environment, .. } => {
            (format!("{}#ring-{ring}#set#{environment}", rollout.id), "UpdateEnvironment")
        }
        Action::Restore { environment, .. } => (format!("{}#restore#{environment}", rollout.id), "UpdateEnvironment"),
        Action::Validate { software_set } => (format!("{}#validate#{software_set}", rollout.id), "UpdateSoftwareSet"),
    }
}

/// Takes `rollout`'s next step: actions once each, then the transition.
pub async fn step(
    ctx: &ActContext<'_>,
    mut rollout: Rollout,
    version: u64,
    policy: &RolloutPolicy,
    observation: Option<&RingObservation>,
    previous_supported: &dyn Fn(&str) -> bool,
) -> Result<StepReport, AutopilotError> {
    let Next { actions, transition, ring, advance } =
        next(&rollout, &policy.rings, observation, policy.auto_rollback, previous_supported, ctx.now);
    let mut report = StepReport {
        rollout: rollout.id.clone(),
        status: rollout.status,
        actions: Vec::new(),
        transition: None,
        api_calls: 0,
    };
    let mut all_done = true;
    for action in &actions {
        let (key, operation) = action_key(&rollout, action);
        let audit = record(ctx, &rollout, operation, action.to_string());
        let effect = Effect {
            ledger: ctx.ledger,
            key: IdempotencyKey::new(ctx.function, key),
            payload: action,
            audit,
            dry_run: ctx.dry_run,
            now: ctx.now,
            remaining: ctx.remaining,
            fence: ctx.fence,
        };
        let performed =
            perform_once(effect, async || call(ctx, action).await, async || Ok(())).await.map_err(classified)?;
        report.api_calls += u32::from(performed.called());
        report.actions.push(format!("{operation} {}", performed.as_str()));
        all_done &= matches!(performed, Performed::Applied | Performed::DryRun | Performed::Duplicate);
    }
    if !all_done {
        // The transition waits for every action; the next tick repeats what is left (made calls are not repeated).
        return Err(AutopilotError::retryable(format!(
            "rollout {}: an action failed; {}",
            rollout.id,
            report.actions.join(", ")
        )));
    }
    let changed = ring.as_ref() != rollout.rings.get(rollout.current) || transition.is_some() || advance;
    if let Some(progress) = ring
        && let Some(slot) = rollout.rings.get_mut(rollout.current)
    {
        *slot = progress;
    }
    if actions.iter().any(|a| matches!(a, Action::Validate { .. })) {
        rollout.validated = true;
    }
    if advance {
        rollout.current += 1;
        if let Some(next_ring) = rollout.rings.get_mut(rollout.current) {
            next_ring.applied_at = Some(ctx.now);
        }
    }
    let mut announcement = None;
    if let Some((to, reason)) = transition {
        let from = rollout.status;
        rollout.history.push(Transition {
            at: ctx.now,
            ring: rollout.rings.get(rollout.current).map(|r| r.name.clone()),
            from,
            to,
            reason: reason.clone(),
        });
        rollout.status = to;
        report.transition = Some(reason.clone());
        announcement = Some((from, to, reason, rollout.history.len()));
    }
    if let Some((from, to, reason, index)) = announcement {
        let detail = serde_json::json!({
            "rollout": rollout.id,
            "softwareSet": rollout.target_set,
            "status": to,
            "ring": rollout.rings.get(rollout.current).map(|r| r.name.clone()),
            "figures": rollout.rings.get(rollout.current).and_then(|r| r.figures),
            "reason": reason,
        });
        let name = event_name(from, to);
        notify(ctx, audit_resource(&rollout), format!("{}#transition-{index}", rollout.id), name, detail, reason)
            .await
            .map_err(classified)?;
    }
    // Announced before saved: a crash in between repeats the same transition (same index), whose announcement
    // is then a duplicate; saved before announced could lose it.
    if changed {
        save(ctx, &rollout, Some(version)).await.map_err(classified)?;
    }
    report.status = rollout.status;
    Ok(report)
}

//! The act step: one rollout's next step. Each `UpdateEnvironment` / `UpdateSoftwareSet` is made once per
//! rollout, ring and environment (business keys through the shared `perform_once`); the transition is saved
//! with the rollout's version only when every action of the step succeeded, then audited and announced once
//! per history entry. A crash anywhere repeats the step without repeating a call that was made.

use crate::machine::{
    Action, Announcement, KEEP_FINISHED, KIND, MAX_FAILED_STEPS, Next, RingObservation, Rollout, Status, Transition,
    next,
};
use crate::observe::EnvironmentView;
use autopilot_shared::effect::{CallError, Effect, Performed, announce, perform_once};
use autopilot_shared::error::{AutopilotError, ObserveError};
use autopilot_shared::ledger::LedgerError;
use autopilot_shared::ledger::audit::{AuditRecord, Outcome as AuditOutcome};
use autopilot_shared::ledger::idempotency::IdempotencyKey;
use autopilot_shared::ledger::state::{WorkItemListing, WorkItemWrite};
use autopilot_shared::policy::RolloutPolicy;
use autopilot_shared::resource::{ResourceKind, ResourceRef};
use autopilot_shared::runtime::classified;
use aws_sdk_workspacesthinclient::types::{SoftwareSetUpdateMode, SoftwareSetValidationStatus};
use serde::Serialize;
use std::collections::BTreeMap;

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

/// What the tick saw of a rollout's current ring.
#[derive(Debug, Clone, Copy)]
pub enum Look<'a> {
    /// Observed; `None` while there is nothing to judge (paused, baking, final).
    Seen(Option<&'a RingObservation>),
    /// Its devices could not be read: a failed look (the rollout halts after [`MAX_FAILED_STEPS`] in a row), or
    /// a throttled one, only waited out.
    Unread(&'a ObserveError),
}

/// Saves a rollout (open until final) and returns the new version.
pub async fn save(ctx: &ActContext<'_>, rollout: &Rollout, version: Option<u64>) -> Result<u64, LedgerError> {
    let open = !rollout.status.is_final() || !rollout.unannounced.is_empty();
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

/// The resource key of one of `rollout`'s environments (same account and region), which its `UpdateEnvironment`
/// records are filed under: one record per environment, found by the environment's key.
fn environment_key(rollout: &Rollout, environment: &str) -> String {
    ResourceRef::from_key(&rollout.resource)
        .and_then(|r| ResourceRef::new(r.account(), r.region(), ResourceKind::Environment, environment))
        .map_or_else(|_| rollout.resource.clone(), |r| r.key())
}

/// The record of `action`: about the environment it changes (the rollout for a software set's validation), with
/// the rollout and its set in the details.
fn record(ctx: &ActContext<'_>, rollout: &Rollout, action: &Action, operation: &str) -> AuditRecord {
    let resource = match action {
        Action::SetDesired { environment, .. } | Action::Restore { environment, .. } => {
            environment_key(rollout, environment)
        }
        Action::Validate { .. } => audit_resource(rollout),
    };
    AuditRecord {
        at: ctx.now,
        function: ctx.function.to_owned(),
        resource,
        action: operation.to_owned(),
        outcome: AuditOutcome::Applied,
        reason: action.to_string(),
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
        recorded_failure: None,
    };
    perform_once(
        effect,
        async || announce(&ctx.aws.eventbridge, ctx.event_bus, detail_type, &detail).await.map_err(CallError::from),
        async || Ok(()),
    )
    .await
}

/// Sends `announcement` once (its key), audited.
async fn announce_once(
    ctx: &ActContext<'_>,
    rollout: &Rollout,
    announcement: &Announcement,
) -> Result<Performed, AutopilotError> {
    let Announcement { key, detail_type, detail, reason } = announcement.clone();
    notify(ctx, audit_resource(rollout), key, &detail_type, detail, reason).await.map_err(classified)
}

/// The outcome event of a transition (none for a rollout's creation: it is pending only until its first step,
/// which starts it or is tried again; a set waiting for approval is announced by `Software Set Available`).
pub fn event_name(from: Status, to: Status) -> Option<&'static str> {
    match to {
        Status::Applying if from == Status::Pending => Some("Rollout Started"),
        Status::Applying => Some("Rollout Ring Advanced"),
        Status::Baking => Some("Rollout Ring Updated"),
        Status::Completed => Some("Rollout Completed"),
        Status::Halted => Some("Rollout Halted"),
        Status::RolledBack => Some("Rollout Rolled Back"),
        Status::Aborted => Some("Rollout Abort Confirmed"),
        Status::Pending => None,
    }
}

async fn call(ctx: &ActContext<'_>, action: &Action) -> Result<(), CallError> {
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
            .map_err(|e| CallError::from_sdk(&e, &[])),
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
            .map_err(|e| CallError::from_sdk(&e, &[])),
        Action::Validate { software_set } => ctx
            .aws
            .thinclient
            .update_software_set()
            .id(software_set)
            .validation_status(SoftwareSetValidationStatus::Validated)
            .send()
            .await
            .map(drop)
            .map_err(|e| CallError::from_sdk(&e, &[])),
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

/// The environments a rollout may no longer touch: those its rings hold whose tags now keep the roller's hands
/// off them (`autopilot/skip`, an override `hold`), and why. Environments of rings not applied yet leave their
/// ring (their devices no longer count in its gate); none is set or restored.
fn hold_tagged(rollout: &mut Rollout, hands_off: &dyn Fn(&str) -> Option<String>) -> Vec<(String, String, String)> {
    let mut held = Vec::new();
    let unapplied = if rollout.status == Status::Pending { 0 } else { rollout.current + 1 };
    for (index, ring) in rollout.rings.iter_mut().enumerate() {
        let applied = index < unapplied && (index < rollout.current || ring.applied_at.is_some());
        for environment in &ring.environments {
            if let Some(reason) = hands_off(&environment.id) {
                held.push((environment.id.clone(), ring.name.clone(), reason));
            }
        }
        if !applied {
            ring.environments.retain(|e| hands_off(&e.id).is_none());
        }
    }
    held
}

/// What a step knows of the estate besides its ring's observation.
pub struct Estate<'a> {
    /// Whether a software set is still supported (a rollback restores none that is not).
    pub supported: &'a dyn Fn(&str) -> bool,
    /// Why an environment's tags keep the roller off it, if they do.
    pub hands_off: &'a dyn Fn(&str) -> Option<String>,
    /// The environments as this invocation saw them, by id.
    pub environments: &'a BTreeMap<String, EnvironmentView>,
}

/// Takes `rollout`'s next step: actions once each, then the transition. `hands_off` says why an environment's
/// tags keep the roller from touching it, if they do: it leaves the rings not applied yet, and is neither set
/// nor restored (each such environment recorded as held once per rollout).
pub async fn step(
    ctx: &ActContext<'_>,
    mut rollout: Rollout,
    version: u64,
    policy: &RolloutPolicy,
    look: Look<'_>,
    estate: &Estate<'_>,
) -> Result<StepReport, AutopilotError> {
    let (previous_supported, hands_off) = (estate.supported, estate.hands_off);
    let before = rollout.rings.clone();
    let held = hold_tagged(&mut rollout, hands_off);
    let pruned = rollout.rings != before;
    let Next { mut actions, mut transition, mut ring, mut advance } = match look {
        Look::Seen(observation) => {
            next(&rollout, &policy.rings, observation, policy.auto_rollback, previous_supported, ctx.now)
        }
        Look::Unread(_) => Next::wait(),
    };
    for (environment, ring_name, reason) in &held {
        let touched = |action: &Action| match action {
            Action::SetDesired { environment: e, .. } | Action::Restore { environment: e, .. } => e == environment,
            Action::Validate { .. } => false,
        };
        let skipped = actions.iter().any(touched);
        actions.retain(|action| !touched(action));
        let left_out = before.iter().any(|r| r.environments.iter().any(|e| &e.id == environment))
            && !rollout.rings.iter().any(|r| r.environments.iter().any(|e| &e.id == environment));
        if !(skipped || left_out) {
            continue;
        }
        let resource = environment_key(&rollout, environment);
        let reason = format!("{reason}: not touched by rollout {} (ring {ring_name})", rollout.id);
        // Written when the environment leaves the rollout or an action on it is dropped: once per rollout (a step
        // that fails after it and is repeated may write it again, never not at all).
        let record = audit(ctx, resource, "Hold", AuditOutcome::Skipped, reason);
        ctx.ledger.append_audit(&record).await.map_err(classified)?;
    }
    let mut report = StepReport {
        rollout: rollout.id.clone(),
        status: rollout.status,
        actions: Vec::new(),
        transition: None,
        api_calls: 0,
    };
    let mut all_done = true;
    let mut failed = None;
    if let Look::Unread(error) = look {
        tracing::warn!(rollout = %rollout.id, %error, "the ring's devices were not read");
        all_done = false;
        report.transition = Some(format!("{error}: waiting for the next look"));
        failed = (!error.throttled).then(|| error.to_string());
    }
    for action in &actions {
        let (key, operation) = action_key(&rollout, action);
        let audit = record(ctx, &rollout, action, operation);
        let effect = Effect {
            ledger: ctx.ledger,
            key: IdempotencyKey::new(ctx.function, key),
            payload: action,
            audit,
            dry_run: ctx.dry_run,
            now: ctx.now,
            remaining: ctx.remaining,
            fence: ctx.fence,
            recorded_failure: None,
        };
        let performed =
            perform_once(effect, async || call(ctx, action).await, async || Ok(())).await.map_err(classified)?;
        report.api_calls += u32::from(performed.called());
        report.actions.push(format!("{operation} {}", performed.as_str()));
        all_done &= matches!(performed, Performed::Applied | Performed::Duplicate);
        if let Performed::Failed(error) = performed {
            failed = Some(format!("{operation} failed: {error}"));
        }
    }
    let failures_before = rollout.failed_steps;
    if ctx.dry_run {
        // Dry-run switched on mid-rollout: the step's would-acts are recorded (once) and the rollout waits where it
        // is — no ring marked applied that was not, no ring advanced — until it is off. What needs no action still
        // happens: a halt or completion is announced, environments left out are recorded once, and transitions
        // EventBridge did not take are sent again.
        let ends =
            actions.is_empty() && !advance && matches!(transition, Some((Status::Halted | Status::Completed, _)));
        if !ends {
            let moves = transition.is_some() || advance || ring.as_ref() != rollout.rings.get(rollout.current);
            if moves {
                report.transition = Some("dry-run: the rollout waits here until dry-run is off".into());
            }
            (transition, advance) = (None, false);
            ring = rollout.rings.get(rollout.current).cloned();
        }
    } else if !all_done {
        // The transition waits for every action; the next tick repeats what is left (made calls are not repeated),
        // and the other rollouts and notices of the tick go on. A deferral (throttled, the environment busy) is
        // only waited out; failures halt the rollout once they have failed MAX_FAILED_STEPS looks in a row.
        let Some(error) = failed else { return Ok(report) };
        rollout.failed_steps += 1;
        if rollout.failed_steps < MAX_FAILED_STEPS {
            save(ctx, &rollout, Some(version)).await.map_err(classified)?;
            report.transition = Some(format!("{error} ({} of {MAX_FAILED_STEPS} in a row)", rollout.failed_steps));
            return Ok(report);
        }
        let reason = format!("{error} ({MAX_FAILED_STEPS} times in a row): halted for a person to look");
        (transition, ring, advance) = (Some((Status::Halted, reason)), None, false);
    } else {
        rollout.failed_steps = 0;
    }
    let unannounced = rollout.unannounced.len();
    let mut unsent = Vec::new();
    for earlier in std::mem::take(&mut rollout.unannounced) {
        if !announce_once(ctx, &rollout, &earlier).await?.done() {
            unsent.push(earlier);
        }
    }
    rollout.unannounced = unsent;
    let changed = pruned
        || unannounced != rollout.unannounced.len()
        || ring.as_ref() != rollout.rings.get(rollout.current)
        || transition.is_some()
        || advance
        || failures_before != rollout.failed_steps;
    if let Some(progress) = ring
        && let Some(slot) = rollout.rings.get_mut(rollout.current)
    {
        *slot = progress;
    }
    if actions.iter().any(|a| matches!(a, Action::Validate { .. })) {
        rollout.validated = true;
    }
    // The ring the gate judged: its figures go with the announcement, also when the next ring is applied.
    let judged = rollout.current;
    if advance {
        rollout.current += 1;
        if let Some(next_ring) = rollout.rings.get_mut(rollout.current) {
            next_ring.applied(ctx.now);
            // What a rollback would put back is what the environments ran when their ring was applied (a person
            // may have changed them since the request), as seen before this step's calls.
            for environment in &mut next_ring.environments {
                if let Some(seen) = estate.environments.get(&environment.id)
                    && seen.desired_software_set_id.as_deref() != Some(rollout.target_set.as_str())
                {
                    environment.previous_desired = seen.desired_software_set_id.clone();
                    environment.previous_mode = seen.update_mode.clone();
                }
            }
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
    if let Some((from, to, reason, index)) = announcement
        && let Some(name) = event_name(from, to)
    {
        let detail = serde_json::json!({
            "rollout": rollout.id,
            "softwareSet": rollout.target_set,
            "status": to,
            "ring": rollout.rings.get(rollout.current).map(|r| r.name.clone()),
            "figures": rollout.rings.get(judged).and_then(|r| r.figures),
            "judgedRing": rollout.rings.get(judged).map(|r| r.name.clone()),
            "reason": reason,
        });
        let key = format!("{}#transition-{index}", rollout.id);
        let announcement = Announcement { key, detail_type: name.to_owned(), detail, reason };
        if !announce_once(ctx, &rollout, &announcement).await?.done() {
            // Not sent (EventBridge failed): the transition is saved, its announcement sent at the next step.
            rollout.unannounced.push(announcement);
        }
    }
    // Announced before saved: a crash in between repeats the same transition (same index), whose announcement
    // is then a duplicate; saved before announced could lose it.
    if changed {
        save(ctx, &rollout, Some(version)).await.map_err(classified)?;
    }
    report.status = rollout.status;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{EnvironmentRecord, RingProgress};
    use chrono::{TimeZone, Utc};

    fn ring(name: &str, environments: &[&str], applied: bool) -> RingProgress {
        RingProgress {
            name: name.into(),
            environments: environments
                .iter()
                .map(|id| EnvironmentRecord {
                    id: (*id).into(),
                    previous_desired: Some("100".into()),
                    previous_mode: "USE_DESIRED".into(),
                    window: Default::default(),
                })
                .collect(),
            applied_at: applied.then(|| Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()),
            opens_at: None,
            updated_at: None,
            passed_at: None,
            figures: None,
        }
    }

    #[test]
    fn environments_tagged_since_the_start_leave_the_rings_not_applied_yet() {
        let mut rollout = Rollout {
            id: "r1".into(),
            resource: "thinclient#123456789012#eu-central-1#rollout#r1".into(),
            target_set: "101".into(),
            target_supported_until: None,
            requested_at: Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap(),
            status: Status::Baking,
            paused: false,
            paused_at: None,
            current: 0,
            rings: vec![ring("canary", &["a", "b"], true), ring("broad", &["c", "d"], false)],
            validated: false,
            history: Vec::new(),
            commands: Default::default(),
            failed_steps: 0,
            unannounced: Vec::new(),
        };
        let hands_off = |id: &str| ["b", "d"].contains(&id).then(|| "tagged autopilot/skip".to_owned());
        let held = hold_tagged(&mut rollout, &hands_off);
        // the applied ring keeps what it set (its devices still count in its gate); the next ring loses d
        let ids = |r: &Rollout, i: usize| r.rings[i].environments.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        assert_eq!((ids(&rollout, 0), ids(&rollout, 1)), (vec!["a".to_owned(), "b".to_owned()], vec!["c".to_owned()]));
        let named: Vec<(&str, &str)> = held.iter().map(|(e, r, _)| (e.as_str(), r.as_str())).collect();
        assert_eq!(named, [("b", "canary"), ("d", "broad")]);
        // a pending rollout has applied nothing: every ring loses its held environments
        rollout.status = Status::Pending;
        rollout.rings = vec![ring("canary", &["a", "b"], false), ring("broad", &["c", "d"], false)];
        hold_tagged(&mut rollout, &hands_off);
        assert_eq!((ids(&rollout, 0), ids(&rollout, 1)), (vec!["a".to_owned()], vec!["c".to_owned()]));
        assert_eq!(environment_key(&rollout, "a"), "thinclient#123456789012#eu-central-1#environment#a");
    }
}

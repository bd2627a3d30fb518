//! `Rollout Paused` / `Resumed` / `Aborted`. Observe: the rollout (or the one that answered the request the
//! command names). Decide (pure): a redelivery answers as the first delivery did; a finished rollout cannot be
//! controlled; otherwise the changed rollout and its confirmation event. Act: announce once, save.

use crate::act::{self, ActContext, StepReport, notify};
use crate::machine::{self, Rollout, Status, Transition};
use autopilot_shared::error::AutopilotError;
use autopilot_shared::events::RolloutControl;
use autopilot_shared::invocation::Worked;
use autopilot_shared::ledger::Ledger;
use autopilot_shared::ledger::state::Versioned;
use autopilot_shared::report::Status as Answer;
use autopilot_shared::runtime::classified;
use chrono::{DateTime, Utc};

/// What a rollout command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    Abort,
}

impl Control {
    /// The invocation's answer once the command is applied.
    pub fn answer(self) -> Answer {
        match self {
            Control::Pause => Answer::Paused,
            Control::Resume => Answer::Resumed,
            Control::Abort => Answer::Aborted,
        }
    }
}

/// What to do with a command.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Applied already (EventBridge delivers at least once): answer as the first delivery did.
    Redelivered,
    /// Nothing to change (a pause of a paused rollout, a resume of a running one): answered, not announced.
    AlreadySo,
    /// The rollout is finished: it can no longer be controlled.
    Finished(String),
    /// Announce `event` with `reason`, then save `rollout`.
    Apply { rollout: Box<Rollout>, event: &'static str, reason: String },
}

/// Decides a command on `rollout` (pure). `command_id` is the command's event id.
pub fn decide(
    mut rollout: Rollout,
    what: Control,
    command_id: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Decision {
    if rollout.commands.contains(command_id) {
        return Decision::Redelivered;
    }
    if rollout.status.is_final() {
        return Decision::Finished(format!(
            "rollout {} is {}: it can no longer be paused, resumed or aborted",
            rollout.id,
            rollout.status.as_str()
        ));
    }
    let reason = reason.map_or_else(|| "operator command".to_owned(), str::to_owned);
    let event = match what {
        Control::Pause | Control::Resume if rollout.paused == (what == Control::Pause) => {
            return Decision::AlreadySo;
        }
        Control::Pause => {
            rollout.paused = true;
            rollout.paused_at = Some(now);
            "Rollout Pause Confirmed"
        }
        Control::Resume => {
            rollout.paused = false;
            // The pause does not count against the ring: its deadline and bake move on by as long.
            if let Some(since) = rollout.paused_at.take()
                && let Some(ring) = rollout.rings.get_mut(rollout.current)
            {
                let paused = now - since;
                for clock in [&mut ring.applied_at, &mut ring.opens_at, &mut ring.updated_at] {
                    *clock = clock.map(|at| at + paused);
                }
            }
            "Rollout Resume Confirmed"
        }
        Control::Abort => {
            rollout.history.push(Transition {
                at: now,
                ring: rollout.rings.get(rollout.current).map(|r| r.name.clone()),
                from: rollout.status,
                to: Status::Aborted,
                reason: reason.clone(),
            });
            rollout.status = Status::Aborted;
            "Rollout Abort Confirmed"
        }
    };
    rollout.commands.insert(command_id.to_owned());
    Decision::Apply { rollout: Box::new(rollout), event, reason }
}

/// The rollout a command names: by id, or through the request a covering rollout answered.
pub async fn observe(ledger: &Ledger, rollout_id: &str) -> Result<Option<Versioned<Rollout>>, AutopilotError> {
    let get = async |id: &str| ledger.get_work_item::<Rollout>(machine::KIND, id).await.map_err(classified);
    if let Some(found) = get(rollout_id).await? {
        return Ok(Some(found));
    }
    match ledger.get_work_item::<String>(machine::ALIAS_KIND, rollout_id).await.map_err(classified)? {
        Some(alias) => get(&alias.state).await,
        None => Ok(None),
    }
}

/// Observes, decides and carries out a command.
pub async fn control(
    ctx: &ActContext<'_>,
    command: &RolloutControl,
    what: Control,
    worked: &mut Worked<StepReport>,
) -> Result<(), AutopilotError> {
    let Some(stored) = observe(ctx.ledger, &command.rollout_id).await? else {
        return Err(AutopilotError::invalid_input(format!("detail.rolloutId: no rollout {}", command.rollout_id)));
    };
    match decide(stored.state, what, ctx.correlation_id, command.reason.as_deref(), ctx.now) {
        Decision::Redelivered | Decision::AlreadySo => {}
        Decision::Finished(reason) => return Err(AutopilotError::non_retryable(reason)),
        Decision::Apply { rollout, event, reason } => {
            let detail =
                serde_json::json!({ "rollout": rollout.id, "softwareSet": rollout.target_set, "reason": reason });
            let key = format!("{}#{}", rollout.id, ctx.correlation_id);
            notify(ctx, act::audit_resource(&rollout), key, event, detail, reason).await.map_err(classified)?;
            act::save(ctx, &rollout, Some(stored.version)).await.map_err(classified)?;
        }
    }
    worked.status = what.answer();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{EnvironmentRecord, RingProgress};
    use chrono::{Duration, TimeZone};

    fn t(hours: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap() + Duration::hours(hours)
    }

    fn applying() -> Rollout {
        let environment = EnvironmentRecord {
            id: "e1".into(),
            previous_desired: None,
            previous_mode: "USE_DESIRED".into(),
            window: Default::default(),
        };
        let ring = RingProgress {
            name: "canary".into(),
            environments: vec![environment],
            applied_at: Some(t(0)),
            opens_at: Some(t(1)),
            updated_at: None,
            passed_at: None,
            figures: None,
        };
        Rollout {
            id: "r1".into(),
            resource: "thinclient#123456789012#eu-central-1#rollout#r1".into(),
            target_set: "101".into(),
            target_supported_until: None,
            requested_at: t(0),
            status: Status::Applying,
            paused: false,
            paused_at: None,
            current: 0,
            rings: vec![ring],
            validated: false,
            history: Vec::new(),
            commands: Default::default(),
            failed_steps: 0,
            unannounced: Vec::new(),
        }
    }

    #[test]
    fn a_pause_stops_the_rings_clocks_and_a_repeated_command_changes_nothing() {
        let Decision::Apply { rollout: paused, .. } = decide(applying(), Control::Pause, "c1", None, t(2)) else {
            panic!("not paused")
        };
        assert_eq!((paused.paused, paused.paused_at), (true, Some(t(2))));
        // a second pause, and a resume of a running rollout, are answered without an announcement
        assert_eq!(decide((*paused).clone(), Control::Pause, "c2", None, t(3)), Decision::AlreadySo);
        assert_eq!(decide(applying(), Control::Resume, "c3", None, t(3)), Decision::AlreadySo);
        // resumed ten hours later: the gate's deadline and the bake count from ten hours later
        let Decision::Apply { rollout: resumed, .. } = decide(*paused, Control::Resume, "c4", None, t(12)) else {
            panic!("not resumed")
        };
        assert_eq!((resumed.paused, resumed.paused_at), (false, None));
        assert_eq!((resumed.rings[0].applied_at, resumed.rings[0].opens_at), (Some(t(10)), Some(t(11))));
    }
}

//! `Rollout Paused` / `Resumed` / `Aborted`. Observe: the rollout (or the one that answered the request the
//! command names). Decide (pure): a redelivery answers as the first delivery did; a finished rollout cannot be
//! controlled; otherwise the changed rollout and its confirmation event. Act: announce once, save.

use crate::act::{self, ActContext, StepReport, notify};
use crate::machine::{Rollout, Status, Transition};
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
    let get = async |id: &str| ledger.get_work_item::<Rollout>(act::KIND, id).await.map_err(classified);
    if let Some(found) = get(rollout_id).await? {
        return Ok(Some(found));
    }
    match ledger.get_work_item::<String>(act::ALIAS_KIND, rollout_id).await.map_err(classified)? {
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
        Decision::Redelivered => {}
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

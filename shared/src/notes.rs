//! Decisions recorded when they change, not every tick. A resource left alone on purpose (a skip tag, an
//! override, another owner, ambiguous rules, a manual change honoured) is *held*; in dry-run, a resource the
//! function would act on has a *would-act*. Either is a line an operator must see in the audit trail, once: the
//! resource's memory keeps a [`Note`] of what was last recorded, and a new record is written only when the note
//! changes (first seen, reason or planned action changed, hold ended). Repeats are counted in the invocation's
//! answer and metrics, not written.

use crate::ledger::audit::{AuditRecord, Outcome};
use serde::{Deserialize, Serialize};

/// What was last recorded about a resource without an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Note {
    /// Left alone on purpose, and why.
    Held { reason: String },
    /// Dry-run: the action the function would make (operation and parameters).
    WouldAct { action: String },
}

/// A failed action recorded in the audit, kept in the resource's memory until the action succeeds: the same
/// error again is not recorded or announced again ([`crate::effect::Effect::recorded_failure`]). Its announcement
/// is sent again at each tick until EventBridge takes it ([`RecordedFailure::to_announce`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedFailure {
    pub action: String,
    pub error: String,
    /// Recorded, but its announcement was not taken yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unannounced: bool,
}

impl RecordedFailure {
    /// The error recorded for `action`, if the last recorded failure is of it.
    pub fn of<'a>(recorded: Option<&'a RecordedFailure>, action: &str) -> Option<&'a str> {
        recorded.filter(|f| f.action == action).map(|f| f.error.as_str())
    }

    /// Whether a failure of `action` with `error` is to be announced: it is new (not the one recorded), or it is
    /// the one recorded and its announcement was not taken.
    pub fn to_announce(recorded: Option<&RecordedFailure>, action: &str, error: &str) -> bool {
        match recorded {
            Some(known) if known.action == action && known.error == error => known.unannounced,
            _ => true,
        }
    }
}

/// The audit action of a hold's records.
pub const HOLD: &str = "Hold";

/// What to record for a resource whose note goes from `before` to `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<'a> {
    /// Nothing new: the same hold or the same would-act as last recorded (or none).
    Unchanged,
    /// A hold began, or its reason changed: record it.
    Held { reason: &'a str },
    /// A hold ended (the resource is decided on again): record that, with the hold that ended.
    Released { was: &'a str },
    /// A would-act appeared or changed: record it (a hold that ended with it is implied by the record).
    WouldAct,
}

impl<'a> Change<'a> {
    /// The change between what was last recorded and what this decision notes (pure).
    pub fn between(before: Option<&'a Note>, now: Option<&'a Note>) -> Self {
        match (before, now) {
            (before, now) if before == now => Change::Unchanged,
            (_, Some(Note::Held { reason })) => Change::Held { reason },
            (_, Some(Note::WouldAct { .. })) => Change::WouldAct,
            (Some(Note::Held { reason }), None) => Change::Released { was: reason },
            (Some(Note::WouldAct { .. }), None) | (None, None) => Change::Unchanged,
        }
    }

    /// The audit record of a hold that began or ended, from a template record of the decision (its time,
    /// function, resource, correlation id and details); `None` for the other changes.
    pub fn record(&self, mut template: AuditRecord) -> Option<AuditRecord> {
        template.action = HOLD.to_owned();
        match self {
            Change::Held { reason } => {
                template.outcome = Outcome::Skipped;
                template.reason = (*reason).to_owned();
            }
            Change::Released { was } => {
                template.outcome = Outcome::Released;
                template.reason = format!("no longer held (was: {was})");
            }
            Change::Unchanged | Change::WouldAct => return None,
        }
        Some(template)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(reason: &str) -> Note {
        Note::Held { reason: reason.into() }
    }

    fn would(action: &str) -> Note {
        Note::WouldAct { action: action.into() }
    }

    #[test]
    fn a_note_is_recorded_when_it_begins_changes_or_ends_and_not_while_it_lasts() {
        let (skip, hold, set) = (held("tagged autopilot/skip"), held("override hold until X"), would("UpdateFleet 4"));
        assert_eq!(Change::between(None, Some(&skip)), Change::Held { reason: "tagged autopilot/skip" });
        assert_eq!(Change::between(Some(&skip), Some(&skip)), Change::Unchanged);
        assert_eq!(Change::between(Some(&skip), Some(&hold)), Change::Held { reason: "override hold until X" });
        assert_eq!(Change::between(Some(&hold), None), Change::Released { was: "override hold until X" });
        assert_eq!(Change::between(None, None), Change::Unchanged);
        assert_eq!(Change::between(None, Some(&set)), Change::WouldAct);
        assert_eq!(Change::between(Some(&set), Some(&set)), Change::Unchanged);
        assert_eq!(Change::between(Some(&set), Some(&would("UpdateFleet 6"))), Change::WouldAct);
        assert_eq!(Change::between(Some(&set), None), Change::Unchanged, "a would-act that ends is not a record");
        assert_eq!(Change::between(Some(&hold), Some(&set)), Change::WouldAct);
    }

    #[test]
    fn a_failure_is_announced_when_new_and_again_until_its_announcement_is_taken() {
        let recorded =
            |unannounced| RecordedFailure { action: "UpdateFleet".into(), error: "Throttled".into(), unannounced };
        assert!(RecordedFailure::to_announce(None, "UpdateFleet", "Throttled"));
        assert!(!RecordedFailure::to_announce(Some(&recorded(false)), "UpdateFleet", "Throttled"));
        assert!(RecordedFailure::to_announce(Some(&recorded(true)), "UpdateFleet", "Throttled"));
        assert!(RecordedFailure::to_announce(Some(&recorded(false)), "UpdateFleet", "LimitExceeded"));
        assert!(RecordedFailure::to_announce(Some(&recorded(false)), "StartFleet", "Throttled"));
        let stored: RecordedFailure = serde_json::from_str(r#"{"action":"UpdateFleet","error":"Throttled"}"#).unwrap();
        assert_eq!(stored, recorded(false), "a failure recorded before the field was announced");
        assert_eq!(serde_json::to_string(&recorded(false)).unwrap(), r#"{"action":"UpdateFleet","error":"Throttled"}"#);
    }
}

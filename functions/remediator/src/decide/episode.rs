//! An episode: one problem's memory, carried from sweep to sweep (and, within `reboot_window`, from one
//! relapse to the next).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One problem's memory (a ledger work item, open while the problem lasts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Episode {
    /// When the problem was first seen (or requested): part of every action's idempotency key.
    pub since: DateTime<Utc>,
    /// The state last seen.
    pub state: String,
    /// Start of the current unhealthy stretch; reset by each action of ours (the wait starts again).
    #[serde(default)]
    pub unhealthy_since: Option<DateTime<Utc>>,
    #[serde(default)]
    pub reboots: Vec<DateTime<Utc>>,
    #[serde(default)]
    pub rebuilt_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_action_at: Option<DateTime<Utc>>,
    /// Consecutive attempts of the current action that failed, or that AWS refused for the WorkSpace's state.
    #[serde(default)]
    pub failures: u32,
    /// Escalation causes already sent in this episode.
    #[serde(default)]
    pub escalated: BTreeSet<String>,
    /// The last skip/deferral reason recorded (each is audited once).
    #[serde(default)]
    pub noted: Option<String>,
    /// A person put the WorkSpace into admin maintenance (CloudTrail): hands off until they take it out.
    #[serde(default)]
    pub hands_off_since: Option<DateTime<Utc>>,
    /// The event id of a `Remediation Requested` for this WorkSpace (the wait is skipped once).
    #[serde(default)]
    pub requested_by: Option<String>,
    /// A person's request starts a new round: reboots before this do not count, earlier escalations of the
    /// round are forgotten.
    #[serde(default)]
    pub round_since: Option<DateTime<Utc>>,
    /// Set when the episode is closed (the item is kept a while; the next problem starts a new episode in it).
    #[serde(default)]
    pub closed: bool,
}

impl Episode {
    pub(super) fn new(since: DateTime<Utc>, state: &str) -> Self {
        Episode { since, state: state.to_owned(), ..Episode::default() }
    }

    /// Escalated and held: a person has it, nothing is done to it until it recovers or a person asks again.
    pub fn left_to_a_person(&self) -> bool {
        ["unremedied", "action-failing", "error-state"].iter().any(|cause| self.escalated.contains(*cause))
    }

    /// A new episode after `previous` (closed): while the previous one's reboots or rebuild are within `window`,
    /// they count toward `max_reboots`, its last action toward the cooldown and its escalations stand — a
    /// WorkSpace that flaps between AVAILABLE and UNHEALTHY is not rebooted for ever, nor escalated at every flap.
    pub fn following(previous: Option<&Episode>, since: DateTime<Utc>, state: &str, window: Duration) -> Self {
        let mut episode = Episode::new(since, state);
        let Some(previous) = previous else { return episode };
        let recent = |at: &DateTime<Utc>| since - *at < window;
        episode.reboots = previous.reboots.iter().copied().filter(recent).collect();
        episode.rebuilt_at = previous.rebuilt_at.filter(recent);
        if !episode.reboots.is_empty() || episode.rebuilt_at.is_some() {
            episode.last_action_at = previous.last_action_at;
            episode.escalated = previous.escalated.clone();
        }
        episode
    }
}

//! The rollout state machine, pure: from a rollout (the ledger's work item), what was observed of its current
//! ring, the policy and `now` to the next transition and the actions it needs. No IO, no clock.
//!
//! PENDING → APPLYING(ring) → BAKING(ring) → (gate passed) APPLYING(ring + 1) … → COMPLETED; a failed gate →
//! HALTED, or with `auto_rollback` → ROLLED_BACK after the ring's environments are put back on their previous
//! set (only where that set is still supported); `Rollout Aborted` → ABORTED; paused rollouts do not move.
//! The bake clock starts when the ring's devices have updated (its gate first passes), not when we asked.

use crate::gate::{GateFigures, Verdict, evaluate};
use crate::window::UpdateWindow;
use autopilot_shared::policy::Ring;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Where a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Pending,
    Applying,
    Baking,
    Completed,
    Halted,
    RolledBack,
    Aborted,
}

impl Status {
    /// The word, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Applying => "APPLYING",
            Status::Baking => "BAKING",
            Status::Completed => "COMPLETED",
            Status::Halted => "HALTED",
            Status::RolledBack => "ROLLED_BACK",
            Status::Aborted => "ABORTED",
        }
    }

    /// No transition leaves these.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Completed | Status::Halted | Status::RolledBack | Status::Aborted)
    }
}

/// An environment of a ring and what it ran before the rollout touched it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentRecord {
    pub id: String,
    pub previous_desired: Option<String>,
    /// USE_DESIRED or USE_LATEST.
    pub previous_mode: String,
    /// When its devices can take a new set.
    #[serde(default)]
    pub window: UpdateWindow,
}

/// One ring's progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RingProgress {
    pub name: String,
    pub environments: Vec<EnvironmentRecord>,
    pub applied_at: Option<DateTime<Utc>>,
    /// When the last of its environments' maintenance windows opened after it was applied: its gate's deadline
    /// counts from then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opens_at: Option<DateTime<Utc>>,
    /// When the gate first passed: the devices have updated, the bake starts.
    pub updated_at: Option<DateTime<Utc>>,
    pub passed_at: Option<DateTime<Utc>>,
    pub figures: Option<GateFigures>,
}

impl RingProgress {
    /// Records the ring as applied at `now`, and when its devices can all have begun to take the set.
    pub fn applied(&mut self, now: DateTime<Utc>) {
        self.applied_at = Some(now);
        self.opens_at = Some(self.environments.iter().map(|e| e.window.opens(now)).max().unwrap_or(now));
    }

    /// What the gate's deadline counts from: the windows' opening, else the application.
    pub fn gate_from(&self) -> Option<DateTime<Utc>> {
        self.opens_at.or(self.applied_at)
    }
}

/// A transition, kept in the rollout's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub at: DateTime<Utc>,
    pub ring: Option<String>,
    pub from: Status,
    pub to: Status,
    pub reason: String,
}

/// One rollout of a software set: the work item `ROLLOUT#<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub id: String,
    /// The resource key its audit records are filed under (`thinclient#<account>#<region>#rollout#<id>`).
    pub resource: String,
    pub target_set: String,
    /// The target set's `supportedUntil`, if it has one.
    pub target_supported_until: Option<DateTime<Utc>>,
    pub requested_at: DateTime<Utc>,
    pub status: Status,
    pub paused: bool,
    /// Since when it is paused: on resume the current ring's clocks (gate deadline, bake) move on by the pause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_at: Option<DateTime<Utc>>,
    /// The ring being applied or baked (index into `rings`).
    pub current: usize,
    pub rings: Vec<RingProgress>,
    /// The set was marked VALIDATED after the first ring passed.
    pub validated: bool,
    pub history: Vec<Transition>,
    /// Event ids of the pause/resume/abort commands applied, so a redelivered command answers as the first
    /// delivery did instead of failing on the state it caused.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub commands: std::collections::BTreeSet<String>,
    /// Steps in a row whose actions failed (not throttled, not deferred): at [`MAX_FAILED_STEPS`] the rollout
    /// halts instead of trying for ever.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_steps: u32,
    /// Outcome events of transitions that EventBridge did not take: sent again at each step until they are (the
    /// rollout stays listed, also once final, until then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unannounced: Vec<Announcement>,
}

/// An outcome event to send once (`key` is its business key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Announcement {
    pub key: String,
    pub detail_type: String,
    pub detail: serde_json::Value,
    pub reason: String,
}

/// The work item kind of rollouts.
pub const KIND: &str = "ROLLOUT";
/// Work-item kind of a request answered by another rollout (`ROLLOUTREF#<request id>` → the rollout's id), so
/// that pause, resume and abort addressed to the request reach the rollout that covers it.
pub const ALIAS_KIND: &str = "ROLLOUTREF";
/// How long a finished rollout stays in the ledger.
pub const KEEP_FINISHED: Duration = Duration::days(400);

/// Steps in a row whose `UpdateEnvironment` (or `UpdateSoftwareSet`) failed before a rollout halts.
pub const MAX_FAILED_STEPS: u32 = 3;

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What was observed of the current ring.
#[derive(Debug, Clone, PartialEq)]
pub struct RingObservation {
    /// Per environment of the ring: its desired set now.
    pub desired: Vec<(String, Option<String>)>,
    pub figures: GateFigures,
}

/// Something the act step must do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// `UpdateEnvironment`: desired set and USE_DESIRED (schedule and maintenance window kept).
    SetDesired { environment: String, software_set: String },
    /// `UpdateEnvironment` back to what it ran before.
    Restore { environment: String, software_set: Option<String>, mode: String },
    /// `UpdateSoftwareSet` → VALIDATED.
    Validate { software_set: String },
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::SetDesired { environment, software_set } => {
                write!(f, "set environment {environment} to software set {software_set}")
            }
            Action::Restore { environment, software_set: Some(set), mode } => {
                write!(f, "restore environment {environment} to software set {set} ({mode})")
            }
            Action::Restore { environment, software_set: None, mode } => {
                write!(f, "restore environment {environment} to {mode}")
            }
            Action::Validate { software_set } => write!(f, "mark software set {software_set} VALIDATED"),
        }
    }
}

/// The next step of a rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct Next {
    pub actions: Vec<Action>,
    /// The transition the actions (once done) complete, if any.
    pub transition: Option<(Status, String)>,
    /// The current ring's new progress.
    pub ring: Option<RingProgress>,
    /// Move to the next ring (its environments are set by this step's actions, so it is applied now).
    pub advance: bool,
}

impl Next {
    /// Nothing to do yet.
    pub fn wait() -> Self {
        Next { actions: Vec::new(), transition: None, ring: None, advance: false }
    }
}

/// Whether a set is supported at `now`.
pub fn supported(until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    until.is_none_or(|until| now < until)
}

/// Decides the next step. `rings` are the policy's rings (same order as the rollout's); `observation` is of
/// the current ring (`None` when not observed); `previous_supported` says whether a set is still supported
/// (for rollback).
pub fn next(
    rollout: &Rollout,
    rings: &[Ring],
    observation: Option<&RingObservation>,
    auto_rollback: bool,
    previous_supported: &dyn Fn(&str) -> bool,
    now: DateTime<Utc>,
) -> Next {
    if rollout.status.is_final() || rollout.paused {
        return Next::wait();
    }
    let (Some(progress), Some(ring)) = (rollout.rings.get(rollout.current), rings.get(rollout.current)) else {
        return Next { transition: Some((Status::Completed, "no ring left".into())), ..Next::wait() };
    };
    if !supported(rollout.target_supported_until, now) && rollout.status != Status::Baking {
        return Next {
            transition: Some((
                Status::Halted,
                format!("software set {} is past its end of support", rollout.target_set),
            )),
            ..Next::wait()
        };
    }
    let apply = |progress: &RingProgress| -> Vec<Action> {
        progress
            .environments
            .iter()
            .map(|e| Action::SetDesired { environment: e.id.clone(), software_set: rollout.target_set.clone() })
            .collect()
    };
    if progress.environments.is_empty() && progress.passed_at.is_none() && rollout.current > 0 {
        // A later ring left empty (its environments held since the start): nothing to set or gate, the next ring
        // follows at once (the ring before it proved the set).
        let mut ring_progress = progress.clone();
        ring_progress.applied(now);
        ring_progress.passed_at = Some(now);
        let Some(next_ring) = rollout.rings.get(rollout.current + 1) else {
            let reason =
                format!("ring {} has no environment left: rollout of {} completed", progress.name, rollout.target_set);
            return Next {
                actions: Vec::new(),
                transition: Some((Status::Completed, reason)),
                ring: Some(ring_progress),
                advance: false,
            };
        };
        let reason =
            format!("ring {} has no environment left: skipped; ring {} applying", progress.name, next_ring.name);
        return Next {
            actions: apply(next_ring),
            transition: Some((Status::Applying, reason)),
            ring: Some(ring_progress),
            advance: true,
        };
    }
    if rollout.status == Status::Pending || progress.applied_at.is_none() {
        let mut ring_progress = progress.clone();
        ring_progress.applied(now);
        // Environments already observed on the target are not set again: an invocation that set them and died
        // before recording the ring as applied must not make a second UpdateEnvironment.
        let already = |environment: &str| {
            observation.is_some_and(|o| {
                o.desired
                    .iter()
                    .any(|(id, desired)| id == environment && desired.as_deref() == Some(rollout.target_set.as_str()))
            })
        };
        let mut actions = apply(progress);
        actions.retain(|action| !matches!(action, Action::SetDesired { environment, .. } if already(environment)));
        return Next {
            actions,
            transition: Some((Status::Applying, format!("ring {} applying {}", progress.name, rollout.target_set))),
            ring: Some(ring_progress),
            advance: false,
        };
    }
    // A ring applied in this very step has not been observed since: wait for the next look.
    let Some(observation) = observation.filter(|_| progress.applied_at < Some(now)) else { return Next::wait() };
    let gate_from = progress.gate_from().unwrap_or(now);
    // Every environment must carry the target (a manual change since is a failure of the ring, not ours to fight).
    let drifted: Vec<&str> = observation
        .desired
        .iter()
        .filter(|(_, desired)| desired.as_deref() != Some(rollout.target_set.as_str()))
        .map(|(id, _)| id.as_str())
        .collect();
    let verdict = if drifted.is_empty() {
        evaluate(&observation.figures, &ring.gates, gate_from, now)
    } else {
        Verdict::Failed {
            reason: format!("environments no longer set to {}: {}", rollout.target_set, drifted.join(", ")),
        }
    };
    let mut ring_progress = progress.clone();
    ring_progress.figures = Some(observation.figures);
    match (rollout.status, verdict) {
        (_, Verdict::Failed { reason }) => {
            let reason = format!("ring {} gate failed: {reason}", progress.name);
            if auto_rollback {
                // What cannot be put back is named, not passed over: a previous set past its support, or no
                // previous set to return to (USE_LATEST follows the newest set again by itself).
                let mut left = Vec::new();
                let mut actions = Vec::new();
                for e in &progress.environments {
                    match e.previous_desired.as_deref() {
                        Some(set) if !previous_supported(set) => {
                            left.push(format!("{} (its previous set {set} is past its support)", e.id));
                        }
                        None if e.previous_mode != "USE_LATEST" => {
                            left.push(format!("{} (it had no desired set to return to)", e.id));
                        }
                        _ => actions.push(Action::Restore {
                            environment: e.id.clone(),
                            software_set: e.previous_desired.clone(),
                            mode: e.previous_mode.clone(),
                        }),
                    }
                }
                let reason = if left.is_empty() {
                    reason
                } else {
                    format!("{reason}; left on {}: {}", rollout.target_set, left.join(", "))
                };
                Next {
                    actions,
                    transition: Some((Status::RolledBack, reason)),
                    ring: Some(ring_progress),
                    advance: false,
                }
            } else {
                Next {
                    actions: Vec::new(),
                    transition: Some((Status::Halted, reason)),
                    ring: Some(ring_progress),
                    advance: false,
                }
            }
        }
        (Status::Applying, Verdict::Passed) => {
            ring_progress.updated_at = Some(now);
            Next {
                actions: Vec::new(),
                transition: Some((
                    Status::Baking,
                    format!("ring {}: devices updated, baking {}", progress.name, humanize(ring.bake)),
                )),
                ring: Some(ring_progress),
                advance: false,
            }
        }
        (Status::Baking, Verdict::Passed) if now >= progress.updated_at.unwrap_or(now) + ring.bake => {
            ring_progress.passed_at = Some(now);
            let mut actions = Vec::new();
            if !rollout.validated {
                actions.push(Action::Validate { software_set: rollout.target_set.clone() });
            }
            let last = rollout.current + 1 >= rollout.rings.len();
            if !last && !supported(rollout.target_supported_until, now) {
                // The set's support ended while the ring baked: the next ring never gets it.
                let next_ring = &rollout.rings[rollout.current + 1].name;
                return Next {
                    actions: Vec::new(),
                    transition: Some((
                        Status::Halted,
                        format!(
                            "ring {} passed, but software set {} is past its end of support: ring {next_ring} not applied",
                            progress.name, rollout.target_set
                        ),
                    )),
                    ring: Some(ring_progress),
                    advance: false,
                };
            }
            let transition = if last {
                (
                    Status::Completed,
                    format!("ring {} passed: rollout of {} completed", progress.name, rollout.target_set),
                )
            } else {
                let next_ring = &rollout.rings[rollout.current + 1];
                actions.extend(apply(next_ring));
                (Status::Applying, format!("ring {} passed: ring {} applying", progress.name, next_ring.name))
            };
            Next { actions, transition: Some(transition), ring: Some(ring_progress), advance: !last }
        }
        _ => Next { ring: Some(ring_progress), ..Next::wait() },
    }
}

fn humanize(duration: Duration) -> String {
    autopilot_shared::policy::values::format_duration(duration)
}

#[cfg(test)]
mod tests;

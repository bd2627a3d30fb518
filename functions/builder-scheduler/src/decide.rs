//! The decide step: a pure function from what was observed, the policy, what the ledger remembers and `now`
//! to one decision per selected image builder, each with a reason an operator can read. No IO, no clock.
//!
//! Rules:
//! - start only from STOPPED, stop only from RUNNING; a stop that falls due while the builder is busy
//!   (PENDING, SNAPSHOTTING, UPDATING, … any `PENDING_*`) is deferred, and the reason recorded;
//! - DELETING is never touched; FAILED and unknown states are reported once and left alone;
//! - every stop is announced `warn_before` ahead (`Image Builder Stop Scheduled`), once; a stop that falls due
//!   without a warning (first sight of a forgotten builder) is announced now and made `warn_before` later; the
//!   end of an in-hours override in off-hours is announced ahead like a schedule's stop;
//! - a start or stop made by someone else is honoured until the schedule's next transition; max-runtime is
//!   measured from when the run began (the CloudTrail event time when known) and still applies;
//! - tags: `skip` and `override: hold` leave it alone; `override: in-hours` keeps it up (no schedule stop, no
//!   max-runtime stop) until `override-until`; `override: off-hours` treats it as off-hours.

use autopilot_shared::policy::tags::{self, OverrideMode, TagDirective};
use autopilot_shared::policy::{BuilderRule, Phase, Policy, ResourceView, Schedule};
use autopilot_shared::resource::ResourceRef;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How long after a `CreateImage` event a RUNNING builder is still assumed to be about to snapshot.
pub const SNAPSHOT_GRACE: Duration = Duration::minutes(30);

/// What a builder's state allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateClass {
    Running,
    Stopped,
    Stopping,
    /// Working: starting, snapshotting, updating, rebooting, syncing apps, any `PENDING_*`. Do not interrupt.
    Busy,
    Deleting,
    Failed,
    /// A state this build does not know: do not touch, report.
    Unknown,
}

impl StateClass {
    pub fn of(state: &str) -> StateClass {
        match state {
            "RUNNING" => StateClass::Running,
            "STOPPED" => StateClass::Stopped,
            "STOPPING" => StateClass::Stopping,
            "DELETING" => StateClass::Deleting,
            "FAILED" => StateClass::Failed,
            "PENDING" | "UPDATING_AGENT" | "UPDATING" | "REBOOTING" | "SNAPSHOTTING" | "SYNCING_APPS" => {
                StateClass::Busy
            }
            other if other.starts_with("PENDING_") => StateClass::Busy,
            _ => StateClass::Unknown,
        }
    }

    /// Whether the builder is up (billing) in this state; `None` when the state says nothing about it.
    fn is_up(self) -> Option<bool> {
        match self {
            StateClass::Running | StateClass::Busy => Some(true),
            StateClass::Stopped | StateClass::Stopping => Some(false),
            StateClass::Deleting | StateClass::Failed | StateClass::Unknown => None,
        }
    }
}

/// One image builder as observed this tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub resource: ResourceRef,
    pub name: String,
    /// The service's state string.
    pub state: String,
    pub tags: BTreeMap<String, String>,
    /// `ImageBuilderErrors` messages, for reports.
    pub errors: Vec<String>,
}

impl ResourceView for Observed {
    fn id(&self) -> &str {
        self.resource.id()
    }
    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }
    fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

/// Start or stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Start,
    Stop,
}

/// A start or stop and when it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub direction: Direction,
    pub at: DateTime<Utc>,
}

/// A stop that was announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warned {
    /// The stop's cause key (see [`Action::Stop`]).
    pub cause: String,
    pub stop_at: DateTime<Utc>,
}

/// What the ledger remembers of one builder between invocations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// The state seen at the last tick, and since when.
    pub last_seen_state: Option<String>,
    pub state_since: Option<DateTime<Utc>>,
    /// The first tick of the current (or last) down period that saw the builder down (STOPPED or STOPPING):
    /// start events older than it belong to an earlier run. Set when the builder is seen going down, not at
    /// every tick it stays down, so a stopped builder's memory is not rewritten every tick.
    pub last_down_at: Option<DateTime<Utc>>,
    /// When the current run began (a CloudTrail event's time, our start, or first sight).
    pub running_since: Option<DateTime<Utc>>,
    /// Our last start or stop, until the state change it causes is seen.
    pub own_change: Option<Change>,
    /// A start or stop made by someone else, honoured until the schedule's next transition.
    pub manual_change: Option<Change>,
    /// A `CreateImage` from this builder was seen: it is about to snapshot.
    pub snapshot_requested_at: Option<DateTime<Utc>>,
    pub warned: Option<Warned>,
    /// The state last reported (FAILED, unknown), so it is reported once.
    pub reported: Option<String>,
    /// The deferral last recorded (`<cause>#<state>`), so each is audited once.
    pub deferred: Option<String>,
    /// The phase (its end, as a start's cause names it) in which we stopped the builder for its max-runtime: the
    /// schedule does not start it again in that phase (it ran; a start would undo the stop and pay for a boot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_stopped: Option<String>,
    /// The hold last recorded in the audit, so it is recorded again only when it changes (kept by the act step;
    /// decide leaves it as it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<autopilot_shared::notes::Note>,
    /// The failed start or stop last recorded, until one succeeds (kept by the act step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<autopilot_shared::notes::RecordedFailure>,
}

/// A change to make. Each carries its cause key: with the builder it is the business key of the effect, so a
/// duplicate delivery (or the next tick) never repeats it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// `schedule@<end of the in-hours phase>`.
    Start { cause: String },
    /// `schedule@<end of the off-hours phase>`, `max-runtime@<run start>` or `override@<until>`.
    Stop { cause: String },
    /// Announce the stop `cause` for `stop_at`.
    Warn { cause: String, stop_at: DateTime<Utc> },
    /// Report a state nobody should automate (FAILED, unknown), in it since `since`.
    Report { state: String, since: DateTime<Utc> },
}

impl Action {
    /// The AWS operation or outcome event this action makes.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Start { .. } => "StartImageBuilder",
            Action::Stop { .. } => "StopImageBuilder",
            Action::Warn { .. } => "Image Builder Stop Scheduled",
            Action::Report { state, .. } if state == "FAILED" => "Image Builder Failed",
            Action::Report { .. } => "Image Builder Unexpected State",
        }
    }

    /// The business key of the effect for one builder.
    pub fn business_key(&self, resource_key: &str) -> String {
        match self {
            Action::Start { cause } => format!("{resource_key}#start#{cause}"),
            Action::Stop { cause } => format!("{resource_key}#stop#{cause}"),
            Action::Warn { cause, .. } => format!("{resource_key}#warn#{cause}"),
            Action::Report { state, since } => format!("{resource_key}#report#{state}#{}", since.timestamp()),
        }
    }
}

/// What to do with one builder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "action", rename_all = "kebab-case")]
pub enum Outcome {
    Act(Action),
    /// Already right: nothing to do.
    Hold,
    /// In transition or a stop is announced: look again next tick.
    Wait,
    /// A stop is due but the builder is busy: deferred (recorded once per cause and state).
    Defer,
    /// Deliberately left alone (skip tag, override, ambiguous rules, DELETING, already reported).
    Skip,
}

/// One decision with its reason and the memory to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub resource: ResourceRef,
    pub name: String,
    pub state: String,
    pub outcome: Outcome,
    pub reason: String,
    /// Memory after this decision (for an action: once it succeeded).
    pub memory: Memory,
    pub errors: Vec<String>,
}

/// Plans every selected builder. Builders no rule selects get no decision.
pub fn plan(
    observed: &[Observed],
    policy: &Policy,
    memories: &BTreeMap<String, Memory>,
    tag_prefix: &str,
    now: DateTime<Utc>,
) -> Vec<Decision> {
    observed
        .iter()
        .filter_map(|builder| {
            let memory = memories.get(&builder.resource.key()).cloned().unwrap_or_default();
            decide_one(builder, policy, memory, tag_prefix, now)
        })
        .collect()
}

/// Folds this observation into the memory: state changes, runs beginning and ending, and whether a change
/// was ours or someone else's.
pub fn track(observed: &Observed, mut memory: Memory, now: DateTime<Utc>) -> Memory {
    let class = StateClass::of(&observed.state);
    let was_up = memory.last_seen_state.as_deref().and_then(|s| StateClass::of(s).is_up());
    if memory.last_seen_state.as_deref() != Some(observed.state.as_str()) {
        memory.last_seen_state = Some(observed.state.clone());
        memory.state_since = Some(now);
    }
    let note_change = |memory: &mut Memory, direction: Direction| {
        if memory.own_change.take().is_some_and(|own| own.direction == direction) {
            return;
        }
        if memory.manual_change.is_none_or(|manual| manual.direction != direction) {
            memory.manual_change = Some(Change { direction, at: now });
        }
    };
    match (was_up, class.is_up()) {
        (Some(false), Some(true)) => {
            note_change(&mut memory, Direction::Start);
            memory.running_since.get_or_insert(now);
        }
        (Some(true), Some(false)) => {
            note_change(&mut memory, Direction::Stop);
            memory.running_since = None;
            memory.warned = None;
        }
        (None, Some(true)) => {
            // First sight of a running builder (or back from a state that says nothing): we cannot know when
            // the run began, so its max-runtime clock starts now (never a premature stop).
            memory.running_since.get_or_insert(now);
        }
        _ => {}
    }
    match class.is_up() {
        Some(false) => {
            if was_up != Some(false) || memory.last_down_at.is_none() {
                memory.last_down_at = Some(now);
            }
            memory.running_since = None;
            memory.snapshot_requested_at = None;
        }
        Some(true) => {}
        None => memory.running_since = None,
    }
    if observed.state == "SNAPSHOTTING" || memory.snapshot_requested_at.is_some_and(|at| now - at >= SNAPSHOT_GRACE) {
        memory.snapshot_requested_at = None;
    }
    if !matches!(class, StateClass::Failed | StateClass::Unknown) {
        memory.reported = None;
    }
    memory
}

/// How a max-runtime stop's cause begins (then the instant the run began).
const MAX_RUNTIME_CAUSE: &str = "max-runtime@";

/// A stop that is due or upcoming.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stop {
    cause: String,
    at: DateTime<Utc>,
    why: String,
}

fn instant_key(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "open".to_owned(), |t| t.format("%Y-%m-%dT%H:%MZ").to_string())
}

/// Decides one builder; `None` when no rule selects it.
pub fn decide_one(
    observed: &Observed,
    policy: &Policy,
    memory: Memory,
    tag_prefix: &str,
    now: DateTime<Utc>,
) -> Option<Decision> {
    let rules: Vec<(usize, &BuilderRule)> =
        policy.image_builders.iter().enumerate().filter(|(_, rule)| rule.select.matches(observed)).collect();
    let mut memory = track(observed, memory, now);
    let decision = |outcome: Outcome, reason: String, memory: Memory| Decision {
        resource: observed.resource.clone(),
        name: observed.name.clone(),
        state: observed.state.clone(),
        outcome,
        reason,
        memory,
        errors: observed.errors.clone(),
    };
    let rule = match rules.as_slice() {
        [] => return None,
        [(_, rule)] => *rule,
        many => {
            let indexes: Vec<String> = many.iter().map(|(i, _)| format!("image_builders[{i}]")).collect();
            let reason = format!("selected by {} rules ({}): ambiguous, not touched", many.len(), indexes.join(", "));
            return Some(decision(Outcome::Skip, reason, memory));
        }
    };
    let directive = tags::directive(observed.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())), tag_prefix, now);
    let (forced, override_until) = match &directive {
        TagDirective::Skip => return Some(decision(Outcome::Skip, format!("tagged {tag_prefix}skip"), memory)),
        TagDirective::Invalid { reason } => {
            return Some(decision(Outcome::Skip, format!("override tags are invalid, holding: {reason}"), memory));
        }
        TagDirective::Override { mode: OverrideMode::Hold, until } => {
            return Some(decision(Outcome::Skip, format!("override hold until {until}"), memory));
        }
        TagDirective::Override { mode: OverrideMode::InHours, until } => (Some(Phase::InHours), Some(*until)),
        TagDirective::Override { mode: OverrideMode::OffHours, until } => (Some(Phase::OffHours), Some(*until)),
        TagDirective::None | TagDirective::Expired { .. } => (None, None),
    };

    let class = StateClass::of(&observed.state);
    match class {
        StateClass::Deleting => {
            return Some(decision(Outcome::Skip, "DELETING: never touched".into(), memory));
        }
        StateClass::Failed | StateClass::Unknown => {
            let what = if class == StateClass::Failed { "FAILED" } else { "in a state this version does not know" };
            if memory.reported.as_deref() == Some(observed.state.as_str()) {
                let reason = format!("{} ({what}): already reported, left alone", observed.state);
                return Some(decision(Outcome::Skip, reason, memory));
            }
            let since = memory.state_since.unwrap_or(now);
            memory.reported = Some(observed.state.clone());
            let reason = format!("{} ({what}): reported, left alone", observed.state);
            let action = Action::Report { state: observed.state.clone(), since };
            return Some(decision(Outcome::Act(action), reason, memory));
        }
        _ => {}
    }

    let schedule: Option<&Schedule> = rule.schedule.as_ref().map(|s| s.schedule.as_ref());
    let phase = forced.or_else(|| schedule.map(|s| s.phase_at(now)));
    // A manual change lasts until the schedule's next transition after it (an override tag ends it).
    if let Some(manual) = memory.manual_change {
        let over = forced.is_some()
            || schedule.is_none_or(|s| s.next_transition(manual.at).is_some_and(|transition| transition <= now));
        if over {
            memory.manual_change = None;
        }
    }
    let manual = memory.manual_change;
    let manual_until = |change: Change| {
        schedule.and_then(|s| s.next_transition(change.at)).map_or("the schedule changes".into(), |t| t.to_string())
    };
    let phase_end = || match forced {
        Some(_) => format!("override@{}", instant_key(override_until)),
        None => format!("schedule@{}", instant_key(schedule.and_then(|s| s.next_transition(now)))),
    };

    // The stops that apply now.
    let mut due: Vec<Stop> = Vec::new();
    if phase == Some(Phase::OffHours) && rule.stop_on_schedule {
        match manual {
            Some(change) if change.direction == Direction::Start => {}
            _ => due.push(Stop {
                cause: phase_end(),
                at: now,
                why: if forced.is_some() { "override off-hours".into() } else { "off-hours".into() },
            }),
        }
    }
    let max_runtime = rule.max_runtime.filter(|_| forced != Some(Phase::InHours));
    let runtime_stop = max_runtime.zip(memory.running_since).map(|(limit, since)| Stop {
        cause: format!("{MAX_RUNTIME_CAUSE}{}", since.format("%Y-%m-%dT%H:%M:%SZ")),
        at: since + limit,
        why: format!("running since {since}, longer than max_runtime {}", humanize(limit)),
    });
    if let Some(stop) = runtime_stop.as_ref().filter(|s| s.at <= now) {
        due.push(stop.clone());
    }
    // Prefer a stop that was already announced, then the schedule's (stable sort).
    due.sort_by_key(|stop| memory.warned.as_ref().is_none_or(|w| w.cause != stop.cause));
    let due = due.into_iter().next();

    match class {
        StateClass::Stopped => {
            let wants_start = phase == Some(Phase::InHours) && rule.start_on_schedule;
            match manual {
                Some(change) if wants_start && change.direction == Direction::Stop => {
                    let reason =
                        format!("stopped by someone else at {}: honoured until {}", change.at, manual_until(change));
                    // A person's change honoured is a hold an operator must see (recorded once, when it begins).
                    Some(decision(Outcome::Skip, reason, memory))
                }
                _ if wants_start && memory.runtime_stopped.as_deref() == Some(phase_end().as_str()) => {
                    let until = schedule
                        .and_then(|s| s.next_transition(now))
                        .map_or("the phase ends".into(), |t| t.to_string());
                    let reason = format!("stopped for its max_runtime in this phase: not started again until {until}");
                    Some(decision(Outcome::Skip, reason, memory))
                }
                _ if wants_start => {
                    let cause = phase_end();
                    memory.own_change = Some(Change { direction: Direction::Start, at: now });
                    memory.deferred = None;
                    let why = if forced.is_some() { "override in-hours" } else { "in-hours" };
                    Some(decision(Outcome::Act(Action::Start { cause }), format!("{why}: start"), memory))
                }
                _ => {
                    memory.deferred = None;
                    let why = match phase {
                        Some(Phase::InHours) => "in-hours, the rule does not start builders",
                        Some(Phase::OffHours) => "off-hours",
                        None => "no schedule",
                    };
                    Some(decision(Outcome::Hold, format!("{why}: stopped, nothing to do"), memory))
                }
            }
        }
        StateClass::Stopping => Some(decision(Outcome::Wait, "STOPPING: waiting".into(), memory)),
        StateClass::Busy => match due {
            Some(stop) => {
                let reason = format!("stop due ({}) but {} is {}: deferred", stop.why, observed.name, observed.state);
                memory.deferred = Some(format!("{}#{}", stop.cause, observed.state));
                Some(decision(Outcome::Defer, reason, memory))
            }
            None => Some(decision(Outcome::Wait, format!("{}: waiting", observed.state), memory)),
        },
        StateClass::Running => {
            if let Some(stop) = due {
                if let Some(at) = memory.snapshot_requested_at {
                    let reason = format!("stop due ({}) but an image was requested at {at}: deferred", stop.why);
                    memory.deferred = Some(format!("{}#CreateImage", stop.cause));
                    return Some(decision(Outcome::Defer, reason, memory));
                }
                memory.deferred = None;
                if rule.warn_before > Duration::zero() {
                    match &memory.warned {
                        Some(warned) if warned.cause == stop.cause && now < warned.stop_at => {
                            let reason = format!("stop due ({}), announced for {}: waiting", stop.why, warned.stop_at);
                            return Some(decision(Outcome::Wait, reason, memory));
                        }
                        Some(warned) if warned.cause == stop.cause => {}
                        _ => {
                            let stop_at = now + rule.warn_before;
                            let reason = format!("stop due ({}) without a warning: announced for {stop_at}", stop.why);
                            memory.warned = Some(Warned { cause: stop.cause.clone(), stop_at });
                            let action = Action::Warn { cause: stop.cause, stop_at };
                            return Some(decision(Outcome::Act(action), reason, memory));
                        }
                    }
                }
                memory.own_change = Some(Change { direction: Direction::Stop, at: now });
                if stop.cause.starts_with(MAX_RUNTIME_CAUSE) {
                    memory.runtime_stopped = Some(phase_end());
                }
                Some(decision(Outcome::Act(Action::Stop { cause: stop.cause }), format!("{}: stop", stop.why), memory))
            } else {
                memory.deferred = None;
                // The next stop: the schedule's next off-hours, or the max-runtime limit.
                // (On a tie the schedule's stop wins, as it does among due stops.)
                let mut upcoming: Vec<Stop> = Vec::new();
                if forced.is_none()
                    && rule.stop_on_schedule
                    && phase == Some(Phase::InHours)
                    && let Some(schedule) = schedule
                    && let Some(at) = schedule.next_transition(now)
                {
                    let cause = format!("schedule@{}", instant_key(schedule.next_transition(at)));
                    upcoming.push(Stop { cause, at, why: "off-hours".into() });
                }
                // An in-hours override that ends in off-hours: the stop at its end is announced `warn_before`
                // ahead like any other (under the cause the schedule's stop will have then).
                if forced == Some(Phase::InHours)
                    && rule.stop_on_schedule
                    && let (Some(until), Some(schedule)) = (override_until, schedule)
                    && schedule.phase_at(until) == Phase::OffHours
                {
                    let cause = format!("schedule@{}", instant_key(schedule.next_transition(until)));
                    // A stop announced for earlier (the override was extended, or came after the schedule's
                    // warning) no longer holds: the end of the override is announced afresh.
                    if memory.warned.as_ref().is_some_and(|w| w.cause == cause && w.stop_at < until) {
                        memory.warned = None;
                    }
                    if now >= until - rule.warn_before {
                        let why = "off-hours once the in-hours override ends".into();
                        upcoming.push(Stop { cause, at: until, why });
                    }
                }
                upcoming.extend(runtime_stop);
                let next = upcoming.into_iter().min_by_key(|stop| stop.at);
                match next {
                    Some(stop)
                        if rule.warn_before > Duration::zero()
                            && now >= stop.at - rule.warn_before
                            && memory.warned.as_ref().is_none_or(|w| w.cause != stop.cause) =>
                    {
                        // Never less notice than `warn_before` (a builder first seen, or started by someone, just
                        // before its stop): the stop waits for the announced time.
                        let stop_at = stop.at.max(now + rule.warn_before);
                        let reason = if stop_at == stop.at {
                            format!("{} at {}: announced", stop.why, stop.at)
                        } else {
                            format!(
                                "{} at {}: announced for {stop_at}, {} ahead",
                                stop.why,
                                stop.at,
                                humanize(rule.warn_before)
                            )
                        };
                        memory.warned = Some(Warned { cause: stop.cause.clone(), stop_at });
                        let action = Action::Warn { cause: stop.cause, stop_at };
                        Some(decision(Outcome::Act(action), reason, memory))
                    }
                    Some(stop) => {
                        let (honoured, outcome) = match manual {
                            Some(change) if change.direction == Direction::Start => (
                                format!(
                                    "; started by someone else at {}, honoured until {}",
                                    change.at,
                                    manual_until(change)
                                ),
                                Outcome::Skip,
                            ),
                            _ => (String::new(), Outcome::Hold),
                        };
                        let reason = format!("running; next stop at {} ({}){honoured}", stop.at, stop.why);
                        Some(decision(outcome, reason, memory))
                    }
                    None => {
                        let (why, outcome) = match (manual, forced) {
                            (_, Some(Phase::InHours)) => ("override in-hours".to_owned(), Outcome::Hold),
                            (Some(change), _) if change.direction == Direction::Start => (
                                format!(
                                    "started by someone else at {}, honoured until {}",
                                    change.at,
                                    manual_until(change)
                                ),
                                Outcome::Skip,
                            ),
                            _ => ("no stop planned".to_owned(), Outcome::Hold),
                        };
                        Some(decision(outcome, format!("running; {why}"), memory))
                    }
                }
            }
        }
        StateClass::Deleting | StateClass::Failed | StateClass::Unknown => {
            Some(decision(Outcome::Skip, format!("{}: not touched", observed.state), memory))
        }
    }
}

/// `90m` → `1h30m`: durations in reasons read like the policy.
fn humanize(duration: Duration) -> String {
    autopilot_shared::policy::values::format_duration(duration)
}

#[cfg(test)]
mod tests;

//! The decide step: a pure function from what was observed, the policy, what the ledger remembers and `now`
//! to one decision per targeted pool or fleet, each with a reason an operator can read. No IO, no clock.

use crate::forecast::{LeadTime, Outlook, Profile};
use autopilot_shared::policy::tags::{self, OverrideMode, TagDirective};
use autopilot_shared::policy::{Bounds, CapacityRule, Phase, Policy, ResourceView, Schedule};
use autopilot_shared::resource::ResourceRef;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What kind of capacity a resource has. Pools and multi-session fleets count sessions; single-session fleets
/// count instances (one session each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Pool,
    SingleSessionFleet,
    MultiSessionFleet,
    /// An ELASTIC fleet: AppStream provisions its instances per session; it has no desired capacity to set.
    ElasticFleet,
}

impl Kind {
    /// The unit desired capacity is expressed in.
    pub fn unit(self) -> &'static str {
        match self {
            Kind::SingleSessionFleet | Kind::ElasticFleet => "instances",
            Kind::Pool | Kind::MultiSessionFleet => "sessions",
        }
    }
}

/// One pool or fleet as observed this tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub resource: ResourceRef,
    pub name: String,
    pub kind: Kind,
    /// The service's state string (RUNNING, STOPPED, STARTING, …).
    pub state: String,
    /// Whether the service allows stopping and starting it (pools: AUTO_STOP only; fleets: not ELASTIC).
    pub stoppable: bool,
    /// Desired capacity in `kind.unit()`.
    pub desired: u32,
    /// Capacity in use in `kind.unit()`.
    pub in_use: u32,
    /// Capacity running (provisioned) in `kind.unit()`: desired capacity not yet running is still starting.
    pub running: u32,
    pub tags: BTreeMap<String, String>,
    /// Registered with Application Auto Scaling: another owner scales it.
    pub managed_by_autoscaling: bool,
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

/// What the ledger remembers of one resource between ticks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// The desired capacity we last set (or adopted); a different observed value is a manual change.
    pub last_set_desired: Option<u32>,
    pub last_scale_out_at: Option<DateTime<Utc>>,
    pub last_scale_in_at: Option<DateTime<Utc>>,
    /// Since when no capacity has been in use (cleared when something is in use).
    pub idle_since: Option<DateTime<Utc>>,
    /// When a manual change (capacity, start or stop by someone else) was seen.
    pub manual_change_at: Option<DateTime<Utc>>,
    /// The hold or dry-run would-act last recorded in the audit, so it is recorded again only when it changes
    /// (kept by the act step; decide leaves it as it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<autopilot_shared::notes::Note>,
    /// The learned weekly demand (rules with `predictive` only).
    #[serde(default, skip_serializing_if = "Profile::is_empty")]
    pub profile: Profile,
    /// The learned start-up lead time (rules with `predictive` only).
    #[serde(default, skip_serializing_if = "LeadTime::is_empty")]
    pub lead: LeadTime,
    /// The failed action last recorded, until one succeeds (kept by the act step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<autopilot_shared::notes::RecordedFailure>,
}

/// A change to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    SetDesired { from: u32, to: u32 },
    Start,
    Stop,
}

/// What to do with one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "action", rename_all = "kebab-case")]
pub enum Outcome {
    Act(Action),
    /// Already right: nothing to do.
    Hold,
    /// Busy (starting, stopping, updating) or cooling down: look again next tick.
    Wait,
    /// Deliberately left alone (skip tag, override, another owner, ambiguous rules, unknown state).
    Skip,
}

/// One decision with its reason and the memory to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub resource: ResourceRef,
    pub name: String,
    pub kind: Kind,
    pub outcome: Outcome,
    pub reason: String,
    /// Memory after this decision (for an action: once it succeeded).
    pub memory: Memory,
    /// The phase the rule's schedule was in (None when skipped before evaluating it).
    pub phase: Option<Phase>,
}

fn decision(
    observed: &Observed,
    outcome: Outcome,
    reason: impl Into<String>,
    memory: Memory,
    phase: Option<Phase>,
) -> Decision {
    Decision {
        resource: observed.resource.clone(),
        name: observed.name.clone(),
        kind: observed.kind,
        outcome,
        reason: reason.into(),
        memory,
        phase,
    }
}

/// What asked for a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The schedule's tick: every decision is open.
    Tick,
    /// A session start or a user's access: it can only add capacity (or start); scale-in and stops wait for the
    /// tick, since a session that starts never frees capacity.
    SessionEvent,
}

/// Plans every targeted resource. Resources no rule selects get no decision.
pub fn plan(
    observed: &[Observed],
    policy: &Policy,
    memories: &BTreeMap<String, Memory>,
    tag_prefix: &str,
    now: DateTime<Utc>,
    trigger: Trigger,
) -> Vec<Decision> {
    observed
        .iter()
        .filter_map(|resource| {
            let memory = memories.get(&resource.resource.key()).cloned().unwrap_or_default();
            decide(resource, policy, memory, tag_prefix, now, trigger)
        })
        .collect()
}

/// Decides one resource at a tick; `None` when no rule selects it.
pub fn decide_one(
    observed: &Observed,
    policy: &Policy,
    memory: Memory,
    tag_prefix: &str,
    now: DateTime<Utc>,
) -> Option<Decision> {
    decide(observed, policy, memory, tag_prefix, now, Trigger::Tick)
}

/// Decides one resource for `trigger`; `None` when no rule selects it.
pub fn decide(
    observed: &Observed,
    policy: &Policy,
    mut memory: Memory,
    tag_prefix: &str,
    now: DateTime<Utc>,
    trigger: Trigger,
) -> Option<Decision> {
    let rules: Vec<(usize, &CapacityRule)> =
        policy.capacity.iter().enumerate().filter(|(_, rule)| rule.select.matches(observed)).collect();
    let rule = match rules.as_slice() {
        [] => return None,
        [(_, rule)] => *rule,
        many => {
            let indexes: Vec<String> = many.iter().map(|(i, _)| format!("capacity[{i}]")).collect();
            return Some(decision(
                observed,
                Outcome::Skip,
                format!("selected by {} rules ({}): ambiguous, not touched", many.len(), indexes.join(", ")),
                memory,
                None,
            ));
        }
    };
    // Learn from every observation of a predictive rule's resource, whatever is decided below.
    let schedule: Option<&Schedule> = rule.schedule.as_ref().map(|s| s.schedule.as_ref());
    let timezone = schedule.map_or(policy.defaults.timezone, Schedule::timezone);
    let holiday = |at: DateTime<Utc>| schedule.is_some_and(|s| s.is_holiday(at));
    let ahead = rule.predictive.as_ref().and_then(|predictive| {
        memory.profile.observe(now, observed.in_use, timezone, holiday(now), predictive.history_weeks as usize);
        memory.lead.observe(now, observed.running, observed.desired, observed.state == "RUNNING");
        Outlook::at(&memory.profile, &memory.lead, predictive, now, timezone, holiday).map(|outlook| Ahead {
            expected: outlook.expected(observed.in_use),
            demand: outlook.forecast.in_use,
            at: outlook.forecast.at,
            why: outlook.explain(observed.kind.unit(), timezone),
        })
    });
    let directive = tags::directive(observed.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())), tag_prefix, now);
    let forced_phase = match &directive {
        TagDirective::Skip => {
            return Some(decision(observed, Outcome::Skip, format!("tagged {tag_prefix}skip"), memory, None));
        }
        TagDirective::Invalid { reason } => {
            return Some(decision(
                observed,
                Outcome::Skip,
                format!("override tags are invalid, holding: {reason}"),
                memory,
                None,
            ));
        }
        TagDirective::Override { mode: OverrideMode::Hold, until } => {
            return Some(decision(observed, Outcome::Skip, format!("override hold until {until}"), memory, None));
        }
        TagDirective::Override { mode: OverrideMode::InHours, .. } => Some(Phase::InHours),
        TagDirective::Override { mode: OverrideMode::OffHours, .. } => Some(Phase::OffHours),
        TagDirective::None | TagDirective::Expired { .. } => None,
    };
    if observed.kind == Kind::ElasticFleet {
        return Some(decision(
            observed,
            Outcome::Skip,
            "an elastic fleet: AppStream provisions its instances per session; it has no desired capacity to set",
            memory,
            None,
        ));
    }
    if observed.managed_by_autoscaling {
        return Some(decision(
            observed,
            Outcome::Skip,
            "registered with Application Auto Scaling: another owner scales it, not fought",
            memory,
            None,
        ));
    }
    let (phase, phase_reason) = match (forced_phase, schedule) {
        (Some(phase), _) => (phase, "override tag".to_owned()),
        (None, Some(schedule)) => {
            let state = schedule.state_at(now);
            let why = match state.reason {
                autopilot_shared::policy::Reason::Prewarm { starts_at, .. } => format!("prewarm for {starts_at}"),
                autopilot_shared::policy::Reason::Holiday { date } => format!("holiday {date}"),
                autopilot_shared::policy::Reason::InPeriod { .. } => "in a schedule period".to_owned(),
                autopilot_shared::policy::Reason::OutsidePeriods => "outside schedule periods".to_owned(),
            };
            (state.phase, why)
        }
        (None, None) => (Phase::InHours, "no schedule".to_owned()),
    };
    let bounds: &Bounds = if phase == Phase::InHours { &rule.in_hours } else { &rule.off_hours };
    let phase_name = if phase == Phase::InHours { "in-hours" } else { "off-hours" };
    let phase_label = format!("{phase_name} ({phase_reason})");

    // Idle clock.
    if observed.in_use > 0 {
        memory.idle_since = None;
    } else if memory.idle_since.is_none() {
        memory.idle_since = Some(now);
    }

    // Manual changes: a desired value we did not set.
    if let Some(ours) = memory.last_set_desired
        && ours != observed.desired
        && memory.manual_change_at.is_none()
    {
        memory.manual_change_at = Some(now);
    }
    if let Some(changed_at) = memory.manual_change_at {
        let transition_since = schedule.and_then(|s| s.next_transition(changed_at)).is_some_and(|t| t <= now);
        if rule.enforce || transition_since || forced_phase.is_some() {
            // Enforced, or the schedule moved on: the manual change is over; adopt what is there as the baseline.
            memory.manual_change_at = None;
            memory.last_set_desired = Some(observed.desired);
        } else {
            let until = schedule
                .and_then(|s| s.next_transition(changed_at))
                .map_or("a policy with enforce: true".to_owned(), |t| t.to_string());
            return Some(decision(
                observed,
                Outcome::Skip,
                format!("manual change honoured until the next schedule transition ({until})"),
                memory,
                Some(phase),
            ));
        }
    }

    let phase = Some(phase);
    match observed.state.as_str() {
        "STARTING" | "STOPPING" | "UPDATING" | "CREATING" => Some(decision(
            observed,
            Outcome::Wait,
            format!("{} is {}: waiting", observed.name, observed.state),
            memory,
            phase,
        )),
        "STOPPED" => {
            let foreseen = ahead.as_ref().filter(|ahead| ahead.expected > 0);
            let wanted = phase == Some(Phase::InHours) || bounds.min > 0 || foreseen.is_some();
            if !wanted {
                return Some(decision(
                    observed,
                    Outcome::Hold,
                    format!("{phase_label}: stopped, nothing needed"),
                    memory,
                    phase,
                ));
            }
            if !observed.stoppable {
                return Some(decision(
                    observed,
                    Outcome::Skip,
                    format!("{phase_label}: stopped but cannot be started by the API (running mode)"),
                    memory,
                    phase,
                ));
            }
            // Set the minimum (or what the forecast's peak needs: nothing can be added while it starts) first, so
            // the resource comes up with capacity rather than empty. The peak is sized with the bounds of the
            // phase it falls in: started just before prewarm, it comes up with the in-hours minimum, not the
            // off-hours one that prewarm would raise five minutes later (two updates for one).
            let peak_bounds = |ahead: &Ahead| match (forced_phase, schedule) {
                (None, Some(schedule)) if schedule.state_at(ahead.at).phase == Phase::InHours => &rule.in_hours,
                (None, Some(_)) => &rule.off_hours,
                _ => bounds,
            };
            let minimum =
                target_capacity(0, bounds).max(foreseen.map_or(0, |ahead| ahead.peak_within(peak_bounds(ahead))));
            let why = foreseen.map_or_else(String::new, |ahead| format!(": {}", ahead.why));
            if observed.desired != minimum {
                memory.last_set_desired = Some(minimum);
                let action = Action::SetDesired { from: observed.desired, to: minimum };
                let (from, unit) = (observed.desired, observed.kind.unit());
                let reason = if from < minimum {
                    format!("{phase_label}{why}: stopped; set minimum {from} → {minimum} {unit} before starting")
                } else {
                    // Started as it is, it would come up with all of them (a person stopped it at a higher
                    // capacity): the minimum first, and demand sizes it once it runs.
                    format!("{phase_label}{why}: stopped at {from} {unit}; set the minimum {minimum} before starting")
                };
                return Some(decision(observed, Outcome::Act(action), reason, memory, phase));
            }
            memory.idle_since = None;
            if rule.predictive.is_some() {
                memory.lead.rise(now, 0, observed.desired);
            }
            Some(decision(
                observed,
                Outcome::Act(Action::Start),
                format!("{phase_label}{why}: start (minimum {} {})", bounds.min, observed.kind.unit()),
                memory,
                phase,
            ))
        }
        "RUNNING" => {
            let at = Moment { now, trigger, phase };
            Some(running(observed, rule, bounds, &phase_label, memory, at, ahead.as_ref()))
        }
        other => {
            Some(decision(observed, Outcome::Skip, format!("unexpected state {other}: not touched"), memory, phase))
        }
    }
}

/// The capacity a running resource should have: enough for the sessions in use at the target utilization,
/// plus the buffer, within the bounds, never below what is in use.
pub fn target_capacity(in_use: u32, bounds: &Bounds) -> u32 {
    within_bounds(in_use, bounds).max(in_use)
}

/// The capacity `sessions` need at the target utilization, plus the buffer, within the bounds: for sessions
/// foreseen or remembered (a forecast, a recent peak), which never lift capacity above the phase's maximum;
/// only sessions in use now do ([`target_capacity`]).
fn within_bounds(sessions: u32, bounds: &Bounds) -> u32 {
    let utilization = bounds.target_utilization.get().max(f64::EPSILON);
    let needed = (f64::from(sessions) / utilization).ceil();
    let needed = if needed.is_finite() && needed < f64::from(u32::MAX) { needed as u32 } else { u32::MAX };
    needed.saturating_add(bounds.buffer).clamp(bounds.min, bounds.max.max(bounds.min))
}

/// What the forecast asks for (predictive rules with history for the next lead time).
#[derive(Debug, Clone, PartialEq)]
struct Ahead {
    /// Sessions (in `kind.unit()`) to expect within the lead time: in use now plus the forecast increase.
    expected: u32,
    /// The highest forecast within the lead time.
    demand: u32,
    /// When that forecast is for (the start of its slot, or now).
    at: DateTime<Utc>,
    /// "forecast 42 sessions at 08:30 (+12 on now), lead time 14 min".
    why: String,
}

impl Ahead {
    /// The capacity the phase's bounds give for the sessions expected.
    fn within(&self, bounds: &Bounds) -> u32 {
        within_bounds(self.expected, bounds)
    }

    /// The capacity the phase's bounds give for the highest forecast within the lead time (for a stopped
    /// resource, whose zero in use says nothing of the demand).
    fn peak_within(&self, bounds: &Bounds) -> u32 {
        within_bounds(self.expected.max(self.demand), bounds)
    }
}

/// When a running resource is decided: the instant, what asked, and the schedule's phase.
#[derive(Debug, Clone, Copy)]
struct Moment {
    now: DateTime<Utc>,
    trigger: Trigger,
    phase: Option<Phase>,
}

fn running(
    observed: &Observed,
    rule: &CapacityRule,
    bounds: &Bounds,
    phase_label: &str,
    mut memory: Memory,
    Moment { now, trigger, phase }: Moment,
    ahead: Option<&Ahead>,
) -> Decision {
    let unit = observed.kind.unit();
    let foreseen = ahead.filter(|ahead| ahead.demand > 0);
    if trigger == Trigger::Tick
        && phase == Some(Phase::OffHours)
        && bounds.stop_when_idle
        && observed.in_use == 0
        && observed.stoppable
        && foreseen.is_none()
    {
        let idle_since = memory.idle_since.unwrap_or(now);
        if now - idle_since >= bounds.idle_grace {
            return decision(
                observed,
                Outcome::Act(Action::Stop),
                format!("{phase_label}: idle since {idle_since}, stop"),
                memory,
                phase,
            );
        }
    }
    let current = observed.desired;
    let mut target = target_capacity(observed.in_use, bounds);
    // Predictive: at least what the forecast needs over the next lead time (so no scale-in before a ramp).
    let predicted = ahead.map(|ahead| ahead.within(bounds)).filter(|predicted| *predicted > target);
    target = target.max(predicted.unwrap_or(0));
    // Predictive: capacity released now takes a lead time to come back, so a dip in demand releases nothing the
    // last quarter-hour or so needed (its peak in use, as the profile keeps it).
    let recent_peak = if rule.predictive.is_some() { memory.profile.recent_peak(now) } else { None };
    let held =
        recent_peak.map(|peak| (peak, within_bounds(peak, bounds).min(current))).filter(|(_, held)| *held > target);
    target = target.max(held.map_or(0, |(_, held)| held));
    // Saturated (no free capacity): the sessions in use understate demand, so add headroom faster.
    let saturated = current > 0 && observed.in_use >= current;
    if saturated {
        let headroom = bounds.buffer.max(current.div_ceil(2)).min(rule.scale_out.max_step);
        target = target.max(current.saturating_add(headroom).min(bounds.max.max(bounds.min)));
    }
    let utilization = if current == 0 { 0.0 } else { f64::from(observed.in_use) / f64::from(current) };
    let peak = held.map_or_else(String::new, |(peak, _)| format!(", {peak} at the peak of the last quarter-hour"));
    let outlook = ahead.map_or_else(String::new, |ahead| format!("; {}", ahead.why));
    if target == current {
        memory.last_set_desired = Some(current);
        return decision(
            observed,
            Outcome::Hold,
            format!("{phase_label}: {current} {unit} is right ({} in use{peak}{outlook})", observed.in_use),
            memory,
            phase,
        );
    }
    let scaling_out = target > current;
    if !scaling_out && trigger == Trigger::SessionEvent {
        return decision(
            observed,
            Outcome::Wait,
            format!(
                "{phase_label}: wants {target} {unit}, scale-in waits for the tick ({} in use{outlook})",
                observed.in_use
            ),
            memory,
            phase,
        );
    }
    let (step, cooldown_since) = if scaling_out {
        (&rule.scale_out, memory.last_scale_out_at)
    } else {
        (&rule.scale_in, memory.last_scale_in_at.max(memory.last_scale_out_at))
    };
    if let Some(since) = cooldown_since
        && now - since < step.cooldown
    {
        let direction = if scaling_out { "scale-out" } else { "scale-in" };
        return decision(
            observed,
            Outcome::Wait,
            format!(
                "{phase_label}: wants {target} {unit}, {direction} cooldown until {}{outlook}",
                since + step.cooldown
            ),
            memory,
            phase,
        );
    }
    let to = if scaling_out {
        target.min(current.saturating_add(step.max_step))
    } else {
        target.max(current.saturating_sub(step.max_step))
    };
    if scaling_out {
        memory.last_scale_out_at = Some(now);
        if rule.predictive.is_some() {
            memory.lead.rise(now, observed.running, to);
        }
    } else {
        memory.last_scale_in_at = Some(now);
    }
    memory.last_set_desired = Some(to);
    let why = if let (Some(ahead), Some(predicted)) = (ahead, predicted)
        && target == predicted
    {
        ahead.why.clone()
    } else if saturated && scaling_out {
        format!("saturated ({} of {current} in use)", observed.in_use)
    } else if let Some((peak, held)) = held
        && target == held
    {
        format!("{} in use, {peak} at the peak of the last quarter-hour", observed.in_use)
    } else if observed.in_use > 0 && (f64::from(target) > f64::from(bounds.min)) {
        format!("utilization {utilization:.2} vs target {:.2}", bounds.target_utilization.get())
    } else if target == bounds.min {
        format!("minimum {}", bounds.min)
    } else {
        format!("{} in use{outlook}", observed.in_use)
    };
    let limited =
        if to != target { format!(" (step limit {}, target {target})", step.max_step) } else { String::new() };
    decision(
        observed,
        Outcome::Act(Action::SetDesired { from: current, to }),
        format!("{phase_label}: {why}: {current} → {to} {unit}{limited}"),
        memory,
        phase,
    )
}

#[cfg(test)]
mod tests;

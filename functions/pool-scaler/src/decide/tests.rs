//! Table and property tests of the decide step.

use super::*;
use autopilot_shared::resource::ResourceKind;
use chrono::{Duration, TimeZone};
use proptest::prelude::*;

const POLICY: &str = r#"
version: 1
calendars: { h: [2026-12-24] }
schedules:
  office:
    timezone: Europe/Berlin
    periods: [{ days: [mon-fri], start: "07:00", end: "19:00" }]
    holidays: h
    prewarm: 30m
capacity:
  - select: { tag: { team: sales } }
    schedule: office
    in_hours:  { min: 10, max: 100, target_utilization: 0.8, buffer: 2 }
    off_hours: { min: 0, max: 10, stop_when_idle: true, idle_grace: 30m }
    scale_out: { cooldown: 3m, max_step: 20 }
    scale_in:  { cooldown: 20m, max_step: 10 }
  - select: { tag: { team: ops } }
    in_hours: { min: 2, max: 50 }
    enforce: true
  - select: { names: [dup] }
    in_hours: { min: 1, max: 5 }
  - select: { tag: { team: dup } }
    in_hours: { min: 1, max: 5 }
"#;

fn policy() -> Policy {
    Policy::from_yaml(POLICY).unwrap()
}

/// Berlin local time on Monday 2026-11-23 (UTC+1).
fn berlin(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, hour - 1, minute, 0).single().unwrap()
}

fn pool(team: &str, state: &str, desired: u32, in_use: u32) -> Observed {
    Observed {
        resource: ResourceRef::new("123456789012", "eu-central-1", ResourceKind::WorkspacesPool, "wspool-1").unwrap(),
        name: "sales".into(),
        kind: Kind::Pool,
        state: state.into(),
        stoppable: true,
        desired,
        in_use,
        running: desired,
        tags: [("team".to_owned(), team.to_owned())].into(),
        managed_by_autoscaling: false,
    }
}

fn decide(observed: &Observed, memory: Memory, now: DateTime<Utc>) -> Decision {
    decide_one(observed, &policy(), memory, "autopilot/", now).expect("targeted")
}

fn check(observed: Observed, memory: Memory, now: DateTime<Utc>, outcome: Outcome, reason_contains: &str) {
    let d = decide(&observed, memory, now);
    assert_eq!(d.outcome, outcome, "{}", d.reason);
    assert!(d.reason.contains(reason_contains), "reason {:?} lacks {reason_contains:?}", d.reason);
}

#[test]
fn decisions_by_schedule_utilization_and_state() {
    use Action::*;
    use Outcome::*;
    // prewarm at 06:30: stopped pool starts
    check(pool("sales", "STOPPED", 10, 0), Memory::default(), berlin(6, 30), Act(Start), "prewarm");
    // stopped at a higher capacity (a person stopped it at 40): the minimum first, so it does not start with all 40
    check(
        pool("sales", "STOPPED", 40, 0),
        Memory::default(),
        berlin(6, 30),
        Act(SetDesired { from: 40, to: 10 }),
        "stopped at 40 sessions; set the minimum 10 before starting",
    );
    // 06:29 is still off-hours: stays stopped
    check(pool("sales", "STOPPED", 10, 0), Memory::default(), berlin(6, 29), Hold, "off-hours");
    // in-hours, 40 in use at 0.8 + 2 → 52, from 30 with max step 20 → 50
    check(
        pool("sales", "RUNNING", 30, 40),
        Memory::default(),
        berlin(10, 0),
        Act(SetDesired { from: 30, to: 50 }),
        "30 → 50 sessions (step limit 20, target 52)",
    );
    // in-hours, quiet: min 10
    check(pool("sales", "RUNNING", 10, 0), Memory::default(), berlin(10, 0), Hold, "is right");
    // scale-in limited by max step 10
    check(
        pool("sales", "RUNNING", 60, 8),
        Memory::default(),
        berlin(15, 0),
        Act(SetDesired { from: 60, to: 50 }),
        "step limit 10",
    );
    // evening: off-hours max 10 but 14 sessions still in use → never below in use
    check(
        pool("sales", "RUNNING", 20, 14),
        Memory::default(),
        berlin(19, 30),
        Act(SetDesired { from: 20, to: 14 }),
        "off-hours",
    );
    // off-hours idle: stop only after the grace period
    let idle = Memory { idle_since: Some(berlin(20, 0)), ..Memory::default() };
    check(
        pool("sales", "RUNNING", 10, 0),
        idle.clone(),
        berlin(20, 29),
        Act(SetDesired { from: 10, to: 0 }),
        "off-hours",
    );
    check(pool("sales", "RUNNING", 0, 0), idle, berlin(20, 30), Act(Stop), "idle since");
    // busy states wait
    check(pool("sales", "UPDATING", 10, 0), Memory::default(), berlin(10, 0), Wait, "UPDATING");
    check(pool("sales", "STARTING", 10, 0), Memory::default(), berlin(10, 0), Wait, "STARTING");
    check(pool("sales", "DELETING", 10, 0), Memory::default(), berlin(10, 0), Skip, "unexpected state");
}

#[test]
fn holidays_stay_off() {
    let christmas_eve = Utc.with_ymd_and_hms(2026, 12, 24, 9, 0, 0).single().unwrap();
    check(pool("sales", "STOPPED", 10, 0), Memory::default(), christmas_eve, Outcome::Hold, "holiday 2026-12-24");
}

#[test]
fn cooldowns_hold_back_repeated_scaling() {
    let recently_out = Memory { last_scale_out_at: Some(berlin(9, 58)), ..Memory::default() };
    check(pool("sales", "RUNNING", 30, 40), recently_out.clone(), berlin(10, 0), Outcome::Wait, "scale-out cooldown");
    check(
        pool("sales", "RUNNING", 30, 40),
        recently_out.clone(),
        berlin(10, 1),
        Outcome::Act(Action::SetDesired { from: 30, to: 50 }),
        "",
    );
    // scale-in waits for its own cooldown after any scale-out
    check(pool("sales", "RUNNING", 60, 8), recently_out, berlin(10, 10), Outcome::Wait, "scale-in cooldown");
}

#[test]
fn skips_and_overrides() {
    let mut skipped = pool("sales", "RUNNING", 30, 40);
    skipped.tags.insert("autopilot/skip".into(), "true".into());
    check(skipped, Memory::default(), berlin(10, 0), Outcome::Skip, "tagged autopilot/skip");
    let mut managed = pool("sales", "RUNNING", 30, 40);
    managed.managed_by_autoscaling = true;
    check(managed, Memory::default(), berlin(10, 0), Outcome::Skip, "Application Auto Scaling");
    let mut both = pool("dup", "RUNNING", 3, 0);
    both.name = "dup".into();
    check(both, Memory::default(), berlin(10, 0), Outcome::Skip, "selected by 2 rules (capacity[2], capacity[3])");
    assert!(
        decide_one(&pool("nobody", "RUNNING", 3, 0), &policy(), Memory::default(), "autopilot/", berlin(10, 0))
            .is_none()
    );
    // an override to in-hours at night starts the pool; it ends when it expires
    let mut forced = pool("sales", "STOPPED", 10, 0);
    forced.tags.insert("autopilot/override".into(), "in-hours".into());
    forced.tags.insert("autopilot/override-until".into(), "2026-11-23T22:00:00Z".into());
    check(forced.clone(), Memory::default(), berlin(22, 0), Outcome::Act(Action::Start), "override tag");
    check(forced, Memory::default(), berlin(23, 30), Outcome::Hold, "off-hours");
    let mut broken = pool("sales", "RUNNING", 30, 40);
    broken.tags.insert("autopilot/override".into(), "weekend".into());
    check(broken, Memory::default(), berlin(10, 0), Outcome::Skip, "invalid");
}

#[test]
fn manual_changes_are_honoured_until_the_next_transition_unless_enforced() {
    let ours = Memory { last_set_desired: Some(30), ..Memory::default() };
    // someone set 45: honoured in-hours
    let d = decide(&pool("sales", "RUNNING", 45, 10), ours.clone(), berlin(11, 0));
    assert_eq!(d.outcome, Outcome::Skip);
    assert!(d.reason.contains("manual change honoured"), "{}", d.reason);
    assert_eq!(d.memory.manual_change_at, Some(berlin(11, 0)));
    // still honoured later the same period
    check(pool("sales", "RUNNING", 45, 10), d.memory.clone(), berlin(18, 0), Outcome::Skip, "manual change honoured");
    // after 19:00 the schedule moved on: the policy applies again
    let after = decide(&pool("sales", "RUNNING", 45, 10), d.memory, berlin(19, 5));
    assert_eq!(after.outcome, Outcome::Act(Action::SetDesired { from: 45, to: 35 }), "{}", after.reason);
    assert_eq!(after.memory.manual_change_at, None);
    // enforce: true reverts at once
    let mut ops = pool("ops", "RUNNING", 40, 0);
    ops.name = "ops".into();
    let reverted = decide(&ops, Memory { last_set_desired: Some(2), ..Memory::default() }, berlin(11, 0));
    // reverted toward the policy, one scale-in step (10) at a time
    assert_eq!(reverted.outcome, Outcome::Act(Action::SetDesired { from: 40, to: 30 }), "{}", reverted.reason);
}

#[test]
fn fleets_count_in_their_own_unit() {
    let mut fleet = pool("sales", "RUNNING", 10, 9);
    fleet.kind = Kind::SingleSessionFleet;
    let d = decide(&fleet, Memory::default(), berlin(10, 0));
    assert!(d.reason.contains("instances"), "{}", d.reason);
    fleet.kind = Kind::MultiSessionFleet;
    let d = decide(&fleet, Memory::default(), berlin(10, 0));
    assert!(d.reason.contains("sessions"), "{}", d.reason);
}

/// The sales rule with `predictive` on, and a memory that saw a week of office demand: 0 overnight, 30 from
/// 08:00, 60 from 09:00 to 17:00 (Berlin), weekdays.
fn predictive_policy() -> Policy {
    Policy::from_yaml(&POLICY.replace(
        "    scale_in:  { cooldown: 20m, max_step: 10 }\n  - select: { tag: { team: ops } }",
        "    scale_in:  { cooldown: 20m, max_step: 10 }\n    predictive: {}\n  - select: { tag: { team: ops } }",
    ))
    .unwrap()
}

fn a_week_learned(policy: &Policy) -> Memory {
    let mut memory = Memory::default();
    let mut at = berlin(1, 0) - Duration::days(7);
    while at < berlin(1, 0) {
        let local = at.with_timezone(&chrono_tz::Europe::Berlin);
        let weekday = chrono::Datelike::weekday(&local).num_days_from_monday() < 5;
        let in_use = match chrono::Timelike::hour(&local) {
            8 if weekday => 30,
            9..=16 if weekday => 60,
            _ => 0,
        };
        let observed = pool("sales", "RUNNING", in_use + 5, in_use);
        memory = decide_one(&observed, policy, memory, "autopilot/", at).expect("targeted").memory;
        at += Duration::minutes(5);
    }
    // What was learned, and nothing else (the desired values above were not ours).
    Memory { profile: memory.profile, ..Memory::default() }
}

#[test]
fn a_predictive_rule_releases_nothing_the_last_quarter_hour_needed() {
    let policy = predictive_policy();
    let decide =
        |observed: &Observed, memory: Memory, now| decide_one(observed, &policy, memory, "autopilot/", now).unwrap();
    // 60 in use at 10:00 with 77 (60 at 0.8 + 2), then a dip to 40 at 10:05: the 77 stay, since what is
    // released now takes a lead time to come back.
    let learned = a_week_learned(&policy);
    let at_ten = decide(&pool("sales", "RUNNING", 77, 60), learned.clone(), berlin(10, 0));
    assert_eq!(at_ten.outcome, Outcome::Hold, "{}", at_ten.reason);
    let dip = decide(&pool("sales", "RUNNING", 77, 40), at_ten.memory.clone(), berlin(10, 5));
    assert_eq!(dip.outcome, Outcome::Hold, "{}", dip.reason);
    assert!(
        dip.reason.contains("77 sessions is right (40 in use, 60 at the peak of the last quarter-hour"),
        "{}",
        dip.reason
    );
    // The slot before still counts while it closed less than two slots ago (at 10:20, 10:00's 60)...
    let later = decide(&pool("sales", "RUNNING", 77, 40), dip.memory.clone(), berlin(10, 20));
    assert_eq!(later.outcome, Outcome::Hold, "{}", later.reason);
    // ... and not once a quarter-hour of 40 has passed since: 40 at 0.8 + 2 = 52.
    let after = decide(&pool("sales", "RUNNING", 77, 40), later.memory.clone(), berlin(10, 35));
    assert_eq!(after.outcome, Outcome::Act(Action::SetDesired { from: 77, to: 67 }), "{}", after.reason); // step 10
    // Without `predictive` the dip releases at once.
    let reactive =
        decide_one(&pool("sales", "RUNNING", 77, 40), &self::policy(), Memory::default(), "autopilot/", berlin(10, 5));
    assert!(matches!(reactive.unwrap().outcome, Outcome::Act(Action::SetDesired { to: 67, .. })));
}

#[test]
fn a_scale_in_the_peak_holds_back_names_the_peak() {
    let policy = predictive_policy();
    let learned = a_week_learned(&policy);
    let at_ten = decide_one(&pool("sales", "RUNNING", 77, 60), &policy, learned, "autopilot/", berlin(10, 0)).unwrap();
    // 100 sessions with 40 in use after 60 at 10:00: down to the 77 the peak needs, not the 52 the 40 need
    let over = decide_one(
        &pool("sales", "RUNNING", 84, 40),
        &policy,
        Memory { last_set_desired: None, ..at_ten.memory },
        "autopilot/",
        berlin(10, 5),
    );
    let over = over.unwrap();
    assert_eq!(over.outcome, Outcome::Act(Action::SetDesired { from: 84, to: 77 }), "{}", over.reason);
    assert!(
        over.reason.contains("40 in use, 60 at the peak of the last quarter-hour: 84 → 77 sessions"),
        "{}",
        over.reason
    );
}

#[test]
fn a_session_event_only_adds_capacity_scale_in_and_stops_wait_for_the_tick() {
    let policy = policy();
    let at = |observed: &Observed, now, trigger| {
        super::decide(observed, &policy, Memory::default(), "autopilot/", now, trigger).unwrap()
    };
    // 40 sessions with 10 in use: a tick scales in, a session event leaves it to the tick and remembers nothing
    let tick = at(&pool("sales", "RUNNING", 40, 10), berlin(10, 0), Trigger::Tick);
    assert_eq!(tick.outcome, Outcome::Act(Action::SetDesired { from: 40, to: 30 }), "{}", tick.reason);
    let event = at(&pool("sales", "RUNNING", 40, 10), berlin(10, 0), Trigger::SessionEvent);
    assert_eq!(event.outcome, Outcome::Wait, "{}", event.reason);
    assert!(event.reason.contains("wants 15 sessions, scale-in waits for the tick (10 in use)"), "{}", event.reason);
    assert_eq!((event.memory.last_scale_in_at, event.memory.last_set_desired), (None, None));
    // idle off-hours past the grace: a tick stops it, an event does not
    let idle = Memory { idle_since: Some(berlin(20, 0)), ..Memory::default() };
    let stop = super::decide(
        &pool("sales", "RUNNING", 0, 0),
        &policy,
        idle.clone(),
        "autopilot/",
        berlin(21, 0),
        Trigger::Tick,
    );
    let stop = stop.unwrap();
    assert_eq!(stop.outcome, Outcome::Act(Action::Stop), "{}", stop.reason);
    let event = super::decide(
        &pool("sales", "RUNNING", 0, 0),
        &policy,
        idle,
        "autopilot/",
        berlin(21, 0),
        Trigger::SessionEvent,
    );
    assert!(!matches!(event.unwrap().outcome, Outcome::Act(_)));
    // saturated: an event scales out at once, as the tick would
    let out = at(&pool("sales", "RUNNING", 20, 20), berlin(10, 0), Trigger::SessionEvent);
    assert_eq!(out.outcome, Outcome::Act(Action::SetDesired { from: 20, to: 30 }), "{}", out.reason);
}

#[test]
fn predictive_rules_scale_ahead_of_the_forecast_and_explain_it() {
    let policy = predictive_policy();
    let decide =
        |observed: &Observed, memory: Memory, now| decide_one(observed, &policy, memory, "autopilot/", now).unwrap();
    // No history: reactive, as without `predictive` (10 in use at 0.8 + 2 → 15).
    let d = decide(&pool("sales", "RUNNING", 10, 10), Memory::default(), berlin(8, 45));
    assert_eq!(d.outcome, Outcome::Act(Action::SetDesired { from: 10, to: 15 }), "{}", d.reason);
    assert!(!d.reason.contains("forecast"), "{}", d.reason);
    // A week learned: at 08:40, 60 sessions are forecast for 09:00. The level (each slot's forecast at its
    // middle, straight between) rises from 30 now to 45 at 09:00, the window's end (08:40 + 15 min lead + 5 min
    // tick): with 30 in use now, 45 are expected → 45 at 0.8 + 2 = 59.
    let learned = a_week_learned(&policy);
    let d = decide(&pool("sales", "RUNNING", 40, 30), learned.clone(), berlin(8, 40));
    assert_eq!(d.outcome, Outcome::Act(Action::SetDesired { from: 40, to: 59 }), "{}", d.reason);
    assert!(
        d.reason.contains(
            "forecast 60 sessions at 09:00 (+15 on now), lead time 15 min (not learned yet): 40 → 59 sessions"
        ),
        "{}",
        d.reason
    );
    // This week runs lower than the last (20 in use): the increase is added to what is in use, not the level.
    let d = decide(&pool("sales", "RUNNING", 40, 20), learned.clone(), berlin(8, 40));
    assert!(d.reason.ends_with("40 → 46 sessions"), "{}", d.reason); // 35 at 0.8 + 2
    // The rise is timed: once 60 run, the lead time is learned.
    let rise = decide(&pool("sales", "RUNNING", 40, 30), learned.clone(), berlin(8, 40)).memory;
    let d = decide(&Observed { running: 60, ..pool("sales", "RUNNING", 60, 35) }, rise, berlin(8, 52));
    assert_eq!(d.memory.lead.learned(), Some(Duration::minutes(12)));
    // Flat forecast at 10:00: as reactive (40 in use → 52), with the outlook in the reason.
    let d = decide(&pool("sales", "RUNNING", 52, 40), learned.clone(), berlin(10, 0));
    assert_eq!(d.outcome, Outcome::Hold, "{}", d.reason);
    assert!(
        d.reason.contains("52 sessions is right (40 in use; forecast 60 sessions at 10:00 (+0 on now)"),
        "{}",
        d.reason
    );
    // At 17:30 the forecast is 0: scale in.
    let d = decide(&pool("sales", "RUNNING", 66, 20), learned.clone(), berlin(17, 30));
    assert!(matches!(d.outcome, Outcome::Act(Action::SetDesired { to: 56, .. })), "{}", d.reason);
    // A stopped pool is started ahead of a forecast even off-hours (here: a demand learned at 06:00).
    let mut early = learned.clone();
    for week in [14, 7] {
        early.profile.observe(berlin(6, 0) - Duration::days(week), 4, chrono_tz::Europe::Berlin, false, 3);
        early.profile.observe(berlin(6, 15) - Duration::days(week), 0, chrono_tz::Europe::Berlin, false, 3);
    }
    let d = decide(&pool("sales", "STOPPED", 0, 0), early.clone(), berlin(5, 45));
    assert_eq!(d.outcome, Outcome::Act(Action::SetDesired { from: 0, to: 6 }), "{}", d.reason); // 4 at 0.75
    assert!(
        d.reason.contains("off-hours (outside schedule periods): forecast 4 sessions at 06:00 (+3 on now)"),
        "{}",
        d.reason
    );
    let d = decide(&pool("sales", "STOPPED", 6, 0), early.clone(), berlin(5, 45));
    assert_eq!(d.outcome, Outcome::Act(Action::Start), "{}", d.reason);
    // Demand learned at 06:30, when prewarm begins: a pool stopped at 20 at 06:15 is set to the in-hours minimum
    // (10) before it starts, not to the off-hours 6 that prewarm would raise to 10 at 06:30 (two updates for one).
    let mut at_prewarm = learned.clone();
    for week in [14, 7] {
        at_prewarm.profile.observe(berlin(6, 30) - Duration::days(week), 4, chrono_tz::Europe::Berlin, false, 3);
        at_prewarm.profile.observe(berlin(6, 45) - Duration::days(week), 0, chrono_tz::Europe::Berlin, false, 3);
    }
    let d = decide(&pool("sales", "STOPPED", 20, 0), at_prewarm.clone(), berlin(6, 15));
    assert_eq!(d.outcome, Outcome::Act(Action::SetDesired { from: 20, to: 10 }), "{}", d.reason);
    let d = decide(&pool("sales", "RUNNING", 10, 0), d.memory, berlin(6, 30));
    assert_eq!(d.outcome, Outcome::Hold, "{}", d.reason);
    // A forecast above the phase's maximum (50 at 06:00, off-hours max 10) asks for the maximum, not more: only
    // sessions in use lift capacity above it.
    let mut busy = learned.clone();
    for week in [14, 7] {
        busy.profile.observe(berlin(6, 0) - Duration::days(week), 50, chrono_tz::Europe::Berlin, false, 3);
        busy.profile.observe(berlin(6, 15) - Duration::days(week), 0, chrono_tz::Europe::Berlin, false, 3);
    }
    let d = decide(&pool("sales", "STOPPED", 0, 0), busy.clone(), berlin(5, 45));
    assert_eq!(d.outcome, Outcome::Act(Action::SetDesired { from: 0, to: 10 }), "{}", d.reason);
    let d = decide(&pool("sales", "RUNNING", 10, 2), busy, berlin(5, 50));
    assert_eq!(d.outcome, Outcome::Hold, "{}", d.reason);
    // ... and an idle pool is not stopped while demand is forecast.
    let idle = Memory { idle_since: Some(berlin(4, 0)), ..early };
    let d = decide(&pool("sales", "RUNNING", 6, 0), idle.clone(), berlin(5, 45));
    assert_ne!(d.outcome, Outcome::Act(Action::Stop), "{}", d.reason);
    let d = decide(&pool("sales", "RUNNING", 0, 0), idle, berlin(6, 20));
    assert_eq!(d.outcome, Outcome::Act(Action::Stop), "{}", d.reason);
    // Christmas Eve (a holiday in the rule's schedule): nothing forecast, nothing started.
    let eve = Utc.with_ymd_and_hms(2026, 12, 24, 7, 45, 0).single().unwrap();
    let mut thursday = learned;
    for week in 1..=4 {
        thursday.profile.observe(eve - Duration::days(7 * week), 50, chrono_tz::Europe::Berlin, false, 3);
        thursday.profile.observe(
            eve - Duration::days(7 * week) + Duration::minutes(15),
            50,
            chrono_tz::Europe::Berlin,
            false,
            3,
        );
    }
    let d = decide(&pool("sales", "STOPPED", 0, 0), thursday, eve);
    assert_eq!(d.outcome, Outcome::Hold, "{}", d.reason);
}

fn arb_bounds() -> impl Strategy<Value = (u32, u32, f64, u32)> {
    (0u32..50, 0u32..200, 0.05f64..=1.0, 0u32..10)
        .prop_map(|(min, extra, util, buffer)| (min, min + extra, util, buffer))
}

proptest! {
    /// The target is always within the bounds, or at the sessions in use when they exceed the maximum.
    #[test]
    fn target_within_bounds_and_never_below_in_use((min, max, util, buffer) in arb_bounds(), in_use in 0u32..500) {
        let yaml = format!("version: 1\ncapacity:\n  - select: {{ ids: [x] }}\n    in_hours: {{ min: {min}, max: {max}, target_utilization: {util}, buffer: {buffer} }}\n");
        let policy = Policy::from_yaml(&yaml).unwrap();
        let bounds = &policy.capacity[0].in_hours;
        let target = target_capacity(in_use, bounds);
        prop_assert!(target >= in_use);
        prop_assert!(target >= min);
        prop_assert!(target <= max.max(in_use));
    }

    /// Whatever is observed, an action moves desired capacity toward the target (within bounds, never below
    /// the sessions in use) by at most one step, and remembers what it set.
    #[test]
    fn actions_respect_bounds_steps_and_sessions(desired in 0u32..300, in_use in 0u32..300, minute in 0i64..(7 * 24 * 60)) {
        let now = berlin(1, 0) + Duration::minutes(minute);
        let observed = pool("sales", "RUNNING", desired, in_use.min(desired));
        let d = decide(&observed, Memory::default(), now);
        if let Outcome::Act(Action::SetDesired { from, to }) = d.outcome {
            prop_assert_eq!(from, desired);
            prop_assert!(to >= observed.in_use, "{}", d.reason);
            prop_assert!(to.abs_diff(from) <= 20);
            let policy = policy();
            let bounds = if d.phase == Some(Phase::InHours) { &policy.capacity[0].in_hours } else { &policy.capacity[0].off_hours };
            let target = target_capacity(observed.in_use, bounds);
            prop_assert!(to <= bounds.max.max(observed.in_use).max(from), "{} above the maximum {}", to, bounds.max);
            let saturated = from > 0 && observed.in_use >= from;
            if !saturated {
                prop_assert!(from.min(target) <= to && to <= from.max(target), "{} not between {} and {}", to, from, target);
            }
            prop_assert_eq!(d.memory.last_set_desired, Some(to));
        }
    }
}

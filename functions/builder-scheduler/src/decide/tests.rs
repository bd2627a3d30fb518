//! Table and property tests of the decide step.

use super::*;
use autopilot_shared::resource::ResourceKind;
use chrono::TimeZone;
use proptest::prelude::*;

const POLICY: &str = r#"
version: 1
schedules:
  office:
    timezone: Europe/Berlin
    periods: [{ days: [mon-fri], start: "08:00", end: "18:00" }]
image_builders:
  - select: { tag: { team: golden } }
    schedule: office
    max_runtime: 4h
    warn_before: 15m
  - select: { tag: { team: stop-only } }
    schedule: office
    on_schedule: [stop]
    warn_before: 0s
  - select: { tag: { team: forgotten } }
    max_runtime: 2h
  - select: { names: [dup] }
    max_runtime: 2h
  - select: { tag: { team: dup } }
    max_runtime: 2h
"#;

fn policy() -> Policy {
    Policy::from_yaml(POLICY).unwrap()
}

/// Berlin local time on Monday 2026-11-23 (UTC+1).
fn berlin(hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).single().unwrap()
        + Duration::hours(i64::from(hour) - 1)
        + Duration::minutes(i64::from(minute))
}

fn builder(team: &str, state: &str) -> Observed {
    Observed {
        resource: ResourceRef::new("123456789012", "eu-central-1", ResourceKind::ImageBuilder, "b1").unwrap(),
        name: "b1".into(),
        state: state.into(),
        tags: [("team".to_owned(), team.to_owned())].into(),
        errors: Vec::new(),
    }
}

fn decide(observed: &Observed, memory: Memory, now: DateTime<Utc>) -> Decision {
    decide_one(observed, &policy(), memory, "autopilot/", now).expect("selected")
}

/// Memory of a builder seen in `state` at `at` (a run began at `at` when it is up).
fn seen(state: &str, at: DateTime<Utc>) -> Memory {
    let up = StateClass::of(state).is_up() == Some(true);
    Memory {
        last_seen_state: Some(state.into()),
        state_since: Some(at),
        running_since: up.then_some(at),
        last_down_at: (!up).then_some(at),
        ..Memory::default()
    }
}

#[test]
fn in_hours_starts_a_stopped_builder_once_per_phase() {
    let d = decide(&builder("golden", "STOPPED"), seen("STOPPED", berlin(7, 55)), berlin(8, 0));
    let Outcome::Act(Action::Start { cause }) = &d.outcome else { panic!("{d:?}") };
    // the cause is the end of this in-hours phase: the same for every tick of the phase
    assert_eq!(cause, "schedule@2026-11-23T17:00Z");
    let later = decide(&builder("golden", "STOPPED"), seen("STOPPED", berlin(7, 55)), berlin(9, 0));
    assert_eq!(later.outcome, d.outcome);
    assert_eq!(d.memory.own_change.map(|c| c.direction), Some(Direction::Start));
}

#[test]
fn off_hours_stop_is_warned_first_then_made() {
    let memory = seen("RUNNING", berlin(14, 0));
    // 17:45: 15 minutes before the 18:00 stop → warning for 18:00
    let d = decide(&builder("golden", "RUNNING"), memory.clone(), berlin(17, 45));
    let Outcome::Act(Action::Warn { cause, stop_at }) = &d.outcome else { panic!("{d:?}") };
    assert_eq!(*stop_at, berlin(18, 0));
    // the stop's cause is the end of the off-hours phase that begins at 18:00: next morning 08:00
    assert_eq!(cause, "schedule@2026-11-24T07:00Z");
    // 17:50: already warned → hold
    let d2 = decide(&builder("golden", "RUNNING"), d.memory.clone(), berlin(17, 50));
    assert_eq!(d2.outcome, Outcome::Hold, "{}", d2.reason);
    // 18:00: the warned stop is made
    let d3 = decide(&builder("golden", "RUNNING"), d2.memory, berlin(18, 0));
    assert_eq!(d3.outcome, Outcome::Act(Action::Stop { cause: cause.clone() }), "{}", d3.reason);
}

#[test]
fn a_stop_due_without_warning_is_announced_and_postponed() {
    // first sight of a builder running at 22:00 (off-hours)
    let d = decide(&builder("golden", "RUNNING"), Memory::default(), berlin(22, 0));
    let Outcome::Act(Action::Warn { stop_at, .. }) = &d.outcome else { panic!("{d:?}") };
    assert_eq!(*stop_at, berlin(22, 15));
    let d2 = decide(&builder("golden", "RUNNING"), d.memory.clone(), berlin(22, 10));
    assert_eq!(d2.outcome, Outcome::Wait, "{}", d2.reason);
    let d3 = decide(&builder("golden", "RUNNING"), d2.memory, berlin(22, 15));
    assert!(matches!(d3.outcome, Outcome::Act(Action::Stop { .. })), "{}", d3.reason);
}

#[test]
fn a_builder_first_seen_just_before_its_stop_still_gets_warn_before_of_notice() {
    // first sight at 17:55 of a builder running since 09:00: the 18:00 stop is announced for 18:10, 15 minutes on
    let d = decide(&builder("golden", "RUNNING"), seen("RUNNING", berlin(17, 55)), berlin(17, 55));
    let Outcome::Act(Action::Warn { stop_at, .. }) = &d.outcome else { panic!("{d:?}") };
    assert_eq!(*stop_at, berlin(18, 10), "{}", d.reason);
    assert!(d.reason.contains("announced for") && d.reason.contains("15m ahead"), "{}", d.reason);
    // and it is stopped then, not at 18:00
    let at_six = decide(&builder("golden", "RUNNING"), d.memory.clone(), berlin(18, 0));
    assert_eq!(at_six.outcome, Outcome::Wait, "{}", at_six.reason);
    let later = decide(&builder("golden", "RUNNING"), at_six.memory, berlin(18, 10));
    assert!(matches!(later.outcome, Outcome::Act(Action::Stop { .. })), "{}", later.reason);
}

#[test]
fn without_warn_before_the_stop_is_immediate() {
    let d = decide(&builder("stop-only", "RUNNING"), seen("RUNNING", berlin(9, 0)), berlin(18, 0));
    assert!(matches!(d.outcome, Outcome::Act(Action::Stop { .. })), "{}", d.reason);
    // stop-only: never started in-hours
    let d = decide(&builder("stop-only", "STOPPED"), seen("STOPPED", berlin(7, 0)), berlin(9, 0));
    assert_eq!(d.outcome, Outcome::Hold);
}

#[test]
fn busy_builders_are_never_interrupted() {
    for state in [
        "SNAPSHOTTING",
        "PENDING",
        "UPDATING_AGENT",
        "UPDATING",
        "REBOOTING",
        "SYNCING_APPS",
        "PENDING_QUALIFICATION",
        "PENDING_SOMETHING_NEW",
    ] {
        let mut memory = seen("RUNNING", berlin(9, 0));
        memory.warned = Some(Warned { cause: "schedule@2026-11-24T07:00Z".into(), stop_at: berlin(18, 0) });
        let d = decide(&builder("golden", state), memory, berlin(18, 5));
        assert_eq!(d.outcome, Outcome::Defer, "{state}: {}", d.reason);
        assert!(d.reason.contains(state), "{}", d.reason);
        assert_eq!(d.memory.deferred.as_deref(), Some(format!("schedule@2026-11-24T07:00Z#{state}").as_str()));
    }
    // back to RUNNING after the snapshot: the announced stop is made
    let mut memory = seen("SNAPSHOTTING", berlin(17, 50));
    memory.running_since = Some(berlin(9, 0));
    memory.warned = Some(Warned { cause: "schedule@2026-11-24T07:00Z".into(), stop_at: berlin(18, 0) });
    let d = decide(&builder("golden", "RUNNING"), memory, berlin(18, 30));
    assert!(matches!(d.outcome, Outcome::Act(Action::Stop { .. })), "{}", d.reason);
}

#[test]
fn a_create_image_event_defers_the_stop_until_the_snapshot() {
    let mut memory = seen("RUNNING", berlin(9, 0));
    memory.warned = Some(Warned { cause: "schedule@2026-11-24T07:00Z".into(), stop_at: berlin(18, 0) });
    memory.snapshot_requested_at = Some(berlin(17, 58));
    let d = decide(&builder("golden", "RUNNING"), memory.clone(), berlin(18, 0));
    assert_eq!(d.outcome, Outcome::Defer, "{}", d.reason);
    // the request is forgotten once the builder is seen SNAPSHOTTING, or after the grace
    let d = decide(&builder("golden", "RUNNING"), memory, berlin(18, 30));
    assert!(matches!(d.outcome, Outcome::Act(Action::Stop { .. })), "{}", d.reason);
}

#[test]
fn deleting_is_never_touched_and_failed_is_reported_once() {
    let d = decide(&builder("golden", "DELETING"), seen("RUNNING", berlin(9, 0)), berlin(22, 0));
    assert_eq!(d.outcome, Outcome::Skip);
    let d = decide(&builder("golden", "FAILED"), seen("RUNNING", berlin(9, 0)), berlin(22, 0));
    assert_eq!(d.outcome, Outcome::Act(Action::Report { state: "FAILED".into(), since: berlin(22, 0) }));
    let again = decide(&builder("golden", "FAILED"), d.memory, berlin(22, 5));
    assert_eq!(again.outcome, Outcome::Skip, "{}", again.reason);
    let unknown = decide(&builder("golden", "LEVITATING"), Memory::default(), berlin(22, 0));
    assert!(matches!(unknown.outcome, Outcome::Act(Action::Report { .. })), "{}", unknown.reason);
}

#[test]
fn max_runtime_is_measured_from_the_run_start() {
    // a person started it at 23:10 (the CloudTrail event set running_since)
    let mut memory = seen("STOPPED", berlin(23, 0));
    memory.running_since = Some(berlin(23, 10));
    memory.manual_change = Some(Change { direction: Direction::Start, at: berlin(23, 10) });
    let t = |h: i64, m: i64| berlin(23, 10) + Duration::hours(h) + Duration::minutes(m);
    // forgotten rule: max 2h, default warning 15m → warning at 01:10−15m, stop at 01:10
    let d = decide(&builder("forgotten", "RUNNING"), memory, t(0, 5));
    assert_eq!(d.outcome, Outcome::Hold, "{}", d.reason);
    assert_eq!(d.memory.running_since, Some(berlin(23, 10)));
    let d = decide(&builder("forgotten", "RUNNING"), d.memory, t(1, 45));
    let Outcome::Act(Action::Warn { stop_at, cause }) = &d.outcome else { panic!("{d:?}") };
    assert_eq!(*stop_at, t(2, 0));
    assert_eq!(cause, "max-runtime@2026-11-23T22:10:00Z");
    let d = decide(&builder("forgotten", "RUNNING"), d.memory, t(2, 0));
    assert!(matches!(d.outcome, Outcome::Act(Action::Stop { .. })), "{}", d.reason);
}

#[test]
fn a_builder_stopped_for_its_max_runtime_is_not_started_again_in_the_same_phase() {
    // a person started it at 04:00; its 4 h run ends at 08:00, as the working day begins (announced at 07:45)
    let mut memory = seen("RUNNING", berlin(4, 0));
    let cause = "max-runtime@2026-11-23T03:00:00Z".to_owned();
    memory.warned = Some(Warned { cause: cause.clone(), stop_at: berlin(8, 0) });
    let d = decide(&builder("golden", "RUNNING"), memory, berlin(8, 0));
    assert_eq!(d.outcome, Outcome::Act(Action::Stop { cause }), "{}", d.reason);
    // THEN the in-hours start does not undo the stop (it ran today), and says why
    let d = decide(&builder("golden", "STOPPED"), d.memory, berlin(8, 5));
    assert_eq!(d.outcome, Outcome::Skip, "{}", d.reason);
    assert!(d.reason.contains("max_runtime") && d.reason.contains("2026-11-23 17:00:00 UTC"), "{}", d.reason);
    let d = decide(&builder("golden", "STOPPED"), d.memory, berlin(12, 0));
    assert_eq!(d.outcome, Outcome::Skip, "{}", d.reason);
    // AND the next working day starts it as usual
    let d = decide(&builder("golden", "STOPPED"), d.memory, berlin(8, 0) + Duration::days(1));
    assert!(matches!(d.outcome, Outcome::Act(Action::Start { .. })), "{}", d.reason);
}

#[test]
fn a_manual_start_in_off_hours_is_honoured_until_the_next_transition() {
    let mut memory = seen("STOPPED", berlin(18, 30));
    memory.manual_change = Some(Change { direction: Direction::Start, at: berlin(23, 10) });
    memory.running_since = Some(berlin(23, 10));
    let d = decide(&builder("golden", "RUNNING"), memory, berlin(23, 20));
    assert_eq!(d.outcome, Outcome::Skip, "{}", d.reason);
    assert!(d.reason.contains("honoured"), "{}", d.reason);
}

#[test]
fn a_start_we_did_not_make_is_noticed_without_the_event() {
    let memory = seen("STOPPED", berlin(23, 0));
    let d = decide(&builder("golden", "PENDING"), memory, berlin(23, 5));
    assert_eq!(d.memory.manual_change, Some(Change { direction: Direction::Start, at: berlin(23, 5) }));
    assert_eq!(d.memory.running_since, Some(berlin(23, 5)));
    // ours: no manual change
    let mut memory = seen("STOPPED", berlin(7, 55));
    memory.own_change = Some(Change { direction: Direction::Start, at: berlin(8, 0) });
    let d = decide(&builder("golden", "PENDING"), memory, berlin(8, 5));
    assert_eq!(d.memory.manual_change, None);
    assert_eq!(d.memory.own_change, None);
}

#[test]
fn a_manual_stop_in_hours_is_honoured_until_off_hours_then_the_next_morning_starts() {
    let mut memory = seen("RUNNING", berlin(9, 0));
    memory.manual_change = Some(Change { direction: Direction::Stop, at: berlin(11, 0) });
    let d = decide(&builder("golden", "STOPPED"), memory, berlin(11, 5));
    assert_eq!(d.outcome, Outcome::Skip, "{}", d.reason);
    let next_morning = berlin(8, 0) + Duration::days(1);
    let d = decide(&builder("golden", "STOPPED"), d.memory, next_morning);
    assert!(matches!(d.outcome, Outcome::Act(Action::Start { .. })), "{}", d.reason);
}

#[test]
fn tags_skip_hold_and_override() {
    let mut b = builder("golden", "RUNNING");
    b.tags.insert("autopilot/skip".into(), "true".into());
    assert_eq!(decide(&b, Memory::default(), berlin(22, 0)).outcome, Outcome::Skip);
    let until = "2026-11-24T12:00:00Z";
    let mut b = builder("golden", "RUNNING");
    b.tags.insert("autopilot/override".into(), "hold".into());
    b.tags.insert("autopilot/override-until".into(), until.into());
    assert_eq!(decide(&b, Memory::default(), berlin(22, 0)).outcome, Outcome::Skip);
    // in-hours override: no schedule stop and no max-runtime stop while it lasts
    b.tags.insert("autopilot/override".into(), "in-hours".into());
    let mut memory = seen("RUNNING", berlin(8, 0));
    memory.running_since = Some(berlin(8, 0));
    let d = decide(&b, memory.clone(), berlin(22, 0));
    assert_eq!(d.outcome, Outcome::Hold, "{}", d.reason);
    // after the override ends the max-runtime stop is due (announced first)
    let d = decide(&b, memory, Utc.with_ymd_and_hms(2026, 11, 24, 12, 5, 0).unwrap());
    assert!(matches!(d.outcome, Outcome::Act(Action::Warn { .. })), "{}", d.reason);
}

#[test]
fn an_in_hours_override_that_ends_in_off_hours_is_warned_ahead_and_stopped_at_its_end() {
    // GIVEN a builder kept up by an in-hours override until 20:00 Berlin (off-hours), warn_before 15m
    let mut b = builder("golden", "RUNNING");
    b.tags.insert("autopilot/override".into(), "in-hours".into());
    b.tags.insert("autopilot/override-until".into(), berlin(20, 0).to_rfc3339());
    let memory = seen("RUNNING", berlin(17, 0));
    // before the warning window: held, no stop planned
    assert_eq!(decide(&b, memory.clone(), berlin(19, 40)).outcome, Outcome::Hold);
    // 15 minutes ahead: the stop at the override's end is announced, for that time
    let warned = decide(&b, memory, berlin(19, 45));
    let Outcome::Act(Action::Warn { cause, stop_at }) = &warned.outcome else { panic!("{warned:?}") };
    assert_eq!(*stop_at, berlin(20, 0));
    // WHEN the override has ended
    let d = decide(&b, warned.memory.clone(), berlin(20, 0));
    // THEN the stop is made at once (the warning was given), under the cause announced
    assert_eq!(d.outcome, Outcome::Act(Action::Stop { cause: cause.clone() }), "{}", d.reason);
    // AND an override extended after the warning (to 22:00) is announced again ahead of its new end, not
    // stopped at once when it ends
    b.tags.insert("autopilot/override-until".into(), berlin(22, 0).to_rfc3339());
    let held = decide(&b, warned.memory.clone(), berlin(20, 0));
    assert_eq!(held.outcome, Outcome::Hold, "{}", held.reason);
    let again = decide(&b, held.memory, berlin(21, 45));
    let Outcome::Act(Action::Warn { stop_at, .. }) = &again.outcome else { panic!("{again:?}") };
    assert_eq!(*stop_at, berlin(22, 0));
}

#[test]
fn ambiguous_and_unselected() {
    let mut b = builder("dup", "RUNNING");
    b.name = "dup".into();
    let d = decide_one(&b, &policy(), Memory::default(), "autopilot/", berlin(9, 0)).unwrap();
    assert_eq!(d.outcome, Outcome::Skip);
    assert!(d.reason.contains("ambiguous"));
    assert!(
        decide_one(&builder("nobody", "RUNNING"), &policy(), Memory::default(), "autopilot/", berlin(9, 0)).is_none()
    );
}

fn any_state() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "RUNNING",
        "STOPPED",
        "STOPPING",
        "PENDING",
        "SNAPSHOTTING",
        "UPDATING",
        "REBOOTING",
        "DELETING",
        "FAILED",
        "PENDING_IMAGE_IMPORT",
        "SYNCING_APPS",
        "WHATEVER",
    ])
    .prop_map(str::to_owned)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Safety by state, whatever the memory and the time: stop only RUNNING, start only STOPPED.
    #[test]
    fn actions_respect_the_state(
        state in any_state(),
        previous in any_state(),
        team in prop::sample::select(vec!["golden", "stop-only", "forgotten"]),
        minutes in 0i64..(14 * 24 * 60),
        ran_for in 0i64..(48 * 60),
        warned in any::<bool>(),
    ) {
        let now = berlin(0, 0) + Duration::minutes(minutes);
        let mut memory = seen(&previous, now - Duration::minutes(5));
        if StateClass::of(&previous).is_up() == Some(true) {
            memory.running_since = Some(now - Duration::minutes(ran_for));
        }
        if warned {
            memory.warned = Some(Warned { cause: "x".into(), stop_at: now });
        }
        let d = decide(&builder(team, &state), memory, now);
        match &d.outcome {
            Outcome::Act(Action::Start { .. }) => prop_assert_eq!(state.as_str(), "STOPPED"),
            Outcome::Act(Action::Stop { .. }) => prop_assert_eq!(state.as_str(), "RUNNING"),
            Outcome::Act(Action::Warn { stop_at, .. }) => {
                prop_assert_eq!(state.as_str(), "RUNNING");
                prop_assert!(*stop_at >= now);
            }
            Outcome::Act(Action::Report { .. }) => prop_assert!(state == "FAILED" || state == "WHATEVER"),
            _ => {}
        }
        prop_assert!(!d.reason.is_empty());
    }
}

#[test]
fn a_builder_that_stays_down_keeps_its_memory_unchanged() {
    // Seen going down at 19:00: the down period starts then…
    let running = seen("RUNNING", berlin(9, 0));
    let went_down = track(&builder("golden", "STOPPED"), running, berlin(19, 0));
    assert_eq!(went_down.last_down_at, Some(berlin(19, 0)));
    assert_eq!(went_down.running_since, None);
    // …and every later tick that finds it still down changes nothing, so nothing is written.
    let later = track(&builder("golden", "STOPPED"), went_down.clone(), berlin(23, 0));
    assert_eq!(later, went_down);
    let stopped = decide(&builder("golden", "STOPPED"), went_down.clone(), berlin(23, 0));
    assert_eq!(stopped.memory, went_down);
    // First sight of a stopped builder (no memory) starts a down period too.
    let first = track(&builder("golden", "STOPPED"), Memory::default(), berlin(23, 0));
    assert_eq!(first.last_down_at, Some(berlin(23, 0)));
}

//! Table tests of the rollout state machine.

use super::*;
use autopilot_shared::policy::Policy;
use chrono::TimeZone;

fn rings() -> Vec<Ring> {
    Policy::from_yaml(
        r#"
version: 1
rollouts:
  bake: 4h
  gates: { min_up_to_date: 0.8, within: 24h, max_not_compliant: 0.1, max_stuck_in_progress: 0.1, min_reporting_devices: 2, reporting_stale_after: 12h }
  rings:
    - { name: canary, select: { names: [e1] } }
    - { name: broad, select: { names: [e2] } }
"#,
    )
    .unwrap()
    .rollouts
    .unwrap()
    .rings
}

fn t(hours: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap() + Duration::hours(hours)
}

fn rollout() -> Rollout {
    let ring = |name: &str, env: &str| RingProgress {
        name: name.into(),
        environments: vec![EnvironmentRecord {
            id: env.into(),
            previous_desired: Some("100".into()),
            previous_mode: "USE_DESIRED".into(),
            window: Default::default(),
        }],
        applied_at: None,
        opens_at: None,
        updated_at: None,
        passed_at: None,
        figures: None,
    };
    Rollout {
        id: "r1".into(),
        resource: "thinclient#123456789012#eu-central-1#rollout#r1".into(),
        target_set: "101".into(),
        target_supported_until: Some(t(24 * 100)),
        requested_at: t(0),
        status: Status::Pending,
        paused: false,
        paused_at: None,
        current: 0,
        rings: vec![ring("canary", "e1"), ring("broad", "e2")],
        validated: false,
        history: Vec::new(),
        commands: Default::default(),
        failed_steps: 0,
        unannounced: Vec::new(),
    }
}

fn observed(env: &str, desired: &str, up: u32, reporting: u32) -> RingObservation {
    RingObservation {
        desired: vec![(env.into(), Some(desired.into()))],
        figures: GateFigures {
            active: reporting,
            reporting,
            up_to_date: up,
            not_compliant: 0,
            in_progress: reporting - up,
            ..GateFigures::default()
        },
    }
}

fn run(r: &Rollout, obs: Option<&RingObservation>, rollback: bool, now: DateTime<Utc>) -> Next {
    next(r, &rings(), obs, rollback, &|_| true, now)
}

/// Applies a `Next` the way the act step does.
fn apply(mut r: Rollout, n: &Next, now: DateTime<Utc>) -> Rollout {
    if let Some(ring) = &n.ring {
        r.rings[r.current] = ring.clone();
    }
    if n.actions.iter().any(|a| matches!(a, Action::Validate { .. })) {
        r.validated = true;
    }
    if n.advance {
        r.current += 1;
        r.rings[r.current].applied_at = Some(now);
    }
    if let Some((to, _)) = &n.transition {
        r.status = *to;
    }
    r
}

#[test]
fn two_rings_roll_to_completion_with_bake_after_the_devices_updated() {
    let r = rollout();
    let n = run(&r, None, false, t(0));
    assert_eq!(n.actions, [Action::SetDesired { environment: "e1".into(), software_set: "101".into() }]);
    let r = apply(r, &n, t(0));
    assert_eq!(r.status, Status::Applying);
    // devices update in their maintenance window: nothing before
    let n = run(&r, Some(&observed("e1", "101", 0, 4)), false, t(3));
    assert_eq!(n.transition, None);
    // 02:00 the next night: updated → bake starts now, not when we asked
    let n = run(&r, Some(&observed("e1", "101", 4, 4)), false, t(26));
    let r = apply(r, &n, t(26));
    assert_eq!((r.status, r.rings[0].updated_at), (Status::Baking, Some(t(26))));
    assert_eq!(run(&r, Some(&observed("e1", "101", 4, 4)), false, t(29)).transition, None, "still baking");
    // baked: validate the set, apply the next ring
    let n = run(&r, Some(&observed("e1", "101", 4, 4)), false, t(30));
    assert_eq!(
        n.actions,
        [
            Action::Validate { software_set: "101".into() },
            Action::SetDesired { environment: "e2".into(), software_set: "101".into() }
        ]
    );
    let r = apply(r, &n, t(30));
    assert_eq!((r.status, r.current, r.validated), (Status::Applying, 1, true));
    let r = apply(r.clone(), &run(&r, Some(&observed("e2", "101", 5, 5)), false, t(40)), t(40));
    let n = run(&r, Some(&observed("e2", "101", 5, 5)), false, t(44));
    assert!(!n.actions.iter().any(|a| matches!(a, Action::Validate { .. })), "validated once");
    let r = apply(r, &n, t(44));
    assert_eq!(r.status, Status::Completed);
}

#[test]
fn a_failed_gate_halts_or_rolls_back_to_a_still_supported_previous_set() {
    let r = apply(rollout(), &run(&rollout(), None, false, t(0)), t(0));
    let stuck = observed("e1", "101", 1, 4);
    assert_eq!(run(&r, Some(&stuck), false, t(12)).transition, None);
    let n = run(&r, Some(&stuck), false, t(24));
    assert!(matches!(&n.transition, Some((Status::Halted, reason)) if reason.contains("gate failed")), "{n:?}");
    assert!(n.actions.is_empty());
    let n = run(&r, Some(&stuck), true, t(24));
    assert_eq!(n.transition.as_ref().map(|t| t.0), Some(Status::RolledBack));
    assert_eq!(
        n.actions,
        [Action::Restore { environment: "e1".into(), software_set: Some("100".into()), mode: "USE_DESIRED".into() }]
    );
    // a previous set past its support is not restored, and the rollback says so
    let n = next(&r, &rings(), Some(&stuck), true, &|_| false, t(24));
    assert!(n.actions.is_empty());
    let reason = n.transition.map(|(_, reason)| reason).unwrap_or_default();
    assert!(reason.ends_with("; left on 101: e1 (its previous set 100 is past its support)"), "{reason}");
    // nor is an environment that had no desired set (USE_DESIRED without one)
    let mut bare = r.clone();
    bare.rings[0].environments[0].previous_desired = None;
    let n = run(&bare, Some(&stuck), true, t(24));
    assert!(n.actions.is_empty(), "{:?}", n.actions);
    assert!(n.transition.unwrap().1.ends_with("left on 101: e1 (it had no desired set to return to)"));
}

#[test]
fn too_few_reporting_devices_never_advance() {
    let r = apply(rollout(), &run(&rollout(), None, false, t(0)), t(0));
    assert_eq!(run(&r, Some(&observed("e1", "101", 1, 1)), false, t(10)).transition, None);
    assert_eq!(run(&r, Some(&observed("e1", "101", 1, 1)), false, t(24)).transition.map(|t| t.0), Some(Status::Halted));
}

#[test]
fn paused_final_and_unsupported_rollouts_do_not_move() {
    let mut r = rollout();
    r.paused = true;
    assert_eq!(run(&r, None, false, t(0)), Next::wait());
    let mut r = rollout();
    r.status = Status::Aborted;
    assert_eq!(run(&r, None, false, t(0)), Next::wait());
    let mut r = rollout();
    r.target_supported_until = Some(t(1));
    let n = run(&r, None, false, t(2));
    assert!(n.actions.is_empty());
    assert!(matches!(&n.transition, Some((Status::Halted, reason)) if reason.contains("end of support")));
}

#[test]
fn an_environment_changed_by_hand_fails_the_ring() {
    let r = apply(rollout(), &run(&rollout(), None, false, t(0)), t(0));
    let n = run(&r, Some(&observed("e1", "100", 4, 4)), false, t(5));
    assert!(matches!(&n.transition, Some((Status::Halted, reason)) if reason.contains("no longer set to 101")));
}

#[test]
fn an_environment_already_on_the_target_is_not_set_again_when_the_ring_starts() {
    // GIVEN a pending rollout whose canary environment already carries the target (an invocation set it and
    // died before it recorded the ring as applied)
    let r = rollout();
    // WHEN the ring starts with that observation
    let n = run(&r, Some(&observed("e1", "101", 0, 4)), false, t(0));
    // THEN the ring is recorded as applying, without a second UpdateEnvironment
    assert!(n.actions.is_empty(), "{:?}", n.actions);
    assert_eq!(n.transition.as_ref().map(|(to, _)| *to), Some(Status::Applying));
    assert_eq!(n.ring.as_ref().and_then(|ring| ring.applied_at), Some(t(0)));
    // AND one still on the old set is set
    let n = run(&r, Some(&observed("e1", "100", 0, 4)), false, t(0));
    assert_eq!(n.actions, [Action::SetDesired { environment: "e1".into(), software_set: "101".into() }]);
}

#[test]
fn a_set_whose_support_ends_while_a_ring_bakes_is_never_applied_to_the_next_ring() {
    // GIVEN the canary baked on a set whose support ends during the bake
    let mut r = apply(rollout(), &run(&rollout(), None, false, t(0)), t(0));
    r = apply(r.clone(), &run(&r, Some(&observed("e1", "101", 4, 4)), false, t(2)), t(2));
    assert_eq!(r.status, Status::Baking);
    r.target_supported_until = Some(t(4));
    // WHEN the bake is over
    let n = run(&r, Some(&observed("e1", "101", 4, 4)), true, t(6));
    // THEN the broad ring is not set: the rollout halts, naming the ring it did not apply
    assert!(n.actions.is_empty(), "{:?}", n.actions);
    assert!(
        matches!(&n.transition, Some((Status::Halted, reason)) if reason.contains("past its end of support: ring broad not applied")),
        "{n:?}"
    );
}

#[test]
fn the_gate_deadline_counts_from_when_the_rings_maintenance_window_opens() {
    // GIVEN a canary whose devices take new sets at the weekend only (Saturday and Sunday, 01:00 to 05:00 UTC)
    let mut r = rollout();
    r.rings[0].environments[0].window =
        crate::window::UpdateWindow::Weekly { days: vec![5, 6], start: 60, end: 300, device_time: false };
    // WHEN it is applied on Monday and nothing has updated by Tuesday (24 hours later, the gate's `within`)
    let n = run(&r, None, true, t(0));
    assert_eq!(n.ring.as_ref().and_then(|ring| ring.opens_at), Some(t(5 * 24 + 1)));
    let r = apply(r, &n, t(0));
    let nothing = observed("e1", "101", 0, 4);
    // THEN it waits, naming a deadline 24 hours after the window opens (Sunday 01:00), and fails only then
    assert_eq!(run(&r, Some(&nothing), true, t(24)).transition, None);
    assert_eq!(run(&r, Some(&nothing), true, t(6 * 24)).transition, None);
    let n = run(&r, Some(&nothing), true, t(6 * 24 + 1));
    assert_eq!(n.transition.map(|(to, _)| to), Some(Status::RolledBack));
}

#[test]
fn a_later_ring_left_without_environments_is_skipped_not_failed() {
    // GIVEN the broad ring's environment held by its tags since the start (the ring is empty)
    let mut r = rollout();
    r.rings[1].environments.clear();
    r = apply(r.clone(), &run(&r, None, false, t(0)), t(0));
    r = apply(r.clone(), &run(&r, Some(&observed("e1", "101", 4, 4)), false, t(2)), t(2));
    // WHEN the canary has baked: the broad ring is "applied" with nothing to set
    let n = run(&r, Some(&observed("e1", "101", 4, 4)), false, t(6));
    assert_eq!(n.actions, [Action::Validate { software_set: "101".into() }]);
    let r = apply(r, &n, t(6));
    // THEN the next look completes the rollout instead of waiting for devices that do not exist
    let empty = RingObservation { desired: Vec::new(), figures: GateFigures::default() };
    let n = run(&r, Some(&empty), false, t(7));
    assert!(
        matches!(&n.transition, Some((Status::Completed, reason)) if reason.contains("ring broad has no environment left")),
        "{n:?}"
    );
}

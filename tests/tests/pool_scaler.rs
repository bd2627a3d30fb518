//! pool-scaler end to end: the real handler, through the real SDK clients, against the simulator and the
//! embedded DynamoDB; every assertion reads the simulator's call log or the ledger. GIVEN / WHEN / THEN.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use autopilot_shared::ledger::audit::Outcome;
use autopilot_tests::Harness;
use chrono::{Duration, TimeZone, Utc};

/// Monday 2026-11-23 05:00 Berlin (04:00 UTC).
const ESTATE: &str = r#"
start: 2026-11-23T04:00:00Z
workspaces_pools:
  - id: wspool-sales0001
    name: sales
    state: STOPPED
    running_mode: AUTO_STOP
    desired_user_sessions: 0
    tags: { autopilot/capacity: sales }
    demand: { timezone: Europe/Berlin, weekday: [0,0,0,0,0,0,0,4,20,30,30,30,30,30,30,30,20,8,0,0,0,0,0,0] }
  - id: wspool-finance01
    name: finance
    state: RUNNING
    running_mode: ALWAYS_ON
    desired_user_sessions: 10
    tags: { autopilot/capacity: sales }
    application_autoscaling: true
fleets:
  - name: callcenter-multi
    state: RUNNING
    max_sessions_per_instance: 10
    desired: 40
    tags: { autopilot/capacity: callcenter }
  - name: engineering-fleet
    state: RUNNING
    desired: 8
    tags: { autopilot/capacity: engineering }
"#;

const POLICY: &str = r#"
version: 1
schedules:
  office:
    timezone: Europe/Berlin
    periods: [{ days: [mon-fri], start: "07:00", end: "19:00" }]
    prewarm: 30m
capacity:
  - select: { tag: { autopilot/capacity: sales } }
    schedule: office
    in_hours:  { min: 10, max: 60, target_utilization: 0.75, buffer: 2 }
    off_hours: { min: 0, max: 10, stop_when_idle: true, idle_grace: 30m }
    scale_out: { cooldown: 3m, max_step: 20 }
    scale_in:  { cooldown: 20m, max_step: 10 }
  - select: { tag: { autopilot/capacity: callcenter } }
    in_hours: { min: 5, max: 100 }
  - select: { tag: { autopilot/capacity: engineering } }
    in_hours: { min: 3, max: 20 }
"#;

fn berlin(hour: u32, minute: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, hour - 1, minute, 0).single().unwrap()
}

#[tokio::test]
async fn morning_prewarm_reaches_the_in_hours_minimum_before_the_period_starts() {
    // GIVEN a stopped AUTO_STOP pool and an office schedule with a 30-minute prewarm
    let h = Harness::start(ESTATE, POLICY, 1).await;
    // WHEN the scaler ticks every 5 minutes from 05:00 to 07:30 Berlin
    h.run(150, 5).await;
    // THEN at 06:30 it sets the in-hours minimum on the stopped pool, starts it at 06:35, and it serves by 07:00
    let pool_calls: Vec<_> =
        h.mutations().into_iter().filter(|c| c.resource.as_deref() == Some("wspool-sales0001")).collect();
    assert_eq!(pool_calls[0].operation, "UpdateWorkspacesPool");
    assert_eq!(pool_calls[0].at, berlin(6, 30));
    assert_eq!(pool_calls[0].parameters["Capacity"]["DesiredUserSessions"], 10);
    let starts: Vec<_> = pool_calls.iter().filter(|c| c.operation == "StartWorkspacesPool").collect();
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0].at, berlin(6, 35));
    let pool = h.local.simulator.with_world(|w| w.pools["wspool-sales0001"].clone());
    assert_eq!(pool.state, "RUNNING");
    assert!(pool.capacity.desired >= 10, "desired {}", pool.capacity.desired);
    let audit = h.scaler.ledger.audit_by_day(berlin(6, 30).date_naive()).await.unwrap();
    assert!(
        audit.iter().any(|a| a.action == "StartWorkspacesPool"
            && a.outcome == Outcome::Applied
            && a.reason.contains("prewarm")),
        "{audit:?}"
    );
}

#[tokio::test]
async fn a_tick_delivered_three_times_makes_one_mutating_call() {
    // GIVEN a single-session fleet above its maximum
    let h = Harness::start(ESTATE, POLICY, 1).await;
    h.local.simulator.with_world_mut(|w| w.fleets.get_mut("engineering-fleet").unwrap().capacity.desired = 30);
    h.local.simulator.with_world_mut(|w| w.fleets.get_mut("engineering-fleet").unwrap().capacity.actual = 30);
    // WHEN the same tick arrives three times, sequentially and then concurrently
    let event = autopilot_local::tick_event("euc-autopilot-pool-scaler", h.local.simulator.now());
    for _ in 0..3 {
        h.deliver(event.clone()).await.unwrap();
    }
    let (a, b) = tokio::join!(h.deliver(event.clone()), h.deliver(event.clone()));
    a.unwrap();
    b.unwrap();
    // THEN exactly one UpdateFleet (30 → 20, the maximum) and one audit record
    let updates: Vec<_> =
        h.mutations().into_iter().filter(|c| c.resource.as_deref() == Some("engineering-fleet")).collect();
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].parameters["ComputeCapacity"]["DesiredInstances"], 20);
    let audit =
        h.scaler.ledger.audit_by_resource("appstream#123456789012#eu-central-1#fleet#engineering-fleet").await.unwrap();
    assert_eq!(audit.len(), 1);
}

#[tokio::test]
async fn multi_session_fleets_use_desired_sessions_and_aas_targets_are_left_alone() {
    let h = Harness::start(ESTATE, POLICY, 1).await;
    h.local.simulator.advance(Duration::hours(5)); // 10:00 Berlin
    let report = h.tick().await;
    let multi: Vec<_> =
        h.mutations().into_iter().filter(|c| c.resource.as_deref() == Some("callcenter-multi")).collect();
    assert_eq!(multi.len(), 1);
    assert_eq!(
        multi[0].parameters["ComputeCapacity"]["DesiredSessions"], 30,
        "idle multi-session fleet scales in, in sessions, one step (10) at a time"
    );
    assert!(multi[0].parameters["ComputeCapacity"].get("DesiredInstances").is_none());
    assert!(
        h.mutations().iter().all(|c| c.resource.as_deref() != Some("wspool-finance01")),
        "AAS-managed pool untouched"
    );
    let finance = report.actions.iter().find(|a| a.name == "finance").unwrap();
    assert!(finance.reason.contains("Application Auto Scaling"), "{}", finance.reason);
}

#[tokio::test]
async fn dry_run_makes_no_mutating_call_and_records_would_act() {
    let dry = POLICY.replace("version: 1\n", "version: 1\ndefaults: { dry_run: true }\n");
    let h = Harness::start(ESTATE, &dry, 1).await;
    h.local.simulator.advance(Duration::hours(5));
    let report = h.tick().await;
    assert!(report.dry_run);
    assert!(h.mutations().is_empty(), "{:?}", h.mutations());
    let audit = h.scaler.ledger.audit_by_day(berlin(10, 0).date_naive()).await.unwrap();
    assert!(!audit.is_empty());
    assert!(audit.iter().all(|a| a.outcome == Outcome::DryRun), "{audit:?}");
}

#[tokio::test]
async fn a_manual_change_is_honoured_until_the_next_schedule_transition() {
    // GIVEN the pool running in-hours under the scaler
    let h = Harness::start(ESTATE, POLICY, 1).await;
    h.run(240, 5).await; // to 09:00
    // WHEN an administrator raises desired capacity by hand
    h.local
        .simulator
        .invoke(
            "workspaces",
            "UpdateWorkspacesPool",
            &serde_json::json!({ "PoolId": "wspool-sales0001", "Capacity": { "DesiredUserSessions": 55 } }),
        )
        .unwrap();
    let before = h.mutations().len();
    h.run(9 * 60, 5).await; // to 18:00
    // THEN the scaler leaves the pool alone in-hours …
    let during: Vec<_> =
        h.mutations()[before..].iter().filter(|c| c.resource.as_deref() == Some("wspool-sales0001")).cloned().collect();
    assert!(during.is_empty(), "{during:?}");
    // … and resumes after the 19:00 transition
    h.run(90, 5).await;
    let after: Vec<_> =
        h.mutations()[before..].iter().filter(|c| c.resource.as_deref() == Some("wspool-sales0001")).cloned().collect();
    assert!(!after.is_empty());
    assert!(after[0].at >= berlin(19, 0), "{:?}", after[0]);
}

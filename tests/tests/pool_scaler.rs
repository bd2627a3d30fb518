//! pool-scaler end to end: the real handler, through the real SDK clients, against the simulator and the
//! embedded DynamoDB; every assertion reads the simulator's call log or the ledger. GIVEN / WHEN / THEN.

use autopilot_shared::ledger::audit::Outcome;
use autopilot_shared::report::{ActionResult, Status};
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
    let audit = h.deps.ledger.audit_by_day(berlin(6, 30).date_naive()).await.unwrap();
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
    let event = autopilot_sim::tick_event("euc-autopilot-pool-scaler", h.local.simulator.now());
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
        h.deps.ledger.audit_by_resource("appstream#123456789012#eu-central-1#fleet#engineering-fleet").await.unwrap();
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
    let audit = h.deps.ledger.audit_by_day(berlin(10, 0).date_naive()).await.unwrap();
    assert!(audit.iter().any(|a| a.outcome == Outcome::DryRun), "{audit:?}");
    assert!(audit.iter().all(|a| matches!(a.outcome, Outcome::DryRun | Outcome::Skipped)), "{audit:?}");
}

#[tokio::test]
async fn in_dry_run_each_would_act_is_recorded_once_until_the_plan_changes() {
    // GIVEN the policy in dry-run at 10:00 Berlin: every tick plans the same changes (nothing is made)
    let dry = POLICY.replace("version: 1\n", "version: 1\ndefaults: { dry_run: true }\n");
    let h = Harness::start(ESTATE, &dry, 1).await;
    h.local.simulator.advance(Duration::hours(5));
    // WHEN it ticks six times, five minutes apart
    let mut would = 0;
    for _ in 0..6 {
        let report = h.tick().await;
        would = report.results.get("dry-run").copied().unwrap_or(0);
        h.local.simulator.advance(Duration::minutes(5));
    }
    // THEN each would-act is in the answer every tick, and in the audit once per resource
    let audit = h.deps.ledger.audit_by_day(berlin(10, 0).date_naive()).await.unwrap();
    let recorded: Vec<&str> =
        audit.iter().filter(|a| a.outcome == Outcome::DryRun).map(|a| a.resource.as_str()).collect();
    assert!(would > 0, "the last tick still would act");
    let distinct: std::collections::BTreeSet<&str> = recorded.iter().copied().collect();
    assert_eq!(recorded.len(), distinct.len(), "one would-act record per resource, not one per tick: {audit:#?}");
    assert_eq!(u32::try_from(recorded.len()).unwrap(), would, "{audit:#?}");
}

#[tokio::test]
async fn a_held_resource_is_recorded_when_the_hold_begins_and_when_it_ends() {
    // GIVEN the finance pool, registered with Application Auto Scaling (another owner)
    let h = Harness::start(ESTATE, POLICY, 1).await;
    h.local.simulator.advance(Duration::hours(5));
    let finance = "workspaces#123456789012#eu-central-1#workspaces-pool#wspool-finance01";
    // WHEN three ticks see it held
    for _ in 0..3 {
        let report = h.tick().await;
        let item = report.actions.iter().find(|a| a.resource == finance).expect("finance is in the answer");
        assert_eq!(item.result, ActionResult::Skipped, "{item:?}");
        h.local.simulator.advance(Duration::minutes(5));
    }
    // THEN the audit holds the hold once, with its reason
    let audit = h.deps.ledger.audit_by_resource(finance).await.unwrap();
    assert_eq!(audit.len(), 1, "{audit:#?}");
    assert_eq!((audit[0].action.as_str(), audit[0].outcome), ("Hold", Outcome::Skipped));
    assert!(audit[0].reason.contains("Application Auto Scaling"), "{}", audit[0].reason);
    // WHEN it is deregistered, THEN the end of the hold is recorded, once
    h.local.simulator.with_world_mut(|w| {
        w.pools.get_mut("wspool-finance01").expect("finance").application_autoscaling = false;
    });
    h.tick().await;
    h.local.simulator.advance(Duration::minutes(5));
    h.tick().await;
    let audit = h.deps.ledger.audit_by_resource(finance).await.unwrap();
    let holds: Vec<Outcome> = audit.iter().filter(|a| a.action == "Hold").map(|a| a.outcome).collect();
    assert_eq!(holds, [Outcome::Skipped, Outcome::Released], "{audit:#?}");
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

#[tokio::test]
async fn throttled_update_fleet_converges_without_lost_or_duplicated_actions() {
    // GIVEN UpdateFleet throttled at 2 requests/s and three fleets far from their targets
    let estate = format!("{ESTATE}faults:\n  throttle_per_second: {{ UpdateFleet: 2 }}\n");
    let estate = estate.replace("desired: 8\n", "desired: 30\n");
    let h = Harness::start(&estate, POLICY, 1).await;
    h.local.simulator.advance(Duration::hours(5));
    // WHEN the scaler ticks until nothing changes
    for _ in 0..12 {
        h.tick().await;
        h.local.simulator.advance(Duration::minutes(20));
    }
    // THEN every fleet reached its target, each successful UpdateFleet set a new value (no duplicates)
    let (engineering, callcenter) = h.local.simulator.with_world(|w| {
        (w.fleets["engineering-fleet"].capacity.desired, w.fleets["callcenter-multi"].capacity.desired)
    });
    assert_eq!((engineering, callcenter), (3, 5));
    let updates: Vec<_> = h.mutations().into_iter().filter(|c| c.operation == "UpdateFleet" && c.ok()).collect();
    let mut seen = std::collections::BTreeSet::new();
    for update in &updates {
        assert!(
            seen.insert((update.resource.clone(), update.parameters["ComputeCapacity"].to_string())),
            "duplicate {update:?}"
        );
    }
    let audit = h.deps.ledger.audit_by_day(berlin(10, 0).date_naive()).await.unwrap();
    assert_eq!(
        audit.iter().filter(|a| a.outcome == Outcome::Applied && a.action == "UpdateFleet").count(),
        updates.len()
    );
}

#[tokio::test]
async fn an_update_throttled_past_the_sdks_retries_is_deferred_not_failed() {
    // GIVEN UpdateFleet allowed once in a quarter of an hour and two fleets far from their targets
    let estate = format!("{ESTATE}faults:\n  throttle_per_second: {{ UpdateFleet: 0.001 }}\n");
    let h = Harness::start(&estate, POLICY, 1).await;
    h.local.simulator.advance(Duration::hours(5));
    // WHEN the scaler ticks once
    let report = h.tick().await;
    // THEN one update went through and the other, throttled past the SDK's retries, is deferred to a later tick:
    // audited as deferred with the service's words, counted as deferred, and announced to nobody
    let updates: Vec<_> = h.mutations().into_iter().filter(|c| c.operation == "UpdateFleet").collect();
    assert!(updates.iter().any(|c| c.ok()) && updates.iter().any(|c| !c.ok()), "{updates:?}");
    assert_eq!(report.results.get("deferred"), Some(&1), "{report:?}");
    assert_eq!(report.results.get("failed"), None, "{report:?}");
    let audit = h.deps.ledger.audit_by_day(berlin(10, 0).date_naive()).await.unwrap();
    let deferred: Vec<_> =
        audit.iter().filter(|a| a.action == "UpdateFleet" && a.outcome == Outcome::Deferred).collect();
    assert_eq!(deferred.len(), 1, "{audit:?}");
    let error = deferred[0].details["error"].as_str().unwrap();
    assert!(error.starts_with(autopilot_shared::effect::THROTTLED) && error.ends_with("Rate exceeded"), "{error}");
    assert!(audit.iter().all(|a| a.outcome != Outcome::Failed), "{audit:?}");
    assert!(h.outcome_events("Capacity Action Failed").is_empty());
}

#[tokio::test]
async fn an_override_tag_wins_until_it_expires() {
    // GIVEN the sales pool tagged off-hours until 11:00 Berlin during office hours
    let estate = ESTATE.replace(
        "tags: { autopilot/capacity: sales }\n    demand",
        "tags: { autopilot/capacity: sales, autopilot/override: off-hours, autopilot/override-until: \"2026-11-23T10:00:00Z\" }\n    demand",
    );
    let h = Harness::start(&estate, POLICY, 1).await;
    h.run(5 * 60, 5).await; // 05:00 → 10:00 Berlin
    assert!(h.mutations().iter().all(|c| c.operation != "StartWorkspacesPool"), "held off-hours by the override");
    h.run(90, 5).await; // past 11:00
    let start = h
        .mutations()
        .into_iter()
        .find(|c| c.operation == "StartWorkspacesPool")
        .expect("started once the override expired");
    assert!(start.at >= berlin(11, 0), "{start:?}");
}

#[tokio::test]
async fn a_holiday_stays_off_and_idle_pools_stop_off_hours() {
    // GIVEN Monday is a holiday and the sales pool is running with nobody on it
    let policy = POLICY
        .replace("schedules:\n", "calendars: { h: [2026-11-23] }\nschedules:\n")
        .replace("    prewarm: 30m\n", "    prewarm: 30m\n    holidays: h\n");
    let estate = ESTATE.replace(
        "    state: STOPPED\n    running_mode: AUTO_STOP\n    desired_user_sessions: 0\n",
        "    state: RUNNING\n    running_mode: AUTO_STOP\n    desired_user_sessions: 0\n",
    );
    let h = Harness::start(&estate, &policy, 1).await;
    // WHEN the whole holiday passes
    h.run(16 * 60, 5).await;
    // THEN the idle pool was stopped after its grace period and never started again
    let calls: Vec<_> =
        h.mutations().into_iter().filter(|c| c.resource.as_deref() == Some("wspool-sales0001")).collect();
    assert_eq!(calls.iter().filter(|c| c.operation == "StopWorkspacesPool").count(), 1, "{calls:?}");
    assert!(calls.iter().all(|c| c.operation != "StartWorkspacesPool"), "{calls:?}");
    let stop = calls.iter().find(|c| c.operation == "StopWorkspacesPool").unwrap();
    assert!(stop.at >= berlin(5, 30), "after the 30-minute idle grace: {stop:?}");
}

#[tokio::test]
async fn a_cloudtrail_manual_stop_is_honoured_and_our_own_calls_are_not_manual() {
    // GIVEN the engineering fleet under the scaler at 10:00
    let h = Harness::start(ESTATE, POLICY, 1).await;
    h.local.simulator.advance(Duration::hours(5));
    h.tick().await;
    // WHEN an administrator stops it and CloudTrail reports the call
    h.local.simulator.invoke("appstream", "StopFleet", &serde_json::json!({ "Name": "engineering-fleet" })).unwrap();
    let sample = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/pool-scaler/manual-stop-fleet.json"),
    )
    .unwrap();
    let mut event: serde_json::Value = serde_json::from_str(&sample).unwrap();
    event["detail"]["requestParameters"]["name"] = serde_json::json!("engineering-fleet");
    event["detail"]["eventTime"] = serde_json::json!(h.local.simulator.now().to_rfc3339());
    let recorded = h.deliver(event.clone()).await.unwrap();
    assert_eq!(recorded.status, Status::Recorded);
    // THEN the scaler does not start it again during the same schedule phase (no schedule: it stays honoured)
    let before = h.mutations().len();
    h.run(60, 5).await;
    assert!(
        h.mutations()[before..].iter().all(|c| c.resource.as_deref() != Some("engineering-fleet")),
        "{:?}",
        &h.mutations()[before..]
    );
    // and a CloudTrail record of the function's own role is not a manual change
    event["detail"]["userIdentity"]["arn"] =
        serde_json::json!("arn:aws:sts::123456789012:assumed-role/euc-autopilot-PoolScalerRole/pool-scaler");
    assert_eq!(h.deliver(event).await.unwrap().status, Status::Ours);
}

#[tokio::test]
async fn enforce_true_reverts_a_manual_change() {
    let policy = POLICY.replace("  - select: { tag: { autopilot/capacity: engineering } }\n    in_hours: { min: 3, max: 20 }\n", "  - select: { tag: { autopilot/capacity: engineering } }\n    in_hours: { min: 3, max: 20 }\n    enforce: true\n");
    let h = Harness::start(ESTATE, &policy, 1).await;
    h.run(30, 5).await; // scaled to its minimum of 3, one step at a time
    h.local.simulator.advance(Duration::minutes(40));
    h.run(30, 5).await;
    assert_eq!(h.local.simulator.with_world(|w| w.fleets["engineering-fleet"].capacity.desired), 3);
    h.local
        .simulator
        .invoke(
            "appstream",
            "UpdateFleet",
            &serde_json::json!({ "Name": "engineering-fleet", "ComputeCapacity": { "DesiredInstances": 15 } }),
        )
        .unwrap();
    h.local.simulator.advance(Duration::minutes(30));
    h.run(60, 5).await;
    assert_eq!(
        h.local.simulator.with_world(|w| w.fleets["engineering-fleet"].capacity.desired),
        3,
        "reverted to the policy"
    );
}

#[tokio::test]
async fn daylight_saving_days_keep_the_local_schedule() {
    // GIVEN the Berlin office schedule on the Monday after the switch to winter time (2026-10-26)
    let estate = ESTATE.replace("start: 2026-11-23T04:00:00Z", "start: 2026-10-26T03:00:00Z");
    let h = Harness::start(&estate, POLICY, 1).await;
    h.run(4 * 60, 5).await;
    // THEN prewarm begins at 06:30 local = 05:30 UTC (UTC+1 after the change, not 04:30 as in summer)
    let first = h.mutations().into_iter().find(|c| c.resource.as_deref() == Some("wspool-sales0001")).unwrap();
    assert_eq!(first.at, Utc.with_ymd_and_hms(2026, 10, 26, 5, 30, 0).single().unwrap(), "{first:?}");
    // and on the Friday before it (summer time) at 04:30 UTC
    let summer = ESTATE.replace("start: 2026-11-23T04:00:00Z", "start: 2026-10-23T02:00:00Z");
    let h = Harness::start(&summer, POLICY, 1).await;
    h.run(4 * 60, 5).await;
    let first = h.mutations().into_iter().find(|c| c.resource.as_deref() == Some("wspool-sales0001")).unwrap();
    assert_eq!(first.at, Utc.with_ymd_and_hms(2026, 10, 23, 4, 30, 0).single().unwrap(), "{first:?}");
}

#[tokio::test]
async fn evening_scale_in_never_asks_for_less_than_the_sessions_in_use() {
    // GIVEN a busy office day
    let h = Harness::start(ESTATE, POLICY, 1).await;
    h.run(10 * 60, 5).await; // to 15:00 Berlin
    // WHEN the afternoon and evening pass tick by tick
    for _ in 0..(6 * 12) {
        let in_use = h.local.simulator.with_world(|w| w.pools["wspool-sales0001"].capacity.active_sessions);
        let before = h.mutations().len();
        h.tick().await;
        // THEN no UpdateWorkspacesPool asks for fewer sessions than were in use when it decided
        for call in &h.mutations()[before..] {
            if call.operation == "UpdateWorkspacesPool" && call.resource.as_deref() == Some("wspool-sales0001") {
                let desired = call.parameters["Capacity"]["DesiredUserSessions"].as_u64().unwrap();
                assert!(desired >= u64::from(in_use), "{desired} < {in_use} in use at {}", call.at);
            }
        }
        h.local.simulator.advance(Duration::minutes(5));
    }
    let scale_ins =
        h.mutations().iter().filter(|c| c.operation == "UpdateWorkspacesPool" && c.at >= berlin(17, 0)).count();
    assert!(scale_ins > 0, "the evening must have scaled in");
}

/// The sessions the sales pool's users want at `at` (its weekday profile in ESTATE, interpolated as the simulator
/// does, without noise).
fn sales_demand(at: chrono::DateTime<Utc>) -> u32 {
    let hourly =
        [0., 0., 0., 0., 0., 0., 0., 4., 20., 30., 30., 30., 30., 30., 30., 30., 20., 8., 0., 0., 0., 0., 0., 0.];
    let local = at.with_timezone(&chrono_tz::Europe::Berlin);
    let hour = chrono::Timelike::hour(&local) as usize;
    let fraction = f64::from(chrono::Timelike::minute(&local)) / 60.0;
    (hourly[hour] + (hourly[(hour + 1) % 24] - hourly[hour]) * fraction).round() as u32
}

#[tokio::test]
async fn a_learned_week_starts_the_pool_ahead_of_its_demand_and_says_why() {
    // GIVEN a working day that starts at 09:00 for the schedule, users who arrive from 06:00, and a memory that
    // learned last Monday as a week of ticks would have (predictive on)
    let policy = POLICY
        .replace(r#"start: "07:00""#, r#"start: "09:00""#)
        .replace("    prewarm: 30m\n", "")
        .replace("off_hours: { min: 0, max: 10,", "off_hours: { min: 0, max: 40,")
        .replace(
            "    scale_in:  { cooldown: 20m, max_step: 10 }\n",
            "    scale_in:  { cooldown: 20m, max_step: 10 }\n    predictive: {}\n",
        );
    let reactive_policy = policy.replace("    predictive: {}\n", "");
    let mut profile = pool_scaler::forecast::Profile::default();
    let mut at = berlin(1, 0) - Duration::days(7);
    while at < berlin(1, 0) - Duration::days(6) {
        profile.observe(at, sales_demand(at), chrono_tz::Europe::Berlin, false, 3);
        at += Duration::minutes(5);
    }
    let memory = pool_scaler::decide::Memory { profile, ..Default::default() };
    let pool = autopilot_shared::resource::ResourceRef::new(
        "123456789012",
        "eu-central-1",
        autopilot_shared::resource::ResourceKind::WorkspacesPool,
        "wspool-sales0001",
    )
    .unwrap();
    let mut unserved = Vec::new();
    for (policy, predictive) in [(&policy, true), (&reactive_policy, false)] {
        let h = Harness::start(ESTATE, policy, 1).await;
        h.local.ledger().put_state(&pool, &memory, None, None, berlin(5, 0)).await.unwrap();
        // WHEN the scaler ticks every 5 minutes from 05:00 to 08:30 Berlin
        h.run(210, 5).await;
        unserved.push(h.local.simulator.with_world(|w| w.pools["wspool-sales0001"].totals.unserved_requests));
        if predictive {
            // THEN the pool is sized and started ahead of the first users, saying why
            let calls: Vec<_> =
                h.mutations().into_iter().filter(|c| c.resource.as_deref() == Some("wspool-sales0001")).collect();
            let start = calls.iter().find(|c| c.operation == "StartWorkspacesPool").expect("started");
            assert!(start.at < berlin(6, 0), "{calls:?}");
            let audit = h.local.ledger().audit_by_resource(&pool.key()).await.unwrap();
            assert!(
                audit.iter().any(|r| r.reason.contains("off-hours (outside schedule periods): forecast")
                    && r.reason.contains("lead time 15 min (not learned yet)")),
                "{:?}",
                audit.iter().map(|r| &r.reason).collect::<Vec<_>>()
            );
            // and it learned its lead time from its own start, and kept learning today's profile
            let stored = h.local.ledger().get_state::<pool_scaler::decide::Memory>(&pool).await.unwrap().unwrap();
            assert!(stored.state.lead.learned().is_some_and(|l| l <= Duration::minutes(15)), "{:?}", stored.state.lead);
            assert!(!stored.state.profile.is_empty());
        }
    }
    // AND the users found sessions, where reacting alone left them waiting until the schedule's 09:00
    assert_eq!(unserved[0], 0, "predictive: {unserved:?}");
    assert!(unserved[1] > 10, "reactive: {unserved:?}");
}

/// An ELASTIC fleet has no desired capacity (AppStream provisions its instances per session): it is held with one
/// record saying so, never updated (it was sent an UpdateFleet every tick, refused every time).
#[tokio::test]
async fn an_elastic_fleet_is_held_not_updated() {
    let estate = ESTATE.replace(
        "fleets:\n",
        "fleets:\n  - { name: elastic-fleet, fleet_type: ELASTIC, state: RUNNING, desired: 0, tags: { autopilot/capacity: engineering } }\n",
    );
    let h = Harness::start(&estate, POLICY, 21).await;
    for _ in 0..3 {
        h.tick().await;
        h.local.simulator.advance(Duration::minutes(5));
    }
    let updates = h.mutations().into_iter().filter(|c| c.resource.as_deref() == Some("elastic-fleet")).count();
    assert_eq!(updates, 0, "nothing was asked of the elastic fleet");
    let date = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap().date_naive();
    let held: Vec<_> = h
        .deps
        .ledger
        .audit_by_day(date)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.resource.ends_with("#elastic-fleet") && r.outcome == Outcome::Skipped)
        .collect();
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(held[0].reason.starts_with("an elastic fleet"), "{}", held[0].reason);
}

#[tokio::test]
async fn an_update_that_keeps_failing_is_recorded_and_announced_once_per_fleet() {
    // GIVEN every UpdateFleet answered with a 5xx and two fleets far from their targets
    let estate = format!("{ESTATE}faults:\n  error_rate: {{ UpdateFleet: 1.0 }}\n");
    let h = Harness::start(&estate, POLICY, 1).await;
    h.local.simulator.advance(Duration::hours(5));
    // WHEN the scaler ticks four times
    for _ in 0..4 {
        h.tick().await;
        h.local.simulator.advance(Duration::minutes(5));
    }
    // THEN each fleet's failure is audited and announced once, though tried at every tick
    let tried = h.mutations().iter().filter(|c| c.operation == "UpdateFleet").count();
    assert!(tried >= 8, "{tried}");
    let audit = h.deps.ledger.audit_by_day(berlin(10, 0).date_naive()).await.unwrap();
    let failed: Vec<_> = audit.iter().filter(|a| a.outcome == Outcome::Failed).map(|a| a.resource.clone()).collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(h.outcome_events("Capacity Action Failed").len(), 2);
}

#[tokio::test]
async fn a_failure_eventbridge_did_not_take_is_announced_at_a_later_tick_once() {
    // GIVEN every UpdateFleet failing, and EventBridge failing at first
    let estate = format!("{ESTATE}faults:\n  error_rate: {{ UpdateFleet: 1.0 }}\n");
    let h = Harness::start(&estate, POLICY, 1).await;
    h.local.simulator.advance(Duration::hours(5));
    h.fail("PutEvents", 1.0);
    for _ in 0..2 {
        h.tick().await;
        h.local.simulator.advance(Duration::minutes(5));
    }
    assert!(h.outcome_events("Capacity Action Failed").is_empty());
    // WHEN EventBridge recovers and the scaler ticks three more times
    h.fail("PutEvents", 0.0);
    for _ in 0..3 {
        h.tick().await;
        h.local.simulator.advance(Duration::minutes(5));
    }
    // THEN each fleet's failure is announced once, and audited once
    assert_eq!(h.outcome_events("Capacity Action Failed").len(), 2);
    let audit = h.deps.ledger.audit_by_day(berlin(10, 0).date_naive()).await.unwrap();
    assert_eq!(audit.iter().filter(|a| a.outcome == Outcome::Failed).count(), 2);
}

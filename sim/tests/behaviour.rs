//! Behaviour on the virtual clock: demand accounting, provisioning delays, scale-in that never ends a
//! session, device updates in maintenance windows, and determinism (same estate and seed → same call log).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use autopilot_sim::Simulator;
use autopilot_sim::estate::Estate;
use chrono::Duration;
use serde_json::json;

const FLAT: &str = r#"
start: 2026-11-23T09:00:00Z
workspaces_pools:
  - id: wspool-flat
    name: flat
    desired_user_sessions: 10
    demand: { timezone: UTC, weekday: [20,20,20,20,20,20,20,20,20,20,20,20,20,20,20,20,20,20,20,20,20,20,20,20] }
  - id: wspool-stopped
    name: stopped
    state: STOPPED
    desired_user_sessions: 10
    demand: { timezone: UTC, weekday: [5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5] }
"#;

fn sim(text: &str, seed: u64) -> Simulator {
    Simulator::new(&Estate::from_yaml(text).expect("estate"), seed).expect("simulator")
}

#[test]
fn demand_is_served_up_to_capacity_and_the_rest_is_counted_unserved() {
    let sim = sim(FLAT, 1);
    sim.advance(Duration::minutes(60));
    let (pool, stopped) = sim.with_world(|w| (w.pools["wspool-flat"].clone(), w.pools["wspool-stopped"].clone()));
    assert_eq!(pool.capacity.active_sessions, 10, "capacity caps the sessions");
    assert_eq!(pool.totals.unserved_requests, 10, "ten users found no session, counted once");
    assert_eq!(pool.totals.unserved_session_minutes, 600);
    assert_eq!(pool.totals.served_session_minutes, 600);
    assert!((pool.totals.capacity_hours - 10.0).abs() < 1e-9);
    assert_eq!(stopped.totals.capacity_hours, 0.0);
    assert_eq!(stopped.totals.unserved_requests, 5);

    // scale out: the new capacity arrives after the provisioning delay, then everyone is served
    sim.invoke(
        "workspaces",
        "UpdateWorkspacesPool",
        &json!({ "PoolId": "wspool-flat", "Capacity": { "DesiredUserSessions": 30 } }),
    )
    .unwrap();
    sim.advance(Duration::minutes(9));
    assert_eq!(sim.with_world(|w| w.pools["wspool-flat"].capacity.active_sessions), 10);
    sim.advance(Duration::minutes(1));
    let pool = sim.with_world(|w| w.pools["wspool-flat"].clone());
    assert_eq!((pool.capacity.actual, pool.capacity.active_sessions), (30, 20));
    assert_eq!(pool.state, "RUNNING");
}

#[test]
fn scale_in_never_ends_an_active_session() {
    let sim = sim(FLAT, 1);
    sim.invoke(
        "workspaces",
        "UpdateWorkspacesPool",
        &json!({ "PoolId": "wspool-flat", "Capacity": { "DesiredUserSessions": 30 } }),
    )
    .unwrap();
    sim.advance(Duration::minutes(15));
    assert_eq!(sim.with_world(|w| w.pools["wspool-flat"].capacity.active_sessions), 20);
    sim.invoke(
        "workspaces",
        "UpdateWorkspacesPool",
        &json!({ "PoolId": "wspool-flat", "Capacity": { "DesiredUserSessions": 5 } }),
    )
    .unwrap();
    sim.advance(Duration::minutes(5));
    let pool = sim.with_world(|w| w.pools["wspool-flat"].clone());
    assert_eq!(pool.capacity.desired, 5);
    assert_eq!(pool.capacity.actual, 20, "units in use stay");
    assert_eq!(pool.capacity.active_sessions, 20);
}

#[test]
fn devices_update_only_in_their_window_and_faulty_ones_never() {
    let sim = sim(include_str!("../estates/demo.yaml"), 1);
    sim.with_world_mut(|w| {
        w.environments.get_mut("envbroad0001").unwrap().desired_software_set_id = Some("101".into())
    });
    // Monday 00:00; the broad ring's window is Saturday and Sunday 02:00–05:00 UTC
    sim.advance(Duration::days(4) + Duration::hours(23));
    let updated = |sim: &Simulator| {
        sim.with_world(|w| {
            w.devices
                .values()
                .filter(|d| d.environment_id == "envbroad0001" && d.current_software_set_id == "101")
                .count()
        })
    };
    assert_eq!(updated(&sim), 0, "Friday night: nothing applied");
    sim.advance(Duration::hours(5));
    assert_eq!(updated(&sim), 39, "Saturday window: all but the device that never updates");
    let stale =
        sim.with_world(|w| w.devices.values().filter(|d| w.now - d.last_posture_at > Duration::hours(24)).count());
    assert_eq!(stale, 2, "the two devices that stopped reporting (the one that never updates still reports)");
}

fn scripted_run(seed: u64) -> (Vec<autopilot_sim::calllog::CallRecord>, String) {
    let mut estate = Estate::from_yaml(include_str!("../estates/demo.yaml")).unwrap();
    estate.faults.batch_failure_rate.insert("RebootWorkspaces".into(), 0.5);
    estate.faults.error_rate.insert("DescribeFleets".into(), 0.3);
    let sim = Simulator::new(&estate, seed).unwrap();
    for step in 0..48 {
        let _ = sim.invoke("appstream", "DescribeFleets", &json!({}));
        let _ = sim.invoke("workspaces", "DescribeWorkspacesPools", &json!({}));
        if step % 6 == 0 {
            let _ = sim.invoke("appstream", "CreateExportImageTask", &json!({ "ImageName": "golden-2026-11", "AmiName": format!("ami-{step}"), "IamRoleArn": "arn:aws:iam::123456789012:role/r" }));
            let _ = sim.invoke("workspaces", "RebootWorkspaces", &json!({ "RebootWorkspaceRequests": [{ "WorkspaceId": "ws-a1b2c3d4e" }, { "WorkspaceId": "ws-q9w8e7r6t" }] }));
        }
        sim.advance(Duration::minutes(30));
        let _ = sim.invoke("appstream", "ListExportImageTasks", &json!({}));
    }
    let totals = sim.with_world(|w| {
        serde_json::to_string(&w.pools.values().map(|p| p.totals.clone()).collect::<Vec<_>>()).unwrap()
    });
    (sim.calls().iter().map(|c| c.deterministic()).collect(), totals)
}

#[test]
fn same_estate_and_seed_give_an_identical_call_log() {
    let (first_calls, first_totals) = scripted_run(42);
    let (second_calls, second_totals) = scripted_run(42);
    assert_eq!(first_calls.len(), 48 * 3 + 8 * 2);
    assert_eq!(first_calls, second_calls);
    assert_eq!(first_totals, second_totals);
    let (other_calls, _) = scripted_run(43);
    assert_ne!(first_calls, other_calls, "a different seed changes faults and ids");
    assert!(first_calls.iter().any(|c| c.outcome == "InternalServerException"), "faults were injected");
}

#[test]
fn generated_estates_round_trip_through_yaml_and_load() {
    use autopilot_sim::generate::{Sizes, generate};
    let sizes = Sizes { pools: 40, fleets: 30, builders: 10, environments: 4, devices: 103, workspaces: 50 };
    let estate = generate(sizes, 5);
    let yaml = serde_yaml_ng::to_string(&estate).unwrap();
    let again = Estate::from_yaml(&yaml).expect("generated YAML parses");
    assert_eq!(serde_yaml_ng::to_string(&again).unwrap(), yaml, "stable round trip");
    assert_eq!(serde_yaml_ng::to_string(&generate(sizes, 5)).unwrap(), yaml, "same seed, same estate");
    let sim = Simulator::new(&again, 1).unwrap();
    let counts = sim.with_world(|w| {
        (w.pools.len(), w.fleets.len(), w.builders.len(), w.environments.len(), w.devices.len(), w.workspaces.len())
    });
    assert_eq!(counts, (40, 30, 10, 4, 103, 50));
}

#[test]
fn malformed_estates_are_rejected_with_a_reason() {
    assert!(Estate::from_yaml("workspaces_pools: [{ id: p }]").is_err(), "name is required");
    assert!(Estate::from_yaml("fleets: [{ name: f, colour: red }]").is_err(), "unknown fields are errors");
    let bad_zone =
        Estate::from_yaml("workspaces_pools: [{ id: p, name: n, demand: { timezone: Mars/Base, weekday: [] } }]")
            .unwrap();
    let error = Simulator::new(&bad_zone, 1).unwrap_err().to_string();
    assert!(error.contains("workspaces_pools[0].demand"), "{error}");
    let orphan = Estate::from_yaml("devices: [{ environment: nope, count: 1, current_software_set_id: '1' }]").unwrap();
    assert!(Simulator::new(&orphan, 1).unwrap_err().to_string().contains("devices[0].environment"));
}

#[test]
fn unhealthy_workspaces_recover_on_reboot_or_not() {
    let sim = sim(include_str!("../estates/demo.yaml"), 1);
    sim.with_world_mut(|w| w.faults.batch_failure_rate.clear());
    sim.advance(Duration::minutes(120));
    let state = |sim: &Simulator, id: &str| sim.with_world(|w| w.workspaces[id].state.clone());
    assert_eq!((state(&sim, "ws-a1b2c3d4e"), state(&sim, "ws-q9w8e7r6t")), ("UNHEALTHY".into(), "UNHEALTHY".into()));
    let out = sim
        .invoke("workspaces", "RebootWorkspaces", &json!({ "RebootWorkspaceRequests": [{ "WorkspaceId": "ws-a1b2c3d4e" }, { "WorkspaceId": "ws-q9w8e7r6t" }] }))
        .unwrap();
    assert_eq!(out["FailedRequests"], json!([]));
    assert_eq!(state(&sim, "ws-a1b2c3d4e"), "REBOOTING");
    sim.advance(Duration::minutes(5));
    assert_eq!(state(&sim, "ws-a1b2c3d4e"), "AVAILABLE", "bob recovers");
    assert_eq!(state(&sim, "ws-q9w8e7r6t"), "UNHEALTHY", "carol needs a rebuild");
    sim.invoke(
        "workspaces",
        "RebuildWorkspaces",
        &json!({ "RebuildWorkspaceRequests": [{ "WorkspaceId": "ws-q9w8e7r6t" }] }),
    )
    .unwrap();
    sim.advance(Duration::minutes(30));
    assert_eq!(state(&sim, "ws-q9w8e7r6t"), "AVAILABLE");
}

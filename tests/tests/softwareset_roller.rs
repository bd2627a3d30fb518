//! softwareset-roller (in progress): its observe step through the real Thin Client SDK client against the
//! simulator, and the gate computed from what it observes.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use autopilot_tests::Harness;
use softwareset_roller::gate::{evaluate, figures};
use softwareset_roller::observe::{devices_of, environments, software_sets};

const ESTATE: &str = r#"
start: 2026-11-23T00:00:00Z
environments:
  - { id: envcanary01, name: lobby-canary, desired_software_set_id: "100", tags: { autopilot/ring: canary } }
  - { id: envbroad0001, name: branches, desired_software_set_id: "100", software_set_update_mode: USE_LATEST }
software_sets:
  - { id: "100", version: "2026.10.1", released_at: 2026-10-06T00:00:00Z, supported_until: 2027-03-31T00:00:00Z }
  - { id: "101", version: "2026.11.1", released_at: 2026-11-17T00:00:00Z }
devices:
  - { environment: envcanary01, count: 5, current_software_set_id: "100", not_reporting: 1 }
  - { environment: envbroad0001, count: 7, current_software_set_id: "100" }
"#;

const POLICY: &str = r#"
version: 1
rollouts:
  gates: { min_up_to_date: 0.8, within: 24h, min_reporting_devices: 3, reporting_stale_after: 12h }
  rings: [{ name: canary, select: { tag: { autopilot/ring: canary } } }]
"#;

#[tokio::test]
async fn observes_environments_sets_and_the_devices_of_a_ring_with_their_status() {
    let h = Harness::start(ESTATE, POLICY, 1).await;
    let (envs, calls) = environments(&h.deps.aws).await.unwrap();
    assert_eq!(envs.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["envbroad0001", "envcanary01"]);
    assert_eq!(calls, 3, "one list page and one tag look-up per environment");
    let canary = envs.iter().find(|e| e.id == "envcanary01").unwrap();
    assert_eq!(canary.tags.get("autopilot/ring").map(String::as_str), Some("canary"));
    assert_eq!((canary.update_mode.as_str(), canary.desired_software_set_id.as_deref()), ("USE_DESIRED", Some("100")));
    assert_eq!(envs.iter().find(|e| e.id == "envbroad0001").unwrap().update_mode, "USE_LATEST");

    let (sets, _) = software_sets(&h.deps.aws).await.unwrap();
    assert_eq!(sets.len(), 2);
    assert!(sets.iter().find(|s| s.id == "100").unwrap().supported_until.is_some());

    // thirteen hours later the silent device's posture is stale (older than reporting_stale_after: 12h)
    h.local.simulator.advance(chrono::Duration::hours(13));
    // only the ring's devices are fetched one by one (ListDevices has no update or compliance status)
    let ring = ["envcanary01".to_owned()].into_iter().collect();
    let (devices, calls) = devices_of(&h.deps.aws, &ring).await.unwrap();
    assert_eq!(devices.len(), 5);
    assert_eq!(calls, 1 + 5);
    assert!(devices.iter().all(|d| d.environment_id == "envcanary01" && d.update_status.is_some()));

    // the gate from what was observed: 4 of 5 report; none runs 101 yet
    let gates = h.deps.ledger.current_policy().await.unwrap().unwrap().policy.rollouts.unwrap().rings[0].gates.clone();
    let now = h.local.simulator.now();
    let f = figures(&devices, "101", &gates, now);
    assert_eq!((f.active, f.reporting, f.up_to_date), (5, 4, 0));
    assert!(matches!(evaluate(&f, &gates, now, now), softwareset_roller::gate::Verdict::Waiting { .. }));
}

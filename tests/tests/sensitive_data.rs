//! Secrets and sensitive data never reach a log line.
//!
//! GIVEN an estate whose Thin Client environments and devices carry sensitive names, desktop endpoints,
//! activation codes and tags, and whose pools, fleets, image builders, images and WorkSpaces carry
//! secret-looking tag keys and values and user names, each a unique marker, and an export request that asks for
//! a secret tag;
//! WHEN all five functions run over twelve hours of it (the pool-scaler starts, scales and stops a pool and
//! scales a fleet, the builder-scheduler starts and stops a builder, the export-chaser creates and chases the
//! export, the softwareset-roller rolls a set through two rings, the remediator reboots a WorkSpace) under the
//! functions' own subscriber (`telemetry::subscriber_at`: their JSON format and filter) at the most verbose level
//! Lambda's log level setting offers, TRACE, with a second layer that writes every event with its spans and
//! all their fields;
//! THEN no marker appears in any line a function writes — its own, the AWS SDK's, hyper's — while the capture
//! demonstrably works: thousands of lines, the resources' ids, the functions' decisions and the SDK's own lines.
//!
//! The simulator and the embedded DynamoDB run in this process too; their lines (targets `autopilot_sim`,
//! `dynoxide`) are not a function's and are left out. Before `MAX_LOG_LEVEL` capped TRACE at DEBUG this test
//! found the SDK writing WorkSpaces user names and every pool, fleet, builder, image and WorkSpace tag at TRACE.

use autopilot_shared::report::Status;
use autopilot_tests::Harness;
use chrono::Duration;
use serde_json::Value;
use std::sync::{Arc, Mutex, PoisonError};
use tracing_subscriber::layer::SubscriberExt;

/// Every planted value: unique, so a hit names what leaked.
const MARKERS: [&str; 16] = [
    "SECRET-NAME-env-4b1c",      // an environment's name
    "SECRET-NAME-env-b7d3",      // the other environment's name
    "SECRET-ENDPOINT-7f3a",      // desktop endpoints
    "ACTCODE-9d2e",              // an activation code
    "ACTCODE-e6f1",              // the other activation code
    "SECRET-TAG-env-5e81",       // environment tag values
    "SECRET-DEVICE-2c6d",        // device names
    "SECRET-TAG-device-8a40",    // device tag values
    "SECRET-TAG-pool-61f9",      // a WorkSpaces pool's tag value
    "SECRET-KEY-ab17",           // a tag key (on the pool and an environment)
    "SECRET-TAG-fleet-0e37",     // an AppStream fleet's tag value
    "SECRET-TAG-builder-93b5",   // an image builder's tag value
    "SECRET-TAG-image-d4a2",     // an image's tag value
    "SECRET-TAG-workspace-17c8", // a WorkSpace's tag value
    "SECRET-USER-5f02",          // a WorkSpace's user name
    "SECRET-TAG-export-c3e9",    // a tag an export request asks for
];

/// Monday 2026-11-23 06:00 UTC, twelve hours; office hours 08:00–12:00 UTC.
const ESTATE: &str = r#"
start: 2026-11-23T06:00:00Z
workspaces_pools:
  - id: wspool-sales0001
    name: sales
    state: STOPPED
    running_mode: AUTO_STOP
    desired_user_sessions: 0
    tags: { autopilot/capacity: sales, cost-centre: SECRET-TAG-pool-61f9, SECRET-KEY-ab17: x }
    demand: { timezone: UTC, weekday: [0,0,0,0,0,0,0,0,6,12,12,12,6,0,0,0,0,0,0,0,0,0,0,0] }
fleets:
  - { name: engineering-fleet, state: RUNNING, desired: 1, tags: { autopilot/capacity: engineering, project: SECRET-TAG-fleet-0e37 } }
image_builders:
  - { name: golden-builder, state: STOPPED, tags: { autopilot/builder: office, owner: SECRET-TAG-builder-93b5 } }
images:
  - { name: golden-2026-11, state: AVAILABLE, tags: { owner: SECRET-TAG-image-d4a2 } }
workspaces:
  - { id: ws-a1b2c3d4e, user: SECRET-USER-5f02, unhealthy_after_minutes: 60, tags: { owner: SECRET-TAG-workspace-17c8 } }
software_sets:
  - { id: "100", version: "2026.10.1", released_at: 2026-10-06T00:00:00Z, supported_until: 2027-03-31T00:00:00Z }
  - { id: "101", version: "2026.11.1", released_at: 2026-11-17T00:00:00Z, supported_until: 2027-06-30T00:00:00Z }
environments:
  - id: envcanary01
    name: SECRET-NAME-env-4b1c
    desired_software_set_id: "100"
    software_set_update_schedule: APPLY_IMMEDIATELY
    desktop_endpoint: https://SECRET-ENDPOINT-7f3a.example.com/canary
    activation_code: ACTCODE-9d2e
    tags: { ring: canary, site: SECRET-TAG-env-5e81 }
  - id: envbroad001
    name: SECRET-NAME-env-b7d3
    desired_software_set_id: "100"
    software_set_update_schedule: APPLY_IMMEDIATELY
    desktop_endpoint: https://SECRET-ENDPOINT-7f3a.example.com/broad
    activation_code: ACTCODE-e6f1
    tags: { ring: broad, site: SECRET-TAG-env-5e81, SECRET-KEY-ab17: y }
devices:
  - { environment: envcanary01, count: 3, current_software_set_id: "100", name_prefix: SECRET-DEVICE-2c6d-c, tags: { room: SECRET-TAG-device-8a40 } }
  - { environment: envbroad001, count: 4, current_software_set_id: "100", name_prefix: SECRET-DEVICE-2c6d-b, tags: { room: SECRET-TAG-device-8a40 } }
faults:
  exports: { minutes: 45 }
"#;

const POLICY: &str = r#"
version: 1
schedules:
  office:
    timezone: UTC
    periods: [{ days: [mon-fri], start: "08:00", end: "12:00" }]
capacity:
  - select: { tag: { autopilot/capacity: sales } }
    schedule: office
    in_hours:  { min: 2, max: 20, target_utilization: 0.75 }
    off_hours: { min: 0, max: 2, stop_when_idle: true, idle_grace: 30m }
  - select: { tag: { autopilot/capacity: engineering } }
    in_hours: { min: 3, max: 10 }
image_builders:
  - select: { tag: { autopilot/builder: office } }
    schedule: office
exports: { retry: { max_attempts: 2, backoff: 30m }, max_duration: 6h }
rollouts:
  bake: 1h
  gates: { min_up_to_date: 0.75, within: 6h, min_reporting_devices: 1 }
  rings:
    - { name: canary, select: { tag: { ring: canary } } }
    - { name: broad, select: { tag: { ring: broad } } }
remediation:
  reboot_after: 15m
  cooldown: 30m
"#;

/// What the subscriber's layers write, kept for the test to read.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// Every line a function wrote, parsed: the simulator's and the embedded DynamoDB's lines left out.
    fn function_lines(&self) -> Vec<(String, Value)> {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|line| (line.to_owned(), serde_json::from_str::<Value>(line).expect("every line is JSON")))
            .filter(|(_, json)| {
                let target = json["target"].as_str().unwrap_or_default();
                !target.starts_with("autopilot_sim") && !target.starts_with("dynoxide")
            })
            .collect()
    }
}

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The sample Export Requested command, asking for a secret tag on the AMI.
fn export_request() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/command-export-requested.json"))
        .unwrap();
    let mut event: Value = serde_json::from_str(&text).unwrap();
    event["detail"]["tagSpecifications"] = serde_json::json!({ "owner": "SECRET-TAG-export-c3e9" });
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sensitive_value_reaches_any_log_line() {
    // GIVEN the functions' own subscriber at TRACE, plus a layer writing every span and field, for the process
    let lines = Capture::default();
    let spans = Capture::default();
    let subscriber = autopilot_shared::telemetry::subscriber_at("capture", Some("TRACE"), lines.clone()).with(
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::NEW)
            .with_writer(spans.clone()),
    );
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let h = Harness::start(ESTATE, POLICY, 7).await;

    // WHEN the export is requested and every function ticks every 10 minutes for 12 hours
    assert_eq!(h.deliver_to_exports(export_request()).await.unwrap().status, Status::Requested);
    let until = h.local.simulator.now() + Duration::hours(12);
    while h.local.simulator.now() < until {
        h.tick().await;
        h.builder_tick().await;
        h.export_tick().await;
        h.roller_tick().await;
        h.remediator_tick().await;
        h.local.simulator.advance(Duration::minutes(10));
    }

    // THEN every function acted on the planted resources
    let applied: Vec<(String, String)> =
        h.mutations().into_iter().filter(|c| c.ok()).map(|c| (c.operation, c.resource.unwrap_or_default())).collect();
    for (operation, resource) in [
        ("StartWorkspacesPool", "wspool-sales0001"),
        ("StopWorkspacesPool", "wspool-sales0001"),
        ("UpdateFleet", "engineering-fleet"),
        ("StartImageBuilder", "golden-builder"),
        ("StopImageBuilder", "golden-builder"),
        ("CreateExportImageTask", "golden-2026-11"),
        ("UpdateEnvironment", "envcanary01"),
        ("UpdateEnvironment", "envbroad001"),
        ("RebootWorkspaces", "ws-a1b2c3d4e"),
    ] {
        assert!(
            applied.iter().any(|(o, r)| o == operation && r.contains(resource)),
            "no {operation} of {resource}: {applied:?}"
        );
    }
    assert_eq!(h.outcome_events("Export Completed").len(), 1);
    assert_eq!(h.outcome_events("Rollout Completed").len(), 1);

    // AND the capture is real: many lines, both layers, the functions' decisions and the SDK's own lines
    let lines = lines.function_lines();
    let spans = spans.function_lines();
    eprintln!("captured {} lines, {} with spans", lines.len(), spans.len());
    assert!(lines.len() > 10_000, "only {} lines", lines.len());
    assert!(spans.len() > lines.len(), "{} span lines, {} lines", spans.len(), lines.len());
    let has = |target: &str, level: &str, message: &str| {
        lines.iter().any(|(_, json)| {
            json["target"].as_str().is_some_and(|t| t.starts_with(target))
                && json["level"] == level
                && json["message"].as_str().is_some_and(|m| m.starts_with(message))
        })
    };
    assert!(has("autopilot_shared", "INFO", "applied"), "the exactly-once effect's lines");
    for function in ["pool_scaler", "builder_scheduler", "remediator"] {
        assert!(has(function, "DEBUG", "decided"), "{function}'s decisions at DEBUG");
    }
    assert!(has("aws_smithy_runtime", "DEBUG", ""), "the SDK's own lines");
    assert!(has("aws_sdk_workspacesthinclient", "DEBUG", ""), "the Thin Client client's lines");
    assert!(lines.iter().all(|(_, json)| json["level"] != "TRACE"), "TRACE is written as DEBUG at most");
    // non-sensitive identifiers of the same resources do appear: the markers' absence means something
    let export_job = "9a0b1c2d-3333-4a7b-8c9d-000000000001"; // the request's event id
    for id in [
        "envcanary01",
        "envbroad001",
        "wspool-sales0001",
        "engineering-fleet",
        "golden-builder",
        "ws-a1b2c3d4e",
        export_job,
    ] {
        assert!(lines.iter().any(|(line, _)| line.contains(id)), "{id} is in no line");
    }

    // AND no planted value is in any line of either layer
    for (layer, captured) in [("function lines", &lines), ("spans and fields", &spans)] {
        for marker in MARKERS {
            let leaks: Vec<&str> =
                captured.iter().filter(|(line, _)| line.contains(marker)).map(|(line, _)| line.as_str()).collect();
            assert!(leaks.is_empty(), "{marker} leaked into {} {layer}, e.g.\n{}", leaks.len(), leaks[0]);
        }
    }

    // AND the Thin Client values were there to leak: the SDK hands them to the functions (ListEnvironments and
    // ListDevices are what the roller observes)
    let thinclient = &h.deps.aws.thinclient;
    let environments = thinclient.list_environments().send().await.unwrap();
    let canary = environments.environments().iter().find(|e| e.id() == Some("envcanary01")).unwrap();
    assert_eq!(canary.name(), Some("SECRET-NAME-env-4b1c"));
    assert_eq!(canary.activation_code(), Some("ACTCODE-9d2e"));
    assert_eq!(canary.desktop_endpoint(), Some("https://SECRET-ENDPOINT-7f3a.example.com/canary"));
    let devices = thinclient.list_devices().send().await.unwrap();
    assert_eq!(devices.devices().len(), 7);
    assert!(devices.devices().iter().all(|d| d.name().is_some_and(|n| n.starts_with("SECRET-DEVICE-2c6d"))));
}

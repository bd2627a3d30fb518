//! A reconcile acts on a resource as soon as its tags are known, while the other resources' tags are still
//! being read (`pacing::in_lanes_streamed` over `lookups::cached_tags_streamed`): on a first tick the reads and
//! the mutations overlap instead of following one another. Every tag read is slowed down (the simulator's
//! latency fault), so the order in the call log is not a race. GIVEN / WHEN / THEN.

use autopilot_shared::report::ActionResult;
use autopilot_tests::{CallRecord, Harness};

const RESOURCES: usize = 40;
/// 40 reads, 8 at a time, 250 ms each: the last read begins about a second after the first.
const TAG_READ_LATENCY_MS: u64 = 250;

/// Monday 2026-11-23 08:00 Berlin: office hours.
fn estate() -> String {
    let mut yaml = String::from("start: 2026-11-23T07:00:00Z\nfleets:\n");
    for i in 0..RESOURCES {
        yaml.push_str(&format!(
            "  - {{ name: fleet-{i:02}, state: RUNNING, desired: 0, tags: {{ autopilot/capacity: eng }} }}\n"
        ));
    }
    yaml.push_str("image_builders:\n");
    for i in 0..RESOURCES {
        yaml.push_str(&format!(
            "  - {{ name: builder-{i:02}, state: STOPPED, tags: {{ autopilot/builder: office }} }}\n"
        ));
    }
    yaml
}

const POLICY: &str = r#"
version: 1
schedules:
  office:
    timezone: Europe/Berlin
    periods: [{ days: [mon-fri], start: "07:00", end: "19:00" }]
capacity:
  - select: { tag: { autopilot/capacity: eng } }
    in_hours: { min: 3, max: 20 }
image_builders:
  - select: { tag: { autopilot/builder: office } }
    schedule: office
"#;

async fn slow_tag_reads() -> Harness {
    let h = Harness::start(&estate(), POLICY, 1).await;
    h.local.simulator.with_world_mut(|w| {
        w.faults.latency_ms.insert("ListTagsForResource".into(), TAG_READ_LATENCY_MS);
    });
    h
}

/// The position in `calls` of the first `mutation` and of the last tag read.
fn first_mutation_and_last_read(calls: &[CallRecord], mutation: &str) -> (usize, usize) {
    let first = calls.iter().position(|c| c.operation == mutation).expect("a mutation");
    let last = calls.iter().rposition(|c| c.operation == "ListTagsForResource").expect("a tag read");
    (first, last)
}

#[tokio::test]
async fn the_pool_scaler_updates_fleets_while_other_fleets_tags_are_still_read() {
    // GIVEN 40 fleets at 0 whose rule wants at least 3, none of their tags cached, tag reads slowed down
    let h = slow_tag_reads().await;
    let from = h.local.simulator.calls().len();
    // WHEN the scaler ticks
    let report = h.tick().await;
    let calls: Vec<CallRecord> = h.local.simulator.calls().into_iter().skip(from).collect();
    // THEN the first UpdateFleet is made before the last tag read
    let (first_update, last_read) = first_mutation_and_last_read(&calls, "UpdateFleet");
    assert!(first_update < last_read, "UpdateFleet at {first_update}, last tag read at {last_read}");
    // and every fleet was read and updated once, reported in resource order, every EUC call counted
    assert_eq!(calls.iter().filter(|c| c.operation == "ListTagsForResource").count(), RESOURCES);
    assert_eq!(calls.iter().filter(|c| c.operation == "UpdateFleet" && c.ok()).count(), RESOURCES);
    let names: Vec<&str> = report.actions.iter().map(|a| a.name.as_str()).collect();
    let expected: Vec<String> = (0..RESOURCES).map(|i| format!("fleet-{i:02}")).collect();
    assert_eq!(names, expected);
    assert!(report.actions.iter().all(|a| a.result == ActionResult::Applied), "{:?}", report.actions);
    assert_eq!(report.api_calls, calls.iter().filter(|c| c.service != "eventbridge").count() as u32);
}

#[tokio::test]
async fn the_builder_scheduler_starts_builders_while_other_builders_tags_are_still_read() {
    // GIVEN 40 stopped builders due in office hours, none of their tags cached, tag reads slowed down
    let h = slow_tag_reads().await;
    let from = h.local.simulator.calls().len();
    // WHEN the builder-scheduler ticks
    let report = h.builder_tick().await;
    let calls: Vec<CallRecord> = h.local.simulator.calls().into_iter().skip(from).collect();
    // THEN the first StartImageBuilder is made before the last tag read
    let (first_start, last_read) = first_mutation_and_last_read(&calls, "StartImageBuilder");
    assert!(first_start < last_read, "StartImageBuilder at {first_start}, last tag read at {last_read}");
    // and every builder was read and started once, reported in resource order, every EUC call counted
    assert_eq!(calls.iter().filter(|c| c.operation == "ListTagsForResource").count(), RESOURCES);
    assert_eq!(calls.iter().filter(|c| c.operation == "StartImageBuilder" && c.ok()).count(), RESOURCES);
    let names: Vec<&str> = report.actions.iter().map(|a| a.name.as_str()).collect();
    let expected: Vec<String> = (0..RESOURCES).map(|i| format!("builder-{i:02}")).collect();
    assert_eq!(names, expected);
    assert_eq!(report.api_calls, calls.iter().filter(|c| c.service != "eventbridge").count() as u32);
}

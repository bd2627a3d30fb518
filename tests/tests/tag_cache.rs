//! The tag cache end to end: the pool-scaler, builder-scheduler and softwareset-roller read each resource's tags
//! from its service once, then from the ledger (`TAGS#<kind>`) until a tag-change event (CloudTrail
//! `CreateTags` / `DeleteTags`, `TagResource` / `UntagResource`) marks them stale or they pass their maximum age.
//! Every count comes from the simulator's call log. GIVEN / WHEN / THEN.

use autopilot_functions::Function;
use autopilot_lab::bench::tick::tick;
use autopilot_shared::report::Status;
use autopilot_sim::{PERSON, cloudtrail_event};
use autopilot_tests::{CallRecord, Harness};
use chrono::Duration;
use serde_json::json;

/// Monday 2026-11-23 05:00 Berlin (04:00 UTC): two pools, two fleets, two builders, two environments.
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
  - { name: callcenter-multi, state: RUNNING, max_sessions_per_instance: 10, desired: 40, tags: { autopilot/capacity: callcenter } }
  - { name: engineering-fleet, state: RUNNING, desired: 8, tags: { autopilot/capacity: engineering } }
image_builders:
  - { name: golden-builder, state: STOPPED, tags: { autopilot/builder: office } }
  - { name: test-builder, state: STOPPED, tags: { autopilot/builder: office } }
software_sets:
  - { id: "100", version: "2026.10.1", released_at: 2026-10-06T00:00:00Z }
environments:
  - { id: envcanary01, name: lobby, desired_software_set_id: "100", tags: { ring: canary } }
  - { id: envbroad001, name: branches, desired_software_set_id: "100", tags: { ring: broad } }
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
  - select: { tag: { autopilot/capacity: callcenter } }
    in_hours: { min: 5, max: 100 }
  - select: { tag: { autopilot/capacity: engineering } }
    in_hours: { min: 3, max: 20 }
image_builders:
  - select: { tag: { autopilot/builder: office } }
    schedule: office
rollouts:
  rings:
    - { name: canary, select: { tag: { ring: canary } } }
    - { name: broad, select: { tag: { ring: broad } } }
"#;

const TAG_READS: [&str; 2] = ["DescribeTags", "ListTagsForResource"];

/// The calls made since the call log held `from` records.
fn since(h: &Harness, from: usize) -> Vec<CallRecord> {
    h.local.simulator.calls().into_iter().skip(from).collect()
}

/// The tag reads among `calls`, as `operation resource`.
fn tag_reads(calls: &[CallRecord]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| TAG_READS.contains(&c.operation.as_str()))
        .map(|c| format!("{} {}", c.operation, c.resource.as_deref().unwrap_or_default()))
        .collect()
}

/// EUC calls among `calls` (the functions' reports count these; outcome events are not EUC calls).
fn euc_calls(calls: &[CallRecord]) -> u32 {
    calls.iter().filter(|c| c.service != "eventbridge").count() as u32
}

/// Delivers one pool-scaler tick and returns the calls it made.
async fn scaler_tick(h: &Harness) -> (pool_scaler::Report, Vec<CallRecord>) {
    let from = h.local.simulator.calls().len();
    let report = h.tick().await;
    (report, since(h, from))
}

const FLEET_ARN: &str = "arn:aws:appstream:eu-central-1:123456789012:fleet/engineering-fleet";

#[tokio::test]
async fn the_pool_scaler_reads_each_resources_tags_once_then_from_the_cache() {
    // GIVEN two pools and two fleets
    let h = Harness::start(ESTATE, POLICY, 1).await;
    // WHEN the scaler ticks twice, five minutes apart
    let (first, first_calls) = scaler_tick(&h).await;
    h.local.simulator.advance(Duration::minutes(5));
    let (second, second_calls) = scaler_tick(&h).await;
    // THEN the first tick reads every resource's tags once, the second none; each report counts every EUC call
    eprintln!(
        "pool-scaler tag calls: first tick {} of {} calls, second tick {} of {}",
        tag_reads(&first_calls).len(),
        first.api_calls,
        tag_reads(&second_calls).len(),
        second.api_calls
    );
    let mut first_reads = tag_reads(&first_calls);
    first_reads.sort();
    assert_eq!(
        first_reads,
        [
            "DescribeTags wspool-finance01",
            "DescribeTags wspool-sales0001",
            "ListTagsForResource arn:aws:appstream:eu-central-1:123456789012:fleet/callcenter-multi",
            &format!("ListTagsForResource {FLEET_ARN}"),
        ]
    );
    assert_eq!(tag_reads(&second_calls), Vec::<String>::new());
    assert_eq!(first.api_calls, euc_calls(&first_calls));
    assert_eq!(second.api_calls, euc_calls(&second_calls));
    assert_eq!(second.actions.len(), 4, "every resource still decided: {:?}", second.actions);

    // and a reconcile of one fleet (a session event) reads its entry alone, and no tags
    let mut session: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/appstream-session-notification.json"),
        )
        .unwrap(),
    )
    .unwrap();
    session["detail"]["fleetName"] = json!("engineering-fleet");
    let from = h.local.simulator.calls().len();
    let report = h.deliver(session).await.unwrap();
    assert_eq!(report.status, Status::Reconciled);
    let calls = since(&h, from);
    assert_eq!(tag_reads(&calls), Vec::<String>::new());
    assert_eq!(report.api_calls, euc_calls(&calls));
}

#[tokio::test]
async fn a_tag_change_event_makes_the_next_tick_read_that_resource_again_and_act_on_its_new_tags() {
    // GIVEN the stopped AUTO_STOP sales pool, which the office schedule would prewarm at 06:30, and a cache
    // filled at 05:00
    let h = Harness::start(ESTATE, POLICY, 1).await;
    h.tick().await;
    h.local.simulator.advance(Duration::minutes(5));
    // WHEN a person tags the pool and the engineering fleet `autopilot/skip`, and CloudTrail reports both calls
    h.local
        .simulator
        .invoke(
            "workspaces",
            "CreateTags",
            &json!({ "ResourceId": "wspool-sales0001", "Tags": [{ "Key": "autopilot/skip", "Value": "true" }] }),
        )
        .unwrap();
    h.deps.aws.appstream.tag_resource().resource_arn(FLEET_ARN).tags("autopilot/skip", "true").send().await.unwrap();
    let now = h.local.simulator.now();
    let pool_tagged = cloudtrail_event(
        "CreateTags",
        json!({ "resourceId": "wspool-sales0001", "tags": [{ "key": "autopilot/skip", "value": "true" }] }),
        now,
        PERSON,
    );
    let fleet_tagged = cloudtrail_event(
        "TagResource",
        json!({ "resourceArn": FLEET_ARN, "tags": { "autopilot/skip": "true" } }),
        now,
        PERSON,
    );
    assert_eq!(pool_tagged["source"], "aws.workspaces");
    assert!(pool_scaler::routing::routes(&pool_tagged) && pool_scaler::routing::routes(&fleet_tagged));
    assert_eq!(h.deliver(pool_tagged.clone()).await.unwrap().status, Status::TagsChanged);
    assert_eq!(h.deliver(fleet_tagged).await.unwrap().status, Status::TagsChanged);
    assert_eq!(h.deliver(pool_tagged).await.unwrap().status, Status::TagsChanged, "a redelivery changes nothing more");
    // THEN the next tick reads exactly those two resources' tags again
    h.local.simulator.advance(Duration::minutes(5));
    let (report, calls) = scaler_tick(&h).await;
    let mut reads = tag_reads(&calls);
    reads.sort();
    assert_eq!(reads, ["DescribeTags wspool-sales0001".to_owned(), format!("ListTagsForResource {FLEET_ARN}")]);
    assert_eq!(report.api_calls, euc_calls(&calls));
    // … and acts on the new tags: through the prewarm at 06:30 and the start of office hours, neither is touched
    let before = h.local.simulator.calls().len();
    h.run(150, 5).await; // to 07:45 Berlin
    let touched: Vec<_> = since(&h, before)
        .into_iter()
        .filter(|c| c.is_estate_mutation())
        .filter(|c| matches!(c.resource.as_deref(), Some("wspool-sales0001" | "engineering-fleet")))
        .collect();
    assert!(touched.is_empty(), "{touched:?}");
    let sales = h.tick().await.actions.into_iter().find(|a| a.name == "sales").unwrap();
    assert!(sales.reason.contains("skip"), "{sales:?}");
    // and no tick after the change read any tag again
    assert_eq!(tag_reads(&since(&h, before)), Vec::<String>::new());
}

#[tokio::test]
async fn without_an_event_a_tag_change_is_seen_once_the_entry_is_past_its_maximum_age() {
    // GIVEN a cache filled at 05:00, then a skip tag added with no CloudTrail event (a missed event)
    let h = Harness::start(ESTATE, POLICY, 1).await;
    h.tick().await;
    h.local.simulator.with_world_mut(|w| {
        w.pools.get_mut("wspool-sales0001").unwrap().tags.insert("autopilot/skip".into(), "true".into());
    });
    // WHEN ticks follow within the maximum age
    h.local.simulator.advance(Duration::minutes(5));
    let (report, calls) = scaler_tick(&h).await;
    // THEN they use the cached tags (the event is how a change arrives within a minute)
    assert_eq!(tag_reads(&calls), Vec::<String>::new());
    let sales = report.actions.iter().find(|a| a.name == "sales").unwrap();
    assert!(!sales.reason.contains("skip"), "{sales:?}");
    // WHEN a tick comes 25 hours later (every entry's maximum age is between 12 and 24 hours)
    h.local.simulator.advance(Duration::hours(25));
    let (report, calls) = scaler_tick(&h).await;
    // THEN every resource's tags are read again, and the skip tag is honoured
    assert_eq!(tag_reads(&calls).len(), 4, "{:?}", tag_reads(&calls));
    let sales = report.actions.iter().find(|a| a.name == "sales").unwrap();
    assert!(sales.reason.contains("skip"), "{sales:?}");
    // and the next tick is served from the refreshed cache
    h.local.simulator.advance(Duration::minutes(5));
    assert_eq!(tag_reads(&scaler_tick(&h).await.1), Vec::<String>::new());
}

#[tokio::test]
async fn entries_are_refreshed_spread_over_ticks_not_all_at_once() {
    // GIVEN a cache filled at one tick
    let h = Harness::start(ESTATE, POLICY, 1).await;
    h.tick().await;
    // WHEN the scaler ticks hourly for a day
    let mut reads_per_tick = Vec::new();
    for _ in 0..24 {
        h.local.simulator.advance(Duration::hours(1));
        reads_per_tick.push(tag_reads(&scaler_tick(&h).await.1).len());
    }
    // THEN nothing is read in the first 11 hours, each resource is read again once by hour 24, and the
    // refreshes fall on more than one tick
    assert!(reads_per_tick[..11].iter().all(|n| *n == 0), "{reads_per_tick:?}");
    assert_eq!(reads_per_tick.iter().sum::<usize>(), 4, "{reads_per_tick:?}");
    assert!(reads_per_tick.iter().filter(|n| **n > 0).count() > 1, "{reads_per_tick:?}");
}

#[tokio::test]
async fn the_builder_scheduler_reads_builder_tags_once_and_again_after_a_tag_change() {
    let h = Harness::start(ESTATE, POLICY, 1).await;
    let from = h.local.simulator.calls().len();
    h.builder_tick().await;
    assert_eq!(tag_reads(&since(&h, from)).len(), 2);
    // a second tick reads no tags
    h.local.simulator.advance(Duration::minutes(5));
    let from = h.local.simulator.calls().len();
    let report = h.builder_tick().await;
    let calls = since(&h, from);
    assert_eq!(tag_reads(&calls), Vec::<String>::new());
    assert_eq!(report.api_calls, euc_calls(&calls));
    // a person removes the schedule's tag from one builder; CloudTrail reports it
    let arn = "arn:aws:appstream:eu-central-1:123456789012:image-builder/test-builder";
    h.deps.aws.appstream.untag_resource().resource_arn(arn).tag_keys("autopilot/builder").send().await.unwrap();
    let untagged = cloudtrail_event(
        "UntagResource",
        json!({ "resourceArn": arn, "tagKeys": ["autopilot/builder"] }),
        h.local.simulator.now(),
        PERSON,
    );
    assert!(builder_scheduler::routing::routes(&untagged));
    assert_eq!(h.deliver_to_builders(untagged).await.unwrap().status, Status::TagsChanged);
    // a fleet's tag change reaches the builder-scheduler too (same rule), and is not its business
    let fleet = cloudtrail_event(
        "TagResource",
        json!({ "resourceArn": FLEET_ARN, "tags": { "a": "b" } }),
        h.local.simulator.now(),
        PERSON,
    );
    assert_eq!(h.deliver_to_builders(fleet).await.unwrap().status, Status::Ignored);
    // the next tick reads that builder's tags alone, and the schedule no longer starts it at 06:30
    h.local.simulator.advance(Duration::minutes(5));
    let from = h.local.simulator.calls().len();
    h.builder_tick().await;
    assert_eq!(tag_reads(&since(&h, from)), [format!("ListTagsForResource {arn}")]);
    h.run_builders_until(h.local.simulator.now() + Duration::hours(2), 5).await;
    let starts: Vec<String> =
        since(&h, from).into_iter().filter(|c| c.operation == "StartImageBuilder").filter_map(|c| c.resource).collect();
    assert_eq!(starts, ["golden-builder"]);
}

#[tokio::test]
async fn the_roller_reads_environment_tags_once_and_again_after_a_tag_change() {
    let h = Harness::start(ESTATE, POLICY, 1).await;
    let from = h.local.simulator.calls().len();
    h.roller_tick().await;
    assert_eq!(tag_reads(&since(&h, from)).len(), 2);
    h.local.simulator.advance(Duration::minutes(5));
    let from = h.local.simulator.calls().len();
    let report = h.roller_tick().await;
    let calls = since(&h, from);
    assert_eq!(tag_reads(&calls), Vec::<String>::new());
    assert_eq!(report.api_calls, euc_calls(&calls));
    // a person moves the broad environment into the canary ring; CloudTrail reports it
    let arn = "arn:aws:thinclient:eu-central-1:123456789012:environment/envbroad001";
    h.deps.aws.thinclient.tag_resource().resource_arn(arn).tags("ring", "canary").send().await.unwrap();
    let tagged = cloudtrail_event(
        "TagResource",
        json!({ "resourceArn": arn, "tags": { "ring": "canary" } }),
        h.local.simulator.now(),
        PERSON,
    );
    assert_eq!(tagged["source"], "aws.thinclient");
    assert!(softwareset_roller::routing::routes(&tagged) && !pool_scaler::routing::routes(&tagged));
    assert_eq!(h.deliver_to_roller(tagged).await.unwrap().status, Status::TagsChanged);
    // the next tick reads that environment's tags alone
    h.local.simulator.advance(Duration::minutes(5));
    let from = h.local.simulator.calls().len();
    h.roller_tick().await;
    let reads = tag_reads(&since(&h, from));
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert!(reads[0].contains("envbroad001"), "{reads:?}");
}

#[tokio::test]
async fn a_tick_reads_each_cached_kind_with_one_query_however_few_its_resources() {
    // GIVEN two pools, two fleets, two builders and two environments, each function's tags cached by a first tick
    let h = Harness::start(ESTATE, POLICY, 1).await;
    let mut at = h.local.simulator.now();
    let functions = [Function::PoolScaler, Function::BuilderScheduler, Function::SoftwareSetRoller];
    for function in functions {
        tick(&h.local, function, at).await.unwrap();
    }
    // WHEN each ticks again
    at += Duration::minutes(5);
    for function in functions {
        let steady = tick(&h.local, function, at).await.unwrap();
        // THEN its Queries are the policy's, the sweep of claims left in progress, the roller's open rollouts and
        // one per kind it caches (the kind's partition), not one per resource (two each here): read one by one,
        // the pool-scaler made 6, the builder-scheduler 4, the roller 5
        let (cached_kinds, own) = match function {
            Function::PoolScaler => (pool_scaler::observe::CACHED_TAGS.len(), 0),
            Function::SoftwareSetRoller => (1, 1),
            _ => (1, 0),
        };
        let queries = steady.ledger_operations.get("Query").copied().unwrap_or_default();
        eprintln!("{} steady tick: {:?}", function.name(), steady.ledger_operations);
        assert_eq!(queries, (2 + own + cached_kinds) as u64, "{}: {:?}", function.name(), steady.ledger_operations);
        assert!(tag_reads(&steady.calls).is_empty(), "{}: {:?}", function.name(), tag_reads(&steady.calls));
    }
}

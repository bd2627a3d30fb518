//! builder-scheduler end to end: the real handler, through the real SDK clients, against the simulator and the
//! embedded DynamoDB; every assertion reads the simulator's call log, its captured outcome events or the
//! ledger. GIVEN / WHEN / THEN.

use autopilot_shared::ledger::audit::Outcome as AuditOutcome;
use autopilot_shared::report::{ActionResult, Status};
use autopilot_sim::{PERSON, cloudtrail_event};
use autopilot_tests::{CallRecord, Harness};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

/// Monday 2026-11-23 00:00 New York (05:00 UTC); New York is UTC−5 all that week.
fn new_york(day: i64, hour: i64, minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 5, 0, 0).unwrap()
        + Duration::days(day)
        + Duration::hours(hour)
        + Duration::minutes(minute)
}

fn estate(start: DateTime<Utc>, builders: &str) -> String {
    format!("start: {}\nimage_builders:\n{builders}", start.to_rfc3339())
}

const POLICY: &str = r#"
version: 1
schedules:
  office:
    timezone: America/New_York
    periods: [{ days: [mon-fri], start: "08:00", end: "18:00" }]
image_builders:
  - select: { tag: { autopilot/builder: office } }
    schedule: office
    warn_before: 15m
  - select: { tag: { autopilot/builder: forgotten } }
    max_runtime: 2h
    warn_before: 15m
"#;

fn calls_for<'a>(h: &Harness, operation: &'a str, builder: &'a str) -> Vec<CallRecord> {
    h.mutations().into_iter().filter(|c| c.operation == operation && c.resource.as_deref() == Some(builder)).collect()
}

#[tokio::test]
async fn a_week_of_schedule_starts_and_stops_in_new_york_time() {
    // GIVEN a stopped office builder on Monday 00:00 New York
    let h = Harness::start(
        &estate(new_york(0, 0, 0), "  - { name: office-b, state: STOPPED, tags: { autopilot/builder: office } }\n"),
        POLICY,
        1,
    )
    .await;
    // WHEN the builder-scheduler ticks every 5 minutes (the stack's schedule) for a week
    h.run_builders_until(new_york(7, 0, 0), 5).await;
    // THEN it was started at 08:00 and stopped at 18:00 New York on each weekday, never at the weekend
    let starts: Vec<DateTime<Utc>> = calls_for(&h, "StartImageBuilder", "office-b").iter().map(|c| c.at).collect();
    let stops: Vec<DateTime<Utc>> = calls_for(&h, "StopImageBuilder", "office-b").iter().map(|c| c.at).collect();
    assert_eq!(starts, (0..5).map(|d| new_york(d, 8, 0)).collect::<Vec<_>>());
    assert_eq!(stops, (0..5).map(|d| new_york(d, 18, 0)).collect::<Vec<_>>());
    assert!(h.mutations().iter().all(CallRecord::ok), "every call succeeded");
    // AND each stop was announced warn_before ahead (at the 17:45 tick), once
    let warnings = h.outcome_events("Image Builder Stop Scheduled");
    assert_eq!(warnings.len(), 5, "{warnings:?}");
    assert_eq!(warnings[0]["stopAt"], json!("2026-11-23T23:00:00Z"));
    // AND it billed 10 hours a weekday (minus start-up)
    let minutes = h.local.simulator.with_world(|w| w.builders["office-b"].running_minutes);
    assert!((5 * 9 * 60..=5 * 10 * 60 + 30).contains(&minutes), "{minutes} billed minutes");
}

#[tokio::test]
async fn a_snapshotting_builder_is_stopped_after_the_snapshot_not_during() {
    // GIVEN the office builder running on Monday afternoon
    let h = Harness::start(
        &estate(new_york(0, 17, 0), "  - { name: office-b, state: RUNNING, tags: { autopilot/builder: office } }\n"),
        POLICY,
        2,
    )
    .await;
    h.run_builders_until(new_york(0, 17, 52), 5).await;
    // WHEN a person creates an image at 17:52 (SNAPSHOTTING for 25 minutes), and CloudTrail reports it
    h.local.simulator.with_world_mut(|w| w.create_image_from_builder("office-b", "golden-2026-11-23")).unwrap();
    let event = cloudtrail_event(
        "CreateImage",
        json!({ "imageBuilderName": "office-b", "imageName": "golden-2026-11-23" }),
        new_york(0, 17, 52),
        PERSON,
    );
    assert_eq!(h.deliver_to_builders(event).await.unwrap().status, Status::Recorded);
    h.run_builders_until(new_york(0, 19, 0), 5).await;
    // THEN no stop was attempted while it was SNAPSHOTTING; it was stopped at the first tick after
    let stops = calls_for(&h, "StopImageBuilder", "office-b");
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert_eq!(stops[0].at, new_york(0, 18, 20));
    assert!(stops[0].ok());
    // AND the deferral was recorded once, with its reason
    let audit =
        h.deps.ledger.audit_by_resource("appstream#123456789012#eu-central-1#image-builder#office-b").await.unwrap();
    let deferred: Vec<_> = audit.iter().filter(|r| r.outcome == AuditOutcome::Deferred).collect();
    assert_eq!(deferred.len(), 1, "{deferred:?}");
    assert!(deferred[0].reason.contains("SNAPSHOTTING"), "{}", deferred[0].reason);
}

/// A person starts the forgotten builder at 23:10 and CloudTrail tells us; ticks run every 5 minutes.
async fn started_by_a_person_at_23_10(tags: &str) -> Harness {
    let h = Harness::start(
        &estate(new_york(0, 23, 0), &format!("  - {{ name: night-b, state: STOPPED, tags: {{ {tags} }} }}\n")),
        POLICY,
        3,
    )
    .await;
    h.builder_tick().await; // 23:00: seen STOPPED
    h.local.simulator.advance_to(new_york(0, 23, 10));
    h.local.simulator.invoke("appstream", "StartImageBuilder", &json!({ "Name": "night-b" })).unwrap();
    let event = cloudtrail_event("StartImageBuilder", json!({ "name": "night-b" }), new_york(0, 23, 10), PERSON);
    assert_eq!(h.deliver_to_builders(event).await.unwrap().status, Status::Recorded);
    h.local.simulator.advance_to(new_york(0, 23, 15));
    h
}

#[tokio::test]
async fn max_runtime_is_measured_from_the_cloudtrail_event_not_the_next_tick() {
    let h = started_by_a_person_at_23_10("autopilot/builder: forgotten").await;
    h.run_builders_until(new_york(1, 2, 0), 5).await;
    // THEN the stop came 2 hours after 23:10 (01:10), not after the first tick that saw it (23:15 → 01:15)
    let stops = calls_for(&h, "StopImageBuilder", "night-b");
    assert_eq!(stops.iter().map(|c| c.at).collect::<Vec<_>>(), [new_york(1, 1, 10)]);
    let warnings = h.outcome_events("Image Builder Stop Scheduled");
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0]["stopAt"], json!("2026-11-24T06:10:00Z"));
    assert_eq!(warnings[0]["cause"], json!("max-runtime@2026-11-24T04:10:00Z"));
}

#[tokio::test]
async fn an_override_tag_holds_a_builder_past_its_max_runtime() {
    // GIVEN an in-hours override until 03:00 New York (08:00 UTC)
    let h = started_by_a_person_at_23_10(
        "autopilot/builder: forgotten, autopilot/override: in-hours, autopilot/override-until: \"2026-11-24T08:00:00Z\"",
    )
    .await;
    h.run_builders_until(new_york(1, 4, 0), 5).await;
    // THEN nothing stopped it while the override held; after it expired the stop was announced and made
    let stops = calls_for(&h, "StopImageBuilder", "night-b");
    assert_eq!(stops.iter().map(|c| c.at).collect::<Vec<_>>(), [new_york(1, 3, 15)]);
}

#[tokio::test]
async fn a_failed_builder_is_reported_once_and_left_alone() {
    let h = Harness::start(
        &estate(new_york(0, 20, 0), "  - { name: broken-b, state: FAILED, tags: { autopilot/builder: forgotten } }\n"),
        POLICY,
        4,
    )
    .await;
    h.run_builders_until(new_york(0, 22, 0), 5).await;
    assert!(h.mutations().is_empty(), "{:?}", h.mutations());
    let reports = h.outcome_events("Image Builder Failed");
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0]["imageBuilder"], json!("broken-b"));
}

#[tokio::test]
async fn duplicate_and_out_of_order_deliveries_make_one_action() {
    let h = started_by_a_person_at_23_10("autopilot/builder: forgotten").await;
    // the same start event again, and a stale stop event from an earlier run delivered late
    let start = cloudtrail_event("StartImageBuilder", json!({ "name": "night-b" }), new_york(0, 23, 10), PERSON);
    let stale_stop = cloudtrail_event("StopImageBuilder", json!({ "name": "night-b" }), new_york(0, 21, 0), PERSON);
    h.deliver_to_builders(start.clone()).await.unwrap();
    h.deliver_to_builders(stale_stop).await.unwrap();
    h.run_builders_until(new_york(1, 1, 10), 5).await;
    // WHEN the 01:10 tick is delivered three times in a row and twice at once
    let tick = autopilot_sim::tick_event("euc-autopilot-builder-scheduler", new_york(1, 1, 10));
    for _ in 0..3 {
        h.deliver_to_builders(tick.clone()).await.unwrap();
    }
    let (a, b) = tokio::join!(h.deliver_to_builders(tick.clone()), h.deliver_to_builders(tick.clone()));
    a.unwrap();
    b.unwrap();
    h.deliver_to_builders(start).await.unwrap();
    h.local.simulator.advance(Duration::minutes(5));
    h.run_builders_until(new_york(1, 2, 0), 5).await;
    // THEN one stop, at 01:10, and one warning
    let stops = calls_for(&h, "StopImageBuilder", "night-b");
    assert_eq!(stops.iter().map(|c| c.at).collect::<Vec<_>>(), [new_york(1, 1, 10)]);
    assert_eq!(h.outcome_events("Image Builder Stop Scheduled").len(), 1);
    let audit =
        h.deps.ledger.audit_by_resource("appstream#123456789012#eu-central-1#image-builder#night-b").await.unwrap();
    assert_eq!(audit.iter().filter(|r| r.action == "StopImageBuilder").count(), 1, "{audit:?}");
}

#[tokio::test]
async fn dry_run_makes_no_mutating_call_and_records_what_it_would_do() {
    let policy = POLICY.replace("version: 1\n", "version: 1\ndefaults: { dry_run: true }\n");
    let h = Harness::start(
        &estate(
            new_york(0, 7, 0),
            "  - { name: office-b, state: STOPPED, tags: { autopilot/builder: office } }\n  - { name: left-on, state: RUNNING, tags: { autopilot/builder: forgotten } }\n",
        ),
        &policy,
        5,
    )
    .await;
    h.run_builders_until(new_york(0, 10, 0), 5).await;
    assert!(h.mutations().is_empty(), "{:?}", h.mutations());
    assert!(h.outcome_events("Image Builder Stop Scheduled").is_empty(), "a dry run announces no stop");
    let audit = h.deps.ledger.audit_by_day(new_york(0, 12, 0).date_naive()).await.unwrap();
    let would: Vec<(&str, &str)> = audit
        .iter()
        .filter(|r| r.outcome == AuditOutcome::DryRun && r.action.ends_with("ImageBuilder"))
        .map(|r| (r.action.as_str(), r.resource.rsplit('#').next().unwrap()))
        .collect();
    // once each: the 08:00 start, and the stop of the builder first seen running at 07:00 (2 h + warning)
    assert_eq!(would, [("StartImageBuilder", "office-b"), ("StopImageBuilder", "left-on")]);
    // AND the forgotten builder's would-stop is not recorded again once its idempotency record has expired (30 h)
    h.run_builders_until(new_york(2, 10, 0), 30).await;
    let resource = "appstream#123456789012#eu-central-1#image-builder#left-on";
    let records = h.deps.ledger.audit_by_resource(resource).await.unwrap();
    let stops = records.iter().filter(|r| r.outcome == AuditOutcome::DryRun && r.action == "StopImageBuilder").count();
    assert_eq!(stops, 1, "{records:#?}");
}

#[tokio::test]
async fn a_throttled_describe_is_retried_and_no_stop_is_missed() {
    let builders = "  - { name: office-b, state: RUNNING, tags: { autopilot/builder: office } }\n";
    let throttled = format!(
        "{}faults:\n  throttle_per_second: {{ DescribeImageBuilders: 1 }}\n",
        estate(new_york(0, 17, 40), builders)
    );
    let h = Harness::start(&throttled, POLICY, 6).await;
    // two back-to-back deliveries per tick make the second Describe wait for a token
    let mut now = h.local.simulator.now();
    while now < new_york(0, 18, 10) {
        let tick = autopilot_sim::tick_event("euc-autopilot-builder-scheduler", now);
        h.deliver_to_builders(tick.clone()).await.unwrap();
        h.deliver_to_builders(tick).await.unwrap();
        now = h.local.simulator.advance(Duration::minutes(5));
    }
    let describes =
        h.local.simulator.calls().into_iter().filter(|c| c.operation == "DescribeImageBuilders").collect::<Vec<_>>();
    assert!(describes.iter().any(|c| !c.ok()), "the fault throttled some Describe calls");
    let stops = calls_for(&h, "StopImageBuilder", "office-b");
    assert_eq!(stops.iter().map(|c| c.at).collect::<Vec<_>>(), [new_york(0, 18, 0)]);
}

#[tokio::test]
async fn a_stop_the_service_refuses_because_the_state_changed_is_a_deferral_not_a_failure() {
    use builder_scheduler::act::{ActContext, act};
    use builder_scheduler::decide::{Action, Observed, Outcome, decide_one};
    // GIVEN a stop decided while the builder was RUNNING…
    let h = Harness::start(
        &estate(new_york(0, 19, 0), "  - { name: office-b, state: RUNNING, tags: { autopilot/builder: office } }\n"),
        &POLICY.replace(
            "warn_before: 15m\n  - select: { tag: { autopilot/builder: forgotten } }",
            "warn_before: 0s\n  - select: { tag: { autopilot/builder: forgotten } }",
        ),
        7,
    )
    .await;
    let now = h.local.simulator.now();
    let observed = Observed {
        resource: autopilot_shared::resource::ResourceRef::new(
            "123456789012",
            "eu-central-1",
            autopilot_shared::resource::ResourceKind::ImageBuilder,
            "office-b",
        )
        .unwrap(),
        name: "office-b".into(),
        state: "RUNNING".into(),
        tags: [("autopilot/builder".to_owned(), "office".to_owned())].into(),
        errors: Vec::new(),
    };
    let policy = h.deps.ledger.current_policy().await.unwrap().unwrap().policy;
    let decision = decide_one(&observed, &policy, Default::default(), "autopilot/", now).unwrap();
    assert!(matches!(decision.outcome, Outcome::Act(Action::Stop { .. })), "{}", decision.reason);
    // …and a person creates an image before the call is made
    h.local.simulator.with_world_mut(|w| w.create_image_from_builder("office-b", "img")).unwrap();
    let lease = h.deps.ledger.acquire_lease("test", "t", Duration::minutes(5), now).await.unwrap();
    let ctx = ActContext {
        aws: &h.deps.aws,
        ledger: &h.deps.ledger,
        function: builder_scheduler::FUNCTION,
        correlation_id: "race",
        dry_run: false,
        fence: Some(&lease.fence()),
        now,
        remaining: std::time::Duration::from_secs(60),
        event_bus: None,
        tag_prefix: &h.deps.config.tag_prefix,
        region: &h.deps.config.region,
        own_role_name: &h.deps.config.own_role_name,
    };
    let reports = act(&ctx, std::slice::from_ref(&decision), &Default::default()).await.unwrap();
    // THEN the refused stop is a deferral: audited as such, no failure event, and the next tick may stop it
    assert_eq!(reports[0].result, ActionResult::Deferred, "{reports:?}");
    assert!(reports[0].error.as_deref().unwrap().starts_with("OperationNotPermittedException"), "{reports:?}");
    assert!(h.outcome_events("Image Builder Action Failed").is_empty());
    let audit = h.deps.ledger.audit_by_resource(&decision.resource.key()).await.unwrap();
    assert_eq!(audit.iter().map(|r| r.outcome).collect::<Vec<_>>(), [AuditOutcome::Deferred]);
    h.local.simulator.advance(Duration::minutes(30));
    h.builder_tick().await;
    let stops = calls_for(&h, "StopImageBuilder", "office-b");
    assert_eq!(stops.iter().map(CallRecord::ok).collect::<Vec<_>>(), [false, true], "refused, then made");
}

#[tokio::test]
async fn a_builder_held_by_a_skip_tag_is_recorded_once_with_its_reason() {
    // GIVEN a forgotten builder tagged autopilot/skip, running
    let h = Harness::start(
        &estate(
            new_york(0, 20, 0),
            "  - { name: kept-b, state: RUNNING, tags: { autopilot/builder: forgotten, autopilot/skip: \"true\" } }\n",
        ),
        POLICY,
        5,
    )
    .await;
    // WHEN two hours of ticks see it
    h.run_builders_until(new_york(0, 22, 0), 5).await;
    // THEN it is never touched, the answer says skipped, and the audit holds the hold once
    assert!(h.mutations().is_empty(), "{:?}", h.mutations());
    let report = h.builder_tick().await;
    assert!(report.actions.iter().any(|a| a.name == "kept-b" && a.result == ActionResult::Skipped), "{report:?}");
    let audit = h.deps.ledger.audit_by_day(new_york(0, 22, 0).date_naive()).await.unwrap();
    let holds: Vec<_> = audit.iter().filter(|a| a.resource.ends_with("#kept-b")).collect();
    assert_eq!(holds.len(), 1, "{holds:#?}");
    assert_eq!((holds[0].action.as_str(), holds[0].outcome), ("Hold", AuditOutcome::Skipped));
    assert!(holds[0].reason.contains("skip"), "{}", holds[0].reason);
}

#[tokio::test]
async fn a_stop_that_keeps_failing_is_recorded_and_announced_once_until_it_succeeds() {
    // GIVEN an office builder running at 18:00 New York whose every StopImageBuilder fails (a 5xx, as a role
    // that lost its permission would fail every time)
    let builders = "  - { name: office-b, state: RUNNING, tags: { autopilot/builder: office } }\n";
    let failing =
        format!("{}faults:\n  error_rate: {{ StopImageBuilder: 1.0 }}\n", estate(new_york(0, 17, 0), builders));
    let h = Harness::start(&failing, POLICY, 9).await;
    // WHEN the builder-scheduler ticks every 10 minutes for two hours after the stop was due
    h.run_builders_until(new_york(0, 20, 0), 10).await;
    // THEN it tried at every tick, and recorded and announced the failure once
    let resource = "appstream#123456789012#eu-central-1#image-builder#office-b";
    let attempts = calls_for(&h, "StopImageBuilder", "office-b").iter().filter(|c| !c.ok()).count();
    assert!(attempts >= 12, "tried at every tick: {attempts}");
    let audit = h.deps.ledger.audit_by_resource(resource).await.unwrap();
    let failed = audit.iter().filter(|r| r.outcome == AuditOutcome::Failed).count();
    assert_eq!(failed, 1, "{audit:#?}");
    assert_eq!(h.outcome_events("Image Builder Action Failed").len(), 1);
    // AND once the stop succeeds, the next failure is a new one, recorded again
    h.local.simulator.with_world_mut(|w| w.faults.error_rate.clear());
    h.run_builders_until(new_york(0, 20, 30), 10).await;
    assert!(calls_for(&h, "StopImageBuilder", "office-b").iter().any(CallRecord::ok));
}

#[tokio::test]
async fn a_failed_stop_eventbridge_did_not_take_is_announced_at_a_later_tick_once() {
    // GIVEN an office builder whose every StopImageBuilder fails, and EventBridge failing at first
    let builders = "  - { name: office-b, state: RUNNING, tags: { autopilot/builder: office } }\n";
    let failing =
        format!("{}faults:\n  error_rate: {{ StopImageBuilder: 1.0 }}\n", estate(new_york(0, 17, 0), builders));
    let h = Harness::start(&failing, POLICY, 9).await;
    h.fail("PutEvents", 1.0);
    h.run_builders_until(new_york(0, 19, 0), 10).await;
    assert!(h.outcome_events("Image Builder Action Failed").is_empty());
    // WHEN EventBridge recovers and the builder-scheduler ticks for another hour
    h.fail("PutEvents", 0.0);
    h.run_builders_until(new_york(0, 20, 0), 10).await;
    // THEN the failure is announced once, and audited once
    assert_eq!(h.outcome_events("Image Builder Action Failed").len(), 1);
    let resource = "appstream#123456789012#eu-central-1#image-builder#office-b";
    let audit = h.deps.ledger.audit_by_resource(resource).await.unwrap();
    let failed = audit.iter().filter(|r| r.outcome == AuditOutcome::Failed && r.action == "StopImageBuilder").count();
    assert_eq!(failed, 1, "{audit:#?}");
}

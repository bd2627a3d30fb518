//! export-chaser end to end: the real handler, through the real SDK clients, against the simulator and the
//! embedded DynamoDB; assertions read the simulator's call log, its captured outcome events and the ledger.

use autopilot_shared::ledger::audit::Outcome as AuditOutcome;
use autopilot_shared::ledger::state::{WorkItemListing, WorkItemWrite};
use autopilot_shared::report::{ActionResult, Status};
use autopilot_tests::Harness;
use chrono::Duration;
use serde_json::json;

const ESTATE: &str = r#"
start: 2026-11-23T08:00:00Z
images:
  - { name: golden-2026-11, state: AVAILABLE }
faults:
  exports: { minutes: 90 }
"#;

const POLICY: &str = "version: 1\nexports: { retry: { max_attempts: 3, backoff: 30m }, max_duration: 6h }\n";

fn request(id: &str) -> serde_json::Value {
    let mut event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/command-export-requested.json"))
            .unwrap(),
    )
    .unwrap();
    event["id"] = json!(id);
    event
}

fn creates(h: &Harness) -> usize {
    h.mutations().iter().filter(|c| c.operation == "CreateExportImageTask" && c.ok()).count()
}

async fn chase_for(h: &Harness, minutes: i64) {
    for _ in 0..(minutes / 5) {
        h.local.simulator.advance(Duration::minutes(5));
        h.export_tick().await;
    }
}

#[tokio::test]
async fn a_requested_export_is_created_once_chased_and_completed() {
    let h = Harness::start(ESTATE, POLICY, 1).await;
    let report = h.deliver_to_exports(request("req-1")).await.unwrap();
    assert_eq!(report.status, Status::Requested);
    assert_eq!(creates(&h), 1);
    chase_for(&h, 120).await;
    let completed = h.outcome_events("Export Completed");
    assert_eq!(completed.len(), 1, "{completed:?}");
    assert!(completed[0]["amiId"].as_str().unwrap().starts_with("ami-"));
    assert_eq!(completed[0]["image"], json!("golden-2026-11"));
    assert!(completed[0]["durationSeconds"].as_i64().unwrap() >= 90 * 60);
    // it says which account and region's export it is (AMI names repeat from one account to the next)
    assert_eq!(
        (completed[0]["account"].as_str(), completed[0]["region"].as_str()),
        (Some("123456789012"), Some("eu-central-1"))
    );
    assert!(
        completed[0]["resource"].as_str().unwrap().starts_with("appstream#123456789012#eu-central-1#"),
        "{completed:?}"
    );
    // polling by age: far fewer Get/List calls than ticks would allow at 1 call per minute
    let polls = h.local.simulator.calls().iter().filter(|c| c.operation.contains("ExportImageTask")).count();
    assert!(polls <= 30, "{polls} export calls");
    assert_eq!(creates(&h), 1);
}

#[tokio::test]
async fn the_same_request_five_times_sequentially_and_concurrently_makes_one_task() {
    let h = Harness::start(ESTATE, POLICY, 2).await;
    for delivery in 0..5 {
        let answer = h.deliver_to_exports(request("req-dup")).await.unwrap();
        // the first delivery starts the export; each redelivery is answered as one (events.md)
        assert_eq!(answer.status, if delivery == 0 { Status::Requested } else { Status::Duplicate });
    }
    // another request (another AMI name: one in use by an export under way is refused)
    let other = || {
        let mut other = request("req-dup-2");
        other["detail"]["amiName"] = json!("golden-2026-11-second-ami");
        other
    };
    let results = futures_join(&h, other).await;
    // Concurrent copies run one at a time under the function lease: the others fail retryably ("busy") and
    // EventBridge delivers them again, which finds the job already created.
    assert!(results.iter().any(Result::is_ok), "{results:?}");
    for result in &results {
        if let Err(error) = result {
            assert_eq!(error.class, autopilot_shared::error::ErrorClass::Retryable, "{error}");
            let retried = h.deliver_to_exports(other()).await.unwrap();
            assert!(retried.actions.is_empty(), "the retry finds the job and does nothing: {retried:?}");
        }
    }
    assert_eq!(creates(&h), 2, "one task per distinct request id");
    // a third request for the first one's image and AMI name, while it is under way: refused, naming it
    let same = h.deliver_to_exports(request("req-dup-3")).await.expect_err("the AMI name is in use");
    assert!(same.message.contains("job req-dup is already exporting image golden-2026-11"), "{}", same.message);
    assert_eq!(creates(&h), 2);
}

async fn futures_join(
    h: &Harness,
    request: impl Fn() -> serde_json::Value,
) -> Vec<Result<export_chaser::Report, autopilot_shared::error::AutopilotError>> {
    let (a, b, c, d, e) = tokio::join!(
        h.deliver_to_exports(request()),
        h.deliver_to_exports(request()),
        h.deliver_to_exports(request()),
        h.deliver_to_exports(request()),
        h.deliver_to_exports(request()),
    );
    vec![a, b, c, d, e]
}

#[tokio::test]
async fn a_crash_between_create_and_record_adopts_the_task_instead_of_creating_another() {
    let h = Harness::start(ESTATE, POLICY, 3).await;
    h.deliver_to_exports(request("req-crash")).await.unwrap();
    // Simulate the crash: the job keeps its intent but loses the task id, and the claim is still held.
    let stored =
        h.deps.ledger.get_work_item::<export_chaser::decide::Job>("EXPORT", "req-crash").await.unwrap().unwrap();
    let mut job = stored.state.clone();
    let task_id = job.attempts[0].task_id.take().unwrap();
    job.attempts[0].state = None;
    h.deps
        .ledger
        .put_work_item(
            WorkItemWrite {
                kind: "EXPORT",
                id: "req-crash",
                state: &job,
                expected: Some(stored.version),
                listing: WorkItemListing::Open,
            },
            None,
            h.local.simulator.now(),
        )
        .await
        .unwrap();
    // a redelivery and ticks recover the task from the list
    h.deliver_to_exports(request("req-crash")).await.unwrap();
    chase_for(&h, 120).await;
    assert_eq!(creates(&h), 1, "no second task");
    let job =
        h.deps.ledger.get_work_item::<export_chaser::decide::Job>("EXPORT", "req-crash").await.unwrap().unwrap().state;
    assert_eq!(job.attempts[0].task_id.as_deref(), Some(task_id.as_str()));
    assert_eq!(h.outcome_events("Export Completed").len(), 1);
}

#[tokio::test]
async fn a_task_created_outside_us_with_its_event_lost_is_adopted_from_the_list() {
    let h = Harness::start(ESTATE, POLICY, 4).await;
    h.local
        .simulator
        .invoke(
            "appstream",
            "CreateExportImageTask",
            &json!({ "ImageName": "golden-2026-11", "AmiName": "by-hand", "IamRoleArn": "arn:aws:iam::123456789012:role/r" }),
        )
        .unwrap();
    h.export_tick().await;
    chase_for(&h, 120).await;
    let completed = h.outcome_events("Export Completed");
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0]["amiName"], json!("by-hand"));
    assert_eq!(creates(&h), 1, "the person's task only");
}

#[tokio::test]
async fn a_bad_command_is_refused_with_a_clear_non_retryable_error_and_nothing_is_created() {
    let h = Harness::start(ESTATE, POLICY, 5).await;
    let mut bad = request("req-bad");
    bad["detail"]["iamRoleArn"] = json!("not-an-arn");
    bad["detail"]["amiName"] = json!("x");
    let error = h.deliver_to_exports(bad).await.unwrap_err();
    assert_eq!(error.class.as_str(), "InvalidInput");
    assert!(
        error.message.contains("detail.iamRoleArn") && error.message.contains("detail.amiName"),
        "{}",
        error.message
    );
    let mut missing = request("req-missing");
    missing["detail"]["imageName"] = json!("no-such-image");
    // (delivered three times, as Lambda retries a failed asynchronous invocation twice)
    for _ in 0..3 {
        h.local.simulator.advance(chrono::Duration::minutes(1));
        let error = h.deliver_to_exports(missing.clone()).await.unwrap_err();
        assert!(error.message.contains("no-such-image does not exist"), "{}", error.message);
    }
    assert_eq!(creates(&h), 0);
    let audit = h.deps.ledger.audit_by_day(h.local.simulator.now().date_naive()).await.unwrap();
    assert_eq!(audit.iter().filter(|r| r.action == "Export Requested").count(), 2, "each refusal recorded once");
}

fn estate_with(faults: &str) -> String {
    ESTATE.replace("exports: { minutes: 90 }", &format!("exports: {{ minutes: 90, {faults} }}"))
}

#[tokio::test]
async fn a_retryable_failure_is_created_again_once_and_completes() {
    let h = Harness::start(&estate_with("fail_first: 1, error_code: INTERNAL_SERVICE_ERROR"), POLICY, 6).await;
    h.deliver_to_exports(request("req-retry")).await.unwrap();
    chase_for(&h, 300).await;
    assert_eq!(creates(&h), 2, "the failed attempt and one retry");
    let completed = h.outcome_events("Export Completed");
    assert_eq!(completed.len(), 1);
    assert_eq!(completed[0]["attempts"], json!(2));
    // the retry waited for the backoff (30 min) after the failure was seen
    let times: Vec<_> = h.mutations().iter().filter(|c| c.operation == "CreateExportImageTask").map(|c| c.at).collect();
    assert!(times[1] - times[0] >= Duration::minutes(120), "{times:?}");
    assert!(h.outcome_events("Export Failed").is_empty());
}

#[tokio::test]
async fn a_non_retryable_failure_is_not_retried_and_is_reported_with_its_history() {
    let h = Harness::start(&estate_with("fail_first: 1, error_code: IAM_SERVICE_ROLE_IS_MISSING"), POLICY, 7).await;
    h.deliver_to_exports(request("req-iam")).await.unwrap();
    chase_for(&h, 300).await;
    assert_eq!(creates(&h), 1);
    let failed = h.outcome_events("Export Failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0]["reason"].as_str().unwrap().contains("not retryable"));
    assert_eq!(failed[0]["attempts"][0]["errorCode"], json!("IAM_SERVICE_ROLE_IS_MISSING"));
}

#[tokio::test]
async fn timed_out_exports_are_retried_up_to_the_requests_max_attempts() {
    // the sample request allows 2 attempts; both time out
    let h = Harness::start(&estate_with("fail_first: 5, fail_as: TIMED_OUT"), POLICY, 8).await;
    h.deliver_to_exports(request("req-timeout")).await.unwrap();
    chase_for(&h, 480).await;
    assert_eq!(creates(&h), 2);
    let failed = h.outcome_events("Export Failed");
    assert_eq!(failed.len(), 1);
    assert!(failed[0]["reason"].as_str().unwrap().contains("2 of 2 attempts"), "{failed:?}");
    assert_eq!(failed[0]["attempts"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_export_stuck_beyond_max_duration_is_escalated_once_and_still_chased() {
    let h = Harness::start(&ESTATE.replace("minutes: 90", "minutes: 600"), POLICY, 9).await;
    h.deliver_to_exports(request("req-stuck")).await.unwrap();
    chase_for(&h, 11 * 60).await;
    let stuck = h.outcome_events("Export Stuck");
    assert_eq!(stuck.len(), 1, "{stuck:?}");
    assert_eq!(h.outcome_events("Export Completed").len(), 1, "chased to the end after the escalation");
}

#[tokio::test]
async fn throttled_list_and_get_calls_do_not_lose_the_export() {
    // a 20-minute export; List and Get at 2 requests/s
    let throttled = format!("{ESTATE}  throttle_per_second: {{ ListExportImageTasks: 2, GetExportImageTask: 2 }}\n")
        .replace("minutes: 90", "minutes: 20");
    let h = Harness::start(&throttled, POLICY, 10).await;
    h.deliver_to_exports(request("req-throttled")).await.unwrap();
    for _ in 0..5 {
        h.local.simulator.advance(Duration::minutes(5));
        h.export_tick().await;
        // two more deliveries of the same tick right away meet the rate limit
        let _ = h.export_tick().await;
        let _ = h.export_tick().await;
    }
    assert!(h.local.simulator.calls().iter().any(|c| c.operation == "ListExportImageTasks" && !c.ok()), "throttled");
    assert_eq!(h.outcome_events("Export Completed").len(), 1);
    assert_eq!(creates(&h), 1);
}

/// A person imports an AMI as an image; CloudTrail reports it.
async fn imported_by_a_person(h: &Harness, name: &str) {
    h.local
        .simulator
        .invoke(
            "appstream",
            "CreateImportedImage",
            &json!({ "Name": name, "SourceAmiId": "ami-0abc", "IamRoleArn": "arn:aws:iam::123456789012:role/r" }),
        )
        .unwrap();
    let event = autopilot_sim::cloudtrail_event(
        "CreateImportedImage",
        json!({ "name": name, "sourceAmiId": "ami-0abc" }),
        h.local.simulator.now(),
        autopilot_sim::PERSON,
    );
    assert_eq!(h.deliver_to_exports(event.clone()).await.unwrap().status, Status::Adopted);
    assert_eq!(h.deliver_to_exports(event).await.unwrap().status, Status::Ours, "a redelivery adopts nothing new");
}

#[tokio::test]
async fn an_imported_image_is_chased_to_available() {
    let h = Harness::start(ESTATE, POLICY, 11).await;
    imported_by_a_person(&h, "imported-ok").await;
    chase_for(&h, 90).await;
    let completed = h.outcome_events("Image Import Completed");
    assert_eq!(completed.len(), 1, "{completed:?}");
    assert_eq!(completed[0]["image"], json!("imported-ok"));
    assert!(h.outcome_events("Image Import Failed").is_empty());
}

#[tokio::test]
async fn a_failed_import_is_reported_with_the_image_errors() {
    let h = Harness::start(&estate_with("import_fail_rate: 1.0"), POLICY, 12).await;
    imported_by_a_person(&h, "imported-bad").await;
    chase_for(&h, 90).await;
    let failed = h.outcome_events("Image Import Failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0]["errors"][0].as_str().unwrap().starts_with("VALIDATION_ERROR"), "{failed:?}");
    assert!(h.outcome_events("Image Import Completed").is_empty());
}

#[tokio::test]
async fn dry_run_creates_no_task_and_keeps_no_job() {
    let policy = POLICY.replace("version: 1\n", "version: 1\ndefaults: { dry_run: true }\n");
    let h = Harness::start(ESTATE, &policy, 13).await;
    assert_eq!(h.deliver_to_exports(request("req-dry")).await.unwrap().status, Status::DryRun);
    chase_for(&h, 30).await;
    assert_eq!(creates(&h), 0);
    assert!(h.deps.ledger.get_work_item::<export_chaser::decide::Job>("EXPORT", "req-dry").await.unwrap().is_none());
    let audit = h.deps.ledger.audit_by_day(h.local.simulator.now().date_naive()).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|r| r.action == "CreateExportImageTask"
                && r.outcome == autopilot_shared::ledger::audit::Outcome::DryRun)
    );
}

#[tokio::test]
async fn a_tick_that_lists_the_task_where_the_job_last_saw_it_writes_nothing() {
    let h = Harness::start(ESTATE, POLICY, 12).await;
    h.deliver_to_exports(request("req-quiet")).await.unwrap();
    let ledger = h.local.ledger();
    let version = async || {
        let job = ledger.get_work_item::<export_chaser::decide::Job>(export_chaser::act::KIND, "req-quiet").await;
        job.unwrap().expect("the job exists").version
    };
    h.local.simulator.advance(Duration::minutes(5));
    h.export_tick().await;
    let seen = version().await;
    // Still EXPORTING at every tick for the next 30 minutes: looked at every tick, written never.
    for _ in 0..6 {
        h.local.simulator.advance(Duration::minutes(5));
        let report = h.export_tick().await;
        assert_eq!(report.actions.len(), 1, "{report:?}");
        assert_eq!(report.actions[0].result, ActionResult::Unchanged, "{report:?}");
    }
    assert_eq!(version().await, seen, "no write while the task stays where it was");
    // The task completes: that is written, and announced once.
    chase_for(&h, 90).await;
    assert_eq!(h.outcome_events("Export Completed").len(), 1);
    assert!(version().await > seen);
}

/// `CreateExportImageTask` failing every time after the SDK's own retries (the service unavailable): the job
/// creates again after a doubling backoff and fails after its `maxAttempts`, with one `Export Failed`; meanwhile the
/// tick goes on chasing everything else (it stopped at the failing job, every tick, for ever).
#[tokio::test]
async fn a_task_that_cannot_be_created_fails_its_job_after_max_attempts_and_blocks_nothing_else() {
    let estate = ESTATE.replace("faults:\n", "faults:\n  error_rate: { CreateExportImageTask: 1.0 }\n");
    let h = Harness::start(&estate, POLICY, 12).await;
    h.deliver_to_exports(request("req-unavailable")).await.expect("the request is taken; creating is retried");
    imported_by_a_person(&h, "imported-meanwhile").await;
    chase_for(&h, 6 * 60).await;
    let failed = h.outcome_events("Export Failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    // the request asks for at most 2 attempts
    assert!(failed[0]["reason"].as_str().unwrap().contains("CreateExportImageTask failed 2 times"), "{failed:?}");
    // two tries (each with the SDK's own retries, at one instant), not one every tick
    let tries: std::collections::BTreeSet<_> =
        h.local.simulator.calls().iter().filter(|c| c.operation == "CreateExportImageTask").map(|c| c.at).collect();
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert_eq!(h.outcome_events("Image Import Completed").len(), 1, "the import was chased all along");
}

#[tokio::test]
async fn an_outcome_that_could_not_be_announced_is_announced_at_the_next_tick_before_the_job_closes() {
    // GIVEN an export and an import in flight
    let h = Harness::start(ESTATE, POLICY, 14).await;
    h.deliver_to_exports(request("req-quiet")).await.unwrap();
    imported_by_a_person(&h, "imported-quiet").await;
    // AND EventBridge failing while they finish
    h.fail("PutEvents", 1.0);
    chase_for(&h, 120).await;
    // THEN nothing was announced, and neither job was closed without its announcement
    assert!(h.outcome_events("Export Completed").is_empty() && h.outcome_events("Image Import Completed").is_empty());
    let open = h.deps.ledger.open_work_items::<serde_json::Value>("EXPORT").await.unwrap();
    assert_eq!(open.len(), 1, "the export job stays open: {open:?}");
    // WHEN EventBridge recovers
    h.fail("PutEvents", 0.0);
    chase_for(&h, 10).await;
    // THEN each outcome is announced once and the jobs close
    assert_eq!(h.outcome_events("Export Completed").len(), 1);
    assert_eq!(h.outcome_events("Image Import Completed").len(), 1);
    assert!(h.deps.ledger.open_work_items::<serde_json::Value>("EXPORT").await.unwrap().is_empty());
    assert!(h.deps.ledger.open_work_items::<serde_json::Value>("IMPORT").await.unwrap().is_empty());
}

#[tokio::test]
async fn an_image_imported_again_under_the_same_name_is_chased_again() {
    // GIVEN an import that failed and was reported
    let h = Harness::start(&estate_with("import_fail_rate: 1.0"), POLICY, 15).await;
    imported_by_a_person(&h, "imported-twice").await;
    chase_for(&h, 90).await;
    assert_eq!(h.outcome_events("Image Import Failed").len(), 1);
    // WHEN a person deletes the failed image and imports it again, under the same name
    h.local.simulator.with_world_mut(|w| {
        w.images.remove("imported-twice");
        w.faults.exports.import_fail_rate = 0.0;
    });
    h.local.simulator.advance(Duration::minutes(30));
    imported_by_a_person(&h, "imported-twice").await; // THEN it is adopted (and a redelivery is not)
    chase_for(&h, 90).await;
    // AND chased to its own end, announced once
    assert_eq!(h.outcome_events("Image Import Completed").len(), 1);
    assert_eq!(h.outcome_events("Image Import Failed").len(), 1);
}

#[tokio::test]
async fn imports_are_chased_while_export_tasks_cannot_be_listed() {
    // GIVEN ListExportImageTasks failing throughout (a region or role without it) and a person's import
    let h = Harness::start(&format!("{ESTATE}  error_rate: {{ ListExportImageTasks: 1.0 }}\n"), POLICY, 16).await;
    imported_by_a_person(&h, "imported-anyway").await;
    // WHEN the export-chaser ticks for 100 minutes (every 20: each failed listing costs the SDK's retries)
    for _ in 0..5 {
        h.local.simulator.advance(Duration::minutes(20));
        let tick = autopilot_sim::tick_event("euc-autopilot-export-chaser", h.local.simulator.now());
        // THEN each tick still fails, so that the missing listing is seen …
        let failed = h.deliver_to_exports(tick).await.unwrap_err();
        assert!(failed.message.contains("observing export image tasks failed"), "{failed}");
    }
    // … AND the import was chased to its end all the same
    assert_eq!(h.outcome_events("Image Import Completed").len(), 1);
}

#[tokio::test]
async fn an_export_of_an_image_still_being_made_waits_for_it() {
    // GIVEN an image still PENDING (CreateImage on a builder, the export asked for at once)
    let h = Harness::start(&ESTATE.replace("state: AVAILABLE", "state: PENDING"), POLICY, 17).await;
    // WHEN the export is requested
    h.deliver_to_exports(request("req-early")).await.unwrap();
    // THEN the refused creation is waited out, not a failed export
    assert!(h.outcome_events("Export Failed").is_empty(), "{:?}", h.outcome_events("Export Failed"));
    // AND once the image is AVAILABLE the task is created and the export completes
    h.local.simulator.with_world_mut(|w| {
        if let Some(image) = w.images.get_mut("golden-2026-11") {
            image.state = "AVAILABLE".into();
        }
    });
    chase_for(&h, 180).await;
    assert_eq!(creates(&h), 1);
    assert_eq!(h.outcome_events("Export Completed").len(), 1, "{:?}", h.outcome_events("Export Failed"));
}

#[tokio::test]
async fn a_throttled_creation_is_deferred_not_failed_and_made_once_the_throttling_ends() {
    // GIVEN CreateExportImageTask throttled after its first call (a burst of exports in one account)
    let h = Harness::start(ESTATE, POLICY, 18).await;
    h.local.simulator.with_world_mut(|w| {
        w.faults.throttle_per_second.insert("CreateExportImageTask".into(), 0.0);
    });
    h.deliver_to_exports(request("req-first")).await.unwrap();
    // WHEN a second export is requested while the throttling lasts
    let mut second = request("req-second");
    second["detail"]["amiName"] = json!("golden-2026-11-second-ami");
    h.deliver_to_exports(second).await.unwrap();
    // THEN its attempt is recorded as deferred (throttled), not as a failure, and nothing failed
    let audit = h.deps.ledger.audit_by_day(h.local.simulator.now().date_naive()).await.unwrap();
    let creations: Vec<_> = audit.iter().filter(|r| r.action == "CreateExportImageTask").collect();
    assert!(creations.iter().all(|r| r.outcome != AuditOutcome::Failed), "{creations:#?}");
    let throttled = |r: &&autopilot_shared::ledger::audit::AuditRecord| {
        r.outcome == AuditOutcome::Deferred && r.details["error"].as_str().is_some_and(|e| e.starts_with("throttled"))
    };
    assert!(creations.iter().any(throttled), "{creations:#?}");
    // AND once the throttling ends, the second task is created and both exports complete
    h.local.simulator.with_world_mut(|w| {
        w.faults.throttle_per_second.clear();
    });
    chase_for(&h, 300).await;
    assert_eq!(creates(&h), 2);
    assert_eq!(h.outcome_events("Export Completed").len(), 2);
    assert!(h.outcome_events("Export Failed").is_empty());
}

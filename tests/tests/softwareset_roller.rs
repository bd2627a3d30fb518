//! softwareset-roller (in progress): its observe step through the real Thin Client SDK client against the
//! simulator, and the gate computed from what it observes.

use autopilot_shared::ledger::audit::Outcome as AuditOutcome;
use autopilot_shared::ledger::state::{WorkItemListing, WorkItemWrite};
use autopilot_shared::report::Status;
use autopilot_tests::Harness;
use softwareset_roller::gate::{Verdict, evaluate, figures, needs_details, summary_figures};
use softwareset_roller::observe::{device_details, device_summaries, environments, software_sets};

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
    let (ledger, now, region) = (&h.deps.ledger, h.local.simulator.now(), autopilot_sim::LOCAL_REGION);
    let (envs, calls) = environments(&h.deps.aws, ledger, now, region).await.unwrap();
    assert_eq!(envs.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["envbroad0001", "envcanary01"]);
    assert_eq!(calls, 3, "one list page and one tag look-up per environment");
    let (cached, calls) = environments(&h.deps.aws, ledger, now, region).await.unwrap();
    assert_eq!((cached, calls), (envs.clone(), 1), "then the tags come from the ledger's cache");
    let canary = envs.iter().find(|e| e.id == "envcanary01").unwrap();
    assert_eq!(canary.tags.get("autopilot/ring").map(String::as_str), Some("canary"));
    assert_eq!((canary.update_mode.as_str(), canary.desired_software_set_id.as_deref()), ("USE_DESIRED", Some("100")));
    assert_eq!(envs.iter().find(|e| e.id == "envbroad0001").unwrap().update_mode, "USE_LATEST");

    let (sets, _) = software_sets(&h.deps.aws).await.unwrap();
    assert_eq!(sets.len(), 2);
    assert!(sets.iter().find(|s| s.id == "100").unwrap().supported_until.is_some());

    // thirteen hours later the silent device's posture is stale (older than reporting_stale_after: 12h)
    h.local.simulator.advance(chrono::Duration::hours(13));
    // the ring's devices as ListDevices summarises them: status, set and posture, no update or compliance status
    let ring = ["envcanary01".to_owned()].into_iter().collect();
    let (summaries, calls) = device_summaries(&h.deps.aws, &ring).await.unwrap();
    assert_eq!((summaries.len(), calls), (5, 1));
    assert!(summaries.iter().all(|d| d.environment_id == "envcanary01" && d.update_status.is_none()));

    // the gate from the summaries: 4 of 5 report; none runs 101 yet, so the details cannot make it pass
    let gates = h.deps.ledger.current_policy().await.unwrap().unwrap().policy.rollouts.unwrap().rings[0].gates.clone();
    let now = h.local.simulator.now();
    let counted = summary_figures(&summaries, "101", &gates, now);
    assert_eq!((counted.active, counted.reporting, counted.up_to_date), (5, 4, 0));
    assert!(!needs_details(&counted, &gates, now, now), "no device read one by one while none can pass");
    let Verdict::Waiting { reason } = evaluate(&counted, &gates, now, now) else { panic!("waits") };
    assert!(reason.contains("0 of 4 reporting devices run the target set"), "{reason}");
    assert!(needs_details(&counted, &gates, now - gates.within, now), "at the deadline the details count");

    // read one by one, the same ring has its update and compliance status
    let devices = device_details(&h.deps.aws, &summaries).await.unwrap();
    assert_eq!(devices.len(), 5);
    assert!(devices.iter().all(|d| d.environment_id == "envcanary01" && d.update_status.is_some()));
    let f = figures(&devices, "101", &gates, now);
    assert_eq!((f.active, f.reporting, f.up_to_date), (5, 4, 0));
    assert!(matches!(evaluate(&f, &gates, now, now), Verdict::Waiting { .. }));
    // on the set they run, the summaries say enough do: then the devices are read
    let on_current = summary_figures(&summaries, "100", &gates, now);
    assert!(needs_details(&on_current, &gates, now, now), "{on_current:?}");
}

/// Three rings, daily maintenance window 01:00–03:00 UTC; set 101 is newer than the 100 everything runs.
const RINGS_ESTATE: &str = r#"
start: 2026-11-23T09:00:00Z
environments:
  - { id: envcanary01, name: canary, desired_software_set_id: "100", maintenance_window: { days: [MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY], start: "01:00", end: "03:00" }, tags: { ring: canary } }
  - { id: envearly001, name: early, desired_software_set_id: "100", maintenance_window: { days: [MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY], start: "01:00", end: "03:00" }, tags: { ring: early } }
  - { id: envbroad001, name: broad, desired_software_set_id: "100", maintenance_window: { days: [MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY], start: "01:00", end: "03:00" }, tags: { ring: broad } }
  - { id: envlatest01, name: kiosk, desired_software_set_id: "100", software_set_update_mode: USE_LATEST, tags: { ring: broad } }
software_sets:
  - { id: "100", version: "2026.10.1", released_at: 2026-10-06T00:00:00Z, supported_until: 2027-03-31T00:00:00Z }
  - { id: "101", version: "2026.11.1", released_at: 2026-11-17T00:00:00Z, supported_until: 2027-06-30T00:00:00Z, validation_status: NOT_VALIDATED }
devices:
  - { environment: envcanary01, count: 4, current_software_set_id: "100" }
  - { environment: envearly001, count: 4, current_software_set_id: "100" }
  - { environment: envbroad001, count: 6, current_software_set_id: "100" }
"#;

const RINGS_POLICY: &str = r#"
version: 1
rollouts:
  require_approval: true
  bake: 4h
  gates: { min_up_to_date: 0.75, within: 48h, max_not_compliant: 0.25, max_stuck_in_progress: 0.25, min_reporting_devices: 3, reporting_stale_after: 6h }
  rings:
    - { name: canary, select: { tag: { ring: canary } } }
    - { name: early, select: { tag: { ring: early } } }
    - { name: broad, select: { tag: { ring: broad } } }
"#;

fn command(kind: &str, id: &str, detail: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": id, "detail-type": kind, "source": "euc.autopilot", "account": "123456789012",
        "time": "2026-11-23T09:00:00Z", "region": "eu-central-1", "resources": [], "detail": detail
    })
}

async fn roll_for(h: &Harness, hours: i64) {
    for _ in 0..(hours * 2) {
        h.local.simulator.advance(chrono::Duration::minutes(30));
        h.roller_tick().await;
    }
}

fn update_environment_calls(h: &Harness) -> Vec<(chrono::DateTime<chrono::Utc>, String)> {
    h.mutations()
        .into_iter()
        .filter(|c| c.operation == "UpdateEnvironment" && c.ok())
        .map(|c| (c.at, c.resource.unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn three_rings_roll_to_completion_in_maintenance_windows_with_bake_times() {
    let h = Harness::start(RINGS_ESTATE, RINGS_POLICY, 2).await;
    // approval is required: the tick only announces the new set
    h.roller_tick().await;
    assert_eq!(h.outcome_events("Software Set Available").len(), 1);
    assert!(update_environment_calls(&h).is_empty());
    let request = command("Rollout Requested", "req-101", serde_json::json!({ "softwareSetId": "101" }));
    assert_eq!(h.deliver_to_roller(request.clone()).await.unwrap().status, Status::Requested);
    assert_eq!(h.deliver_to_roller(request).await.unwrap().status, Status::Duplicate);
    roll_for(&h, 4 * 24).await;
    let completed = h.outcome_events("Rollout Completed");
    assert_eq!(completed.len(), 1, "{:?}", h.outcome_events("Rollout Halted"));
    // one UpdateEnvironment per ring environment, each ring after the previous one baked; USE_LATEST untouched
    let calls = update_environment_calls(&h);
    let envs: Vec<&str> = calls.iter().map(|(_, e)| e.as_str()).collect();
    assert_eq!(envs, ["envcanary01", "envearly001", "envbroad001"]);
    let day =
        |d: i64, hour: u32| chrono::Utc.with_ymd_and_hms(2026, 11, 23, hour, 0, 0).unwrap() + chrono::Duration::days(d);
    use chrono::TimeZone;
    // canary devices update in Tuesday's window; bake 4 h → early applied Tuesday morning, broad Wednesday, done Thursday
    assert!(calls[1].0 >= day(1, 5) && calls[1].0 < day(1, 12), "{calls:?}");
    assert!(calls[2].0 >= day(2, 5) && calls[2].0 < day(2, 12), "{calls:?}");
    assert_eq!(
        h.mutations().iter().filter(|c| c.operation == "UpdateSoftwareSet" && c.ok()).count(),
        1,
        "validated once"
    );
    let advanced = h.outcome_events("Rollout Ring Advanced");
    assert_eq!(advanced.len(), 2);
    // each with the figures of the ring that passed, not of the one just applied
    assert_eq!(advanced[0]["judgedRing"], "canary");
    assert_eq!(advanced[0]["ring"], "early");
    assert!(advanced.iter().all(|e| e["figures"]["up_to_date"].as_u64() >= Some(3)), "{advanced:?}");
    let kiosk = h.local.simulator.with_world(|w| w.environments["envlatest01"].desired_software_set_id.clone());
    assert_eq!(kiosk.as_deref(), Some("100"));
}

#[tokio::test]
async fn devices_that_never_update_halt_the_rollout_and_auto_rollback_restores_the_previous_set() {
    let estate = RINGS_ESTATE.replace(
        "{ environment: envcanary01, count: 4, current_software_set_id: \"100\" }",
        "{ environment: envcanary01, count: 4, current_software_set_id: \"100\", never_update: 3 }",
    );
    let policy = RINGS_POLICY.replace("require_approval: true", "require_approval: true\n  auto_rollback: true");
    let h = Harness::start(&estate, &policy, 3).await;
    h.deliver_to_roller(command("Rollout Requested", "req-rb", serde_json::json!({ "softwareSetId": "101" })))
        .await
        .unwrap();
    // the canary's window opens on Tuesday 01:00; the gate's 48 hours run from then
    roll_for(&h, 60).await;
    assert!(h.outcome_events("Rollout Rolled Back").is_empty(), "not before the deadline (Thursday 01:00)");
    roll_for(&h, 12).await;
    assert_eq!(h.outcome_events("Rollout Rolled Back").len(), 1);
    let canary = h.local.simulator.with_world(|w| w.environments["envcanary01"].desired_software_set_id.clone());
    assert_eq!(canary.as_deref(), Some("100"), "restored");
    assert!(update_environment_calls(&h).iter().all(|(_, e)| e == "envcanary01"), "no other ring touched");
    // a second rollout may start now that this one is final
    let again = h
        .deliver_to_roller(command("Rollout Requested", "req-again", serde_json::json!({ "softwareSetId": "101" })))
        .await;
    assert!(again.is_ok(), "{again:?}");
}

#[tokio::test]
async fn a_second_rollout_on_the_same_environments_is_refused_and_pause_resume_abort_work() {
    let h = Harness::start(RINGS_ESTATE, RINGS_POLICY, 4).await;
    h.deliver_to_roller(command("Rollout Requested", "req-1", serde_json::json!({ "softwareSetId": "101" })))
        .await
        .unwrap();
    // another set on the same environments is refused
    let refused = h
        .deliver_to_roller(command("Rollout Requested", "req-2", serde_json::json!({ "softwareSetId": "100" })))
        .await
        .unwrap_err();
    assert!(refused.message.contains("one active rollout per environment"), "{}", refused.message);
    assert_eq!(refused.class.as_str(), "NonRetryable");
    // the same set again is answered by the rollout that covers it, and commands addressed to it reach that one
    let covered = h
        .deliver_to_roller(command("Rollout Requested", "req-3", serde_json::json!({ "softwareSetId": "101" })))
        .await
        .unwrap();
    assert_eq!(covered.status, Status::AlreadyRolling);
    // paused (through the covered request's id): nothing moves through the canary's update night
    let control = |kind: &str, id: &str| command(kind, id, serde_json::json!({ "rolloutId": "req-1" }));
    let via_alias = command("Rollout Paused", "p1", serde_json::json!({ "rolloutId": "req-3" }));
    assert_eq!(h.deliver_to_roller(via_alias).await.unwrap().status, Status::Paused);
    roll_for(&h, 30).await;
    assert_eq!(update_environment_calls(&h).len(), 1, "only the canary, applied before the pause");
    assert_eq!(h.deliver_to_roller(control("Rollout Resumed", "r1")).await.unwrap().status, Status::Resumed);
    roll_for(&h, 2).await;
    assert_eq!(h.deliver_to_roller(control("Rollout Aborted", "a1")).await.unwrap().status, Status::Aborted);
    let calls = update_environment_calls(&h).len();
    roll_for(&h, 48).await;
    assert_eq!(update_environment_calls(&h).len(), calls, "an aborted rollout does nothing more");
    assert_eq!(h.outcome_events("Rollout Abort Confirmed").len(), 1);
    let unknown =
        h.deliver_to_roller(command("Rollout Paused", "p2", serde_json::json!({ "rolloutId": "nope" }))).await;
    assert!(unknown.unwrap_err().message.contains("no rollout nope"));
}

#[tokio::test]
async fn a_set_past_its_support_is_never_applied() {
    let estate = RINGS_ESTATE.replace("supported_until: 2027-06-30T00:00:00Z", "supported_until: 2026-11-20T00:00:00Z");
    let h = Harness::start(&estate, RINGS_POLICY, 5).await;
    let refused = h
        .deliver_to_roller(command("Rollout Requested", "req-old", serde_json::json!({ "softwareSetId": "101" })))
        .await
        .unwrap_err();
    assert!(refused.message.contains("past its end of support"), "{}", refused.message);
    roll_for(&h, 2).await;
    assert!(update_environment_calls(&h).is_empty());
    assert!(h.outcome_events("Software Set Available").is_empty(), "an unsupported set is no candidate");
}

#[tokio::test]
async fn too_few_reporting_devices_never_advance_and_halt_at_the_deadline() {
    let estate = RINGS_ESTATE.replace(
        "{ environment: envcanary01, count: 4, current_software_set_id: \"100\" }",
        "{ environment: envcanary01, count: 4, current_software_set_id: \"100\", not_reporting: 3 }",
    );
    let h = Harness::start(&estate, RINGS_POLICY, 6).await;
    h.deliver_to_roller(command("Rollout Requested", "req-quiet", serde_json::json!({ "softwareSetId": "101" })))
        .await
        .unwrap();
    roll_for(&h, 30).await;
    assert!(h.outcome_events("Rollout Ring Updated").is_empty(), "one reporting device of the 3 needed: no bake");
    assert_eq!(update_environment_calls(&h).len(), 1, "no next ring");
    // the deadline: 48 hours after the canary's window opened (Tuesday 01:00)
    roll_for(&h, 36).await;
    let halted = h.outcome_events("Rollout Halted");
    assert_eq!(halted.len(), 1);
    assert!(halted[0]["reason"].as_str().unwrap().contains("reporting"), "{halted:?}");
}

#[tokio::test]
async fn a_crash_after_applying_a_ring_but_before_saving_neither_reapplies_nor_skips_it() {
    let h = Harness::start(RINGS_ESTATE, RINGS_POLICY, 7).await;
    h.deliver_to_roller(command("Rollout Requested", "req-crash", serde_json::json!({ "softwareSetId": "101" })))
        .await
        .unwrap();
    let ledger = &h.deps.ledger;
    let mut crashed = false;
    for _ in 0..(4 * 48) {
        h.local.simulator.advance(chrono::Duration::minutes(30));
        let before = ledger
            .get_work_item::<softwareset_roller::machine::Rollout>("ROLLOUT", "req-crash")
            .await
            .unwrap()
            .unwrap();
        let applied = update_environment_calls(&h).len();
        h.roller_tick().await;
        if !crashed && update_environment_calls(&h).len() == 2 && applied == 1 {
            // the early ring was just applied: lose the rollout's save, as if the function died right after the call
            let now = ledger
                .get_work_item::<softwareset_roller::machine::Rollout>("ROLLOUT", "req-crash")
                .await
                .unwrap()
                .unwrap();
            let when = h.local.simulator.now();
            ledger
                .put_work_item(
                    WorkItemWrite {
                        kind: "ROLLOUT",
                        id: "req-crash",
                        state: &before.state,
                        expected: Some(now.version),
                        listing: WorkItemListing::Open,
                    },
                    None,
                    when,
                )
                .await
                .unwrap();
            crashed = true;
        }
    }
    assert!(crashed, "the crash window was reached");
    let envs: Vec<String> = update_environment_calls(&h).into_iter().map(|(_, e)| e).collect();
    assert_eq!(envs, ["envcanary01", "envearly001", "envbroad001"], "each ring applied once, none skipped");
    assert_eq!(h.outcome_events("Rollout Ring Advanced").len(), 2, "announced once per transition");
    assert_eq!(h.outcome_events("Rollout Completed").len(), 1);
}

#[tokio::test]
async fn without_approval_a_new_set_is_announced_once_and_rolled_out_automatically() {
    let policy = RINGS_POLICY.replace("require_approval: true", "require_approval: false");
    let h = Harness::start(RINGS_ESTATE, &policy, 8).await;
    h.roller_tick().await;
    roll_for(&h, 4 * 24).await;
    assert_eq!(h.outcome_events("Software Set Available").len(), 1, "announced once, not once per idempotency window");
    assert_eq!(h.outcome_events("Rollout Started").len(), 1);
    assert!(h.outcome_events("Rollout Rolled Back").is_empty() && h.outcome_events("Rollout Halted").is_empty());
    assert_eq!(h.outcome_events("Rollout Completed").len(), 1);
}

#[tokio::test]
async fn ending_support_is_announced_once_per_environment_and_dry_run_starts_nothing() {
    let estate = RINGS_ESTATE.replace("supported_until: 2027-03-31T00:00:00Z", "supported_until: 2026-12-10T00:00:00Z");
    let policy = RINGS_POLICY.replace("version: 1\n", "version: 1\ndefaults: { dry_run: true }\n");
    let h = Harness::start(&estate, &policy, 9).await;
    roll_for(&h, 48).await;
    let ending = h.outcome_events("Software Set Support Ending");
    let mut environments: Vec<&str> = ending.iter().map(|e| e["environment"].as_str().unwrap()).collect();
    environments.sort_unstable();
    assert_eq!(environments, ["envbroad001", "envcanary01", "envearly001", "envlatest01"], "once each over two days");
    // dry-run: the request is audited as a would-start; no rollout, no environment changed
    let report = h
        .deliver_to_roller(command("Rollout Requested", "req-dry", serde_json::json!({ "softwareSetId": "101" })))
        .await
        .unwrap();
    assert_eq!(report.status, Status::DryRun);
    roll_for(&h, 24).await;
    assert!(update_environment_calls(&h).is_empty());
    assert!(h.outcome_events("Rollout Started").is_empty());
    // a would-start is recorded once per rollout, however many ticks and deliveries see it
    let mut would_start = Vec::new();
    for day in 23..=26 {
        let date = chrono::NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
        for record in h.deps.ledger.audit_by_day(date).await.unwrap() {
            if record.action == "Rollout Requested" && record.outcome == AuditOutcome::DryRun {
                would_start.push(record);
            }
        }
    }
    let per_rollout: std::collections::BTreeSet<&str> = would_start.iter().map(|r| r.resource.as_str()).collect();
    assert!(!would_start.is_empty());
    assert_eq!(per_rollout.len(), would_start.len(), "one would-start per rollout: {would_start:#?}");
}

#[tokio::test]
async fn environments_tagged_skip_or_held_are_left_out_and_every_environment_set_has_its_own_audit_record() {
    // GIVEN two environments in each of canary and broad: one of canary tagged autopilot/skip, one of broad held
    let window = "maintenance_window: { days: [MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY], start: \"01:00\", end: \"03:00\" }";
    let estate = format!(
        r#"
start: 2026-11-23T09:00:00Z
environments:
  - {{ id: envcanary01, name: canary-a, desired_software_set_id: "100", {window}, tags: {{ ring: canary }} }}
  - {{ id: envcanary02, name: canary-b, desired_software_set_id: "100", {window}, tags: {{ ring: canary }} }}
  - {{ id: envcanskip1, name: canary-skip, desired_software_set_id: "100", {window}, tags: {{ ring: canary, autopilot/skip: "true" }} }}
  - {{ id: envearly001, name: early, desired_software_set_id: "100", {window}, tags: {{ ring: early }} }}
  - {{ id: envbroad001, name: broad-a, desired_software_set_id: "100", {window}, tags: {{ ring: broad }} }}
  - {{ id: envbroad002, name: broad-b, desired_software_set_id: "100", {window}, tags: {{ ring: broad }} }}
  - {{ id: envbroadhld, name: broad-held, desired_software_set_id: "100", {window}, tags: {{ ring: broad, autopilot/override: hold, autopilot/override-until: "2027-01-01T00:00:00Z" }} }}
software_sets:
  - {{ id: "100", version: "2026.10.1", released_at: 2026-10-06T00:00:00Z, supported_until: 2027-03-31T00:00:00Z }}
  - {{ id: "101", version: "2026.11.1", released_at: 2026-11-17T00:00:00Z, supported_until: 2027-06-30T00:00:00Z }}
devices:
  - {{ environment: envcanary01, count: 4, current_software_set_id: "100" }}
  - {{ environment: envcanary02, count: 4, current_software_set_id: "100" }}
  - {{ environment: envcanskip1, count: 4, current_software_set_id: "100" }}
  - {{ environment: envearly001, count: 4, current_software_set_id: "100" }}
  - {{ environment: envbroad001, count: 3, current_software_set_id: "100" }}
  - {{ environment: envbroad002, count: 3, current_software_set_id: "100" }}
  - {{ environment: envbroadhld, count: 3, current_software_set_id: "100" }}
"#
    );
    let h = Harness::start(&estate, RINGS_POLICY, 11).await;
    // WHEN the set is rolled to completion
    h.deliver_to_roller(command("Rollout Requested", "req-tags", serde_json::json!({ "softwareSetId": "101" })))
        .await
        .unwrap();
    roll_for(&h, 4 * 24).await;
    assert_eq!(h.outcome_events("Rollout Completed").len(), 1, "{:?}", h.outcome_events("Rollout Halted"));
    // THEN the tagged environments were never touched (and their devices did not hold up a gate)
    let mut set: Vec<String> = update_environment_calls(&h).into_iter().map(|(_, e)| e).collect();
    set.sort_unstable();
    assert_eq!(set, ["envbroad001", "envbroad002", "envcanary01", "envcanary02", "envearly001"]);
    // AND each environment set has its own record, each held one a record of why, once
    let mut records = Vec::new();
    for day in 23..=28 {
        let date = chrono::NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
        records.extend(h.deps.ledger.audit_by_day(date).await.unwrap());
    }
    let mut updated: Vec<&str> = records
        .iter()
        .filter(|r| r.action == "UpdateEnvironment" && r.outcome == AuditOutcome::Applied)
        .map(|r| r.resource.rsplit('#').next().unwrap_or_default())
        .collect();
    updated.sort_unstable();
    assert_eq!(updated, set, "one UpdateEnvironment record per environment, filed under it");
    let held: Vec<(&str, &str)> = records
        .iter()
        .filter(|r| r.action == "Hold" && r.outcome == AuditOutcome::Skipped)
        .map(|r| (r.resource.rsplit('#').next().unwrap_or_default(), r.reason.as_str()))
        .collect();
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(held.iter().any(|(e, why)| *e == "envcanskip1" && why.starts_with("tagged autopilot/skip")), "{held:?}");
    assert!(held.iter().any(|(e, why)| *e == "envbroadhld" && why.contains("override holds it")), "{held:?}");
}

#[tokio::test]
async fn an_update_that_keeps_failing_halts_its_rollout_and_blocks_nothing_else() {
    // GIVEN every UpdateEnvironment answered with a 5xx
    let estate = format!("{RINGS_ESTATE}faults:\n  error_rate: {{ UpdateEnvironment: 1.0 }}\n");
    let h = Harness::start(&estate, RINGS_POLICY, 8).await;
    // WHEN a rollout is requested and the roller ticks
    let requested = h
        .deliver_to_roller(command("Rollout Requested", "req-fail", serde_json::json!({ "softwareSetId": "101" })))
        .await;
    assert!(requested.is_ok(), "the request is taken; its first step failed: {requested:?}");
    for _ in 0..4 {
        h.local.simulator.advance(chrono::Duration::minutes(30));
        h.roller_tick().await; // THEN no tick fails (each would have gone to the dead-letter queue)
    }
    // AND after three failed looks in a row the rollout halts, once, saying why
    let halted = h.outcome_events("Rollout Halted");
    assert_eq!(halted.len(), 1, "{halted:?}");
    let reason = halted[0]["reason"].as_str().unwrap();
    assert!(reason.contains("UpdateEnvironment failed") && reason.contains("3 times in a row"), "{reason}");
    // AND the failures are audited three times, not once a tick for ever
    let day = h.local.simulator.now().date_naive();
    let audit = h.deps.ledger.audit_by_day(day).await.unwrap();
    let failed = audit.iter().filter(|a| a.action == "UpdateEnvironment" && a.outcome == AuditOutcome::Failed).count();
    assert_eq!(failed, 3, "{audit:?}");
    // AND nothing is called after the halt
    let calls = h.mutations().iter().filter(|c| c.operation == "UpdateEnvironment").count();
    roll_for(&h, 2).await;
    assert_eq!(h.mutations().iter().filter(|c| c.operation == "UpdateEnvironment").count(), calls);
}

#[tokio::test]
async fn devices_that_cannot_be_read_halt_their_rollout_and_fail_no_tick() {
    // GIVEN every ListDevices answered with a 5xx (past the SDK's retries)
    let estate = format!("{RINGS_ESTATE}faults:\n  error_rate: {{ ListDevices: 1.0 }}\n");
    let h = Harness::start(&estate, RINGS_POLICY, 8).await;
    // WHEN a rollout is requested (its canary ring is set) and the roller ticks
    h.deliver_to_roller(command("Rollout Requested", "req-blind", serde_json::json!({ "softwareSetId": "101" })))
        .await
        .unwrap();
    for _ in 0..4 {
        h.local.simulator.advance(chrono::Duration::minutes(30));
        h.roller_tick().await; // THEN no tick fails: the ring's trouble is its rollout's, not the tick's
    }
    // AND after three looks in a row that could not read the devices, the rollout halts, once, saying why
    let halted = h.outcome_events("Rollout Halted");
    assert_eq!(halted.len(), 1, "{halted:?}");
    let reason = halted[0]["reason"].as_str().unwrap();
    assert!(reason.contains("observing devices failed") && reason.contains("3 times in a row"), "{reason}");
    // AND it neither rolled back (nothing was judged) nor touched the next ring
    assert!(h.outcome_events("Rollout Rolled Back").is_empty());
    let set: Vec<String> = update_environment_calls(&h).into_iter().map(|(_, e)| e).collect();
    assert!(set.iter().all(|e| e.starts_with("envcanary")), "{set:?}");
}

#[tokio::test]
async fn a_transition_eventbridge_did_not_take_is_announced_at_the_next_step() {
    // GIVEN EventBridge failing when a rollout starts
    let h = Harness::start(RINGS_ESTATE, RINGS_POLICY, 8).await;
    h.fail("PutEvents", 1.0);
    h.deliver_to_roller(command("Rollout Requested", "req-mute", serde_json::json!({ "softwareSetId": "101" })))
        .await
        .unwrap();
    h.local.simulator.advance(chrono::Duration::minutes(5));
    h.roller_tick().await;
    // THEN the rollout started (its canary ring was set) though nobody was told yet
    assert!(h.outcome_events("Rollout Started").is_empty());
    assert!(!update_environment_calls(&h).is_empty());
    // WHEN EventBridge recovers
    h.fail("PutEvents", 0.0);
    h.local.simulator.advance(chrono::Duration::minutes(5));
    h.roller_tick().await;
    h.local.simulator.advance(chrono::Duration::minutes(5));
    h.roller_tick().await;
    // THEN the start is announced, once
    assert_eq!(h.outcome_events("Rollout Started").len(), 1);
}

#[tokio::test]
async fn a_throttled_device_read_is_waited_out() {
    // GIVEN ListDevices throttled throughout
    let estate = format!("{RINGS_ESTATE}faults:\n  throttle_per_second: {{ ListDevices: 0.0 }}\n");
    let h = Harness::start(&estate, RINGS_POLICY, 8).await;
    h.deliver_to_roller(command("Rollout Requested", "req-slow", serde_json::json!({ "softwareSetId": "101" })))
        .await
        .unwrap();
    // WHEN the roller ticks for two hours
    for _ in 0..4 {
        h.local.simulator.advance(chrono::Duration::minutes(30));
        h.roller_tick().await; // THEN no tick fails
    }
    // AND the rollout waits: throttling is not a failure, so it is neither halted nor rolled back
    assert!(h.outcome_events("Rollout Halted").is_empty(), "{:?}", h.outcome_events("Rollout Halted"));
    assert!(h.outcome_events("Rollout Rolled Back").is_empty());
    assert_eq!(h.outcome_events("Rollout Started").len(), 1);
}

#[tokio::test]
async fn a_request_does_not_set_an_environment_already_on_the_target_again() {
    // GIVEN the canary environment already asked to run 101
    let estate = RINGS_ESTATE.replacen(
        "{ id: envcanary01, name: canary, desired_software_set_id: \"100\"",
        "{ id: envcanary01, name: canary, desired_software_set_id: \"101\"",
        1,
    );
    let h = Harness::start(&estate, RINGS_POLICY, 9).await;
    // WHEN a rollout of 101 is requested
    h.deliver_to_roller(command("Rollout Requested", "req-same", serde_json::json!({ "softwareSetId": "101" })))
        .await
        .unwrap();
    // THEN the canary ring is applying without an UpdateEnvironment for it
    assert!(update_environment_calls(&h).is_empty(), "{:?}", update_environment_calls(&h));
    assert_eq!(h.outcome_events("Rollout Started").len(), 1);
}

#[tokio::test]
async fn a_rollback_restores_what_the_ring_ran_when_it_was_applied_not_when_the_rollout_was_requested() {
    // GIVEN a rollout whose second ring's devices never update, with auto_rollback
    let estate = RINGS_ESTATE
        .replace(
            "{ environment: envearly001, count: 4, current_software_set_id: \"100\" }",
            "{ environment: envearly001, count: 4, current_software_set_id: \"100\", never_update: 4 }",
        )
        .replace(
            "software_sets:\n",
            "software_sets:\n  - { id: \"099\", version: \"2026.09.1\", released_at: 2026-09-01T00:00:00Z, supported_until: 2027-03-31T00:00:00Z }\n",
        );
    let policy = RINGS_POLICY.replace("require_approval: true", "require_approval: true\n  auto_rollback: true");
    let h = Harness::start(&estate, &policy, 12).await;
    h.deliver_to_roller(command("Rollout Requested", "req-moved", serde_json::json!({ "softwareSetId": "101" })))
        .await
        .unwrap();
    // WHEN a person moves the second ring's environment to another set before its ring is applied
    h.local.simulator.with_world_mut(|w| {
        if let Some(early) = w.environments.get_mut("envearly001") {
            early.desired_software_set_id = Some("099".into());
        }
    });
    roll_for(&h, 5 * 24).await;
    // THEN the ring that failed is rolled back to what it ran when the ring was applied (099), not to 100
    assert_eq!(h.outcome_events("Rollout Rolled Back").len(), 1, "{:?}", h.outcome_events("Rollout Halted"));
    let early = h.local.simulator.with_world(|w| w.environments["envearly001"].desired_software_set_id.clone());
    assert_eq!(early.as_deref(), Some("099"));
}

#[tokio::test]
async fn dry_run_switched_on_mid_rollout_holds_it_where_it_is_until_switched_off() {
    // GIVEN a rollout whose canary ring is applied
    let h = Harness::start(RINGS_ESTATE, RINGS_POLICY, 2).await;
    let request = command("Rollout Requested", "req-101", serde_json::json!({ "softwareSetId": "101" }));
    h.deliver_to_roller(request).await.unwrap();
    while update_environment_calls(&h).is_empty() {
        roll_for(&h, 1).await;
    }
    // WHEN an operator switches dry-run on for two days
    let dry = RINGS_POLICY.replace("version: 1\n", "version: 1\ndefaults: { dry_run: true }\n");
    h.deps.ledger.put_policy(&dry, h.local.simulator.now()).await.unwrap();
    roll_for(&h, 2 * 24).await;
    // THEN no further ring was applied or announced as such, and the rollout is neither completed nor halted
    assert_eq!(update_environment_calls(&h).len(), 1, "{:?}", update_environment_calls(&h));
    assert!(h.outcome_events("Rollout Ring Advanced").is_empty(), "{:?}", h.outcome_events("Rollout Ring Advanced"));
    assert!(h.outcome_events("Rollout Completed").is_empty() && h.outcome_events("Rollout Halted").is_empty());
    // AND once dry-run is off again, the rollout goes on from where it was and completes, each ring applied once
    h.deps.ledger.put_policy(RINGS_POLICY, h.local.simulator.now()).await.unwrap();
    roll_for(&h, 3 * 24).await;
    assert_eq!(h.outcome_events("Rollout Completed").len(), 1, "{:?}", h.outcome_events("Rollout Halted"));
    let envs: Vec<String> = update_environment_calls(&h).into_iter().map(|(_, e)| e).collect();
    assert_eq!(envs, ["envcanary01", "envearly001", "envbroad001"]);
}

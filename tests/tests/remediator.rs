//! remediator end to end: the real handler, through the real SDK clients, against the simulator (WorkSpaces
//! that fall ill on a virtual clock) and the embedded DynamoDB; every assertion reads the simulator's call
//! log, its WorkSpaces, its captured outcome events or the ledger. GIVEN / WHEN / THEN.

use autopilot_shared::ledger::audit::{AuditRecord, Outcome as AuditOutcome};
use autopilot_shared::report::{ActionResult, Status};
use autopilot_sim::{PERSON, cloudtrail_event};
use autopilot_tests::{CallRecord, Harness};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

/// Monday 2026-11-23 08:00 UTC.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).unwrap()
}

/// One WorkSpace line of an estate file.
fn ws(id: &str, directory: &str, extra: &str) -> String {
    format!("  - {{ id: {id}, user: u-{id}, directory_id: {directory}{extra} }}\n")
}

/// `count` healthy WorkSpaces in `directory`.
fn healthy(prefix: &str, directory: &str, count: usize) -> String {
    (0..count).map(|i| ws(&format!("{prefix}{i:04}"), directory, "")).collect()
}

fn estate(workspaces: &str, rest: &str) -> String {
    format!("start: {}\nworkspaces:\n{workspaces}{rest}", start().to_rfc3339())
}

/// A fault `after` minutes from the start, cured by `cure`.
fn fault(after: u32, cure: &str) -> String {
    format!(", faults: [{{ after_minutes: {after}, cure: {cure} }}]")
}

const POLICY: &str = r#"
version: 1
defaults: { dry_run: false }
remediation:
  reboot_after: 15m
  max_reboots: 2
  reboot_window: 24h
  cooldown: 30m
  budget: { max_actions_per_hour: 100 }
  circuit_breaker: { max_unhealthy_share: 0.3, min_population: 10 }
  selections:
    - { name: kiosks, select: { tag: { kind: kiosk } }, rebuild: true }
  alarms:
    dir-a-unhealthy: { directory: d-aaaaaaaaaa }
"#;

fn policy_with(replace: &str, with: &str) -> String {
    POLICY.replace(replace, with)
}

/// Ticks the remediator every `every` minutes for `minutes` minutes.
async fn run(h: &Harness, minutes: i64, every: i64) {
    let until = h.local.simulator.now() + Duration::minutes(minutes);
    while h.local.simulator.now() < until {
        h.remediator_tick().await;
        h.local.simulator.advance(Duration::minutes(every));
    }
}

fn calls(h: &Harness, operation: &str) -> Vec<CallRecord> {
    h.local.simulator.calls().into_iter().filter(|c| c.operation == operation).collect()
}

/// The WorkSpace ids a batch or single call named.
fn ids(call: &CallRecord) -> Vec<String> {
    call.resource.as_deref().unwrap_or_default().split(',').map(str::to_owned).collect()
}

fn state(h: &Harness, id: &str) -> String {
    h.local.simulator.with_world(|w| w.workspaces[id].state.clone())
}

async fn audit(h: &Harness, id: &str) -> Vec<AuditRecord> {
    h.deps.ledger.audit_by_resource(&format!("workspaces#123456789012#eu-central-1#workspace#{id}")).await.unwrap()
}

fn workspace_mutations(h: &Harness) -> Vec<CallRecord> {
    h.mutations().into_iter().filter(|c| c.service == "workspaces").collect()
}

/// A person's `Remediation Requested` event (id `id`) for `detail`, at the simulator's time.
fn remediation_requested(h: &Harness, id: &str, detail: serde_json::Value) -> serde_json::Value {
    json!({
        "version": "0", "id": id, "detail-type": "Remediation Requested", "source": "euc.autopilot",
        "account": "123456789012", "time": h.local.simulator.now().to_rfc3339(), "region": "eu-central-1",
        "resources": [], "detail": detail
    })
}

#[tokio::test]
async fn an_unhealthy_workspace_is_rebooted_once_after_reboot_after_and_recovers() {
    // GIVEN a WorkSpace that turns UNHEALTHY at 08:10 and again at 10:00 (a reboot cures it each time) among 20
    // healthy ones
    let twice = ", faults: [{ after_minutes: 10, cure: reboot }, { after_minutes: 120, cure: reboot }]";
    let h = Harness::start(
        &estate(&(ws("ws-sick00001", "d-aaaaaaaaaa", twice) + &healthy("ws-okay", "d-aaaaaaaaaa", 20)), ""),
        POLICY,
        1,
    )
    .await;
    // WHEN the remediator ticks every 5 minutes for 90 minutes
    run(&h, 90, 5).await;
    // THEN it was rebooted once, at the first tick 15 minutes after it was first seen UNHEALTHY (08:10 → 08:25)
    let reboots = calls(&h, "RebootWorkspaces");
    assert_eq!(reboots.len(), 1, "{reboots:?}");
    assert_eq!(reboots[0].at, start() + Duration::minutes(25));
    assert_eq!(ids(&reboots[0]), ["ws-sick00001"]);
    // AND it recovered, the episode is closed and the action was announced and audited once
    assert_eq!(state(&h, "ws-sick00001"), "AVAILABLE");
    let applied = h.outcome_events("Remediation Applied");
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0]["workspaceId"], "ws-sick00001");
    assert_eq!(applied[0]["action"], json!({ "kind": "reboot", "attempt": 1 }));
    let audit_records = audit(&h, "ws-sick00001").await;
    assert_eq!(audit_records.iter().filter(|r| r.outcome == AuditOutcome::Applied).count(), 1, "{audit_records:?}");
    let open = h.deps.ledger.open_work_items::<serde_json::Value>(remediator::act::KIND).await.unwrap();
    assert!(open.is_empty(), "{open:?}");
    // WHEN it falls ill again at 10:00 (a new episode in the closed one's place)
    run(&h, 90, 5).await;
    // THEN it is rebooted again 15 minutes later — the second reboot within the window (the new episode remembers
    // the first: `max_reboots` counts reboots, not episodes) — and recovers
    let reboots = calls(&h, "RebootWorkspaces");
    assert_eq!(
        reboots.iter().map(|c| c.at).collect::<Vec<_>>(),
        [start() + Duration::minutes(25), start() + Duration::minutes(135)]
    );
    assert_eq!(h.outcome_events("Remediation Applied")[1]["action"], json!({ "kind": "reboot", "attempt": 2 }));
    assert_eq!(state(&h, "ws-sick00001"), "AVAILABLE");
    assert!(h.outcome_events("Escalation").is_empty());
}

#[tokio::test]
async fn one_that_stays_unhealthy_is_rebooted_twice_then_rebuilt_only_where_allowed_else_escalated() {
    // GIVEN two WorkSpaces only a rebuild cures: a kiosk (rebuild allowed) and a personal desktop
    let workspaces = ws("ws-kiosk0001", "d-aaaaaaaaaa", &format!("{}, tags: {{ kind: kiosk }}", fault(5, "rebuild")))
        + &ws("ws-desk00001", "d-aaaaaaaaaa", &fault(5, "rebuild"))
        + &healthy("ws-okay", "d-aaaaaaaaaa", 20);
    let h = Harness::start(&estate(&workspaces, ""), POLICY, 2).await;
    // WHEN the remediator ticks every 5 minutes for 4 hours
    run(&h, 240, 5).await;
    // THEN each was rebooted twice, at least the cooldown apart
    let reboots_of = |id: &str| -> Vec<DateTime<Utc>> {
        calls(&h, "RebootWorkspaces").iter().filter(|c| ids(c).contains(&id.to_owned())).map(|c| c.at).collect()
    };
    for id in ["ws-kiosk0001", "ws-desk00001"] {
        let reboots = reboots_of(id);
        assert_eq!(reboots.len(), 2, "{id}: {reboots:?}");
        assert!(reboots[1] - reboots[0] >= Duration::minutes(30), "{reboots:?}");
    }
    // AND the kiosk was rebuilt once and is AVAILABLE again; the desktop was never rebuilt
    let rebuilds = calls(&h, "RebuildWorkspaces");
    assert_eq!(rebuilds.iter().map(ids).collect::<Vec<_>>(), [["ws-kiosk0001"]]);
    assert_eq!(state(&h, "ws-kiosk0001"), "AVAILABLE");
    assert_eq!(state(&h, "ws-desk00001"), "UNHEALTHY");
    // AND the desktop was escalated once, with the reason
    let escalations = h.outcome_events("Escalation");
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    assert_eq!(escalations[0]["name"], "ws-desk00001");
    assert_eq!(escalations[0]["cause"], "unremedied");
    assert!(escalations[0]["reason"].as_str().unwrap().contains("rebuild is not allowed"), "{escalations:?}");
}

#[tokio::test]
async fn sixty_unhealthy_workspaces_take_three_reboot_calls_and_partial_failures_are_retried() {
    // GIVEN 60 WorkSpaces that turn UNHEALTHY at 08:01 among 240 healthy ones, and 20% of reboot items failing
    let sick: String = (0..60).map(|i| ws(&format!("ws-sick{i:05}"), "d-aaaaaaaaaa", &fault(1, "reboot"))).collect();
    let h = Harness::start(
        &estate(
            &(sick + &healthy("ws-okay", "d-aaaaaaaaaa", 240)),
            "faults: { batch_failure_rate: { RebootWorkspaces: 0.2 } }\n",
        ),
        POLICY,
        3,
    )
    .await;
    // WHEN the remediator ticks every 5 minutes for 2 hours
    run(&h, 120, 5).await;
    // THEN the first reboot sweep (08:20) made exactly three calls: 25 + 25 + 10
    let reboots = calls(&h, "RebootWorkspaces");
    let first: Vec<usize> = reboots.iter().filter(|c| c.at == reboots[0].at).map(|c| ids(c).len()).collect();
    assert_eq!(first, [25, 25, 10]);
    // AND the items that failed were retried on later sweeps: every WorkSpace was rebooted exactly once, or — an
    // item that failed three times in a row — escalated to a person with no reboot made
    let escalated: Vec<String> =
        h.outcome_events("Escalation").iter().map(|e| e["name"].as_str().unwrap_or_default().to_owned()).collect();
    let (mut applied, mut failed) = (0, 0);
    for i in 0..60 {
        let id = format!("ws-sick{i:05}");
        let audit = audit(&h, &id).await;
        let outcomes: Vec<AuditOutcome> =
            audit.iter().filter(|r| r.action == "RebootWorkspaces").map(|r| r.outcome).collect();
        let count = |outcome: AuditOutcome| outcomes.iter().filter(|o| **o == outcome).count();
        failed += count(AuditOutcome::Failed);
        if count(AuditOutcome::Applied) == 1 {
            applied += 1;
            assert_eq!(state(&h, &id), "AVAILABLE", "{id}");
            assert!(!escalated.contains(&id), "{id} was rebooted and escalated");
        } else {
            assert_eq!((count(AuditOutcome::Applied), count(AuditOutcome::Failed)), (0, 3), "{id}: {outcomes:?}");
            assert!(escalated.contains(&id), "{id} failed three times and was not escalated: {escalated:?}");
        }
    }
    let named: usize = reboots.iter().map(|c| ids(c).len()).sum();
    assert!(failed > 0, "the fault injected no item failure");
    assert!(applied >= 55, "{applied} of 60 rebooted");
    assert_eq!(named, applied + failed, "every id sent was either applied or a recorded failure");
    assert_eq!(escalated.len(), 60 - applied, "{escalated:?}");
}

#[tokio::test]
async fn forty_percent_of_a_directory_unhealthy_is_an_outage_no_action_one_escalation() {
    // GIVEN 4 of 10 WorkSpaces UNHEALTHY at 08:05 for two hours (a directory outage: they recover by themselves)
    let sick: String = (0..4)
        .map(|i| {
            ws(&format!("ws-sick{i:05}"), "d-aaaaaaaaaa", ", faults: [{ after_minutes: 5, cure: self, minutes: 120 }]")
        })
        .collect();
    let h = Harness::start(&estate(&(sick + &healthy("ws-okay", "d-aaaaaaaaaa", 6)), ""), POLICY, 4).await;
    // WHEN the remediator ticks every 5 minutes for 3 hours
    run(&h, 180, 5).await;
    // THEN no WorkSpace was touched, one Escalation named the outage with its figures
    assert!(workspace_mutations(&h).is_empty(), "{:?}", workspace_mutations(&h));
    let escalations = h.outcome_events("Escalation");
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    assert_eq!(escalations[0]["cause"], "outage");
    assert_eq!(escalations[0]["resourceType"], "directory");
    assert_eq!(escalations[0]["details"]["unhealthy"], 4);
    // AND each WorkSpace's deferral was recorded once; after the outage all recovered and every episode closed
    for i in 0..4 {
        let audit = audit(&h, &format!("ws-sick{i:05}")).await;
        assert_eq!(audit.iter().filter(|r| r.outcome == AuditOutcome::Deferred).count(), 1, "{audit:?}");
    }
    assert!(h.deps.ledger.open_work_items::<serde_json::Value>(remediator::act::KIND).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_exhausted_budget_defers_the_rest_to_the_next_hour() {
    // GIVEN 5 WorkSpaces UNHEALTHY at 08:01 among 45 healthy ones, and a budget of 3 actions per hour
    let sick: String = (0..5).map(|i| ws(&format!("ws-sick{i:05}"), "d-aaaaaaaaaa", &fault(1, "reboot"))).collect();
    let h = Harness::start(
        &estate(&(sick + &healthy("ws-okay", "d-aaaaaaaaaa", 45)), ""),
        &policy_with("max_actions_per_hour: 100", "max_actions_per_hour: 3"),
        5,
    )
    .await;
    // WHEN the remediator ticks every 5 minutes for 90 minutes
    run(&h, 90, 5).await;
    // THEN 3 were rebooted in the 08:00 hour and the other 2 at the first sweep of the 09:00 hour
    let reboots = calls(&h, "RebootWorkspaces");
    let at: Vec<(DateTime<Utc>, usize)> = reboots.iter().map(|c| (c.at, ids(c).len())).collect();
    let nine = start() + Duration::hours(1);
    assert_eq!(at, [(start() + Duration::minutes(20), 3), (nine, 2)]);
    // AND the two were recorded as deferred once each, naming the budget
    let mut deferred = 0;
    for i in 0..5 {
        for record in audit(&h, &format!("ws-sick{i:05}")).await {
            if record.outcome == AuditOutcome::Deferred {
                assert!(record.reason.contains("waits for an hour with budget left"), "{}", record.reason);
                deferred += 1;
            }
        }
    }
    assert_eq!(deferred, 2);
}

#[tokio::test]
async fn an_impaired_workspace_is_escalated_once_and_never_rebooted() {
    // GIVEN an IMPAIRED WorkSpace whose user is still connected (IMPAIRED keeps the session; AWS reboots no
    // IMPAIRED WorkSpace)
    let h = Harness::start(
        &estate(
            &(ws("ws-conn00001", "d-aaaaaaaaaa", ", connected: true, faults: [{ after_minutes: 5, state: IMPAIRED }]")
                + &healthy("ws-okay", "d-aaaaaaaaaa", 20)),
            "",
        ),
        POLICY,
        6,
    )
    .await;
    // WHEN the remediator ticks for an hour
    run(&h, 60, 5).await;
    // THEN nothing was called on it (no refused reboot at every sweep), and a person was told once, with why
    assert!(workspace_mutations(&h).is_empty());
    let escalations = h.outcome_events("Escalation");
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    assert!(escalations[0]["reason"].as_str().unwrap().contains("no IMPAIRED WorkSpace"), "{escalations:?}");
    assert_eq!(state(&h, "ws-conn00001"), "IMPAIRED");
    // AND while a person has it, its tags and connection state are not read again at every sweep
    let reads = |h: &Harness| calls(h, "DescribeTags").len() + calls(h, "DescribeWorkspacesConnectionStatus").len();
    let before = reads(&h);
    run(&h, 60, 5).await;
    assert_eq!(reads(&h), before);
}

fn alarm(name: &str, value: &str, at: DateTime<Utc>) -> serde_json::Value {
    json!({
        "version": "0", "id": format!("alarm-{name}-{value}-{}", at.timestamp()), "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch", "account": "123456789012", "time": at.to_rfc3339(), "region": "eu-central-1",
        "resources": [format!("arn:aws:cloudwatch:eu-central-1:123456789012:alarm:{name}")],
        "detail": {
            "alarmName": name,
            "state": { "value": value, "reason": "Threshold Crossed", "timestamp": at.to_rfc3339() },
            "previousState": { "value": "OK", "reason": "", "timestamp": at.to_rfc3339() }
        }
    })
}

#[tokio::test]
async fn an_alarm_sweeps_only_its_scope_at_once() {
    // GIVEN an unhealthy WorkSpace in each of two directories, seen by the 08:05 tick
    let workspaces = ws("ws-sicka0001", "d-aaaaaaaaaa", &fault(1, "reboot"))
        + &ws("ws-sickb0001", "d-bbbbbbbbbb", &fault(1, "reboot"))
        + &healthy("ws-okaa", "d-aaaaaaaaaa", 20)
        + &healthy("ws-okab", "d-bbbbbbbbbb", 20);
    let h = Harness::start(&estate(&workspaces, ""), POLICY, 7).await;
    h.local.simulator.advance(Duration::minutes(5));
    h.remediator_tick().await;
    let before = h.local.simulator.calls().len();
    // WHEN, 17 minutes later (before the next tick), directory A's alarm goes into ALARM, and an OK and an
    // unmapped alarm arrive too
    h.local.simulator.advance(Duration::minutes(17));
    let now = h.local.simulator.now();
    let ignored = h.deliver_to_remediator(alarm("dir-a-unhealthy", "OK", now)).await.unwrap();
    assert_eq!(ignored.status, Status::Ignored);
    assert_eq!(h.deliver_to_remediator(alarm("some-other-alarm", "ALARM", now)).await.unwrap().status, Status::Ignored);
    let report = h.deliver_to_remediator(alarm("dir-a-unhealthy", "ALARM", now)).await.unwrap();
    assert_eq!(report.status, Status::Swept);
    // THEN only directory A was read and only its WorkSpace was rebooted, at once
    let swept: Vec<CallRecord> = h.local.simulator.calls().into_iter().skip(before).collect();
    let describes: Vec<&CallRecord> = swept.iter().filter(|c| c.operation == "DescribeWorkspaces").collect();
    assert!(!describes.is_empty());
    assert!(describes.iter().all(|c| c.parameters["DirectoryId"] == "d-aaaaaaaaaa"), "{describes:?}");
    assert!(swept.iter().all(|c| !matches!(c.operation.as_str(), "DescribeFleets" | "DescribeWorkspacesPools")));
    let reboots: Vec<Vec<String>> = swept.iter().filter(|c| c.operation == "RebootWorkspaces").map(ids).collect();
    assert_eq!(reboots, [["ws-sicka0001"]]);
    assert_eq!(state(&h, "ws-sickb0001"), "UNHEALTHY");
}

#[tokio::test]
async fn duplicate_events_make_one_action() {
    // GIVEN an unhealthy WorkSpace seen at 08:05
    let h = Harness::start(
        &estate(
            &(ws("ws-sick00001", "d-aaaaaaaaaa", &fault(1, "reboot")) + &healthy("ws-okay", "d-aaaaaaaaaa", 20)),
            "",
        ),
        POLICY,
        8,
    )
    .await;
    h.local.simulator.advance(Duration::minutes(5));
    h.remediator_tick().await;
    h.local.simulator.advance(Duration::minutes(15));
    // WHEN the 08:20 tick is delivered three times in a row and twice at the same time
    let tick = autopilot_sim::tick_event("euc-autopilot-remediator", h.local.simulator.now());
    for _ in 0..3 {
        h.deliver_to_remediator(tick.clone()).await.unwrap();
    }
    let (a, b) = tokio::join!(h.deliver_to_remediator(tick.clone()), h.deliver_to_remediator(tick.clone()));
    a.unwrap();
    b.unwrap();
    // AND a person's request for the same WorkSpace is delivered twice
    let request = remediation_requested(
        &h,
        "req-1",
        json!({ "resourceType": "workspace", "resourceId": "ws-sick00001", "reason": "black screen" }),
    );
    h.deliver_to_remediator(request.clone()).await.unwrap();
    h.deliver_to_remediator(request).await.unwrap();
    // THEN exactly one reboot was made, announced and audited
    assert_eq!(calls(&h, "RebootWorkspaces").len(), 1);
    assert_eq!(h.outcome_events("Remediation Applied").len(), 1);
    let audit = audit(&h, "ws-sick00001").await;
    assert_eq!(audit.iter().filter(|r| r.outcome == AuditOutcome::Applied).count(), 1, "{audit:?}");
}

#[tokio::test]
async fn a_pool_iam_error_is_escalated_once_and_never_retried() {
    // GIVEN a pool that reports a missing IAM role, a fleet whose error is transient, and a FAILED image builder
    let rest = "image_builders:
  - { name: broken-builder, state: FAILED }
workspaces_pools:
  - { id: wspool-broken01, name: broken, state: STOPPED, errors: [{ code: IAM_SERVICE_ROLE_IS_MISSING, message: The role is missing. }] }
fleets:
  - { name: flaky-fleet, state: RUNNING, errors: [{ code: INTERNAL_SERVICE_ERROR, message: Try again. }] }
";
    let h = Harness::start(&estate(&healthy("ws-okay", "d-aaaaaaaaaa", 2), rest), POLICY, 9).await;
    // WHEN the remediator ticks every 5 minutes for an hour
    run(&h, 60, 5).await;
    // THEN the builder and the pool were escalated once each (the pool with its error), the fleet once after the
    // 30-minute grace; nothing was started, stopped or updated
    assert!(h.mutations().is_empty(), "{:?}", h.mutations());
    let mut escalations = h.outcome_events("Escalation");
    assert_eq!(escalations.len(), 3, "{escalations:?}");
    let builder = escalations.remove(escalations.iter().position(|e| e["name"] == "broken-builder").unwrap());
    assert_eq!(builder["cause"], "failed");
    assert_eq!(escalations[0]["name"], "wspool-broken01");
    assert_eq!(escalations[0]["cause"], "configuration:IAM_SERVICE_ROLE_IS_MISSING");
    assert_eq!(escalations[0]["details"], json!(["IAM_SERVICE_ROLE_IS_MISSING: The role is missing."]));
    assert_eq!(escalations[1]["name"], "flaky-fleet");
    assert_eq!(escalations[1]["cause"], "persistent:INTERNAL_SERVICE_ERROR");
    let put_events = calls(&h, "PutEvents");
    assert_eq!(put_events.len(), 3, "one PutEvents per escalation, no retry loop");
    assert!(put_events[2].at >= start() + Duration::minutes(30));
}

#[tokio::test]
async fn dry_run_makes_no_mutating_call() {
    // GIVEN the policy in dry-run, an unhealthy WorkSpace and one in ERROR
    let h = Harness::start(
        &estate(
            &(ws("ws-sick00001", "d-aaaaaaaaaa", &fault(1, "rebuild"))
                + &ws("ws-err000001", "d-aaaaaaaaaa", ", state: ERROR")
                + &healthy("ws-okay", "d-aaaaaaaaaa", 20)),
            "",
        ),
        &policy_with("dry_run: false", "dry_run: true"),
        10,
    )
    .await;
    // WHEN the remediator ticks for two hours
    run(&h, 120, 5).await;
    // THEN no WorkSpace was rebooted or rebuilt; the would-reboot was audited once; the ERROR WorkSpace was
    // escalated (an escalation describes, it changes nothing)
    assert!(workspace_mutations(&h).is_empty());
    let audit = audit(&h, "ws-sick00001").await;
    let dry: Vec<&AuditRecord> = audit.iter().filter(|r| r.outcome == AuditOutcome::DryRun).collect();
    assert_eq!(dry.len(), 1, "{audit:?}");
    assert_eq!(dry[0].action, "RebootWorkspaces");
    let escalations = h.outcome_events("Escalation");
    assert_eq!(escalations.iter().map(|e| e["name"].clone()).collect::<Vec<_>>(), [json!("ws-err000001")]);
    assert!(h.outcome_events("Remediation Applied").is_empty());
}

#[tokio::test]
async fn admin_maintenance_by_a_person_is_hands_off_and_a_request_skips_the_wait() {
    // GIVEN two WorkSpaces that turn UNHEALTHY at 08:01 and one that is fine
    let workspaces = ws("ws-mnt000001", "d-aaaaaaaaaa", &fault(1, "reboot"))
        + &ws("ws-req000001", "d-aaaaaaaaaa", "")
        + &healthy("ws-okay", "d-aaaaaaaaaa", 20);
    let h = Harness::start(&estate(&workspaces, ""), POLICY, 11).await;
    h.local.simulator.advance(Duration::minutes(2));
    // WHEN a person puts the first into admin maintenance (CloudTrail), and asks for the healthy-looking one to
    // be remediated ("black screen")
    let call = cloudtrail_event(
        "ModifyWorkspaceState",
        json!({ "workspaceId": "ws-mnt000001", "workspaceState": "ADMIN_MAINTENANCE" }),
        h.local.simulator.now(),
        PERSON,
    );
    assert_eq!(h.deliver_to_remediator(call).await.unwrap().status, Status::Recorded);
    let request = remediation_requested(
        &h,
        "req-2",
        json!({ "resourceType": "workspace", "resourceId": "ws-req000001", "reason": "black screen" }),
    );
    let report = h.deliver_to_remediator(request).await.unwrap();
    // THEN the requested one is rebooted at once, without the 15-minute wait
    assert_eq!(calls(&h, "RebootWorkspaces").iter().map(ids).collect::<Vec<_>>(), [["ws-req000001"]]);
    assert!(report.actions.iter().any(|a| a.result == ActionResult::Applied), "{report:?}");
    // AND over the next two hours the one in maintenance is never touched (it stays UNHEALTHY: a person has it)
    run(&h, 120, 5).await;
    assert!(calls(&h, "RebootWorkspaces").iter().all(|c| !ids(c).contains(&"ws-mnt000001".to_owned())));
    // AND a malformed request is rejected as invalid input
    let bad = remediation_requested(&h, "req-3", json!({ "resourceType": "printer", "resourceId": "p-1" }));
    let error = h.deliver_to_remediator(bad).await.unwrap_err();
    assert_eq!(error.class.as_str(), "InvalidInput");
    assert!(error.message.contains("detail.resourceType"), "{}", error.message);
}

#[tokio::test]
async fn a_workspace_that_keeps_falling_ill_is_rebooted_max_reboots_times_then_escalated_once() {
    // GIVEN a WorkSpace that falls ill again soon after each reboot cures it (a fault every 40 minutes)
    let faults: Vec<String> = (0..8).map(|i| format!("{{ after_minutes: {}, cure: reboot }}", 5 + 40 * i)).collect();
    let flapping = ws("ws-flap00001", "d-aaaaaaaaaa", &format!(", faults: [{}]", faults.join(", ")));
    let h = Harness::start(&estate(&(flapping + &healthy("ws-okay", "d-aaaaaaaaaa", 20)), ""), POLICY, 21).await;
    // WHEN the remediator sweeps every 5 minutes for six hours
    run(&h, 6 * 60, 5).await;
    // THEN its episodes share the guard rails: max_reboots (2) reboots within the window, then one escalation
    let reboots = calls(&h, "RebootWorkspaces").iter().filter(|c| ids(c).contains(&"ws-flap00001".to_owned())).count();
    assert_eq!(reboots, 2, "rebooted {reboots} times");
    let escalations = h.outcome_events("Escalation");
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    assert!(escalations[0]["reason"].as_str().unwrap().contains("after 2 reboot(s)"), "{escalations:?}");
}

#[tokio::test]
async fn a_persons_new_round_escalates_again_when_it_does_not_help() {
    // GIVEN a desktop only a rebuild would cure (not allowed for it), rebooted twice and escalated
    let workspaces = ws("ws-desk00001", "d-aaaaaaaaaa", &fault(5, "rebuild")) + &healthy("ws-okay", "d-aaaaaaaaaa", 20);
    let h = Harness::start(&estate(&workspaces, ""), POLICY, 22).await;
    run(&h, 180, 5).await;
    assert_eq!(h.outcome_events("Escalation").len(), 1);
    // WHEN a person asks for a new round
    let request = remediation_requested(
        &h,
        "req-again",
        json!({ "resourceType": "workspace", "resourceId": "ws-desk00001", "reason": "still broken" }),
    );
    h.deliver_to_remediator(request).await.unwrap();
    run(&h, 180, 5).await;
    // THEN the round's reboots are made, counted within the round, and, as they do not help either, the person is
    // told again
    assert_eq!(calls(&h, "RebootWorkspaces").len(), 4);
    let audit = audit(&h, "ws-desk00001").await;
    let reboots: Vec<&str> =
        audit.iter().filter(|r| r.action == "RebootWorkspaces").map(|r| r.reason.as_str()).collect();
    assert!(
        reboots[2].contains("reboot 1 of at most 2") && reboots[3].contains("reboot 2 of at most 2"),
        "{reboots:?}"
    );
    let escalations = h.outcome_events("Escalation");
    assert_eq!(escalations.len(), 2, "{escalations:?}");
    assert_eq!(escalations[1]["cause"], "unremedied");
}

#[tokio::test]
async fn a_service_that_cannot_be_read_leaves_the_others_remediated() {
    // GIVEN an UNHEALTHY WorkSpace, and image builders that cannot be listed (an AppStream outage, an SCP)
    let workspaces = ws("ws-sick00001", "d-aaaaaaaaaa", &fault(5, "reboot")) + &healthy("ws-okay", "d-aaaaaaaaaa", 20);
    let rest = "faults:\n  error_rate: { DescribeImageBuilders: 1.0 }\n";
    let h = Harness::start(&estate(&workspaces, rest), POLICY, 23).await;
    // WHEN the remediator ticks every 10 minutes for an hour
    for _ in 0..6 {
        h.local.simulator.advance(Duration::minutes(10));
        let tick = autopilot_sim::tick_event("euc-autopilot-remediator", h.local.simulator.now());
        // THEN each tick still fails, so that the unread service is seen …
        let failed = h.deliver_to_remediator(tick).await.unwrap_err();
        assert!(failed.message.contains("image builders"), "{failed}");
    }
    // … AND the WorkSpace was rebooted all the same
    assert_eq!(calls(&h, "RebootWorkspaces").len(), 1);
    assert_eq!(state(&h, "ws-sick00001"), "AVAILABLE");
}

#[tokio::test]
async fn a_reboot_refused_for_its_state_every_time_is_escalated_after_three_tries_not_retried_for_ever() {
    // GIVEN an UNHEALTHY WorkSpace whose every reboot AWS refuses for its state (as it refuses a WorkSpace it is
    // changing under us)
    let faults = "faults: { batch_failure_rate: { RebootWorkspaces: 1.0 }, batch_failure_code: { RebootWorkspaces: InvalidResourceState.Workspace } }\n";
    let h = Harness::start(
        &estate(
            &(ws("ws-desk00001", "d-aaaaaaaaaa", &fault(1, "reboot")) + &healthy("ws-okay", "d-aaaaaaaaaa", 20)),
            faults,
        ),
        POLICY,
        6,
    )
    .await;
    // WHEN the remediator ticks every 5 minutes for two hours
    run(&h, 120, 5).await;
    // THEN it tried three times, each refusal recorded as deferred, and then told a person once, with why
    let tried = calls(&h, "RebootWorkspaces").len();
    assert_eq!(tried, 3, "{:?}", calls(&h, "RebootWorkspaces"));
    let deferred = audit(&h, "ws-desk00001").await.iter().filter(|r| r.outcome == AuditOutcome::Deferred).count();
    assert_eq!(deferred, 3);
    let escalations = h.outcome_events("Escalation");
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    assert_eq!(escalations[0]["cause"], "action-failing");
    assert!(escalations[0]["reason"].as_str().unwrap().contains("failed or were refused"), "{escalations:?}");
}

#[tokio::test]
async fn a_request_for_a_directory_or_pool_that_is_not_there_says_so_instead_of_swept() {
    // GIVEN an estate with one directory and no pools
    let h = Harness::start(&estate(&healthy("ws-okay", "d-aaaaaaaaaa", 5), ""), POLICY, 8).await;
    let request = |resource_type: &str, id: &str| {
        remediation_requested(&h, &format!("req-{id}"), json!({ "resourceType": resource_type, "resourceId": id }))
    };
    // WHEN a person asks for a directory, a pool and a WorkSpace that are not there
    for (resource_type, id, words) in [
        (
            "directory",
            "d-0123456789",
            [
                "InvalidInput",
                "directory d-0123456789",
                "has no WorkSpaces in account 123456789012, region eu-central-1",
            ],
        ),
        ("workspaces-pool", "wspool-abcdefghi", ["wspool-abcdefghi", "not found", ""]),
        ("workspace", "ws-nothere01", ["InvalidInput", "WorkSpace ws-nothere01", "not found in account 123456789012"]),
    ] {
        // THEN each answer names what was not found and where, not `swept`
        let answer = h.deliver_to_remediator(request(resource_type, id)).await;
        let error = answer.expect_err(&format!("{resource_type} {id} answered as swept")).to_string();
        assert!(words.iter().all(|w| error.contains(w)), "{error}");
    }
    // AND the directory that is there is swept
    let report = h.deliver_to_remediator(request("directory", "d-aaaaaaaaaa")).await.unwrap();
    assert_eq!(report.status, autopilot_shared::report::Status::Swept);
}

#[tokio::test]
async fn reboots_that_were_throttled_give_their_budget_back() {
    // GIVEN 3 WorkSpaces UNHEALTHY at 08:01 among 45 healthy ones, a budget of 3 actions per hour, and every
    // reboot item throttled at first
    let sick: String = (0..3).map(|i| ws(&format!("ws-sick{i:05}"), "d-aaaaaaaaaa", &fault(1, "reboot"))).collect();
    let throttled = "faults: { batch_failure_rate: { RebootWorkspaces: 1.0 }, batch_failure_code: { RebootWorkspaces: ThrottlingException } }\n";
    let h = Harness::start(
        &estate(&(sick + &healthy("ws-okay", "d-aaaaaaaaaa", 45)), throttled),
        &policy_with("max_actions_per_hour: 100", "max_actions_per_hour: 3"),
        5,
    )
    .await;
    // WHEN the remediator sweeps while the reboots are throttled (08:20), and again once they are not
    run(&h, 25, 5).await;
    h.local.simulator.with_world_mut(|w| w.faults.batch_failure_rate.clear());
    run(&h, 10, 5).await;
    // THEN the three are rebooted in the same hour: the throttled attempts did not spend the hour's budget
    let reboots = calls(&h, "RebootWorkspaces");
    let at: Vec<(DateTime<Utc>, usize)> = reboots.iter().map(|c| (c.at, ids(c).len())).collect();
    assert_eq!(at, [(start() + Duration::minutes(20), 3), (start() + Duration::minutes(25), 3)]);
    for i in 0..3 {
        assert_eq!(state(&h, &format!("ws-sick{i:05}")), "AVAILABLE");
    }
}

#[tokio::test]
async fn a_remediation_applied_eventbridge_did_not_take_is_announced_by_a_later_sweep_once() {
    // GIVEN a WorkSpace that turns UNHEALTHY at 08:10 (a reboot cures it), and EventBridge failing until 08:40
    let h = Harness::start(
        &estate(
            &(ws("ws-sick00001", "d-aaaaaaaaaa", &fault(10, "reboot")) + &healthy("ws-okay", "d-aaaaaaaaaa", 20)),
            "",
        ),
        POLICY,
        1,
    )
    .await;
    h.fail("PutEvents", 1.0);
    // WHEN it is rebooted (08:25) while EventBridge fails, and the remediator goes on sweeping once it recovers
    run(&h, 40, 5).await;
    assert_eq!(calls(&h, "RebootWorkspaces").len(), 1);
    assert!(h.outcome_events("Remediation Applied").is_empty());
    h.fail("PutEvents", 0.0);
    run(&h, 30, 5).await;
    // THEN the reboot is announced once, as it was decided
    let applied = h.outcome_events("Remediation Applied");
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert_eq!(applied[0]["workspaceId"], "ws-sick00001");
    assert_eq!(applied[0]["action"], json!({ "kind": "reboot", "attempt": 1 }));
}

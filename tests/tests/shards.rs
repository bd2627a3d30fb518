//! Hub and spoke, end to end against the simulator: a policy with `targets` makes the hub's tick publish one
//! `Shard Tick` per account × region (PutEvents on the project bus); each shard tick, delivered as EventBridge
//! would, runs the function in that account through the spoke role, assumed with the real STS protocol
//! (awsQuery, XML) — and a target whose spoke role is not deployed fails alone, refused as AWS refuses it.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use autopilot_shared::error::ErrorClass;
use autopilot_shared::ledger::shards::ShardOutcome;
use autopilot_shared::report::Status;
use autopilot_tests::Harness;

/// The estate's own account runs the spoke stack (the hub manages its own account through it, like any other);
/// 222233334444 is targeted but has no spoke role.
const ESTATE: &str = r#"
start: 2026-11-23T06:00:00Z
spokes:
  - account: "123456789012"
fleets:
  - name: callcenter
    state: RUNNING
    desired: 40
    tags: { autopilot/capacity: callcenter }
"#;

const POLICY: &str = r#"
version: 1
targets:
  regions: [eu-central-1]
  accounts:
    - id: "123456789012"
    - id: "222233334444"
      dry_run: true
capacity:
  - select: { tag: { autopilot/capacity: callcenter } }
    in_hours: { min: 5, max: 10 }
"#;

/// The shard ticks the hub published, as EventBridge delivers them to the function.
fn delivered_shard_ticks(harness: &Harness) -> Vec<serde_json::Value> {
    harness.local.simulator.with_world(|w| {
        w.events
            .iter()
            .filter(|e| e.detail_type == "Shard Tick")
            .map(|e| {
                serde_json::json!({
                    "version": "0", "id": e.event_id, "detail-type": e.detail_type, "source": e.source,
                    "account": "123456789012", "time": e.at, "region": "eu-central-1", "resources": [],
                    "detail": e.detail,
                })
            })
            .collect()
    })
}

#[tokio::test]
async fn a_tick_fans_out_per_shard_each_shard_works_through_its_spoke_role_and_a_missing_role_fails_alone() {
    let harness = Harness::start(ESTATE, POLICY, 1).await;

    // WHEN the hub's tick arrives
    let report = harness.tick().await;
    // THEN it dispatches one shard tick per account × region, and changes nothing itself
    assert_eq!(report.status, Status::Dispatched, "{report:?}");
    assert_eq!(report.results.get("dispatched"), Some(&2));
    assert_eq!(report.api_calls, 1, "two shard ticks in one PutEvents call");
    assert!(harness.mutations().is_empty());
    // a redelivered hub tick publishes nothing again
    let again = harness.tick().await;
    assert_eq!(again.status, Status::Duplicate);
    let ticks = delivered_shard_ticks(&harness);
    assert_eq!(ticks.len(), 2);

    // WHEN each shard tick is delivered
    let mut outcomes = Vec::new();
    for tick in &ticks {
        let account = tick["detail"]["account"].as_str().unwrap().to_owned();
        outcomes.push((account, harness.deliver(tick.clone()).await));
    }

    // THEN the shard with a spoke role reconciled, through the role it assumed
    let (_, ours) = outcomes.iter().find(|(a, _)| a == "123456789012").unwrap();
    let ours = ours.as_ref().expect("the shard with a spoke role reconciles");
    assert_eq!(ours.status, Status::Reconciled);
    let calls = harness.local.simulator.calls();
    let assumed: Vec<_> = calls.iter().filter(|c| c.service == "sts" && c.outcome == "ok").collect();
    assert_eq!(assumed.len(), 1, "the role is assumed once and its credentials kept");
    let update = calls.iter().find(|c| c.operation == "UpdateFleet").expect("the fleet was scaled in the shard");
    let caller = update.caller.as_deref().unwrap_or_default();
    assert!(caller.starts_with("ASIASPOKE123456789012"), "signed as the spoke session, not the hub role: {caller}");

    // AND the shard without one failed alone, refused as AWS refuses it, retryable for its own redelivery only
    let (_, theirs) = outcomes.iter().find(|(a, _)| a == "222233334444").unwrap();
    let error = theirs.as_ref().expect_err("no spoke role in 222233334444");
    assert!(
        error.message.contains("AccessDenied")
            || error.message.contains("arn:aws:iam::222233334444:role/EUCAutopilotSpoke"),
        "{error:?}"
    );
    assert_ne!(error.class, ErrorClass::InvalidInput);
    let refused: Vec<_> = calls.iter().filter(|c| c.service == "sts" && c.outcome != "ok").collect();
    assert!(!refused.is_empty(), "the refused AssumeRole is in the call log");

    // AND each shard's last tick is in the ledger for `autopilot targets`: one ok, one failed with its reason
    let mut statuses = harness.deps.ledger.shard_statuses().await.unwrap();
    statuses.sort_by(|a, b| a.account.cmp(&b.account));
    let summary: Vec<_> = statuses.iter().map(|s| (s.function.as_str(), s.account.as_str(), s.outcome)).collect();
    assert_eq!(
        summary,
        vec![("pool-scaler", "123456789012", ShardOutcome::Ok), ("pool-scaler", "222233334444", ShardOutcome::Failed),]
    );
    assert!(statuses[0].api_calls > 0);
    assert!(statuses[1].error.as_deref().unwrap_or_default().contains("EUCAutopilotSpoke"), "{:?}", statuses[1]);
}

#[tokio::test]
async fn a_shard_tick_for_another_function_or_a_malformed_shard_is_refused_as_bad_input() {
    let harness = Harness::start(ESTATE, POLICY, 1).await;
    let event = |function: &str, account: &str| {
        serde_json::json!({
            "version": "0", "id": "e-1", "detail-type": "Shard Tick", "source": "euc.autopilot",
            "account": "123456789012", "time": "2026-11-23T06:00:00Z", "region": "eu-central-1", "resources": [],
            "detail": { "function": function, "account": account, "region": "eu-central-1",
                        "schedule": "arn:aws:scheduler:eu-central-1:123456789012:schedule/default/x",
                        "scheduledAt": "2026-11-23T06:00:00Z" },
        })
    };
    let other = harness.deliver(event("remediator", "123456789012")).await.expect_err("not the pool-scaler's");
    assert_eq!(other.class, ErrorClass::InvalidInput);
    let malformed = harness.deliver(event("pool-scaler", "12345")).await.expect_err("not an account id");
    assert_eq!(malformed.class, ErrorClass::InvalidInput);
    assert!(malformed.message.contains("detail.account"), "{}", malformed.message);
}

/// A spoke in another account than the hub's; the hub's own account has none.
const SPOKE_ESTATE: &str = r#"
start: 2026-11-23T06:00:00Z
spokes:
  - account: "222233334444"
fleets:
  - name: callcenter
    state: RUNNING
    desired: 40
    tags: { autopilot/capacity: callcenter }
"#;

const SPOKE_POLICY: &str = r#"
version: 1
targets:
  regions: [eu-central-1]
  accounts:
    - id: "222233334444"
capacity:
  - select: { tag: { autopilot/capacity: callcenter } }
    in_hours: { min: 5, max: 10 }
"#;

fn session_event(account: &str) -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": format!("session-{account}"), "detail-type": "AppStream Session Notification",
        "source": "aws.appstream", "account": account, "time": "2026-11-23T06:00:00Z", "region": "eu-central-1",
        "resources": [],
        "detail": { "fleetName": "callcenter", "stackName": "callcenter-stack", "sessionId": "s-1",
                    "eventType": "SESSION_STARTED" },
    })
}

#[tokio::test]
async fn an_event_forwarded_from_a_spoke_is_worked_in_its_account_and_one_from_elsewhere_is_ignored() {
    let harness = Harness::start(SPOKE_ESTATE, SPOKE_POLICY, 1).await;

    // WHEN a session event of the spoke account arrives on the hub
    let report = harness.deliver(session_event("222233334444")).await.expect("worked in the spoke");
    // THEN the fleet is reconciled through the spoke role of that account, not the hub's role
    assert_eq!(report.status, Status::Reconciled, "{report:?}");
    let calls = harness.local.simulator.calls();
    let update = calls.iter().find(|c| c.operation == "UpdateFleet").expect("the fleet was scaled");
    let caller = update.caller.as_deref().unwrap_or_default();
    assert!(caller.starts_with("ASIASPOKE222233334444"), "signed as the spoke session: {caller}");

    // AND an event from an account the policy does not target is ignored, with no call made
    let before = harness.local.simulator.calls().len();
    let ignored = harness.deliver(session_event("333344445555")).await.expect("ignored");
    assert_eq!(ignored.status, Status::Ignored);
    assert_eq!(harness.local.simulator.calls().len(), before, "nothing called for an untargeted account");
}

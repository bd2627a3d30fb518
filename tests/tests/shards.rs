//! Hub and spoke, end to end against the simulator: a policy with `targets` makes the hub's tick publish one
//! `Shard Tick` per account × region (PutEvents on the project bus); each shard tick, delivered as EventBridge
//! would, runs the function in that account through the spoke role, assumed with the real STS protocol
//! (awsQuery, XML) — and a target whose spoke role is not deployed fails alone, refused as AWS refuses it.

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
    harness.local.bus_events_since(0, "Shard Tick")
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

/// A spoke in another account than the hub's (the hub's own account has none), its fleet there.
const SPOKE_ESTATE: &str = r#"
start: 2026-11-23T06:00:00Z
spokes:
  - account: "222233334444"
fleets:
  - name: callcenter
    state: RUNNING
    desired: 2
    account: "222233334444"
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

/// Two spoke accounts, each with a fleet in two regions; one region of one account is excluded.
const ESTATE_2X2: &str = r#"
start: 2026-11-23T06:00:00Z
spokes:
  - account: "111111111111"
  - account: "222222222222"
fleets:
  - { name: a-central, state: RUNNING, desired: 40, account: "111111111111", region: eu-central-1, tags: { autopilot/capacity: cc } }
  - { name: a-west, state: RUNNING, desired: 40, account: "111111111111", region: eu-west-1, tags: { autopilot/capacity: cc } }
  - { name: b-central, state: RUNNING, desired: 40, account: "222222222222", region: eu-central-1, tags: { autopilot/capacity: cc } }
  - { name: b-west, state: RUNNING, desired: 40, account: "222222222222", region: eu-west-1, tags: { autopilot/capacity: cc } }
"#;

const POLICY_2X2: &str = r#"
version: 1
targets:
  regions: [eu-central-1, eu-west-1]
  accounts:
    - id: "111111111111"
    - id: "222222222222"
  exclude:
    - { account: "222222222222", region: eu-west-1 }
capacity:
  - select: { tag: { autopilot/capacity: cc } }
    in_hours: { min: 5, max: 10 }
"#;

#[tokio::test]
async fn each_shard_sees_and_changes_only_its_own_account_and_region() {
    let harness = Harness::start(ESTATE_2X2, POLICY_2X2, 1).await;
    let report = harness.tick().await;
    assert_eq!(report.results.get("dispatched"), Some(&3), "2 accounts x 2 regions, one excluded");
    for tick in delivered_shard_ticks(&harness) {
        let shard = format!("{}/{}", tick["detail"]["account"], tick["detail"]["region"]);
        let worked = harness.deliver(tick).await.unwrap_or_else(|e| panic!("{shard}: {e:?}"));
        assert_eq!(worked.status, Status::Reconciled, "{shard}");
    }
    let calls = harness.local.simulator.calls();
    let mut updated: Vec<(String, String)> = calls
        .iter()
        .filter(|c| c.operation == "UpdateFleet")
        .map(|c| (c.parameters["Name"].as_str().unwrap_or_default().to_owned(), c.caller.clone().unwrap_or_default()))
        .collect();
    updated.sort();
    let fleets: Vec<&str> = updated.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(fleets, ["a-central", "a-west", "b-central"], "each shard scaled its own fleet, the excluded one none");
    for (name, caller) in &updated {
        let account = if name.starts_with("a-") { "111111111111" } else { "222222222222" };
        assert!(caller.starts_with(&format!("ASIASPOKE{account}")), "{name} changed by {caller}");
    }
    assert_eq!(harness.local.simulator.with_world(|w| w.fleets["b-west"].capacity.desired), 40, "excluded: untouched");
}

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

#[tokio::test]
async fn a_generated_estate_over_three_accounts_and_two_regions_is_reconciled_shard_by_shard_each_resource_once() {
    use autopilot_sim::generate::{Sizes, generate, spread};
    let sizes = Sizes { pools: 12, fleets: 12, builders: 0, environments: 0, devices: 0, workspaces: 0 };
    let mut estate = generate(sizes, 7);
    let regions = vec!["eu-central-1".to_owned(), "eu-west-1".to_owned()];
    spread(&mut estate, 3, &regions);
    let policy = r#"
version: 1
targets:
  regions: [eu-central-1, eu-west-1]
  accounts: [{ id: "100000000001" }, { id: "100000000002" }, { id: "100000000003" }]
capacity:
  - select: { tag: { autopilot/capacity: sales } }
    in_hours: { min: 1, max: 100 }
  - select: { tag: { autopilot/capacity: support } }
    in_hours: { min: 1, max: 100 }
  - select: { tag: { autopilot/capacity: finance } }
    in_hours: { min: 1, max: 100 }
  - select: { tag: { autopilot/capacity: engineering } }
    in_hours: { min: 1, max: 100 }
  - select: { tag: { autopilot/capacity: hr } }
    in_hours: { min: 1, max: 100 }
"#;
    let harness = Harness::start(&serde_yaml_ng::to_string(&estate).unwrap(), policy, 7).await;
    let report = harness.tick().await;
    assert_eq!(report.results.get("dispatched"), Some(&6), "3 accounts x 2 regions");
    let mut decided = Vec::new();
    for tick in delivered_shard_ticks(&harness) {
        let (account, region) = (
            tick["detail"]["account"].as_str().unwrap().to_owned(),
            tick["detail"]["region"].as_str().unwrap().to_owned(),
        );
        let worked = harness.deliver(tick).await.unwrap_or_else(|e| panic!("{account}/{region}: {e:?}"));
        assert_eq!(worked.status, Status::Reconciled);
        for action in &worked.actions {
            assert!(
                action.resource.contains(&format!("#{account}#{region}#")),
                "{} decided in {account}/{region}",
                action.resource
            );
            decided.push(action.resource.clone());
        }
    }
    decided.sort();
    let total = decided.len();
    decided.dedup();
    assert_eq!(decided.len(), total, "no resource decided twice");
    assert_eq!(total, 24, "every pool and fleet decided once, in its own shard");
}

#[tokio::test]
async fn a_shard_announces_its_outcome_events_on_the_hubs_bus_as_the_hub_role() {
    // an image builder left running at night in a spoke account (New York, Monday 23:00)
    let estate = r#"
start: 2026-11-24T04:00:00Z
spokes:
  - account: "222233334444"
image_builders:
  - { name: night-b, state: RUNNING, account: "222233334444", tags: { autopilot/builder: office } }
"#;
    let policy = r#"
version: 1
targets:
  regions: [eu-central-1]
  accounts: [{ id: "222233334444" }]
schedules:
  office:
    timezone: America/New_York
    periods: [{ days: [mon-fri], start: "08:00", end: "18:00" }]
image_builders:
  - select: { tag: { autopilot/builder: office } }
    schedule: office
    warn_before: 15m
"#;
    let harness = Harness::start(estate, policy, 1).await;
    // two hub ticks, 15 minutes apart: the stop is announced, then made
    for _ in 0..2 {
        let hub_tick = autopilot_sim::tick_event("euc-autopilot-builder-scheduler", harness.local.simulator.now());
        let dispatched = harness.deliver_to_builders(hub_tick).await.expect("dispatched");
        assert_eq!(dispatched.status, Status::Dispatched);
        let ticks = delivered_shard_ticks(&harness);
        harness.deliver_to_builders(ticks.last().cloned().expect("a shard tick")).await.expect("the shard works");
        harness.local.simulator.advance(chrono::Duration::minutes(15));
    }
    let calls = harness.local.simulator.calls();
    let stop = calls.iter().find(|c| c.operation == "StopImageBuilder").expect("stopped in the spoke");
    assert!(stop.caller.as_deref().unwrap_or_default().starts_with("ASIASPOKE222233334444"));
    let announced: Vec<_> = calls
        .iter()
        .filter(|c| c.operation == "PutEvents" && c.parameters.to_string().contains("Image Builder"))
        .collect();
    assert!(!announced.is_empty(), "the outcome was announced");
    for call in announced {
        assert_eq!(call.outcome, "ok");
        assert_eq!(call.caller.as_deref(), Some("builder-scheduler"), "on the hub's bus, as the hub's role");
    }
}

#[tokio::test]
async fn a_shards_escalation_is_recorded_once_not_at_every_tick() {
    let estate = r#"
start: 2026-11-23T06:00:00Z
spokes:
  - account: "222233334444"
fleets:
  - name: broken-fleet
    account: "222233334444"
    region: eu-west-1
    state: STOPPED
    desired: 2
    errors:
      - { code: IAM_SERVICE_ROLE_IS_MISSING, message: "The AppStream 2.0 service role is missing." }
"#;
    let policy = r#"
version: 1
targets:
  regions: [eu-central-1, eu-west-1]
  accounts: [{ id: "222233334444" }]
remediation: {}
"#;
    let harness = Harness::start(estate, policy, 1).await;
    for _ in 0..3 {
        let published = harness.local.bus_event_count();
        let hub_tick = autopilot_sim::tick_event("euc-autopilot-remediator", harness.local.simulator.now());
        harness.deliver_to_remediator(hub_tick).await.expect("dispatched");
        for tick in harness.local.bus_events_since(published, "Shard Tick") {
            harness.deliver_to_remediator(tick).await.expect("the shard works");
        }
        harness.local.simulator.advance(chrono::Duration::minutes(5));
    }
    let day = harness.local.simulator.now().date_naive();
    let records = harness.deps.ledger.audit_by_day(day).await.unwrap();
    let escalations: Vec<_> = records.iter().filter(|r| r.action == "Escalation").collect();
    assert_eq!(escalations.len(), 1, "{escalations:#?}");
}

/// Two accounts with a canary environment each on set 100; set 101 is out (sets are AWS's, the same everywhere).
fn two_accounts_of_thin_clients() -> String {
    let window = r#"maintenance_window: { days: [MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY], start: "01:00", end: "03:00" }"#;
    format!(
        r#"
start: 2026-11-23T09:00:00Z
spokes:
  - account: "111111111111"
  - account: "222222222222"
environments:
  - {{ id: envcanarya1, name: canary-a, account: "111111111111", region: eu-central-1, desired_software_set_id: "100", {window}, tags: {{ ring: canary }} }}
  - {{ id: envcanaryb1, name: canary-b, account: "222222222222", region: eu-central-1, desired_software_set_id: "100", {window}, tags: {{ ring: canary }} }}
software_sets:
  - {{ id: "100", version: "2026.10.1", released_at: 2026-10-06T00:00:00Z, supported_until: 2027-03-31T00:00:00Z }}
  - {{ id: "101", version: "2026.11.1", released_at: 2026-11-17T00:00:00Z, supported_until: 2027-06-30T00:00:00Z }}
devices:
  - {{ environment: envcanarya1, count: 4, current_software_set_id: "100" }}
  - {{ environment: envcanaryb1, count: 4, current_software_set_id: "100" }}
"#
    )
}

/// Both accounts targeted in one region; `APPROVAL` is `require_approval`.
const ROLLOUTS_2X1: &str = r#"
version: 1
targets:
  regions: [eu-central-1]
  accounts: [{ id: "111111111111" }, { id: "222222222222" }]
rollouts:
  require_approval: APPROVAL
  bake: 4h
  gates: { min_up_to_date: 0.75, within: 48h, max_not_compliant: 0.25, max_stuck_in_progress: 0.25, min_reporting_devices: 3, reporting_stale_after: 6h }
  rings: [{ name: canary, select: { tag: { ring: canary } } }]
"#;

/// Every half hour for `hours`: the roller's hub tick, and each shard tick it publishes.
async fn roll_shards_for(harness: &Harness, hours: i64) {
    for _ in 0..(hours * 2) {
        let published = harness.local.bus_event_count();
        let hub_tick = autopilot_sim::tick_event("euc-autopilot-softwareset-roller", harness.local.simulator.now());
        harness.deliver_to_roller(hub_tick).await.expect("dispatched");
        for tick in harness.local.bus_events_since(published, "Shard Tick") {
            harness.deliver_to_roller(tick).await.expect("the shard works");
        }
        harness.local.simulator.advance(chrono::Duration::minutes(30));
    }
}

/// The successful `UpdateEnvironment` calls: environment and the account of the spoke session that made them.
fn environments_updated(harness: &Harness) -> Vec<(String, String)> {
    let mut updated: Vec<(String, String)> = harness
        .mutations()
        .into_iter()
        .filter(|c| c.operation == "UpdateEnvironment" && c.ok())
        .map(|c| (c.resource.unwrap_or_default(), c.caller.unwrap_or_default()[..21].to_owned()))
        .collect();
    updated.sort();
    updated.dedup();
    updated
}

/// Software sets are AWS's, the same in every account: each account's environments roll out on their own, and
/// the rollout of one account (`auto-101`) is not mistaken for another's — a shard's work items carry its place.
#[tokio::test]
async fn the_same_software_set_is_rolled_out_in_each_account_as_a_rollout_of_its_own() {
    let harness = Harness::start(&two_accounts_of_thin_clients(), &ROLLOUTS_2X1.replace("APPROVAL", "false"), 1).await;
    roll_shards_for(&harness, 2 * 24).await;
    // each account's canary environment was moved to the new set, by that account's spoke session
    assert_eq!(
        environments_updated(&harness),
        [
            ("envcanarya1".to_owned(), "ASIASPOKE111111111111".to_owned()),
            ("envcanaryb1".to_owned(), "ASIASPOKE222222222222".to_owned())
        ],
        "one rollout per account"
    );
    assert_eq!(harness.outcome_events("Rollout Started").len(), 2, "started in each account");
    assert_eq!(harness.outcome_events("Rollout Completed").len(), 2, "and completed in each");
    // each account's rollout is its own work item, listed in its own place only
    let home = harness.local.simulator.place();
    for account in ["111111111111", "222222222222"] {
        let place = autopilot_shared::resource::Place { account: account.into(), region: "eu-central-1".into() };
        let rollout = harness
            .deps
            .ledger
            .for_place(&place, &home)
            .get_work_item::<serde_json::Value>("ROLLOUT", "auto-101")
            .await
            .unwrap();
        assert!(rollout.is_some(), "{account}: its own auto-101");
    }
    assert!(harness.deps.ledger.get_work_item::<serde_json::Value>("ROLLOUT", "auto-101").await.unwrap().is_none());
}

fn rollout_requested(id: &str, detail: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": id, "detail-type": "Rollout Requested", "source": "euc.autopilot",
        "account": "123456789012", "time": "2026-11-23T09:00:00Z", "region": "eu-central-1", "resources": [],
        "detail": detail,
    })
}

/// An operator's command names the account (and region) it is for: it acts there through the spoke role, and
/// only there; a place the policy does not target is refused with the reason.
#[tokio::test]
async fn a_command_naming_an_account_acts_in_that_account_only() {
    let harness = Harness::start(&two_accounts_of_thin_clients(), &ROLLOUTS_2X1.replace("APPROVAL", "true"), 1).await;
    let request = rollout_requested(
        "req-b",
        serde_json::json!({ "softwareSetId": "101", "account": "222222222222", "region": "eu-central-1" }),
    );
    let report = harness.deliver_to_roller(request).await.expect("requested in account 222222222222");
    assert_ne!(report.status, Status::Ignored, "{report:?}");
    roll_shards_for(&harness, 24).await;
    assert_eq!(
        environments_updated(&harness),
        [("envcanaryb1".to_owned(), "ASIASPOKE222222222222".to_owned())],
        "only the named account's environment"
    );

    let elsewhere =
        rollout_requested("req-c", serde_json::json!({ "softwareSetId": "101", "account": "333333333333" }));
    let refused = harness.deliver_to_roller(elsewhere).await.expect_err("not a target");
    assert_eq!(refused.class, ErrorClass::InvalidInput, "{refused:?}");
    assert!(refused.message.contains("333333333333"), "{}", refused.message);
    let malformed = rollout_requested("req-d", serde_json::json!({ "softwareSetId": "101", "account": "b" }));
    let refused = harness.deliver_to_roller(malformed).await.expect_err("malformed");
    assert!(refused.message.contains("detail.account"), "{}", refused.message);
}

const ORGANIZATION_ESTATE: &str = r#"
start: 2026-11-23T06:00:00Z
spokes:
  - account: "111111111111"
  - account: "333333333333"
  - account: "444444444444"
organization:
  id: o-abcdefghij
  root: r-ab12
  units:
    - { id: ou-ab12-aaaaaaaa, accounts: ["111111111111", "222222222222"], suspended: ["222222222222"] }
    - { id: ou-ab12-bbbbbbbb, parent: ou-ab12-aaaaaaaa, accounts: ["333333333333"] }
    - { id: ou-ab12-cccccccc, accounts: ["555555555555"] }
fleets:
  - { name: callcenter, account: "111111111111", state: RUNNING, desired: 40, tags: { autopilot/capacity: callcenter } }
"#;

const ORGANIZATION_POLICY: &str = r#"
version: 1
targets:
  regions: [eu-central-1]
  organizational_units: [{ id: ou-ab12-aaaaaaaa }]
capacity:
  - select: { tag: { autopilot/capacity: callcenter } }
    in_hours: { min: 5, max: 10 }
"#;

/// The shards the hub's pool-scaler tick publishes now: `account/region`, sorted.
async fn dispatched_now(harness: &Harness) -> Vec<String> {
    let published = harness.local.bus_event_count();
    let report = harness.tick().await;
    assert_eq!(report.status, Status::Dispatched, "{report:?}");
    let mut shards: Vec<String> = harness
        .local
        .bus_events_since(published, "Shard Tick")
        .iter()
        .map(|t| format!("{}/{}", t["detail"]["account"].as_str().unwrap(), t["detail"]["region"].as_str().unwrap()))
        .collect();
    shards.sort();
    shards
}

/// A unit's accounts, and those of its child units, are listed from AWS Organizations (the real SDK client, the
/// awsJson protocol, authorised by the template's `OrganizationId` grant) at every tick: a suspended account is
/// left out, and an account that joins the unit is worked from the next tick on, without a redeploy.
#[tokio::test]
async fn organizational_units_are_discovered_through_aws_organizations_at_every_tick() {
    let harness = Harness::start(ORGANIZATION_ESTATE, ORGANIZATION_POLICY, 1).await;
    assert_eq!(dispatched_now(&harness).await, ["111111111111/eu-central-1", "333333333333/eu-central-1"]);
    let listed: Vec<String> = harness
        .local
        .simulator
        .calls()
        .iter()
        .filter(|c| c.service == "organizations")
        .map(|c| format!("{} {} {}", c.operation, c.parameters["ParentId"].as_str().unwrap_or_default(), c.outcome))
        .collect();
    assert!(listed.contains(&"ListAccountsForParent ou-ab12-aaaaaaaa ok".to_owned()), "{listed:?}");
    assert!(listed.contains(&"ListAccountsForParent ou-ab12-bbbbbbbb ok".to_owned()), "{listed:?}");

    // WHEN an account joins the child unit
    harness.local.simulator.with_world_mut(|w| {
        let organization = w.organization.as_mut().unwrap();
        organization.units[1].accounts.push("444444444444".into());
    });
    harness.local.simulator.advance(chrono::Duration::minutes(5));
    // THEN the next tick works in it too
    let shards = dispatched_now(&harness).await;
    assert_eq!(shards, ["111111111111/eu-central-1", "333333333333/eu-central-1", "444444444444/eu-central-1"]);
}

/// A unit that does not exist, or an estate whose hub is in no organization (the stack without `OrganizationId`
/// grants no Organizations read): the tick fails with a reason naming the unit and the refusal, and publishes
/// nothing.
#[tokio::test]
async fn a_unit_the_hub_cannot_list_fails_the_tick_with_the_reason() {
    let no_such_unit = ORGANIZATION_POLICY.replace("ou-ab12-aaaaaaaa", "ou-ab12-dddddddd");
    let no_organization =
        ORGANIZATION_ESTATE.replace("organization:\n  id: o-abcdefghij", "unused_:\n  id: o-abcdefghij");
    let (start, end) = (no_organization.find("unused_").unwrap(), no_organization.find("fleets:").unwrap());
    let no_organization = format!("{}{}", &no_organization[..start], &no_organization[end..]);
    for (estate, policy, refusal) in [
        (ORGANIZATION_ESTATE, no_such_unit.as_str(), "ParentNotFoundException"),
        (no_organization.as_str(), ORGANIZATION_POLICY, "AccessDenied"),
    ] {
        let harness = Harness::start(estate, policy, 1).await;
        let before = harness.local.bus_event_count();
        let event = autopilot_sim::tick_event("euc-autopilot-pool-scaler", harness.local.simulator.now());
        let error = harness.deliver(event).await.expect_err("the unit cannot be listed");
        assert!(error.message.contains("ou-ab12-"), "{}", error.message);
        assert!(error.message.contains(refusal), "{refusal}: {}", error.message);
        assert_eq!(harness.local.bus_event_count(), before, "nothing published");
    }
}

/// A shard acting on several resources in one tick: the claims taken ahead in one batch (`effect::batched`) are
/// found again under the shard's qualified keys — every action applied, none mistaken for a duplicate.
#[tokio::test]
async fn a_shard_acts_on_every_resource_of_its_tick_with_the_claims_it_took_ahead() {
    let estate = r#"
start: 2026-11-23T06:00:00Z
spokes:
  - account: "111111111111"
fleets:
  - { name: fleet-a, account: "111111111111", state: RUNNING, desired: 40, tags: { autopilot/capacity: callcenter } }
  - { name: fleet-b, account: "111111111111", state: RUNNING, desired: 40, tags: { autopilot/capacity: callcenter } }
  - { name: fleet-c, account: "111111111111", state: RUNNING, desired: 40, tags: { autopilot/capacity: callcenter } }
"#;
    let policy = POLICY.replace(
        "  accounts:\n    - id: \"123456789012\"\n    - id: \"222233334444\"\n      dry_run: true\n",
        "  accounts:\n    - id: \"111111111111\"\n",
    );
    let harness = Harness::start(estate, &policy, 1).await;
    let published = harness.local.bus_event_count();
    assert_eq!(harness.tick().await.status, Status::Dispatched);
    let ticks = harness.local.bus_events_since(published, "Shard Tick");
    assert_eq!(ticks.len(), 1);
    let report = harness.deliver(ticks[0].clone()).await.expect("the shard works");
    let results: Vec<String> = report
        .actions
        .iter()
        .map(|a| serde_json::to_value(a).unwrap())
        .map(|a| format!("{} {}", a["name"].as_str().unwrap_or_default(), a["result"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(results, ["fleet-a applied", "fleet-b applied", "fleet-c applied"], "{report:?}");
}

/// An event or command from an account no target lists by itself is worked only when a targeted unit holds the
/// account (listed through Organizations, kept for a few minutes) and only in that unit's regions: an account in
/// no targeted unit, or a region the unit does not list, is not a target (it was: any such account, anywhere).
#[tokio::test]
async fn an_account_known_through_a_unit_is_a_target_only_if_the_unit_holds_it_in_its_regions() {
    let harness = Harness::start(ORGANIZATION_ESTATE, ORGANIZATION_POLICY, 1).await;
    let listings = |harness: &Harness| {
        harness.local.simulator.calls().iter().filter(|c| c.operation == "ListAccountsForParent").count()
    };
    let request = |id: &str, account: &str, region: &str| {
        rollout_requested(id, serde_json::json!({ "softwareSetId": "101", "account": account, "region": region }))
    };
    let not_a_target = "which the policy's targets do not include";
    // a spoke account outside every targeted unit, and a unit's account in a region the unit does not list
    for (id, account, region) in
        [("r-444", "444444444444", "eu-central-1"), ("r-333-syd", "333333333333", "ap-southeast-2")]
    {
        let refused = harness.deliver_to_roller(request(id, account, region)).await.expect_err("not a target");
        assert_eq!(refused.class, ErrorClass::InvalidInput, "{refused:?}");
        assert!(refused.message.contains(not_a_target) && refused.message.contains(account), "{}", refused.message);
    }
    let listed = listings(&harness);
    assert!(listed > 0, "the units' accounts were listed through Organizations");
    // the child unit's account in the unit's region is a target (whatever the roller then makes of the request)
    let answer = harness.deliver_to_roller(request("r-333", "333333333333", "eu-central-1")).await;
    assert!(answer.as_ref().err().is_none_or(|e| !e.message.contains(not_a_target)), "{answer:?}");
    assert_eq!(listings(&harness), listed, "the listing is kept for the events of the next minutes");
    let in_444 = |c: &autopilot_sim::calllog::CallRecord| {
        c.caller.as_deref().is_some_and(|k| k.contains("444444444444"))
            || c.parameters["RoleArn"].as_str().is_some_and(|arn| arn.contains("444444444444"))
    };
    assert!(!harness.local.simulator.calls().iter().any(in_444), "nothing was called in the account outside the units");
}

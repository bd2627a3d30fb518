//! `autopilot simulate`: outputs, event routing, and clear errors for bad input files.

use crate::workspace::root;
use autopilot_lab::simulate::{Options, simulate};
use chrono::{DateTime, Duration, Utc};

fn options(out: &str) -> Options {
    let from: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-23T05:00:00Z").unwrap().with_timezone(&Utc);
    Options {
        estate: root().join("sim/estates/demo.yaml"),
        policy: root().join("sim/estates/demo-policy.yaml"),
        from,
        to: from + Duration::hours(6),
        tick: Duration::minutes(5),
        events: None,
        seed: 1,
        out: std::env::temp_dir().join(out),
        progress: false,
        learn: chrono::Duration::zero(),
        redeliver: 0.0,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_every_output_and_routes_events_like_the_rules() {
    // GIVEN a session notification for one fleet, an export request, a remediation request (alice's WorkSpace,
    // connected: skipped), and an event no function's rule matches
    let mut opts = options("autopilot-simulate-outputs");
    // exports end as the estate says, not by chance: the first attempt times out, the retry completes
    let mut estate: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&opts.estate).unwrap()).unwrap();
    estate["faults"]["exports"] = serde_yaml_ng::from_str(
        "{ minutes: 45, fail_rate: 0, time_out_rate: 0, fail_first: 1, fail_as: TIMED_OUT, error_code: EXPORT_IMAGE_TIMED_OUT }",
    )
    .unwrap();
    let estate_path = std::env::temp_dir().join("autopilot-simulate-outputs-estate.yaml");
    std::fs::write(&estate_path, serde_yaml_ng::to_string(&estate).unwrap()).unwrap();
    opts.estate = estate_path;
    let session = std::fs::read_to_string(root().join("events/appstream-session-notification.json")).unwrap();
    let mut session: serde_json::Value = serde_json::from_str(&session).unwrap();
    session["detail"]["fleetName"] = serde_json::json!("engineering-fleet");
    let export = std::fs::read_to_string(root().join("events/command-export-requested.json")).unwrap();
    let export: serde_json::Value = serde_json::from_str(&export).unwrap();
    let request = std::fs::read_to_string(root().join("events/command-remediation-requested.json")).unwrap();
    let request: serde_json::Value = serde_json::from_str(&request).unwrap();
    let unrouted = std::fs::read_to_string(root().join("events/cloudtrail-update-environment.json")).unwrap();
    let unrouted: serde_json::Value = serde_json::from_str(&unrouted).unwrap();
    let events = format!(
        "{}\n{}\n{}\n{}\n",
        serde_json::json!({ "at": "2026-11-23T07:02:00Z", "event": session }),
        serde_json::json!({ "at": "2026-11-23T07:03:00Z", "event": export }),
        serde_json::json!({ "at": "2026-11-23T07:04:00Z", "event": request }),
        serde_json::json!({ "at": "2026-11-23T07:05:00Z", "event": unrouted })
    );
    let events_path = std::env::temp_dir().join("autopilot-simulate-events.jsonl");
    std::fs::write(&events_path, events).unwrap();
    opts.events = Some(events_path);
    // WHEN six hours are simulated
    let summary = simulate(&opts).await.expect("simulate");
    // THEN every output exists and the summary keeps its contract
    for file in [
        "calls.jsonl",
        "audit.jsonl",
        "events.jsonl",
        "summary.json",
        "report.md",
        "charts/wspool-sales0001.svg",
        "charts/cost-vs-unserved.svg",
    ] {
        assert!(opts.out.join(file).exists(), "{file} missing");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(opts.out.join("summary.json")).unwrap()).unwrap();
    for key in [
        "capacity_hours",
        "served_session_minutes",
        "session_requests",
        "unserved_session_requests",
        "unserved_session_minutes",
        "actions",
        "api_calls",
    ] {
        assert!(json["totals"].get(key).is_some(), "totals.{key}");
        assert!(json["baselines"]["static"].get(key).is_some(), "baselines.static.{key}");
        assert!(json["baselines"]["schedule_only"].get(key).is_some());
        assert!(json["baselines"]["reactive"].get(key).is_some(), "baselines.reactive.{key}");
        assert!(json["baselines"]["instant"].get(key).is_some(), "baselines.instant.{key}");
        assert!(json["baselines"]["oracle"].get(key).is_some(), "baselines.oracle.{key}");
        for run in json["baselines"]["aas_target_tracking"].as_array().expect("AAS runs") {
            assert!(run.get(key).is_some() && run.get("target_percent").is_some(), "aas_target_tracking.{key}");
        }
        assert!(json["resources"][0].get(key).is_some());
    }
    // Application Auto Scaling ran at each target: a higher target runs less capacity and serves no more users
    let aas = &summary.baselines.aas_target_tracking;
    assert_eq!(aas.iter().map(|r| r.target_percent).collect::<Vec<_>>(), vec![60, 75, 90]);
    for pair in aas.windows(2) {
        assert!(pair[0].figures.capacity_hours >= pair[1].figures.capacity_hours, "{aas:#?}");
        assert!(pair[0].figures.unserved_session_minutes <= pair[1].figures.unserved_session_minutes, "{aas:#?}");
    }
    // The floor (capacity exactly at demand, no start-up delay) is below every scaler's capacity, with next to no
    // unserved demand; the demo policy is predictive, so its reactive twin ran too.
    let floor = &summary.baselines.instant;
    let reactive = summary.baselines.reactive.as_ref().expect("the reactive twin ran");
    for run in [&summary.totals, reactive, &aas[0].figures, &aas[1].figures, &aas[2].figures] {
        assert!(floor.capacity_hours < run.capacity_hours, "{floor:?} vs {run:?}");
    }
    assert!(floor.unserved_share() < 0.01, "{floor:?}");
    // The lead-time oracle serves at least as well as AAS at 75%, at the quantile it found
    let oracle = summary.baselines.oracle.as_ref().expect("the oracle ran against AAS at 75%");
    assert!(json["baselines"]["oracle"]["z"].is_number());
    assert!(oracle.figures.unserved_session_requests <= aas[1].figures.unserved_session_requests, "{oracle:?}");
    assert!(summary.runs().iter().any(|(name, _)| name == "lead-time oracle"));
    assert!(summary.runs().iter().any(|(name, _)| name == "pool-scaler reactive"));
    for latency in [&json["detection_latency"], &json["baselines"]["aas_target_tracking"][1]["detection_latency"]] {
        for key in ["answered", "unanswered", "p50_seconds", "p95_seconds", "max_seconds"] {
            assert!(latency.get(key).is_some(), "detection_latency.{key}: {latency}");
        }
    }
    let svg = std::fs::read_to_string(opts.out.join("charts/wspool-sales0001.svg")).unwrap();
    assert!(svg.contains("AAS capacity") && svg.contains("pool-scaler unserved"), "ours and AAS on one time axis");
    assert!(json["resources"][0].get("id").is_some() && json["resources"][0].get("service").is_some());
    assert_eq!(summary.ticks, 72);
    assert!(summary.failed_invocations.is_empty(), "{:?}", summary.failed_invocations);
    assert_eq!((summary.events_delivered, summary.events_not_routed), (3, 1));
    // the export was created and chased to COMPLETED within the six hours
    assert_eq!(summary.exports.len(), 1, "{:#?}", summary.exports);
    assert!(summary.exports[0].outcome.starts_with("COMPLETED ami-"), "{:?}", summary.exports);
    assert_eq!(summary.exports[0].attempts, 2, "the timed-out attempt was retried (the request allows two)");
    // the session notification reconciled only its fleet: a DescribeFleets by name at 07:02, and no listing of
    // every fleet between ticks (the simulated users' own session events reconcile their fleet or directory)
    let calls: Vec<serde_json::Value> = std::fs::read_to_string(opts.out.join("calls.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let at_0702: Vec<_> = calls.iter().filter(|c| c["at"] == "2026-11-23T07:02:00Z").collect();
    assert!(
        at_0702.iter().any(|c| c["operation"] == "DescribeFleets"
            && c["parameters"]["Names"] == serde_json::json!(["engineering-fleet"])),
        "{at_0702:?}"
    );
    let off_tick = |c: &&serde_json::Value| {
        !c["at"].as_str().unwrap_or_default().ends_with("0:00Z")
            && !c["at"].as_str().unwrap_or_default().ends_with("5:00Z")
    };
    let between_ticks: Vec<_> = calls.iter().filter(off_tick).filter(|c| c["operation"] == "DescribeFleets").collect();
    assert!(between_ticks.iter().all(|c| c["parameters"]["Names"].as_array().is_some_and(|n| n.len() == 1)));
    // the users' sessions made events, delivered the minute they happened: the pool-scaler scaled between ticks
    assert!(summary.session_events > 100, "{}", summary.session_events);
    assert!(
        calls.iter().filter(off_tick).any(|c| c["caller"] == "pool-scaler"
            && matches!(c["operation"].as_str(), Some("UpdateFleet" | "UpdateWorkspacesPool"))),
        "no scaling call between ticks"
    );

    // AND the builder-scheduler ran on the same ticks (06:00–12:00 Berlin): the golden builder started for the
    // working day (prewarm 06:30 Berlin), the forgotten one (first seen running at 05:00 UTC) stopped after
    // max_runtime 4h with a warning, the snapshotting one's off-hours stop deferred with its reason
    let builder = |name: &str| summary.builders.builders.iter().find(|b| b.name == name).unwrap().clone();
    let golden = builder("golden-builder");
    assert_eq!((golden.starts, golden.stops), (1, 0));
    let forgotten = builder("forgotten-builder");
    assert_eq!((forgotten.starts, forgotten.stops, forgotten.stop_warnings), (0, 1, 1));
    assert!((forgotten.baseline_hours - 6.0).abs() < 1e-9 && forgotten.hours_saved > 1.9, "{forgotten:?}");
    let snapshotting = builder("snapshotting-builder");
    assert_eq!(snapshotting.deferrals.len(), 1, "{snapshotting:?}");
    assert!(snapshotting.deferrals[0].reason.contains("SNAPSHOTTING"));
    assert_eq!(builder("unmanaged-builder").running_hours, 0.0);
    // (over six hours the schedule's early start of the golden builder costs more than the stop saves)
    let total: f64 = summary.builders.builders.iter().map(|b| b.hours_saved).sum();
    assert!((json["builders"]["hours_saved"].as_f64().unwrap() - total).abs() < 1e-9);
    let report = std::fs::read_to_string(opts.out.join("report.md")).unwrap();
    assert!(report.contains("## Image builders") && report.contains("Deferred stops:"), "{report}");
    assert!(report.contains("## Image exports and imports"), "{report}");
    // the Thin Client section: the rollout chart per ring and the service's end of support
    assert!(opts.out.join("charts/rollout.svg").exists());
    assert!(report.contains("## WorkSpaces Thin Client") && report.contains("2027-03-31"), "{report}");
    // the remediator: bob's WorkSpace (unhealthy since 01:00, a reboot cures it) is rebooted at the first tick;
    // carol's needs a rebuild, which the default selection does not allow: two reboots, then one escalation
    let health = &summary.workspaces;
    assert_eq!(health.workspaces, 144);
    assert!(health.reboots >= 3, "{health:?}");
    assert_eq!(health.escalations.get("unremedied"), Some(&1), "{health:?}");
    assert!(health.unhealthy_hours < health.baseline_unhealthy_hours, "{health:?}");
    assert!(report.contains("## WorkSpaces health"), "{report}");
    assert!(json["workspaces"]["baseline_unhealthy_hours"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn bad_input_files_are_named_with_path_and_reason() {
    let dir = std::env::temp_dir().join("autopilot-simulate-bad");
    std::fs::create_dir_all(&dir).unwrap();
    let bad_policy = dir.join("policy.yaml");
    std::fs::write(
        &bad_policy,
        "version: 1\nschedules:\n  s:\n    periods: [{ days: [mon], start: '07:00', end: '25:00' }]\n",
    )
    .unwrap();
    let mut opts = options("autopilot-simulate-bad-out");
    opts.policy = bad_policy.clone();
    let error = simulate(&opts).await.unwrap_err().to_string();
    assert!(
        error.contains("policy.yaml") && error.contains("schedules.s.periods[0].end: 25:00 is not a time of day"),
        "{error}"
    );

    let bad_events = dir.join("events.jsonl");
    std::fs::write(&bad_events, "{\"at\": \"2026-11-23T07:00:00Z\", \"event\": {\"source\": \"x\"}}\n").unwrap();
    let mut opts = options("autopilot-simulate-bad-out");
    opts.events = Some(bad_events);
    let error = simulate(&opts).await.unwrap_err().to_string();
    assert!(error.contains("events.jsonl:1") && error.contains("detail-type"), "{error}");

    let mut opts = options("autopilot-simulate-bad-out");
    opts.estate = dir.join("missing.yaml");
    assert!(simulate(&opts).await.unwrap_err().to_string().contains("missing.yaml: cannot read"));
}

/// Successful mutating calls to the EUC services in a run's `calls.jsonl`: per resource, its operations in
/// order (calls of different operations run in parallel lanes, so only each resource's order is fixed).
fn mutations(out: &std::path::Path) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut by_resource: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    for c in std::fs::read_to_string(out.join("calls.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|c| c["outcome"] == "ok" && c["service"] != "eventbridge")
        .filter(|c| autopilot_tests::is_mutating(c["operation"].as_str().unwrap()))
    {
        let resource = c["resource"].as_str().unwrap_or_default().to_owned();
        by_resource.entry(resource).or_default().push(c["operation"].as_str().unwrap().to_owned());
    }
    by_resource
}

#[tokio::test(flavor = "multi_thread")]
async fn redelivered_ticks_and_events_change_nothing() {
    // GIVEN six hours of the demo, once as delivered and once with half of every delivery duplicated
    let once = options("autopilot-simulate-once");
    let mut twice = options("autopilot-simulate-redelivered");
    twice.redeliver = 0.5;
    // WHEN both are simulated
    let plain = simulate(&once).await.expect("simulate");
    let redelivered = simulate(&twice).await.expect("simulate with duplicates");
    // THEN duplicates were delivered, and the same calls were made with the same results
    eprintln!("{} duplicate deliveries", redelivered.redelivered);
    assert!(redelivered.redelivered > 20, "{} duplicates", redelivered.redelivered);
    let (a, b) = (mutations(&once.out), mutations(&twice.out));
    assert!(!a.is_empty(), "the demo acts in six hours");
    assert_eq!(a, b, "the same mutating calls, each resource's in the same order");
    assert_eq!(plain.totals.actions, redelivered.totals.actions);
    assert_eq!(plain.totals.capacity_hours, redelivered.totals.capacity_hours);
    assert!(
        redelivered.failed_invocations.iter().all(|f| !f.contains("InvalidInput")),
        "{:?}",
        redelivered.failed_invocations
    );
}

/// Operations whose audit record names the resource the call names (its last key segment = the call's id).
const AUDITED_BY_ID: [&str; 10] = [
    "RebootWorkspaces",
    "RebuildWorkspaces",
    "UpdateFleet",
    "StartFleet",
    "StopFleet",
    "UpdateWorkspacesPool",
    "StartWorkspacesPool",
    "StopWorkspacesPool",
    "StartImageBuilder",
    "StopImageBuilder",
];

/// (operation, id) of every item a function's successful mutating call changed (batch items reported failed
/// excluded), counted.
fn changed_items(out: &std::path::Path) -> std::collections::BTreeMap<(String, String), u32> {
    let mut items = std::collections::BTreeMap::new();
    for c in read_jsonl(&out.join("calls.jsonl")) {
        let operation = c["operation"].as_str().unwrap_or_default().to_owned();
        let by_a_function = c["caller"].as_str().is_some_and(|caller| {
            ["pool-scaler", "builder-scheduler", "export-chaser", "softwareset-roller", "remediator"].contains(&caller)
        });
        if c["outcome"] != "ok" || !by_a_function || !AUDITED_BY_ID.contains(&operation.as_str()) {
            continue;
        }
        let failed: Vec<&str> =
            c["failed_items"].as_array().map(|f| f.iter().filter_map(|i| i.as_str()).collect()).unwrap_or_default();
        for id in c["resource"].as_str().unwrap_or_default().split(',').filter(|id| !failed.contains(id)) {
            *items.entry((operation.clone(), id.to_owned())).or_insert(0) += 1;
        }
    }
    items
}

/// (action, id) of every `applied` audit record of those operations, counted.
fn applied_records(out: &std::path::Path) -> std::collections::BTreeMap<(String, String), u32> {
    let mut records = std::collections::BTreeMap::new();
    for r in read_jsonl(&out.join("audit.jsonl")) {
        let action = r["action"].as_str().unwrap_or_default().to_owned();
        if r["outcome"] != "applied" || !AUDITED_BY_ID.contains(&action.as_str()) {
            continue;
        }
        let id = r["resource"].as_str().unwrap_or_default().rsplit('#').next().unwrap_or_default().to_owned();
        *records.entry((action, id)).or_insert(0) += 1;
    }
    records
}

fn read_jsonl(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_applied_record_has_its_call_and_every_call_its_record_under_redelivery_and_batch_failures() {
    // GIVEN the demo estate with half of RebootWorkspaces items failing, and half of all deliveries duplicated:
    // a failed reboot is retried by the redelivery of the same event at the same instant
    let dir = std::env::temp_dir().join("autopilot-simulate-applied");
    std::fs::create_dir_all(&dir).unwrap();
    let mut estate: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(root().join("sim/estates/demo.yaml")).unwrap()).unwrap();
    estate["faults"]["batch_failure_rate"]["RebootWorkspaces"] = serde_yaml_ng::Value::from(0.5);
    let estate_path = dir.join("estate.yaml");
    std::fs::write(&estate_path, serde_yaml_ng::to_string(&estate).unwrap()).unwrap();
    let mut opts = options("autopilot-simulate-applied/out");
    opts.estate = estate_path;
    opts.from = DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z").unwrap().with_timezone(&Utc);
    opts.to = opts.from + Duration::hours(24);
    opts.redeliver = 0.5;
    // WHEN a day is simulated
    let summary = simulate(&opts).await.expect("simulate");
    // THEN some reboot items failed and were retried, and the audit holds exactly the calls that happened
    let failed_items: usize = read_jsonl(&opts.out.join("calls.jsonl"))
        .iter()
        .filter(|c| c["operation"] == "RebootWorkspaces")
        .map(|c| c["failed_items"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(failed_items > 0 && summary.redelivered > 0, "{failed_items} failed items");
    let (calls, applied) = (changed_items(&opts.out), applied_records(&opts.out));
    assert!(calls.keys().any(|(op, _)| op == "RebootWorkspaces"), "{calls:?}");
    assert_eq!(calls, applied, "successful calls (per item) and applied audit records, one to one");
    let rebooted: u32 = calls.iter().filter(|((op, _), _)| op == "RebootWorkspaces").map(|(_, n)| n).sum();
    assert_eq!(summary.workspaces.reboots, u64::from(rebooted), "the summary counts what the call log shows");
}

#[tokio::test(flavor = "multi_thread")]
async fn people_change_the_estate_and_the_functions_see_it_in_the_estates_account_and_region() {
    // GIVEN the demo estate in another account and region, the engineering rule enforcing its capacity, and two
    // people: bob sets the engineering fleet to 29 at 10:02 Berlin, alice tags the call-center fleet skip at 10:32
    let dir = std::env::temp_dir().join("autopilot-simulate-people");
    std::fs::create_dir_all(&dir).unwrap();
    let (account, region) = ("210987654321", "us-west-2");
    let mut estate: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(root().join("sim/estates/demo.yaml")).unwrap()).unwrap();
    estate["account"] = serde_yaml_ng::Value::from(account);
    estate["region"] = serde_yaml_ng::Value::from(region);
    let estate_path = dir.join("estate.yaml");
    std::fs::write(&estate_path, serde_yaml_ng::to_string(&estate).unwrap()).unwrap();
    let policy: String = std::fs::read_to_string(root().join("sim/estates/demo-policy.yaml"))
        .unwrap()
        .lines()
        .map(|line| match line.starts_with("    in_hours:  { min: 4, max: 30,") {
            true => format!("{line}\n    enforce: true\n"),
            false => format!("{line}\n"),
        })
        .collect();
    assert!(policy.contains("enforce: true"));
    let policy_path = dir.join("policy.yaml");
    std::fs::write(&policy_path, policy).unwrap();
    let fleet_arn = format!("arn:aws:appstream:{region}:{account}:fleet/callcenter-multi");
    let events = [
        serde_json::json!({ "at": "2026-11-23T09:02:00Z", "call": { "person": "bob", "service": "appstream",
            "operation": "UpdateFleet",
            "parameters": { "Name": "engineering-fleet", "ComputeCapacity": { "DesiredInstances": 29 } } } }),
        serde_json::json!({ "at": "2026-11-23T09:32:00Z", "call": { "service": "appstream",
            "operation": "TagResource", "parameters": { "ResourceArn": fleet_arn, "Tags": { "autopilot/skip": "true" } } } }),
    ];
    let events_path = dir.join("events.jsonl");
    std::fs::write(&events_path, events.iter().map(|e| format!("{e}\n")).collect::<String>()).unwrap();
    let mut opts = options("autopilot-simulate-people/out");
    opts.estate = estate_path;
    opts.policy = policy_path;
    opts.events = Some(events_path);
    opts.from = DateTime::parse_from_rfc3339("2026-11-23T08:00:00Z").unwrap().with_timezone(&Utc);
    opts.to = opts.from + Duration::hours(3);
    // WHEN three hours are simulated
    let summary = simulate(&opts).await.expect("simulate");
    assert!(summary.failed_invocations.is_empty(), "{:?}", summary.failed_invocations);
    let calls = read_jsonl(&opts.out.join("calls.jsonl"));
    // THEN bob's change happened, by bob, and the pool-scaler reverted it (enforce), after it
    let on_engineering: Vec<&serde_json::Value> = calls
        .iter()
        .filter(|c| c["operation"] == "UpdateFleet" && c["resource"] == "engineering-fleet")
        .filter(|c| c["at"].as_str().unwrap() >= "2026-11-23T09:02:00Z")
        .collect();
    assert_eq!(on_engineering[0]["caller"], "person:bob", "{on_engineering:#?}");
    assert_eq!(on_engineering[0]["parameters"]["ComputeCapacity"]["DesiredInstances"], 29);
    let revert = on_engineering.iter().find(|c| c["caller"] == "pool-scaler").expect("reverted");
    assert_ne!(revert["parameters"]["ComputeCapacity"]["DesiredInstances"], 29, "{revert}");
    // alice's tag took effect at her time: the call-center fleet is held from then on, and the audit says why
    let tagged = calls.iter().find(|c| c["operation"] == "TagResource").expect("tagged");
    assert_eq!(tagged["caller"], "person:alice");
    let audit = read_jsonl(&opts.out.join("audit.jsonl"));
    let key = format!("appstream#{account}#{region}#fleet#callcenter-multi");
    let hold = audit.iter().find(|r| r["resource"] == key.as_str() && r["action"] == "Hold").expect("held");
    assert!(
        hold["reason"].as_str().unwrap().contains("skip") && hold["at"].as_str().unwrap() >= "2026-11-23T09:32:00Z"
    );
    assert!(
        calls.iter().filter(|c| c["resource"] == "callcenter-multi" && c["caller"] == "pool-scaler").all(|c| c["at"]
            .as_str()
            .unwrap()
            < "2026-11-23T09:32:00Z"
            || !autopilot_tests::is_mutating(c["operation"].as_str().unwrap())),
        "nothing changed the held fleet after the tag"
    );
    // every key is in the estate's account and region
    assert!(
        audit.iter().all(|r| r["resource"].as_str().unwrap().contains(&format!("#{account}#{region}#"))),
        "{audit:#?}"
    );
}

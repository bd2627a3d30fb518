//! Huge and deeply nested inputs, built at run time rather than committed: strings of 1 MiB, objects of 100,000
//! fields, ids over DynamoDB's key size, nesting far beyond `serde_json`'s limit, for both parsers.

use super::json_tree::{Nesting, depth, nested};
use super::judge::{Expect, Tally, guarded, judge_event, judge_policy};
use super::{DEEP, Figures, HUGE, REFUSED_DEPTH};
use autopilot_shared::events;
use autopilot_shared::policy::Policy;
use serde_json::{Value, json};
use std::path::Path;

pub(super) fn read_sample(root: &Path, name: &str) -> Value {
    events::read_sample(&root.join("events").join(name))
}

/// Huge and deeply nested events, built here rather than committed.
pub(super) fn generated_events(root: &Path, figures: &mut Figures) {
    let huge = "x".repeat(HUGE);
    let deep_text = |depth: usize, open: &str, close: &str| format!("{}{}", open.repeat(depth), close.repeat(depth));

    let mut cases: Vec<(&str, Value, &str)> = Vec::new();
    let mut tick = read_sample(root, "scheduled-tick-rule.json");
    tick["detail-type"] = Value::String(format!("Scheduled Event{huge}"));
    cases.push(("huge-string-1mb-detail-type", tick, "detail-type: \"Scheduled Event"));
    let mut rollout = read_sample(root, "command-rollout-requested.json");
    rollout["detail"][huge.as_str()] = json!(true);
    cases.push(("huge-string-1mb-unknown-command-field", rollout, "unknown field `xxxx"));
    let mut pool = read_sample(root, "cloudtrail-update-workspaces-pool.json");
    pool["detail"]["requestParameters"]["capacity"]["desiredUserSessions"] = Value::String(huge.clone());
    cases.push((
        "huge-string-1mb-wrong-type",
        pool,
        "detail.requestParameters.capacity.desiredUserSessions: invalid type: string",
    ));
    let mut call = read_sample(root, "cloudtrail-stop-fleet.json");
    call["detail"]["eventName"] = Value::String(huge.clone());
    cases.push(("huge-string-1mb-event-name", call, "detail.eventName: xxxx"));
    let mut wide = read_sample(root, "command-remediation-requested.json");
    if let Some(detail) = wide["detail"].as_object_mut() {
        detail.extend((0..100_000).map(|i| (format!("field{i:06}"), json!(i))));
    }
    cases.push(("wide-object-100k-fields-in-command", wide, "unknown field `field"));
    let mut resources = read_sample(root, "scheduled-tick-rule.json");
    resources["resources"] = Value::Array((0..100_000).map(|i| json!(i)).collect());
    cases.push(("wide-array-100k-numbers-as-resources", resources, "resources[0]: invalid type: integer"));
    // Names and ids that would become ledger keys over DynamoDB's 2 KB (an outage to the ledger: Retryable).
    let mut long_id = read_sample(root, "command-rollout-paused.json");
    long_id["id"] = Value::String("i".repeat(300));
    cases.push(("oversized-event-id", long_id, "id: is 300 bytes long"));
    let mut long_pool = read_sample(root, "cloudtrail-start-workspaces-pool.json");
    long_pool["detail"]["requestParameters"]["poolId"] = Value::String("w".repeat(2_000));
    cases.push(("oversized-cloudtrail-pool-id", long_pool, "detail.requestParameters.poolId: is 2000 bytes long"));
    let mut long_region = read_sample(root, "scheduled-tick-rule.json");
    long_region["region"] = Value::String("r".repeat(2_000));
    cases.push(("oversized-region", long_region, "region: is 2000 bytes long"));
    let mut long_alarm = read_sample(root, "cloudwatch-alarm-state-change.json");
    long_alarm["detail"]["alarmName"] = Value::String("a".repeat(2_000));
    cases.push(("oversized-alarm-name", long_alarm, "detail.alarmName: is 2000 bytes long"));
    let mut long_reason = read_sample(root, "command-remediation-requested.json");
    long_reason["detail"]["reason"] = Value::String("r".repeat(5_000));
    cases.push(("oversized-command-reason", long_reason, "detail.reason: the value is 5000 bytes long"));
    // A value nested beyond serde_json's limit: Lambda cannot deliver one, the parser must still cope.
    let mut deep_command = read_sample(root, "command-rollout-paused.json");
    deep_command["detail"]["nested"] = nested(DEEP, Nesting::Arrays, Value::Null);
    cases.push(("deep-value-10000-arrays-in-command", deep_command, "detail.nested: unknown field `nested`"));
    let mut deep_tick = read_sample(root, "scheduled-tick-scheduler.json");
    deep_tick["detail"] = nested(DEEP, Nesting::Objects, json!({}));
    cases.push(("deep-value-10000-objects-as-tick-detail", deep_tick, "detail.a: unknown field `a`"));
    for (name, event, wanted) in cases {
        figures.generated_cases += 1;
        let label = format!("generated/{name} (value)");
        let outcome = guarded(|| events::parse(event.clone()));
        judge_event(figures, &label, outcome, Expect::Reject(Some(wanted)), Tally::Events);
        // The same event as the bytes Lambda would receive.
        match serde_json::to_vec(&event) {
            Ok(bytes) => {
                let wanted = if depth(&event) >= REFUSED_DEPTH { "not JSON: recursion limit exceeded" } else { wanted };
                let label = format!("generated/{name} (bytes)");
                let outcome = guarded(|| events::parse_slice(&bytes));
                judge_event(figures, &label, outcome, Expect::Reject(Some(wanted)), Tally::Nothing);
            }
            Err(error) => figures.corpus_problem(format!("generated/{name}: cannot serialise: {error}")),
        }
    }

    let envelope = |detail: &str| {
        format!(
            r#"{{"version":"0","id":"deep","detail-type":"Rollout Paused","source":"euc.autopilot","time":"2026-11-23T06:00:00Z","detail":{detail}}}"#
        )
    };
    let texts: Vec<(&str, String, &str)> = vec![
        ("deep-text-10000-arrays", deep_text(DEEP, "[", "]"), "not JSON: recursion limit exceeded"),
        (
            "deep-text-10000-objects-in-detail",
            envelope(&deep_text(DEEP, "{\"a\":", "}")),
            "not JSON: recursion limit exceeded",
        ),
        (
            "deep-text-129-arrays-in-detail",
            envelope(&format!("{{\"a\":{}}}", deep_text(129, "[", "]"))),
            "not JSON: recursion limit exceeded",
        ),
        // Within the limit: parsed as JSON, then refused by the command's own rules.
        (
            "deep-text-100-arrays-in-detail",
            envelope(&format!("{{\"a\":{}}}", deep_text(100, "[", "]"))),
            "detail.a: unknown field `a`",
        ),
        ("huge-text-1mb-whitespace", format!("{}{{}}", " ".repeat(HUGE)), "source: missing or not a string"),
    ];
    for (name, text, wanted) in texts {
        figures.generated_cases += 1;
        let outcome = guarded(|| events::parse_slice(text.as_bytes()));
        judge_event(figures, &format!("generated/{name}"), outcome, Expect::Reject(Some(wanted)), Tally::Events);
    }
}

/// Huge and deeply nested policy documents, built here rather than committed.
pub(super) fn generated_policies(figures: &mut Figures) {
    let huge = "x".repeat(HUGE);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "huge-string-1mb-timezone",
            format!("version: 1\ndefaults: {{ timezone: {huge} }}\n"),
            "defaults.timezone: xxxx",
        ),
        (
            "huge-string-1mb-duration",
            format!("version: 1\nexports: {{ max_duration: \"{huge}\" }}\n"),
            "exports.max_duration: \"xxxx",
        ),
        // An implicit key is at most 1024 characters to the YAML scanner; an explicit one (`? key`) has no limit.
        ("huge-string-1mb-implicit-key", format!("version: 1\n{huge}: 1\n"), "could not find expected ':'"),
        ("huge-string-1mb-explicit-key", format!("version: 1\n? {huge}\n: 1\n"), "unknown field `xxxx"),
        // Nested where the deserializer descends without a type to stop it (an untagged enum buffers first).
        (
            "deep-flow-10000-sequences",
            format!("version: 1\nschedules:\n  s:\n    holidays: {}{}\n", "[".repeat(DEEP), "]".repeat(DEEP)),
            "nested more than 64 deep",
        ),
        (
            "deep-block-200-mappings",
            format!(
                "version: 1\nschedules:\n  s:\n    holidays:\n{}",
                (3..=200).map(|i| format!("{}a:\n", "  ".repeat(i))).collect::<String>()
            ),
            "schedules.s",
        ),
        (
            "wide-10000-schedules",
            format!(
                "version: 1\nschedules:\n{}",
                (0..10_000).map(|i| format!("  s{i}: {{ periods: [] }}\n")).collect::<String>()
            ),
            "schedules.s0.periods: needs at least one period",
        ),
    ];
    for (name, text, wanted) in cases {
        let outcome = guarded(|| Policy::from_yaml(&text));
        judge_policy(figures, &format!("generated/{name}"), outcome, Expect::Reject(Some(wanted)));
    }
}

//! `template.yaml` agrees with the code: each function's EventBridge rules are exactly those in its
//! `routing.rs`, and the ledger table has the key schema, index and TTL of `shared/src/ledger/keys.rs`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use autopilot_shared::events::Rule;
use autopilot_shared::ledger::keys;
use serde_yaml_ng::Value;

fn template() -> Value {
    let text =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).expect("template.yaml parses (long-form intrinsic functions only)")
}

fn strings(value: &Value) -> Vec<String> {
    value.as_sequence().map(|s| s.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

/// Every function resource with the rules its code routes.
const FUNCTIONS: [(&str, &[Rule]); 5] = [
    ("PoolScalerFunction", &pool_scaler::routing::EVENT_RULES),
    ("BuilderSchedulerFunction", &builder_scheduler::routing::EVENT_RULES),
    ("ExportChaserFunction", &export_chaser::routing::EVENT_RULES),
    ("SoftwareSetRollerFunction", &softwareset_roller::routing::EVENT_RULES),
    ("RemediatorFunction", &remediator::routing::EVENT_RULES),
];

/// Mutating actions AWS defines without a resource type: `Resource: "*"` is the only possible scope.
const WITHOUT_RESOURCE_TYPE: [&str; 1] = ["appstream:CreateExportImageTask"];

#[test]
fn every_functions_rules_match_its_routing_table() {
    let template = template();
    for (function, code_rules) in FUNCTIONS {
        let events = template["Resources"][function]["Properties"]["Events"].as_mapping().unwrap();
        let rules: Vec<(&str, &Value)> = events
            .iter()
            .filter(|(_, v)| v["Type"] == "EventBridgeRule")
            .map(|(k, v)| (k.as_str().unwrap(), v))
            .collect();
        assert_eq!(rules.len(), code_rules.len(), "{function}");
        for rule in code_rules {
            let (_, declared) = rules
                .iter()
                .find(|(name, _)| *name == rule.name)
                .unwrap_or_else(|| panic!("{} missing from template.yaml", rule.name));
            let pattern = &declared["Properties"]["Pattern"];
            assert_eq!(strings(&pattern["source"]), [rule.source], "{}", rule.name);
            assert_eq!(strings(&pattern["detail-type"]), [rule.detail_type], "{}", rule.name);
            assert_eq!(strings(&pattern["detail"]["eventName"]), rule.event_names, "{}", rule.name);
            // our own commands arrive on the project bus, AWS events on the default bus
            let on_project_bus = declared["Properties"]["EventBusName"]["Ref"].as_str() == Some("EventBus");
            assert_eq!(on_project_bus, rule.source == autopilot_shared::events::AUTOPILOT_SOURCE, "{}", rule.name);
            assert!(declared["Properties"]["DeadLetterConfig"].is_mapping(), "{} needs a dead-letter queue", rule.name);
            assert!(declared["Properties"]["RetryPolicy"].is_mapping(), "{} needs an explicit retry policy", rule.name);
        }
        let tick = &events.get("Tick").unwrap_or_else(|| panic!("{function} has no schedule"))["Properties"];
        assert!(tick["RetryPolicy"].is_mapping() && tick["DeadLetterConfig"].is_mapping(), "{function} tick");
    }
}

#[test]
fn the_ledger_table_matches_the_key_schema_in_code() {
    let template = template();
    let table = &template["Resources"]["LedgerTable"]["Properties"];
    let key = |schema: &Value, kind: &str| {
        schema
            .as_sequence()
            .unwrap()
            .iter()
            .find(|k| k["KeyType"] == kind)
            .map(|k| k["AttributeName"].as_str().unwrap().to_owned())
    };
    assert_eq!(key(&table["KeySchema"], "HASH").as_deref(), Some(keys::PK));
    assert_eq!(key(&table["KeySchema"], "RANGE").as_deref(), Some(keys::SK));
    let gsi = &table["GlobalSecondaryIndexes"][0];
    assert_eq!(gsi["IndexName"].as_str(), Some(keys::GSI1));
    assert_eq!(key(&gsi["KeySchema"], "HASH").as_deref(), Some(keys::GSI1_PK));
    assert_eq!(key(&gsi["KeySchema"], "RANGE").as_deref(), Some(keys::GSI1_SK));
    assert_eq!(table["TimeToLiveSpecification"]["AttributeName"].as_str(), Some(keys::TTL));
    assert_eq!(table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(), Some(true));
    assert_eq!(table["SSESpecification"]["SSEEnabled"].as_bool(), Some(true));
}

#[test]
fn function_policies_have_no_wildcard_actions_and_scoped_mutations() {
    let template = template();
    for (function, _) in FUNCTIONS {
        let statements =
            template["Resources"][function]["Properties"]["Policies"][0]["Statement"].as_sequence().unwrap().clone();
        // a conditional statement (`Fn::If: [condition, statement, AWS::NoValue]`) is checked as its statement
        let statements: Vec<Value> = statements
            .iter()
            .map(|s| s.get("Fn::If").and_then(|branches| branches.get(1)).cloned().unwrap_or_else(|| s.clone()))
            .collect();
        for statement in &statements {
            let actions = match &statement["Action"] {
                Value::String(action) => vec![action.clone()],
                other => strings(other),
            };
            for action in &actions {
                assert!(!action.contains('*'), "{function}: wildcard action {action}");
                let operation = action.split(':').nth(1).unwrap_or_default();
                let read_only = ["Describe", "List", "Get", "Query"].iter().any(|p| operation.starts_with(p));
                if statement["Resource"] == "*" {
                    assert!(
                        read_only || WITHOUT_RESOURCE_TYPE.contains(&action.as_str()),
                        "{function}: {action} is not read-only but has Resource *"
                    );
                }
                if action == "iam:PassRole" {
                    assert_eq!(
                        statement["Resource"]["Ref"].as_str(),
                        Some("ExportRoleArns"),
                        "{function}: PassRole scope"
                    );
                    assert!(statement["Condition"]["StringEquals"]["iam:PassedToService"].is_string());
                }
                assert!(
                    !(operation.starts_with("Terminate")
                        || operation.starts_with("Delete") && !action.starts_with("dynamodb:")),
                    "{function}: {action} is destructive"
                );
            }
        }
    }
    // the dry-run switch defaults to on for a first install
    assert_eq!(template["Parameters"]["DryRun"]["Default"].as_str(), Some("true"));
}

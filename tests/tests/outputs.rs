//! The outcome events the functions send to the project bus: every one has a sample in `events/outputs/`
//! (docs/events.md), every name is one the code sends, and none is delivered back to a function by the
//! EventBridge rules (an outcome named like a command would be taken for one: a loop into the dead-letter
//! queue).

use crate::workspace::root;
use autopilot_functions::Function;
use std::collections::BTreeSet;

/// Every outcome event: the function that sends it and its `detail-type`.
const OUTCOMES: [(&str, &str); 26] = [
    ("pool-scaler", "Capacity Action Failed"),
    ("builder-scheduler", "Image Builder Stop Scheduled"),
    ("builder-scheduler", "Image Builder Failed"),
    ("builder-scheduler", "Image Builder Unexpected State"),
    ("builder-scheduler", "Image Builder Action Failed"),
    ("export-chaser", "Export Completed"),
    ("export-chaser", "Export Failed"),
    ("export-chaser", "Export Stuck"),
    ("export-chaser", "Export Unknown State"),
    ("export-chaser", "Image Import Completed"),
    ("export-chaser", "Image Import Failed"),
    ("export-chaser", "Image Import Stuck"),
    ("export-chaser", "Image Import Unknown State"),
    ("softwareset-roller", "Software Set Available"),
    ("softwareset-roller", "Software Set Support Ending"),
    ("softwareset-roller", "Rollout Started"),
    ("softwareset-roller", "Rollout Ring Advanced"),
    ("softwareset-roller", "Rollout Ring Updated"),
    ("softwareset-roller", "Rollout Completed"),
    ("softwareset-roller", "Rollout Halted"),
    ("softwareset-roller", "Rollout Rolled Back"),
    ("softwareset-roller", "Rollout Pause Confirmed"),
    ("softwareset-roller", "Rollout Resume Confirmed"),
    ("softwareset-roller", "Rollout Abort Confirmed"),
    ("remediator", "Remediation Applied"),
    ("remediator", "Escalation"),
];

fn file_name(detail_type: &str) -> String {
    format!("{}.json", detail_type.to_lowercase().replace(' ', "-"))
}

fn samples() -> Vec<(String, serde_json::Value)> {
    let mut found: Vec<(String, serde_json::Value)> = std::fs::read_dir(root().join("events/outputs"))
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let text = std::fs::read_to_string(entry.path()).unwrap();
            (entry.file_name().to_string_lossy().into_owned(), serde_json::from_str(&text).unwrap())
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

#[test]
fn every_outcome_event_has_a_sample_and_every_sample_is_an_outcome() {
    let expected: BTreeSet<String> = OUTCOMES.iter().map(|(_, name)| file_name(name)).collect();
    let on_disk: BTreeSet<String> = samples().into_iter().map(|(name, _)| name).collect();
    assert_eq!(on_disk, expected);
    for (name, event) in samples() {
        assert_eq!(event["source"], autopilot_shared::events::AUTOPILOT_SOURCE, "{name}");
        assert_eq!(file_name(event["detail-type"].as_str().unwrap()), name);
        assert!(event["detail"].is_object() && event["id"].is_string() && event["time"].is_string(), "{name}");
    }
}

#[test]
fn every_outcome_name_is_sent_by_its_function() {
    for (function, detail_type) in OUTCOMES {
        let folder = root().join("functions").join(function).join("src");
        let mut sources = Vec::new();
        let mut pending = vec![folder];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
                if entry.file_type().unwrap().is_dir() {
                    pending.push(entry.path());
                } else {
                    sources.push(std::fs::read_to_string(entry.path()).unwrap());
                }
            }
        }
        let literal = format!("\"{detail_type}\"");
        assert!(sources.iter().any(|s| s.contains(&literal)), "{function} never names {detail_type}");
    }
}

#[test]
fn no_outcome_event_is_delivered_back_to_a_function() {
    for (name, event) in samples() {
        for function in Function::ALL {
            assert!(!function.routes(&event), "{name} would be delivered to {} as an input", function.name());
        }
    }
}

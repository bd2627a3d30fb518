//! Which events reach the remediator. `template.yaml` declares the same EventBridge rules; a test checks that
//! both agree, and `autopilot simulate` routes injected events with [`routes`].

pub use autopilot_shared::events::Rule;
use autopilot_shared::events::{CLOUDTRAIL_DETAIL_TYPE, DetailMatch, Matcher};

/// The default of the template's `RemediationAlarmPrefix`: only alarms named with it reach the remediator
/// (`remediation.alarms` names alarms; `autopilot plan` notes one the stack would never deliver).
pub const ALARM_PREFIX: &str = "euc-";

/// The rules; schedule ticks come from EventBridge Scheduler, not from a rule.
pub const EVENT_RULES: [Rule; 4] = [
    Rule {
        name: "RemediatorRequests",
        source: autopilot_shared::events::AUTOPILOT_SOURCE,
        detail_type: "Remediation Requested",
        event_names: &[],
        detail: &[],
    },
    Rule {
        name: "RemediatorAlarms",
        source: "aws.cloudwatch",
        detail_type: "CloudWatch Alarm State Change",
        event_names: &[],
        // Only alarms going into ALARM whose name starts with the stack's `RemediationAlarmPrefix`: not every
        // alarm of the account (each would be an invocation, competing with the ticks for the function's
        // reserved concurrency).
        detail: &[
            DetailMatch { path: "state.value", is: Matcher::AnyOf(&["ALARM"]) },
            DetailMatch { path: "alarmName", is: Matcher::Prefix(ALARM_PREFIX) },
        ],
    },
    Rule {
        name: "RemediatorMaintenanceCalls",
        source: "aws.workspaces",
        detail_type: CLOUDTRAIL_DETAIL_TYPE,
        event_names: &["ModifyWorkspaceState"],
        detail: &[],
    },
    autopilot_shared::shard_tick_rule!("RemediatorShardTicks", crate::handler::FUNCTION),
];

/// Whether EventBridge would deliver `event` to the remediator through one of its rules.
pub fn routes(event: &serde_json::Value) -> bool {
    autopilot_shared::events::routes(&EVENT_RULES, event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use autopilot_shared::events::{check_samples, read_sample as read};

    #[test]
    fn sample_events_route_as_the_rules_say() {
        let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
        assert!(routes(&read(&events.join("command-remediation-requested.json"))));
        assert!(routes(&read(&events.join("cloudwatch-alarm-state-change.json"))));
        assert!(routes(&read(&events.join("cloudtrail-modify-workspace-state.json"))));
        assert!(!routes(&read(&events.join("cloudtrail-update-workspaces-pool.json"))));
        assert!(!routes(&read(&events.join("command-rollout-requested.json"))));
        // every sample in events/remediator/ parses and reaches the function (ticks come from the schedule)
        let samples = check_samples(&events.join("remediator"), &EVENT_RULES).map_err(|e| e.to_string());
        assert_eq!(samples, Ok(5));
    }
}

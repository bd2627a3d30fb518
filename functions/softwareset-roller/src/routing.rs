//! Which events reach the softwareset-roller. `template.yaml` declares the same EventBridge rules; a test
//! checks that both agree, and `autopilot simulate` routes injected events with [`routes`].

pub use autopilot_shared::events::Rule;

/// The rules; schedule ticks come from EventBridge Scheduler, not from a rule.
pub const EVENT_RULES: [Rule; 6] = [
    Rule {
        name: "SoftwareSetRolloutRequests",
        source: autopilot_shared::events::AUTOPILOT_SOURCE,
        detail_type: "Rollout Requested",
        event_names: &[],
        detail: &[],
    },
    Rule {
        name: "SoftwareSetRolloutPauses",
        source: autopilot_shared::events::AUTOPILOT_SOURCE,
        detail_type: "Rollout Paused",
        event_names: &[],
        detail: &[],
    },
    Rule {
        name: "SoftwareSetRolloutResumes",
        source: autopilot_shared::events::AUTOPILOT_SOURCE,
        detail_type: "Rollout Resumed",
        event_names: &[],
        detail: &[],
    },
    Rule {
        name: "SoftwareSetRolloutAborts",
        source: autopilot_shared::events::AUTOPILOT_SOURCE,
        detail_type: "Rollout Aborted",
        event_names: &[],
        detail: &[],
    },
    // Tag changes mark an environment's cached tags stale.
    Rule {
        name: "SoftwareSetRollerTagChanges",
        source: "aws.thinclient",
        detail_type: autopilot_shared::events::CLOUDTRAIL_DETAIL_TYPE,
        event_names: &["TagResource", "UntagResource"],
        detail: &[],
    },
    autopilot_shared::shard_tick_rule!("SoftwareSetRollerShardTicks", crate::handler::FUNCTION),
];

/// Whether EventBridge would deliver `event` to the softwareset-roller through one of its rules.
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
        for name in ["requested", "paused", "resumed", "aborted"] {
            assert!(routes(&read(&events.join(format!("command-rollout-{name}.json")))), "{name}");
        }
        assert!(!routes(&read(&events.join("command-export-requested.json"))));
        assert!(!routes(&read(&events.join("cloudtrail-update-environment.json"))));
        assert!(routes(&read(&events.join("cloudtrail-tag-resource-environment.json"))));
        assert!(!routes(&read(&events.join("cloudtrail-tag-resource-fleet.json"))));
        // every sample in events/softwareset-roller/ parses and reaches the function (ticks come from the schedule)
        assert_eq!(check_samples(&events.join("softwareset-roller"), &EVENT_RULES).map_err(|e| e.to_string()), Ok(6));
    }
}

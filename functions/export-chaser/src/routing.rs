//! Which events reach the export-chaser. `template.yaml` declares the same EventBridge rules; a test checks
//! that both agree, and `autopilot simulate` routes injected events with [`routes`].

use autopilot_shared::events::CLOUDTRAIL_DETAIL_TYPE;
pub use autopilot_shared::events::Rule;

/// The rules; schedule ticks come from EventBridge Scheduler, not from a rule.
pub const EVENT_RULES: [Rule; 3] = [
    Rule {
        name: "ExportChaserRequests",
        source: autopilot_shared::events::AUTOPILOT_SOURCE,
        detail_type: "Export Requested",
        event_names: &[],
        detail: &[],
    },
    Rule {
        name: "ExportChaserCloudTrail",
        source: "aws.appstream",
        detail_type: CLOUDTRAIL_DETAIL_TYPE,
        event_names: &["CreateExportImageTask", "CreateImportedImage"],
        detail: &[],
    },
    autopilot_shared::shard_tick_rule!("ExportChaserShardTicks", crate::handler::FUNCTION),
];

/// Whether EventBridge would deliver `event` to the export-chaser through one of its rules.
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
        assert!(routes(&read(&events.join("command-export-requested.json"))));
        assert!(routes(&read(&events.join("cloudtrail-create-export-image-task.json"))));
        assert!(routes(&read(&events.join("cloudtrail-create-imported-image.json"))));
        assert!(!routes(&read(&events.join("command-rollout-requested.json"))));
        assert!(!routes(&read(&events.join("cloudtrail-start-image-builder.json"))));
        // every sample in events/export-chaser/ parses and reaches the function (ticks come from the schedule)
        let samples = check_samples(&events.join("export-chaser"), &EVENT_RULES).map_err(|e| e.to_string());
        assert_eq!(samples, Ok(5));
    }
}

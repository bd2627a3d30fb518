//! Which events reach the builder-scheduler. `template.yaml` declares the same EventBridge rules; a test checks
//! that both agree, and `autopilot simulate` routes injected events with [`routes`].

use autopilot_shared::events::CLOUDTRAIL_DETAIL_TYPE;
pub use autopilot_shared::events::Rule;

/// The rules; schedule ticks come from EventBridge Scheduler, not from a rule.
pub const EVENT_RULES: [Rule; 3] = [
    Rule {
        name: "BuilderSchedulerBuilderCalls",
        source: "aws.appstream",
        detail_type: CLOUDTRAIL_DETAIL_TYPE,
        event_names: &["StartImageBuilder", "StopImageBuilder", "CreateImageBuilder", "CreateImage"],
        detail: &[],
    },
    // Tag changes mark a builder's cached tags stale.
    Rule {
        name: "BuilderSchedulerTagChanges",
        source: "aws.appstream",
        detail_type: CLOUDTRAIL_DETAIL_TYPE,
        event_names: &["TagResource", "UntagResource"],
        detail: &[],
    },
    autopilot_shared::shard_tick_rule!("BuilderSchedulerShardTicks", crate::handler::FUNCTION),
];

/// Whether EventBridge would deliver `event` to the builder-scheduler through one of its rules.
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
        assert!(routes(&read(&events.join("cloudtrail-start-image-builder.json"))));
        assert!(routes(&read(&events.join("cloudtrail-stop-image-builder.json"))));
        assert!(routes(&read(&events.join("cloudtrail-create-image-builder.json"))));
        assert!(routes(&read(&events.join("cloudtrail-tag-resource-fleet.json"))), "a fleet's: ignored by the handler");
        assert!(!routes(&read(&events.join("cloudtrail-create-tags-pool.json"))));
        assert!(!routes(&read(&events.join("cloudtrail-update-fleet.json"))));
        assert!(!routes(&read(&events.join("cloudtrail-create-export-image-task.json"))));
        // every sample in events/builder-scheduler/ parses and reaches the function (ticks come from the schedule)
        let samples = check_samples(&events.join("builder-scheduler"), &EVENT_RULES).map_err(|e| e.to_string());
        assert_eq!(samples, Ok(6));
    }
}

//! Which events reach the builder-scheduler. `template.yaml` declares the same EventBridge rule; a test checks
//! that both agree, and `autopilot simulate` routes injected events with [`routes`].

pub use autopilot_shared::events::Rule;

/// The rules; schedule ticks come from EventBridge Scheduler, not from a rule.
pub const EVENT_RULES: [Rule; 1] = [Rule {
    name: "BuilderSchedulerBuilderCalls",
    source: "aws.appstream",
    detail_type: "AWS API Call via CloudTrail",
    event_names: &["StartImageBuilder", "StopImageBuilder", "CreateImageBuilder", "CreateImage"],
}];

/// Whether EventBridge would deliver `event` to the builder-scheduler through one of its rules.
pub fn routes(event: &serde_json::Value) -> bool {
    autopilot_shared::events::routes(&EVENT_RULES, event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &std::path::Path) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).unwrap_or_default()).unwrap_or_default()
    }

    #[test]
    fn sample_events_route_as_the_rules_say() {
        let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
        assert!(routes(&read(&events.join("cloudtrail-start-image-builder.json"))));
        assert!(routes(&read(&events.join("cloudtrail-stop-image-builder.json"))));
        assert!(routes(&read(&events.join("cloudtrail-create-image-builder.json"))));
        assert!(!routes(&read(&events.join("cloudtrail-update-fleet.json"))));
        assert!(!routes(&read(&events.join("cloudtrail-create-export-image-task.json"))));
        // every sample in events/builder-scheduler/ parses and reaches the function (ticks come from the schedule)
        let mut checked = 0;
        for entry in std::fs::read_dir(events.join("builder-scheduler"))
            .map(|d| d.flatten().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            let event = read(&entry.path());
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(autopilot_shared::events::parse(event.clone()).is_ok(), "{name}");
            assert!(name == "tick.json" || routes(&event), "{name} is not routed to the builder-scheduler");
            checked += 1;
        }
        assert_eq!(checked, 5);
    }
}

//! Which events reach the export-chaser. `template.yaml` declares the same EventBridge rules; a test checks
//! that both agree, and `autopilot simulate` routes injected events with [`routes`].

pub use autopilot_shared::events::Rule;

/// The rules; schedule ticks come from EventBridge Scheduler, not from a rule.
pub const EVENT_RULES: [Rule; 2] = [
    Rule {
        name: "ExportChaserRequests",
        source: autopilot_shared::events::AUTOPILOT_SOURCE,
        detail_type: "Export Requested",
        event_names: &[],
    },
    Rule {
        name: "ExportChaserCloudTrail",
        source: "aws.appstream",
        detail_type: "AWS API Call via CloudTrail",
        event_names: &["CreateExportImageTask", "CreateImportedImage"],
    },
];

/// Whether EventBridge would deliver `event` to the export-chaser through one of its rules.
pub fn routes(event: &serde_json::Value) -> bool {
    autopilot_shared::events::routes(&EVENT_RULES, event)
}

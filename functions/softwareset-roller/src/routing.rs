//! Which events reach the softwareset-roller. `template.yaml` declares the same EventBridge rule; a test
//! checks that both agree, and `autopilot simulate` routes injected events with [`routes`].

pub use autopilot_shared::events::Rule;

/// The rules; schedule ticks come from EventBridge Scheduler, not from a rule.
pub const EVENT_RULES: [Rule; 4] = [
    Rule {
        name: "SoftwareSetRolloutRequests",
        source: autopilot_shared::events::AUTOPILOT_SOURCE,
        detail_type: "Rollout Requested",
        event_names: &[],
    },
    Rule {
        name: "SoftwareSetRolloutPauses",
        source: autopilot_shared::events::AUTOPILOT_SOURCE,
        detail_type: "Rollout Paused",
        event_names: &[],
    },
    Rule {
        name: "SoftwareSetRolloutResumes",
        source: autopilot_shared::events::AUTOPILOT_SOURCE,
        detail_type: "Rollout Resumed",
        event_names: &[],
    },
    Rule {
        name: "SoftwareSetRolloutAborts",
        source: autopilot_shared::events::AUTOPILOT_SOURCE,
        detail_type: "Rollout Aborted",
        event_names: &[],
    },
];

/// Whether EventBridge would deliver `event` to the softwareset-roller through one of its rules.
pub fn routes(event: &serde_json::Value) -> bool {
    autopilot_shared::events::routes(&EVENT_RULES, event)
}

//! Which events reach the pool-scaler. `template.yaml` declares the same EventBridge rules; a test checks that
//! both agree, and `autopilot simulate` routes injected events with [`routes`].

use autopilot_shared::events::CLOUDTRAIL_DETAIL_TYPE;
pub use autopilot_shared::events::Rule;

/// The rules; schedule ticks come from EventBridge Scheduler, not from a rule.
pub const EVENT_RULES: [Rule; 7] = [
    Rule {
        name: "PoolScalerSessionEvents",
        source: "aws.appstream",
        detail_type: "AppStream Session Notification",
        event_names: &[],
        detail: &[],
    },
    Rule {
        name: "PoolScalerAccessEvents",
        source: "aws.workspaces",
        detail_type: "WorkSpaces Access",
        event_names: &[],
        detail: &[],
    },
    Rule {
        name: "PoolScalerPoolChanges",
        source: "aws.workspaces",
        detail_type: CLOUDTRAIL_DETAIL_TYPE,
        event_names: &["UpdateWorkspacesPool", "StartWorkspacesPool", "StopWorkspacesPool"],
        detail: &[],
    },
    Rule {
        name: "PoolScalerFleetChanges",
        source: "aws.appstream",
        detail_type: CLOUDTRAIL_DETAIL_TYPE,
        event_names: &["UpdateFleet", "StartFleet", "StopFleet"],
        detail: &[],
    },
    // Tag changes mark the cached tags of the pool or fleet stale.
    Rule {
        name: "PoolScalerPoolTagChanges",
        source: "aws.workspaces",
        detail_type: CLOUDTRAIL_DETAIL_TYPE,
        event_names: &["CreateTags", "DeleteTags"],
        detail: &[],
    },
    Rule {
        name: "PoolScalerFleetTagChanges",
        source: "aws.appstream",
        detail_type: CLOUDTRAIL_DETAIL_TYPE,
        event_names: &["TagResource", "UntagResource"],
        detail: &[],
    },
    autopilot_shared::shard_tick_rule!("PoolScalerShardTicks", crate::handler::FUNCTION),
];

/// Whether EventBridge would deliver `event` to the pool-scaler through one of its rules.
pub fn routes(event: &serde_json::Value) -> bool {
    autopilot_shared::events::routes(&EVENT_RULES, event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_events_route_as_the_rules_say() {
        let sample = |name: &str| {
            autopilot_shared::events::read_sample(
                &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events").join(name),
            )
        };
        assert!(routes(&sample("appstream-session-notification.json")));
        assert!(routes(&sample("workspaces-access.json")));
        assert!(routes(&sample("cloudtrail-update-fleet.json")));
        assert!(routes(&sample("cloudtrail-stop-workspaces-pool.json")));
        assert!(routes(&sample("cloudtrail-tag-resource-fleet.json")));
        assert!(routes(&sample("cloudtrail-create-tags-pool.json")));
        assert!(!routes(&sample("cloudtrail-tag-resource-environment.json")));
        assert!(!routes(&sample("cloudtrail-create-export-image-task.json")));
        assert!(!routes(&sample("command-export-requested.json")));
        // every sample in events/pool-scaler/ parses and reaches the function (ticks come from the schedule)
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/pool-scaler");
        assert_eq!(autopilot_shared::events::check_samples(&folder, &EVENT_RULES).map_err(|e| e.to_string()), Ok(7));
    }
}

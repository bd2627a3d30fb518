//! Which capacity rule governs a pool or fleet, and the bounds of its phase at an instant: the same for every
//! baseline and for the detection-latency measure, so that all compare the same resources under the same schedule.

use autopilot_shared::policy::{Bounds, CapacityRule, Phase, Policy, ResourceView};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// The capacity rule governing a resource, if exactly one selects it and nothing tells us to keep off.
pub(super) fn governing_rule<'a>(
    policy: &'a Policy,
    resource: &impl ResourceView,
    application_autoscaling: bool,
) -> Option<&'a CapacityRule> {
    let rules: Vec<_> = policy.capacity.iter().filter(|r| r.select.matches(resource)).collect();
    let skip = resource.tag("autopilot/skip").is_some_and(|v| !v.eq_ignore_ascii_case("false"));
    (rules.len() == 1 && !skip && !application_autoscaling).then(|| rules[0])
}

/// A pool or fleet as the policy's selectors see it.
pub(super) struct View<'a> {
    pub(super) id: &'a str,
    pub(super) name: &'a str,
    pub(super) tags: &'a BTreeMap<String, String>,
}

impl ResourceView for View<'_> {
    fn id(&self) -> &str {
        self.id
    }
    fn name(&self) -> Option<&str> {
        Some(self.name)
    }
    fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

/// The phase of `rule`'s schedule at `now` and that phase's bounds.
pub(super) fn phase_bounds(rule: &CapacityRule, now: DateTime<Utc>) -> (Phase, &Bounds) {
    let phase = rule.schedule.as_ref().map_or(Phase::InHours, |s| s.schedule.phase_at(now));
    (phase, if phase == Phase::InHours { &rule.in_hours } else { &rule.off_hours })
}

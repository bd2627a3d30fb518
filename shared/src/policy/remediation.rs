//! The `remediation` section's validation.

use super::*;

/// Validates the `remediation` section (the remediator's rules, guard rails, selections and alarms).
pub(super) fn validate(v: &mut Validator, raw: raw::Remediation) -> RemediationPolicy {
    let max_reboots = raw.max_reboots.unwrap_or(2);
    if max_reboots > 10 {
        v.error("remediation.max_reboots", format!("{max_reboots} is out of range (0 to 10)"));
    }
    let budget = |v: &mut Validator, path: &str, budget: Option<&raw::Budget>, default: u32| {
        let max = budget.map_or(default, |b| b.max_actions_per_hour);
        if max == 0 {
            v.error(format!("{path}.max_actions_per_hour"), "must be at least 1 (to stop all actions, use dry_run)");
        }
        max
    };
    let default = RemediationSelection {
        name: "default".into(),
        select: None,
        rebuild: raw.rebuild,
        skip_connected: raw.skip_connected.unwrap_or(true),
        max_actions_per_hour: budget(v, "remediation.budget", raw.budget.as_ref(), 20),
    };
    let mut names = BTreeSet::from(["default".to_owned()]);
    let selections = raw
        .selections
        .into_iter()
        .enumerate()
        .map(|(index, selection)| {
            let path = format!("remediation.selections[{index}]");
            if selection.name.trim().is_empty() {
                v.error(format!("{path}.name"), "must not be empty");
            } else if !names.insert(selection.name.clone()) {
                v.error(
                    format!("{path}.name"),
                    if selection.name == "default" {
                        "\"default\" is reserved (the selection of WorkSpaces no other selects)".to_owned()
                    } else {
                        format!("{:?} is used twice", selection.name)
                    },
                );
            }
            RemediationSelection {
                select: Some(v.selector(&format!("{path}.select"), selection.select)),
                rebuild: selection.rebuild.unwrap_or(default.rebuild),
                skip_connected: selection.skip_connected.unwrap_or(default.skip_connected),
                max_actions_per_hour: budget(
                    v,
                    &format!("{path}.budget"),
                    selection.budget.as_ref(),
                    default.max_actions_per_hour,
                ),
                name: selection.name,
            }
        })
        .collect();
    let alarms = raw
        .alarms
        .into_iter()
        .filter_map(|(name, scope)| {
            let path = format!("remediation.alarms.{name}");
            let scope = match (scope.directory, scope.pool, scope.fleet) {
                (Some(id), None, None) => AlarmScope::Directory(id),
                (None, Some(id), None) => AlarmScope::Pool(id),
                (None, None, Some(name)) => AlarmScope::Fleet(name),
                _ => {
                    v.error(path, "give exactly one of directory, pool or fleet");
                    return None;
                }
            };
            Some((name, scope))
        })
        .collect();
    RemediationPolicy {
        reboot_after: v.duration("remediation.reboot_after", raw.reboot_after.as_deref(), Duration::minutes(15)),
        max_reboots,
        reboot_window: v.positive_duration(
            "remediation.reboot_window",
            raw.reboot_window.as_deref(),
            Duration::hours(24),
        ),
        cooldown: v.duration("remediation.cooldown", raw.cooldown.as_deref(), Duration::minutes(30)),
        max_unhealthy_share: v.share(
            "remediation.circuit_breaker.max_unhealthy_share",
            raw.circuit_breaker.as_ref().map(|c| c.max_unhealthy_share),
            0.2,
            ShareRange::Positive,
        ),
        circuit_min_population: raw.circuit_breaker.as_ref().and_then(|c| c.min_population).unwrap_or(10),
        transient_grace: v.duration(
            "remediation.transient_grace",
            raw.transient_grace.as_deref(),
            Duration::minutes(30),
        ),
        default,
        selections,
        alarms,
    }
}

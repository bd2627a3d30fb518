//! `autopilot validate <policy>`: the full validation the functions and `config push` apply.

use crate::error::CliError;
use autopilot_shared::policy::Policy;

/// A one-paragraph summary of a valid document, or every problem (`CliError::InvalidPolicy` prints them as
/// `<file>: <path>: <reason>` lines).
pub fn validate(name: &str, document: &str) -> Result<String, CliError> {
    match Policy::from_yaml(document) {
        Ok(policy) => Ok(summary(name, &policy)),
        Err(error) => Err(CliError::InvalidPolicy { name: name.to_owned(), error }),
    }
}

/// What a valid document configures.
pub fn summary(name: &str, policy: &Policy) -> String {
    let section = |present: bool| if present { "yes" } else { "no" };
    format!(
        "{name}: valid (version {}): {} schedule(s), {} calendar(s), {} capacity rule(s), {} image-builder rule(s), \
         rollouts: {}, remediation: {}, dry_run: {}",
        policy.version,
        policy.schedules.len(),
        policy.calendars.len(),
        policy.capacity.len(),
        policy.image_builders.len(),
        section(policy.rollouts.is_some()),
        policy.remediation.as_ref().map_or_else(|| "no".to_owned(), guard_rails),
        policy.dry_run()
    ) + &targets_that_differ(policy)
}

/// The remediator's guard rails in words, so that one set so wide it never holds (a breaker that needs more
/// WorkSpaces than any directory has) is seen before it is pushed.
fn guard_rails(remediation: &autopilot_shared::policy::RemediationPolicy) -> String {
    format!(
        "yes (circuit breaker: more than {:.0}% of at least {} WorkSpaces in a directory; at most {} actions an hour{})",
        remediation.max_unhealthy_share.get() * 100.0,
        remediation.circuit_min_population,
        remediation.default.max_actions_per_hour,
        if remediation.selections.is_empty() { "" } else { " by default, per selection" },
    )
}

/// The targets whose `dry_run` differs from the document's default: one that acts for real under a dry-run
/// default must not hide behind `dry_run: true`.
fn targets_that_differ(policy: &Policy) -> String {
    let Some(targets) = &policy.targets else { return String::new() };
    let default = policy.dry_run();
    let differ: Vec<String> = targets
        .accounts
        .iter()
        .chain(&targets.organizational_units)
        .filter_map(|t| t.dry_run.filter(|d| *d != default).map(|d| format!("{} (dry_run: {d})", t.id)))
        .collect();
    if differ.is_empty() { String::new() } else { format!("; targets that differ: {}", differ.join(", ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_examples_are_valid_and_problems_name_their_path() {
        for (name, text) in [
            ("examples/autopilot.yaml", include_str!("../../../examples/autopilot.yaml")),
            ("demo-policy.yaml", include_str!("../../../sim/estates/demo-policy.yaml")),
        ] {
            let summary = validate(name, text).unwrap_or_else(|e| e.to_string());
            assert!(summary.starts_with(&format!("{name}: valid")), "{summary}");
        }
        let broken = "version: 1\nschedules:\n  office:\n    timezone: Europe/Nowhere\n    periods: []\n";
        let Err(errors) = validate("p.yaml", broken).map_err(|e| e.to_string()) else { panic!("accepted {broken}") };
        assert!(errors.contains("p.yaml: schedules.office"), "{errors}");
        assert!(errors.lines().last().is_some_and(|l| l.starts_with("p.yaml: invalid (")), "{errors}");
        assert!(!errors.contains("stored"), "validate never stores: {errors}");
    }

    #[test]
    fn the_remediators_guard_rails_are_spelled_out() {
        let text =
            "version: 1\nremediation:\n  circuit_breaker: { max_unhealthy_share: 0.4, min_population: 4294967295 }\n";
        let summary = validate("r.yaml", text).unwrap_or_else(|e| e.to_string());
        assert!(
            summary.contains(
                "remediation: yes (circuit breaker: more than 40% of at least 4294967295 WorkSpaces in a directory; at most 20 actions an hour)"
            ),
            "{summary}"
        );
    }

    #[test]
    fn a_target_that_acts_for_real_under_a_dry_run_default_is_named() {
        let text = "version: 1\ndefaults: { dry_run: true }\ntargets:\n  accounts:\n    - { id: \"111122223333\", regions: [eu-west-1], dry_run: false }\n    - { id: \"444455556666\", regions: [eu-west-1] }\n";
        let summary = validate("t.yaml", text).unwrap_or_else(|e| e.to_string());
        assert!(summary.ends_with("dry_run: true; targets that differ: 111122223333 (dry_run: false)"), "{summary}");
    }
}

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
        section(policy.remediation.is_some()),
        policy.dry_run()
    )
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
}

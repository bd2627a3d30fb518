//! Resource tags that refine the policy: `<prefix>skip` (never touch) and a time-boxed manual
//! override, `<prefix>override` = `in-hours` | `off-hours` | `hold` with `<prefix>override-until` = an
//! RFC 3339 instant. The default prefix is `autopilot/`; deployments may choose another.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The tag key prefix used when a deployment does not set one.
pub const DEFAULT_TAG_PREFIX: &str = "autopilot/";

/// What a manual override asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverrideMode {
    /// Treat the resource as in-hours whatever its schedule says.
    InHours,
    /// Treat the resource as off-hours whatever its schedule says.
    OffHours,
    /// Leave the resource exactly as it is.
    Hold,
}

/// The effect of a resource's tags on automation at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TagDirective {
    /// No tag applies: follow the policy.
    None,
    /// `skip` is set: never touch the resource.
    Skip,
    /// An override is in force until `until`.
    Override { mode: OverrideMode, until: DateTime<Utc> },
    /// An override has expired: follow the policy again (worth reporting once).
    Expired { mode: OverrideMode, until: DateTime<Utc> },
    /// The override tags are malformed. The safe reading is "hold": do not act, and report why.
    Invalid { reason: String },
}

impl TagDirective {
    /// Whether automation may change the resource.
    pub fn allows_action(&self) -> bool {
        matches!(
            self,
            TagDirective::None
                | TagDirective::Expired { .. }
                | TagDirective::Override { mode: OverrideMode::InHours | OverrideMode::OffHours, .. }
        )
    }
}

/// Reads the directive from a resource's tags at `now`.
pub fn directive<'a>(
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
    prefix: &str,
    now: DateTime<Utc>,
) -> TagDirective {
    let (mut skip, mut mode, mut until) = (None, None, None);
    for (key, value) in tags {
        match key.strip_prefix(prefix) {
            Some("skip") => skip = Some(value),
            Some("override") => mode = Some(value),
            Some("override-until") => until = Some(value),
            _ => {}
        }
    }
    if let Some(value) = skip {
        // Any value other than an explicit "false" means skip: when in doubt, do not touch.
        if !value.eq_ignore_ascii_case("false") {
            return TagDirective::Skip;
        }
    }
    let (mode, until) = match (mode, until) {
        (None, None) => return TagDirective::None,
        (Some(mode), None) => {
            return TagDirective::Invalid {
                reason: format!(
                    "{prefix}override is {mode:?} but {prefix}override-until is missing (an override must be time-boxed)"
                ),
            };
        }
        (None, Some(until)) => {
            return TagDirective::Invalid {
                reason: format!(
                    "{prefix}override-until is {until:?} but {prefix}override is missing (use in-hours, off-hours or hold)"
                ),
            };
        }
        (Some(mode), Some(until)) => (mode, until),
    };
    let mode = match mode {
        "in-hours" => OverrideMode::InHours,
        "off-hours" => OverrideMode::OffHours,
        "hold" => OverrideMode::Hold,
        other => {
            return TagDirective::Invalid {
                reason: format!("{prefix}override is {other:?} (use in-hours, off-hours or hold)"),
            };
        }
    };
    let until = match DateTime::parse_from_rfc3339(until) {
        Ok(until) => until.with_timezone(&Utc),
        Err(_) => {
            return TagDirective::Invalid {
                reason: format!(
                    "{prefix}override-until is {until:?}, not an RFC 3339 instant (e.g. 2026-12-01T18:00:00Z)"
                ),
            };
        }
    };
    if now < until { TagDirective::Override { mode, until } } else { TagDirective::Expired { mode, until } }
}

/// Why a resource's tags keep automation's hands off it at `now` (`skip`, an override `hold`, or malformed override
/// tags), if they do: the reason the functions without a schedule to follow (the remediator, the
/// softwareset-roller) record.
pub fn hands_off_reason(
    tags: &std::collections::BTreeMap<String, String>,
    prefix: &str,
    now: DateTime<Utc>,
) -> Option<String> {
    match directive(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())), prefix, now) {
        TagDirective::Skip => Some(format!("tagged {prefix}skip")),
        TagDirective::Invalid { reason } => Some(format!("override tags are invalid ({reason}): hands off")),
        directive if !directive.allows_action() => Some(format!("{prefix}override holds it")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, hour, 0, 0).single().unwrap_or_default()
    }

    fn check(tags: &[(&str, &str)], now: DateTime<Utc>, expected: &TagDirective) {
        assert_eq!(&directive(tags.iter().copied(), DEFAULT_TAG_PREFIX, now), expected, "{tags:?}");
    }

    #[test]
    fn directives_from_tags() {
        check(&[], at(10), &TagDirective::None);
        check(&[("Name", "sales")], at(10), &TagDirective::None);
        check(&[("autopilot/skip", "true")], at(10), &TagDirective::Skip);
        check(&[("autopilot/skip", "")], at(10), &TagDirective::Skip);
        check(&[("autopilot/skip", "false")], at(10), &TagDirective::None);
        let hold = [("autopilot/override", "hold"), ("autopilot/override-until", "2026-12-01T18:00:00Z")];
        check(&hold, at(10), &TagDirective::Override { mode: OverrideMode::Hold, until: at(18) });
        check(&hold, at(18), &TagDirective::Expired { mode: OverrideMode::Hold, until: at(18) });
        let offset = [("autopilot/override", "in-hours"), ("autopilot/override-until", "2026-12-01T19:00:00+01:00")];
        check(&offset, at(10), &TagDirective::Override { mode: OverrideMode::InHours, until: at(18) });
        // skip wins over an override
        check(&[hold[0], hold[1], ("autopilot/skip", "yes")], at(10), &TagDirective::Skip);
    }

    #[test]
    fn malformed_overrides_are_invalid_and_block_action() {
        for tags in [
            vec![("autopilot/override", "hold")],
            vec![("autopilot/override-until", "2026-12-01T18:00:00Z")],
            vec![("autopilot/override", "weekend"), ("autopilot/override-until", "2026-12-01T18:00:00Z")],
            vec![("autopilot/override", "hold"), ("autopilot/override-until", "tomorrow")],
        ] {
            let found = directive(tags.iter().copied(), DEFAULT_TAG_PREFIX, at(10));
            assert!(matches!(found, TagDirective::Invalid { .. }), "{tags:?} -> {found:?}");
            assert!(!found.allows_action());
        }
    }

    #[test]
    fn a_custom_prefix_is_honoured() {
        assert_eq!(directive([("acme:skip", "1")], "acme:", at(10)), TagDirective::Skip);
        assert_eq!(directive([("autopilot/skip", "1")], "acme:", at(10)), TagDirective::None);
    }
}

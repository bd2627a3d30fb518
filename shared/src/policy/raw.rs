//! The policy document exactly as written: serde types that reject unknown fields and wrong types, with
//! every scalar that needs checking kept as text. [`super::validate`] turns this into a typed `Policy`.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub version: u32,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub calendars: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub schedules: BTreeMap<String, Schedule>,
    #[serde(default)]
    pub capacity: Vec<CapacityRule>,
    #[serde(default)]
    pub image_builders: Vec<BuilderRule>,
    #[serde(default)]
    pub exports: Option<Exports>,
    #[serde(default)]
    pub rollouts: Option<Rollouts>,
    #[serde(default)]
    pub remediation: Option<Remediation>,
    #[serde(default)]
    pub targets: Option<super::targets::RawTargets>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub timezone: Option<String>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub timezone: Option<String>,
    pub periods: Vec<Period>,
    #[serde(default)]
    pub holidays: OneOrMany,
    pub prewarm: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    pub days: Vec<String>,
    pub start: String,
    pub end: String,
}

/// A calendar name or a list of them. Read by hand rather than as an untagged enum, so that a wrong type is
/// reported at its path with what is expected, not as "data did not match any variant".
#[derive(Debug, Default)]
pub enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Names;
        impl<'de> serde::de::Visitor<'de> for Names {
            type Value = OneOrMany;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a calendar name or a list of calendar names")
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(name.to_owned()))
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<OneOrMany, E> {
                Ok(OneOrMany::None)
            }

            fn visit_none<E: serde::de::Error>(self) -> Result<OneOrMany, E> {
                Ok(OneOrMany::None)
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(OneOrMany::Many(names))
            }
        }
        deserializer.deserialize_any(Names)
    }
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(name) => vec![name],
            OneOrMany::Many(names) => names,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    #[serde(default)]
    pub tag: BTreeMap<String, String>,
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default)]
    pub names: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityRule {
    pub select: Selector,
    pub schedule: Option<String>,
    pub in_hours: Bounds,
    pub off_hours: Option<Bounds>,
    pub scale_out: Option<Step>,
    pub scale_in: Option<Step>,
    #[serde(default)]
    pub enforce: bool,
    pub predictive: Option<Predictive>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Predictive {
    pub enabled: Option<bool>,
    pub history_weeks: Option<u32>,
    pub lead_time: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    pub min: u32,
    pub max: u32,
    pub target_utilization: Option<f64>,
    pub buffer: Option<u32>,
    #[serde(default)]
    pub stop_when_idle: bool,
    pub idle_grace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub cooldown: Option<String>,
    pub max_step: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuilderRule {
    pub select: Selector,
    pub schedule: Option<String>,
    pub on_schedule: Option<Vec<String>>,
    pub max_runtime: Option<String>,
    pub warn_before: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exports {
    pub retry: Option<Retry>,
    pub max_duration: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    pub max_attempts: Option<u32>,
    pub backoff: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollouts {
    pub rings: Vec<Ring>,
    pub bake: Option<String>,
    pub gates: Option<Gates>,
    #[serde(default)]
    pub require_approval: bool,
    #[serde(default)]
    pub auto_rollback: bool,
    #[serde(default)]
    pub include_use_latest: bool,
    pub warn_support_ending: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ring {
    pub name: String,
    pub select: Selector,
    pub bake: Option<String>,
    pub gates: Option<Gates>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gates {
    pub min_up_to_date: Option<f64>,
    pub within: Option<String>,
    pub max_not_compliant: Option<f64>,
    pub max_stuck_in_progress: Option<f64>,
    pub min_reporting_devices: Option<u32>,
    pub min_reporting_share: Option<f64>,
    pub reporting_stale_after: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remediation {
    pub reboot_after: Option<String>,
    pub max_reboots: Option<u32>,
    pub reboot_window: Option<String>,
    #[serde(default)]
    pub rebuild: bool,
    pub cooldown: Option<String>,
    pub skip_connected: Option<bool>,
    pub budget: Option<Budget>,
    pub circuit_breaker: Option<CircuitBreaker>,
    pub transient_grace: Option<String>,
    #[serde(default)]
    pub selections: Vec<RemediationSelection>,
    #[serde(default)]
    pub alarms: BTreeMap<String, AlarmScope>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemediationSelection {
    pub name: String,
    pub select: Selector,
    pub rebuild: Option<bool>,
    pub skip_connected: Option<bool>,
    pub budget: Option<Budget>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmScope {
    pub directory: Option<String>,
    pub pool: Option<String>,
    pub fleet: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub max_actions_per_hour: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreaker {
    pub max_unhealthy_share: f64,
    pub min_population: Option<u32>,
}

/// A serde message without the Rust type it names: `expected struct Bounds` → `expected a mapping`.
pub(super) fn without_type_names(reason: &str) -> String {
    const STRUCT: &str = "expected struct ";
    let reason = &numbers_in_words(reason);
    let Some(at) = reason.find(STRUCT) else { return reason.to_owned() };
    let rest = &reason[at + STRUCT.len()..];
    let end = rest.find(|c: char| !c.is_alphanumeric() && c != '_').unwrap_or(rest.len());
    let what = if &rest[..end] == "Document" {
        "a policy document (a YAML mapping with `version: 1`)"
    } else {
        "a mapping of its fields"
    };
    format!("{}expected {what}{}", &reason[..at], without_type_names(&rest[end..]))
}

/// serde's names of number types (`expected u32`) in words.
fn numbers_in_words(reason: &str) -> String {
    let mut out = reason.to_owned();
    for (rust, words) in [
        ("expected u8", "expected a whole number (0 or more)"),
        ("expected u16", "expected a whole number (0 or more)"),
        ("expected u32", "expected a whole number (0 or more)"),
        ("expected u64", "expected a whole number (0 or more)"),
        ("expected i32", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected f32", "expected a number"),
        ("expected f64", "expected a number"),
    ] {
        let mut from = 0;
        while let Some(at) = out[from..].find(rust).map(|i| i + from) {
            let end = at + rust.len();
            if out[end..].starts_with(|c: char| c.is_ascii_alphanumeric()) {
                from = end;
                continue;
            }
            out.replace_range(at..end, words);
            from = at + words.len();
        }
    }
    out
}

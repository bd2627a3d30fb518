//! The EventBridge rules each function receives, and the checks that keep its sample events in step with them.

use super::{EventError, parse};

/// One EventBridge rule of a function: source, detail type and (for CloudTrail) the API calls it matches.
/// Each function lists its rules once (`routing.rs`); `template.yaml` declares the same (a test checks), and
/// `autopilot simulate` routes injected events with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The rule's logical name in `template.yaml`.
    pub name: &'static str,
    pub source: &'static str,
    pub detail_type: &'static str,
    /// `detail.eventName` values (CloudTrail rules only).
    pub event_names: &'static [&'static str],
    /// Further conditions on the event's `detail`.
    pub detail: &'static [DetailMatch],
}

/// The rule that delivers a function's share of a hub tick in one account × region (policies with `targets`):
/// `shard_tick_rule!("PoolScalerShardTicks", FUNCTION)`, the rule's logical name in `template.yaml` and the
/// function's name.
#[macro_export]
macro_rules! shard_tick_rule {
    ($name:literal, $function:expr) => {
        $crate::events::Rule {
            name: $name,
            source: $crate::events::AUTOPILOT_SOURCE,
            detail_type: $crate::events::SHARD_TICK_DETAIL_TYPE,
            event_names: &[],
            detail: &[$crate::events::DetailMatch {
                path: "function",
                is: $crate::events::Matcher::AnyOf(&[$function]),
            }],
        }
    };
}

/// A condition of a rule's pattern on one field of the event's `detail`: a dotted path (through a list, any
/// item may match, as EventBridge matches arrays) and what its value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetailMatch {
    pub path: &'static str,
    pub is: Matcher,
}

/// What a [`DetailMatch`]'s value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matcher {
    /// One of these strings.
    AnyOf(&'static [&'static str]),
    /// A string starting with this.
    Prefix(&'static str),
}

impl DetailMatch {
    fn holds(&self, detail: &serde_json::Value) -> bool {
        let mut values = vec![detail];
        for segment in self.path.split('.') {
            values = values
                .into_iter()
                .flat_map(|v| match v {
                    serde_json::Value::Array(items) => items.iter().filter_map(|i| i.get(segment)).collect::<Vec<_>>(),
                    other => other.get(segment).into_iter().collect(),
                })
                .collect();
        }
        let flattened = values.into_iter().flat_map(|v| match v {
            serde_json::Value::Array(items) => items.iter().collect::<Vec<_>>(),
            other => vec![other],
        });
        flattened.filter_map(serde_json::Value::as_str).any(|text| match self.is {
            Matcher::AnyOf(allowed) => allowed.contains(&text),
            Matcher::Prefix(prefix) => text.starts_with(prefix),
        })
    }
}

/// The detail-type of CloudTrail's management events on EventBridge.
pub const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";

impl Rule {
    /// Whether EventBridge would deliver `event` through this rule. CloudTrail rules take successful calls only
    /// (`"errorCode": [{"exists": false}]` in `template.yaml`): a call that failed changed nothing, and a
    /// person's failed attempt must not end in a dead-letter queue as bad input.
    pub fn matches(&self, event: &serde_json::Value) -> bool {
        let field = |name: &str| event.get(name).and_then(serde_json::Value::as_str).unwrap_or_default();
        let event_name = event
            .get("detail")
            .and_then(|d| d.get("eventName"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        self.source == field("source")
            && self.detail_type == field("detail-type")
            && (self.event_names.is_empty() || self.event_names.contains(&event_name))
            && self.detail.iter().all(|m| event.get("detail").is_some_and(|d| m.holds(d)))
            && (self.detail_type != CLOUDTRAIL_DETAIL_TYPE
                || event.get("detail").and_then(|d| d.get("errorCode")).is_none())
    }
}

/// The sample event at `path` (`events/…`), or `null` when it cannot be read: for tests of routing.
pub fn read_sample(path: &std::path::Path) -> serde_json::Value {
    std::fs::read(path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default()
}

/// Checks a function's sample events (`events/<function>/`): every file parses as an input and, except the
/// schedule's `tick.json`, reaches the function through `rules`. Returns how many were checked, or what is
/// wrong. `invalid-*.json` files are events the function must reject (`InvalidInput`): they need not parse,
/// only reach the function (or be a tick), and are not counted. (The folder is the contract of the runtime test too: `tests/tests/runtime_api.rs`
/// delivers every file to the function's release binary and checks its outcome.)
pub fn check_samples(folder: &std::path::Path, rules: &[Rule]) -> Result<usize, SampleError> {
    let unreadable = |name: &str, error: std::io::Error| SampleError::Unreadable { name: name.to_owned(), error };
    let entries = std::fs::read_dir(folder).map_err(|e| unreadable(&folder.display().to_string(), e))?;
    let mut checked = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let bytes = std::fs::read(entry.path()).map_err(|e| unreadable(&name, e))?;
        let event: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|error| SampleError::NotJson { name: name.clone(), error })?;
        if name.starts_with("invalid-") {
            let tick = event.get("detail-type").and_then(serde_json::Value::as_str) == Some("Scheduled Event");
            if !tick && !routes(rules, &event) {
                return Err(SampleError::NotRouted(name));
            }
            continue;
        }
        parse(event.clone()).map_err(|error| SampleError::Rejected { name: name.clone(), error })?;
        if name != "tick.json" && !routes(rules, &event) {
            return Err(SampleError::NotRouted(name));
        }
        checked += 1;
    }
    Ok(checked)
}

/// What is wrong with a function's sample events.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("{name}: {error}")]
    Unreadable { name: String, error: std::io::Error },
    #[error("{name}: {error}")]
    NotJson { name: String, error: serde_json::Error },
    #[error("{name}: {error}")]
    Rejected { name: String, error: EventError },
    #[error("{0} matches none of the function's rules")]
    NotRouted(String),
}

/// Whether any of `rules` delivers `event`.
pub fn routes(rules: &[Rule], event: &serde_json::Value) -> bool {
    rules.iter().any(|rule| rule.matches(event))
}

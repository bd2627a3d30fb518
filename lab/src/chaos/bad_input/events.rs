//! Event cases: the sample events they start from, the mutations made to them, the oracle of what the parser
//! must reject or accept (written from the contract), and one case through both routes (the
//! `Value` a handler receives and the bytes Lambda receives).

use super::json_tree::{Nesting, Node, Step, depth, nested, node_mut, nodes, pick, remove, set};
use super::judge::{Expect, Outcome, Tally, guarded, judge_event};
use super::{AGREEING_DEPTH, BadInputError, Figures, REFUSED_DEPTH, clip};
use autopilot_shared::events::{self, AUTOPILOT_SOURCE, CLOUDTRAIL_DETAIL_TYPE, Command, EventError};
use proptest::sample::Index;
use serde_json::Value;
use std::path::Path;

/// A sample event from `events/`, and whether it parses as it is.
#[derive(Debug, Clone)]
pub(super) struct Sample {
    name: String,
    pub(super) event: Value,
    parses: bool,
}

/// Every sample event under `root/events` except the outcome events in `events/outputs/`.
pub(super) fn samples(root: &Path) -> Result<Vec<Sample>, BadInputError> {
    let mut folders = vec![root.join("events")];
    let mut files = Vec::new();
    while let Some(folder) = folders.pop() {
        let entries =
            std::fs::read_dir(&folder).map_err(|source| BadInputError::Read { path: folder.clone(), source })?;
        for path in entries.flatten().map(|entry| entry.path()) {
            if path.is_dir() {
                if path.file_name().is_some_and(|name| name != "outputs") {
                    folders.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    let events_dir = root.join("events");
    let mut samples = Vec::new();
    for path in files {
        let bytes = std::fs::read(&path).map_err(|source| BadInputError::Read { path: path.clone(), source })?;
        let event: Value =
            serde_json::from_slice(&bytes).map_err(|source| BadInputError::Json { path: path.clone(), source })?;
        let name = path.strip_prefix(&events_dir).unwrap_or(&path).display().to_string();
        let parses = events::parse(event.clone()).is_ok();
        samples.push(Sample { name, event, parses });
    }
    if samples.is_empty() {
        return Err(BadInputError::NoSamples { dir: events_dir });
    }
    Ok(samples)
}

/// One change to an event. Indexes choose among the nodes the change applies to, in the event at hand.
#[derive(Debug, Clone)]
pub(super) enum Mutation {
    /// Remove a field or an array element.
    Drop(Index),
    /// Replace a value, usually with one of another type.
    Retype(Index, Value),
    /// Replace a string (or any value, where there is none) with a huge string of `char`.
    Huge(Index, char),
    /// Wrap a value in this many arrays or objects.
    Nest(Index, usize, Nesting),
    /// Replace an ARN (or any string) with a broken one.
    BadArn(Index, String),
    /// Replace an id or name (or any string) with a broken one.
    BadId(Index, String),
    DetailType(String),
    Source(String),
    /// Add a field to an object.
    AddField(Index, String, Value),
}

/// Applies `mutation`; returns the node it changed (`None` when it found nothing to change).
fn apply(event: &mut Value, mutation: &Mutation, huge: usize) -> Option<Vec<Step>> {
    let all = nodes(event);
    let below_root: Vec<&Node> = all.iter().filter(|n| !n.pointer.is_empty()).collect();
    let strings: Vec<&Node> = below_root.iter().copied().filter(|n| n.string.is_some()).collect();
    let string_or_any = |at: &Index, among: Vec<&Node>| -> Option<Vec<Step>> {
        pick(at, &among).or_else(|| pick(at, &strings)).or_else(|| pick(at, &below_root)).map(|n| n.pointer.clone())
    };
    match mutation {
        Mutation::Drop(at) => {
            let target = pick(at, &below_root)?.pointer.clone();
            remove(event, &target);
            Some(target)
        }
        Mutation::Retype(at, to) => {
            let target = pick(at, &below_root)?.pointer.clone();
            set(event, &target, to.clone());
            Some(target)
        }
        Mutation::Huge(at, fill) => {
            let target = string_or_any(at, strings.clone())?;
            set(event, &target, Value::String(fill.to_string().repeat(huge / fill.len_utf8())));
            Some(target)
        }
        Mutation::Nest(at, levels, nesting) => {
            let target = pick(at, &below_root)?.pointer.clone();
            if let Some(node) = node_mut(event, &target) {
                let core = node.take();
                *node = nested(*levels, *nesting, core);
            }
            Some(target)
        }
        Mutation::BadArn(at, arn) => {
            let target = string_or_any(at, below_root.iter().copied().filter(|n| n.arn()).collect())?;
            set(event, &target, Value::String(arn.clone()));
            Some(target)
        }
        Mutation::BadId(at, id) => {
            let target = string_or_any(at, below_root.iter().copied().filter(|n| n.id_like()).collect())?;
            set(event, &target, Value::String(id.clone()));
            Some(target)
        }
        Mutation::DetailType(text) | Mutation::Source(text) => {
            let key = if matches!(mutation, Mutation::DetailType(_)) { "detail-type" } else { "source" };
            event.as_object_mut()?.insert(key.to_owned(), Value::String(text.clone()));
            Some(vec![Step::Key(key.to_owned())])
        }
        Mutation::AddField(at, key, value) => {
            let objects: Vec<&Node> = all.iter().filter(|n| n.object).collect();
            let target = pick(at, &objects)?.pointer.clone();
            if let Some(Value::Object(map)) = node_mut(event, &target) {
                map.insert(key.clone(), value.clone());
            }
            Some(target)
        }
    }
}

/// The fields each command accepts (commands reject unknown fields).
fn command_fields(detail_type: &str) -> Option<&'static [&'static str]> {
    Some(match detail_type {
        "Export Requested" => &["imageName", "amiName", "iamRoleArn", "amiDescription", "tagSpecifications", "retry"],
        "Rollout Requested" => &["softwareSetId", "reason"],
        "Rollout Paused" | "Rollout Resumed" | "Rollout Aborted" => &["rolloutId", "reason"],
        "Remediation Requested" => &["resourceType", "resourceId", "reason"],
        _ => return None,
    })
}

/// Whether `(source, detail-type)` names an input, as the inputs are documented (docs/events.md).
fn is_input(source: &str, detail_type: &str) -> bool {
    match detail_type {
        "Scheduled Event" => source == "aws.events" || source == "aws.scheduler",
        CLOUDTRAIL_DETAIL_TYPE => true,
        "AppStream Session Notification" => source == "aws.appstream",
        "WorkSpaces Access" => source == "aws.workspaces",
        "CloudWatch Alarm State Change" => source == "aws.cloudwatch",
        other => source == AUTOPILOT_SOURCE && Command::DETAIL_TYPES.contains(&other),
    }
}

/// The rule `event` breaks that the parser promises to enforce, if any: an oracle written from the contract
/// (docs/events.md, `events.rs`), not from the parser's code.
pub(super) fn must_reject(event: &Value) -> Option<&'static str> {
    let Some(envelope) = event.as_object() else { return Some("an event is a JSON object") };
    let text = |key: &str| envelope.get(key).and_then(Value::as_str);
    let (Some(source), Some(detail_type), Some(_)) = (text("source"), text("detail-type"), text("id")) else {
        return Some("source, detail-type and id are strings");
    };
    if !is_input(source, detail_type) {
        return Some("(source, detail-type) names an input");
    }
    let Some(detail) = envelope.get("detail") else { return Some("an event has a detail") };
    // EventBridge Scheduler's default event (a schedule with no input) carries the string "{}".
    let schedulers_default = source == "aws.scheduler" && detail.as_str().is_some_and(|text| text.trim() == "{}");
    if !detail.is_object() && !schedulers_default {
        return Some("a detail is a JSON object (or Scheduler's default \"{}\")");
    }
    if detail_type == "Scheduled Event" && envelope.get("time").is_none_or(Value::is_null) {
        return Some("a tick has its time");
    }
    if source == AUTOPILOT_SOURCE
        && let (Some(fields), Some(detail)) = (command_fields(detail_type), detail.as_object())
        && detail.keys().any(|key| !fields.contains(&key.as_str()))
    {
        return Some("a command has no unknown fields");
    }
    None
}

/// Whether the case must be accepted: a sample that parses, with one new field in its AWS-authored detail
/// (AWS extends its events without notice; `events.rs` tolerates new fields in them, not in commands or ticks).
fn must_accept(sample: &Sample, mutations: &[Mutation], changed: &[Option<Vec<Step>>]) -> bool {
    let source = sample.event.get("source").and_then(Value::as_str).unwrap_or_default();
    let detail_type = sample.event.get("detail-type").and_then(Value::as_str).unwrap_or_default();
    sample.parses
        && source != AUTOPILOT_SOURCE
        && detail_type != "Scheduled Event"
        && matches!(mutations, [Mutation::AddField(..)])
        && matches!(changed, [Some(pointer)] if pointer.as_slice() == [Step::Key("detail".into())])
}

/// A generated event case.
#[derive(Debug, Clone)]
pub(super) enum EventCase {
    /// A sample with one to four mutations, and perhaps bytes that are not UTF-8 inserted into its JSON text.
    Mutated { sample: Index, mutations: Vec<Mutation>, corrupt: Option<(Index, Vec<u8>)> },
    /// Any JSON value.
    Arbitrary(Value),
}

/// A generated event ready to use: the event, what it must come to, and a label for failures.
pub(super) struct BuiltEvent {
    /// The sample it was made from (`None`: arbitrary).
    pub(super) sample: Option<usize>,
    pub(super) event: Value,
    expect: Expect<'static>,
    pub(super) label: String,
    corrupt: Option<(Index, Vec<u8>)>,
}

pub(super) fn build(case: EventCase, samples: &[Sample], huge: usize) -> Option<BuiltEvent> {
    match case {
        EventCase::Arbitrary(event) => {
            let expect = if must_reject(&event).is_some() { Expect::Reject(None) } else { Expect::Either };
            let label = clip(&format!("arbitrary {event}"), 300);
            Some(BuiltEvent { sample: None, event, expect, label, corrupt: None })
        }
        EventCase::Mutated { sample, mutations, corrupt } => {
            let index = sample.index(samples.len().max(1));
            let sample = samples.get(index)?;
            let mut event = sample.event.clone();
            let changed: Vec<Option<Vec<Step>>> = mutations.iter().map(|m| apply(&mut event, m, huge)).collect();
            let expect = match must_reject(&event) {
                Some(_) => Expect::Reject(None),
                None if must_accept(sample, &mutations, &changed) => Expect::Accept,
                None => Expect::Either,
            };
            let label = clip(&format!("{} + {mutations:?}", sample.name), 300);
            Some(BuiltEvent { sample: Some(index), event, expect, label, corrupt })
        }
    }
}

/// One generated event through both routes: the `Value` (what the handler receives) and its bytes (what
/// Lambda receives). Both must agree where `serde_json` lets the bytes through.
pub(super) fn check_event(figures: &mut Figures, built: BuiltEvent) {
    let BuiltEvent { event, expect, label, corrupt, .. } = built;
    figures.generated_cases += 1;
    let by_value = guarded(|| events::parse(event.clone()));
    let value_summary = summary(&by_value);
    judge_event(figures, &format!("{label} (value)"), by_value, expect, Tally::Events);

    let mut bytes = match serde_json::to_vec(&event) {
        Ok(bytes) => bytes,
        Err(error) => {
            figures.corpus_problem(format!("{label}: cannot serialise: {error}"));
            return;
        }
    };
    let levels = depth(&event);
    let (expect, compare) = match &corrupt {
        Some((at, not_utf8)) => {
            let position = at.index(bytes.len() + 1);
            bytes.splice(position..position, not_utf8.iter().copied());
            (Expect::Reject(Some("not JSON")), false)
        }
        None if levels >= REFUSED_DEPTH => (Expect::Reject(Some("not JSON: recursion limit exceeded")), false),
        None => (Expect::Either, levels <= AGREEING_DEPTH),
    };
    let by_bytes = guarded(|| events::parse_slice(&bytes));
    let bytes_summary = summary(&by_bytes);
    judge_event(figures, &format!("{label} (bytes)"), by_bytes, expect, Tally::Nothing);
    if compare && value_summary != bytes_summary {
        figures.misclassified += 1;
        figures.note(format!("{label}: the value gives {value_summary:?} but its bytes give {bytes_summary:?}"));
    }
}

fn summary(outcome: &Outcome<EventError>) -> String {
    match outcome {
        Outcome::Panicked(message) => format!("panic: {message}"),
        Outcome::Accepted => "accepted".into(),
        Outcome::Rejected(error) => clip(&error.to_string(), 200),
    }
}

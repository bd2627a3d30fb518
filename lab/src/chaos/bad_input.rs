//! Bad input: malformed events and invalid policy documents must come back as clear `InvalidInput` errors —
//! never a panic, never another class, never a silent acceptance.
//!
//! Three runs, each counting into [`Figures`]:
//! - [`run_corpus`]: the files under `tests/corpus/bad-input/` (see its README) and huge and deeply nested
//!   inputs built at run time, through the event parser ([`events::parse_slice`]: bytes, as Lambda delivers
//!   them) and the policy parser ([`Policy::from_yaml`]); each must be rejected with the text
//!   `expected.yaml` gives for it.
//! - [`run_properties`]: proptest cases from a seeded [`TestRunner`] (a run is reproducible from its seed):
//!   mutations of every sample event in `events/` and of `examples/autopilot.yaml`, arbitrary JSON, arbitrary
//!   YAML.
//! - [`run_handlers`]: the functions' real entry points (`handle`) against a local estate: the handler
//!   corpus (events that parse but that the function must refuse: bad ARNs, account ids, resource ids),
//!   every event of the corpus, and generated cases of sizes EventBridge can deliver.
//!
//! What can reach the parsers: in Lambda, `lambda_runtime` turns the invocation's bytes into the
//! `serde_json::Value` our handler receives, with `serde_json` and its recursion limit of 128; bytes that are
//! not UTF-8 or not JSON are refused by the runtime before our code runs. [`events::parse_slice`] makes the
//! same conversion, so the corpus' `*.bin` files show what becomes of such bytes. A `Value` nested deeper than
//! 128 cannot come from Lambda; it is parsed here anyway (on a thread with a large stack, since building,
//! serialising and dropping one recurses) to show that the parser itself does not fall over.

use autopilot_functions::Function;
use autopilot_shared::error::{AutopilotError, Classify, ErrorClass};
use autopilot_shared::events::{self, AUTOPILOT_SOURCE, CLOUDTRAIL_DETAIL_TYPE, Command, EventError};
use autopilot_shared::ledger::LedgerError;
use autopilot_shared::policy::{Policy, PolicyError};
use futures::FutureExt;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The longest a rejection's message may be: it is logged and returned to Lambda whatever the input's size.
pub const MAX_MESSAGE: usize = 2_048;
/// How many violations [`Figures::failures`] describes (the counters count them all).
const MAX_FAILURES: usize = 50;
/// A huge string: 1 MiB, four times what EventBridge delivers.
const HUGE: usize = 1 << 20;
/// A huge string in a generated policy document (the 1 MiB ones are in [`run_corpus`]; parsing YAML that size
/// is slow, and a policy is written by an operator, not delivered by a service).
const HUGE_POLICY_TEXT: usize = 64 << 10;
/// The largest string an EventBridge event can carry (events are at most 256 KB).
const HUGE_DELIVERABLE: usize = 200 * 1024;
/// A deep nesting, far beyond `serde_json`'s limit of 128.
const DEEP: usize = 10_000;
/// Nesting the text route must refuse (`serde_json`'s limit is 128; the margin covers the envelope's own levels).
const REFUSED_DEPTH: usize = 140;
/// Nesting the text route must accept like the value route.
const AGREEING_DEPTH: usize = 120;
/// The stack of the threads that build, parse and drop deeply nested values.
const BIG_STACK: usize = 256 << 20;
/// The stack the parsers get in Lambda (a tokio worker thread's): the policy parser runs on one here, so an
/// overflow a deep document would cause in production is not hidden by a big test stack.
const LAMBDA_STACK: usize = 2 << 20;
/// Node enumeration stops this deep and after this many nodes (a deep or wide value is mutated near its top).
const MAX_WALK: usize = 48;
const MAX_NODES: usize = 5_000;
/// The remaining time each in-process invocation is given.
const REMAINING: Duration = Duration::from_secs(60);

/// What a run saw. A clean run has no panics, misclassifications, unclear messages, wrong acceptances or
/// rejections and corpus problems ([`Figures::is_clean`]).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Figures {
    /// Files read from `tests/corpus/bad-input/` (events, policies and handler events).
    pub corpus_files: usize,
    /// Inputs built at run time: the huge and deep corpus entries and every generated event case.
    pub generated_cases: u64,
    /// Event inputs rejected as `InvalidInput`.
    pub rejected_invalid_input: u64,
    /// Event inputs accepted (valid; a generated mutation may well be).
    pub accepted: u64,
    /// Panics caught in a parser or a handler. Must be 0.
    pub panics: u64,
    /// Rejections in a class other than `InvalidInput`, and handler errors marked `Retryable` for an input
    /// that was at fault. Must be 0.
    pub misclassified: u64,
    /// Rejections whose message is empty, longer than [`MAX_MESSAGE`], names no field or path, or lacks the
    /// text `expected.yaml` gives. Must be 0.
    pub unclear: u64,
    /// Inputs accepted that must be rejected (every corpus file; generated inputs that break a rule the
    /// parsers promise). Must be 0.
    pub wrongly_accepted: u64,
    /// Inputs rejected that must be accepted (a new field in an AWS-authored detail). Must be 0.
    pub wrongly_rejected: u64,
    /// Policy documents tried (corpus, huge and deep, generated).
    pub policy_cases: u64,
    /// Policy documents rejected as `InvalidInput`.
    pub policy_rejected: u64,
    /// Policy documents accepted (a generated mutation may still be valid).
    pub policy_accepted: u64,
    /// Invocations of the functions' `handle` ([`run_handlers`]).
    pub handler_cases: u64,
    /// Invocations refused as `InvalidInput`.
    pub handler_rejected: u64,
    /// Corpus files without an entry in `expected.yaml`, entries without a file, unreadable files. Must be 0.
    pub corpus_problems: u64,
    /// The first violations, each with its input and what happened.
    pub failures: Vec<String>,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

impl Figures {
    /// Whether nothing went wrong.
    pub fn is_clean(&self) -> bool {
        self.panics == 0
            && self.misclassified == 0
            && self.unclear == 0
            && self.wrongly_accepted == 0
            && self.wrongly_rejected == 0
            && self.corpus_problems == 0
    }

    /// Adds another run's figures to these.
    pub fn absorb(&mut self, other: Figures) {
        self.corpus_files += other.corpus_files;
        self.generated_cases += other.generated_cases;
        self.rejected_invalid_input += other.rejected_invalid_input;
        self.accepted += other.accepted;
        self.panics += other.panics;
        self.misclassified += other.misclassified;
        self.unclear += other.unclear;
        self.wrongly_accepted += other.wrongly_accepted;
        self.wrongly_rejected += other.wrongly_rejected;
        self.policy_cases += other.policy_cases;
        self.policy_rejected += other.policy_rejected;
        self.policy_accepted += other.policy_accepted;
        self.handler_cases += other.handler_cases;
        self.handler_rejected += other.handler_rejected;
        self.corpus_problems += other.corpus_problems;
        for failure in other.failures {
            self.note(failure);
        }
        self.elapsed += other.elapsed;
    }

    fn note(&mut self, failure: String) {
        if self.failures.len() < MAX_FAILURES {
            self.failures.push(clip(&failure, 600));
        }
    }

    fn corpus_problem(&mut self, problem: String) {
        self.corpus_problems += 1;
        self.note(problem);
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} corpus files, {} generated event cases, {} policy cases, {} handler invocations in {:.1?}: \
             events {} rejected (InvalidInput) / {} accepted; policies {} rejected / {} accepted; \
             {} invocations refused (InvalidInput); \
             {} panics, {} misclassified, {} unclear, {} wrongly accepted, {} wrongly rejected, {} corpus problems",
            self.corpus_files,
            self.generated_cases,
            self.policy_cases,
            self.handler_cases,
            self.elapsed,
            self.rejected_invalid_input,
            self.accepted,
            self.policy_rejected,
            self.policy_accepted,
            self.handler_rejected,
            self.panics,
            self.misclassified,
            self.unclear,
            self.wrongly_accepted,
            self.wrongly_rejected,
            self.corpus_problems
        )
    }
}

/// The workspace this crate was built in: where `events/`, `examples/` and `tests/corpus/` are.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The corpus folder under a workspace root.
fn corpus_dir(root: &Path) -> PathBuf {
    root.join("tests").join("corpus").join("bad-input")
}

// ---------------------------------------------------------------------------------------------------------------
// Judging one outcome
// ---------------------------------------------------------------------------------------------------------------

/// What a parser or handler did with one input.
enum Outcome<E> {
    Panicked(String),
    Accepted,
    Rejected(E),
}

/// Runs `parse`, turning a panic into [`Outcome::Panicked`].
fn guarded<T, E>(parse: impl FnOnce() -> Result<T, E>) -> Outcome<E> {
    match catch_unwind(AssertUnwindSafe(|| parse().map(drop))) {
        Ok(Ok(())) => Outcome::Accepted,
        Ok(Err(error)) => Outcome::Rejected(error),
        Err(payload) => Outcome::Panicked(panic_text(payload.as_ref())),
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".into())
}

/// What an input must come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect<'a> {
    /// Rejected as `InvalidInput`, with a message containing the text, if given.
    Reject(Option<&'a str>),
    /// Accepted.
    Accept,
    /// Either, but a rejection must be a clear `InvalidInput`.
    Either,
}

/// Whether an outcome counts into the accepted/rejected totals (the second route of the same case does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tally {
    Events,
    Policies,
    Handlers,
    Nothing,
}

/// A rejection, reduced to what is judged: its classes along the way to Lambda, its message, and whether it
/// says where the problem is.
struct Rejection {
    classes: Vec<ErrorClass>,
    message: String,
    names_where: bool,
    /// At most [`MAX_MESSAGE`] characters (for a policy: each problem; every problem is listed).
    bounded: bool,
}

impl Rejection {
    fn event(error: &EventError) -> Self {
        let wrapped = AutopilotError::from_classified(error);
        Rejection {
            classes: vec![error.class(), wrapped.class],
            names_where: !error.path.is_empty()
                || error.reason.contains('`')
                || error.reason.starts_with("not JSON")
                || error.reason.starts_with("missing or not"),
            bounded: wrapped.message.chars().count() <= MAX_MESSAGE,
            message: wrapped.message,
        }
    }

    fn policy(error: PolicyError) -> Self {
        let problems = error.0.clone();
        // Where a policy error reaches a function: the ledger validates a stored document again on read.
        let stored = LedgerError::from(error);
        let wrapped = AutopilotError::from_classified(&stored);
        // A problem without a path is about the document as a whole: its type, or its syntax (serde_yaml_ng
        // adds "at line L column C" except at the very start). Where a path is due, `expected.yaml` and the
        // single-mutation cases check it.
        Rejection {
            classes: vec![stored.class(), wrapped.class],
            names_where: !problems.is_empty() && problems.iter().all(|problem| !problem.reason.trim().is_empty()),
            bounded: problems.iter().all(|problem| problem.to_string().chars().count() <= MAX_MESSAGE),
            message: wrapped.message,
        }
    }

    fn handler(error: &AutopilotError) -> Self {
        Rejection {
            classes: vec![error.class],
            message: error.message.clone(),
            names_where: true,
            bounded: error.message.chars().count() <= MAX_MESSAGE,
        }
    }
}

fn judge<E>(
    figures: &mut Figures,
    label: &str,
    outcome: Outcome<E>,
    expect: Expect<'_>,
    tally: Tally,
    reject: impl FnOnce(E) -> Rejection,
) {
    match outcome {
        Outcome::Panicked(message) => {
            figures.panics += 1;
            figures.note(format!("{label}: panicked: {message}"));
        }
        Outcome::Accepted => {
            match tally {
                Tally::Events => figures.accepted += 1,
                Tally::Policies => figures.policy_accepted += 1,
                Tally::Handlers | Tally::Nothing => {}
            }
            if let Expect::Reject(_) = expect {
                figures.wrongly_accepted += 1;
                figures.note(format!("{label}: accepted, but must be rejected"));
            }
        }
        Outcome::Rejected(error) => {
            let rejection = reject(error);
            let (message, bounded) = (rejection.message, rejection.bounded);
            if rejection.classes.iter().any(|class| *class != ErrorClass::InvalidInput) {
                figures.misclassified += 1;
                figures.note(format!("{label}: rejected as {:?}, not InvalidInput: {message}", rejection.classes));
                return;
            }
            match tally {
                Tally::Events => figures.rejected_invalid_input += 1,
                Tally::Policies => figures.policy_rejected += 1,
                Tally::Handlers => figures.handler_rejected += 1,
                Tally::Nothing => {}
            }
            if message.trim().is_empty() || !bounded || !rejection.names_where {
                figures.unclear += 1;
                let length = message.chars().count();
                figures.note(format!("{label}: unclear message ({length} characters): {message}"));
            } else if let Expect::Reject(Some(wanted)) = expect
                && !message.contains(wanted)
            {
                figures.unclear += 1;
                figures.note(format!("{label}: message {message:?} does not contain {wanted:?}"));
            }
            if expect == Expect::Accept {
                figures.wrongly_rejected += 1;
                figures.note(format!("{label}: rejected, but must be accepted: {message}"));
            }
        }
    }
}

fn judge_event(figures: &mut Figures, label: &str, outcome: Outcome<EventError>, expect: Expect<'_>, tally: Tally) {
    judge(figures, label, outcome, expect, tally, |error| Rejection::event(&error));
}

fn judge_policy(figures: &mut Figures, label: &str, outcome: Outcome<PolicyError>, expect: Expect<'_>) {
    figures.policy_cases += 1;
    judge(figures, label, outcome, expect, Tally::Policies, Rejection::policy);
}

/// At most `max` characters of `text`, saying how much was left out.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}… ({} more bytes)", &text[..cut], text.len() - cut),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The corpus
// ---------------------------------------------------------------------------------------------------------------

/// Feeds every corpus file (and the huge and deep inputs built at run time) to the event and policy parsers:
/// each must be rejected as `InvalidInput` with the text `expected.yaml` gives. `root` is the workspace root
/// (see [`workspace_root`]). Fails only when the corpus cannot be read; what the parsers did is in the figures.
pub fn run_corpus(root: &Path) -> Result<Figures, String> {
    let started = Instant::now();
    let dir = corpus_dir(root);
    let mut expected = expectations(&dir)?;
    let event_files = corpus_files(&dir, "events", &["json", "bin"])?;
    let policy_files = corpus_files(&dir, "policies", &["yaml"])?;
    if event_files.is_empty() || policy_files.is_empty() {
        return Err(format!("{}: no corpus files in events/ or policies/", dir.display()));
    }
    let mut figures = Figures::default();
    let mut handler_files = Vec::new();
    for (folder, _) in handler_folders(&dir)? {
        handler_files.extend(corpus_files(&dir.join("handlers"), &folder, &["json"])?);
    }
    // Every file has its entry, every entry its file.
    let names = event_files.iter().chain(&policy_files).map(|(name, _)| name.clone());
    for name in names.chain(handler_files.iter().map(|(name, _)| format!("handlers/{name}"))) {
        if expected.remove(&name).is_none() {
            figures.corpus_problem(format!("{name}: no entry in expected.yaml"));
        }
    }
    for stale in expected.keys() {
        figures.corpus_problem(format!("expected.yaml names {stale}, which is not in the corpus"));
    }
    let expected = expectations(&dir)?;
    let (events_root, events_expected) = (root.to_path_buf(), expected.clone());
    figures.absorb(on_stack("bad-input-events", BIG_STACK, move || {
        corpus_events(&events_root, &event_files, &events_expected)
    })?);
    figures.absorb(on_stack("bad-input-policies", LAMBDA_STACK, move || corpus_policies(&policy_files, &expected))?);
    figures.elapsed = started.elapsed();
    Ok(figures)
}

/// `expected.yaml`: corpus file (relative to the corpus folder) → text its rejection must contain.
fn expectations(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let path = dir.join("expected.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The files of `dir/folder` with one of `extensions`, sorted, as (`<folder>/<name>`, path).
fn corpus_files(dir: &Path, folder: &str, extensions: &[&str]) -> Result<Vec<(String, PathBuf)>, String> {
    let entries = std::fs::read_dir(dir.join(folder)).map_err(|e| format!("{}/{folder}: {e}", dir.display()))?;
    let mut files: Vec<(String, PathBuf)> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().and_then(|e| e.to_str()).is_some_and(|e| extensions.contains(&e)))
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_owned();
            Some((format!("{folder}/{name}"), path))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn corpus_events(root: &Path, files: &[(String, PathBuf)], expected: &BTreeMap<String, String>) -> Figures {
    let mut figures = Figures::default();
    for (name, path) in files {
        figures.corpus_files += 1;
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) => {
                figures.corpus_problem(format!("{name}: {error}"));
                continue;
            }
        };
        let outcome = guarded(|| events::parse_slice(&bytes));
        let expect = Expect::Reject(expected.get(name).map(String::as_str));
        judge_event(&mut figures, name, outcome, expect, Tally::Events);
    }
    generated_events(root, &mut figures);
    figures
}

fn corpus_policies(files: &[(String, PathBuf)], expected: &BTreeMap<String, String>) -> Figures {
    let mut figures = Figures::default();
    for (name, path) in files {
        figures.corpus_files += 1;
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) => {
                figures.corpus_problem(format!("{name}: {error}"));
                continue;
            }
        };
        let expect = Expect::Reject(expected.get(name).map(String::as_str));
        match String::from_utf8(bytes) {
            Ok(text) => judge_policy(&mut figures, name, guarded(|| Policy::from_yaml(&text)), expect),
            // The tool reads documents as text (`std::fs::read_to_string`): other bytes never reach the parser.
            Err(error) => {
                let problem = autopilot_shared::policy::ValidationError {
                    path: String::new(),
                    reason: format!("not UTF-8: {error}"),
                };
                judge_policy(&mut figures, name, Outcome::Rejected(PolicyError(vec![problem])), expect);
            }
        }
    }
    generated_policies(&mut figures);
    figures
}

fn read_sample(root: &Path, name: &str) -> Value {
    events::read_sample(&root.join("events").join(name))
}

/// Huge and deeply nested events, built here rather than committed.
fn generated_events(root: &Path, figures: &mut Figures) {
    let huge = "x".repeat(HUGE);
    let deep_text = |depth: usize, open: &str, close: &str| format!("{}{}", open.repeat(depth), close.repeat(depth));

    let mut cases: Vec<(&str, Value, &str)> = Vec::new();
    let mut tick = read_sample(root, "scheduled-tick-rule.json");
    tick["detail-type"] = Value::String(format!("Scheduled Event{huge}"));
    cases.push(("huge-string-1mb-detail-type", tick, "detail-type: \"Scheduled Event"));
    let mut rollout = read_sample(root, "command-rollout-requested.json");
    rollout["detail"][huge.as_str()] = json!(true);
    cases.push(("huge-string-1mb-unknown-command-field", rollout, "unknown field `xxxx"));
    let mut pool = read_sample(root, "cloudtrail-update-workspaces-pool.json");
    pool["detail"]["requestParameters"]["capacity"]["desiredUserSessions"] = Value::String(huge.clone());
    cases.push((
        "huge-string-1mb-wrong-type",
        pool,
        "detail.requestParameters.capacity.desiredUserSessions: invalid type: string",
    ));
    let mut call = read_sample(root, "cloudtrail-stop-fleet.json");
    call["detail"]["eventName"] = Value::String(huge.clone());
    cases.push(("huge-string-1mb-event-name", call, "detail.eventName: xxxx"));
    let mut wide = read_sample(root, "command-remediation-requested.json");
    if let Some(detail) = wide["detail"].as_object_mut() {
        detail.extend((0..100_000).map(|i| (format!("field{i:06}"), json!(i))));
    }
    cases.push(("wide-object-100k-fields-in-command", wide, "unknown field `field"));
    let mut resources = read_sample(root, "scheduled-tick-rule.json");
    resources["resources"] = Value::Array((0..100_000).map(|i| json!(i)).collect());
    cases.push(("wide-array-100k-numbers-as-resources", resources, "resources[0]: invalid type: integer"));
    // Names and ids that would become ledger keys over DynamoDB's 2 KB (an outage to the ledger: Retryable).
    let mut long_id = read_sample(root, "command-rollout-paused.json");
    long_id["id"] = Value::String("i".repeat(300));
    cases.push(("oversized-event-id", long_id, "id: is 300 bytes long"));
    let mut long_pool = read_sample(root, "cloudtrail-start-workspaces-pool.json");
    long_pool["detail"]["requestParameters"]["poolId"] = Value::String("w".repeat(2_000));
    cases.push(("oversized-cloudtrail-pool-id", long_pool, "detail.requestParameters.poolId: is 2000 bytes long"));
    let mut long_region = read_sample(root, "scheduled-tick-rule.json");
    long_region["region"] = Value::String("r".repeat(2_000));
    cases.push(("oversized-region", long_region, "region: is 2000 bytes long"));
    let mut long_alarm = read_sample(root, "cloudwatch-alarm-state-change.json");
    long_alarm["detail"]["alarmName"] = Value::String("a".repeat(2_000));
    cases.push(("oversized-alarm-name", long_alarm, "detail.alarmName: is 2000 bytes long"));
    let mut long_reason = read_sample(root, "command-remediation-requested.json");
    long_reason["detail"]["reason"] = Value::String("r".repeat(5_000));
    cases.push(("oversized-command-reason", long_reason, "detail.reason: the value is 5000 bytes long"));
    // A value nested beyond serde_json's limit: Lambda cannot deliver one, the parser must still cope.
    let mut deep_command = read_sample(root, "command-rollout-paused.json");
    deep_command["detail"]["nested"] = nested(DEEP, true, Value::Null);
    cases.push(("deep-value-10000-arrays-in-command", deep_command, "detail.nested: unknown field `nested`"));
    let mut deep_tick = read_sample(root, "scheduled-tick-scheduler.json");
    deep_tick["detail"] = nested(DEEP, false, json!({}));
    cases.push(("deep-value-10000-objects-as-tick-detail", deep_tick, "detail.a: unknown field `a`"));
    for (name, event, wanted) in cases {
        figures.generated_cases += 1;
        let label = format!("generated/{name} (value)");
        let outcome = guarded(|| events::parse(event.clone()));
        judge_event(figures, &label, outcome, Expect::Reject(Some(wanted)), Tally::Events);
        // The same event as the bytes Lambda would receive.
        match serde_json::to_vec(&event) {
            Ok(bytes) => {
                let wanted = if depth(&event) >= REFUSED_DEPTH { "not JSON: recursion limit exceeded" } else { wanted };
                let label = format!("generated/{name} (bytes)");
                let outcome = guarded(|| events::parse_slice(&bytes));
                judge_event(figures, &label, outcome, Expect::Reject(Some(wanted)), Tally::Nothing);
            }
            Err(error) => figures.corpus_problem(format!("generated/{name}: cannot serialise: {error}")),
        }
    }

    let envelope = |detail: &str| {
        format!(
            r#"{{"version":"0","id":"deep","detail-type":"Rollout Paused","source":"euc.autopilot","time":"2026-11-23T06:00:00Z","detail":{detail}}}"#
        )
    };
    let texts: Vec<(&str, String, &str)> = vec![
        ("deep-text-10000-arrays", deep_text(DEEP, "[", "]"), "not JSON: recursion limit exceeded"),
        (
            "deep-text-10000-objects-in-detail",
            envelope(&deep_text(DEEP, "{\"a\":", "}")),
            "not JSON: recursion limit exceeded",
        ),
        (
            "deep-text-129-arrays-in-detail",
            envelope(&format!("{{\"a\":{}}}", deep_text(129, "[", "]"))),
            "not JSON: recursion limit exceeded",
        ),
        // Within the limit: parsed as JSON, then refused by the command's own rules.
        (
            "deep-text-100-arrays-in-detail",
            envelope(&format!("{{\"a\":{}}}", deep_text(100, "[", "]"))),
            "detail.a: unknown field `a`",
        ),
        ("huge-text-1mb-whitespace", format!("{}{{}}", " ".repeat(HUGE)), "source: missing or not a string"),
    ];
    for (name, text, wanted) in texts {
        figures.generated_cases += 1;
        let outcome = guarded(|| events::parse_slice(text.as_bytes()));
        judge_event(figures, &format!("generated/{name}"), outcome, Expect::Reject(Some(wanted)), Tally::Events);
    }
}

/// Huge and deeply nested policy documents, built here rather than committed.
fn generated_policies(figures: &mut Figures) {
    let huge = "x".repeat(HUGE);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "huge-string-1mb-timezone",
            format!("version: 1\ndefaults: {{ timezone: {huge} }}\n"),
            "defaults.timezone: xxxx",
        ),
        (
            "huge-string-1mb-duration",
            format!("version: 1\nexports: {{ max_duration: \"{huge}\" }}\n"),
            "exports.max_duration: \"xxxx",
        ),
        // An implicit key is at most 1024 characters to the YAML scanner; an explicit one (`? key`) has no limit.
        ("huge-string-1mb-implicit-key", format!("version: 1\n{huge}: 1\n"), "could not find expected ':'"),
        ("huge-string-1mb-explicit-key", format!("version: 1\n? {huge}\n: 1\n"), "unknown field `xxxx"),
        // Nested where the deserializer descends without a type to stop it (an untagged enum buffers first).
        (
            "deep-flow-10000-sequences",
            format!("version: 1\nschedules:\n  s:\n    holidays: {}{}\n", "[".repeat(DEEP), "]".repeat(DEEP)),
            "schedules.s",
        ),
        (
            "deep-block-200-mappings",
            format!(
                "version: 1\nschedules:\n  s:\n    holidays:\n{}",
                (3..=200).map(|i| format!("{}a:\n", "  ".repeat(i))).collect::<String>()
            ),
            "schedules.s",
        ),
        (
            "wide-10000-schedules",
            format!(
                "version: 1\nschedules:\n{}",
                (0..10_000).map(|i| format!("  s{i}: {{ periods: [] }}\n")).collect::<String>()
            ),
            "schedules.s0.periods: needs at least one period",
        ),
    ];
    for (name, text, wanted) in cases {
        let outcome = guarded(|| Policy::from_yaml(&text));
        judge_policy(figures, &format!("generated/{name}"), outcome, Expect::Reject(Some(wanted)));
    }
}

/// `handlers/<function>/` folders: (function name, function).
fn handler_folders(dir: &Path) -> Result<Vec<(String, Option<Function>)>, String> {
    let handlers = dir.join("handlers");
    let entries = std::fs::read_dir(&handlers).map_err(|e| format!("{}: {e}", handlers.display()))?;
    let mut folders: Vec<(String, Option<Function>)> = entries
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let function = Function::ALL.into_iter().find(|f| f.name() == name);
            (name, function)
        })
        .collect();
    folders.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(folders)
}

/// Runs `work` on a thread with a stack of `size` bytes.
fn on_stack<T: Send + 'static>(
    name: &str,
    size: usize,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .stack_size(size)
        .spawn(work)
        .map_err(|e| format!("cannot start the {name} thread: {e}"))?
        .join()
        .map_err(|payload| format!("the {name} thread panicked: {}", panic_text(payload.as_ref())))
}

// ---------------------------------------------------------------------------------------------------------------
// JSON trees: nodes, pointers, mutation
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    At(usize),
}

/// One node of a tree, with what the mutations choose by.
#[derive(Debug, Clone)]
struct Node {
    pointer: Vec<Step>,
    string: Option<String>,
    object: bool,
    number: bool,
}

impl Node {
    fn key(&self) -> &str {
        match self.pointer.last() {
            Some(Step::Key(key)) => key,
            _ => "",
        }
    }

    fn arn(&self) -> bool {
        self.string.as_deref().is_some_and(|s| s.starts_with("arn:"))
    }

    fn id_like(&self) -> bool {
        let key = self.key();
        self.string.is_some()
            && (key == "id" || key == "name" || ["Id", "ID", "Name"].iter().any(|suffix| key.ends_with(suffix)))
    }
}

/// Every node of `value` below its root (and the root itself when it is an object, as a place to add a field),
/// down to [`MAX_WALK`] levels and at most [`MAX_NODES`] nodes. Iterative: `value` may be deep.
fn nodes(value: &Value) -> Vec<Node> {
    let mut out = Vec::new();
    if value.is_object() {
        out.push(Node { pointer: Vec::new(), string: None, object: true, number: false });
    }
    let mut stack: Vec<(Vec<Step>, &Value)> = vec![(Vec::new(), value)];
    while let Some((pointer, node)) = stack.pop() {
        if pointer.len() >= MAX_WALK || out.len() >= MAX_NODES {
            continue;
        }
        let children: Vec<(Step, &Value)> = match node {
            Value::Object(map) => map.iter().map(|(k, v)| (Step::Key(k.clone()), v)).collect(),
            Value::Array(items) => items.iter().enumerate().map(|(i, v)| (Step::At(i), v)).collect(),
            _ => Vec::new(),
        };
        for (step, child) in children {
            let mut child_pointer = pointer.clone();
            child_pointer.push(step);
            out.push(Node {
                pointer: child_pointer.clone(),
                string: child.as_str().map(|s| clip(s, 64)),
                object: child.is_object(),
                number: child.is_number(),
            });
            stack.push((child_pointer, child));
        }
    }
    out
}

fn node_mut<'a>(value: &'a mut Value, pointer: &[Step]) -> Option<&'a mut Value> {
    pointer.iter().try_fold(value, |node, step| match step {
        Step::Key(key) => node.get_mut(key.as_str()),
        Step::At(index) => node.get_mut(*index),
    })
}

fn remove(value: &mut Value, pointer: &[Step]) {
    let Some((last, parent)) = pointer.split_last() else { return };
    match (node_mut(value, parent), last) {
        (Some(Value::Object(map)), Step::Key(key)) => {
            map.remove(key);
        }
        (Some(Value::Array(items)), Step::At(index)) if *index < items.len() => {
            items.remove(*index);
        }
        _ => {}
    }
}

fn set(value: &mut Value, pointer: &[Step], new: Value) {
    if let Some(node) = node_mut(value, pointer) {
        *node = new;
    }
}

/// `core` wrapped in `depth` arrays (or single-field objects). Built iteratively.
fn nested(depth: usize, arrays: bool, core: Value) -> Value {
    (0..depth).fold(core, |inner, _| {
        if arrays { Value::Array(vec![inner]) } else { Value::Object(Map::from_iter([("a".to_owned(), inner)])) }
    })
}

/// How deeply arrays and objects nest in `value` (a scalar is 0). Iterative.
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((node, above)) = stack.pop() {
        match node {
            Value::Array(items) => {
                deepest = deepest.max(above + 1);
                stack.extend(items.iter().map(|item| (item, above + 1)));
            }
            Value::Object(map) => {
                deepest = deepest.max(above + 1);
                stack.extend(map.values().map(|item| (item, above + 1)));
            }
            _ => {}
        }
    }
    deepest
}

fn pick<'a>(at: &Index, among: &[&'a Node]) -> Option<&'a Node> {
    (!among.is_empty()).then(|| among[at.index(among.len())])
}

// ---------------------------------------------------------------------------------------------------------------
// Event cases
// ---------------------------------------------------------------------------------------------------------------

/// A sample event from `events/`, and whether it parses as it is.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    event: Value,
    parses: bool,
}

/// Every sample event under `root/events` except the outcome events in `events/outputs/`.
fn samples(root: &Path) -> Result<Vec<Sample>, String> {
    let mut folders = vec![root.join("events")];
    let mut files = Vec::new();
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
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
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let event: Value = serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = path.strip_prefix(&events_dir).unwrap_or(&path).display().to_string();
        let parses = events::parse(event.clone()).is_ok();
        samples.push(Sample { name, event, parses });
    }
    if samples.is_empty() {
        return Err(format!("no sample events under {}", events_dir.display()));
    }
    Ok(samples)
}

/// One change to an event. Indexes choose among the nodes the change applies to, in the event at hand.
#[derive(Debug, Clone)]
enum Mutation {
    /// Remove a field or an array element.
    Drop(Index),
    /// Replace a value, usually with one of another type.
    Retype(Index, Value),
    /// Replace a string (or any value, where there is none) with a huge string of `char`.
    Huge(Index, char),
    /// Wrap a value in this many arrays (`true`) or objects.
    Nest(Index, usize, bool),
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
        Mutation::Nest(at, levels, arrays) => {
            let target = pick(at, &below_root)?.pointer.clone();
            if let Some(node) = node_mut(event, &target) {
                let core = node.take();
                *node = nested(*levels, *arrays, core);
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

/// Whether `(source, detail-type)` names an input, as DESIGN §5 lists them.
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
/// (DESIGN §5, `events.rs`), not from the parser's code.
fn must_reject(event: &Value) -> Option<&'static str> {
    let Some(envelope) = event.as_object() else { return Some("an event is a JSON object") };
    let text = |key: &str| envelope.get(key).and_then(Value::as_str);
    let (Some(source), Some(detail_type), Some(_)) = (text("source"), text("detail-type"), text("id")) else {
        return Some("source, detail-type and id are strings");
    };
    if !is_input(source, detail_type) {
        return Some("(source, detail-type) names an input");
    }
    let Some(detail) = envelope.get("detail") else { return Some("an event has a detail") };
    if !detail.is_object() {
        return Some("a detail is a JSON object");
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
enum EventCase {
    /// A sample with one to four mutations, and perhaps bytes that are not UTF-8 inserted into its JSON text.
    Mutated { sample: Index, mutations: Vec<Mutation>, corrupt: Option<(Index, Vec<u8>)> },
    /// Any JSON value.
    Arbitrary(Value),
}

const KNOWN_SOURCES: [&str; 7] = [
    "aws.events",
    "aws.scheduler",
    "aws.appstream",
    "aws.workspaces",
    "aws.cloudwatch",
    "aws.thinclient",
    AUTOPILOT_SOURCE,
];

fn known_detail_types() -> Vec<String> {
    let mut types: Vec<String> = [
        "Scheduled Event",
        CLOUDTRAIL_DETAIL_TYPE,
        "AppStream Session Notification",
        "WorkSpaces Access",
        "CloudWatch Alarm State Change",
    ]
    .into_iter()
    .chain(Command::DETAIL_TYPES)
    .map(str::to_owned)
    .collect();
    let near_misses: Vec<String> = types
        .iter()
        .flat_map(|t| [t.to_lowercase(), t.to_uppercase(), format!("{t} "), format!(" {t}"), t.replace(' ', "")])
        .collect();
    types.extend(near_misses);
    types.extend(
        ["Export Completed", "Rollout Started", "Escalation", "EC2 Instance State-change Notification", ""]
            .map(str::to_owned),
    );
    types
}

fn detail_type_text() -> BoxedStrategy<String> {
    prop_oneof![4 => prop::sample::select(known_detail_types()), 1 => "[A-Za-z .-]{0,32}"].boxed()
}

fn source_text() -> BoxedStrategy<String> {
    let misses = ["aws.Events", "aws.events ", "euc.autopilot2", "euc", "aws.ec2", "", "aws.workspaces.pools"];
    let known: Vec<String> = KNOWN_SOURCES.iter().chain(misses.iter()).map(|s| (*s).to_owned()).collect();
    prop_oneof![4 => prop::sample::select(known), 1 => "[a-z.]{0,20}"].boxed()
}

fn wrong_value() -> BoxedStrategy<Value> {
    prop::sample::select(vec![
        Value::Null,
        json!(true),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(1e300),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(""),
        json!("text"),
        json!([]),
        json!([1, "two"]),
        json!({}),
        json!({ "unexpected": true }),
    ])
    .boxed()
}

fn bad_arn() -> BoxedStrategy<String> {
    let broken = [
        "arn:aws:iam::12345:role/AppStreamExportRole",
        "arn:aws:iam::1234567890123:role/AppStreamExportRole",
        "arn:aws:iam::12345678901x:role/AppStreamExportRole",
        "arn:aws:iam::123456789012:user/alice",
        "arn::iam::123456789012:role/x",
        "arn:aws:iam:eu-central-1:123456789012:role/x",
        "arn:aws:workspaces:mars-north-9:123456789012:workspace/ws-f8h2k9m1p",
        "arn:aws:scheduler:eu-central-1:123456789012",
        "arn:aws:iam::123456789012:role/",
        "arn:aws:iam::123456789012:role/a#b",
        "ARN:AWS:IAM::123456789012:ROLE/X",
        "arn:aws",
        "arn:",
        "not-an-arn",
        "",
    ];
    prop_oneof![
        3 => prop::sample::select(broken.map(str::to_owned).to_vec()),
        2 => "arn:[a-z0-9-]{0,6}:[a-z0-9-]{0,12}:[a-z0-9-]{0,16}:[0-9a-z]{0,14}:[ -~]{0,24}",
    ]
    .boxed()
}

fn bad_id() -> BoxedStrategy<String> {
    let broken = [
        "",
        " ",
        "#",
        "ws-#1",
        "wspool-",
        "d-",
        "../../etc/passwd",
        "ws-f8h2k9m1p\n",
        "\u{0}",
        "ws-\u{202e}evil",
        "wspool-1a2b3c4d5 ",
        "ｗｓ-ｆ８",
        "\u{1F600}",
    ];
    prop_oneof![
        3 => prop::sample::select(broken.map(str::to_owned).to_vec()),
        1 => Just("x".repeat(300)),
        2 => "[ -~]{0,40}",
        1 => any::<String>(),
    ]
    .boxed()
}

fn mutation(deliverable: bool) -> BoxedStrategy<Mutation> {
    let levels = if deliverable {
        (1usize..=100).boxed()
    } else {
        prop_oneof![6 => 1usize..=64, 1 => Just(127usize), 1 => Just(129usize), 2 => Just(DEEP)].boxed()
    };
    let fill = prop::sample::select(vec!['a', 'é', '字', '😀', '"', '\\', '\u{0}']);
    prop_oneof![
        3 => any::<Index>().prop_map(Mutation::Drop),
        3 => (any::<Index>(), wrong_value()).prop_map(|(at, to)| Mutation::Retype(at, to)),
        1 => (any::<Index>(), fill).prop_map(|(at, fill)| Mutation::Huge(at, fill)),
        1 => (any::<Index>(), levels, any::<bool>()).prop_map(|(at, n, arrays)| Mutation::Nest(at, n, arrays)),
        2 => (any::<Index>(), bad_arn()).prop_map(|(at, arn)| Mutation::BadArn(at, arn)),
        2 => (any::<Index>(), bad_id()).prop_map(|(at, id)| Mutation::BadId(at, id)),
        2 => detail_type_text().prop_map(Mutation::DetailType),
        2 => source_text().prop_map(Mutation::Source),
        2 => (any::<Index>(), "new[A-Za-z0-9]{1,12}", wrong_value())
            .prop_map(|(at, key, value)| Mutation::AddField(at, key, value)),
    ]
    .boxed()
}

/// Bytes that are never valid UTF-8 (lone continuation, overlong, truncated, surrogate, beyond U+10FFFF).
fn not_utf8() -> BoxedStrategy<Vec<u8>> {
    prop::sample::select(vec![
        vec![0xff],
        vec![0x80],
        vec![0xc0, 0xaf],
        vec![0xe2, 0x82],
        vec![0xed, 0xa0, 0x80],
        vec![0xf4, 0x90, 0x80, 0x80],
        vec![0xfe, 0xfe, 0xff, 0xff],
    ])
    .boxed()
}

const FIELD_NAMES: [&str; 48] = [
    "source",
    "detail-type",
    "id",
    "time",
    "account",
    "region",
    "resources",
    "version",
    "detail",
    "eventSource",
    "eventName",
    "eventTime",
    "eventID",
    "awsRegion",
    "errorCode",
    "userIdentity",
    "requestParameters",
    "responseElements",
    "name",
    "poolId",
    "capacity",
    "desiredUserSessions",
    "computeCapacity",
    "desiredInstances",
    "imageName",
    "amiName",
    "iamRoleArn",
    "retry",
    "maxAttempts",
    "backoff",
    "tagSpecifications",
    "softwareSetId",
    "rolloutId",
    "reason",
    "resourceType",
    "resourceId",
    "fleetName",
    "stackName",
    "sessionId",
    "eventType",
    "actionType",
    "workspaceId",
    "directoryId",
    "loginTime",
    "alarmName",
    "state",
    "previousState",
    "value",
];

fn field_name() -> BoxedStrategy<String> {
    prop_oneof![3 => prop::sample::select(FIELD_NAMES.map(str::to_owned).to_vec()), 1 => "[a-zA-Z-]{0,12}"].boxed()
}

fn vocabulary() -> BoxedStrategy<String> {
    let mut words: Vec<String> = KNOWN_SOURCES.map(str::to_owned).to_vec();
    words.extend(known_detail_types());
    words.extend(
        [
            "appstream.amazonaws.com",
            "workspaces.amazonaws.com",
            "thinclient.amazonaws.com",
            "UpdateWorkspacesPool",
            "StartImageBuilder",
            "CreateExportImageTask",
            "ModifyWorkspaceState",
            "UpdateEnvironment",
            "2026-11-23T06:00:00Z",
            "2026-11-23T07:00:12.345+0000",
            "123456789012",
            "eu-central-1",
            "wspool-1a2b3c4d5",
            "ws-f8h2k9m1p",
            "ALARM",
            "SESSION_STARTED",
            "arn:aws:iam::123456789012:role/AppStreamExportRole",
        ]
        .map(str::to_owned),
    );
    prop::sample::select(words).boxed()
}

/// Any JSON value, with keys and strings often taken from the events' own vocabulary.
fn arbitrary_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        vocabulary().prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
    .boxed()
}

/// An EventBridge-shaped event with a known or near-miss source and detail type and an arbitrary detail.
fn arbitrary_envelope() -> BoxedStrategy<Value> {
    let detail = prop::collection::vec((field_name(), arbitrary_json()), 0..8)
        .prop_map(|fields| Value::Object(fields.into_iter().collect()));
    (source_text(), detail_type_text(), proptest::option::of(vocabulary()), proptest::option::of(vocabulary()), detail)
        .prop_map(|(source, detail_type, id, time, detail)| {
            let mut event = json!({ "version": "0", "source": source, "detail-type": detail_type, "detail": detail });
            if let Some(object) = event.as_object_mut() {
                object.extend(id.map(|id| ("id".to_owned(), Value::String(id))));
                object.extend(time.map(|time| ("time".to_owned(), Value::String(time))));
            }
            event
        })
        .boxed()
}

fn event_case(deliverable: bool) -> BoxedStrategy<EventCase> {
    let corrupt = if deliverable {
        Just(None).boxed()
    } else {
        proptest::option::weighted(0.1, (any::<Index>(), not_utf8())).boxed()
    };
    let mutated = (any::<Index>(), prop::collection::vec(mutation(deliverable), 1..=4), corrupt)
        .prop_map(|(sample, mutations, corrupt)| EventCase::Mutated { sample, mutations, corrupt });
    let arbitrary = prop_oneof![arbitrary_json(), arbitrary_envelope()].prop_map(EventCase::Arbitrary);
    prop_oneof![6 => mutated, 2 => arbitrary].boxed()
}

/// A runner whose random numbers come from `seed` only.
fn runner(cases: u32, seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&seed.rotate_left(29).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// `count` values of `strategy`.
fn generate<S: Strategy>(strategy: &S, count: u32, runner: &mut TestRunner, figures: &mut Figures) -> Vec<S::Value> {
    let mut values = Vec::new();
    for _ in 0..count {
        match strategy.new_tree(runner) {
            Ok(tree) => values.push(tree.current()),
            Err(reason) => figures.corpus_problem(format!("the generator gave up: {reason}")),
        }
    }
    values
}

/// A generated event ready to use: the event, what it must come to, and a label for failures.
struct BuiltEvent {
    /// The sample it was made from (`None`: arbitrary).
    sample: Option<usize>,
    event: Value,
    expect: Expect<'static>,
    label: String,
    corrupt: Option<(Index, Vec<u8>)>,
}

fn build(case: EventCase, samples: &[Sample], huge: usize) -> Option<BuiltEvent> {
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
fn check_event(figures: &mut Figures, built: BuiltEvent) {
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

// ---------------------------------------------------------------------------------------------------------------
// Policy cases
// ---------------------------------------------------------------------------------------------------------------

/// Keys whose values are durations (`30m`), time zones, times of day; objects that are maps of names, not
/// structs (a new key there is a new name, not an unknown field).
const DURATION_KEYS: [&str; 14] = [
    "prewarm",
    "idle_grace",
    "cooldown",
    "max_runtime",
    "warn_before",
    "backoff",
    "max_duration",
    "bake",
    "warn_support_ending",
    "within",
    "reporting_stale_after",
    "reboot_after",
    "reboot_window",
    "transient_grace",
];
const MAP_KEYS: [&str; 4] = ["calendars", "schedules", "tag", "alarms"];

#[derive(Debug, Clone)]
enum PolicyMutation {
    Drop(Index),
    Retype(Index, Value),
    /// Replace a number with another (negative, fractional, huge, zero, out of range).
    Number(Index, Value),
    Duration(Index, String),
    Timezone(Index, String),
    TimeOfDay(Index, String),
    Weekday(Index, String),
    /// Add a key to a mapping.
    UnknownKey(Index, String, Value),
    Huge(Index),
    Nest(Index, usize),
}

/// A change to the YAML text itself (what a `Value` cannot express: NaN, tags, anchors, broken syntax).
#[derive(Debug, Clone)]
enum TextEdit {
    /// Replace the value of the chosen `key: value` line.
    Value(Index, String),
    /// Insert a line before the chosen one.
    Line(Index, String),
    /// Cut the document at the chosen character.
    Truncate(Index),
}

#[derive(Debug, Clone)]
enum PolicyCase {
    Mutated {
        mutations: Vec<PolicyMutation>,
        edit: Option<TextEdit>,
    },
    /// Any JSON value as a YAML document.
    Arbitrary(Value),
    /// Any text.
    Text(String),
}

fn policy_mutation() -> BoxedStrategy<PolicyMutation> {
    let numbers = prop::sample::select(vec![
        json!(-1),
        json!(0),
        json!(11),
        json!(4_294_967_296u64),
        json!(1.5),
        json!(-0.5),
        json!(1e300),
        json!(u64::MAX),
    ]);
    let durations = prop::sample::select(
        [
            "",
            "5",
            "m",
            "1h1h",
            "30m1h",
            "1.5h",
            "-5m",
            "1w",
            "1 h",
            "PT1H",
            "5 minutes",
            "٣m",
            "2147483647d",
            "99999999999s",
            "0x10m",
            "1h 30m",
            "h1",
        ]
        .map(str::to_owned)
        .to_vec(),
    );
    let zones = prop::sample::select(
        ["Mars/Olympus_Mons", "CET+1", "Europe/Berlin ", " UTC", "GMT+25", "", "Europe", "Europe/Berl1n", "UTC;DROP"]
            .map(str::to_owned)
            .to_vec(),
    );
    let times = prop::sample::select(
        ["24:00", "7:00", "07:60", "0700", "07:00:00", "ab:cd", "", "-1:00", "+7:00", "07:+5", "07:0", "１２:00"]
            .map(str::to_owned)
            .to_vec(),
    );
    let days = prop::sample::select(
        ["monday", "Mon", "mon-", "-fri", "mon-fri-sat", "", "xyz", "mon,tue", "MON", "mon–fri"]
            .map(str::to_owned)
            .to_vec(),
    );
    prop_oneof![
        3 => any::<Index>().prop_map(PolicyMutation::Drop),
        3 => (any::<Index>(), wrong_value()).prop_map(|(at, to)| PolicyMutation::Retype(at, to)),
        2 => (any::<Index>(), numbers).prop_map(|(at, n)| PolicyMutation::Number(at, n)),
        2 => (any::<Index>(), durations).prop_map(|(at, d)| PolicyMutation::Duration(at, d)),
        1 => (any::<Index>(), zones).prop_map(|(at, z)| PolicyMutation::Timezone(at, z)),
        1 => (any::<Index>(), times).prop_map(|(at, t)| PolicyMutation::TimeOfDay(at, t)),
        1 => (any::<Index>(), days).prop_map(|(at, d)| PolicyMutation::Weekday(at, d)),
        2 => (any::<Index>(), "new_[a-z]{1,10}", wrong_value()).prop_map(|(at, k, v)| PolicyMutation::UnknownKey(at, k, v)),
        1 => any::<Index>().prop_map(PolicyMutation::Huge),
        1 => (any::<Index>(), prop_oneof![3 => 1usize..=40, 1 => Just(127usize), 1 => Just(200usize)])
            .prop_map(|(at, n)| PolicyMutation::Nest(at, n)),
    ]
    .boxed()
}

fn text_edit() -> BoxedStrategy<TextEdit> {
    let values = prop::sample::select(
        [
            ".nan",
            ".inf",
            "-.inf",
            "~",
            "!!binary AQ==",
            "*undefined",
            "&a [*a]",
            "\"unterminated",
            "{",
            "[",
            "- x",
            "\t1",
            "? x",
            "!!python/object:os.system ls",
            "0x1F",
            "0o17",
            "1_000",
            "1e400",
            "'",
            "|",
            ">-",
            "@",
            "`",
            "%",
            "null",
            "yes",
            "[1, 2",
            "{a: 1, a: 2}",
            "!!float 1",
            "!!int 0.5",
            "2026-13-45",
        ]
        .map(str::to_owned)
        .to_vec(),
    );
    let lines = prop::sample::select(
        [
            "---",
            "...",
            "%YAML 1.2",
            "\tversion: 1",
            "version: 1",
            "<<: *x",
            "? [a, b]\n: c",
            "!!map",
            "&anchor",
            "# comment",
            "unknown_key: 1",
            "- item",
            "  - nested item",
            ": no key",
        ]
        .map(str::to_owned)
        .to_vec(),
    );
    prop_oneof![
        3 => (any::<Index>(), values).prop_map(|(at, v)| TextEdit::Value(at, v)),
        2 => (any::<Index>(), lines).prop_map(|(at, l)| TextEdit::Line(at, l)),
        1 => any::<Index>().prop_map(TextEdit::Truncate),
    ]
    .boxed()
}

const POLICY_KEYS: [&str; 24] = [
    "version",
    "defaults",
    "timezone",
    "dry_run",
    "calendars",
    "schedules",
    "periods",
    "days",
    "start",
    "end",
    "holidays",
    "prewarm",
    "capacity",
    "select",
    "tag",
    "names",
    "ids",
    "schedule",
    "in_hours",
    "off_hours",
    "min",
    "max",
    "rollouts",
    "remediation",
];

fn policy_case() -> BoxedStrategy<PolicyCase> {
    let mutated = (prop::collection::vec(policy_mutation(), 1..=3), proptest::option::weighted(0.25, text_edit()))
        .prop_map(|(mutations, edit)| PolicyCase::Mutated { mutations, edit });
    let key = prop_oneof![3 => prop::sample::select(POLICY_KEYS.map(str::to_owned).to_vec()), 1 => "[a-z_]{0,10}"];
    let arbitrary = prop::collection::vec((key, arbitrary_json()), 0..8)
        .prop_map(|fields| PolicyCase::Arbitrary(Value::Object(fields.into_iter().collect())));
    let token = prop_oneof![
        4 => prop::sample::select(
            [
                "version", ":", " ", "\n", "  ", "- ", "[", "]", "{", "}", ",", "1", "&a", "*a", "!!str", "'", "\"", "#",
                "---", "...", "capacity", "schedules", "? ", "|", ">", "%YAML 1.2", "\t", "07:00", "30m", "mon-fri",
                "Europe/Berlin", "0.75",
            ]
            .map(str::to_owned)
            .to_vec()
        ),
        1 => any::<String>(),
    ];
    let text = prop::collection::vec(token, 0..60).prop_map(|tokens| PolicyCase::Text(tokens.concat()));
    prop_oneof![6 => mutated, 1 => arbitrary, 1 => text].boxed()
}

/// `capacity[0].in_hours.min`: a pointer as the validator writes paths.
fn policy_path(pointer: &[Step]) -> String {
    let mut path = String::new();
    for step in pointer {
        match step {
            Step::Key(key) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Step::At(index) => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

/// Applies one policy mutation; returns the text the rejection must contain when the mutation alone makes
/// the (valid) document invalid.
fn apply_policy(document: &mut Value, mutation: &PolicyMutation) -> Option<String> {
    let all = nodes(document);
    let below_root: Vec<&Node> = all.iter().filter(|n| !n.pointer.is_empty()).collect();
    let keyed = |keys: &[&str]| -> Vec<&Node> {
        below_root.iter().copied().filter(|n| n.string.is_some() && keys.contains(&n.key())).collect()
    };
    let replace = |document: &mut Value, among: Vec<&Node>, at: &Index, text: &str| -> Option<String> {
        let target = pick(at, &among)?.pointer.clone();
        set(document, &target, Value::String(text.to_owned()));
        Some(policy_path(&target))
    };
    match mutation {
        PolicyMutation::Drop(at) => {
            let target = pick(at, &below_root)?.pointer.clone();
            remove(document, &target);
            None
        }
        PolicyMutation::Retype(at, to) => {
            let target = pick(at, &below_root)?.pointer.clone();
            set(document, &target, to.clone());
            None
        }
        PolicyMutation::Number(at, number) => {
            let numbers: Vec<&Node> = below_root.iter().copied().filter(|n| n.number).collect();
            let target = pick(at, &numbers)?.pointer.clone();
            set(document, &target, number.clone());
            None
        }
        PolicyMutation::Duration(at, text) => replace(document, keyed(&DURATION_KEYS), at, text),
        PolicyMutation::Timezone(at, text) => replace(document, keyed(&["timezone"]), at, text),
        PolicyMutation::TimeOfDay(at, text) => replace(document, keyed(&["start", "end"]), at, text),
        PolicyMutation::Weekday(at, text) => {
            let days: Vec<&Node> = below_root
                .iter()
                .copied()
                .filter(|n| {
                    n.string.is_some()
                        && matches!(n.pointer.as_slice(), [.., Step::Key(key), Step::At(_)] if key == "days")
                })
                .collect();
            replace(document, days, at, text)
        }
        PolicyMutation::UnknownKey(at, key, value) => {
            let objects: Vec<&Node> = all.iter().filter(|n| n.object).collect();
            let target = pick(at, &objects)?;
            let structure = !MAP_KEYS.contains(&target.key());
            let pointer = target.pointer.clone();
            if let Some(Value::Object(map)) = node_mut(document, &pointer) {
                map.insert(key.clone(), value.clone());
            }
            structure.then(|| format!("unknown field `{key}`"))
        }
        PolicyMutation::Huge(at) => {
            let strings: Vec<&Node> = below_root.iter().copied().filter(|n| n.string.is_some()).collect();
            replace(document, strings, at, &"y".repeat(HUGE_POLICY_TEXT)).and(None)
        }
        PolicyMutation::Nest(at, levels) => {
            let target = pick(at, &below_root)?.pointer.clone();
            if let Some(node) = node_mut(document, &target) {
                let core = node.take();
                *node = nested(*levels, true, core);
            }
            None
        }
    }
}

fn edit_text(text: &str, edit: &TextEdit) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    match edit {
        TextEdit::Value(at, value) => {
            let keyed: Vec<usize> = (0..lines.len()).filter(|i| lines[*i].contains(": ")).collect();
            if let Some(line) = (!keyed.is_empty()).then(|| keyed[at.index(keyed.len())])
                && let Some((key, _)) = lines[line].split_once(": ")
            {
                lines[line] = format!("{key}: {value}");
            }
        }
        TextEdit::Line(at, line) => {
            let position = at.index(lines.len() + 1);
            lines.insert(position, line.clone());
        }
        TextEdit::Truncate(at) => {
            let cut = text.char_indices().map(|(i, _)| i).nth(at.index(text.chars().count().max(1))).unwrap_or(0);
            return text[..cut].to_owned();
        }
    }
    lines.join("\n") + "\n"
}

fn check_policy(figures: &mut Figures, base: &Value, case: PolicyCase) {
    let (label, text, expect) = match case {
        PolicyCase::Text(text) => (clip(&format!("text {text:?}"), 300), text, None),
        PolicyCase::Arbitrary(document) => {
            let label = clip(&format!("arbitrary {document}"), 300);
            match serde_yaml_ng::to_string(&document) {
                Ok(text) => (label, text, None),
                Err(error) => return figures.corpus_problem(format!("{label}: cannot write YAML: {error}")),
            }
        }
        PolicyCase::Mutated { mutations, edit } => {
            let mut document = base.clone();
            let wanted: Vec<Option<String>> = mutations.iter().map(|m| apply_policy(&mut document, m)).collect();
            let label = clip(&format!("examples/autopilot.yaml + {mutations:?} + {edit:?}"), 300);
            let text = match serde_yaml_ng::to_string(&document) {
                Ok(text) => text,
                Err(error) => return figures.corpus_problem(format!("{label}: cannot write YAML: {error}")),
            };
            // One mutation that breaks a rule, and nothing else: the rejection must name it.
            let expect = match (wanted.as_slice(), &edit) {
                ([Some(wanted)], None) => Some(wanted.clone()),
                _ => None,
            };
            let text = match &edit {
                Some(edit) => edit_text(&text, edit),
                None => text,
            };
            (label, text, expect)
        }
    };
    let outcome = guarded(|| Policy::from_yaml(&text));
    let expect = match &expect {
        Some(wanted) => Expect::Reject(Some(wanted.as_str())),
        None => Expect::Either,
    };
    judge_policy(figures, &label, outcome, expect);
}

// ---------------------------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------------------------

/// Property-based generation over the event parser and the policy parser: `cases` event cases (mutated
/// samples from `events/`, arbitrary JSON, EventBridge-shaped events with arbitrary details) and `cases` policy
/// cases (mutations of `examples/autopilot.yaml`, YAML text edits, arbitrary documents and text). The same
/// `seed` gives the same cases. Properties: nothing panics; a rejection is a clear `InvalidInput`; an input
/// that breaks a rule the parser promises is rejected; a new field in an AWS-authored detail is accepted; the
/// `Value` and its JSON bytes agree; bytes that are not UTF-8 or nest too deep are refused.
pub fn run_properties(cases: u32, seed: u64) -> Figures {
    let started = Instant::now();
    let root = workspace_root();
    let mut figures = Figures::default();
    let events_root = root.clone();
    // Both at once, on their own stacks: events on a big one (deep values), policies on Lambda's.
    let spawn = |name: &str, size: usize| std::thread::Builder::new().name(name.to_owned()).stack_size(size);
    let events =
        spawn("bad-input-event-properties", BIG_STACK).spawn(move || event_properties(&events_root, cases, seed));
    let policies =
        spawn("bad-input-policy-properties", LAMBDA_STACK).spawn(move || policy_properties(&root, cases, seed));
    for run in [events, policies] {
        match run.map_err(|e| e.to_string()).and_then(|thread| thread.join().map_err(|p| panic_text(p.as_ref()))) {
            Ok(run) => figures.absorb(run),
            Err(error) => {
                figures.panics += 1;
                figures.note(format!("a property thread failed: {error}"));
            }
        }
    }
    figures.elapsed = started.elapsed();
    figures
}

fn event_properties(root: &Path, cases: u32, seed: u64) -> Figures {
    let mut figures = Figures::default();
    let samples = match samples(root) {
        Ok(samples) => samples,
        Err(error) => {
            figures.corpus_problem(error);
            return figures;
        }
    };
    let mut runner = runner(cases, seed);
    let strategy = event_case(false);
    for _ in 0..cases {
        let case = match strategy.new_tree(&mut runner) {
            Ok(tree) => tree.current(),
            Err(reason) => {
                figures.corpus_problem(format!("the event generator gave up: {reason}"));
                break;
            }
        };
        if let Some(built) = build(case, &samples, HUGE) {
            check_event(&mut figures, built);
        }
    }
    figures
}

fn policy_properties(root: &Path, cases: u32, seed: u64) -> Figures {
    let mut figures = Figures::default();
    let example = root.join("examples").join("autopilot.yaml");
    let base = std::fs::read_to_string(&example)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_yaml_ng::from_str::<Value>(&text).map_err(|e| e.to_string()));
    let base = match base {
        Ok(base) => base,
        Err(error) => {
            figures.corpus_problem(format!("{}: {error}", example.display()));
            return figures;
        }
    };
    let mut runner = runner(cases, seed ^ 0x706f_6c69_6379);
    let strategy = policy_case();
    for _ in 0..cases {
        match strategy.new_tree(&mut runner) {
            Ok(tree) => check_policy(&mut figures, &base, tree.current()),
            Err(reason) => {
                figures.corpus_problem(format!("the policy generator gave up: {reason}"));
                break;
            }
        }
    }
    figures
}

// ---------------------------------------------------------------------------------------------------------------
// The functions' entry points
// ---------------------------------------------------------------------------------------------------------------

/// The functions' real entry points (`handle`, as [`Function::invoke`] calls it) against a local estate
/// (`sim/estates/samples.yaml` with `sim/estates/samples-policy.yaml` stored as the policy):
/// - every `handlers/<function>/*.json` file to that function: each parses, and each must be refused as
///   `InvalidInput` with the text `expected.yaml` gives (bad ARNs, account ids, resource ids, inputs the
///   function does not handle);
/// - every JSON file of `events/` to every function: `InvalidInput`, whatever the function;
/// - `cases` generated events (mutated samples, strings up to what EventBridge delivers, nesting
///   `serde_json` lets through) to every function: one the parser refuses must be `InvalidInput`, one it
///   accepts must not come back `Retryable` (the estate is healthy: nothing but the input can be at fault),
///   nothing may panic.
pub async fn run_handlers(root: &Path, cases: u32, seed: u64) -> Result<Figures, String> {
    let started = Instant::now();
    let estate = autopilot_sim::estate::Estate::from_yaml(crate::samples::ESTATE)
        .map_err(|e| format!("sim/estates/samples.yaml: {e}"))?;
    let local = autopilot_sim::LocalEstate::start(&estate, seed, 0).await?;
    local
        .ledger()
        .put_policy(crate::samples::POLICY, local.simulator.now())
        .await
        .map_err(|e| format!("sim/estates/samples-policy.yaml cannot be stored: {e}"))?;
    let crew = crate::crew(&local);
    let dir = corpus_dir(root);
    let expected = expectations(&dir)?;
    let mut figures = Figures::default();

    for (folder, function) in handler_folders(&dir)? {
        let Some(function) = function else {
            figures.corpus_problem(format!("handlers/{folder}: no function has this name"));
            continue;
        };
        for (name, path) in corpus_files(&dir.join("handlers"), &folder, &["json"])? {
            figures.corpus_files += 1;
            let name = format!("handlers/{name}");
            let event = events::read_sample(&path);
            if let Err(error) = events::parse(event.clone()) {
                figures.corpus_problem(format!("{name}: must parse (the event parser's cases go in events/): {error}"));
            }
            let outcome = invoke(function, crew.of(function), event).await;
            let wanted = expected.get(&name).map(String::as_str);
            judge(&mut figures, &name, outcome, Expect::Reject(wanted), Tally::Handlers, |e| Rejection::handler(&e));
            figures.handler_cases += 1;
        }
    }

    for (name, path) in corpus_files(&dir, "events", &["json"])? {
        // Bytes that are not JSON never reach a handler: lambda_runtime refuses them.
        let Ok(event) =
            std::fs::read(&path).map_err(|_| ()).and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|_| ()))
        else {
            continue;
        };
        for function in Function::ALL {
            let outcome = invoke(function, crew.of(function), event.clone()).await;
            let label = format!("{name} → {}", function.name());
            judge(&mut figures, &label, outcome, Expect::Reject(None), Tally::Handlers, |e| Rejection::handler(&e));
            figures.handler_cases += 1;
        }
    }

    let samples = samples(root)?;
    // What each sample itself comes to: a Retryable there is about the world, not the input (an export task
    // CloudTrail reports before the service lists it), so a mutation of that sample may be Retryable too.
    let mut retryable_anyway = std::collections::BTreeSet::new();
    for (index, sample) in samples.iter().enumerate() {
        let mut event = sample.event.clone();
        renumber(&mut event, format!("bad-input-{seed}-sample-{index}"));
        for function in Function::ALL {
            if let Outcome::Rejected(error) = invoke(function, crew.of(function), event.clone()).await
                && error.class == ErrorClass::Retryable
            {
                retryable_anyway.insert((index, function.name()));
            }
        }
    }
    let mut runner = runner(cases, seed ^ 0x6861_6e64_6c65);
    let generated = generate(&event_case(true), cases, &mut runner, &mut figures);
    for (number, case) in generated.into_iter().enumerate() {
        let Some(mut built) = build(case, &samples, HUGE_DELIVERABLE) else { continue };
        renumber(&mut built.event, format!("bad-input-{seed}-{number}"));
        if depth(&built.event) >= REFUSED_DEPTH {
            continue;
        }
        figures.generated_cases += 1;
        let parsed = guarded(|| events::parse(built.event.clone()));
        let refused = matches!(parsed, Outcome::Rejected(_));
        for function in Function::ALL {
            let outcome = invoke(function, crew.of(function), built.event.clone()).await;
            let label = format!("{} → {}", built.label, function.name());
            figures.handler_cases += 1;
            if refused {
                judge(&mut figures, &label, outcome, Expect::Reject(None), Tally::Handlers, |e| Rejection::handler(&e));
                continue;
            }
            match outcome {
                Outcome::Panicked(message) => {
                    figures.panics += 1;
                    figures.note(format!("{label}: panicked: {message}"));
                }
                Outcome::Rejected(error)
                    if error.class == ErrorClass::Retryable
                        && !built.sample.is_some_and(|index| retryable_anyway.contains(&(index, function.name()))) =>
                {
                    figures.misclassified += 1;
                    figures.note(format!("{label}: Retryable on a healthy estate: {}", error.message));
                }
                Outcome::Rejected(error) if error.message.chars().count() > MAX_MESSAGE => {
                    figures.unclear += 1;
                    figures.note(format!("{label}: a {} character message", error.message.chars().count()));
                }
                Outcome::Rejected(_) | Outcome::Accepted => {}
            }
        }
    }
    figures.elapsed = started.elapsed();
    Ok(figures)
}

/// Gives an event a new id (and its CloudTrail record a new `eventID`), where it has one: each case is a new
/// event, and no case finds another's idempotency record.
fn renumber(event: &mut Value, id: String) {
    if let Some(envelope) = event.as_object_mut()
        && envelope.get("id").is_some_and(Value::is_string)
    {
        envelope.insert("id".into(), Value::String(id.clone()));
    }
    if let Some(detail) = event.get_mut("detail").and_then(Value::as_object_mut)
        && detail.get("eventID").is_some_and(Value::is_string)
    {
        detail.insert("eventID".into(), Value::String(id));
    }
}

/// One invocation, a panic caught and reported.
async fn invoke(function: Function, deps: &autopilot_shared::runtime::Deps, event: Value) -> Outcome<AutopilotError> {
    match AssertUnwindSafe(function.invoke(deps, event, REMAINING)).catch_unwind().await {
        Ok(Ok(_)) => Outcome::Accepted,
        Ok(Err(error)) => Outcome::Rejected(error),
        Err(payload) => Outcome::Panicked(panic_text(payload.as_ref())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_and_depth_cope_with_deep_values() {
        let deep = nested(DEEP, true, json!("core"));
        assert_eq!(depth(&deep), DEEP);
        assert_eq!(nodes(&deep).len(), MAX_WALK);
        let handle = on_stack("drop", BIG_STACK, move || drop(deep));
        assert!(handle.is_ok());
    }

    #[test]
    fn the_oracle_follows_the_contract() {
        let tick = read_sample(&workspace_root(), "scheduled-tick-rule.json");
        assert_eq!(must_reject(&tick), None);
        let mut no_time = tick.clone();
        no_time.as_object_mut().map(|t| t.remove("time"));
        assert!(must_reject(&no_time).is_some());
        let mut command = read_sample(&workspace_root(), "command-rollout-paused.json");
        assert_eq!(must_reject(&command), None);
        command["detail"]["force"] = json!(true);
        assert!(must_reject(&command).is_some());
    }

    #[test]
    fn clip_keeps_char_boundaries() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("ééé", 2), "éé… (2 more bytes)");
    }
}

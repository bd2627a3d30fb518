//! Bad input: malformed events and invalid policy documents must come back as clear `InvalidInput` errors —
//! never a panic, never another class, never a silent acceptance.
//!
//! Three runs, each counting into [`Figures`]:
//! - [`run_corpus`]: the files under `tests/corpus/bad-input/` (see its README) and huge and deeply nested
//!   inputs built at run time, through the event parser ([`autopilot_shared::events::parse_slice`]: bytes, as
//!   Lambda delivers them) and the policy parser ([`autopilot_shared::policy::Policy::from_yaml`]); each must be
//!   rejected with the text `expected.yaml` gives for it.
//! - [`run_properties`]: proptest cases from a seeded [`proptest::test_runner::TestRunner`] (a run is
//!   reproducible from its seed): mutations of every sample event in `events/` and of `examples/autopilot.yaml`,
//!   arbitrary JSON, arbitrary YAML.
//! - [`run_handlers`]: the functions' real entry points (`handle`) against a local estate: the handler
//!   corpus (events that parse but that the function must refuse: bad ARNs, account ids, resource ids),
//!   every event of the corpus, and generated cases of sizes EventBridge can deliver.
//!
//! What can reach the parsers: in Lambda, `lambda_runtime` turns the invocation's bytes into the
//! `serde_json::Value` our handler receives, with `serde_json` and its recursion limit of 128; bytes that are
//! not UTF-8 or not JSON are refused by the runtime before our code runs.
//! [`autopilot_shared::events::parse_slice`] makes the same conversion, so the corpus' `*.bin` files show what
//! becomes of such bytes. A `Value` nested deeper than 128 cannot come from Lambda; it is parsed here anyway (on
//! a thread with a large stack, since building, serialising and dropping one recurses) to show that the parser
//! itself does not fall over.
//!
//! The parts: [`corpus`] (the committed corpus) and [`extremes`] (huge and deep inputs built at run time);
//! [`properties`] (the generated run) with [`generators`] (the strategies), [`events`] (event cases and the
//! oracle) and [`policies`] (policy cases); [`handlers`] (the functions' entry points); [`judge`] (what an
//! outcome counts as) and [`json_tree`] (nodes and pointers of a JSON value, which the mutations edit).

mod corpus;
mod events;
mod extremes;
mod generators;
mod handlers;
mod json_tree;
mod judge;
mod policies;
mod properties;
#[cfg(test)]
mod tests;

pub use corpus::run_corpus;
pub use handlers::run_handlers;
pub use properties::run_properties;

use autopilot_shared::ledger::LedgerError;
use autopilot_sim::LocalEstateError;
use autopilot_sim::estate::EstateError;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// Why a run could not be made: an unreadable corpus or sample, a thread that could not start, a local estate
/// that did not start. What the parsers and handlers did with their inputs is in the [`Figures`], not here.
#[derive(Debug, thiserror::Error)]
pub enum BadInputError {
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    Yaml { path: PathBuf, source: serde_yaml_ng::Error },
    #[error("{}: {source}", path.display())]
    Json { path: PathBuf, source: serde_json::Error },
    #[error("{}: no corpus files in events/ or policies/", dir.display())]
    NoCorpus { dir: PathBuf },
    #[error("no sample events under {}", dir.display())]
    NoSamples { dir: PathBuf },
    #[error("cannot start the {name} thread: {source}")]
    Thread { name: String, source: std::io::Error },
    #[error("the {name} thread panicked: {message}")]
    Panicked { name: String, message: String },
    #[error("sim/estates/samples.yaml: {0}")]
    Estate(#[source] EstateError),
    #[error(transparent)]
    Start(#[from] LocalEstateError),
    #[error("sim/estates/samples-policy.yaml cannot be stored: {0}")]
    StorePolicy(#[source] LedgerError),
}

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

/// Runs `work` on a thread with a stack of `size` bytes.
fn on_stack<T: Send + 'static>(
    name: &str,
    size: usize,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, BadInputError> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .stack_size(size)
        .spawn(work)
        .map_err(|source| BadInputError::Thread { name: name.to_owned(), source })?
        .join()
        .map_err(|payload| BadInputError::Panicked {
            name: name.to_owned(),
            message: judge::panic_text(payload.as_ref()),
        })
}

/// At most `max` characters of `text`, saying how much was left out.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}… ({} more bytes)", &text[..cut], text.len() - cut),
    }
}

//! Why a simulation could not be run: an input file (named, with the path inside it and the reason), the local
//! estate, the ledger, or an output that could not be written.

use crate::people::ActivityError;
use autopilot_shared::events::EventError;
use autopilot_shared::ledger::LedgerError;
use autopilot_shared::policy::PolicyError;
use autopilot_sim::LocalEstateError;
use autopilot_sim::estate::EstateError;
use autopilot_sim::server::SimulatorError;
use chrono::{DateTime, Utc};
use std::path::PathBuf;

/// Why a simulation could not be run.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("{}: cannot read: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    Estate { path: PathBuf, source: EstateError },
    /// The estate parses but cannot be simulated (a time zone, a reference to nothing, a work session).
    #[error("{}: {source}", path.display())]
    World { path: PathBuf, source: SimulatorError },
    #[error("{}: {source}", path.display())]
    People { path: PathBuf, source: ActivityError },
    #[error("{}: {}", path.display(), problems(source))]
    Policy { path: PathBuf, source: PolicyError },
    #[error("{}:{line}: {source}", path.display())]
    Events { path: PathBuf, line: usize, source: EventLineError },
    #[error("--to ({to}) must be after --from ({from})")]
    Period { from: DateTime<Utc>, to: DateTime<Utc> },
    #[error("--tick must be at least 1m")]
    Tick,
    #[error(transparent)]
    ParsePolicy(PolicyError),
    #[error(transparent)]
    Start(#[from] LocalEstateError),
    #[error(transparent)]
    Baseline(#[from] SimulatorError),
    #[error(transparent)]
    Activity(#[from] ActivityError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{}: cannot create: {source}", path.display())]
    CreateOut { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    CreateCharts(std::io::Error),
    #[error("{}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("the policy without its predictive blocks: {0}")]
    ReactivePolicy(serde_yaml_ng::Error),
    #[error("the reactive twin could not start its runtime: {0}")]
    TwinRuntime(std::io::Error),
    #[error("the reactive twin's thread panicked")]
    TwinPanicked,
}

/// What is wrong with one line of an injected-events file.
#[derive(Debug, thiserror::Error)]
pub enum EventLineError {
    #[error("not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("at: missing or not an RFC 3339 instant")]
    At,
    #[error("neither `event` (a full EventBridge envelope) nor `call` (a person's API call)")]
    NoEvent,
    #[error("call: {0}")]
    Call(String),
    #[error(transparent)]
    Event(#[from] EventError),
}

/// A policy document's problems, each with its path, in document order.
fn problems(error: &PolicyError) -> String {
    error.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

//! What can end a command, as the operator reads it (`autopilot: <message>`, exit status 1).

use autopilot_shared::ledger::LedgerError;
use autopilot_shared::policy::PolicyError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file a command reads or writes.
    #[error("cannot {verb} {}: {source}", path.display())]
    File {
        verb: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A flag whose value does not parse or is out of range.
    #[error("--{flag} {value}: {problem}")]
    Flag { flag: &'static str, value: String, problem: String },
    /// What the command needs and was not given.
    #[error("{0}")]
    Missing(&'static str),
    /// A policy document with problems: one line each, `<file>: <path>: <reason>`, then the count.
    #[error("{}", invalid(.name, .error))]
    InvalidPolicy { name: String, error: PolicyError },
    /// `config push` refused the document.
    #[error("{0}; nothing was stored")]
    NotStored(Box<CliError>),
    /// A document larger than one ledger item holds.
    #[error(
        "{name} is {kb} KB; a policy version is one DynamoDB item, which holds at most 400 KB with its keys (documents up to {max_kb} KB are stored)"
    )]
    TooLarge { name: String, kb: usize, max_kb: usize },
    /// Another `config push` stored the version this one was about to.
    #[error(
        "another push stored version {version} while this one was being stored; nothing was stored: run it again to see the difference against it"
    )]
    PushedMeanwhile { version: u32 },
    /// A document read to be stored in a local estate's ledger could not be.
    #[cfg(feature = "local")]
    #[error("{name}: {source}")]
    Store { name: String, source: LedgerError },
    #[error("no policy is stored in {table}{hint}")]
    NoPolicy { table: String, hint: &'static str },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The deployed ledger could not be read.
    #[error("cannot read the ledger {table}: {source}")]
    ReadLedger { table: String, source: LedgerError },
    /// The plan's scratch ledger failed (the SDK's or the database's message).
    #[error("scratch ledger: {0}")]
    Scratch(String),
    #[error(transparent)]
    Clock(#[from] autopilot_shared::clock::ClockError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// Standard output or a signal could not be used.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Functions or shards that could not plan (the plan printed says why).
    #[error("{} could not plan (the plan above says why): {}", plural(.0.len(), "function or shard", "functions or shards"), first_few(.0))]
    PlanFailed(Vec<String>),
    #[cfg(feature = "local")]
    #[error("{name}: {source}")]
    Estate { name: String, source: autopilot_sim::estate::EstateError },
    #[cfg(feature = "local")]
    #[error(transparent)]
    Start(#[from] autopilot_sim::LocalEstateError),
    #[cfg(feature = "local")]
    #[error(transparent)]
    Simulate(#[from] autopilot_lab::simulate::SimulateError),
    #[cfg(feature = "local")]
    #[error(transparent)]
    Chaos(#[from] autopilot_lab::chaos::ChaosError),
    #[cfg(feature = "local")]
    #[error("an experiment did not hold (FAILED rows above)")]
    ChaosFailed,
    #[cfg(feature = "local")]
    #[error(transparent)]
    Bench(#[from] autopilot_lab::bench::BenchError),
    #[cfg(feature = "local")]
    #[error("{} figure(s) missed their goal: {}", .0.len(), .0.join("; "))]
    GoalsMissed(Vec<String>),
    #[cfg(feature = "local")]
    #[error(transparent)]
    Yaml(#[from] serde_yaml_ng::Error),
}

impl CliError {
    /// A file that could not be read.
    pub fn read(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CliError::File { verb: "read", path: path.into(), source }
    }

    /// A file or directory that could not be written.
    #[cfg(feature = "local")]
    pub fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CliError::File { verb: "write", path: path.into(), source }
    }
}

/// Every problem of a document on its own line, then how many there are.
fn invalid(name: &str, error: &PolicyError) -> String {
    let mut lines: Vec<String> = error.0.iter().map(|problem| format!("{name}: {problem}")).collect();
    lines.push(format!("{name}: invalid ({} problem(s))", error.0.len()));
    lines.join("\n")
}

/// `n` and the noun it takes.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The first five names, and how many more.
fn first_few(names: &[String]) -> String {
    let mut text = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 5 {
        text.push_str(&format!(" and {} more", names.len() - 5));
    }
    text
}

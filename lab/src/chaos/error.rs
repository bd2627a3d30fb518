//! Why an experiment could not be run (what it found is in its figures, not here).

use super::bad_input::BadInputError;
use super::scenario::DeliveryError;
use crate::samples::SampleError;
use autopilot_shared::ledger::LedgerError;
use autopilot_sim::LocalEstateError;
use autopilot_sim::estate::EstateError;

/// A ledger scan that failed.
pub type ScanError = aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::scan::ScanError>;

/// Why an experiment could not be run: its estate, ledger or samples, a delivery that ended for good.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    #[error(transparent)]
    Estate(#[from] EstateError),
    #[error("faults: {0}")]
    ParseFaults(#[source] serde_yaml_ng::Error),
    #[error(transparent)]
    WriteFaults(serde_yaml_ng::Error),
    #[error(transparent)]
    Start(#[from] LocalEstateError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("reading the audit: {0}")]
    ReadAudit(#[source] LedgerError),
    #[error(transparent)]
    RestartLedger(std::io::Error),
    #[error("scanning the ledger: {0}")]
    ScanLedger(#[source] Box<ScanError>),
    #[error(transparent)]
    Sample(#[from] SampleError),
    /// A delivery of the scenario ended for good; `name` says which (a sample, `settling tick 1`).
    #[error("{name}: {source}")]
    Delivery { name: String, source: DeliveryError },
    /// EventBridge's retry of a delivery ended for good (the caller says which).
    #[error(transparent)]
    Redelivery(#[from] DeliveryError),
    #[error("{function}: the scenario has no tick")]
    NoTick { function: &'static str },
    #[error("{function}: the baseline failed: {}", failures.join("; "))]
    BaselineFailed { function: &'static str, failures: Vec<String> },
    #[error("no fault profile {profile:?} (one of {})", super::faults::PROFILES.join(", "))]
    NoProfile { profile: String },
    #[error("no day follows {0}")]
    NoNextDay(chrono::NaiveDate),
    #[error(transparent)]
    BadInput(#[from] BadInputError),
}

//! The operator commands of the `autopilot` tool, against a real account (default AWS credentials and region)
//! or any endpoints the `AWS_ENDPOINT_URL_*` variables name (`autopilot serve` prints them):
//!
//! - [`validate`]: check a policy document, every problem with its path and reason;
//! - [`config`]: store a policy document as the next version, with the diff against the current one;
//! - [`plan`]: what every function would do now and why (their real code, dry-run, read-only clients);
//! - [`audit`]: read the audit trail from the ledger;
//! - [`targets`]: every shard (function × account × region) with its last tick.

pub mod args;
pub mod audit;
pub mod config;
pub mod plan;
pub mod scratch;
pub mod show;
#[cfg(test)]
mod snapshots;
pub mod targets;
pub mod validate;

use crate::error::CliError;
use autopilot_shared::clients::AwsClients;
use autopilot_shared::ledger::Ledger;

/// The ledger `table` through the default AWS configuration (credentials, region, endpoint variables).
pub async fn ledger(table: &str) -> Ledger {
    Ledger::new(AwsClients::from_env().await.dynamodb, table)
}

/// "Now" for an operator command: the local estate's time when `AUTOPILOT_CLOCK_URL` is set (`autopilot serve`
/// prints it), so plan, audit and config agree with the functions; the wall clock otherwise.
pub async fn now() -> Result<chrono::DateTime<chrono::Utc>, CliError> {
    Ok(clock().await?.now())
}

/// The operator commands' clock (see [`now`]).
pub async fn clock() -> Result<std::sync::Arc<dyn autopilot_shared::clock::Clock>, CliError> {
    Ok(autopilot_shared::clock::from_env().await?)
}

/// Reads a file for a command, naming it in the error.
pub fn read(path: &std::path::Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| CliError::read(path, e))
}

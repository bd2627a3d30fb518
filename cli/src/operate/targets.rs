//! `autopilot targets`: every shard (function × account × region) with its last tick — when, how it ended, how
//! long it took, the AWS calls it made — from the ledger, failures first.

use crate::error::CliError;
use autopilot_shared::ledger::Ledger;
use autopilot_shared::ledger::shards::{ShardOutcome, ShardStatus};
use std::fmt::Write;

/// Which shards to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub account: Option<String>,
    pub region: Option<String>,
    pub function: Option<String>,
}

/// The shards listed, and how many the ledger holds in all.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    pub shards: Vec<ShardStatus>,
    pub in_ledger: usize,
}

/// The shards' last ticks that pass `filter`: failures first, then by function, account and region.
pub async fn read(ledger: &Ledger, filter: &Filter) -> Result<Listed, CliError> {
    let mut found = ledger.shard_statuses().await?;
    let in_ledger = found.len();
    found.retain(|s| {
        filter.account.as_deref().is_none_or(|a| s.account == a)
            && filter.region.as_deref().is_none_or(|r| s.region == r)
            && filter.function.as_deref().is_none_or(|f| s.function == f)
    });
    found.sort_by(|a, b| {
        (a.outcome != ShardOutcome::Failed, &a.function, &a.account, &a.region).cmp(&(
            b.outcome != ShardOutcome::Failed,
            &b.function,
            &b.account,
            &b.region,
        ))
    });
    Ok(Listed { shards: found, in_ledger })
}

/// The shards as a table.
pub fn render(shards: &[ShardStatus]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<19} {:<12} {:<15} {:<20} {:<7} {:>8} {:>6}  error",
        "function", "account", "region", "last tick", "outcome", "ms", "calls"
    );
    for s in shards {
        let outcome = match s.outcome {
            ShardOutcome::Ok => "ok",
            ShardOutcome::Busy => "busy",
            ShardOutcome::Failed => "FAILED",
        };
        let _ = writeln!(
            out,
            "{:<19} {:<12} {:<15} {:<20} {:<7} {:>8} {:>6}  {}",
            s.function,
            s.account,
            s.region,
            s.at.format("%Y-%m-%dT%H:%M:%SZ"),
            outcome,
            s.duration_ms,
            s.api_calls,
            s.error.as_deref().unwrap_or_default()
        );
    }
    let failed = shards.iter().filter(|s| s.outcome == ShardOutcome::Failed).count();
    let _ = writeln!(out, "{} shards, {failed} failed at their last tick", shards.len());
    out
}

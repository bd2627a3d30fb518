//! One side effect, exactly once per business key: the step every function's act phase repeats.
//!
//! 1. claim the idempotency record (a duplicate delivery, or one still in flight, stops here);
//! 2. dry-run: record the would-act in the audit and complete the claim;
//! 3. otherwise make the AWS call; on success run the caller's bookkeeping (fenced state write), audit,
//!    complete; when the service refused because the resource moved on (a deferral), or the call failed,
//!    release the claim so a later delivery can try again, and audit why.
//!
//! Ledger failures abort (the caller returns a retryable error); everything about the AWS call is a result.

use crate::ledger::audit::{AuditRecord, Outcome as AuditOutcome};
use crate::ledger::idempotency::{Acquired, IdempotencyKey, payload_hash};
use crate::ledger::{Ledger, LedgerError};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Everything an act step needs besides what it acts on.
#[derive(Debug)]
pub struct ActContext<'a> {
    pub aws: &'a crate::clients::AwsClients,
    pub ledger: &'a Ledger,
    pub function: &'a str,
    /// The EventBridge event id of the invocation.
    pub correlation_id: &'a str,
    pub dry_run: bool,
    /// The function lease's fence, when the step runs under it (ledger writes are then fenced).
    pub fence: Option<&'a crate::ledger::lease::Fence>,
    pub now: DateTime<Utc>,
    /// The invocation's remaining time.
    pub remaining: std::time::Duration,
    pub event_bus: Option<&'a str>,
}

/// How an AWS call ended, as the act step sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The service refused because the resource's state changed under us: look again later, not a failure.
    StateChanged(String),
    /// The call failed.
    Failed(String),
}

/// What became of one effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Performed {
    Applied,
    DryRun,
    /// Another delivery of the same business event already acted (or is acting).
    Duplicate,
    Deferred(String),
    Failed(String),
}

impl Performed {
    /// The word reports use: applied | dry-run | duplicate | deferred | failed.
    pub fn as_str(&self) -> &'static str {
        match self {
            Performed::Applied => "applied",
            Performed::DryRun => "dry-run",
            Performed::Duplicate => "duplicate",
            Performed::Deferred(_) => "deferred",
            Performed::Failed(_) => "failed",
        }
    }

    /// The error or deferral reason, if any.
    pub fn detail(&self) -> Option<String> {
        match self {
            Performed::Deferred(why) | Performed::Failed(why) => Some(why.clone()),
            _ => None,
        }
    }

    /// Whether an AWS call was made (successful or not).
    pub fn called(&self) -> bool {
        matches!(self, Performed::Applied | Performed::Deferred(_) | Performed::Failed(_))
    }
}

/// One effect to perform: its business key, its payload (hashed to detect the same key with other content),
/// and the audit record to write (its `outcome` is set here).
#[derive(Debug)]
pub struct Effect<'a, P: Serialize> {
    pub ledger: &'a Ledger,
    pub key: IdempotencyKey,
    pub payload: &'a P,
    pub audit: AuditRecord,
    pub dry_run: bool,
    pub now: DateTime<Utc>,
    /// The invocation's remaining time: how long the claim stays in progress.
    pub remaining: std::time::Duration,
}

/// Performs `effect` with `call` at most once per key; `applied` runs after a successful call and before the
/// claim completes (a crash in between lets a retry find the claim expired and the state already written).
pub async fn perform_once<P: Serialize>(
    effect: Effect<'_, P>,
    call: impl AsyncFnOnce() -> Result<(), CallError>,
    applied: impl AsyncFnOnce() -> Result<(), LedgerError>,
) -> Result<Performed, LedgerError> {
    let Effect { ledger, key, payload, mut audit, dry_run, now, remaining } = effect;
    let claim = match ledger.acquire_idempotency(&key, &payload_hash(payload), now, remaining).await {
        Ok(Acquired::Proceed(claim)) => claim,
        Ok(Acquired::AlreadyCompleted { .. })
        | Err(LedgerError::InProgress { .. } | LedgerError::PayloadMismatch { .. }) => {
            return Ok(Performed::Duplicate);
        }
        Err(other) => return Err(other),
    };
    let action = audit.action.clone();
    if dry_run {
        audit.outcome = AuditOutcome::DryRun;
        ledger.append_audit(&audit).await?;
        ledger.complete_idempotency(&claim, &serde_json::json!({ "dry_run": true }), now).await?;
        metrics::counter!("actions_dry_run").increment(1);
        return Ok(Performed::DryRun);
    }
    match call().await {
        Ok(()) => {
            applied().await?;
            audit.outcome = AuditOutcome::Applied;
            ledger.append_audit(&audit).await?;
            ledger.complete_idempotency(&claim, &serde_json::json!({ "applied": action }), now).await?;
            metrics::counter!("actions_applied").increment(1);
            tracing::info!(resource = %audit.resource, action = %action, reason = %audit.reason, "applied");
            Ok(Performed::Applied)
        }
        Err(error) => {
            ledger.release_idempotency(&claim).await?;
            let (outcome, message, performed) = match error {
                CallError::StateChanged(message) => {
                    metrics::counter!("actions_deferred").increment(1);
                    (AuditOutcome::Deferred, message.clone(), Performed::Deferred(message))
                }
                CallError::Failed(message) => {
                    metrics::counter!("actions_failed").increment(1);
                    (AuditOutcome::Failed, message.clone(), Performed::Failed(message))
                }
            };
            tracing::warn!(resource = %audit.resource, action = %action, error = %message, result = performed.as_str(), "not applied");
            audit.outcome = outcome;
            audit.details["error"] = serde_json::json!(message);
            ledger.append_audit(&audit).await?;
            Ok(performed)
        }
    }
}

/// Publishes one outcome event (source `euc.autopilot`) to `bus`; the error says why it was not accepted.
pub async fn announce(
    eventbridge: &aws_sdk_eventbridge::Client,
    bus: Option<&str>,
    detail_type: &str,
    detail: &serde_json::Value,
) -> Result<(), String> {
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .source(crate::events::AUTOPILOT_SOURCE)
        .detail_type(detail_type)
        .detail(detail.to_string())
        .set_event_bus_name(bus.map(str::to_owned))
        .build();
    let result = match eventbridge.put_events().entries(entry).send().await {
        Ok(output) if output.failed_entry_count() == 0 => Ok(()),
        Ok(output) => Err(output
            .entries()
            .iter()
            .find_map(|e| e.error_message().map(str::to_owned))
            .unwrap_or_else(|| "rejected by EventBridge".to_owned())),
        Err(error) => Err(crate::error::sdk_error_message(&error)),
    };
    if let Err(error) = &result {
        tracing::warn!(detail_type, %error, "could not publish outcome event");
    }
    result
}

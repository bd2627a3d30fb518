//! One side effect, exactly once per business key: the step every function's act phase repeats.
//!
//! 1. claim the idempotency record (a duplicate delivery, or one still in flight, stops here); under a lease
//!    the claim is fenced, and no call is started once the lease has run out;
//! 2. dry-run: record the would-act in the audit and complete the claim;
//! 3. otherwise make the AWS call; on success audit, run the caller's bookkeeping (fenced state write),
//!    complete (even when the bookkeeping failed: the call was made); when the service refused because the resource moved on (a deferral), or the call failed,
//!    release the claim so a later delivery can try again, and audit why.
//!
//! [`perform_once_with_state`] does the same when the bookkeeping is a resource's state, writing the audit, the
//! state and the completion in one transaction (one by one, in that order, when the transaction is refused).
//! [`perform_batch`] does the same for a batch call (one claim per item, one call, one settlement per item).
//! [`Bookkeeping`] writes the claims and completions of a tick's many effects in batches ([`batched`]).
//!
//! Ledger failures abort (the caller returns a retryable error); everything about the AWS call is a result.

pub mod batched;
pub mod outbox;

pub use batched::Bookkeeping;

use crate::ledger::audit::{AuditRecord, Outcome as AuditOutcome};
use crate::ledger::idempotency::{Acquired, Claim, IdempotencyKey, payload_hash};
use crate::ledger::lease::Fence;
use crate::ledger::state::StateWrite;
use crate::ledger::{Ledger, LedgerError};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
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
    pub fence: Option<&'a Fence>,
    pub now: DateTime<Utc>,
    /// The invocation's remaining time.
    pub remaining: std::time::Duration,
    pub event_bus: Option<&'a str>,
    /// The prefix of the policy's tags (`autopilot/`).
    pub tag_prefix: &'a str,
    /// The region the function runs in.
    pub region: &'a str,
    /// The prefix of this deployment's role names (its own CloudTrail calls are recognised by it).
    pub own_role_name: &'a str,
}

/// How an AWS call ended, as the act step sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The service refused because the resource's state changed under us: look again later, not a failure.
    StateChanged(String),
    /// The service throttled the call past the SDK's own retries: tried again at the next delivery or tick,
    /// recorded as deferred, not a failure (nothing is wrong with the resource or the request).
    Throttled(String),
    /// The call failed.
    Failed(String),
}

/// How the audit's `error` of a throttled, deferred action begins.
pub const THROTTLED: &str = "throttled, tried again later: ";

impl CallError {
    /// An SDK error as the act step sees it: throttling is [`CallError::Throttled`], a service error whose code
    /// `state_changed` names is [`CallError::StateChanged`], anything else [`CallError::Failed`].
    pub fn from_sdk<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
        error: &SdkError<E, R>,
        state_changed: &[&str],
    ) -> Self {
        let message = crate::error::sdk_error_message(error);
        match error.as_service_error().and_then(ProvideErrorMetadata::code) {
            Some(code) if crate::error::is_throttling(code) => CallError::Throttled(message),
            Some(code) if state_changed.contains(&code) => CallError::StateChanged(message),
            _ => CallError::Failed(message),
        }
    }
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
    /// The result reports count it under.
    pub fn result(&self) -> crate::report::ActionResult {
        use crate::report::ActionResult;
        match self {
            Performed::Applied => ActionResult::Applied,
            Performed::DryRun => ActionResult::DryRun,
            Performed::Duplicate => ActionResult::Duplicate,
            Performed::Deferred(_) => ActionResult::Deferred,
            Performed::Failed(_) => ActionResult::Failed,
        }
    }

    /// The word reports use: applied | dry-run | duplicate | deferred | failed.
    pub fn as_str(&self) -> &'static str {
        self.result().as_str()
    }

    /// The error or deferral reason, if any.
    pub fn detail(&self) -> Option<String> {
        match self {
            Performed::Deferred(why) | Performed::Failed(why) => Some(why.clone()),
            _ => None,
        }
    }

    /// Whether the effect has happened (or, in dry-run, was recorded as it would have): what it stood for may be
    /// marked done. A deferred or failed effect is tried again by whatever depends on it.
    pub fn done(&self) -> bool {
        matches!(self, Performed::Applied | Performed::DryRun | Performed::Duplicate)
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
    /// The function lease's fence, when the effect runs under it: the claim is fenced, and the AWS call is not
    /// started once the lease has run out.
    pub fence: Option<&'a Fence>,
    /// The failure already recorded for this action on this resource (the caller keeps it in the resource's
    /// memory): the same error again is counted and logged, not audited again, so a failure that persists is
    /// one record, not one a tick.
    pub recorded_failure: Option<&'a str>,
}

/// Performs `effect` with `call` at most once per key; after a successful call the audit record is written,
/// then `applied` runs, then the claim completes (a crash in between lets a retry find the claim expired and the state already written).
pub async fn perform_once<P: Serialize>(
    effect: Effect<'_, P>,
    call: impl AsyncFnOnce() -> Result<(), CallError>,
    applied: impl AsyncFnOnce() -> Result<(), LedgerError>,
) -> Result<Performed, LedgerError> {
    match claim_and_call(&effect, call).await? {
        Claimed::Done(performed) => Ok(performed),
        Claimed::Called(claim, result) => settle(effect, &claim, result, applied).await,
    }
}

/// [`perform_once`] for the common case where the bookkeeping after a successful call is the resource's new
/// state (`state`, fenced like the effect): the audit record, the state and the claim's completion are written
/// in one transaction ([`Ledger::complete_with_record`]) instead of three requests. When that transaction is
/// refused (a concurrent delivery moved the state's version on, the fence, an outage), the three are written
/// one by one exactly as [`perform_once`] writes them: the audit, then the state (its error is the answer),
/// then the completion. A cancelled transaction wrote nothing; one whose outcome the SDK never learnt may have
/// committed, and the one-by-one writes then answer a retryable `IdempotencyLost` (a redelivery is a duplicate).
pub async fn perform_once_with_state<P: Serialize, S: Serialize>(
    effect: Effect<'_, P>,
    call: impl AsyncFnOnce() -> Result<(), CallError>,
    state: StateWrite<'_, S>,
) -> Result<Performed, LedgerError> {
    let (claim, result) = match claim_and_call(&effect, call).await? {
        Claimed::Done(performed) => return Ok(performed),
        Claimed::Called(claim, result) => (claim, result),
    };
    let Effect { ledger, fence, now, .. } = effect;
    if result.is_ok() {
        let mut audit = effect.audit.clone();
        audit.outcome = AuditOutcome::Applied;
        let response = applied_response(&audit);
        if ledger.complete_with_record(&claim, &response, &audit, &state, fence, now).await {
            return Ok(count_applied(&audit));
        }
    }
    let write = async || ledger.put_state(state.resource, state.state, state.expected, fence, now).await.map(drop);
    settle(effect, &claim, result, write).await
}

/// Where an effect stands after its claim and call: done without a call (a duplicate, a dry run), or called.
enum Claimed {
    Done(Performed),
    Called(Claim, Result<(), CallError>),
}

/// Claims the effect; a duplicate or a dry run ends there, otherwise (the lease still held) the call is made.
async fn claim_and_call<P: Serialize>(
    effect: &Effect<'_, P>,
    call: impl AsyncFnOnce() -> Result<(), CallError>,
) -> Result<Claimed, LedgerError> {
    let Some(claim) = claim(effect).await? else { return Ok(Claimed::Done(Performed::Duplicate)) };
    if effect.dry_run {
        return dry_run(effect, &claim).await.map(Claimed::Done);
    }
    still_held(effect, &[&claim]).await?;
    Ok(Claimed::Called(claim, call().await))
}

/// Performs a batch of effects with one call (e.g. `RebootWorkspaces`, 25 ids): each effect is claimed on its
/// own (duplicates drop out), the claimed ones are passed to `call` by index, and each is settled with its own
/// result. `call` answers one result per index it was given, in order; an `Err` fails every item. Returns one
/// [`Performed`] per effect, in order.
pub async fn perform_batch<P: Serialize>(
    effects: Vec<Effect<'_, P>>,
    call: impl AsyncFnOnce(&[usize]) -> Result<Vec<Result<(), CallError>>, CallError>,
    applied: impl AsyncFn(usize) -> Result<(), LedgerError>,
) -> Result<Vec<Performed>, LedgerError> {
    let mut performed = vec![Performed::Duplicate; effects.len()];
    let mut claimed = Vec::new();
    for (index, effect) in effects.iter().enumerate() {
        if let Some(claim) = claim(effect).await? {
            claimed.push((index, claim));
        }
    }
    let mut effects: Vec<Option<Effect<'_, P>>> = effects.into_iter().map(Some).collect();
    let dry = effects.iter().flatten().any(|e| e.dry_run);
    if dry || claimed.is_empty() {
        for (index, claim) in &claimed {
            if let Some(effect) = &effects[*index] {
                performed[*index] = dry_run(effect, claim).await?;
            }
        }
        return Ok(performed);
    }
    if let Some(effect) = effects.iter().flatten().next() {
        still_held(effect, &claimed.iter().map(|(_, claim)| claim).collect::<Vec<_>>()).await?;
    }
    let indices: Vec<usize> = claimed.iter().map(|(index, _)| *index).collect();
    let results = match call(&indices).await {
        Ok(results) if results.len() == indices.len() => results,
        Ok(results) => vec![
            Err(CallError::Failed(format!("{} results for {} requests", results.len(), indices.len())));
            indices.len()
        ],
        Err(error) => vec![Err(error); indices.len()],
    };
    for ((index, claim), result) in claimed.iter().zip(results) {
        if let Some(effect) = effects[*index].take() {
            performed[*index] = settle(effect, claim, result, async || applied(*index).await).await?;
        }
    }
    Ok(performed)
}

/// Right before the AWS call: when the effect runs under a lease that has run out (the invocation was paused
/// past it, and another may hold it now), the claims are given back and `LeaseLost` ends the invocation
/// without the call.
async fn still_held<P: Serialize>(effect: &Effect<'_, P>, claims: &[&Claim]) -> Result<(), LedgerError> {
    let Some(fence) = effect.fence else { return Ok(()) };
    let Err(lost) = fence.check(effect.now) else { return Ok(()) };
    for claim in claims {
        effect.ledger.release_idempotency(claim).await?;
    }
    tracing::warn!(scope = %fence.scope, token = fence.token, "the lease ran out before the call; not acting");
    Err(lost)
}

/// Claims the effect's idempotency record: `None` when another delivery already acted or is acting. A dry run
/// claims its own key, so that what it recorded does not stand in for the real action once dry-run is off.
async fn claim<P: Serialize>(effect: &Effect<'_, P>) -> Result<Option<Claim>, LedgerError> {
    let dry_key;
    let key = if effect.dry_run {
        dry_key = effect.key.dry_run();
        &dry_key
    } else {
        &effect.key
    };
    match effect
        .ledger
        .acquire_idempotency(key, &payload_hash(effect.payload), effect.now, effect.remaining, effect.fence)
        .await
    {
        Ok(Acquired::Proceed(claim)) => Ok(Some(claim)),
        Ok(Acquired::AlreadyCompleted { .. })
        | Err(LedgerError::InProgress { .. } | LedgerError::PayloadMismatch { .. }) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Dry-run: the would-act is audited and the claim completed.
async fn dry_run<P: Serialize>(effect: &Effect<'_, P>, claim: &Claim) -> Result<Performed, LedgerError> {
    let mut audit = effect.audit.clone();
    audit.outcome = AuditOutcome::DryRun;
    effect.ledger.append_audit(&audit).await?;
    effect.ledger.complete_idempotency(claim, &serde_json::json!({ "dry_run": true }), effect.now).await?;
    metrics::counter!("actions_dry_run").increment(1);
    Ok(Performed::DryRun)
}

/// After the call: bookkeeping, audit and completion on success; release and audit on failure or deferral.
async fn settle<P: Serialize>(
    effect: Effect<'_, P>,
    claim: &Claim,
    result: Result<(), CallError>,
    applied: impl AsyncFnOnce() -> Result<(), LedgerError>,
) -> Result<Performed, LedgerError> {
    let Effect { ledger, mut audit, now, recorded_failure, .. } = effect;
    let action = audit.action.clone();
    match result {
        Ok(()) => {
            // The call happened: audit it before the bookkeeping, which may still fail (a concurrent delivery
            // moved the state's version on) and must not take the record of the call with it.
            audit.outcome = AuditOutcome::Applied;
            ledger.append_audit(&audit).await?;
            // The claim completes even when the bookkeeping fails (a lost fence, a version race): the call was
            // made, and only a completed claim tells a redelivery so.
            let bookkeeping = applied().await;
            ledger.complete_idempotency(claim, &applied_response(&audit), now).await?;
            bookkeeping?;
            Ok(count_applied(&audit))
        }
        Err(error) => {
            ledger.release_idempotency(claim).await?;
            let (outcome, message, performed) = match error {
                CallError::StateChanged(message) => {
                    metrics::counter!("actions_deferred").increment(1);
                    (AuditOutcome::Deferred, message.clone(), Performed::Deferred(message))
                }
                CallError::Throttled(message) => {
                    metrics::counter!("actions_deferred").increment(1);
                    let message = format!("{THROTTLED}{message}");
                    (AuditOutcome::Deferred, message.clone(), Performed::Deferred(message))
                }
                CallError::Failed(message) => {
                    metrics::counter!("actions_failed").increment(1);
                    (AuditOutcome::Failed, message.clone(), Performed::Failed(message))
                }
            };
            tracing::warn!(resource = %audit.resource, action = %action, error = %message, result = performed.as_str(), "not applied");
            if recorded_failure != Some(message.as_str()) || outcome != AuditOutcome::Failed {
                audit.outcome = outcome;
                audit.details["error"] = serde_json::json!(message);
                ledger.append_audit(&audit).await?;
            }
            Ok(performed)
        }
    }
}

/// What a completed claim answers a redelivery with after a successful call.
fn applied_response(audit: &AuditRecord) -> serde_json::Value {
    serde_json::json!({ "applied": audit.action })
}

/// Counts and logs an applied effect, once its bookkeeping is written.
fn count_applied(audit: &AuditRecord) -> Performed {
    metrics::counter!("actions_applied").increment(1);
    tracing::info!(resource = %audit.resource, action = %audit.action, reason = %audit.reason, "applied");
    Performed::Applied
}

/// Why an outcome event was not published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnounceError {
    /// EventBridge answered, and refused the entry (its message).
    #[error("{0}")]
    Rejected(String),
    /// The `PutEvents` call failed (after the SDK's retries).
    #[error("{0}")]
    Call(String),
}

impl From<AnnounceError> for CallError {
    fn from(error: AnnounceError) -> Self {
        CallError::Failed(error.to_string())
    }
}

/// Publishes one outcome event (source `euc.autopilot`) to `bus`; the error says why it was not accepted.
pub async fn announce(
    eventbridge: &aws_sdk_eventbridge::Client,
    bus: Option<&str>,
    detail_type: &str,
    detail: &serde_json::Value,
) -> Result<(), AnnounceError> {
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .source(crate::events::AUTOPILOT_SOURCE)
        .detail_type(detail_type)
        .detail(detail.to_string())
        .set_event_bus_name(bus.map(str::to_owned))
        .build();
    let result = match eventbridge.put_events().entries(entry).send().await {
        Ok(output) if output.failed_entry_count() == 0 => Ok(()),
        Ok(output) => Err(AnnounceError::Rejected(
            output
                .entries()
                .iter()
                .find_map(|e| e.error_message().map(str::to_owned))
                .unwrap_or_else(|| "rejected by EventBridge".to_owned()),
        )),
        Err(error) => Err(AnnounceError::Call(crate::error::sdk_error_message(&error))),
    };
    if let Err(error) = &result {
        tracing::warn!(detail_type, %error, "could not publish outcome event");
    }
    result
}

/// Publishes one outcome event per detail (source `euc.autopilot`), ten per `PutEvents` call (the API's
/// limit); returns the indices of those not accepted. Events that must not be lost go through
/// [`outbox::announce_kept`].
pub async fn announce_each(
    eventbridge: &aws_sdk_eventbridge::Client,
    bus: Option<&str>,
    detail_type: &str,
    details: &[serde_json::Value],
) -> Vec<usize> {
    let mut refused = Vec::new();
    for (chunk_index, chunk) in details.chunks(10).enumerate() {
        let first = chunk_index * 10;
        let entries: Vec<_> = chunk
            .iter()
            .map(|detail| {
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source(crate::events::AUTOPILOT_SOURCE)
                    .detail_type(detail_type)
                    .detail(detail.to_string())
                    .set_event_bus_name(bus.map(str::to_owned))
                    .build()
            })
            .collect();
        match eventbridge.put_events().set_entries(Some(entries)).send().await {
            Ok(output) if output.failed_entry_count() == 0 => {}
            // Entries answer in the order they were sent; one with an error code was not taken.
            Ok(output) if output.entries().len() == chunk.len() => refused.extend(
                output.entries().iter().enumerate().filter(|(_, e)| e.error_code().is_some()).map(|(i, _)| first + i),
            ),
            Ok(_) => refused.extend(first..first + chunk.len()),
            Err(error) => {
                tracing::warn!(detail_type, error = %crate::error::sdk_error_message(&error), "could not publish outcome events");
                refused.extend(first..first + chunk.len());
            }
        }
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::{CallError, SdkError};
    use aws_sdk_workspaces::operation::reboot_workspaces::RebootWorkspacesError;
    use aws_smithy_runtime_api::http::Response;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(code: &str) -> SdkError<RebootWorkspacesError, Response> {
        let error = RebootWorkspacesError::generic(ErrorMetadata::builder().code(code).message("words").build());
        SdkError::service_error(error, Response::new(400u16.try_into().unwrap(), SdkBody::empty()))
    }

    #[test]
    fn throttling_defers_a_named_state_change_defers_anything_else_fails() {
        let changed = ["InvalidResourceStateException"];
        for (code, expected) in [
            ("ThrottlingException", CallError::Throttled("ThrottlingException: words".into())),
            ("RequestLimitExceededException", CallError::Throttled("RequestLimitExceededException: words".into())),
            ("InvalidResourceStateException", CallError::StateChanged("InvalidResourceStateException: words".into())),
            // A quota is not throttling: waiting does not help.
            ("LimitExceededException", CallError::Failed("LimitExceededException: words".into())),
            ("AccessDeniedException", CallError::Failed("AccessDeniedException: words".into())),
        ] {
            assert_eq!(CallError::from_sdk(&service_error(code), &changed), expected, "{code}");
        }
    }
}

//! Exactly-once side effects under at-least-once delivery, with the semantics of Powertools for AWS Lambda.
//!
//! `acquire` is one conditional PutItem that succeeds when no record exists, the record has expired
//! (`expires_at`), or it is INPROGRESS past its in-progress expiry (the invocation that held it died).
//! The in-progress expiry is now + the invocation's remaining time, never less than
//! [`MIN_IN_PROGRESS`], so a remaining time of 0 cannot leave a record INPROGRESS forever (a known Powertools
//! bug). On success the caller acts, then calls `complete`; when the action fails it calls `release`, which
//! deletes the record so a retry can run. The same key with a different payload is an error.

use super::audit::{AuditRecord, audit_put};
use super::lease::{Fence, FencedPutFailure, TRANSACT_MAX};
use super::state::StateWrite;
use super::{Item, Key, Ledger, LedgerError, is_condition_failed, keys, n, s};
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Default lifetime of a COMPLETED record: EventBridge retries for up to 24 h and Lambda's async queue holds
/// events for up to 6 h, so anything shorter could let a late redelivery act twice.
pub const DEFAULT_EXPIRY: Duration = Duration::hours(30);

/// The shortest in-progress expiry, whatever the remaining invocation time says.
pub const MIN_IN_PROGRESS: Duration = Duration::seconds(1);

const INPROGRESS: &str = "INPROGRESS";
const COMPLETED: &str = "COMPLETED";

/// The stored idempotency record (attribute names are part of the table's contract, see ARCHITECTURE.md).
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    pk: String,
    sk: String,
    status: String,
    /// TTL and logical expiry of the record (epoch seconds).
    expires_at: i64,
    /// Until when an INPROGRESS record blocks others (epoch milliseconds).
    in_progress_expires_at: i64,
    payload_hash: String,
    business_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response: Option<String>,
    /// While INPROGRESS: the index entry (`CLAIMS#<function>` / in-progress expiry) by which claims left in
    /// progress are found and released ([`Ledger::release_stale_claims`]). Removed on completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
}

/// A business event's identity: the function and a key from business identity (e.g. schedule ARN +
/// scheduled time, or EventBridge event id + relevant detail), never a per-attempt execution id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub function: String,
    pub business_key: String,
}

impl IdempotencyKey {
    pub fn new(function: impl Into<String>, business_key: impl Into<String>) -> Self {
        Self { function: function.into(), business_key: business_key.into() }
    }

    /// The key a dry run of the same effect is recorded under: a would-act must not make the real action,
    /// once dry-run is switched off, a duplicate of it.
    pub fn dry_run(&self) -> Self {
        Self { function: self.function.clone(), business_key: format!("{}#dry-run", self.business_key) }
    }

    fn key(&self) -> Key {
        keys::idempotency(&self.function, &self.business_key)
    }
}

/// Hash of a payload: SHA-256 of its canonical JSON (object keys sorted).
pub fn payload_hash(payload: &impl Serialize) -> String {
    let canonical = serde_json::to_value(payload).and_then(|value| serde_json::to_vec(&value)).unwrap_or_default();
    keys::sha256_hex(&canonical)
}

/// Whether `item` is an idempotency record still INPROGRESS past its in-progress expiry at `now`: the invocation
/// that claimed it ended without settling it (a later claim takes it over).
pub fn is_stale_claim(item: &Item, now: DateTime<Utc>) -> bool {
    let is_claim = matches!(item.get(keys::PK), Some(aws_sdk_dynamodb::types::AttributeValue::S(pk)) if pk.starts_with(keys::IDEMPOTENCY_PREFIX));
    is_claim
        && serde_dynamo::from_item::<_, Record>(item.clone())
            .is_ok_and(|r| r.status == INPROGRESS && r.in_progress_expires_at < now.timestamp_millis())
}

/// Proof that this invocation holds an idempotency record INPROGRESS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    key: IdempotencyKey,
    /// The in-progress expiry written by this invocation; completing or releasing is conditioned on it.
    in_progress_until_ms: i64,
}

impl Claim {
    pub fn key(&self) -> &IdempotencyKey {
        &self.key
    }

    pub fn in_progress_until_ms(&self) -> i64 {
        self.in_progress_until_ms
    }
}

/// The outcome of an acquisition that did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum Acquired {
    /// First time (or a retry after failure/expiry): act, then `complete` or `release`.
    Proceed(Claim),
    /// Already done: do nothing; here is the stored result.
    AlreadyCompleted { response: Option<serde_json::Value> },
}

impl Ledger {
    /// Tries to claim `key` for this invocation. `remaining` is the invocation's remaining time. With a
    /// `fence` the claim is one transaction with the lease check: a worker that lost its lease cannot claim
    /// (`FencingRejected`), so it cannot act either.
    pub async fn acquire_idempotency(
        &self,
        key: &IdempotencyKey,
        payload_hash: &str,
        now: DateTime<Utc>,
        remaining: std::time::Duration,
        fence: Option<&Fence>,
    ) -> Result<Acquired, LedgerError> {
        let key = &self.in_scope(key);
        let (put, claim) = self.claim_put(key, payload_hash, now, remaining)?;
        let claimed = Acquired::Proceed(claim);
        let existing = if let Some(fence) = fence {
            match self.put_fenced(fence, now, put, "TransactWriteItems idempotency").await {
                Ok(()) => return Ok(claimed),
                Err(FencedPutFailure::Fence) => return Err(fence.rejected()),
                Err(FencedPutFailure::Condition(existing)) => existing,
                Err(FencedPutFailure::Unavailable(error)) => return Err(error),
            }
        } else {
            let result = self
                .client
                .put_item()
                .table_name(put.table_name)
                .set_item(Some(put.item))
                .set_condition_expression(put.condition_expression)
                .set_expression_attribute_names(put.expression_attribute_names)
                .set_expression_attribute_values(put.expression_attribute_values)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            let error = match result {
                Ok(_) => return Ok(claimed),
                Err(error) => error,
            };
            if !is_condition_failed(&error) {
                return Err(LedgerError::from_sdk("PutItem idempotency", &error));
            }
            match error.into_service_error() {
                aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) => e.item,
                _ => None,
            }
        };
        let existing = match existing {
            Some(item) => item,
            // Older DynamoDB implementations do not return the item: read it.
            None => self.get_item(&key.key()).await?.ok_or_else(|| LedgerError::Unavailable {
                operation: "GetItem idempotency",
                message: "record vanished between the conditional put and the read; retry".into(),
            })?,
        };
        self.existing_record(key, payload_hash, existing)
    }

    /// `key` as this ledger's scope claims it (see [`keys::WorkScope::business_key`]); a [`Claim`] keeps it so.
    pub fn in_scope(&self, key: &IdempotencyKey) -> IdempotencyKey {
        IdempotencyKey { function: key.function.clone(), business_key: self.scope.business_key(&key.business_key) }
    }

    /// The conditional write that claims `key` (it succeeds when no record exists, the record has expired, or
    /// it is INPROGRESS past its in-progress expiry), and the claim it gives when it does.
    fn claim_put(
        &self,
        key: &IdempotencyKey,
        payload_hash: &str,
        now: DateTime<Utc>,
        remaining: std::time::Duration,
    ) -> Result<(Put, Claim), LedgerError> {
        let remaining = Duration::from_std(remaining).unwrap_or(Duration::MAX).max(MIN_IN_PROGRESS);
        let in_progress_until_ms = (now + remaining).timestamp_millis();
        let record = Record {
            pk: key.key().pk,
            sk: key.key().sk,
            status: INPROGRESS.into(),
            expires_at: (now + DEFAULT_EXPIRY).timestamp(),
            in_progress_expires_at: in_progress_until_ms,
            payload_hash: payload_hash.into(),
            business_key: key.business_key.clone(),
            response: None,
            gsi1pk: Some(keys::claims_in_progress(&key.function)),
            gsi1sk: Some(keys::claim_expiry(in_progress_until_ms)),
        };
        let item: Item = serde_dynamo::to_item(&record).map_err(|e| LedgerError::corrupt(&key.key(), e))?;
        let condition = "attribute_not_exists(pk) OR expires_at < :now OR (#status = :inprogress AND in_progress_expires_at < :now_ms)";
        let values = [
            (":now".to_owned(), n(now.timestamp())),
            (":now_ms".to_owned(), n(now.timestamp_millis())),
            (":inprogress".to_owned(), s(INPROGRESS)),
        ];
        let names = [("#status".to_owned(), "status".to_owned())];
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names.into()))
            .set_expression_attribute_values(Some(values.into()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| LedgerError::Unavailable { operation: "Put", message: e.to_string() })?;
        Ok((put, Claim { key: key.clone(), in_progress_until_ms }))
    }

    /// Claims every one of `keys` (with its payload hash) in one transaction, fenced when `fence` is given: at
    /// most [`TRANSACT_MAX`] items with the fence's check. `Some(claims)` when all were claimed; `None` when
    /// the transaction was refused for one of them (a duplicate delivery, a claim in progress, the same key
    /// with another payload) or for a conflicting transaction, and nothing was written: each is then claimed
    /// on its own, which tells it why. A lost lease is `FencingRejected`, as for one claim.
    pub async fn acquire_idempotency_all(
        &self,
        keys: &[(IdempotencyKey, String)],
        now: DateTime<Utc>,
        remaining: std::time::Duration,
        fence: Option<&Fence>,
    ) -> Result<Option<Vec<Claim>>, LedgerError> {
        if keys.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let mut puts = Vec::with_capacity(keys.len());
        let mut claims = Vec::with_capacity(keys.len());
        for (key, payload_hash) in keys {
            let (put, claim) = self.claim_put(&self.in_scope(key), payload_hash, now, remaining)?;
            puts.push(put);
            claims.push(claim);
        }
        match self.put_all(fence, now, puts, "TransactWriteItems idempotency").await {
            Ok(()) => Ok(Some(claims)),
            Err(FencedPutFailure::Fence) if let Some(fence) = fence => Err(fence.rejected()),
            Err(FencedPutFailure::Unavailable(error)) => Err(error),
            Err(FencedPutFailure::Fence | FencedPutFailure::Condition(_)) => Ok(None),
        }
    }

    /// Completes claims whose calls succeeded, each with its audit record and its resource's new state, a
    /// transaction of [`COMPLETIONS_PER_TRANSACTION`] at a time (fenced when `fence` is given): what
    /// [`Ledger::complete_with_record`] writes for one, for many. A transaction that is refused (a state's
    /// version moved on, the fence, an outage) is written one by one, as for one: the audit, then the state,
    /// then the completion, for every completion of it; the first error is the answer, after all were tried.
    pub async fn complete_all(
        &self,
        completions: &[Completion],
        fence: Option<&Fence>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let mut first_error = None;
        for chunk in completions.chunks(COMPLETIONS_PER_TRANSACTION) {
            let items = chunk.iter().map(|c| c.items(self, now)).collect::<Result<Vec<_>, _>>();
            let written = match items {
                Ok(items) => {
                    let items = items.into_iter().flatten().collect();
                    self.write_all(fence, now, items, "TransactWriteItems completions").await.is_ok()
                }
                Err(_) => false,
            };
            if written {
                continue;
            }
            tracing::debug!(completions = chunk.len(), "completions refused together; written one by one");
            for completion in chunk {
                if let Err(error) = completion.one_by_one(self, fence, now).await {
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn existing_record(
        &self,
        key: &IdempotencyKey,
        payload_hash: &str,
        existing: Item,
    ) -> Result<Acquired, LedgerError> {
        let existing: Record = serde_dynamo::from_item(existing).map_err(|e| LedgerError::corrupt(&key.key(), e))?;
        if existing.payload_hash != payload_hash {
            return Err(LedgerError::PayloadMismatch {
                business_key: key.business_key.clone(),
                stored: existing.payload_hash,
                received: payload_hash.to_owned(),
            });
        }
        if existing.status == COMPLETED {
            let response = existing
                .response
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| LedgerError::corrupt(&key.key(), e))?;
            return Ok(Acquired::AlreadyCompleted { response });
        }
        Err(LedgerError::InProgress {
            business_key: key.business_key.clone(),
            in_progress_until_ms: existing.in_progress_expires_at,
        })
    }

    /// Marks the claimed record COMPLETED with the action's result.
    pub async fn complete_idempotency(
        &self,
        claim: &Claim,
        response: &impl Serialize,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let update = completion(&self.table, claim, response, now)?;
        // Every field `completion` sets, sent as an `UpdateItem` (a field added there must be added here).
        let result = self
            .client
            .update_item()
            .table_name(update.table_name)
            .set_key(Some(update.key))
            .update_expression(update.update_expression)
            .set_condition_expression(update.condition_expression)
            .set_expression_attribute_names(update.expression_attribute_names)
            .set_expression_attribute_values(update.expression_attribute_values)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_condition_failed(&error) => {
                Err(LedgerError::IdempotencyLost { business_key: claim.key.business_key.clone() })
            }
            Err(error) => Err(LedgerError::from_sdk("UpdateItem idempotency", &error)),
        }
    }

    /// Completes `claim` together with the audit record of the call it guarded and the resource's new state,
    /// in one transaction (fenced when `fence` is given): one request where [`Ledger::append_audit`],
    /// [`Ledger::put_state`] and [`Ledger::complete_idempotency`] make three, and all three or none. Answers
    /// whether they were written; when not, the caller writes them one by one, which records each that can be
    /// and says why the rest cannot. A cancelled transaction (the state's version moved, the fence, the audit
    /// already there, a conflicting transaction) wrote nothing. An outcome the SDK could not learn (every
    /// attempt timed out or failed after the request was sent) may have committed: the one-by-one writes then
    /// find the audit there, the state moved on and the claim completed, and answer `IdempotencyLost` — a
    /// retryable error, after which a redelivery finds the claim completed and does not call again.
    pub async fn complete_with_record<T: Serialize>(
        &self,
        claim: &Claim,
        response: &impl Serialize,
        audit: &AuditRecord,
        state: &StateWrite<'_, T>,
        fence: Option<&Fence>,
        now: DateTime<Utc>,
    ) -> bool {
        let items = || -> Result<Vec<TransactWriteItem>, LedgerError> {
            Ok(vec![
                TransactWriteItem::builder().put(audit_put(&self.table, audit)?).build(),
                TransactWriteItem::builder().put(state.put(&self.table, now)?).build(),
                TransactWriteItem::builder().update(completion(&self.table, claim, response, now)?).build(),
            ])
        };
        let Ok(items) = items() else { return false };
        match self.write_all(fence, now, items, "TransactWriteItems completion").await {
            Ok(()) => true,
            Err(FencedPutFailure::Unavailable(error)) => {
                tracing::warn!(key = %claim.key.business_key, %error, "completion with its record failed; written one by one");
                false
            }
            Err(FencedPutFailure::Fence | FencedPutFailure::Condition(_)) => {
                tracing::debug!(key = %claim.key.business_key, "completion with its record refused; written one by one");
                false
            }
        }
    }

    /// Deletes the claimed record after a failed action, so that a retry can run.
    pub async fn release_idempotency(&self, claim: &Claim) -> Result<(), LedgerError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(super::key_item(&claim.key.key())))
            .condition_expression("#status = :inprogress AND in_progress_expires_at = :mine")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":inprogress", s(INPROGRESS))
            .expression_attribute_values(":mine", n(claim.in_progress_until_ms))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_condition_failed(&error) => {
                Err(LedgerError::IdempotencyLost { business_key: claim.key.business_key.clone() })
            }
            Err(error) => Err(LedgerError::from_sdk("DeleteItem idempotency", &error)),
        }
    }

    /// Releases `function`'s claims left INPROGRESS past their in-progress expiry at `now` (the invocation that
    /// took them ended without settling them: a crash, a timeout, a lost ledger). Such a claim would be taken
    /// over by the next acquisition anyway; releasing it keeps the ledger saying only what is true. One index
    /// query (sparse: only claims in progress are in it) and one conditional delete per stale claim. Returns the
    /// business keys released.
    pub async fn release_stale_claims(&self, function: &str, now: DateTime<Utc>) -> Result<Vec<String>, LedgerError> {
        let items: Vec<Item> = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("#pk = :pk AND #sk < :now")
            .expression_attribute_names("#pk", keys::GSI1_PK)
            .expression_attribute_names("#sk", keys::GSI1_SK)
            .expression_attribute_values(":pk", s(keys::claims_in_progress(function)))
            .expression_attribute_values(":now", s(keys::claim_expiry(now.timestamp_millis())))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| LedgerError::from_sdk("Query stale claims", &e))?;
        let mut released = Vec::new();
        for item in items {
            let Ok(record) = serde_dynamo::from_item::<_, Record>(item) else { continue };
            if record.status != INPROGRESS || record.in_progress_expires_at >= now.timestamp_millis() {
                continue;
            }
            let claim = Claim {
                key: IdempotencyKey::new(function, record.business_key.clone()),
                in_progress_until_ms: record.in_progress_expires_at,
            };
            match self.release_idempotency(&claim).await {
                Ok(()) => released.push(record.business_key),
                Err(LedgerError::IdempotencyLost { .. }) => {} // taken over or settled meanwhile
                Err(error) => return Err(error),
            }
        }
        Ok(released)
    }

    pub(super) async fn get_item(&self, key: &Key) -> Result<Option<Item>, LedgerError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(super::key_item(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| LedgerError::from_sdk("GetItem", &e))?;
        Ok(output.item)
    }
}

/// Completions per transaction: three items each (audit, state, completion) and the fence's check.
pub const COMPLETIONS_PER_TRANSACTION: usize = (TRANSACT_MAX - 1) / 3;

/// A claim whose call succeeded, with what its completion writes: the audit record of the call, the resource's
/// new state (at the version it was read at) and the response a redelivery is answered with.
#[derive(Debug, Clone)]
pub struct Completion {
    pub claim: Claim,
    pub response: serde_json::Value,
    pub audit: AuditRecord,
    pub resource: crate::resource::ResourceRef,
    pub state: serde_json::Value,
    pub expected: Option<u64>,
}

impl Completion {
    /// The completion of `claim` after its call succeeded: `audit` its record, `state` the resource's new state.
    pub fn new<S: Serialize>(
        claim: Claim,
        response: serde_json::Value,
        audit: AuditRecord,
        state: &StateWrite<'_, S>,
    ) -> Result<Self, LedgerError> {
        let value = serde_json::to_value(state.state)
            .map_err(|e| LedgerError::corrupt(&keys::resource_state(state.resource), e))?;
        Ok(Self { claim, response, audit, resource: state.resource.clone(), state: value, expected: state.expected })
    }

    fn state_write(&self) -> StateWrite<'_, serde_json::Value> {
        StateWrite { resource: &self.resource, state: &self.state, expected: self.expected }
    }

    fn items(&self, ledger: &Ledger, now: DateTime<Utc>) -> Result<[TransactWriteItem; 3], LedgerError> {
        Ok([
            TransactWriteItem::builder().put(audit_put(&ledger.table, &self.audit)?).build(),
            TransactWriteItem::builder().put(self.state_write().put(&ledger.table, now)?).build(),
            TransactWriteItem::builder().update(completion(&ledger.table, &self.claim, &self.response, now)?).build(),
        ])
    }

    /// The three writes one by one: the audit first (the call happened), the completion even when the state
    /// cannot be written (only a completed claim tells a redelivery the call was made); the state's error, if
    /// any, is the answer.
    async fn one_by_one(&self, ledger: &Ledger, fence: Option<&Fence>, now: DateTime<Utc>) -> Result<(), LedgerError> {
        ledger.append_audit(&self.audit).await?;
        let state = ledger.put_state(&self.resource, &self.state, self.expected, fence, now).await;
        ledger.complete_idempotency(&self.claim, &self.response, now).await?;
        state.map(drop)
    }
}

/// [`Ledger::complete_idempotency`]'s write: the claim, still ours (in progress until the instant we set),
/// becomes COMPLETED with `response`, kept for [`DEFAULT_EXPIRY`]. Also one element of a transaction.
pub(super) fn completion(
    table: &str,
    claim: &Claim,
    response: &impl Serialize,
    now: DateTime<Utc>,
) -> Result<Update, LedgerError> {
    let key = claim.key.key();
    let response = serde_json::to_string(response).map_err(|e| LedgerError::corrupt(&key, e))?;
    Update::builder()
        .table_name(table)
        .set_key(Some(super::key_item(&key)))
        .update_expression(
            "SET #status = :completed, #response = :response, expires_at = :expires REMOVE gsi1pk, gsi1sk",
        )
        .condition_expression("#status = :inprogress AND in_progress_expires_at = :mine")
        .expression_attribute_names("#status", "status")
        .expression_attribute_names("#response", "response")
        .expression_attribute_values(":completed", s(COMPLETED))
        .expression_attribute_values(":inprogress", s(INPROGRESS))
        .expression_attribute_values(":response", s(response))
        .expression_attribute_values(":expires", n((now + DEFAULT_EXPIRY).timestamp()))
        .expression_attribute_values(":mine", n(claim.in_progress_until_ms))
        .build()
        .map_err(|e| LedgerError::Unavailable { operation: "Update", message: e.to_string() })
}

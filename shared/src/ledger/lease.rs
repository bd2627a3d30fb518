//! Leases: one worker per scope at a time, each acquisition with a fencing token that only ever grows.
//!
//! A lease item is never deleted (release only expires it), so tokens stay monotonic. Every protected write
//! is a transaction whose first element checks the lease item still carries the writer's token and has not
//! expired ([`Fence`]); a holder that was paused past its lease therefore cannot overwrite newer work.

use super::{Item, Ledger, LedgerError, is_condition_failed, keys, n, s};
use crate::clock::Clock;
use aws_sdk_dynamodb::types::{ConditionCheck, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use std::sync::Arc;

/// A held lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub scope: String,
    pub holder: String,
    pub token: u64,
    pub expires_at: DateTime<Utc>,
}

impl Lease {
    /// The fence to attach to writes made under this lease, checked at the time each write passes.
    pub fn fence(&self) -> Fence {
        Fence {
            scope: self.scope.clone(),
            holder: self.holder.clone(),
            token: self.token,
            expires_at: self.expires_at,
            clock: None,
        }
    }

    /// The fence, checked at `clock`'s current time as well: what a function attaches, so that an invocation
    /// paused past its lease (its decision time long gone) is caught by the clock, not only by a newer token.
    pub fn fence_on(&self, clock: Arc<dyn Clock>) -> Fence {
        Fence { clock: Some(clock), ..self.fence() }
    }
}

/// What a protected write (and every claim of an effect) is conditioned on.
#[derive(Debug, Clone)]
pub struct Fence {
    pub scope: String,
    pub holder: String,
    pub token: u64,
    /// When the lease runs out: no AWS call is started and no protected write made at or after it.
    pub expires_at: DateTime<Utc>,
    clock: Option<Arc<dyn Clock>>,
}

impl Fence {
    /// The time a check made at `at` uses: the later of `at` and the fence's clock.
    fn now(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        self.clock.as_ref().map_or(at, |clock| clock.now().max(at))
    }

    /// Whether the lease is still held (by this fence's own reckoning, no IO) at `at`: the check made right
    /// before an AWS call, which DynamoDB cannot condition. `LeaseLost` once it has run out.
    pub fn check(&self, at: DateTime<Utc>) -> Result<(), LedgerError> {
        if self.now(at) < self.expires_at {
            Ok(())
        } else {
            Err(LedgerError::LeaseLost { scope: self.scope.clone(), token: self.token })
        }
    }

    /// The transaction element that rejects the write unless this fence is still current at `now` (or the
    /// fence's clock, if later).
    pub(super) fn condition_check(&self, table: &str, now: DateTime<Utc>) -> Result<ConditionCheck, LedgerError> {
        let now = self.now(now);
        ConditionCheck::builder()
            .table_name(table)
            .set_key(Some(super::key_item(&keys::lease(&self.scope))))
            .condition_expression("#token = :token AND holder = :holder AND lease_expires_at_ms > :now_ms")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", n(self.token))
            .expression_attribute_values(":holder", s(&self.holder))
            .expression_attribute_values(":now_ms", n(now.timestamp_millis()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| LedgerError::Unavailable { operation: "ConditionCheck", message: e.to_string() })
    }

    pub(super) fn rejected(&self) -> LedgerError {
        LedgerError::FencingRejected { scope: self.scope.clone(), token: self.token }
    }
}

/// The stored lease item.
#[derive(Debug, Default, Deserialize)]
struct LeaseRecord {
    #[serde(default)]
    holder: String,
    token: u64,
    lease_expires_at_ms: i64,
}

fn lease_record(scope: &str, item: Option<Item>) -> Result<LeaseRecord, LedgerError> {
    serde_dynamo::from_item(item.unwrap_or_default()).map_err(|e| LedgerError::corrupt(&keys::lease(scope), e))
}

fn lease_from(scope: &str, item: Option<Item>) -> Result<Lease, LedgerError> {
    let record = lease_record(scope, item)?;
    Ok(Lease {
        scope: scope.to_owned(),
        holder: record.holder,
        token: record.token,
        expires_at: DateTime::from_timestamp_millis(record.lease_expires_at_ms).unwrap_or_default(),
    })
}

impl Ledger {
    /// Takes the lease on `scope` for `duration` if it is free or expired; the new token is one more than any
    /// token ever issued for the scope.
    pub async fn acquire_lease(
        &self,
        scope: &str,
        holder: &str,
        duration: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease, LedgerError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(super::key_item(&keys::lease(scope))))
            .update_expression(
                "SET holder = :holder, lease_expires_at_ms = :until, #token = if_not_exists(#token, :zero) + :one",
            )
            .condition_expression("attribute_not_exists(pk) OR lease_expires_at_ms <= :now_ms")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":holder", s(holder))
            .expression_attribute_values(":until", n((now + duration).timestamp_millis()))
            .expression_attribute_values(":now_ms", n(now.timestamp_millis()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => lease_from(scope, output.attributes),
            Err(error) if is_condition_failed(&error) => {
                let current = match error.into_service_error() {
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(e) => {
                        e.item
                    }
                    _ => None,
                };
                let current = lease_record(scope, current).unwrap_or_default();
                Err(LedgerError::LeaseHeld {
                    scope: scope.to_owned(),
                    holder: current.holder,
                    until_ms: current.lease_expires_at_ms,
                })
            }
            Err(error) => Err(LedgerError::from_sdk("UpdateItem lease", &error)),
        }
    }

    /// Extends a lease this worker still holds.
    pub async fn renew_lease(
        &self,
        lease: &Lease,
        duration: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease, LedgerError> {
        let until = now + duration;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(super::key_item(&keys::lease(&lease.scope))))
            .update_expression("SET lease_expires_at_ms = :until")
            .condition_expression("holder = :holder AND #token = :token AND lease_expires_at_ms > :now_ms")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":holder", s(&lease.holder))
            .expression_attribute_values(":token", n(lease.token))
            .expression_attribute_values(":until", n(until.timestamp_millis()))
            .expression_attribute_values(":now_ms", n(now.timestamp_millis()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Lease { expires_at: until, ..lease.clone() }),
            Err(error) if is_condition_failed(&error) => {
                Err(LedgerError::LeaseLost { scope: lease.scope.clone(), token: lease.token })
            }
            Err(error) => Err(LedgerError::from_sdk("UpdateItem lease renew", &error)),
        }
    }

    /// Gives the lease up early. The item (and its token counter) stays; only the expiry is cleared.
    pub async fn release_lease(&self, lease: &Lease) -> Result<(), LedgerError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(super::key_item(&keys::lease(&lease.scope))))
            .update_expression("SET lease_expires_at_ms = :zero")
            .condition_expression("holder = :holder AND #token = :token")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":holder", s(&lease.holder))
            .expression_attribute_values(":token", n(lease.token))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_condition_failed(&error) => {
                Err(LedgerError::LeaseLost { scope: lease.scope.clone(), token: lease.token })
            }
            Err(error) => Err(LedgerError::from_sdk("UpdateItem lease release", &error)),
        }
    }
}

/// Why a transaction of writes ([`Ledger::write_all`]), fenced or not, did not happen.
pub(super) enum FencedPutFailure {
    /// The fence is stale or its lease has run out.
    Fence,
    /// A write's own condition failed (the first that did); the item as it was, when DynamoDB returned it.
    Condition(Option<Item>),
    Unavailable(LedgerError),
}

/// Items per `TransactWriteItems` (DynamoDB's maximum), the fence's condition check included.
pub const TRANSACT_MAX: usize = 100;

impl Ledger {
    /// `put` in one transaction with `fence`'s condition check: the one way every fenced write is made.
    pub(super) async fn put_fenced(
        &self,
        fence: &Fence,
        now: DateTime<Utc>,
        put: aws_sdk_dynamodb::types::Put,
        operation: &'static str,
    ) -> Result<(), FencedPutFailure> {
        self.put_all(Some(fence), now, vec![put], operation).await
    }

    /// `puts` in one transaction (all or none), after `fence`'s condition check when there is one: at most
    /// [`TRANSACT_MAX`] items in all.
    pub(super) async fn put_all(
        &self,
        fence: Option<&Fence>,
        now: DateTime<Utc>,
        puts: Vec<aws_sdk_dynamodb::types::Put>,
        operation: &'static str,
    ) -> Result<(), FencedPutFailure> {
        let items = puts.into_iter().map(|put| TransactWriteItem::builder().put(put).build()).collect();
        self.write_all(fence, now, items, operation).await
    }

    /// `items` (puts, updates) in one transaction (all or none), after `fence`'s condition check when there is
    /// one: at most [`TRANSACT_MAX`] items in all. The one routine every ledger transaction goes through.
    pub(super) async fn write_all(
        &self,
        fence: Option<&Fence>,
        now: DateTime<Utc>,
        items: Vec<TransactWriteItem>,
        operation: &'static str,
    ) -> Result<(), FencedPutFailure> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        let checks = match fence {
            Some(fence) => {
                let check = fence.condition_check(&self.table, now).map_err(FencedPutFailure::Unavailable)?;
                vec![TransactWriteItem::builder().condition_check(check).build()]
            }
            None => Vec::new(),
        };
        let first_write = checks.len();
        let items = checks.into_iter().chain(items);
        let result = self.client.transact_write_items().set_transact_items(Some(items.collect())).send().await;
        let error = match result {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = error.as_service_error() else {
            return Err(FencedPutFailure::Unavailable(LedgerError::from_sdk(operation, &error)));
        };
        let reasons = cancelled.cancellation_reasons();
        let failed =
            |index: usize| reasons.get(index).and_then(|r| r.code.as_deref()) == Some("ConditionalCheckFailed");
        if first_write == 1 && failed(0) {
            return Err(FencedPutFailure::Fence);
        }
        match (first_write..reasons.len()).find(|&index| failed(index)) {
            Some(index) => Err(FencedPutFailure::Condition(reasons[index].item.clone())),
            None => Err(FencedPutFailure::Unavailable(LedgerError::Unavailable {
                operation,
                message: format!("cancelled: {reasons:?}"),
            })),
        }
    }
}

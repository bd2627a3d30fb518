//! Versioned state: the last known state of a resource (`RES#…`/`STATE`) and durable work items
//! (`EXPORT#…`, `IMPORT#…`, `ROLLOUT#…`). Every write names the version it expects (optimistic
//! concurrency) and may carry a lease [`Fence`].

use super::lease::{Fence, FencedPutFailure, TRANSACT_MAX};
use super::{Item, Key, Ledger, LedgerError, is_condition_failed, keys, n, number, s};
use crate::resource::ResourceRef;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A stored state and the version it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub version: u64,
    pub updated_at: Option<DateTime<Utc>>,
    pub state: T,
}

/// Keys per `BatchGetItem` (DynamoDB's maximum).
pub const BATCH_GET: usize = 100;
/// Rounds of a batch before unprocessed keys are an error.
const BATCH_ROUNDS: usize = 5;

fn found_version(item: Option<&Item>) -> Option<u64> {
    item.and_then(|item| number(item, "version")).and_then(|v| u64::try_from(v).ok())
}

impl Ledger {
    /// Reads a resource's state (strongly consistent).
    pub async fn get_state<T: DeserializeOwned>(
        &self,
        resource: &ResourceRef,
    ) -> Result<Option<Versioned<T>>, LedgerError> {
        self.get_versioned(&keys::resource_state(resource)).await
    }

    /// Reads the states of many resources (strongly consistent), keyed by [`ResourceRef::key`]: one
    /// `BatchGetItem` per [`BATCH_GET`] resources instead of a `GetItem` each.
    pub async fn get_states<T: DeserializeOwned>(
        &self,
        resources: &[ResourceRef],
    ) -> Result<std::collections::BTreeMap<String, Versioned<T>>, LedgerError> {
        self.get_many(resources.iter().map(|r| (r.key(), keys::resource_state(r))).collect()).await
    }

    /// Reads many work items of `kind` (strongly consistent), keyed by id: one `BatchGetItem` per
    /// [`BATCH_GET`] ids instead of a `GetItem` each.
    pub async fn get_work_items<T: DeserializeOwned>(
        &self,
        kind: &str,
        ids: &[String],
    ) -> Result<std::collections::BTreeMap<String, Versioned<T>>, LedgerError> {
        self.get_many(ids.iter().map(|id| (id.clone(), keys::work_item(&self.scope, kind, id))).collect()).await
    }

    /// Reads the versioned items at `wanted` (a name for each and its key), strongly consistent, one
    /// `BatchGetItem` per [`BATCH_GET`] keys; what exists comes back under its name. Keys DynamoDB leaves
    /// unprocessed (throttling) are asked again, a bounded number of times.
    async fn get_many<T: DeserializeOwned>(
        &self,
        wanted: Vec<(String, Key)>,
    ) -> Result<std::collections::BTreeMap<String, Versioned<T>>, LedgerError> {
        let mut found = std::collections::BTreeMap::new();
        for chunk in wanted.chunks(BATCH_GET) {
            let by_pk: std::collections::BTreeMap<&str, &(String, Key)> =
                chunk.iter().map(|named| (named.1.pk.as_str(), named)).collect();
            let mut keys_left: Vec<std::collections::HashMap<String, AttributeValue>> =
                chunk.iter().map(|(_, key)| super::key_item(key)).collect();
            for _ in 0..BATCH_ROUNDS {
                if keys_left.is_empty() {
                    break;
                }
                let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut keys_left)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| LedgerError::Unavailable { operation: "BatchGetItem", message: e.to_string() })?;
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| LedgerError::from_sdk("BatchGetItem", &e))?;
                for item in output.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default() {
                    let pk = item.get(keys::PK).and_then(|v| v.as_s().ok());
                    if let Some((name, key)) = pk.and_then(|pk| by_pk.get(pk.as_str())) {
                        found.insert(name.clone(), versioned_from_item(key, item)?);
                    }
                }
                keys_left =
                    output.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
            }
            if !keys_left.is_empty() {
                return Err(LedgerError::Unavailable {
                    operation: "BatchGetItem",
                    message: format!("{} keys still unprocessed after {BATCH_ROUNDS} rounds", keys_left.len()),
                });
            }
        }
        Ok(found)
    }

    /// Writes a resource's state. `expected`: `None` = must not exist yet, `Some(v)` = must be at version v.
    /// Returns the new version.
    pub async fn put_state<T: Serialize>(
        &self,
        resource: &ResourceRef,
        state: &T,
        expected: Option<u64>,
        fence: Option<&Fence>,
        now: DateTime<Utc>,
    ) -> Result<u64, LedgerError> {
        self.put_versioned(&keys::resource_state(resource), state, expected, Listing::Kept, fence, now).await
    }

    /// Reads a work item (`kind` is e.g. `EXPORT`).
    pub async fn get_work_item<T: DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<Versioned<T>>, LedgerError> {
        self.get_versioned(&keys::work_item(&self.scope, kind, id)).await
    }

    /// Writes a work item at the version it was read at: an open one is listed by [`Ledger::open_work_items`];
    /// a closed one is not, and ages out when it expires.
    pub async fn put_work_item<T: Serialize>(
        &self,
        item: WorkItemWrite<'_, T>,
        fence: Option<&Fence>,
        now: DateTime<Utc>,
    ) -> Result<u64, LedgerError> {
        let WorkItemWrite { kind, id, state, expected, listing } = item;
        let key = keys::work_item(&self.scope, kind, id);
        let listing = match listing {
            WorkItemListing::Open => Listing::Indexed(keys::open_work_items(&self.scope, kind), id.to_owned()),
            WorkItemListing::Closed { expires_at } => Listing::Expiring(expires_at),
        };
        self.put_versioned(&key, state, expected, listing, fence, now).await
    }

    /// Every open work item of `kind` with its id (from the index: eventually consistent, so a write made from
    /// it is still checked against the item's version).
    pub async fn open_work_items<T: DeserializeOwned>(
        &self,
        kind: &str,
    ) -> Result<Vec<(String, Versioned<T>)>, LedgerError> {
        let partition = keys::open_work_items(&self.scope, kind);
        let items = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("#p = :p")
            .expression_attribute_names("#p", keys::GSI1_PK)
            .expression_attribute_values(":p", AttributeValue::S(partition.clone()))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| LedgerError::from_sdk("Query open work items", &e))?;
        items
            .into_iter()
            .map(|mut item| {
                let id = item
                    .remove(keys::GSI1_SK)
                    .and_then(|v| v.as_s().ok().cloned())
                    .ok_or_else(|| LedgerError::Corrupt { key: partition.clone(), message: "gsi1sk missing".into() })?;
                let versioned = versioned_from_item(&keys::work_item(&self.scope, kind, &id), item)?;
                Ok((id, versioned))
            })
            .collect()
    }

    async fn get_versioned<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<Versioned<T>>, LedgerError> {
        let Some(item) = self.get_item(key).await? else { return Ok(None) };
        versioned_from_item(key, item).map(Some)
    }

    async fn put_versioned<T: Serialize>(
        &self,
        key: &Key,
        state: &T,
        expected: Option<u64>,
        listing: Listing,
        fence: Option<&Fence>,
        now: DateTime<Utc>,
    ) -> Result<u64, LedgerError> {
        let write = VersionedWrite::new(key, state, expected, now, listing)?;
        let version = write.version;
        let conflict = |found: Option<&Item>| LedgerError::VersionConflict {
            key: format!("{}/{}", key.pk, key.sk),
            expected,
            found: found_version(found),
        };

        let Some(fence) = fence else {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(write.item))
                .condition_expression(write.condition)
                .set_expression_attribute_values(write.values)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            return match result {
                Ok(_) => Ok(version),
                Err(error) if is_condition_failed(&error) => {
                    let old = match error.into_service_error() {
                        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(e) => {
                            e.item
                        }
                        _ => None,
                    };
                    Err(conflict(old.as_ref()))
                }
                Err(error) => Err(LedgerError::from_sdk("PutItem state", &error)),
            };
        };

        match self.put_fenced(fence, now, write.put(&self.table)?, "TransactWriteItems state").await {
            Ok(()) => Ok(version),
            Err(FencedPutFailure::Fence) => Err(fence.rejected()),
            Err(FencedPutFailure::Condition(old)) => Err(conflict(old.as_ref())),
            Err(FencedPutFailure::Unavailable(error)) => Err(error),
        }
    }

    /// Writes many resources' states (each resource once), each as [`Ledger::put_state`] would (versioned;
    /// fenced when `fence` is given), in as few requests as DynamoDB allows: one `TransactWriteItems` per
    /// [`TRANSACT_MAX`] items, the fence's check taking one place, instead of a request each. A transaction is
    /// all or none: when one is not accepted for any reason but the fence (an item's version moved, a
    /// conflicting transaction, a request DynamoDB refuses, an outage), its writes are made one by one instead,
    /// so each lands or fails as `put_state` in turn would: the writes before the first failure land and that
    /// failure is the error. Earlier transactions stay written; later ones are not tried.
    pub async fn put_states<T: Serialize>(
        &self,
        writes: &[StateWrite<'_, T>],
        fence: Option<&Fence>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let one_by_one = async |chunk: &[StateWrite<'_, T>]| {
            for write in chunk {
                self.put_state(write.resource, write.state, write.expected, fence, now).await?;
            }
            Ok::<_, LedgerError>(())
        };
        for chunk in writes.chunks(TRANSACT_MAX - usize::from(fence.is_some())) {
            if chunk.len() == 1 {
                one_by_one(chunk).await?;
                continue;
            }
            let puts = chunk.iter().map(|w| w.put(&self.table, now)).collect::<Result<Vec<_>, _>>()?;
            match self.put_all(fence, now, puts, "TransactWriteItems states").await {
                Ok(()) => {}
                Err(FencedPutFailure::Fence) if let Some(fence) = fence => return Err(fence.rejected()),
                Err(_) => one_by_one(chunk).await?,
            }
        }
        Ok(())
    }
}

/// One write of [`Ledger::put_states`]: the resource, its new state, and the version it was read at (`None` =
/// must not exist yet).
#[derive(Debug, Clone, Copy)]
pub struct StateWrite<'a, T> {
    pub resource: &'a ResourceRef,
    pub state: &'a T,
    pub expected: Option<u64>,
}

impl<T: Serialize> StateWrite<'_, T> {
    /// The write as one element of a transaction.
    pub(super) fn put(&self, table: &str, now: DateTime<Utc>) -> Result<Put, LedgerError> {
        VersionedWrite::new(&keys::resource_state(self.resource), self.state, self.expected, now, Listing::Kept)?
            .put(table)
    }
}

/// A versioned item ready to write: the item at its next version, and the condition that it is still at the
/// version it was read at.
struct VersionedWrite {
    version: u64,
    item: Item,
    condition: &'static str,
    values: Option<std::collections::HashMap<String, AttributeValue>>,
}

/// A work item to write: its kind and id, its state, the version it was read at, and whether it stays listed.
#[derive(Debug, Clone, Copy)]
pub struct WorkItemWrite<'a, T> {
    /// `EXPORT`, `ROLLOUT`, …
    pub kind: &'a str,
    pub id: &'a str,
    pub state: &'a T,
    /// The version it was read at; `None`: it must not exist yet.
    pub expected: Option<u64>,
    pub listing: WorkItemListing,
}

/// Whether a work item is listed by [`Ledger::open_work_items`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkItemListing {
    /// In flight: listed.
    Open,
    /// Finished: not listed, and gone after `expires_at` (kept when `None`).
    Closed { expires_at: Option<DateTime<Utc>> },
}

impl WorkItemListing {
    /// Open while `open`, else closed and expiring at `expires_at`.
    pub fn of(open: bool, expires_at: Option<DateTime<Utc>>) -> Self {
        if open { WorkItemListing::Open } else { WorkItemListing::Closed { expires_at } }
    }
}

/// How a versioned item is written besides its state: kept, expiring, or in a sparse index (partition, sort).
#[derive(Debug, Clone)]
enum Listing {
    Kept,
    Expiring(Option<DateTime<Utc>>),
    Indexed(String, String),
}

impl VersionedWrite {
    fn new<T: Serialize>(
        key: &Key,
        state: &T,
        expected: Option<u64>,
        now: DateTime<Utc>,
        listing: Listing,
    ) -> Result<Self, LedgerError> {
        let version = expected.map_or(1, |v| v + 1);
        let mut item = super::key_item(key);
        item.insert("version".into(), n(version));
        item.insert("updated_at".into(), s(now.to_rfc3339_opts(SecondsFormat::Millis, true)));
        item.insert("state".into(), serde_dynamo::to_attribute_value(state).map_err(|e| LedgerError::corrupt(key, e))?);
        let (expires_at, index) = match listing {
            Listing::Kept => (None, None),
            Listing::Expiring(expires_at) => (expires_at, None),
            Listing::Indexed(partition, sort) => (None, Some((partition, sort))),
        };
        if let Some(expires_at) = expires_at {
            item.insert(keys::TTL.into(), n(expires_at.timestamp()));
        }
        if let Some((partition, sort)) = index {
            item.insert(keys::GSI1_PK.into(), s(partition));
            item.insert(keys::GSI1_SK.into(), s(sort));
        }
        let (condition, values) = match expected {
            None => ("attribute_not_exists(pk)", None),
            Some(v) => ("version = :expected", Some([(":expected".to_owned(), n(v))].into())),
        };
        Ok(VersionedWrite { version, item, condition, values })
    }

    /// The write as one element of a transaction.
    fn put(self, table: &str) -> Result<Put, LedgerError> {
        Put::builder()
            .table_name(table)
            .set_item(Some(self.item))
            .condition_expression(self.condition)
            .set_expression_attribute_values(self.values)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| LedgerError::Unavailable { operation: "Put", message: e.to_string() })
    }
}

/// A versioned item as read (from the table or the index).
fn versioned_from_item<T: DeserializeOwned>(key: &Key, mut item: Item) -> Result<Versioned<T>, LedgerError> {
    let version = found_version(Some(&item)).ok_or_else(|| LedgerError::corrupt(key, "version missing"))?;
    let updated_at = item
        .get("updated_at")
        .and_then(|v| v.as_s().ok())
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let state = item.remove("state").ok_or_else(|| LedgerError::corrupt(key, "state missing"))?;
    let state = serde_dynamo::from_attribute_value(state).map_err(|e| LedgerError::corrupt(key, e))?;
    Ok(Versioned { version, updated_at, state })
}

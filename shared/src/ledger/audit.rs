//! Append-only audit records: every decision that acted or was deferred, and (once each, when they change) every
//! hold and dry-run would-act. Readable by UTC day (the table) and by resource (GSI1), both in time order; kept
//! for [`DEFAULT_RETENTION`] via TTL.

use super::{Item, Ledger, LedgerError, is_condition_failed, keys, n, s};
use aws_sdk_dynamodb::types::{AttributeValue, Put};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// How long audit records are kept.
pub const DEFAULT_RETENTION: Duration = Duration::days(400);

/// What became of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The action was made.
    Applied,
    /// Dry-run: the action would have been made.
    DryRun,
    /// Deliberately not acted (skip tag, override, another owner, safety rule).
    Skipped,
    /// Deferred to a later tick (busy resource, cooldown, budget).
    Deferred,
    /// The action was attempted and failed.
    Failed,
    /// A hold ended: the resource is decided on again (see [`crate::notes`]).
    Released,
}

impl Outcome {
    /// The outcome as it sorts in the record's key: the stages of one action in the order they happen within
    /// one instant (deferred, then failed, then applied), the decisions that are not attempts after them.
    fn stage(self) -> &'static str {
        match self {
            Outcome::Deferred => "0deferred",
            Outcome::Failed => "1failed",
            Outcome::Applied => "2applied",
            Outcome::DryRun => "3dry-run",
            Outcome::Skipped => "4skipped",
            Outcome::Released => "5released",
        }
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    /// The function that decided (`pool-scaler`, …).
    pub function: String,
    /// The resource key ([`crate::resource::ResourceRef::key`]).
    pub resource: String,
    /// The action (`UpdateFleet`, `RebootWorkspaces`, …) or decision name.
    pub action: String,
    pub outcome: Outcome,
    /// Why, in words an operator understands.
    pub reason: String,
    /// The EventBridge event id that caused the decision.
    pub correlation_id: String,
    /// Action parameters and anything else worth keeping.
    #[serde(default)]
    pub details: serde_json::Value,
}

/// Whether `append` wrote a new record or found the same one already there (a redelivered event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    New,
    AlreadyRecorded,
}

impl Ledger {
    /// Appends a record. The key is derived from time, resource, action, outcome and correlation id, so the
    /// same decision recorded twice is stored once, and a later outcome of the same action is a record of its own.
    pub async fn append_audit(&self, record: &AuditRecord) -> Result<Appended, LedgerError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(audit_item(record)?))
            .condition_expression(AUDIT_ONCE)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Appended::New),
            Err(error) if is_condition_failed(&error) => Ok(Appended::AlreadyRecorded),
            Err(error) => Err(LedgerError::from_sdk("PutItem audit", &error)),
        }
    }

    /// All records of one UTC day, oldest first; an item that is not a record is an error.
    pub async fn audit_by_day(&self, day: NaiveDate) -> Result<Vec<AuditRecord>, LedgerError> {
        self.read_audit_by_day(day).await?.strict()
    }

    /// All records of one resource, oldest first; an item that is not a record is an error.
    pub async fn audit_by_resource(&self, resource_key: &str) -> Result<Vec<AuditRecord>, LedgerError> {
        self.read_audit_by_resource(resource_key).await?.strict()
    }

    /// The records of one UTC day, oldest first, and the items that are not records (set apart, not failing the
    /// others: one record written by a newer version must not hide a day's trail).
    pub async fn read_audit_by_day(&self, day: NaiveDate) -> Result<AuditRead, LedgerError> {
        self.query_audit(None, keys::PK, keys::audit_day(day)).await
    }

    /// [`Ledger::read_audit_by_day`] for the records of one resource.
    pub async fn read_audit_by_resource(&self, resource_key: &str) -> Result<AuditRead, LedgerError> {
        self.query_audit(Some(keys::GSI1), keys::GSI1_PK, keys::audit_resource(resource_key)).await
    }

    async fn query_audit(
        &self,
        index: Option<&str>,
        attribute: &str,
        partition: String,
    ) -> Result<AuditRead, LedgerError> {
        let pages = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_owned))
            .key_condition_expression("#p = :p")
            .expression_attribute_names("#p", attribute)
            .expression_attribute_values(":p", AttributeValue::S(partition.clone()))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| LedgerError::from_sdk("Query audit", &e))?;
        let mut read = AuditRead::default();
        for item in pages {
            let key = |name: &str| match item.get(name) {
                Some(AttributeValue::S(value)) => value.clone(),
                _ => String::new(),
            };
            let key = format!("{}/{}", key(keys::PK), key(keys::SK));
            match serde_dynamo::from_item(item) {
                Ok(record) => read.records.push(record),
                Err(error) => read.unreadable.push(Unreadable { key, reason: error.to_string() }),
            }
        }
        Ok(read)
    }
}

/// What an audit query read: the records, and the items that could not be read as one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditRead {
    pub records: Vec<AuditRecord>,
    pub unreadable: Vec<Unreadable>,
}

/// An audit item that is not a record this version can read (an outcome a newer version added, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// Its table key, `pk/sk`.
    pub key: String,
    pub reason: String,
}

impl AuditRead {
    /// The records, or the first item that is not one as an error.
    fn strict(self) -> Result<Vec<AuditRecord>, LedgerError> {
        match self.unreadable.into_iter().next() {
            Some(item) => Err(LedgerError::Corrupt { key: item.key, message: item.reason }),
            None => Ok(self.records),
        }
    }
}

/// An audit record is written once: a second write of the same record (a redelivery) changes nothing.
const AUDIT_ONCE: &str = "attribute_not_exists(pk)";

/// The item of an audit record: by day (the table's key) and by resource (the index), kept for
/// [`DEFAULT_RETENTION`].
fn audit_item(record: &AuditRecord) -> Result<Item, LedgerError> {
    let (by_day, by_resource) =
        keys::audit(record.at, &record.resource, &record.action, record.outcome.stage(), &record.correlation_id);
    let mut item: Item = serde_dynamo::to_item(record).map_err(|e| LedgerError::corrupt(&by_day, e))?;
    item.extend(super::key_item(&by_day));
    item.insert(keys::GSI1_PK.into(), s(by_resource.pk));
    item.insert(keys::GSI1_SK.into(), s(by_resource.sk));
    item.insert(keys::TTL.into(), n((record.at + DEFAULT_RETENTION).timestamp()));
    Ok(item)
}

/// [`Ledger::append_audit`]'s write as one element of a transaction.
pub(super) fn audit_put(table: &str, record: &AuditRecord) -> Result<Put, LedgerError> {
    Put::builder()
        .table_name(table)
        .set_item(Some(audit_item(record)?))
        .condition_expression(AUDIT_ONCE)
        .build()
        .map_err(|e| LedgerError::Unavailable { operation: "Put", message: e.to_string() })
}

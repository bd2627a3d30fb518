//! The last tick of every shard (`SHARDS` / `<function>#<account>#<region>`): when it ran, how it ended, how long
//! it took and what it cost. One small item per shard, overwritten at each of its ticks; `autopilot targets`
//! lists them.

use super::{Ledger, LedgerError, keys};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a shard's tick ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShardOutcome {
    /// The work ran to its end.
    Ok,
    /// Another invocation held the shard's lease: this one yielded.
    Busy,
    /// The work failed (the error says why; EventBridge retries the shard tick, then its dead-letter queue).
    Failed,
}

/// A shard's last tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardStatus {
    pub function: String,
    pub account: String,
    pub region: String,
    pub at: DateTime<Utc>,
    pub outcome: ShardOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
    pub api_calls: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct ShardRecord {
    pk: String,
    sk: String,
    #[serde(flatten)]
    status: ShardStatus,
}

impl Ledger {
    /// Records a shard's tick (overwrites the previous one).
    pub async fn put_shard_status(&self, status: &ShardStatus) -> Result<(), LedgerError> {
        let key = keys::shard_status(&status.function, &status.account, &status.region);
        let record = ShardRecord { pk: key.pk.clone(), sk: key.sk.clone(), status: status.clone() };
        let item: super::Item = serde_dynamo::to_item(&record).map_err(|e| LedgerError::corrupt(&key, e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|error| LedgerError::from_sdk("PutItem shard status", &error))?;
        Ok(())
    }

    /// Every shard's last tick, by function, account and region.
    pub async fn shard_statuses(&self) -> Result<Vec<ShardStatus>, LedgerError> {
        let key = keys::shard_status("", "", "");
        let mut found = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S(key.pk.clone()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| LedgerError::from_sdk("Query shard statuses", &error))?;
            for item in page.items() {
                let record: ShardRecord =
                    serde_dynamo::from_item(item.clone()).map_err(|e| LedgerError::corrupt(&key, e))?;
                found.push(record.status);
            }
        }
        Ok(found)
    }
}

//! Policy document versions (`CONFIG` / `v<n>`). A document is validated before it is stored, so a bad
//! document never takes effect; the current policy is the highest version. Concurrent writers cannot both
//! claim the same version number.

use super::{Ledger, LedgerError, is_condition_failed, keys};
use crate::policy::Policy;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// The stored item.
#[derive(Debug, Serialize, Deserialize)]
struct ConfigRecord {
    pk: String,
    sk: String,
    version: u32,
    document: String,
    sha256: String,
    created_at: String,
}

/// A stored, valid policy document.
#[derive(Debug, Clone)]
pub struct StoredPolicy {
    pub version: u32,
    pub created_at: String,
    /// The document exactly as the operator wrote it.
    pub document: String,
    pub policy: Policy,
}

impl Ledger {
    /// `document` parsed, from the cache when it is the document parsed last.
    fn parse_policy(&self, document: &str) -> Result<Policy, LedgerError> {
        let mut cache = self.parsed_policy.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((cached, policy)) = cache.as_ref()
            && cached == document
        {
            return Ok(policy.clone());
        }
        let policy = Policy::from_yaml(document)?;
        *cache = Some((document.to_owned(), policy.clone()));
        Ok(policy)
    }

    /// Validates `document` and stores it as the next version. Returns the new version number.
    pub async fn put_policy(&self, document: &str, now: DateTime<Utc>) -> Result<u32, LedgerError> {
        Policy::from_yaml(document)?;
        let next = self.current_policy_version().await?.map_or(1, |v| v + 1);
        let key = keys::config_version(next);
        let record = ConfigRecord {
            pk: key.pk.clone(),
            sk: key.sk.clone(),
            version: next,
            document: document.to_owned(),
            sha256: keys::sha256_hex(document.as_bytes()),
            created_at: now.to_rfc3339_opts(SecondsFormat::Millis, true),
        };
        let item: super::Item = serde_dynamo::to_item(&record).map_err(|e| LedgerError::corrupt(&key, e))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(next),
            Err(error) if is_condition_failed(&error) => Err(LedgerError::VersionConflict {
                key: format!("{}/{}", key.pk, key.sk),
                expected: None,
                found: Some(u64::from(next)),
            }),
            Err(error) => Err(LedgerError::from_sdk("PutItem config", &error)),
        }
    }

    async fn current_policy_version(&self) -> Result<Option<u32>, LedgerError> {
        Ok(self.latest_config().await?.map(|record| record.version))
    }

    async fn latest_config(&self) -> Result<Option<ConfigRecord>, LedgerError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :v)")
            .expression_attribute_values(":pk", AttributeValue::S(keys::CONFIG_PK.into()))
            .expression_attribute_values(":v", AttributeValue::S("v".into()))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| LedgerError::from_sdk("Query config", &e))?;
        let Some(item) = output.items.unwrap_or_default().into_iter().next() else { return Ok(None) };
        let record: ConfigRecord = serde_dynamo::from_item(item)
            .map_err(|e| LedgerError::Corrupt { key: keys::CONFIG_PK.into(), message: e.to_string() })?;
        Ok(Some(record))
    }

    /// The current version number and document exactly as stored, without validating it (an operator
    /// comparing a new document with the current one must see it even if this build would refuse it).
    pub async fn current_policy_document(&self) -> Result<Option<(u32, String)>, LedgerError> {
        Ok(self.latest_config().await?.map(|record| (record.version, record.document)))
    }

    /// The current (highest-version) policy, validated again on read, or `None` when none was stored.
    pub async fn current_policy(&self) -> Result<Option<StoredPolicy>, LedgerError> {
        let Some(record) = self.latest_config().await? else { return Ok(None) };
        let policy = self.parse_policy(&record.document).map_err(|error| match error {
            LedgerError::InvalidPolicy(error) => LedgerError::InvalidStoredPolicy { version: record.version, error },
            other => other,
        })?;
        Ok(Some(StoredPolicy {
            version: record.version,
            created_at: record.created_at,
            document: record.document,
            policy,
        }))
    }
}

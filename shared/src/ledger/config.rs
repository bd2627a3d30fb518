//! Policy document versions (`CONFIG` / `v<n>`). A document is validated before it is stored, so a bad
//! document never takes effect; the current policy is the highest version. Concurrent writers cannot both
//! claim the same version number.

use super::{Ledger, LedgerError, is_condition_failed, keys, n, number, s, string};
use crate::policy::Policy;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};

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
    /// Validates `document` and stores it as the next version. Returns the new version number.
    pub async fn put_policy(&self, document: &str, now: DateTime<Utc>) -> Result<u32, LedgerError> {
        Policy::from_yaml(document)?;
        let next = self.current_policy_version().await?.map_or(1, |v| v + 1);
        let key = keys::config_version(next);
        let mut item = super::key_item(&key);
        item.insert("version".into(), n(next));
        item.insert("document".into(), s(document));
        item.insert("sha256".into(), s(keys::sha256_hex(document.as_bytes())));
        item.insert("created_at".into(), s(now.to_rfc3339_opts(SecondsFormat::Millis, true)));
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
            Err(error) => Err(LedgerError::unavailable("PutItem config", &error)),
        }
    }

    async fn current_policy_version(&self) -> Result<Option<u32>, LedgerError> {
        Ok(self
            .latest_config_item()
            .await?
            .and_then(|item| number(&item, "version"))
            .and_then(|v| u32::try_from(v).ok()))
    }

    async fn latest_config_item(&self) -> Result<Option<super::Item>, LedgerError> {
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
            .map_err(|e| LedgerError::unavailable("Query config", &e))?;
        Ok(output.items.unwrap_or_default().into_iter().next())
    }

    /// The current (highest-version) policy, validated again on read, or `None` when none was stored.
    pub async fn current_policy(&self) -> Result<Option<StoredPolicy>, LedgerError> {
        let Some(item) = self.latest_config_item().await? else { return Ok(None) };
        let version = number(&item, "version").and_then(|v| u32::try_from(v).ok()).unwrap_or_default();
        let document = string(&item, "document").unwrap_or_default().to_owned();
        let policy = Policy::from_yaml(&document)?;
        Ok(Some(StoredPolicy {
            version,
            created_at: string(&item, "created_at").unwrap_or_default().to_owned(),
            document,
            policy,
        }))
    }
}

//! The tag cache: the tags of pools, fleets, image builders and environments, so that a tick does not ask a
//! service for every resource's tags (their Describe and List calls return none, and one call per resource is
//! far over the services' rate limits on a large estate). [`crate::lookups::cached_tags`] reads through it.
//!
//! One partition per resource kind (`TAGS#<kind>`), loaded with one paginated Query. Per resource an entry
//! (`<resource key>#READ`: the tags and when they were read) and, once a tag-change event named the resource, a
//! marker (`<resource key>#CHANGED`: when they changed). An entry is due — read again from its service — when it
//! is missing, older than its maximum age, or not newer than its marker ([`TagCacheEntry::fresh`]).
//!
//! Tag changes normally reach the cache within a minute: CloudTrail's `TagResource` / `UntagResource` (AppStream,
//! Thin Client) and `CreateTags` / `DeleteTags` (WorkSpaces) reach each function that caches the kind, which marks
//! the resource. The maximum age ([`TAG_MAX_AGE`], spread per resource) is the safety net for an event that never
//! came: CloudTrail events on EventBridge are best effort.
//!
//! These are cache writes: no lease fence, no version, no audit. A stale write is still caught: a tick that read
//! the tags just before a change and writes them back after the change's event was handled leaves an entry whose
//! `read_at` (the tick's time, taken before its reads) is older than the marker's `changed_at`, and the marker is
//! an item of its own that cache writes never touch. (Deleting the entry on the event would lose that race and
//! keep the old tags for up to a day.) Entries of resources that vanished are never read again and leave with
//! their TTL.

use super::{Item, Ledger, LedgerError, is_condition_failed, keys, n, number};
use crate::resource::{ResourceKind, ResourceRef};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The longest cached tags are used without an event saying they changed.
pub const TAG_MAX_AGE: Duration = Duration::hours(24);

/// Items per `BatchWriteItem` (DynamoDB's limit).
const BATCH: usize = 25;

/// Calls per batch before items DynamoDB left unprocessed (throttling) make the write fail.
const BATCH_ATTEMPTS: u32 = 5;

/// How long `resource`'s cached tags are used: `TAG_MAX_AGE × (0.5 + 0.5 h)` with `h` in [0, 1) from a hash of
/// the resource key, so the entries one tick filled are refreshed over the ticks of half a day, not all at once.
pub fn max_age(resource: &ResourceRef) -> Duration {
    let digest = Sha256::digest(resource.key().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // the top 53 bits: exactly representable, so h < 1
    let h = (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64;
    let millis = TAG_MAX_AGE.num_milliseconds() as f64 * (0.5 + 0.5 * h);
    Duration::milliseconds(millis as i64)
}

/// What the ledger knows of one resource's tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagCacheEntry {
    /// The tags as last read, and when (the reading invocation's time, taken before it read them).
    pub cached: Option<(BTreeMap<String, String>, DateTime<Utc>)>,
    /// When a tag-change event last named the resource.
    pub changed_at: Option<DateTime<Utc>>,
}

impl TagCacheEntry {
    /// The cached tags if they may be used at `now`; `None` when they are due: never read, read at least
    /// [`max_age`] ago, or not read after the last change.
    pub fn fresh(&self, resource: &ResourceRef, now: DateTime<Utc>) -> Option<&BTreeMap<String, String>> {
        let (tags, read_at) = self.cached.as_ref()?;
        let changed_since = self.changed_at.is_some_and(|changed| changed >= *read_at);
        (!changed_since && now - *read_at < max_age(resource)).then_some(tags)
    }
}

fn seconds(at: DateTime<Utc>) -> AttributeValue {
    n(at.timestamp())
}

fn instant(item: &Item, name: &str) -> Option<DateTime<Utc>> {
    number(item, name).and_then(|secs| DateTime::from_timestamp(secs, 0))
}

impl Ledger {
    /// Everything cached for `kind`, by resource key: one paginated Query of its partition.
    pub async fn tag_cache(&self, kind: ResourceKind) -> Result<BTreeMap<String, TagCacheEntry>, LedgerError> {
        self.query_tag_cache(keys::tag_cache(kind), None).await
    }

    /// What is cached for one resource (its entry and marker: one Query on their common sort-key prefix).
    pub async fn tag_cache_of(&self, resource: &ResourceRef) -> Result<TagCacheEntry, LedgerError> {
        let key = resource.key();
        let mut found = self.query_tag_cache(keys::tag_cache(resource.kind()), Some(format!("{key}#"))).await?;
        Ok(found.remove(&key).unwrap_or_default())
    }

    async fn query_tag_cache(
        &self,
        partition: String,
        prefix: Option<String>,
    ) -> Result<BTreeMap<String, TagCacheEntry>, LedgerError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_names("#p", keys::PK)
            .expression_attribute_values(":p", AttributeValue::S(partition));
        query = match prefix {
            None => query.key_condition_expression("#p = :p"),
            Some(prefix) => query
                .key_condition_expression("#p = :p AND begins_with(#s, :s)")
                .expression_attribute_names("#s", keys::SK)
                .expression_attribute_values(":s", AttributeValue::S(prefix)),
        };
        let items = query
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| LedgerError::from_sdk("Query tag cache", &e))?;
        let mut entries: BTreeMap<String, TagCacheEntry> = BTreeMap::new();
        for item in items {
            let Some(sk) = item.get(keys::SK).and_then(|v| v.as_s().ok()) else { continue };
            let Some((resource, suffix)) = sk.rsplit_once('#') else { continue };
            let entry = entries.entry(resource.to_owned()).or_default();
            match suffix {
                keys::TAGS_READ => {
                    let tags = item.get("tags").cloned().and_then(|t| serde_dynamo::from_attribute_value(t).ok());
                    match (tags, instant(&item, "read_at")) {
                        (Some(tags), Some(read_at)) => entry.cached = Some((tags, read_at)),
                        // a cache: an unreadable entry is read again from the service and overwritten
                        _ => tracing::warn!(%sk, "unreadable tag cache entry: the tags are read again"),
                    }
                }
                keys::TAGS_CHANGED => entry.changed_at = instant(&item, "changed_at"),
                _ => {}
            }
        }
        Ok(entries)
    }

    /// Caches the tags just read (`read_at`: the reading invocation's time, taken before it read them), 25 items
    /// per `BatchWriteItem`; items DynamoDB leaves unprocessed are sent again a few times with a growing pause,
    /// then the write fails. Unfenced: see the module documentation.
    pub async fn put_cached_tags(
        &self,
        read: &[(ResourceRef, BTreeMap<String, String>)],
        read_at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        for chunk in read.chunks(BATCH) {
            let mut requests = Vec::with_capacity(chunk.len());
            for (resource, tags) in chunk {
                let key = keys::cached_tags(resource);
                let mut item = super::key_item(&key);
                item.insert(
                    "tags".into(),
                    serde_dynamo::to_attribute_value(tags).map_err(|e| LedgerError::corrupt(&key, e))?,
                );
                item.insert("read_at".into(), seconds(read_at));
                item.insert(keys::TTL.into(), seconds(read_at + max_age(resource) * 2));
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| LedgerError::Unavailable { operation: "PutRequest", message: e.to_string() })?;
                requests.push(WriteRequest::builder().put_request(put).build());
            }
            let mut attempt = 0;
            while !requests.is_empty() {
                if attempt == BATCH_ATTEMPTS {
                    return Err(LedgerError::Unavailable {
                        operation: "BatchWriteItem tag cache",
                        message: format!("{} items still unprocessed after {BATCH_ATTEMPTS} calls", requests.len()),
                    });
                }
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
                attempt += 1;
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| LedgerError::from_sdk("BatchWriteItem tag cache", &e))?;
                requests = output.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
            }
        }
        Ok(())
    }

    /// Records that `resource`'s tags changed at `at` (a tag-change event), keeping the latest such time: a
    /// redelivered or older event changes nothing. Cached tags read before `at` are due from now on.
    pub async fn mark_tags_changed(&self, resource: &ResourceRef, at: DateTime<Utc>) -> Result<(), LedgerError> {
        let mut item = super::key_item(&keys::tags_changed(resource));
        item.insert("changed_at".into(), seconds(at));
        item.insert(keys::TTL.into(), seconds(at + TAG_MAX_AGE * 2));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR changed_at < :at")
            .expression_attribute_values(":at", seconds(at))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_condition_failed(&error) => Ok(()),
            Err(error) => Err(LedgerError::from_sdk("PutItem tags changed", &error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn fleet(name: &str) -> ResourceRef {
        ResourceRef::new("123456789012", "eu-central-1", ResourceKind::Fleet, name).unwrap_or_else(|e| panic!("{e}"))
    }

    fn t(hours: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).single().unwrap_or_default() + Duration::hours(hours)
    }

    #[test]
    fn max_ages_are_deterministic_between_half_and_all_of_the_maximum_and_spread() {
        let ages: Vec<Duration> = (0..1000).map(|i| max_age(&fleet(&format!("fleet-{i}")))).collect();
        assert_eq!(max_age(&fleet("fleet-7")), ages[7], "the same resource, the same age");
        assert!(ages.iter().all(|a| *a >= TAG_MAX_AGE / 2 && *a < TAG_MAX_AGE), "{ages:?}");
        // spread: every tenth of the range holds some of them (expected 100 each)
        let mut buckets = [0; 10];
        for age in &ages {
            let share = (age.num_milliseconds() - (TAG_MAX_AGE / 2).num_milliseconds()) as f64
                / (TAG_MAX_AGE / 2).num_milliseconds() as f64;
            buckets[((share * 10.0) as usize).min(9)] += 1;
        }
        assert!(buckets.iter().all(|b| (60..=140).contains(b)), "{buckets:?}");
    }

    fn check(cached: Option<i64>, changed: Option<i64>, now: i64, fresh: bool) {
        let resource = fleet("sales");
        let entry = TagCacheEntry {
            cached: cached.map(|at| (BTreeMap::from([("k".to_owned(), "v".to_owned())]), t(at))),
            changed_at: changed.map(t),
        };
        assert_eq!(entry.fresh(&resource, t(now)).is_some(), fresh, "read {cached:?}, changed {changed:?}, now {now}");
    }

    #[test]
    fn an_entry_is_due_when_missing_too_old_or_not_newer_than_the_last_change() {
        let age = max_age(&fleet("sales"));
        let within = (age - Duration::hours(1)).num_hours();
        check(None, None, 0, false); // never read
        check(None, Some(0), 1, false); // a change marked, nothing read
        check(Some(0), None, 0, true); // just read
        check(Some(0), None, within, true); // within its age
        check(Some(0), None, 24, false); // past any age
        check(Some(0), None, 12, (Duration::hours(12)) < age); // at the earliest possible age: by its hash
        check(Some(5), Some(3), 6, true); // read after the change
        check(Some(3), Some(3), 4, false); // read at the time of the change: may have missed it
        check(Some(3), Some(5), 6, false); // changed after the read (even if written back later)
    }
}

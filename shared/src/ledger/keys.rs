//! The ledger's key schema, in one place: attribute names, the secondary index and how every
//! item kind builds its `pk`/`sk`. `template.yaml`, the local tool and the tests all use these.

use crate::resource::{ResourceKind, ResourceRef};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

/// Partition key attribute (string).
pub const PK: &str = "pk";
/// Sort key attribute (string).
pub const SK: &str = "sk";
/// TTL attribute (epoch seconds). Housekeeping only: expiry is always checked against stored timestamps.
pub const TTL: &str = "expires_at";
/// The one global secondary index: audit records by resource, and (sparsely) open work items by kind and
/// idempotency claims in progress by function.
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";

/// A full item key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

/// SHA-256 of `text`, lowercase hex.
pub fn sha256_hex(text: &[u8]) -> String {
    hex::encode(Sha256::digest(text))
}

/// Partition-key prefix of idempotency records.
pub const IDEMPOTENCY_PREFIX: &str = "IDEMP#";

/// Idempotency record: one per business event per function.
pub fn idempotency(function: &str, business_key: &str) -> Key {
    Key { pk: format!("{IDEMPOTENCY_PREFIX}{function}"), sk: sha256_hex(business_key.as_bytes()) }
}

/// Index partition of a function's idempotency claims still in progress (sparse: a claim leaves it when it
/// completes, and is deleted when released).
pub fn claims_in_progress(function: &str) -> String {
    format!("CLAIMS#{function}")
}

/// Index sort key of a claim in progress: its in-progress expiry in epoch milliseconds, zero-padded to sort.
pub fn claim_expiry(in_progress_until_ms: i64) -> String {
    format!("{:015}", in_progress_until_ms.max(0))
}

/// Lease over a scope (a resource key, or a function's tick).
pub fn lease(scope: &str) -> Key {
    Key { pk: format!("LEASE#{scope}"), sk: "LEASE".into() }
}

/// The last tick of a function in one account × region (all in one partition, listed by `autopilot targets`).
pub fn shard_status(function: &str, account: &str, region: &str) -> Key {
    Key { pk: "SHARDS".into(), sk: format!("{function}#{account}#{region}") }
}

/// Last known state of one resource.
pub fn resource_state(resource: &ResourceRef) -> Key {
    Key { pk: format!("RES#{}", resource.key()), sk: "STATE".into() }
}

/// Where a work item belongs: the hub's own account and region ([`WorkScope::Home`], the keys a deployment
/// without `targets` has always used), or another account × region worked as a shard. Ids such as an imported
/// image's name or a software set's id are only unique within an account and region, so a shard's items carry
/// its place in their keys; its open items have an index partition of their own, so a shard lists only its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WorkScope {
    #[default]
    Home,
    /// `<account>#<region>`.
    Shard(String),
}

impl WorkScope {
    /// The scope of `place` for a hub in `home`: the home place keeps the unscoped keys.
    pub fn of(place: &crate::resource::Place, home: &crate::resource::Place) -> Self {
        if place == home { Self::Home } else { Self::Shard(format!("{}#{}", place.account, place.region)) }
    }

    /// A business key as this scope claims it: unchanged at home, `<account>#<region>#<key>` in a shard (the
    /// same rollout id or announcement in two accounts is two business events).
    pub fn business_key(&self, key: &str) -> String {
        match self {
            Self::Home => key.to_owned(),
            Self::Shard(place) => format!("{place}#{key}"),
        }
    }

    /// `kind` as it starts this scope's keys: `EXPORT` at home, `EXPORT@<account>#<region>` in a shard.
    fn kind(&self, kind: &str) -> String {
        match self {
            Self::Home => kind.to_owned(),
            Self::Shard(place) => format!("{kind}@{place}"),
        }
    }
}

/// A durable work item (export task, imported image, rollout): `<kind>#<id>`, e.g. `EXPORT#<task id>`; in a
/// shard `<kind>@<account>#<region>#<id>`.
pub fn work_item(scope: &WorkScope, kind: &str, id: &str) -> Key {
    Key { pk: format!("{}#{id}", scope.kind(kind)), sk: "ITEM".into() }
}

/// Index partition of the open work items of a kind (`OPEN#EXPORT`, in a shard
/// `OPEN#EXPORT@<account>#<region>`); the index sort key is the item id. Only open items carry it, so listing
/// what is in flight reads nothing else.
pub fn open_work_items(scope: &WorkScope, kind: &str) -> String {
    format!("OPEN#{}", scope.kind(kind))
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Audit partition of a UTC day.
pub fn audit_day(day: NaiveDate) -> String {
    format!("AUDIT#{day}")
}

/// An audit record: by day (table) and by resource (GSI1), both sorted by time. The outcome is part of the
/// record's identity (`stage`: a sortable word such as `2applied`), so a failed attempt and the redelivery that
/// applied it at the same instant are both kept, in the order their stages happen.
pub fn audit(at: DateTime<Utc>, resource_key: &str, action: &str, stage: &str, event_id: &str) -> (Key, Key) {
    let ts = timestamp(at);
    let by_day = Key { pk: audit_day(at.date_naive()), sk: format!("{ts}#{resource_key}#{action}#{stage}#{event_id}") };
    let by_resource = Key { pk: audit_resource(resource_key), sk: format!("{ts}#{action}#{stage}#{event_id}") };
    (by_day, by_resource)
}

/// Audit index partition of a resource.
pub fn audit_resource(resource_key: &str) -> String {
    format!("AUDITRES#{resource_key}")
}

/// Partition of the cached tags of one resource kind (`TAGS#fleet`): a tick loads a kind's entries with one
/// paginated Query.
pub fn tag_cache(kind: ResourceKind) -> String {
    format!("TAGS#{}", kind.as_str())
}

/// A resource's cached tags: `<resource key>#READ` in its kind's partition.
pub fn cached_tags(resource: &ResourceRef) -> Key {
    Key { pk: tag_cache(resource.kind()), sk: format!("{}#{TAGS_READ}", resource.key()) }
}

/// When a resource's tags last changed (a tag-change event): `<resource key>#CHANGED`, beside its entry.
pub fn tags_changed(resource: &ResourceRef) -> Key {
    Key { pk: tag_cache(resource.kind()), sk: format!("{}#{TAGS_CHANGED}", resource.key()) }
}

/// The sort-key suffixes of the two tag-cache items.
pub const TAGS_READ: &str = "READ";
pub const TAGS_CHANGED: &str = "CHANGED";

/// Config document partition and version sort keys (`v000001`, …; zero-padded so they sort).
pub const CONFIG_PK: &str = "CONFIG";

pub fn config_version(version: u32) -> Key {
    Key { pk: CONFIG_PK.into(), sk: format!("v{version:06}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn key_formats_are_stable() {
        let Ok(fleet) = ResourceRef::new("123456789012", "us-east-1", ResourceKind::Fleet, "sales") else { return };
        assert_eq!(resource_state(&fleet).pk, "RES#appstream#123456789012#us-east-1#fleet#sales");
        assert_eq!(idempotency("pool-scaler", "k").pk, "IDEMP#pool-scaler");
        assert_eq!(idempotency("pool-scaler", "k").sk.len(), 64);
        assert_eq!(config_version(7).sk, "v000007");
        assert!(config_version(10).sk > config_version(9).sk);
        let at = Utc.with_ymd_and_hms(2026, 11, 21, 6, 0, 0).single().unwrap_or_default();
        let (day, by_resource) = audit(at, &fleet.key(), "UpdateFleet", "2applied", "evt-1");
        assert_eq!(day.pk, "AUDIT#2026-11-21");
        assert_eq!(
            day.sk,
            "2026-11-21T06:00:00.000Z#appstream#123456789012#us-east-1#fleet#sales#UpdateFleet#2applied#evt-1"
        );
        assert_eq!(by_resource.pk, "AUDITRES#appstream#123456789012#us-east-1#fleet#sales");
        assert_eq!(cached_tags(&fleet).pk, "TAGS#fleet");
        assert_eq!(cached_tags(&fleet).sk, "appstream#123456789012#us-east-1#fleet#sales#READ");
        assert_eq!(tags_changed(&fleet).sk, "appstream#123456789012#us-east-1#fleet#sales#CHANGED");
        assert_eq!(work_item(&WorkScope::Home, "IMPORT", "golden").pk, "IMPORT#golden");
        assert_eq!(open_work_items(&WorkScope::Home, "IMPORT"), "OPEN#IMPORT");
        let home = crate::resource::Place { account: "111111111111".into(), region: "us-east-1".into() };
        let spoke = crate::resource::Place { account: "222222222222".into(), region: "eu-west-1".into() };
        assert_eq!(WorkScope::of(&home, &home), WorkScope::Home);
        let shard = WorkScope::of(&spoke, &home);
        assert_eq!(work_item(&shard, "IMPORT", "golden").pk, "IMPORT@222222222222#eu-west-1#golden");
        assert_eq!(open_work_items(&shard, "IMPORT"), "OPEN#IMPORT@222222222222#eu-west-1");
    }
}

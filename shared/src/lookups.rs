//! Look-ups several functions need: one paginated pass over pools, fleets or image builders (each page counted
//! in `pages`), and per-resource tags (the services' Describe/List calls do not return them), read through the
//! ledger's tag cache ([`cached_tags`]) by every function that reads them each tick.

use crate::clients::AwsClients;
use crate::error::ObserveError;
use crate::ledger::Ledger;
use crate::ledger::tags::TagCacheEntry;
use crate::resource::{ResourceKind, ResourceRef};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

/// The largest page the AppStream Describe calls serve.
const APPSTREAM_PAGE: i32 = 25;

/// Every WorkSpaces pool, or only `pool_id`: one paginated `DescribeWorkspacesPools` pass.
pub async fn workspaces_pools(
    aws: &AwsClients,
    pool_id: Option<&str>,
    pages: &AtomicU32,
) -> Result<Vec<aws_sdk_workspaces::types::WorkspacesPool>, ObserveError> {
    let (mut pools, mut token) = (Vec::new(), None);
    loop {
        pages.fetch_add(1, Ordering::Relaxed);
        let page = aws
            .workspaces
            .describe_workspaces_pools()
            .set_pool_ids(pool_id.map(|id| vec![id.to_owned()]))
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| ObserveError::sdk("WorkSpaces Pools", &e))?;
        pools.extend(page.workspaces_pools().iter().cloned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(pools);
        }
    }
}

/// Every AppStream fleet, or only `name`: one paginated `DescribeFleets` pass.
pub async fn fleets(
    aws: &AwsClients,
    name: Option<&str>,
    pages: &AtomicU32,
) -> Result<Vec<aws_sdk_appstream::types::Fleet>, ObserveError> {
    let (mut fleets, mut token) = (Vec::new(), None);
    loop {
        pages.fetch_add(1, Ordering::Relaxed);
        let page = aws
            .appstream
            .describe_fleets()
            .set_names(name.map(|n| vec![n.to_owned()]))
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| ObserveError::sdk("AppStream fleets", &e))?;
        fleets.extend(page.fleets().iter().cloned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(fleets);
        }
    }
}

/// Every image builder, or only `name`: one paginated `DescribeImageBuilders` pass (25 per page).
pub async fn image_builders(
    aws: &AwsClients,
    name: Option<&str>,
    pages: &AtomicU32,
) -> Result<Vec<aws_sdk_appstream::types::ImageBuilder>, ObserveError> {
    let (mut builders, mut token) = (Vec::new(), None);
    loop {
        pages.fetch_add(1, Ordering::Relaxed);
        let page = aws
            .appstream
            .describe_image_builders()
            .set_names(name.map(|n| vec![n.to_owned()]))
            .max_results(APPSTREAM_PAGE)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| ObserveError::sdk("image builders", &e))?;
        builders.extend(page.image_builders().iter().cloned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(builders);
        }
    }
}

/// Parallel per-resource look-ups at most, in every function.
pub const CONCURRENCY: usize = 8;

/// Up to this many resources of a [`Coverage::Selected`] look-up, their cache entries are read one by one; more,
/// and the kind's whole partition is read with one paginated Query.
const READ_ONE_BY_ONE: usize = CONCURRENCY;

/// How much of a kind a tag look-up wants, which decides how its cache entries are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// Every resource of the kind the function listed (a tick): the kind's partition holds about those and no
    /// more, so it is read with one paginated Query however few they are.
    Kind,
    /// Some of them (an event's fleet, one directory's pools): the partition may hold thousands, so up to
    /// [`READ_ONE_BY_ONE`] are read one Query each, more with the partition's.
    Selected,
}

/// A resource whose tags are wanted: its identity (the cache key), what its service's tag call takes (the ARN
/// of an AppStream or Thin Client resource, the id of a WorkSpaces one), and what the caller carries along.
#[derive(Debug, Clone)]
pub struct TagLookup<T> {
    pub resource: ResourceRef,
    pub target: String,
    pub item: T,
}

/// A resource with its tags: its identity, what the caller carried along, its tags.
pub type Tagged<T> = (ResourceRef, T, BTreeMap<String, String>);

/// The tags of every one of `wanted` (of `kind`; how much of it: `coverage`), in their order, with the tag calls
/// made counted in `calls`: [`cached_tags_streamed`], collected. A failed tag call fails the look-up (after
/// caching what was read before it).
pub async fn cached_tags<T>(
    aws: &AwsClients,
    ledger: &Ledger,
    now: DateTime<Utc>,
    kind: ResourceKind,
    wanted: Vec<TagLookup<T>>,
    coverage: Coverage,
    calls: &AtomicU32,
) -> Result<Vec<Tagged<T>>, ObserveError> {
    let count = wanted.len();
    let indexed = wanted
        .into_iter()
        .enumerate()
        .map(|(index, w)| TagLookup { resource: w.resource, target: w.target, item: (index, w.item) })
        .collect();
    let mut batches = std::pin::pin!(cached_tags_streamed(aws, ledger, now, kind, indexed, coverage, calls));
    let mut tagged = Vec::with_capacity(count);
    while let Some(batch) = batches.next().await {
        tagged.extend(batch?);
    }
    tagged.sort_by_key(|(_, (index, _), _)| *index);
    Ok(tagged.into_iter().map(|(resource, (_, item), tags)| (resource, item, tags)).collect())
}

/// The tags of every one of `wanted` (of `kind`; how much of it: `coverage`) as they become known, so a caller can act
/// on some resources while the others' tags are still being read; the tag calls made are counted in `calls`. First one
/// batch of every resource whose cached tags are fresh ([`crate::ledger::tags`]: tag-change events mark what changed,
/// and entries are read again after at most a day), in `wanted`'s order; then the rest, read with the service's
/// per-resource tag call (bounded by [`CONCURRENCY`]), in batches as the reads complete. The tags read are cached
/// [`CACHE_WRITE`] at a time (and the rest at the end). Nothing is acted on without its tags: a cache that cannot be
/// read means reading every tag; a cache that cannot be written is logged and the tags just read are used. A failed tag
/// call ends the stream with its error, after caching what was read before it (a throttled tick leaves less for the
/// next); the reads still in flight are dropped.
pub fn cached_tags_streamed<'a, T: 'a>(
    aws: &'a AwsClients,
    ledger: &'a Ledger,
    now: DateTime<Utc>,
    kind: ResourceKind,
    wanted: Vec<TagLookup<T>>,
    coverage: Coverage,
    calls: &'a AtomicU32,
) -> impl Stream<Item = Result<Vec<Tagged<T>>, ObserveError>> + 'a {
    futures::stream::once(async move {
        let cache = read_cache(ledger, kind, &wanted, coverage).await;
        let (mut fresh, mut due) = (Vec::new(), Vec::new());
        for lookup in wanted {
            match cache.get(&lookup.resource.key()).and_then(|entry| entry.fresh(&lookup.resource, now)).cloned() {
                Some(tags) => fresh.push((lookup.resource, lookup.item, tags)),
                None => due.push(lookup),
            }
        }
        metrics::counter!("tags_from_cache").increment(fresh.len() as u64);
        metrics::counter!("tags_read").increment(due.len() as u64);
        let reads = futures::stream::iter(due)
            .map(move |lookup| {
                calls.fetch_add(1, Ordering::Relaxed);
                async move {
                    let what = format!("{} tags", kind.as_str());
                    read_tags(aws, kind, &lookup.target, &what).await.map(|tags| (lookup, tags))
                }
            })
            .buffer_unordered(CONCURRENCY)
            .ready_chunks(CONCURRENCY);
        let fresh = Some(fresh).filter(|fresh| !fresh.is_empty()).map(Ok);
        let reading = Reading { reads: Some(Box::pin(reads)), unsaved: Vec::new() };
        let read = futures::stream::unfold(reading, move |reading| reading.next_batch(ledger, kind, now));
        futures::stream::iter(fresh).chain(read)
    })
    .flatten()
}

/// The tag reads of [`cached_tags_streamed`] under way, and the tags read but not cached yet.
struct Reading<S> {
    /// Each item: the reads completed since the last (at most [`CONCURRENCY`]); `None` once one failed.
    reads: Option<std::pin::Pin<Box<S>>>,
    unsaved: Vec<(ResourceRef, BTreeMap<String, String>)>,
}

impl<S, T> Reading<S>
where
    S: Stream<Item = Vec<Result<(TagLookup<T>, BTreeMap<String, String>), ObserveError>>>,
{
    /// The next batch of resources read (caching whole batches of them), or the first failure (after caching
    /// everything read); `None` when done.
    async fn next_batch(
        mut self,
        ledger: &Ledger,
        kind: ResourceKind,
        now: DateTime<Utc>,
    ) -> Option<(Result<Vec<Tagged<T>>, ObserveError>, Self)> {
        let Some(chunk) = self.reads.as_mut()?.next().await else {
            cache_tags(ledger, kind, now, &mut self.unsaved, 1).await;
            return None;
        };
        let mut batch = Vec::with_capacity(chunk.len());
        let mut failure = None;
        for result in chunk {
            match result {
                Ok((lookup, tags)) => {
                    self.unsaved.push((lookup.resource.clone(), tags.clone()));
                    batch.push((lookup.resource, lookup.item, tags));
                }
                Err(error) => failure = failure.or(Some(error)),
            }
        }
        if let Some(error) = failure {
            self.reads = None; // the reads in flight are dropped
            cache_tags(ledger, kind, now, &mut self.unsaved, 1).await;
            return Some((Err(error), self));
        }
        cache_tags(ledger, kind, now, &mut self.unsaved, CACHE_WRITE).await;
        Some((Ok(batch), self))
    }
}

/// Tags read are cached this many at a time (one `BatchWriteItem`) while the rest are read.
pub const CACHE_WRITE: usize = 25;

/// Caches the whole multiples of `at_least` among `unsaved` (a failure is logged: read again next time), and
/// keeps the rest.
async fn cache_tags(
    ledger: &Ledger,
    kind: ResourceKind,
    now: DateTime<Utc>,
    unsaved: &mut Vec<(ResourceRef, BTreeMap<String, String>)>,
    at_least: usize,
) {
    let ready = unsaved.len() / at_least * at_least;
    if ready == 0 {
        return;
    }
    let rest = unsaved.split_off(ready);
    if let Err(error) = ledger.put_cached_tags(unsaved, now).await {
        tracing::warn!(%error, kind = kind.as_str(), "tags read but not cached: read again next time");
    }
    *unsaved = rest;
}

/// The cache entries of `wanted`, by resource key ([`Coverage`]: one Query for the kind, or one per resource);
/// none when the cache cannot be read.
async fn read_cache<T>(
    ledger: &Ledger,
    kind: ResourceKind,
    wanted: &[TagLookup<T>],
    coverage: Coverage,
) -> BTreeMap<String, TagCacheEntry> {
    if wanted.is_empty() {
        return BTreeMap::new();
    }
    let result = if coverage == Coverage::Selected && wanted.len() <= READ_ONE_BY_ONE {
        futures::stream::iter(wanted)
            .map(|w| async move { ledger.tag_cache_of(&w.resource).await.map(|entry| (w.resource.key(), entry)) })
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<BTreeMap<_, _>, _>>()
    } else {
        ledger.tag_cache(kind).await
    };
    result.unwrap_or_else(|error| {
        tracing::warn!(%error, kind = kind.as_str(), "tag cache unreadable: every tag is read from its service");
        BTreeMap::new()
    })
}

/// One resource's tags from its service: `DescribeTags` (WorkSpaces, by id) or `ListTagsForResource` (AppStream
/// and Thin Client, by ARN).
async fn read_tags(
    aws: &AwsClients,
    kind: ResourceKind,
    target: &str,
    what: &str,
) -> Result<BTreeMap<String, String>, ObserveError> {
    match kind.service() {
        "workspaces" => workspaces_tags(aws, target, what).await,
        "appstream" => appstream_tags(aws, target, what).await,
        _ => thinclient_tags(aws, target, what).await,
    }
}

/// A tag-change call ([`crate::events::ApiCall::TagsChanged`]) naming `resource`: when it is of one of the
/// `cached` kinds, its cached tags are marked changed as of the call's time (never later than `now`; the next
/// look-up reads them again). The status the handler answers: `tags-changed`, or `ignored` for a kind this
/// function does not cache. Idempotent, unfenced (a cache write): a redelivery marks the same time again.
pub async fn tags_changed(
    ledger: &Ledger,
    call: &crate::events::CloudTrailCall,
    resource: Option<&ResourceRef>,
    now: DateTime<Utc>,
    cached: &[ResourceKind],
) -> Result<crate::report::Status, crate::ledger::LedgerError> {
    use crate::report::Status;
    let Some(resource) = resource.filter(|r| cached.contains(&r.kind())) else { return Ok(Status::Ignored) };
    ledger.mark_tags_changed(resource, call.event_time.min(now)).await?;
    tracing::info!(%resource, "tags changed: cached tags marked stale");
    Ok(Status::TagsChanged)
}

/// The tags of an AppStream resource (fleet, image builder, image, stack) by ARN; `what` names it in errors.
pub async fn appstream_tags(aws: &AwsClients, arn: &str, what: &str) -> Result<BTreeMap<String, String>, ObserveError> {
    let output = aws
        .appstream
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| ObserveError::sdk(what, &e))?;
    Ok(output.tags().cloned().unwrap_or_default().into_iter().collect())
}

/// The tags of a Thin Client resource (environment, device, software set) by ARN.
pub async fn thinclient_tags(
    aws: &AwsClients,
    arn: &str,
    what: &str,
) -> Result<BTreeMap<String, String>, ObserveError> {
    let output = aws
        .thinclient
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| ObserveError::sdk(what, &e))?;
    Ok(output.tags().cloned().unwrap_or_default().into_iter().collect())
}

/// The tags of a WorkSpaces resource (WorkSpace, pool, directory) by id.
pub async fn workspaces_tags(aws: &AwsClients, id: &str, what: &str) -> Result<BTreeMap<String, String>, ObserveError> {
    let output =
        aws.workspaces.describe_tags().resource_id(id).send().await.map_err(|e| ObserveError::sdk(what, &e))?;
    Ok(output.tag_list().iter().map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned())).collect())
}

//! The observe step: one paginated `DescribeImageBuilders` pass ([`list`]) and the tags of each builder
//! ([`tagged`]: the Describe does not return them: read through the ledger's tag cache, so a tick asks only
//! for what changed or is due). The tags come as a stream, so a reconcile decides and acts on a builder as soon
//! as its tags are known instead of after every tag has been read.

use crate::decide::Observed;
use autopilot_shared::clients::AwsClients;
use autopilot_shared::error::ObserveError;
use autopilot_shared::ledger::Ledger;
use autopilot_shared::lookups::{self, Coverage, TagLookup, cached_tags_streamed};
use autopilot_shared::resource::{Place, ResourceKind};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

/// The kinds whose tags the builder-scheduler caches (its tag-change rule names their service).
pub const CACHED_TAGS: [ResourceKind; 1] = [ResourceKind::ImageBuilder];

/// Every builder observed, and how many AWS calls it took.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub builders: Vec<Observed>,
    pub api_calls: u32,
}

/// The whole observe step at once: [`list`], then [`tagged`], collected and sorted by resource.
pub async fn observe(
    aws: &AwsClients,
    ledger: &Ledger,
    now: DateTime<Utc>,
    region: &str,
) -> Result<Observation, ObserveError> {
    let calls = AtomicU32::new(0);
    let listed = list(aws, region, &calls).await?;
    let mut builders = Vec::with_capacity(listed.len());
    let mut batches = std::pin::pin!(tagged(aws, ledger, now, listed, &calls));
    while let Some(batch) = batches.next().await {
        builders.extend(batch?);
    }
    builders.sort_by(|a, b| a.resource.cmp(&b.resource));
    Ok(Observation { builders, api_calls: calls.load(Ordering::Relaxed) })
}

/// The listing half of the observe step: every image builder (one paginated `DescribeImageBuilders` pass), each
/// an [`Observed`] with no tags yet. Calls counted in `calls`.
pub async fn list(aws: &AwsClients, region: &str, calls: &AtomicU32) -> Result<Vec<TagLookup<Observed>>, ObserveError> {
    let builders = lookups::image_builders(aws, None, calls).await?;
    Ok(builders
        .into_iter()
        .filter_map(|builder| {
            let arn = builder.arn().unwrap_or_default().to_owned();
            let name = builder.name().unwrap_or_default();
            match Place::of_arn(&arn, region).resource(ResourceKind::ImageBuilder, name) {
                Ok(resource) => {
                    let observed = Observed {
                        resource: resource.clone(),
                        name: name.to_owned(),
                        state: builder.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                        tags: BTreeMap::new(),
                        errors: autopilot_shared::error::appstream_resource_errors(builder.image_builder_errors()),
                    };
                    Some(TagLookup { resource, target: arn, item: observed })
                }
                Err(_) => {
                    tracing::warn!(%name, "image builder with an unusable name or ARN: not touched");
                    None
                }
            }
        })
        .collect())
}

/// The tagging half of the observe step: every listed builder with its tags, in batches as they become known
/// (`lookups::cached_tags_streamed`: first those cached, then the ones read), in no particular order. Tag
/// calls counted in `calls`; a failed one ends the stream with its error.
pub fn tagged<'a>(
    aws: &'a AwsClients,
    ledger: &'a Ledger,
    now: DateTime<Utc>,
    listed: Vec<TagLookup<Observed>>,
    calls: &'a AtomicU32,
) -> impl Stream<Item = Result<Vec<Observed>, ObserveError>> + 'a {
    cached_tags_streamed(aws, ledger, now, ResourceKind::ImageBuilder, listed, Coverage::Kind, calls).map(|batch| {
        batch.map(|batch| batch.into_iter().map(|(_, observed, tags)| Observed { tags, ..observed }).collect())
    })
}

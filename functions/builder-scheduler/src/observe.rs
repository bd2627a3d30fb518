//! The observe step: one paginated `DescribeImageBuilders` pass and the tags of each builder (the Describe
//! does not return them: read through the ledger's tag cache, so a tick asks only for what changed or is due).

use crate::decide::Observed;
use autopilot_shared::clients::AwsClients;
use autopilot_shared::error::ObserveError;
use autopilot_shared::ledger::Ledger;
use autopilot_shared::lookups::{self, TagLookup, cached_tags};
use autopilot_shared::resource::{ResourceKind, ResourceRef, account_region};
use chrono::{DateTime, Utc};
use std::sync::atomic::AtomicU32;

/// The kinds whose tags the builder-scheduler caches (its tag-change rule names their service).
pub const CACHED_TAGS: [ResourceKind; 1] = [ResourceKind::ImageBuilder];

/// Every builder observed, and how many AWS calls it took.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub builders: Vec<Observed>,
    pub api_calls: u32,
}

pub async fn observe(
    aws: &AwsClients,
    ledger: &Ledger,
    now: DateTime<Utc>,
    region: &str,
) -> Result<Observation, ObserveError> {
    let calls = AtomicU32::new(0);
    let builders = lookups::image_builders(aws, None, &calls).await?;
    let wanted: Vec<_> = builders
        .into_iter()
        .filter_map(|builder| {
            let arn = builder.arn().unwrap_or_default().to_owned();
            let (account, builder_region) = account_region(&arn, region);
            let name = builder.name().unwrap_or_default();
            match ResourceRef::new(account, builder_region, ResourceKind::ImageBuilder, name) {
                Ok(resource) => Some(TagLookup { resource, target: arn, item: builder }),
                Err(_) => {
                    tracing::warn!(%name, "image builder with an unusable name or ARN: not touched");
                    None
                }
            }
        })
        .collect();
    let tagged = cached_tags(aws, ledger, now, ResourceKind::ImageBuilder, wanted, &calls).await?;
    let mut observed = Vec::with_capacity(tagged.len());
    for (resource, builder, tags) in tagged {
        let name = builder.name().unwrap_or_default().to_owned();
        observed.push(Observed {
            resource,
            name,
            state: builder.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            tags,
            errors: autopilot_shared::error::appstream_resource_errors(builder.image_builder_errors()),
        });
    }
    observed.sort_by(|a, b| a.resource.cmp(&b.resource));
    Ok(Observation { builders: observed, api_calls: calls.into_inner() })
}

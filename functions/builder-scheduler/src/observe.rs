//! The observe step: one paginated `DescribeImageBuilders` pass and the tags of each builder (the Describe
//! does not return tags), looked up with bounded concurrency.

use crate::decide::Observed;
use autopilot_shared::clients::AwsClients;
use autopilot_shared::error::ObserveError;
use autopilot_shared::lookups::{self, CONCURRENCY, appstream_tags};
use autopilot_shared::resource::{ResourceKind, ResourceRef, account_region};
use futures::{StreamExt, TryStreamExt};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

/// Every builder observed, and how many AWS calls it took.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub builders: Vec<Observed>,
    pub api_calls: u32,
}

pub async fn observe(aws: &AwsClients, region: &str) -> Result<Observation, ObserveError> {
    let calls = AtomicU32::new(0);
    let builders = lookups::image_builders(aws, None, &calls).await?;
    let tagged: Vec<(aws_sdk_appstream::types::ImageBuilder, BTreeMap<String, String>)> =
        futures::stream::iter(builders)
            .map(|builder| {
                calls.fetch_add(1, Ordering::Relaxed);
                async move {
                    let tags = appstream_tags(aws, builder.arn().unwrap_or_default(), "image builder tags").await?;
                    Ok::<_, ObserveError>((builder, tags))
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
    let mut observed = Vec::with_capacity(tagged.len());
    for (builder, tags) in tagged {
        let (account, builder_region) = account_region(builder.arn().unwrap_or_default(), region);
        let name = builder.name().unwrap_or_default().to_owned();
        let Ok(resource) = ResourceRef::new(account, builder_region, ResourceKind::ImageBuilder, &name) else {
            tracing::warn!(%name, "image builder with an unusable name or ARN: not touched");
            continue;
        };
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

//! Look-ups several functions need: one paginated pass over pools, fleets or image builders (each page counted
//! in `pages`), and per-resource tags (the services' Describe/List calls do not return them).

use crate::clients::AwsClients;
use crate::error::ObserveError;
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

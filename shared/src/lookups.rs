//! Per-resource look-ups several functions need (the services' Describe/List calls do not return tags).

use crate::clients::AwsClients;
use crate::error::ObserveError;
use std::collections::BTreeMap;

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

//! `AWS API Call via CloudTrail`: the calls the functions react to, typed per call.

use super::{EventError, bounded, join};
use crate::resource::{Place, ResourceKind, ResourceRef};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// `AWS API Call via CloudTrail` for the calls we react to. The request and response elements are typed
/// per call; other fields of the CloudTrail record are kept for the audit but not interpreted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudTrailCall {
    pub event_source: String,
    pub event_name: String,
    pub event_time: DateTime<Utc>,
    #[serde(rename = "eventID")]
    pub event_id: String,
    pub aws_region: String,
    #[serde(default)]
    pub error_code: Option<String>,
    /// The account the record was delivered to: the account of the resources the call acted on.
    #[serde(default, rename = "recipientAccountId", skip_serializing_if = "Option::is_none")]
    pub recipient_account_id: Option<String>,
    /// Who made the call: an object (CloudTrail's `userIdentity`), never an array or a scalar.
    #[serde(default)]
    pub user_identity: serde_json::Map<String, serde_json::Value>,
    /// The call's parameters: an object, or `null` for a call without any.
    #[serde(default)]
    pub request_parameters: Option<serde_json::Map<String, serde_json::Value>>,
    /// The call's response: an object, or `null`.
    #[serde(default)]
    pub response_elements: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The typed meaning of a CloudTrail call.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiCall {
    CreateExportImageTask {
        image_name: String,
        ami_name: String,
        task_id: Option<String>,
    },
    CreateImportedImage {
        name: String,
        source_ami_id: String,
    },
    StartImageBuilder {
        name: String,
    },
    StopImageBuilder {
        name: String,
    },
    CreateImageBuilder {
        name: String,
    },
    /// An image created from an image builder (Image Assistant): the builder is about to snapshot.
    CreateImage {
        image_builder_name: String,
        image_name: Option<String>,
    },
    UpdateFleet {
        name: String,
        desired_instances: Option<i64>,
        desired_sessions: Option<i64>,
    },
    StartFleet {
        name: String,
    },
    StopFleet {
        name: String,
    },
    UpdateWorkspacesPool {
        pool_id: String,
        desired_user_sessions: Option<i64>,
    },
    StartWorkspacesPool {
        pool_id: String,
    },
    StopWorkspacesPool {
        pool_id: String,
    },
    UpdateEnvironment {
        id: String,
        desired_software_set_id: Option<String>,
    },
    /// A WorkSpace put into (or out of) admin maintenance.
    ModifyWorkspaceState {
        workspace_id: String,
        workspace_state: String,
    },
    /// Tags added to or removed from a resource: `TagResource` / `UntagResource` (AppStream and Thin Client, by
    /// ARN) or `CreateTags` / `DeleteTags` (WorkSpaces, by id). `named` is the ARN or id as the request gave it;
    /// `resource` what it names, when that is a kind EUC Autopilot knows (not a stack, say).
    TagsChanged {
        named: String,
        resource: Option<ResourceRef>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NameParams {
    name: String,
}

/// `CreateImage` from an image builder. AWS documents the event but not its request fields; the builder is
/// read from `imageBuilderName`, else from `name` (beside `imageBuilderName`, `name` is the image's).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateImageParams {
    #[serde(default)]
    image_builder_name: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    image_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PoolParams {
    pool_id: String,
    #[serde(default)]
    capacity: Option<PoolCapacity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PoolCapacity {
    desired_user_sessions: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FleetParams {
    name: String,
    #[serde(default)]
    compute_capacity: Option<FleetCapacity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FleetCapacity {
    desired_instances: Option<i64>,
    desired_sessions: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportParams {
    image_name: String,
    ami_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportResponse {
    export_image_task: ExportTaskElement,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportTaskElement {
    task_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImportParams {
    name: String,
    source_ami_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WorkspaceStateParams {
    workspace_id: String,
    workspace_state: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArnParams {
    resource_arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceIdParams {
    resource_id: String,
}

/// The resource an AppStream or Thin Client ARN names (`arn:<partition>:<service>:<region>:<account>:<type>/<id>`).
fn resource_of_arn(arn: &str) -> Option<ResourceRef> {
    let [_, _, service, region, account, resource] = arn.splitn(6, ':').collect::<Vec<_>>()[..] else {
        return None;
    };
    let (kind, id) = resource.split_once('/')?;
    let kind = match (service, kind) {
        ("appstream", "fleet") => ResourceKind::Fleet,
        ("appstream", "image-builder") => ResourceKind::ImageBuilder,
        ("appstream", "image") => ResourceKind::Image,
        ("thinclient", "environment") => ResourceKind::Environment,
        ("thinclient", "device") => ResourceKind::Device,
        ("thinclient", "softwareset") => ResourceKind::SoftwareSet,
        _ => return None,
    };
    ResourceRef::new(account, region, kind, id).ok()
}

/// The WorkSpaces resource an id names, by its prefix (`wspool-`, `ws-`, `d-`).
fn workspaces_resource(id: &str, account: &str, region: &str) -> Option<ResourceRef> {
    let kind = if id.starts_with("wspool-") {
        ResourceKind::WorkspacesPool
    } else if id.starts_with("ws-") {
        ResourceKind::Workspace
    } else if id.starts_with("d-") {
        ResourceKind::Directory
    } else {
        return None;
    };
    ResourceRef::new(account, region, kind, id).ok()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvironmentParams {
    id: String,
    desired_software_set_id: Option<String>,
}

fn elements<T: DeserializeOwned>(
    value: Option<&serde_json::Map<String, serde_json::Value>>,
    path: &str,
) -> Result<T, EventError> {
    let Some(value) = value else {
        return Err(EventError { path: path.into(), reason: "missing".into() });
    };
    super::strict::deserialize(&serde_json::Value::Object(value.clone()))
        .map_err(|e| EventError { path: join(path, &e.path().to_string()), reason: e.into_inner().to_string() })
}

impl CloudTrailCall {
    /// The account the call was made in: the record's `recipientAccountId` (the resources' account), else the
    /// caller's (`userIdentity.accountId`, absent for a call by an AWS service), else `000000000000`.
    pub fn account(&self) -> &str {
        let caller = || self.user_identity.get("accountId").and_then(serde_json::Value::as_str);
        self.recipient_account_id
            .as_deref()
            .or_else(caller)
            .filter(|account| !account.is_empty())
            .unwrap_or(Place::UNKNOWN_ACCOUNT)
    }

    /// The account and region the call was made in.
    pub fn place(&self) -> Place {
        Place { account: self.account().to_owned(), region: self.aws_region.clone() }
    }

    /// Interprets the call. A call that failed (`errorCode`) or that we do not handle is an error naming it.
    pub fn api_call(&self) -> Result<ApiCall, EventError> {
        if let Some(code) = &self.error_code {
            return Err(EventError {
                path: "detail.errorCode".into(),
                reason: format!("{} failed with {code}; nothing to react to", self.event_name),
            });
        }
        // Where the call was made must be readable, whether or not the recipient names it.
        let caller = self.user_identity.get("accountId").and_then(serde_json::Value::as_str);
        for (path, account) in [
            ("detail.recipientAccountId", self.recipient_account_id.as_deref()),
            ("detail.userIdentity.accountId", caller),
        ] {
            if let Some(account) = account.filter(|a| a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit())) {
                return Err(EventError {
                    path: path.into(),
                    reason: format!("{account:?} is not a 12-digit AWS account id"),
                });
            }
        }
        let request = self.request_parameters.as_ref();
        const REQ: &str = "detail.requestParameters";
        let call = match (self.event_source.as_str(), self.event_name.as_str()) {
            ("appstream.amazonaws.com", "CreateExportImageTask") => {
                let p: ExportParams = elements(request, REQ)?;
                let task_id = self
                    .response_elements
                    .as_ref()
                    .and_then(|r| {
                        super::strict::deserialize::<ExportResponse>(&serde_json::Value::Object(r.clone())).ok()
                    })
                    .map(|r| r.export_image_task.task_id);
                ApiCall::CreateExportImageTask { image_name: p.image_name, ami_name: p.ami_name, task_id }
            }
            ("appstream.amazonaws.com", "CreateImportedImage") => {
                let p: ImportParams = elements(request, REQ)?;
                ApiCall::CreateImportedImage { name: p.name, source_ami_id: p.source_ami_id }
            }
            ("appstream.amazonaws.com", "StartImageBuilder") => {
                ApiCall::StartImageBuilder { name: elements::<NameParams>(request, REQ)?.name }
            }
            ("appstream.amazonaws.com", "StopImageBuilder") => {
                ApiCall::StopImageBuilder { name: elements::<NameParams>(request, REQ)?.name }
            }
            ("appstream.amazonaws.com", "CreateImageBuilder") => {
                ApiCall::CreateImageBuilder { name: elements::<NameParams>(request, REQ)?.name }
            }
            ("appstream.amazonaws.com", "CreateImage") => {
                let p: CreateImageParams = elements(request, REQ)?;
                let (image_builder_name, image_name) = match (p.image_builder_name, p.name) {
                    (Some(builder), name) => (builder, p.image_name.or(name)),
                    (None, Some(builder)) => (builder, p.image_name),
                    (None, None) => {
                        return Err(EventError {
                            path: format!("{REQ}.imageBuilderName"),
                            reason: "missing (no imageBuilderName or name names the builder)".into(),
                        });
                    }
                };
                ApiCall::CreateImage { image_builder_name, image_name }
            }
            ("appstream.amazonaws.com", "StartFleet") => {
                ApiCall::StartFleet { name: elements::<NameParams>(request, REQ)?.name }
            }
            ("appstream.amazonaws.com", "StopFleet") => {
                ApiCall::StopFleet { name: elements::<NameParams>(request, REQ)?.name }
            }
            ("appstream.amazonaws.com", "UpdateFleet") => {
                let p: FleetParams = elements(request, REQ)?;
                let capacity = p.compute_capacity;
                ApiCall::UpdateFleet {
                    name: p.name,
                    desired_instances: capacity.as_ref().and_then(|c| c.desired_instances),
                    desired_sessions: capacity.as_ref().and_then(|c| c.desired_sessions),
                }
            }
            ("workspaces.amazonaws.com", "UpdateWorkspacesPool") => {
                let p: PoolParams = elements(request, REQ)?;
                ApiCall::UpdateWorkspacesPool {
                    pool_id: p.pool_id,
                    desired_user_sessions: p.capacity.and_then(|c| c.desired_user_sessions),
                }
            }
            ("workspaces.amazonaws.com", "StartWorkspacesPool") => {
                ApiCall::StartWorkspacesPool { pool_id: elements::<PoolParams>(request, REQ)?.pool_id }
            }
            ("workspaces.amazonaws.com", "StopWorkspacesPool") => {
                ApiCall::StopWorkspacesPool { pool_id: elements::<PoolParams>(request, REQ)?.pool_id }
            }
            ("workspaces.amazonaws.com", "ModifyWorkspaceState") => {
                let p: WorkspaceStateParams = elements(request, REQ)?;
                ApiCall::ModifyWorkspaceState { workspace_id: p.workspace_id, workspace_state: p.workspace_state }
            }
            ("thinclient.amazonaws.com", "UpdateEnvironment") => {
                let p: EnvironmentParams = elements(request, REQ)?;
                ApiCall::UpdateEnvironment { id: p.id, desired_software_set_id: p.desired_software_set_id }
            }
            ("appstream.amazonaws.com" | "thinclient.amazonaws.com", "TagResource" | "UntagResource") => {
                let named = elements::<ArnParams>(request, REQ)?.resource_arn;
                ApiCall::TagsChanged { resource: resource_of_arn(&named), named }
            }
            ("workspaces.amazonaws.com", "CreateTags" | "DeleteTags") => {
                let named = elements::<ResourceIdParams>(request, REQ)?.resource_id;
                ApiCall::TagsChanged { resource: workspaces_resource(&named, self.account(), &self.aws_region), named }
            }
            (source, name) => {
                return Err(EventError {
                    path: "detail.eventName".into(),
                    reason: format!("{name} from {source} is not a call EUC Autopilot handles"),
                });
            }
        };
        bounded(call.names().into_iter().chain([("detail.awsRegion", self.aws_region.as_str())]))?;
        Ok(call)
    }
}

impl ApiCall {
    /// The names and ids the call carries (each becomes part of a ledger key), with where each came from.
    fn names(&self) -> Vec<(&'static str, &str)> {
        const NAME: &str = "detail.requestParameters.name";
        match self {
            ApiCall::CreateExportImageTask { image_name, ami_name, task_id } => {
                let mut names = vec![
                    ("detail.requestParameters.imageName", image_name.as_str()),
                    ("detail.requestParameters.amiName", ami_name.as_str()),
                ];
                names.extend(task_id.as_deref().map(|id| ("detail.responseElements.exportImageTask.taskId", id)));
                names
            }
            ApiCall::CreateImportedImage { name, source_ami_id } => {
                vec![(NAME, name.as_str()), ("detail.requestParameters.sourceAmiId", source_ami_id.as_str())]
            }
            ApiCall::StartImageBuilder { name }
            | ApiCall::StopImageBuilder { name }
            | ApiCall::CreateImageBuilder { name }
            | ApiCall::StartFleet { name }
            | ApiCall::StopFleet { name }
            | ApiCall::UpdateFleet { name, .. } => vec![(NAME, name.as_str())],
            ApiCall::CreateImage { image_builder_name, image_name } => {
                let mut names = vec![("detail.requestParameters.imageBuilderName", image_builder_name.as_str())];
                names.extend(image_name.as_deref().map(|name| ("detail.requestParameters.imageName", name)));
                names
            }
            ApiCall::UpdateWorkspacesPool { pool_id, .. }
            | ApiCall::StartWorkspacesPool { pool_id }
            | ApiCall::StopWorkspacesPool { pool_id } => vec![("detail.requestParameters.poolId", pool_id.as_str())],
            ApiCall::UpdateEnvironment { id, desired_software_set_id } => {
                let mut names = vec![("detail.requestParameters.id", id.as_str())];
                names.extend(
                    desired_software_set_id
                        .as_deref()
                        .map(|set| ("detail.requestParameters.desiredSoftwareSetId", set)),
                );
                names
            }
            ApiCall::ModifyWorkspaceState { workspace_id, workspace_state } => vec![
                ("detail.requestParameters.workspaceId", workspace_id.as_str()),
                ("detail.requestParameters.workspaceState", workspace_state.as_str()),
            ],
            ApiCall::TagsChanged { named, .. } if named.starts_with("arn:") => {
                vec![("detail.requestParameters.resourceArn", named.as_str())]
            }
            ApiCall::TagsChanged { named, .. } => vec![("detail.requestParameters.resourceId", named.as_str())],
        }
    }
}

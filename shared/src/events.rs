//! Typed inputs (DESIGN §5) on top of `aws_lambda_events::eventbridge::EventBridgeEvent<T>`, parsed strictly:
//! the envelope's `source` and `detail-type` choose the detail type, and a detail that does not parse is
//! rejected with the path of the offending field (`detail.requestParameters.name: missing field`).
//!
//! Strictness differs by author. Our own `euc.autopilot` commands reject unknown fields (a typo must not be
//! silently ignored). AWS-authored details require the fields we use and tolerate fields AWS adds later,
//! because AWS extends its event shapes without notice and a new field must not stop automation.

use crate::resource::{ResourceKind, ResourceRef};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Our own event source, for commands in and outcome events out.
pub const AUTOPILOT_SOURCE: &str = "euc.autopilot";

/// One EventBridge rule of a function: source, detail type and (for CloudTrail) the API calls it matches.
/// Each function lists its rules once (`routing.rs`); `template.yaml` declares the same (a test checks), and
/// `autopilot simulate` routes injected events with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// The rule's logical name in `template.yaml`.
    pub name: &'static str,
    pub source: &'static str,
    pub detail_type: &'static str,
    /// `detail.eventName` values (CloudTrail rules only).
    pub event_names: &'static [&'static str],
    /// Further conditions on the event's `detail`.
    pub detail: &'static [DetailMatch],
}

/// A condition of a rule's pattern on one field of the event's `detail`: a dotted path (through a list, any
/// item may match, as EventBridge matches arrays) and what its value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetailMatch {
    pub path: &'static str,
    pub is: Matcher,
}

/// What a [`DetailMatch`]'s value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matcher {
    /// One of these strings.
    AnyOf(&'static [&'static str]),
    /// A string starting with this.
    Prefix(&'static str),
}

impl DetailMatch {
    fn holds(&self, detail: &serde_json::Value) -> bool {
        let mut values = vec![detail];
        for segment in self.path.split('.') {
            values = values
                .into_iter()
                .flat_map(|v| match v {
                    serde_json::Value::Array(items) => items.iter().filter_map(|i| i.get(segment)).collect::<Vec<_>>(),
                    other => other.get(segment).into_iter().collect(),
                })
                .collect();
        }
        let flattened = values.into_iter().flat_map(|v| match v {
            serde_json::Value::Array(items) => items.iter().collect::<Vec<_>>(),
            other => vec![other],
        });
        flattened.filter_map(serde_json::Value::as_str).any(|text| match self.is {
            Matcher::AnyOf(allowed) => allowed.contains(&text),
            Matcher::Prefix(prefix) => text.starts_with(prefix),
        })
    }
}

/// The detail-type of CloudTrail's management events on EventBridge.
pub const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";

impl Rule {
    /// Whether EventBridge would deliver `event` through this rule. CloudTrail rules take successful calls only
    /// (`"errorCode": [{"exists": false}]` in `template.yaml`): a call that failed changed nothing, and a
    /// person's failed attempt must not end in a dead-letter queue as bad input.
    pub fn matches(&self, event: &serde_json::Value) -> bool {
        let field = |name: &str| event.get(name).and_then(serde_json::Value::as_str).unwrap_or_default();
        let event_name = event
            .get("detail")
            .and_then(|d| d.get("eventName"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        self.source == field("source")
            && self.detail_type == field("detail-type")
            && (self.event_names.is_empty() || self.event_names.contains(&event_name))
            && self.detail.iter().all(|m| event.get("detail").is_some_and(|d| m.holds(d)))
            && (self.detail_type != CLOUDTRAIL_DETAIL_TYPE
                || event.get("detail").and_then(|d| d.get("errorCode")).is_none())
    }
}

/// The sample event at `path` (`events/…`), or `null` when it cannot be read: for tests of routing.
pub fn read_sample(path: &std::path::Path) -> serde_json::Value {
    std::fs::read(path).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default()
}

/// Checks a function's sample events (`events/<function>/`): every file parses as an input and, except the
/// schedule's `tick.json`, reaches the function through `rules`. Returns how many were checked, or what is
/// wrong. `invalid-*.json` files are events the function must reject (`InvalidInput`): they need not parse,
/// only reach the function (or be a tick), and are not counted. (The folder is the contract of the runtime test too: `tests/tests/runtime_api.rs`
/// delivers every file to the function's release binary and checks its outcome.)
pub fn check_samples(folder: &std::path::Path, rules: &[Rule]) -> Result<usize, String> {
    let entries = std::fs::read_dir(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    let mut checked = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let bytes = std::fs::read(entry.path()).map_err(|e| format!("{name}: {e}"))?;
        let event: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| format!("{name}: {e}"))?;
        if name.starts_with("invalid-") {
            let tick = event.get("detail-type").and_then(serde_json::Value::as_str) == Some("Scheduled Event");
            if !tick && !routes(rules, &event) {
                return Err(format!("{name} matches none of the function's rules"));
            }
            continue;
        }
        parse(event.clone()).map_err(|e| format!("{name}: {e}"))?;
        if name != "tick.json" && !routes(rules, &event) {
            return Err(format!("{name} matches none of the function's rules"));
        }
        checked += 1;
    }
    Ok(checked)
}

/// Whether any of `rules` delivers `event`.
pub fn routes(rules: &[Rule], event: &serde_json::Value) -> bool {
    rules.iter().any(|rule| rule.matches(event))
}

/// Why an event was rejected. Always `InvalidInput`: retrying the same bytes cannot help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    pub path: String,
    pub reason: String,
}

/// The most of a path or reason an error message quotes: a message is logged and returned to Lambda, and
/// parts of it come from the input (a 1 MB `detail-type` must not become a 1 MB message). Policy errors quote
/// the same way.
const MAX_QUOTED: usize = 256;

/// `text`, or its first [`MAX_QUOTED`] characters and how much was left out.
pub(crate) fn clipped(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_QUOTED) {
        None => text.into(),
        Some((cut, _)) => format!("{}… ({} more bytes)", &text[..cut], text.len() - cut).into(),
    }
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reason = clipped(&self.reason);
        if self.path.is_empty() {
            write!(f, "invalid event: {reason}")
        } else {
            write!(f, "invalid event: {}: {reason}", clipped(&self.path))
        }
    }
}

impl std::error::Error for EventError {}

impl crate::error::Classify for EventError {
    fn class(&self) -> crate::error::ErrorClass {
        crate::error::ErrorClass::InvalidInput
    }
}

/// Every input a function can receive.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Tick(EventBridgeEvent<ScheduledTick>),
    CloudTrail(EventBridgeEvent<CloudTrailCall>),
    AppStreamSession(EventBridgeEvent<AppStreamSessionNotification>),
    WorkSpacesAccess(EventBridgeEvent<WorkSpacesAccess>),
    Alarm(EventBridgeEvent<AlarmStateChange>),
    Command(CommandEvent),
}

/// One of our commands with the envelope it arrived in.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandEvent {
    pub envelope: EventBridgeEvent<serde_json::Value>,
    pub command: Command,
}

impl Input {
    /// The EventBridge event id: the correlation id of everything this event causes.
    pub fn id(&self) -> &str {
        let id = match self {
            Input::Tick(e) => &e.id,
            Input::CloudTrail(e) => &e.id,
            Input::AppStreamSession(e) => &e.id,
            Input::WorkSpacesAccess(e) => &e.id,
            Input::Alarm(e) => &e.id,
            Input::Command(e) => &e.envelope.id,
        };
        id.as_deref().unwrap_or_default()
    }

    /// The account and region the event comes from (`000000000000` and `fallback_region` when it does not say).
    pub fn origin(&self, fallback_region: &str) -> (String, String) {
        let (account, region) = match self {
            Input::Tick(e) => (&e.account, &e.region),
            Input::CloudTrail(e) => (&e.account, &e.region),
            Input::AppStreamSession(e) => (&e.account, &e.region),
            Input::WorkSpacesAccess(e) => (&e.account, &e.region),
            Input::Alarm(e) => (&e.account, &e.region),
            Input::Command(e) => (&e.envelope.account, &e.envelope.region),
        };
        (
            account.clone().filter(|a| !a.is_empty()).unwrap_or_else(|| "000000000000".to_owned()),
            region.clone().filter(|r| !r.is_empty()).unwrap_or_else(|| fallback_region.to_owned()),
        )
    }
}

/// The body of a schedule tick. EventBridge rules send `{}`; EventBridge Scheduler sends what its target
/// input says, for which we document `{}` too.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledTick {}

impl Input {
    /// The business key of a tick: the schedule's ARN and the scheduled time. Both come from the envelope
    /// (`resources[0]`, `time`); the per-attempt execution id is deliberately not part of it.
    pub fn tick_key(event: &EventBridgeEvent<ScheduledTick>) -> String {
        let schedule = event.resources.as_ref().and_then(|r| r.first()).map_or("unknown-schedule", String::as_str);
        let time = event.time.map(|t| t.to_rfc3339()).unwrap_or_default();
        format!("{schedule}@{time}")
    }
}

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
    #[serde(default)]
    pub user_identity: serde_json::Value,
    #[serde(default)]
    pub request_parameters: Option<serde_json::Value>,
    #[serde(default)]
    pub response_elements: Option<serde_json::Value>,
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
/// read from `imageBuilderName` (or `name`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateImageParams {
    #[serde(alias = "name")]
    image_builder_name: String,
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

fn elements<T: DeserializeOwned>(value: Option<&serde_json::Value>, path: &str) -> Result<T, EventError> {
    let Some(value) = value else {
        return Err(EventError { path: path.into(), reason: "missing".into() });
    };
    serde_path_to_error::deserialize(value)
        .map_err(|e| EventError { path: join(path, &e.path().to_string()), reason: e.into_inner().to_string() })
}

impl CloudTrailCall {
    /// The account the call was made in (`userIdentity.accountId`), or `000000000000` when the record has none.
    pub fn account(&self) -> &str {
        self.user_identity
            .get("accountId")
            .and_then(serde_json::Value::as_str)
            .filter(|account| !account.is_empty())
            .unwrap_or("000000000000")
    }

    /// Interprets the call. A call that failed (`errorCode`) or that we do not handle is an error naming it.
    pub fn api_call(&self) -> Result<ApiCall, EventError> {
        if let Some(code) = &self.error_code {
            return Err(EventError {
                path: "detail.errorCode".into(),
                reason: format!("{} failed with {code}; nothing to react to", self.event_name),
            });
        }
        let request = self.request_parameters.as_ref();
        const REQ: &str = "detail.requestParameters";
        let call = match (self.event_source.as_str(), self.event_name.as_str()) {
            ("appstream.amazonaws.com", "CreateExportImageTask") => {
                let p: ExportParams = elements(request, REQ)?;
                let task_id = self
                    .response_elements
                    .as_ref()
                    .and_then(|r| serde_json::from_value::<ExportResponse>(r.clone()).ok())
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
                ApiCall::CreateImage { image_builder_name: p.image_builder_name, image_name: p.image_name }
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

/// `AppStream Session Notification` (source `aws.appstream`): a streaming session changed state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppStreamSessionNotification {
    #[serde(alias = "fleet-name", alias = "fleet_name")]
    pub fleet_name: String,
    #[serde(alias = "stack-name", alias = "stack_name")]
    pub stack_name: String,
    #[serde(alias = "session-id", alias = "session_id")]
    pub session_id: String,
    #[serde(default, alias = "user-id", alias = "user_id")]
    pub user_id: Option<String>,
    /// What happened, e.g. `SESSION_STARTED`, `SESSION_ENDED`.
    #[serde(alias = "event-type", alias = "event_type", alias = "state")]
    pub event_type: String,
}

/// `WorkSpaces Access` (source `aws.workspaces`): a user logged in to a WorkSpace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkSpacesAccess {
    pub action_type: String,
    pub workspace_id: String,
    pub directory_id: String,
    pub login_time: DateTime<Utc>,
    #[serde(default)]
    pub client_ip_address: Option<String>,
    #[serde(default)]
    pub client_platform: Option<String>,
    #[serde(default)]
    pub client_version: Option<String>,
    #[serde(default)]
    pub workspaces_client_product_name: Option<String>,
}

/// `CloudWatch Alarm State Change` (source `aws.cloudwatch`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmStateChange {
    pub alarm_name: String,
    pub state: AlarmState,
    pub previous_state: AlarmState,
    #[serde(default)]
    pub configuration: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmState {
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub value: String,
    #[serde(default)]
    pub reason: Option<String>,
    pub timestamp: String,
}

/// Our own commands (source `euc.autopilot`), chosen by `detail-type`. Unknown fields are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    ExportRequested(ExportRequested),
    RolloutRequested(RolloutRequested),
    RolloutPaused(RolloutControl),
    RolloutResumed(RolloutControl),
    RolloutAborted(RolloutControl),
    RemediationRequested(RemediationRequested),
}

impl Command {
    /// Every command `detail-type` we accept.
    pub const DETAIL_TYPES: [&'static str; 6] = [
        "Export Requested",
        "Rollout Requested",
        "Rollout Paused",
        "Rollout Resumed",
        "Rollout Aborted",
        "Remediation Requested",
    ];
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportRequested {
    pub image_name: String,
    pub ami_name: String,
    pub iam_role_arn: String,
    #[serde(default)]
    pub ami_description: Option<String>,
    #[serde(default)]
    pub tag_specifications: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub retry: Option<RetryOverride>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryOverride {
    pub max_attempts: u32,
    #[serde(default)]
    pub backoff: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutRequested {
    pub software_set_id: String,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutControl {
    pub rollout_id: String,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemediationRequested {
    /// `workspace`, `directory`, `workspaces-pool`, `fleet` or `image-builder`.
    pub resource_type: String,
    pub resource_id: String,
    #[serde(default)]
    pub reason: Option<String>,
}

fn join(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty() || path == ".") {
        (_, true) => prefix.to_owned(),
        (true, false) => path.to_owned(),
        (false, false) => format!("{prefix}.{path}"),
    }
}

/// The longest event id, and the longest name, id or region an event may carry (and any text in a command's
/// detail), in bytes. They end up in ledger keys and audit records, which DynamoDB refuses beyond 2 KB (keys)
/// and 400 KB (items) — a refusal the ledger reports as an outage, i.e. `Retryable`, for what is bad input.
/// EventBridge ids are UUIDs; AWS names and ids are at most a few hundred bytes; no field of a command (names,
/// ids, ARNs, a reason) needs more than 1 KB.
const MAX_ID: usize = 256;
const MAX_NAME: usize = 1024;

/// An error for the first of `names` (path, value) longer than [`MAX_NAME`].
fn bounded<'a>(names: impl IntoIterator<Item = (&'static str, &'a str)>) -> Result<(), EventError> {
    match names.into_iter().find(|(_, name)| name.len() > MAX_NAME) {
        Some((path, name)) => Err(EventError {
            path: path.into(),
            reason: format!("is {} bytes long; a name, id or region is at most {MAX_NAME} bytes", name.len()),
        }),
        None => Ok(()),
    }
}

/// The first string or key in `detail` longer than [`MAX_NAME`], as an error naming it. Iterative.
fn oversized_text(detail: &serde_json::Value) -> Option<EventError> {
    let too_long = |path: String, what: &str, bytes: usize| EventError {
        path,
        reason: format!("{what} is {bytes} bytes long; a command's text is at most {MAX_NAME} bytes"),
    };
    let mut stack = vec![("detail".to_owned(), detail)];
    while let Some((path, value)) = stack.pop() {
        match value {
            serde_json::Value::String(text) if text.len() > MAX_NAME => {
                return Some(too_long(path, "the value", text.len()));
            }
            serde_json::Value::Object(fields) => {
                for (key, value) in fields {
                    if key.len() > MAX_NAME {
                        return Some(too_long(path, "a key", key.len()));
                    }
                    stack.push((format!("{path}.{key}"), value));
                }
            }
            serde_json::Value::Array(items) => {
                stack.extend(items.iter().enumerate().map(|(index, item)| (format!("{path}[{index}]"), item)));
            }
            _ => {}
        }
    }
    None
}

/// Parses an envelope whose detail is `T`, naming the failing field.
fn envelope<T: DeserializeOwned + Serialize>(value: serde_json::Value) -> Result<EventBridgeEvent<T>, EventError> {
    // Serde would read a struct from an array, field by field: `"detail": ["r-1"]` must not become a command.
    if let Some(detail) = value.get("detail").filter(|detail| !detail.is_object()) {
        return Err(EventError { path: "detail".into(), reason: format!("{}, expected an object", kind_of(detail)) });
    }
    let event: EventBridgeEvent<T> = serde_path_to_error::deserialize(value)
        .map_err(|e| EventError { path: join("", &e.path().to_string()), reason: e.into_inner().to_string() })?;
    bounded([("region", event.region.as_deref().unwrap_or_default())])?;
    Ok(event)
}

fn command_detail<T: DeserializeOwned>(detail: serde_json::Value) -> Result<T, EventError> {
    serde_path_to_error::deserialize(detail)
        .map_err(|e| EventError { path: join("detail", &e.path().to_string()), reason: e.into_inner().to_string() })
}

/// Parses any input from raw JSON.
pub fn parse(value: serde_json::Value) -> Result<Input, EventError> {
    let field = |name: &str| -> Result<String, EventError> {
        value.get(name).and_then(serde_json::Value::as_str).map(str::to_owned).ok_or_else(|| EventError {
            path: name.into(),
            reason: "missing or not a string (is this an EventBridge event?)".into(),
        })
    };
    let source = field("source")?;
    let detail_type = field("detail-type")?;
    let id = field("id")?;
    if id.len() > MAX_ID {
        return Err(EventError {
            path: "id".into(),
            reason: format!("is {} bytes long; an EventBridge event id is at most {MAX_ID}", id.len()),
        });
    }
    let input = match (source.as_str(), detail_type.as_str()) {
        ("aws.events" | "aws.scheduler", "Scheduled Event") => {
            let event: EventBridgeEvent<ScheduledTick> = envelope(value)?;
            if event.time.is_none() {
                return Err(EventError {
                    path: "time".into(),
                    reason: "a schedule tick needs its scheduled time".into(),
                });
            }
            Input::Tick(event)
        }
        (_, CLOUDTRAIL_DETAIL_TYPE) => {
            let event: EventBridgeEvent<CloudTrailCall> = envelope(value)?;
            event.detail.api_call()?;
            Input::CloudTrail(event)
        }
        ("aws.appstream", "AppStream Session Notification") => {
            let event: EventBridgeEvent<AppStreamSessionNotification> = envelope(value)?;
            let session = &event.detail;
            bounded([
                ("detail.fleetName", session.fleet_name.as_str()),
                ("detail.stackName", session.stack_name.as_str()),
                ("detail.sessionId", session.session_id.as_str()),
            ])?;
            Input::AppStreamSession(event)
        }
        ("aws.workspaces", "WorkSpaces Access") => {
            let event: EventBridgeEvent<WorkSpacesAccess> = envelope(value)?;
            let access = &event.detail;
            bounded([
                ("detail.workspaceId", access.workspace_id.as_str()),
                ("detail.directoryId", access.directory_id.as_str()),
            ])?;
            Input::WorkSpacesAccess(event)
        }
        ("aws.cloudwatch", "CloudWatch Alarm State Change") => {
            let event: EventBridgeEvent<AlarmStateChange> = envelope(value)?;
            bounded([("detail.alarmName", event.detail.alarm_name.as_str())])?;
            Input::Alarm(event)
        }
        (AUTOPILOT_SOURCE, kind) if Command::DETAIL_TYPES.contains(&kind) => {
            let raw: EventBridgeEvent<serde_json::Value> = envelope(value)?;
            let detail = raw.detail.clone();
            let command = match kind {
                "Export Requested" => Command::ExportRequested(command_detail(detail)?),
                "Rollout Requested" => Command::RolloutRequested(command_detail(detail)?),
                "Rollout Paused" => Command::RolloutPaused(command_detail(detail)?),
                "Rollout Resumed" => Command::RolloutResumed(command_detail(detail)?),
                "Rollout Aborted" => Command::RolloutAborted(command_detail(detail)?),
                _ => Command::RemediationRequested(command_detail(detail)?),
            };
            if let Some(error) = oversized_text(&raw.detail) {
                return Err(error);
            }
            Input::Command(CommandEvent { envelope: raw, command })
        }
        (source, kind) => {
            return Err(EventError {
                path: "detail-type".into(),
                reason: format!("{kind:?} from {source:?} is not an input EUC Autopilot handles"),
            });
        }
    };
    Ok(input)
}

/// What a JSON value is, in serde's words (without quoting it).
fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "invalid type: null",
        serde_json::Value::Bool(_) => "invalid type: boolean",
        serde_json::Value::Number(_) => "invalid type: number",
        serde_json::Value::String(_) => "invalid type: string",
        serde_json::Value::Array(_) => "invalid type: sequence",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Parses raw bytes (e.g. a file from `events/`).
pub fn parse_slice(bytes: &[u8]) -> Result<Input, EventError> {
    let value = serde_json::from_slice(bytes)
        .map_err(|e| EventError { path: String::new(), reason: format!("not JSON: {e}") })?;
    parse(value)
}

#[cfg(test)]
mod tests;

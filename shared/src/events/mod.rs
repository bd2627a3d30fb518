//! Typed inputs on top of `aws_lambda_events::eventbridge::EventBridgeEvent<T>`, parsed strictly:
//! the envelope's `source` and `detail-type` choose the detail type, and a detail that does not parse is
//! rejected with the path of the offending field (`detail.requestParameters.name: missing field`).
//!
//! Strictness differs by author. Our own `euc.autopilot` commands reject unknown fields (a typo must not be
//! silently ignored). AWS-authored details require the fields we use and tolerate fields AWS adds later,
//! because AWS extends its event shapes without notice and a new field must not stop automation.

use crate::resource::Place;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Our own event source, for commands in and outcome events out.
pub const AUTOPILOT_SOURCE: &str = "euc.autopilot";

mod cloudtrail;
mod rules;
pub mod strict;

pub use cloudtrail::{ApiCall, CloudTrailCall};
pub use rules::{CLOUDTRAIL_DETAIL_TYPE, DetailMatch, Matcher, Rule, SampleError, check_samples, read_sample, routes};

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
    /// One account × region's share of a tick, fanned out by the hub's own tick ([`crate::shard`]).
    ShardTick(EventBridgeEvent<ShardTick>),
}

/// One of our commands with the envelope it arrived in.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandEvent {
    pub envelope: EventBridgeEvent<serde_json::Value>,
    pub command: Command,
    /// Where the command acts, when its detail names an `account` and/or a `region` (a target of the policy);
    /// otherwise the hub's own account and region, where it was put on the bus.
    pub target: Option<Place>,
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
            Input::ShardTick(e) => &e.id,
        };
        id.as_deref().unwrap_or_default()
    }

    /// The account and region the event comes from (`000000000000` and `fallback_region` when it does not say).
    pub fn origin(&self, fallback_region: &str) -> Place {
        let (account, region) = match self {
            Input::Tick(e) => (&e.account, &e.region),
            Input::CloudTrail(e) => (&e.account, &e.region),
            Input::AppStreamSession(e) => (&e.account, &e.region),
            Input::WorkSpacesAccess(e) => (&e.account, &e.region),
            Input::Alarm(e) => (&e.account, &e.region),
            Input::Command(CommandEvent { target: Some(target), .. }) => return target.clone(),
            Input::Command(e) => (&e.envelope.account, &e.envelope.region),
            Input::ShardTick(e) => (&e.account, &e.region),
        };
        Place {
            account: account.clone().filter(|a| !a.is_empty()).unwrap_or_else(|| Place::UNKNOWN_ACCOUNT.to_owned()),
            region: region.clone().filter(|r| !r.is_empty()).unwrap_or_else(|| fallback_region.to_owned()),
        }
    }
}

/// The body of a schedule tick: `{}`. EventBridge rules send the object; EventBridge Scheduler, whose schedules
/// in `template.yaml` set no input, sends its default event, whose `detail` is the *string* `"{}"`
/// ([`scheduler_default`] reads it as the object).
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

/// The `detail-type` of a [`ShardTick`].
pub const SHARD_TICK_DETAIL_TYPE: &str = "Shard Tick";

/// `Shard Tick` (source `euc.autopilot`, on the project bus): the function named is to do its tick in one
/// account and region, as the hub's tick at `scheduledAt` of `schedule` asked. Unknown fields are errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShardTick {
    pub function: String,
    pub account: String,
    pub region: String,
    /// The schedule whose tick this is a share of (the hub tick's `resources[0]`).
    pub schedule: String,
    /// The hub tick's scheduled time.
    pub scheduled_at: DateTime<Utc>,
    /// The target's own dry-run setting (`None`: the policy's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
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
/// EventBridge Scheduler's default event (a schedule with no input) carries `"detail": "{}"`, a string: read as the
/// empty object it stands for. Only from `aws.scheduler`, and only that string; a rule's tick (`aws.events`)
/// always carries an object, and anything else stays refused.
fn scheduler_default(source: &str, mut value: serde_json::Value) -> serde_json::Value {
    if source == "aws.scheduler"
        && let Some(detail) = value.get_mut("detail")
        && detail.as_str().is_some_and(|text| text.trim() == "{}")
    {
        *detail = serde_json::json!({});
    }
    value
}

fn envelope<T: DeserializeOwned + Serialize>(value: serde_json::Value) -> Result<EventBridgeEvent<T>, EventError> {
    // Strict shapes: a `detail` (or any struct inside it) that is not an object is refused, never read by position.
    let event: EventBridgeEvent<T> = strict::deserialize(&value)
        .map_err(|e| EventError { path: join("", &e.path().to_string()), reason: e.into_inner().to_string() })?;
    bounded([("region", event.region.as_deref().unwrap_or_default())])?;
    Ok(event)
}

/// The `account` and `region` a command's detail may name (taken out of it): where it acts, the other one
/// being the envelope's. Both are checked for shape; whether the policy targets them is the invocation's to say.
fn command_target(
    envelope: &EventBridgeEvent<serde_json::Value>,
    detail: &mut serde_json::Value,
) -> Result<Option<Place>, EventError> {
    let Some(fields) = detail.as_object_mut() else { return Ok(None) };
    let mut take = |name: &str| -> Result<Option<String>, EventError> {
        match fields.remove(name) {
            None => Ok(None),
            Some(serde_json::Value::String(value)) => Ok(Some(value)),
            Some(_) => Err(EventError { path: format!("detail.{name}"), reason: "is not a string".into() }),
        }
    };
    let (account, region) = (take("account")?, take("region")?);
    if account.is_none() && region.is_none() {
        return Ok(None);
    }
    if let Some(account) = &account
        && !crate::policy::targets::is_account_id(account)
    {
        return Err(EventError { path: "detail.account".into(), reason: "is not an account id (12 digits)".into() });
    }
    if let Some(region) = &region
        && !crate::policy::targets::is_region(region)
    {
        return Err(EventError { path: "detail.region".into(), reason: "is not a region".into() });
    }
    let or_envelope = |value: Option<String>, envelope: &Option<String>, fallback: &str| {
        value.or_else(|| envelope.clone().filter(|v| !v.is_empty())).unwrap_or_else(|| fallback.to_owned())
    };
    Ok(Some(Place {
        account: or_envelope(account, &envelope.account, Place::UNKNOWN_ACCOUNT),
        region: or_envelope(region, &envelope.region, ""),
    }))
}

fn command_detail<T: DeserializeOwned>(detail: serde_json::Value) -> Result<T, EventError> {
    strict::deserialize(&detail)
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
            let event: EventBridgeEvent<ScheduledTick> = envelope(scheduler_default(&source, value))?;
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
        (AUTOPILOT_SOURCE, SHARD_TICK_DETAIL_TYPE) => {
            if let Some(error) = value.get("detail").and_then(oversized_text) {
                return Err(error);
            }
            let event: EventBridgeEvent<ShardTick> = envelope(value)?;
            if !crate::policy::targets::is_account_id(&event.detail.account) {
                return Err(EventError {
                    path: "detail.account".into(),
                    reason: "is not an account id (12 digits)".into(),
                });
            }
            if !crate::policy::targets::is_region(&event.detail.region) {
                return Err(EventError { path: "detail.region".into(), reason: "is not a region".into() });
            }
            Input::ShardTick(event)
        }
        (AUTOPILOT_SOURCE, kind) if Command::DETAIL_TYPES.contains(&kind) => {
            let raw: EventBridgeEvent<serde_json::Value> = envelope(value)?;
            let mut detail = raw.detail.clone();
            let target = command_target(&raw, &mut detail)?;
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
            Input::Command(CommandEvent { envelope: raw, command, target })
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

/// Parses raw bytes (e.g. a file from `events/`).
pub fn parse_slice(bytes: &[u8]) -> Result<Input, EventError> {
    let value = serde_json::from_slice(bytes)
        .map_err(|e| EventError { path: String::new(), reason: format!("not JSON: {e}") })?;
    parse(value)
}

#[cfg(test)]
mod tests;

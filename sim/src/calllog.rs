//! The call log: every request the simulator answered, with virtual and wall time, service, operation,
//! resource, parameters and outcome. It is the independent source of truth for tests and benchmarks.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    pub seq: u64,
    /// Virtual time when the call was answered.
    pub at: DateTime<Utc>,
    /// Wall-clock milliseconds since the simulator started (not part of determinism checks).
    pub wall_ms: u64,
    pub service: String,
    pub operation: String,
    /// The resource the call names, if any (pool id, fleet name, task id, …; batch ids joined with `,`).
    pub resource: Option<String>,
    pub parameters: Value,
    /// `ok`, or the error code returned.
    pub outcome: String,
    pub status: u16,
    /// The identity that signed the request (its access key: a function's name, `operator`, `admin`); none for
    /// the simulated people's in-process calls.
    pub caller: Option<String>,
    /// The region a signed call was answered in (its SigV4 scope): with `caller`, the shard a call belongs to.
    /// Not written to `calls.jsonl` (the demo's log keeps its shape).
    #[serde(skip)]
    pub region: Option<String>,
    /// A batch call that succeeded as a whole: the items it reports failed (`FailedRequests`), by id.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_items: Vec<String>,
}

impl CallRecord {
    /// The ids a batch call names (`WorkspaceId` of each request; `resource` joins them with `,`).
    pub fn items(&self) -> Vec<&str> {
        self.resource.as_deref().map(|r| r.split(',').collect()).unwrap_or_default()
    }

    /// The items the call changed: every item it names but those it reports failed (none when it failed).
    pub fn succeeded_items(&self) -> Vec<&str> {
        if !self.ok() {
            return Vec::new();
        }
        self.items().into_iter().filter(|id| !self.failed_items.iter().any(|f| f == id)).collect()
    }

    /// Whether the call succeeded.
    pub fn ok(&self) -> bool {
        self.outcome == "ok"
    }

    /// Whether the call was a mutation of an EUC resource (successful or not): a side effect that must happen
    /// once per business event (outcome events on EventBridge are counted apart).
    pub fn is_estate_mutation(&self) -> bool {
        self.service != "eventbridge" && is_mutating(&self.operation)
    }

    /// The record without wall time, for determinism comparisons.
    pub fn deterministic(&self) -> CallRecord {
        CallRecord { wall_ms: 0, ..self.clone() }
    }
}

/// The ids of the items a successful batch answer reports failed (`FailedRequests[].WorkspaceId`).
pub fn failed_items(answer: &Value) -> Vec<String> {
    answer
        .get("FailedRequests")
        .and_then(Value::as_array)
        .map(|failed| failed.iter().filter_map(|f| f.get("WorkspaceId")?.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Operations that change something (the rest only read).
pub fn is_mutating(operation: &str) -> bool {
    !autopilot_shared::clients::is_read_only(operation)
}

/// The resource a request names.
pub fn resource_of(parameters: &Value, path_id: Option<&str>) -> Option<String> {
    if let Some(id) = path_id {
        return Some(id.to_owned());
    }
    for member in ["PoolId", "Name", "TaskId", "ResourceId", "ResourceArn", "WorkspaceId", "ImageName"] {
        if let Some(value) = parameters.get(member).and_then(Value::as_str) {
            return Some(value.to_owned());
        }
    }
    for member in
        ["StartWorkspaceRequests", "StopWorkspaceRequests", "RebootWorkspaceRequests", "RebuildWorkspaceRequests"]
    {
        if let Some(requests) = parameters.get(member).and_then(Value::as_array) {
            let ids: Vec<&str> = requests.iter().filter_map(|r| r.get("WorkspaceId").and_then(Value::as_str)).collect();
            return Some(ids.join(","));
        }
    }
    None
}

/// Renders records as JSON lines.
pub fn to_jsonl(records: &[CallRecord]) -> String {
    records.iter().filter_map(|r| serde_json::to_string(r).ok()).map(|line| line + "\n").collect()
}

//! Amazon WorkSpaces (awsJson1_1, `WorkspacesService.<Operation>`): personal WorkSpaces and WorkSpaces Pools.

use super::{Codes, epoch, limit, optional_str, page, required_str, string_list};
use crate::error::{ApiError, ApiResult};
use crate::world::visible;
use crate::world::{Pending, World, durations};
use chrono::Duration;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const CODES: Codes =
    Codes { validation: "InvalidParameterValuesException", invalid_state: "InvalidResourceStateException" };

/// `Start/Stop/RebootWorkspaces` take at most this many requests.
pub const MAX_BATCH: usize = 25;

pub fn handle(world: &mut World, operation: &str, input: &Value) -> ApiResult {
    match operation {
        "DescribeWorkspacesPools" => describe_pools(world, input),
        "DescribeWorkspacesPoolSessions" => describe_pool_sessions(world, input),
        "UpdateWorkspacesPool" => update_pool(world, input),
        "StartWorkspacesPool" => start_pool(world, input),
        "StopWorkspacesPool" => stop_pool(world, input),
        "DescribeWorkspaces" => describe_workspaces(world, input),
        "DescribeWorkspacesConnectionStatus" => connection_status(world, input),
        "StartWorkspaces" => batch(world, input, "StartWorkspaceRequests", "StartWorkspaces"),
        "StopWorkspaces" => batch(world, input, "StopWorkspaceRequests", "StopWorkspaces"),
        "RebootWorkspaces" => batch(world, input, "RebootWorkspaceRequests", "RebootWorkspaces"),
        "RebuildWorkspaces" => rebuild(world, input),
        "ModifyWorkspaceState" => modify_state(world, input),
        "DescribeTags" => describe_tags(world, input),
        "CreateTags" => create_tags(world, input),
        "DeleteTags" => delete_tags(world, input),
        other => Err(ApiError::invalid(
            "UnknownOperationException",
            format!("the simulator does not implement WorkSpaces {other}"),
        )),
    }
}

fn pool_json(world: &World, pool: &crate::world::Pool) -> Value {
    let c = &pool.capacity;
    let running = matches!(pool.state.as_str(), "RUNNING" | "UPDATING");
    let actual = if running { c.actual } else { 0 };
    json!({
        "PoolId": pool.id,
        "PoolArn": world.arn("workspaces", &pool.account, &pool.region, &format!("workspacespool/{}", pool.id)),
        "PoolName": pool.name,
        "Description": format!("{} pool", pool.name),
        "State": pool.state,
        "CreatedAt": epoch(pool.created_at),
        "BundleId": pool.bundle_id,
        "DirectoryId": pool.directory_id,
        "RunningMode": pool.running_mode,
        "CapacityStatus": {
            "AvailableUserSessions": actual.saturating_sub(c.active_sessions),
            "DesiredUserSessions": c.desired,
            "ActualUserSessions": actual,
            "ActiveUserSessions": c.active_sessions,
        },
        "Errors": pool.errors.iter().map(|(code, message)| json!({ "ErrorCode": code, "ErrorMessage": message })).collect::<Vec<_>>(),
        "TimeoutSettings": { "DisconnectTimeoutInSeconds": 900, "IdleDisconnectTimeoutInSeconds": 900, "MaxUserDurationInSeconds": 54000 },
    })
}

fn describe_pools(world: &mut World, input: &Value) -> ApiResult {
    let ids = string_list(input, "PoolIds");
    let filters = input.get("Filters").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut pools = Vec::new();
    for pool in world.pools.values() {
        if ids.as_ref().is_some_and(|ids| !ids.contains(&pool.id)) || !world.sees(&pool.account, &pool.region) {
            continue;
        }
        let mut keep = true;
        for filter in &filters {
            let name = optional_str(filter, "Name").unwrap_or_default();
            let values = string_list(filter, "Values").unwrap_or_default();
            let operator = optional_str(filter, "Operator").unwrap_or("EQUALS");
            if name != "PoolName" {
                return Err(ApiError::invalid(
                    CODES.validation,
                    format!("filter name {name:?} is not supported (PoolName)"),
                ));
            }
            let matched = match operator {
                "EQUALS" => values.iter().any(|v| v == &pool.name),
                "NOTEQUALS" => values.iter().all(|v| v != &pool.name),
                "CONTAINS" => values.iter().any(|v| pool.name.contains(v.as_str())),
                "NOTCONTAINS" => values.iter().all(|v| !pool.name.contains(v.as_str())),
                other => {
                    return Err(ApiError::invalid(CODES.validation, format!("filter operator {other:?} is not valid")));
                }
            };
            keep &= matched;
        }
        if keep {
            pools.push(pool);
        }
    }
    if let Some(ids) = &ids
        && pools.is_empty()
        && !ids.is_empty()
    {
        return Err(ApiError::not_found(format!("The specified pools were not found: {}", ids.join(", "))));
    }
    let size = limit(input, "Limit", 10, 10, CODES)?;
    // Filter and page first, render only the page: a describe costs O(page), not O(estate).
    let (pools, next) = page(&pools, optional_str(input, "NextToken"), size, CODES)?;
    let items: Vec<Value> = pools.into_iter().map(|p| pool_json(world, p)).collect();
    Ok(json!({ "WorkspacesPools": items, "NextToken": next }))
}

fn describe_pool_sessions(world: &mut World, input: &Value) -> ApiResult {
    let pool_id = required_str(input, "PoolId", CODES)?;
    let pool = world
        .pools
        .get(pool_id)
        .filter(|p| world.sees(&p.account, &p.region))
        .ok_or_else(|| ApiError::not_found(format!("The pool {pool_id} was not found.")))?;
    let sessions: Vec<Value> = (0..pool.capacity.active_sessions)
        .map(|n| {
            json!({
                "SessionId": format!("{}-session-{n:05}", pool.id),
                "PoolId": pool.id,
                "UserId": format!("user{n:05}"),
                "ConnectionState": "CONNECTED",
                "AuthenticationType": "SAML",
                "StartTime": epoch(world.now),
                "InstanceId": format!("i-{:017x}", n),
            })
        })
        .collect();
    let size = limit(input, "Limit", 50, 50, CODES)?;
    let (items, next) = page(&sessions, optional_str(input, "NextToken"), size, CODES)?;
    Ok(json!({ "Sessions": items, "NextToken": next }))
}

fn pool_mut<'a>(world: &'a mut World, input: &Value) -> Result<&'a mut crate::world::Pool, ApiError> {
    let pool_id = required_str(input, "PoolId", CODES)?.to_owned();
    let visible = world.pools.get(&pool_id).is_some_and(|p| world.sees(&p.account, &p.region));
    world
        .pools
        .get_mut(&pool_id)
        .filter(|_| visible)
        .ok_or_else(|| ApiError::not_found(format!("The pool {pool_id} was not found.")))
}

fn update_pool(world: &mut World, input: &Value) -> ApiResult {
    let now = world.now;
    let desired = match input.get("Capacity") {
        None => None,
        Some(capacity) => Some(
            capacity
                .get("DesiredUserSessions")
                .and_then(Value::as_u64)
                .ok_or_else(|| ApiError::invalid(CODES.validation, "Capacity.DesiredUserSessions is required"))?,
        ),
    };
    let running_mode = optional_str(input, "RunningMode").map(str::to_owned);
    let pool = pool_mut(world, input)?;
    if !matches!(pool.state.as_str(), "RUNNING" | "STOPPED") {
        return Err(ApiError::invalid(
            CODES.invalid_state,
            format!("The pool {} is {}; it can be updated when RUNNING or STOPPED.", pool.id, pool.state),
        ));
    }
    if let Some(mode) = running_mode {
        if !matches!(mode.as_str(), "AUTO_STOP" | "ALWAYS_ON") {
            return Err(ApiError::invalid(CODES.validation, format!("RunningMode {mode} is not valid")));
        }
        pool.running_mode = mode;
    }
    if let Some(desired) = desired {
        let desired = u32::try_from(desired)
            .map_err(|_| ApiError::invalid(CODES.validation, "DesiredUserSessions is too large"))?;
        pool.capacity.set_desired(desired, now);
    }
    if pool.state == "RUNNING" {
        pool.state = "UPDATING".into();
        pool.pending = Some(Pending { at: now + Duration::minutes(durations::POOL_UPDATE), state: "RUNNING".into() });
    }
    let pool = pool.clone();
    Ok(json!({ "WorkspacesPool": pool_json(world, &pool) }))
}

fn start_pool(world: &mut World, input: &Value) -> ApiResult {
    pool_transition(world, input, "started", "STOPPED", "STARTING", "RUNNING", durations::POOL_START)
}

fn stop_pool(world: &mut World, input: &Value) -> ApiResult {
    pool_transition(world, input, "stopped", "RUNNING", "STOPPING", "STOPPED", durations::POOL_STOP)
}

/// Start and stop: only AUTO_STOP pools, only from `from`; `via` for `minutes`, then `to`.
fn pool_transition(
    world: &mut World,
    input: &Value,
    verb: &str,
    from: &str,
    via: &str,
    to: &str,
    minutes: i64,
) -> ApiResult {
    let now = world.now;
    let pool = pool_mut(world, input)?;
    if pool.running_mode != "AUTO_STOP" {
        return Err(ApiError::invalid(
            "OperationNotSupportedException",
            format!("The pool {} has running mode {}; only AUTO_STOP pools can be {verb}.", pool.id, pool.running_mode),
        ));
    }
    if pool.state != from {
        return Err(ApiError::invalid(
            CODES.invalid_state,
            format!("The pool {} is {}; it can be {verb} only when {from}.", pool.id, pool.state),
        ));
    }
    pool.state = via.into();
    pool.pending = Some(Pending { at: now + Duration::minutes(minutes), state: to.into() });
    Ok(json!({}))
}

fn workspace_json(workspace: &crate::world::Workspace) -> Value {
    json!({
        "WorkspaceId": workspace.id,
        "DirectoryId": workspace.directory_id,
        "UserName": workspace.user,
        "BundleId": workspace.bundle_id,
        "State": workspace.state,
        "ComputerName": format!("WS-{}", workspace.id.trim_start_matches("ws-").to_uppercase()),
        "IpAddress": "10.0.1.25",
        "SubnetId": "subnet-0a1b2c3d",
        "WorkspaceProperties": { "RunningMode": "AUTO_STOP", "RunningModeAutoStopTimeoutInMinutes": 60, "ComputeTypeName": "STANDARD" },
    })
}

fn describe_workspaces(world: &mut World, input: &Value) -> ApiResult {
    let ids = string_list(input, "WorkspaceIds");
    if ids.as_ref().is_some_and(|ids| ids.len() > MAX_BATCH) {
        return Err(ApiError::invalid(CODES.validation, format!("WorkspaceIds accepts at most {MAX_BATCH} ids")));
    }
    let directory = optional_str(input, "DirectoryId");
    let bundle = optional_str(input, "BundleId");
    let user = optional_str(input, "UserName");
    let workspaces: Vec<_> = world
        .workspaces
        .values()
        .filter(|w| ids.as_ref().is_none_or(|ids| ids.contains(&w.id)))
        .filter(|w| world.sees(&w.account, &w.region))
        .filter(|w| directory.is_none_or(|d| d == w.directory_id))
        .filter(|w| bundle.is_none_or(|b| b == w.bundle_id))
        .filter(|w| user.is_none_or(|u| u == w.user))
        .collect();
    let size = limit(input, "Limit", 25, 25, CODES)?;
    let (workspaces, next) = page(&workspaces, optional_str(input, "NextToken"), size, CODES)?;
    let items: Vec<Value> = workspaces.into_iter().map(workspace_json).collect();
    Ok(json!({ "Workspaces": items, "NextToken": next }))
}

fn connection_status(world: &mut World, input: &Value) -> ApiResult {
    let ids = string_list(input, "WorkspaceIds");
    if ids.as_ref().is_some_and(|ids| ids.len() > MAX_BATCH) {
        return Err(ApiError::invalid(CODES.validation, format!("WorkspaceIds accepts at most {MAX_BATCH} ids")));
    }
    let now = world.now;
    let workspaces: Vec<_> = world
        .workspaces
        .values()
        .filter(|w| ids.as_ref().is_none_or(|ids| ids.contains(&w.id)) && world.sees(&w.account, &w.region))
        .collect();
    let (workspaces, next) = page(&workspaces, optional_str(input, "NextToken"), 25, CODES)?;
    let items: Vec<Value> = workspaces
        .into_iter()
        .map(|w| {
            json!({
                "WorkspaceId": w.id,
                "ConnectionState": if w.connected { "CONNECTED" } else { "DISCONNECTED" },
                "ConnectionStateCheckTimestamp": epoch(now),
                "LastKnownUserConnectionTimestamp": w.last_connected.map(epoch),
            })
        })
        .collect();
    Ok(json!({ "WorkspacesConnectionStatus": items, "NextToken": next }))
}

fn failed(id: &str, code: &str, message: &str) -> Value {
    json!({ "WorkspaceId": id, "ErrorCode": code, "ErrorMessage": message })
}

/// Start, stop and reboot: up to 25 requests, HTTP 200 with per-item `FailedRequests`.
fn batch(world: &mut World, input: &Value, member: &str, operation: &str) -> ApiResult {
    let requests = input.get(member).and_then(Value::as_array).cloned().unwrap_or_default();
    if requests.is_empty() || requests.len() > MAX_BATCH {
        // Not a modeled error of these operations: the service answers with a generic ValidationException.
        return Err(ApiError::invalid(
            "ValidationException",
            format!("{member} must have between 1 and {MAX_BATCH} items, it has {}", requests.len()),
        ));
    }
    let failure_rate = world.faults.batch_failure_rate.get(operation).copied().unwrap_or(0.0);
    let failure_code =
        world.faults.batch_failure_code.get(operation).cloned().unwrap_or_else(|| "InternalError".into());
    let fail_first = world.faults.batch_fail_first.get(operation).copied().unwrap_or(0);
    let now = world.now;
    let mut failures = Vec::new();
    for request in &requests {
        let id = required_str(request, "WorkspaceId", CODES)?;
        let attempts = world.batch_attempts.entry(format!("{operation}#{id}")).or_insert(0);
        *attempts += 1;
        let failed_first = *attempts <= fail_first;
        if failed_first || world.fault_rng.chance(failure_rate) {
            failures.push(failed(id, &failure_code, "The request could not be processed; try again."));
            continue;
        }
        let Some(workspace) = visible(&world.caller, &mut world.workspaces, id) else {
            failures.push(failed(id, "ResourceNotFound.Workspace", "The WorkSpace was not found."));
            continue;
        };
        let (allowed, next, minutes): (&[&str], &str, i64) = match operation {
            "StartWorkspaces" => (&["STOPPED"], "AVAILABLE", durations::WORKSPACE_START),
            "StopWorkspaces" => {
                (&["AVAILABLE", "IMPAIRED", "UNHEALTHY", "ERROR"], "STOPPED", durations::WORKSPACE_STOP)
            }
            // RebootWorkspaces: "You cannot reboot a WorkSpace unless its state is AVAILABLE, UNHEALTHY, or
            // REBOOTING" (the last when stuck).
            _ => (&["AVAILABLE", "UNHEALTHY", "REBOOTING"], "AVAILABLE", durations::WORKSPACE_REBOOT),
        };
        if !allowed.contains(&workspace.state.as_str()) {
            failures.push(failed(
                id,
                "InvalidResourceState.Workspace",
                &format!("The WorkSpace is {}.", workspace.state),
            ));
            continue;
        }
        // The WorkSpace settles in `next`; a fault the operation did not cure puts it back in the fault's state
        // (World::step).
        let transient = match operation {
            "StartWorkspaces" => "STARTING",
            "StopWorkspaces" => "STOPPING",
            _ => "REBOOTING",
        };
        if operation != "StartWorkspaces" {
            workspace.restarted();
        }
        workspace.state = transient.into();
        workspace.connected = false;
        workspace.pending = Some(Pending { at: now + Duration::minutes(minutes), state: next.into() });
    }
    Ok(json!({ "FailedRequests": failures }))
}

fn rebuild(world: &mut World, input: &Value) -> ApiResult {
    let requests = input.get("RebuildWorkspaceRequests").and_then(Value::as_array).cloned().unwrap_or_default();
    if requests.len() != 1 {
        return Err(ApiError::invalid(
            "ValidationException",
            format!("RebuildWorkspaceRequests takes exactly 1 request, it has {}", requests.len()),
        ));
    }
    let id = required_str(&requests[0], "WorkspaceId", CODES)?;
    let now = world.now;
    let Some(workspace) = visible(&world.caller, &mut world.workspaces, id) else {
        return Ok(
            json!({ "FailedRequests": [failed(id, "ResourceNotFound.Workspace", "The WorkSpace was not found.")] }),
        );
    };
    if !matches!(workspace.state.as_str(), "AVAILABLE" | "ERROR" | "UNHEALTHY" | "STOPPED" | "REBOOTING") {
        return Ok(
            json!({ "FailedRequests": [failed(id, "InvalidResourceState.Workspace", &format!("The WorkSpace is {}.", workspace.state))] }),
        );
    }
    workspace.state = "REBUILDING".into();
    workspace.connected = false;
    workspace.rebuilt();
    workspace.pending =
        Some(Pending { at: now + Duration::minutes(durations::WORKSPACE_REBUILD), state: "AVAILABLE".into() });
    Ok(json!({ "FailedRequests": [] }))
}

fn modify_state(world: &mut World, input: &Value) -> ApiResult {
    let id = required_str(input, "WorkspaceId", CODES)?.to_owned();
    let target = required_str(input, "WorkspaceState", CODES)?.to_owned();
    let workspace = visible(&world.caller, &mut world.workspaces, &id)
        .ok_or_else(|| ApiError::not_found(format!("The WorkSpace {id} was not found.")))?;
    let next = match target.as_str() {
        "ADMIN_MAINTENANCE" => "ADMIN_MAINTENANCE",
        "AVAILABLE" => "AVAILABLE",
        other => {
            return Err(ApiError::invalid(
                CODES.validation,
                format!("WorkspaceState {other} is not valid (AVAILABLE, ADMIN_MAINTENANCE)"),
            ));
        }
    };
    if !matches!(workspace.state.as_str(), "AVAILABLE" | "ADMIN_MAINTENANCE" | "STOPPED") {
        return Err(ApiError::invalid(CODES.invalid_state, format!("The WorkSpace {id} is {}.", workspace.state)));
    }
    workspace.state = next.into();
    Ok(json!({}))
}

/// The tags of the WorkSpace or pool `ResourceId` names.
fn tags_of<'w>(world: &'w mut World, input: &Value) -> Result<&'w mut BTreeMap<String, String>, ApiError> {
    let id = required_str(input, "ResourceId", CODES)?;
    if let Some(workspace) = visible(&world.caller, &mut world.workspaces, id) {
        return Ok(&mut workspace.tags);
    }
    match visible(&world.caller, &mut world.pools, id) {
        Some(pool) => Ok(&mut pool.tags),
        None => Err(ApiError::not_found(format!("The resource {id} was not found."))),
    }
}

fn describe_tags(world: &mut World, input: &Value) -> ApiResult {
    let list: Vec<Value> = tags_of(world, input)?.iter().map(|(k, v)| json!({ "Key": k, "Value": v })).collect();
    Ok(json!({ "TagList": list }))
}

/// `CreateTags`: `Tags` (`[{Key, Value}]`, required) added to or overwriting the resource's.
fn create_tags(world: &mut World, input: &Value) -> ApiResult {
    let tags: Vec<(String, String)> = input
        .get("Tags")
        .and_then(Value::as_array)
        .map(|tags| {
            tags.iter()
                .filter_map(|t| {
                    let key = t.get("Key").and_then(Value::as_str)?;
                    Some((key.to_owned(), t.get("Value").and_then(Value::as_str).unwrap_or_default().to_owned()))
                })
                .collect()
        })
        .filter(|tags: &Vec<(String, String)>| !tags.is_empty())
        .ok_or_else(|| ApiError::invalid(CODES.validation, "Tags must name at least one tag with a Key"))?;
    tags_of(world, input)?.extend(tags);
    Ok(json!({}))
}

/// `DeleteTags`: the `TagKeys` (required) removed from the resource; keys it does not carry are ignored.
fn delete_tags(world: &mut World, input: &Value) -> ApiResult {
    let keys = super::tag_keys(input, CODES)?;
    super::remove_tags(tags_of(world, input)?, keys)
}

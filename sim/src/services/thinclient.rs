//! Amazon WorkSpaces Thin Client (restJson1): environments, software sets, devices and tags. Routed by HTTP
//! method and path; timestamps are epoch seconds in bodies. `ListDevices` has no environment filter in the
//! API, so callers filter on each device's `environmentId`.

use super::{Codes, epoch, page};
use crate::error::{ApiError, ApiResult};
use crate::world::visible;
use crate::world::{Device, Environment, SoftwareSet, Window, World};
use chrono::{Timelike, Weekday};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const CODES: Codes = Codes { validation: "ValidationException", invalid_state: "ConflictException" };

/// Page size when `maxResults` is absent, and its maximum.
pub const PAGE_SIZE: usize = 50;

fn not_found(kind: &str, id: &str) -> ApiError {
    ApiError::new("ResourceNotFoundException", 404, format!("The {kind} {id} was not found."))
}

fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new("ValidationException", 400, message)
}

/// The operation name of a request, for the call log and fault injection.
pub fn operation_name(method: &str, path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["environments"]) => "ListEnvironments",
        ("GET", ["environments", _]) => "GetEnvironment",
        ("PATCH", ["environments", _]) => "UpdateEnvironment",
        ("GET", ["softwaresets"]) => "ListSoftwareSets",
        ("GET", ["softwaresets", _]) => "GetSoftwareSet",
        ("PATCH", ["softwaresets", _]) => "UpdateSoftwareSet",
        ("GET", ["devices"]) => "ListDevices",
        ("GET", ["devices", _]) => "GetDevice",
        ("PATCH", ["devices", _]) => "UpdateDevice",
        ("GET", ["tags", ..]) => "ListTagsForResource",
        ("POST", ["tags", ..]) => "TagResource",
        ("DELETE", ["tags", ..]) => "UntagResource",
        _ => "Unknown",
    }
}

pub fn handle(
    world: &mut World,
    method: &str,
    path: &str,
    query: &BTreeMap<String, String>,
    body: &Value,
) -> ApiResult {
    let segments: Vec<String> = path.trim_matches('/').split('/').map(crate::wire::percent_decode).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (method, segments.as_slice()) {
        ("GET", ["environments"]) => {
            let items: Vec<_> = world.environments.values().filter(|e| world.sees(&e.account, &e.region)).collect();
            list(&items, |e| environment_json(world, e, View::Summary), "environments", query)
        }
        ("GET", ["environments", id]) => {
            let environment = world
                .environments
                .get(*id)
                .filter(|e| world.sees(&e.account, &e.region))
                .ok_or_else(|| not_found("environment", id))?;
            Ok(json!({ "environment": environment_json(world, environment, View::Full) }))
        }
        ("PATCH", ["environments", id]) => update_environment(world, id, body),
        ("GET", ["softwaresets"]) => {
            let items: Vec<_> = world.software_sets.values().collect();
            list(&items, |s| software_set_json(world, s, View::Summary), "softwareSets", query)
        }
        ("GET", ["softwaresets", id]) => {
            let set = world.software_sets.get(*id).ok_or_else(|| not_found("software set", id))?;
            Ok(json!({ "softwareSet": software_set_json(world, set, View::Full) }))
        }
        ("PATCH", ["softwaresets", id]) => {
            let status = body
                .get("validationStatus")
                .and_then(Value::as_str)
                .ok_or_else(|| validation("validationStatus is required"))?;
            if !matches!(status, "VALIDATED" | "NOT_VALIDATED") {
                return Err(validation(format!("validationStatus {status} is not valid (VALIDATED, NOT_VALIDATED)")));
            }
            let set = world.software_sets.get_mut(*id).ok_or_else(|| not_found("software set", id))?;
            set.validation_status = status.into();
            Ok(json!({}))
        }
        ("GET", ["devices"]) => {
            let items: Vec<_> = world.devices.values().filter(|d| world.sees(&d.account, &d.region)).collect();
            list(&items, |d| device_json(world, d, View::Summary), "devices", query)
        }
        ("GET", ["devices", id]) => {
            let device = world
                .devices
                .get(*id)
                .filter(|d| world.sees(&d.account, &d.region))
                .ok_or_else(|| not_found("device", id))?;
            Ok(json!({ "device": device_json(world, device, View::Full) }))
        }
        ("PATCH", ["devices", id]) => update_device(world, id, body),
        ("GET", ["tags", arn @ ..]) => Ok(json!({ "tags": tags_of(world, &arn.join("/"))? })),
        ("POST", ["tags", arn @ ..]) => {
            let tags: BTreeMap<String, String> = body
                .get("tags")
                .and_then(Value::as_object)
                .map(|tags| tags.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
                .filter(|tags: &BTreeMap<String, String>| !tags.is_empty())
                .ok_or_else(|| validation("tags must hold at least one tag"))?;
            tags_of(world, &arn.join("/"))?.extend(tags);
            Ok(json!({}))
        }
        // `tagKeys` is a repeated query parameter; the simulator's query map keeps one value (docs/local-estate.md)
        ("DELETE", ["tags", arn @ ..]) => {
            let key = query
                .get("tagKeys")
                .map(|k| crate::wire::percent_decode(k))
                .ok_or_else(|| validation("tagKeys is required"))?;
            tags_of(world, &arn.join("/"))?.remove(&key);
            Ok(json!({}))
        }
        _ => Err(ApiError::new(
            "UnknownOperationException",
            404,
            format!("the simulator does not implement {method} {path}"),
        )),
    }
}

/// The tags of the environment or device an ARN names (by the id after its last `/`).
fn tags_of<'w>(world: &'w mut World, arn: &str) -> Result<&'w mut BTreeMap<String, String>, ApiError> {
    let id = arn.rsplit('/').next().unwrap_or_default();
    if let Some(environment) = visible(&world.caller, &mut world.environments, id) {
        return Ok(&mut environment.tags);
    }
    visible(&world.caller, &mut world.devices, id).map(|d| &mut d.tags).ok_or_else(|| not_found("resource", arn))
}

/// One page of a list, rendering only the items on it.
fn list<T: Clone>(
    items: &[T],
    render: impl Fn(T) -> Value,
    member: &str,
    query: &BTreeMap<String, String>,
) -> ApiResult {
    let size = match query.get("maxResults") {
        None => PAGE_SIZE,
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=PAGE_SIZE).contains(n))
            .ok_or_else(|| validation(format!("maxResults {n} is out of range (1 to {PAGE_SIZE})")))?,
    };
    let (items, next) = page(items, query.get("nextToken").map(String::as_str), size, CODES)?;
    let items: Vec<Value> = items.into_iter().map(render).collect();
    Ok(json!({ member: items, "nextToken": next }))
}

fn day_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "MONDAY",
        Weekday::Tue => "TUESDAY",
        Weekday::Wed => "WEDNESDAY",
        Weekday::Thu => "THURSDAY",
        Weekday::Fri => "FRIDAY",
        Weekday::Sat => "SATURDAY",
        Weekday::Sun => "SUNDAY",
    }
}

fn window_json(window: &Option<Window>) -> Value {
    match window {
        None => json!({ "type": "SYSTEM" }),
        Some(w) => json!({
            "type": "CUSTOM",
            "startTimeHour": w.start.hour(),
            "startTimeMinute": w.start.minute(),
            "endTimeHour": w.end.hour(),
            "endTimeMinute": w.end.minute(),
            "daysOfTheWeek": w.days.iter().map(|d| day_name(*d)).collect::<Vec<_>>(),
            "applyTimeOf": "UTC",
        }),
    }
}

/// How much of a resource an answer shows: the summary a List returns, or everything a Get returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    Summary,
    Full,
}

fn environment_json(world: &World, e: &Environment, view: View) -> Value {
    let devices: Vec<&Device> = world.devices.values().filter(|d| d.environment_id == e.id).collect();
    let mut value = json!({
        "id": e.id,
        "name": e.name,
        "desktopArn": world.arn("workspaces", &e.account, &e.region, "directory/d-9067a1b2c3"),
        "desktopType": "workspaces",
        "desktopEndpoint": e.desktop_endpoint,
        "activationCode": e.activation_code,
        "softwareSetUpdateSchedule": e.update_schedule,
        "maintenanceWindow": window_json(&e.window),
        "softwareSetUpdateMode": e.update_mode,
        "desiredSoftwareSetId": e.desired_software_set_id,
        "createdAt": epoch(e.created_at),
        "updatedAt": epoch(e.updated_at),
        "arn": world.arn("thinclient", &e.account, &e.region, &format!("environment/{}", e.id)),
    });
    if view == View::Full {
        let compliant = devices.iter().all(|d| Some(&d.current_software_set_id) == e.desired_software_set_id.as_ref());
        value["registeredDevicesCount"] = json!(devices.len());
        value["softwareSetComplianceStatus"] = json!(if e.desired_software_set_id.is_none() {
            "NO_REGISTERED_DEVICES"
        } else if compliant {
            "COMPLIANT"
        } else {
            "NOT_COMPLIANT"
        });
        value["tags"] = json!(e.tags);
    }
    value
}

fn software_set_json(world: &World, s: &SoftwareSet, view: View) -> Value {
    let mut value = json!({
        "id": s.id,
        "version": s.version,
        "releasedAt": epoch(s.released_at),
        "supportedUntil": s.supported_until.map(epoch),
        "validationStatus": s.validation_status,
        "arn": world.arn("thinclient", &world.account, &world.region, &format!("softwareset/{}", s.id)),
    });
    if view == View::Full {
        value["software"] = json!([{ "name": "thinclient-os", "version": s.version }]);
    }
    value
}

fn device_json(world: &World, d: &Device, view: View) -> Value {
    let environment = world.environments.get(&d.environment_id);
    let mut value = json!({
        "id": d.id,
        "serialNumber": d.serial_number,
        "name": d.name,
        "model": "Amazon Fire TV Cube",
        "environmentId": d.environment_id,
        "status": "REGISTERED",
        "currentSoftwareSetId": d.current_software_set_id,
        "desiredSoftwareSetId": d.desired_software_set_id,
        "pendingSoftwareSetId": d.pending_software_set_id,
        "softwareSetUpdateSchedule": environment.map(|e| e.update_schedule.as_str()).unwrap_or("USE_MAINTENANCE_WINDOW"),
        "lastConnectedAt": epoch(d.last_posture_at),
        "lastPostureAt": epoch(d.last_posture_at),
        "createdAt": epoch(d.created_at),
        "updatedAt": epoch(d.updated_at),
        "arn": world.arn("thinclient", &d.account, &d.region, &format!("device/{}", d.id)),
    });
    if view == View::Full {
        let current_version = world.software_sets.get(&d.current_software_set_id).map(|s| s.version.clone());
        let up_to_date = d.desired_software_set_id.as_ref().is_none_or(|t| t == &d.current_software_set_id);
        value["currentSoftwareSetVersion"] = json!(current_version);
        value["softwareSetUpdateStatus"] = json!(if d.pending_software_set_id.is_some() {
            "IN_PROGRESS"
        } else if up_to_date {
            "UP_TO_DATE"
        } else {
            "AVAILABLE"
        });
        value["softwareSetComplianceStatus"] = json!(if d.desired_software_set_id.is_none() {
            "NONE"
        } else if up_to_date {
            "COMPLIANT"
        } else {
            "NOT_COMPLIANT"
        });
        value["tags"] = json!(d.tags);
    }
    value
}

fn update_environment(world: &mut World, id: &str, body: &Value) -> ApiResult {
    let desired = body.get("desiredSoftwareSetId").and_then(Value::as_str).map(str::to_owned);
    if let Some(set) = &desired
        && !world.software_sets.contains_key(set)
    {
        return Err(validation(format!("desiredSoftwareSetId {set} is not a software set")));
    }
    let mode = body.get("softwareSetUpdateMode").and_then(Value::as_str).map(str::to_owned);
    if let Some(mode) = &mode
        && !matches!(mode.as_str(), "USE_LATEST" | "USE_DESIRED")
    {
        return Err(validation(format!("softwareSetUpdateMode {mode} is not valid")));
    }
    let schedule = body.get("softwareSetUpdateSchedule").and_then(Value::as_str).map(str::to_owned);
    if let Some(schedule) = &schedule
        && !matches!(schedule.as_str(), "USE_MAINTENANCE_WINDOW" | "APPLY_IMMEDIATELY")
    {
        return Err(validation(format!("softwareSetUpdateSchedule {schedule} is not valid")));
    }
    let now = world.now;
    let environment =
        visible(&world.caller, &mut world.environments, id).ok_or_else(|| not_found("environment", id))?;
    if let Some(name) = body.get("name").and_then(Value::as_str) {
        environment.name = name.into();
    }
    if desired.is_some() {
        environment.desired_software_set_id = desired;
    }
    if let Some(mode) = mode {
        environment.update_mode = mode;
    }
    if let Some(schedule) = schedule {
        environment.update_schedule = schedule;
    }
    environment.updated_at = now;
    let environment = environment.clone();
    Ok(json!({ "environment": environment_json(world, &environment, View::Summary) }))
}

fn update_device(world: &mut World, id: &str, body: &Value) -> ApiResult {
    let now = world.now;
    let device = visible(&world.caller, &mut world.devices, id).ok_or_else(|| not_found("device", id))?;
    if let Some(name) = body.get("name").and_then(Value::as_str) {
        device.name = name.into();
    }
    device.updated_at = now;
    let device = device.clone();
    Ok(json!({ "device": device_json(world, &device, View::Summary) }))
}

//! Amazon AppStream 2.0 / WorkSpaces Applications (`PhotonAdminProxyService`): fleets, image builders,
//! images, export tasks and imported images. Served over Smithy RPC v2 CBOR and awsJson1_1 alike.

use super::{Codes, epoch, limit, optional_str, page, required_str, string_list};
use crate::error::{ApiError, ApiResult};
use crate::world::visible;
use crate::world::{ExportTask, Image, Pending, World, durations};
use chrono::Duration;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const CODES: Codes =
    Codes { validation: "InvalidParameterCombinationException", invalid_state: "OperationNotPermittedException" };

pub fn handle(world: &mut World, operation: &str, input: &Value) -> ApiResult {
    match operation {
        "DescribeFleets" => describe_fleets(world, input),
        "UpdateFleet" => update_fleet(world, input),
        "StartFleet" => start_fleet(world, input),
        "StopFleet" => stop_fleet(world, input),
        "DescribeImageBuilders" => describe_builders(world, input),
        "StartImageBuilder" => start_builder(world, input),
        "StopImageBuilder" => stop_builder(world, input),
        "DescribeImages" => describe_images(world, input),
        "CreateExportImageTask" => create_export(world, input),
        "GetExportImageTask" => get_export(world, input),
        "ListExportImageTasks" => list_exports(world, input),
        "CreateImportedImage" => create_imported_image(world, input),
        "ListTagsForResource" => list_tags(world, input),
        "TagResource" => tag_resource(world, input),
        "UntagResource" => untag_resource(world, input),
        other => Err(ApiError::invalid(
            "UnknownOperationException",
            format!("the simulator does not implement AppStream {other}"),
        )),
    }
}

fn fleet_json(world: &World, fleet: &crate::world::Fleet) -> Value {
    let c = &fleet.capacity;
    let running = fleet.state == "RUNNING";
    let actual = if running { c.actual } else { 0 };
    let status = if fleet.is_multi_session() {
        let per = fleet.max_sessions_per_instance;
        json!({
            "Desired": c.desired.div_ceil(per),
            "Running": actual.div_ceil(per),
            "InUse": c.active_sessions.div_ceil(per),
            "Available": actual.div_ceil(per).saturating_sub(c.active_sessions.div_ceil(per)),
            "DesiredUserSessions": c.desired,
            "ActualUserSessions": actual,
            "ActiveUserSessions": c.active_sessions,
            "AvailableUserSessions": actual.saturating_sub(c.active_sessions),
        })
    } else {
        json!({ "Desired": c.desired, "Running": actual, "InUse": c.active_sessions, "Available": actual.saturating_sub(c.active_sessions) })
    };
    let mut value = json!({
        "Arn": world.arn("appstream", &fleet.account, &fleet.region, &format!("fleet/{}", fleet.name)),
        "Name": fleet.name,
        "DisplayName": fleet.name,
        "InstanceType": fleet.instance_type,
        "FleetType": fleet.fleet_type,
        "ComputeCapacityStatus": status,
        "MaxUserDurationInSeconds": 57600,
        "DisconnectTimeoutInSeconds": 900,
        "State": fleet.state,
        "CreatedTime": epoch(fleet.created_at),
        "FleetErrors": fleet.errors.iter().map(|(code, message)| json!({ "ErrorCode": code, "ErrorMessage": message })).collect::<Vec<_>>(),
        "EnableDefaultInternetAccess": false,
        "StreamView": "APP",
        "Platform": "WINDOWS_SERVER_2022",
    });
    if let Some(image) = &fleet.image {
        value["ImageName"] = json!(image);
        value["ImageArn"] = json!(world.arn("appstream", &fleet.account, &fleet.region, &format!("image/{image}")));
    }
    if fleet.is_multi_session() {
        value["MaxSessionsPerInstance"] = json!(fleet.max_sessions_per_instance);
    }
    value
}

fn describe_fleets(world: &mut World, input: &Value) -> ApiResult {
    let names = string_list(input, "Names");
    if let Some(names) = &names
        && let Some(missing) =
            names.iter().find(|n| !world.fleets.get(*n).is_some_and(|f| world.sees(&f.account, &f.region)))
    {
        return Err(ApiError::not_found(format!("The fleet {missing} does not exist.")));
    }
    // Filter and page first, render only the page: a describe costs O(page), not O(estate).
    let fleets: Vec<_> = world
        .fleets
        .values()
        .filter(|f| names.as_ref().is_none_or(|n| n.contains(&f.name)) && world.sees(&f.account, &f.region))
        .collect();
    let (fleets, next) = page(&fleets, optional_str(input, "NextToken"), 25, CODES)?;
    let items: Vec<Value> = fleets.into_iter().map(|f| fleet_json(world, f)).collect();
    Ok(json!({ "Fleets": items, "NextToken": next }))
}

fn fleet_mut<'a>(world: &'a mut World, input: &Value) -> Result<&'a mut crate::world::Fleet, ApiError> {
    let name = required_str(input, "Name", CODES)?.to_owned();
    visible(&world.caller, &mut world.fleets, &name)
        .ok_or_else(|| ApiError::not_found(format!("The fleet {name} does not exist.")))
}

fn update_fleet(world: &mut World, input: &Value) -> ApiResult {
    let now = world.now;
    let capacity = input.get("ComputeCapacity").cloned();
    let fleet = fleet_mut(world, input)?;
    if let Some(capacity) = capacity {
        let instances = capacity.get("DesiredInstances").and_then(Value::as_u64);
        let sessions = capacity.get("DesiredSessions").and_then(Value::as_u64);
        let desired = match (fleet.is_multi_session(), instances, sessions) {
            (false, Some(n), None) => n,
            (true, None, Some(n)) => n,
            (false, _, Some(_)) => {
                return Err(ApiError::invalid(
                    CODES.validation,
                    "DesiredSessions applies to multi-session fleets only; use DesiredInstances",
                ));
            }
            (true, Some(_), _) => {
                return Err(ApiError::invalid(
                    CODES.validation,
                    "DesiredInstances does not apply to a multi-session fleet; use DesiredSessions",
                ));
            }
            _ => {
                return Err(ApiError::invalid(
                    CODES.validation,
                    "ComputeCapacity needs DesiredInstances or DesiredSessions",
                ));
            }
        };
        if fleet.fleet_type == "ELASTIC" {
            return Err(ApiError::invalid(CODES.validation, "Elastic fleets have no compute capacity to update"));
        }
        if matches!(fleet.state.as_str(), "STARTING" | "STOPPING") {
            return Err(ApiError::invalid(
                CODES.invalid_state,
                format!("The fleet {} is {}.", fleet.name, fleet.state),
            ));
        }
        let desired =
            u32::try_from(desired).map_err(|_| ApiError::invalid(CODES.validation, "desired capacity is too large"))?;
        fleet.capacity.set_desired(desired, now);
    }
    let fleet = fleet.clone();
    Ok(json!({ "Fleet": fleet_json(world, &fleet) }))
}

fn start_fleet(world: &mut World, input: &Value) -> ApiResult {
    let now = world.now;
    let fleet = fleet_mut(world, input)?;
    if fleet.state != "STOPPED" {
        return Err(ApiError::invalid(
            CODES.invalid_state,
            format!("The fleet {} is {}; it can be started only when STOPPED.", fleet.name, fleet.state),
        ));
    }
    fleet.state = "STARTING".into();
    fleet.pending = Some(Pending { at: now + Duration::minutes(durations::FLEET_START), state: "RUNNING".into() });
    Ok(json!({}))
}

fn stop_fleet(world: &mut World, input: &Value) -> ApiResult {
    let now = world.now;
    let fleet = fleet_mut(world, input)?;
    if fleet.state != "RUNNING" {
        return Err(ApiError::invalid(
            CODES.invalid_state,
            format!("The fleet {} is {}; it can be stopped only when RUNNING.", fleet.name, fleet.state),
        ));
    }
    fleet.state = "STOPPING".into();
    fleet.pending = Some(Pending { at: now + Duration::minutes(durations::FLEET_STOP), state: "STOPPED".into() });
    Ok(json!({}))
}

fn builder_json(world: &World, builder: &crate::world::Builder) -> Value {
    json!({
        "Name": builder.name,
        "Arn": world.arn("appstream", &builder.account, &builder.region, &format!("image-builder/{}", builder.name)),
        "DisplayName": builder.name,
        "InstanceType": builder.instance_type,
        "Platform": "WINDOWS_SERVER_2022",
        "State": builder.state,
        "CreatedTime": epoch(builder.created_at),
        "EnableDefaultInternetAccess": false,
        "ImageBuilderErrors": [],
    })
}

fn describe_builders(world: &mut World, input: &Value) -> ApiResult {
    let names = string_list(input, "Names");
    if let Some(names) = &names
        && let Some(missing) =
            names.iter().find(|n| !world.builders.get(*n).is_some_and(|b| world.sees(&b.account, &b.region)))
    {
        return Err(ApiError::not_found(format!("The image builder {missing} does not exist.")));
    }
    let builders: Vec<_> = world
        .builders
        .values()
        .filter(|b| names.as_ref().is_none_or(|n| n.contains(&b.name)) && world.sees(&b.account, &b.region))
        .collect();
    let size = limit(input, "MaxResults", 25, 25, CODES)?;
    let (builders, next) = page(&builders, optional_str(input, "NextToken"), size, CODES)?;
    let items: Vec<Value> = builders.into_iter().map(|b| builder_json(world, b)).collect();
    Ok(json!({ "ImageBuilders": items, "NextToken": next }))
}

fn builder_mut<'a>(world: &'a mut World, input: &Value) -> Result<&'a mut crate::world::Builder, ApiError> {
    let name = required_str(input, "Name", CODES)?.to_owned();
    visible(&world.caller, &mut world.builders, &name)
        .ok_or_else(|| ApiError::not_found(format!("The image builder {name} does not exist.")))
}

fn start_builder(world: &mut World, input: &Value) -> ApiResult {
    let now = world.now;
    let builder = builder_mut(world, input)?;
    if builder.state != "STOPPED" {
        // StartImageBuilder models no state error of its own; a builder that is not STOPPED is "not available".
        return Err(ApiError::invalid(
            "ResourceNotAvailableException",
            format!("The image builder {} is {}; it can be started only when STOPPED.", builder.name, builder.state),
        ));
    }
    builder.state = "PENDING".into();
    builder.pending = Some(Pending { at: now + Duration::minutes(durations::BUILDER_START), state: "RUNNING".into() });
    let builder = builder.clone();
    Ok(json!({ "ImageBuilder": builder_json(world, &builder) }))
}

fn stop_builder(world: &mut World, input: &Value) -> ApiResult {
    let now = world.now;
    let builder = builder_mut(world, input)?;
    if builder.state != "RUNNING" {
        return Err(ApiError::invalid(
            CODES.invalid_state,
            format!("The image builder {} is {}; it can be stopped only when RUNNING.", builder.name, builder.state),
        ));
    }
    builder.state = "STOPPING".into();
    builder.pending = Some(Pending { at: now + Duration::minutes(durations::BUILDER_STOP), state: "STOPPED".into() });
    let builder = builder.clone();
    Ok(json!({ "ImageBuilder": builder_json(world, &builder) }))
}

fn image_json(world: &World, image: &Image) -> Value {
    json!({
        "Name": image.name,
        "Arn": world.arn("appstream", &image.account, &image.region, &format!("image/{}", image.name)),
        "DisplayName": image.name,
        "State": image.state,
        "Visibility": "PRIVATE",
        "ImageBuilderSupported": true,
        "Platform": "WINDOWS_SERVER_2022",
        "CreatedTime": epoch(image.created_at),
        "ImageType": if image.imported_from.is_some() { "CUSTOM" } else { "NATIVE" },
        "ImageErrors": if image.state == "FAILED" && image.imported_from.is_some() {
            json!([{ "ErrorCode": "VALIDATION_ERROR", "ErrorMessage": "The source AMI did not pass validation." }])
        } else {
            json!([])
        },
    })
}

fn describe_images(world: &mut World, input: &Value) -> ApiResult {
    let names = string_list(input, "Names");
    let arns = string_list(input, "Arns");
    if let Some(names) = &names
        && let Some(missing) =
            names.iter().find(|n| !world.images.get(*n).is_some_and(|i| world.sees(&i.account, &i.region)))
    {
        return Err(ApiError::not_found(format!("The image {missing} does not exist.")));
    }
    let images: Vec<_> = world
        .images
        .values()
        .filter(|i| names.as_ref().is_none_or(|n| n.contains(&i.name)) && world.sees(&i.account, &i.region))
        .filter(|i| {
            let arn = world.arn("appstream", &i.account, &i.region, &format!("image/{}", i.name));
            arns.as_ref().is_none_or(|a| a.contains(&arn))
        })
        .collect();
    let size = limit(input, "MaxResults", 25, 25, CODES)?;
    let (images, next) = page(&images, optional_str(input, "NextToken"), size, CODES)?;
    let items: Vec<Value> = images.into_iter().map(|i| image_json(world, i)).collect();
    Ok(json!({ "Images": items, "NextToken": next }))
}

fn export_json(task: &ExportTask) -> Value {
    json!({
        "TaskId": task.task_id,
        "ImageArn": task.image_arn,
        "AmiName": task.ami_name,
        "CreatedDate": epoch(task.created_at),
        "AmiDescription": task.ami_description,
        "State": task.state,
        "AmiId": task.ami_id,
        "TagSpecifications": task.tags,
        "ErrorDetails": task.error.iter().map(|(code, message)| json!({ "ErrorCode": code, "ErrorMessage": message })).collect::<Vec<_>>(),
    })
}

fn create_export(world: &mut World, input: &Value) -> ApiResult {
    let image_name = required_str(input, "ImageName", CODES)?.to_owned();
    let ami_name = required_str(input, "AmiName", CODES)?.to_owned();
    required_str(input, "IamRoleArn", CODES)?;
    let image = world
        .images
        .get(&image_name)
        .filter(|i| world.sees(&i.account, &i.region))
        .ok_or_else(|| ApiError::not_found(format!("The image {image_name} does not exist.")))?;
    if image.state != "AVAILABLE" {
        return Err(ApiError::invalid(
            CODES.invalid_state,
            format!("The image {image_name} is {}; only AVAILABLE images can be exported.", image.state),
        ));
    }
    let image_arn = world.arn("appstream", &image.account, &image.region, &format!("image/{image_name}"));
    let tags: BTreeMap<String, String> = input
        .get("TagSpecifications")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))).collect())
        .unwrap_or_default();
    let faults = world.faults.exports.clone();
    let roll = world.fault_rng.unit();
    let outcome = if (world.exports.len() as u64) < u64::from(faults.fail_first) {
        faults.fail_as.as_str()
    } else if roll < faults.fail_rate {
        "FAILED"
    } else if roll < faults.fail_rate + faults.time_out_rate {
        "TIMED_OUT"
    } else {
        "COMPLETED"
    };
    let task_id = {
        let hex = world.id_rng.hex(32);
        format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
    };
    let task = ExportTask {
        task_id: task_id.clone(),
        image_name,
        image_arn,
        ami_name,
        ami_description: optional_str(input, "AmiDescription").map(str::to_owned),
        created_at: world.now,
        state: "EXPORTING".into(),
        ami_id: None,
        tags,
        error: None,
        ends_at: world.now + Duration::minutes(i64::from(faults.minutes)),
        outcome: outcome.into(),
    };
    let body = json!({ "ExportImageTask": export_json(&task) });
    world.exports.insert(task_id, task);
    Ok(body)
}

fn get_export(world: &mut World, input: &Value) -> ApiResult {
    let id = required_str(input, "TaskId", CODES)?;
    let task = world
        .exports
        .get(id)
        .ok_or_else(|| ApiError::not_found(format!("The export image task {id} does not exist.")))?;
    Ok(json!({ "ExportImageTask": export_json(task) }))
}

/// Filter names the simulator supports for `ListExportImageTasks` (the API reference does not list them).
pub const EXPORT_FILTERS: [&str; 3] = ["State", "ImageName", "AmiName"];

fn list_exports(world: &mut World, input: &Value) -> ApiResult {
    let filters = input.get("Filters").and_then(Value::as_array).cloned().unwrap_or_default();
    // A task is where its image is (`arn:aws:appstream:<region>:<account>:image/<name>`).
    let mut tasks: Vec<&ExportTask> = world
        .exports
        .values()
        .filter(|t| {
            let parts: Vec<&str> = t.image_arn.split(':').collect();
            parts.len() < 5 || world.sees(parts[4], parts[3])
        })
        .collect();
    tasks.sort_by(|a, b| (a.created_at, &a.task_id).cmp(&(b.created_at, &b.task_id)));
    let mut items = Vec::new();
    for task in tasks {
        let mut keep = true;
        for filter in &filters {
            let name = required_str(filter, "Name", CODES)?;
            let values = string_list(filter, "Values").unwrap_or_default();
            let field = match name {
                "State" => &task.state,
                "ImageName" => &task.image_name,
                "AmiName" => &task.ami_name,
                other => {
                    return Err(ApiError::invalid(
                        CODES.validation,
                        format!("filter name {other:?} is not supported ({})", EXPORT_FILTERS.join(", ")),
                    ));
                }
            };
            keep &= values.contains(field);
        }
        if keep {
            items.push(task);
        }
    }
    let size = limit(input, "MaxResults", 50, 500, CODES)?;
    let (tasks, next) = page(&items, optional_str(input, "NextToken"), size, CODES)?;
    let items: Vec<Value> = tasks.into_iter().map(export_json).collect();
    Ok(json!({ "ExportImageTasks": items, "NextToken": next }))
}

fn create_imported_image(world: &mut World, input: &Value) -> ApiResult {
    let name = required_str(input, "Name", CODES)?.to_owned();
    let source = required_str(input, "SourceAmiId", CODES)?.to_owned();
    required_str(input, "IamRoleArn", CODES)?;
    if world.images.contains_key(&name) {
        return Err(ApiError::invalid("ResourceAlreadyExistsException", format!("The image {name} already exists.")));
    }
    let now = world.now;
    let faults = world.faults.exports.clone();
    let minutes = i64::from(faults.import_minutes);
    let ends = if world.fault_rng.chance(faults.import_fail_rate) { "FAILED" } else { "AVAILABLE" };
    let image = Image {
        name: name.clone(),
        account: world.account.clone(),
        region: world.region.clone(),
        state: "IMPORTING".into(),
        created_at: now,
        tags: BTreeMap::new(),
        pending: vec![
            Pending { at: now + Duration::minutes(minutes), state: "VALIDATING".into() },
            Pending { at: now + Duration::minutes(2 * minutes), state: ends.into() },
        ],
        imported_from: Some(source),
    };
    let body = json!({ "Image": image_json(world, &image) });
    world.images.insert(name, image);
    Ok(body)
}

/// The tags of the fleet, image builder or image `ResourceArn` names.
fn tags_of<'w>(world: &'w mut World, input: &Value) -> Result<&'w mut BTreeMap<String, String>, ApiError> {
    let arn = required_str(input, "ResourceArn", CODES)?;
    let missing = || ApiError::not_found(format!("The resource {arn} does not exist."));
    let (kind, name) = arn.rsplit_once(':').and_then(|(_, r)| r.split_once('/')).ok_or_else(missing)?;
    match kind {
        "fleet" => visible(&world.caller, &mut world.fleets, name).map(|f| &mut f.tags),
        "image-builder" => visible(&world.caller, &mut world.builders, name).map(|b| &mut b.tags),
        "image" => visible(&world.caller, &mut world.images, name).map(|i| &mut i.tags),
        _ => None,
    }
    .ok_or_else(missing)
}

fn list_tags(world: &mut World, input: &Value) -> ApiResult {
    Ok(json!({ "Tags": tags_of(world, input)? }))
}

/// `TagResource`: `Tags` (a map, required) added to or overwriting the resource's.
fn tag_resource(world: &mut World, input: &Value) -> ApiResult {
    let tags: BTreeMap<String, String> = input
        .get("Tags")
        .and_then(Value::as_object)
        .map(|tags| tags.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        .filter(|tags: &BTreeMap<String, String>| !tags.is_empty())
        .ok_or_else(|| ApiError::invalid(CODES.validation, "Tags must hold at least one tag"))?;
    tags_of(world, input)?.extend(tags);
    Ok(json!({}))
}

/// `UntagResource`: the `TagKeys` (required) removed; keys the resource does not carry are ignored.
fn untag_resource(world: &mut World, input: &Value) -> ApiResult {
    let keys = super::tag_keys(input, CODES)?;
    super::remove_tags(tags_of(world, input)?, keys)
}

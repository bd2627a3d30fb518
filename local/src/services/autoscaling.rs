//! Application Auto Scaling (awsJson1_1, `AnyScaleFrontendService.<Operation>`): `DescribeScalableTargets`,
//! answering for the pools and fleets the estate marks `application_autoscaling: true`, so the functions can
//! see that another owner scales them.

use super::{Codes, epoch, limit, optional_str, page, required_str, string_list};
use crate::error::{ApiError, ApiResult};
use crate::world::World;
use serde_json::{Value, json};

pub const CODES: Codes = Codes { validation: "ValidationException", invalid_state: "ConcurrentUpdateException" };

pub fn handle(world: &mut World, operation: &str, input: &Value) -> ApiResult {
    if operation != "DescribeScalableTargets" {
        return Err(ApiError::invalid(
            "UnknownOperationException",
            format!("the simulator does not implement Application Auto Scaling {operation}"),
        ));
    }
    let namespace = required_str(input, "ServiceNamespace", CODES)?;
    let resource_ids = string_list(input, "ResourceIds");
    let dimension = optional_str(input, "ScalableDimension");
    let mut targets = Vec::new();
    match namespace {
        "workspaces" => {
            for pool in world.pools.values().filter(|p| p.application_autoscaling) {
                targets.push(json!({
                    "ServiceNamespace": "workspaces",
                    "ResourceId": format!("workspacespool/{}", pool.id),
                    "ScalableDimension": "workspaces:workspacespool:DesiredUserSessions",
                    "MinCapacity": 1,
                    "MaxCapacity": 100,
                    "RoleARN": format!("arn:aws:iam::{}:role/aws-service-role/workspaces.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_WorkSpacesPool", pool.account),
                    "CreationTime": epoch(pool.created_at),
                }));
            }
        }
        "appstream" => {
            for fleet in world.fleets.values().filter(|f| f.application_autoscaling) {
                targets.push(json!({
                    "ServiceNamespace": "appstream",
                    "ResourceId": format!("fleet/{}", fleet.name),
                    "ScalableDimension": "appstream:fleet:DesiredCapacity",
                    "MinCapacity": 1,
                    "MaxCapacity": 100,
                    "RoleARN": format!("arn:aws:iam::{}:role/aws-service-role/appstream.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_AppStreamFleet", fleet.account),
                    "CreationTime": epoch(fleet.created_at),
                }));
            }
        }
        _ => {}
    }
    targets.retain(|t| {
        resource_ids.as_ref().is_none_or(|ids| ids.iter().any(|id| t["ResourceId"] == *id))
            && dimension.is_none_or(|d| t["ScalableDimension"] == d)
    });
    let size = limit(input, "MaxResults", 50, 50, CODES)?;
    let (targets, next) = page(&targets, optional_str(input, "NextToken"), size, CODES)?;
    Ok(json!({ "ScalableTargets": targets, "NextToken": next }))
}

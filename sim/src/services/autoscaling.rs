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
    // (namespace, resource prefix, dimension, service-linked role suffix) per namespace
    let (prefix, dimension_name, role) = match namespace {
        "workspaces" => (
            "workspacespool",
            "workspaces:workspacespool:DesiredUserSessions",
            "workspaces.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_WorkSpacesPool",
        ),
        "appstream" => (
            "fleet",
            "appstream:fleet:DesiredCapacity",
            "appstream.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_AppStreamFleet",
        ),
        _ => ("", "", ""),
    };
    let registered: Vec<(&str, &str, chrono::DateTime<chrono::Utc>)> = match namespace {
        "workspaces" => world
            .pools
            .values()
            .filter(|p| p.application_autoscaling && world.sees(&p.account, &p.region))
            .map(|p| (p.id.as_str(), p.account.as_str(), p.created_at))
            .collect(),
        "appstream" => world
            .fleets
            .values()
            .filter(|f| f.application_autoscaling && world.sees(&f.account, &f.region))
            .map(|f| (f.name.as_str(), f.account.as_str(), f.created_at))
            .collect(),
        _ => Vec::new(),
    };
    let mut targets: Vec<Value> = registered
        .into_iter()
        .map(|(id, account, created)| {
            json!({
                "ServiceNamespace": namespace,
                "ResourceId": format!("{prefix}/{id}"),
                "ScalableDimension": dimension_name,
                "MinCapacity": 1,
                "MaxCapacity": 100,
                "RoleARN": format!("arn:aws:iam::{account}:role/aws-service-role/{role}"),
                "CreationTime": epoch(created),
            })
        })
        .collect();
    targets.retain(|t| {
        resource_ids.as_ref().is_none_or(|ids| ids.iter().any(|id| t["ResourceId"] == *id))
            && dimension.is_none_or(|d| t["ScalableDimension"] == d)
    });
    let size = limit(input, "MaxResults", 50, 50, CODES)?;
    let (targets, next) = page(&targets, optional_str(input, "NextToken"), size, CODES)?;
    Ok(json!({ "ScalableTargets": targets, "NextToken": next }))
}

//! AWS Organizations (awsJson1_1, `AWSOrganizationsV20161128.<Operation>`): `ListAccountsForParent` and
//! `ListChildren`, answering from the estate's `organization` for its management account (the hub) only, as AWS
//! answers a delegated administrator or the management account and refuses every other member.

use super::{Codes, limit, optional_str, page, required_str};
use crate::error::{ApiError, ApiResult};
use crate::estate::OrganizationSpec;
use crate::world::World;
use serde_json::{Value, json};

pub const CODES: Codes =
    Codes { validation: "InvalidInputException", invalid_state: "ConcurrentModificationException" };

pub fn handle(world: &mut World, operation: &str, input: &Value) -> ApiResult {
    let Some(organization) = &world.organization else {
        return Err(ApiError::invalid(
            "AWSOrganizationsNotInUseException",
            "Your account is not a member of an organization.",
        ));
    };
    if world.caller.as_ref().is_some_and(|(account, _)| *account != world.account) {
        return Err(ApiError::invalid("AccessDeniedException", "You don't have permissions to access this resource."));
    }
    let parent = required_str(input, "ParentId", CODES)?;
    let not_found = || {
        ApiError::invalid("ParentNotFoundException", "We can't find a root or OU with the ParentId that you specified.")
    };
    let unit = organization.units.iter().find(|u| u.id == parent);
    if unit.is_none() && parent != organization.root {
        return Err(not_found());
    }
    match operation {
        "ListAccountsForParent" => {
            let accounts: Vec<Value> = match unit {
                Some(unit) => unit
                    .accounts
                    .iter()
                    .map(|id| account(world, organization, id, unit.suspended.contains(id)))
                    .collect(),
                None => organization.accounts.iter().map(|id| account(world, organization, id, false)).collect(),
            };
            let size = limit(input, "MaxResults", 20, 20, CODES)?;
            let (accounts, next) = page(&accounts, optional_str(input, "NextToken"), size, CODES)?;
            Ok(json!({ "Accounts": accounts, "NextToken": next }))
        }
        "ListChildren" => {
            let children: Vec<Value> = match required_str(input, "ChildType", CODES)? {
                "ORGANIZATIONAL_UNIT" => organization
                    .units
                    .iter()
                    .filter(|u| u.parent.as_deref().unwrap_or(&organization.root) == parent)
                    .map(|u| json!({ "Id": u.id, "Type": "ORGANIZATIONAL_UNIT" }))
                    .collect(),
                "ACCOUNT" => unit
                    .map_or(&organization.accounts, |u| &u.accounts)
                    .iter()
                    .map(|id| json!({ "Id": id, "Type": "ACCOUNT" }))
                    .collect(),
                other => {
                    return Err(ApiError::invalid(
                        CODES.validation,
                        format!("ChildType {other:?} is not ACCOUNT or ORGANIZATIONAL_UNIT"),
                    ));
                }
            };
            let size = limit(input, "MaxResults", 20, 20, CODES)?;
            let (children, next) = page(&children, optional_str(input, "NextToken"), size, CODES)?;
            Ok(json!({ "Children": children, "NextToken": next }))
        }
        other => Err(ApiError::invalid(
            "UnknownOperationException",
            format!("the simulator does not implement AWS Organizations {other}"),
        )),
    }
}

fn account(world: &World, organization: &OrganizationSpec, id: &str, suspended: bool) -> Value {
    let status = if suspended { "SUSPENDED" } else { "ACTIVE" };
    json!({
        "Id": id,
        "Arn": format!("arn:aws:organizations::{}:account/{}/{id}", world.account, organization.id),
        "Email": format!("aws+{id}@example.com"),
        "Name": format!("account-{id}"),
        "Status": status,
        "State": status,
        "JoinedMethod": "INVITED",
        "JoinedTimestamp": super::epoch(world.now - chrono::Duration::days(365)),
    })
}

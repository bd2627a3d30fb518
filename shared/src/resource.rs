//! Resource identity. Every resource the product touches is named by account, region, kind and id from day
//! one, so keys stay the same when hub-and-spoke operation across accounts and regions arrives.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of EUC resource an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceKind {
    Workspace,
    /// A WorkSpaces directory (the remediator's circuit breaker is per directory).
    Directory,
    WorkspacesPool,
    Fleet,
    ImageBuilder,
    Image,
    ExportTask,
    Environment,
    Device,
    SoftwareSet,
    /// A software-set rollout (a softwareset-roller work item).
    Rollout,
}

impl ResourceKind {
    /// Every kind.
    pub const ALL: [ResourceKind; 11] = [
        ResourceKind::Workspace,
        ResourceKind::Directory,
        ResourceKind::WorkspacesPool,
        ResourceKind::Fleet,
        ResourceKind::ImageBuilder,
        ResourceKind::Image,
        ResourceKind::ExportTask,
        ResourceKind::Environment,
        ResourceKind::Device,
        ResourceKind::SoftwareSet,
        ResourceKind::Rollout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Workspace => "workspace",
            ResourceKind::Directory => "directory",
            ResourceKind::WorkspacesPool => "workspaces-pool",
            ResourceKind::Fleet => "fleet",
            ResourceKind::ImageBuilder => "image-builder",
            ResourceKind::Image => "image",
            ResourceKind::ExportTask => "export-task",
            ResourceKind::Environment => "environment",
            ResourceKind::Device => "device",
            ResourceKind::SoftwareSet => "software-set",
            ResourceKind::Rollout => "rollout",
        }
    }

    /// The AWS service that owns this kind (the service part of ledger keys).
    pub fn service(self) -> &'static str {
        match self {
            ResourceKind::Workspace | ResourceKind::Directory | ResourceKind::WorkspacesPool => "workspaces",
            ResourceKind::Fleet | ResourceKind::ImageBuilder | ResourceKind::Image | ResourceKind::ExportTask => {
                "appstream"
            }
            ResourceKind::Environment | ResourceKind::Device | ResourceKind::SoftwareSet | ResourceKind::Rollout => {
                "thinclient"
            }
        }
    }
}

/// The account and region an ARN names (`arn:<partition>:<service>:<region>:<account>:…`); an ARN without
/// them (or none at all) gives `000000000000` and `fallback_region`.
pub fn account_region(arn: &str, fallback_region: &str) -> (String, String) {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        [_, _, _, region, account, ..] if !account.is_empty() && !region.is_empty() => {
            ((*account).to_owned(), (*region).to_owned())
        }
        _ => ("000000000000".to_owned(), fallback_region.to_owned()),
    }
}

/// A resource in one account and region. Components never contain `#`, the ledger's key separator.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourceRef {
    account: String,
    region: String,
    kind: ResourceKind,
    id: String,
}

impl ResourceRef {
    /// Checks that the account is 12 digits and that region and id are non-empty and free of `#`.
    pub fn new(
        account: impl Into<String>,
        region: impl Into<String>,
        kind: ResourceKind,
        id: impl Into<String>,
    ) -> Result<Self, String> {
        let (account, region, id) = (account.into(), region.into(), id.into());
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("account {account:?} is not a 12-digit AWS account id"));
        }
        for (what, value) in [("region", &region), ("id", &id)] {
            if value.is_empty() || value.contains('#') {
                return Err(format!("{what} {value:?} must be non-empty and must not contain '#'"));
            }
        }
        Ok(Self { account, region, kind, id })
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn kind(&self) -> ResourceKind {
        self.kind
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The stable key used in the ledger: `<service>#<account>#<region>#<kind>#<id>`.
    pub fn key(&self) -> String {
        format!("{}#{}#{}#{}#{}", self.kind.service(), self.account, self.region, self.kind.as_str(), self.id)
    }

    /// The resource a [`ResourceRef::key`] names.
    pub fn from_key(key: &str) -> Result<Self, String> {
        let parts: Vec<&str> = key.split('#').collect();
        let [service, account, region, kind, id] = parts.as_slice() else {
            return Err(format!("{key:?} is not a resource key (service#account#region#kind#id)"));
        };
        let kind = ResourceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == *kind && k.service() == *service)
            .ok_or_else(|| format!("{key:?} names an unknown resource kind"))?;
        Self::new(*account, *region, kind, *id)
    }
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} in {}/{}", self.kind.as_str(), self.id, self.account, self.region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_service_account_region_kind_and_id() {
        let pool = ResourceRef::new("123456789012", "eu-central-1", ResourceKind::WorkspacesPool, "wspool-abc123");
        assert_eq!(
            pool.map(|p| p.key()),
            Ok("workspaces#123456789012#eu-central-1#workspaces-pool#wspool-abc123".into())
        );
    }

    #[test]
    fn malformed_identities_are_rejected() {
        assert!(ResourceRef::new("12345", "eu-central-1", ResourceKind::Fleet, "f").is_err());
        for kind in ResourceKind::ALL {
            let resource = ResourceRef::new("123456789012", "eu-central-1", kind, "x-1").unwrap();
            assert_eq!(ResourceRef::from_key(&resource.key()), Ok(resource));
        }
        assert!(ResourceRef::from_key("workspaces#123456789012#eu-central-1#fleet#f").is_err());
        assert!(ResourceRef::from_key("a#b").is_err());
        assert!(ResourceRef::new("123456789012", "", ResourceKind::Fleet, "f").is_err());
        assert!(ResourceRef::new("123456789012", "eu-central-1", ResourceKind::Fleet, "a#b").is_err());
    }
}

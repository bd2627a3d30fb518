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

/// An account and a region: where a resource lives, where an event comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Place {
    pub account: String,
    pub region: String,
}

impl Place {
    /// The account used when an event or an ARN does not say.
    pub const UNKNOWN_ACCOUNT: &'static str = "000000000000";

    /// The account and region an ARN names (`arn:<partition>:<service>:<region>:<account>:…`); an ARN without
    /// them (or none at all) gives `000000000000` and `fallback_region`.
    pub fn of_arn(arn: &str, fallback_region: &str) -> Self {
        let parts: Vec<&str> = arn.split(':').collect();
        match parts.as_slice() {
            [_, _, _, region, account, ..] if !account.is_empty() && !region.is_empty() => {
                Place { account: (*account).to_owned(), region: (*region).to_owned() }
            }
            _ => Place { account: Self::UNKNOWN_ACCOUNT.to_owned(), region: fallback_region.to_owned() },
        }
    }

    /// The resource `id` of `kind` here.
    pub fn resource(&self, kind: ResourceKind, id: impl Into<String>) -> Result<ResourceRef, ResourceError> {
        ResourceRef::new(&self.account, &self.region, kind, id)
    }
}

/// Why a resource reference or key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error("account {0:?} is not a 12-digit AWS account id")]
    Account(String),
    #[error("{what} {value:?} must be non-empty and must not contain '#'")]
    Component { what: &'static str, value: String },
    #[error("{0:?} is not a resource key (service#account#region#kind#id)")]
    NotAKey(String),
    #[error("{0:?} names an unknown resource kind")]
    UnknownKind(String),
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
    ) -> Result<Self, ResourceError> {
        let (account, region, id) = (account.into(), region.into(), id.into());
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ResourceError::Account(account));
        }
        for (what, value) in [("region", &region), ("id", &id)] {
            if value.is_empty() || value.contains('#') {
                return Err(ResourceError::Component { what, value: value.clone() });
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
    pub fn from_key(key: &str) -> Result<Self, ResourceError> {
        let parts: Vec<&str> = key.split('#').collect();
        let [service, account, region, kind, id] = parts.as_slice() else {
            return Err(ResourceError::NotAKey(key.to_owned()));
        };
        let kind = ResourceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == *kind && k.service() == *service)
            .ok_or_else(|| ResourceError::UnknownKind(key.to_owned()))?;
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

//! The estate's AWS organization (`organization:` in the estate file): its root, its units and their accounts,
//! which the simulated AWS Organizations answers from (`services/organizations.rs`).

use crate::estate::{EstateError, invalid};
use serde::{Deserialize, Serialize};

/// An organization: its id, its root and its organizational units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationSpec {
    /// `o-` and 10 to 32 lowercase letters or digits.
    pub id: String,
    /// `r-` and 4 to 32 lowercase letters or digits.
    pub root: String,
    /// Accounts directly in the root.
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub units: Vec<UnitSpec>,
}

/// An organizational unit: its parent (the root when not given), its accounts and those of them suspended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitSpec {
    /// `ou-<root id without r->-<8 to 32 lowercase letters or digits>`.
    pub id: String,
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Accounts of the unit that are suspended (listed with status `SUSPENDED`).
    #[serde(default)]
    pub suspended: Vec<String>,
}

impl OrganizationSpec {
    pub(crate) fn validate(&self) -> Result<(), EstateError> {
        let word = |text: &str, min: usize| {
            text.len() >= min && text.len() <= 32 && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        };
        if !self.id.strip_prefix("o-").is_some_and(|rest| word(rest, 10)) {
            return Err(invalid(
                "organization.id".into(),
                "is not an organization id (o- and 10 to 32 letters or digits)",
            ));
        }
        let Some(root) = self.root.strip_prefix("r-").filter(|rest| word(rest, 4)) else {
            return Err(invalid("organization.root".into(), "is not a root id (r- and 4 to 32 letters or digits)"));
        };
        let known: Vec<&str> = self.units.iter().map(|u| u.id.as_str()).chain([self.root.as_str()]).collect();
        for (i, unit) in self.units.iter().enumerate() {
            let in_root = unit.id.strip_prefix("ou-").and_then(|rest| rest.split_once('-'));
            if !in_root.is_some_and(|(r, rest)| r == root && word(rest, 8)) {
                return Err(invalid(format!("organization.units[{i}].id"), format!("is not a unit id (ou-{root}-…)")));
            }
            if let Some(parent) = &unit.parent
                && !known.contains(&parent.as_str())
            {
                return Err(invalid(format!("organization.units[{i}].parent"), format!("no unit or root {parent:?}")));
            }
            if let Some(stray) = unit.suspended.iter().find(|a| !unit.accounts.contains(a)) {
                return Err(invalid(
                    format!("organization.units[{i}].suspended"),
                    format!("{stray} is not in accounts"),
                ));
            }
        }
        Ok(())
    }
}

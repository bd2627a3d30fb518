//! Where the functions work: `targets` names accounts (by id) and AWS Organizations units (their accounts are
//! discovered at every tick), the regions in each, the spoke role the hub assumes there, and per-target dry-run
//! and exclusions. A document without `targets` manages the hub's own account and region, as before.
//!
//! [`Targets::shards`] turns the targets and the accounts discovered in each unit into the shards a tick fans
//! out to: one per account × region, each with its own dry-run setting. It is pure; discovery is the caller's.

use super::Validator;
use crate::resource::Place;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The spoke role's name when the document does not say (`spoke.yaml`'s default).
pub const DEFAULT_SPOKE_ROLE: &str = "EUCAutopilotSpoke";

/// `targets` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTargets {
    pub role_name: Option<String>,
    pub external_id: Option<String>,
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub accounts: Vec<RawTarget>,
    #[serde(default)]
    pub organizational_units: Vec<RawTarget>,
    #[serde(default)]
    pub exclude: Vec<RawExclusion>,
}

/// One account or unit as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub id: String,
    #[serde(default)]
    pub regions: Vec<String>,
    pub dry_run: Option<bool>,
}

/// One exclusion as written: an account, or one region of it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExclusion {
    pub account: String,
    pub region: Option<String>,
}

/// The validated targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Targets {
    /// The role the hub's functions assume in every target account.
    pub role_name: String,
    /// The external id the spoke role's trust requires, if any.
    pub external_id: Option<String>,
    pub accounts: Vec<Target>,
    pub organizational_units: Vec<Target>,
    pub exclude: Vec<Exclusion>,
}

/// An account or an organisational unit (or the organisation's root), the regions to work in there, and its
/// dry-run setting (`None`: the document's default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub id: String,
    pub regions: Vec<String>,
    pub dry_run: Option<bool>,
}

/// An account left alone, in every region or in one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exclusion {
    pub account: String,
    pub region: Option<String>,
}

impl Exclusion {
    fn covers(&self, place: &Place) -> bool {
        self.account == place.account && self.region.as_ref().is_none_or(|region| *region == place.region)
    }
}

/// One account × region a tick fans out to, and whether it runs dry there (`None`: the document's default).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ShardTarget {
    pub place: Place,
    pub dry_run: Option<bool>,
}

impl Targets {
    /// The shards of these targets, sorted and each once: every listed account in its regions, and every account
    /// `discovered` in a listed unit (by unit id) in the unit's regions, less the exclusions. An account listed by
    /// itself keeps its own settings over a unit's; an account in two units takes the first unit's.
    pub fn shards<'a>(
        &'a self,
        discovered: &'a BTreeMap<String, Vec<String>>,
    ) -> impl Iterator<Item = ShardTarget> + 'a {
        let mut settings: BTreeMap<&str, &Target> = BTreeMap::new();
        for unit in &self.organizational_units {
            for account in discovered.get(&unit.id).into_iter().flatten() {
                settings.entry(account.as_str()).or_insert(unit);
            }
        }
        for account in &self.accounts {
            settings.insert(account.id.as_str(), account);
        }
        // One target per account (the map), each region once: every shard once, in (account, region) order,
        // made as it is taken — a dispatch holds ten at a time, not ten thousand.
        settings.into_iter().flat_map(move |(account, target)| {
            let mut regions: Vec<&String> = target.regions.iter().collect();
            regions.sort();
            regions.dedup();
            regions.into_iter().filter_map(move |region| {
                let place = Place { account: account.to_owned(), region: region.clone() };
                (!self.exclude.iter().any(|exclusion| exclusion.covers(&place)))
                    .then_some(ShardTarget { place, dry_run: target.dry_run })
            })
        })
    }

    /// How an event from `place` is worked: excluded, or as a target with its dry-run setting. An account
    /// listed by itself is worked in its regions with its own setting; otherwise the first unit whose
    /// `discovered` accounts hold it, in the unit's regions with the unit's setting (as [`Self::shards`] makes
    /// them); any other account is not a target.
    pub fn site_of(&self, place: &Place, discovered: &BTreeMap<String, Vec<String>>) -> SiteOf {
        if self.exclude.iter().any(|exclusion| exclusion.covers(place)) {
            return SiteOf::Excluded;
        }
        let target = self.accounts.iter().find(|a| a.id == place.account).or_else(|| {
            self.organizational_units
                .iter()
                .find(|unit| discovered.get(&unit.id).is_some_and(|accounts| accounts.contains(&place.account)))
        });
        match target {
            Some(target) if target.regions.contains(&place.region) => SiteOf::Target { dry_run: target.dry_run },
            _ => SiteOf::Excluded,
        }
    }

    /// Whether an event from an account not listed by itself needs the units' accounts to be placed.
    pub fn needs_units_for(&self, place: &Place) -> bool {
        !self.organizational_units.is_empty() && !self.accounts.iter().any(|a| a.id == place.account)
    }

    /// The units whose accounts must be discovered before [`Self::shards`].
    pub fn units(&self) -> impl Iterator<Item = &str> {
        self.organizational_units.iter().map(|unit| unit.id.as_str())
    }
}

/// How an event from a place is worked ([`Targets::site_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteOf {
    /// Not a target, or excluded: the event is ignored.
    Excluded,
    /// A target, with its own dry-run setting when it has one.
    Target { dry_run: Option<bool> },
}

/// Whether `id` is an AWS account id (12 digits).
pub fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `id` names an organisational unit (`ou-<root>-<unit>`) or an organisation's root (`r-<root>`).
pub fn is_unit_id(id: &str) -> bool {
    let lower_alnum = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if let Some(root) = id.strip_prefix("r-") {
        return (4..=32).contains(&root.len()) && lower_alnum(root);
    }
    let Some(rest) = id.strip_prefix("ou-") else { return false };
    let Some((root, unit)) = rest.split_once('-') else { return false };
    (4..=32).contains(&root.len()) && (8..=32).contains(&unit.len()) && lower_alnum(root) && lower_alnum(unit)
}

/// Whether `name` has the shape of an AWS region (`eu-central-1`, `us-gov-west-1`).
pub fn is_region(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts.last().is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `name` is a valid IAM role name (1 to 64 of letters, digits and `+=,.@_-`).
fn is_role_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

/// Whether `id` is a valid STS external id (2 to 1,224 of letters, digits and `+=,.@:/_-`).
fn is_external_id(id: &str) -> bool {
    (2..=1224).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@:/_-".contains(&b))
}

pub(super) fn validate(v: &mut Validator, raw: RawTargets) -> Targets {
    let role_name = raw.role_name.unwrap_or_else(|| DEFAULT_SPOKE_ROLE.to_owned());
    if !is_role_name(&role_name) {
        v.error("targets.role_name", format!("{role_name:?} is not an IAM role name (1 to 64 of A-Z a-z 0-9 +=,.@_-)"));
    }
    if let Some(id) = &raw.external_id
        && !is_external_id(id)
    {
        v.error("targets.external_id", "must be 2 to 1,224 of A-Z a-z 0-9 +=,.@:/_-");
    }
    let default_regions = regions(v, "targets.regions", raw.regions);
    let list = |v: &mut Validator, kind: &str, raw: Vec<RawTarget>, valid: fn(&str) -> bool, shape: &str| {
        let mut seen = BTreeSet::new();
        let mut targets = Vec::new();
        for (index, target) in raw.into_iter().enumerate() {
            let path = format!("targets.{kind}[{index}]");
            if !valid(&target.id) {
                v.error(format!("{path}.id"), format!("{:?} is not {shape}", target.id));
            } else if !seen.insert(target.id.clone()) {
                v.error(format!("{path}.id"), format!("{} is listed twice", target.id));
            }
            let own = regions(v, &format!("{path}.regions"), target.regions);
            let regions = if own.is_empty() { default_regions.clone() } else { own };
            if regions.is_empty() {
                v.error(path.clone(), "names no region (give it regions, or targets.regions for every target)");
            }
            targets.push(Target { id: target.id, regions, dry_run: target.dry_run });
        }
        targets
    };
    let accounts = list(v, "accounts", raw.accounts, is_account_id, "an account id (12 digits)");
    let organizational_units = list(
        v,
        "organizational_units",
        raw.organizational_units,
        is_unit_id,
        "an organisational unit id (ou-…) or a root id (r-…)",
    );
    if accounts.is_empty() && organizational_units.is_empty() {
        v.error("targets", "names no account and no organizational unit (leave targets out to manage this account)");
    }
    let mut exclude = Vec::new();
    for (index, exclusion) in raw.exclude.into_iter().enumerate() {
        let path = format!("targets.exclude[{index}]");
        if !is_account_id(&exclusion.account) {
            v.error(format!("{path}.account"), format!("{:?} is not an account id (12 digits)", exclusion.account));
        }
        if let Some(region) = &exclusion.region
            && !is_region(region)
        {
            v.error(format!("{path}.region"), format!("{region:?} is not a region (e.g. eu-central-1)"));
        }
        exclude.push(Exclusion { account: exclusion.account, region: exclusion.region });
    }
    Targets { role_name, external_id: raw.external_id, accounts, organizational_units, exclude }
}

fn regions(v: &mut Validator, path: &str, raw: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    for (index, region) in raw.iter().enumerate() {
        if !is_region(region) {
            v.error(format!("{path}[{index}]"), format!("{region:?} is not a region (e.g. eu-central-1)"));
        } else if !seen.insert(region.as_str()) {
            v.error(format!("{path}[{index}]"), format!("{region} is listed twice"));
        }
    }
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(account: &str, region: &str) -> Place {
        Place { account: account.into(), region: region.into() }
    }

    #[test]
    fn ids_and_regions_are_recognised() {
        assert!(is_account_id("111122223333"));
        assert!(!is_account_id("11112222333") && !is_account_id("11112222333x"));
        assert!(is_unit_id("ou-ab12-cdef3456") && is_unit_id("r-ab12"));
        assert!(!is_unit_id("ou-ab12") && !is_unit_id("ou-AB12-cdef3456") && !is_unit_id("r-a"));
        assert!(is_region("eu-central-1") && is_region("us-gov-west-1") && is_region("ap-southeast-2"));
        assert!(!is_region("eu-central") && !is_region("EU-central-1") && !is_region("e-central-1"));
    }

    #[test]
    fn an_event_is_worked_only_where_a_target_holds_its_account_and_region() {
        let target = |id: &str, regions: &[&str], dry_run: Option<bool>| Target {
            id: id.into(),
            regions: regions.iter().map(|r| (*r).to_owned()).collect(),
            dry_run,
        };
        let targets = Targets {
            role_name: DEFAULT_SPOKE_ROLE.into(),
            external_id: None,
            accounts: vec![target("111111111111", &["eu-central-1"], Some(false))],
            organizational_units: vec![
                target("ou-ab12-aaaaaaaa", &["eu-central-1"], Some(true)),
                target("ou-ab12-bbbbbbbb", &["eu-west-1"], None),
            ],
            exclude: vec![Exclusion { account: "555555555555".into(), region: None }],
        };
        let discovered: BTreeMap<String, Vec<String>> = [
            ("ou-ab12-aaaaaaaa".to_owned(), vec!["111111111111".to_owned(), "555555555555".to_owned()]),
            ("ou-ab12-bbbbbbbb".to_owned(), vec!["666666666666".to_owned()]),
        ]
        .into();
        let site = |account: &str, region: &str| targets.site_of(&place(account, region), &discovered);
        // listed by itself: its own regions and setting, whatever unit it is in
        assert_eq!(site("111111111111", "eu-central-1"), SiteOf::Target { dry_run: Some(false) });
        assert_eq!(site("111111111111", "eu-west-1"), SiteOf::Excluded);
        // a unit's account: the unit's regions and setting
        assert_eq!(site("666666666666", "eu-west-1"), SiteOf::Target { dry_run: None });
        assert_eq!(site("666666666666", "ap-southeast-2"), SiteOf::Excluded, "a region the unit does not list");
        // in no targeted unit, or excluded: not a target (was: any unlisted account, in any region)
        assert_eq!(site("444444444444", "eu-central-1"), SiteOf::Excluded);
        assert_eq!(site("555555555555", "eu-central-1"), SiteOf::Excluded);
        assert!(targets.needs_units_for(&place("444444444444", "eu-central-1")));
        assert!(!targets.needs_units_for(&place("111111111111", "eu-central-1")));
    }

    #[test]
    fn shards_are_accounts_and_discovered_unit_members_in_their_regions_less_exclusions() {
        let regions = |r: &[&str]| r.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let targets = Targets {
            role_name: DEFAULT_SPOKE_ROLE.into(),
            external_id: None,
            accounts: vec![Target {
                id: "111111111111".into(),
                regions: regions(&["eu-west-1"]),
                dry_run: Some(false),
            }],
            organizational_units: vec![Target {
                id: "ou-ab12-cdef3456".into(),
                regions: regions(&["eu-central-1", "eu-west-1"]),
                dry_run: Some(true),
            }],
            exclude: vec![Exclusion { account: "333333333333".into(), region: Some("eu-west-1".into()) }],
        };
        let discovered: BTreeMap<String, Vec<String>> = [(
            "ou-ab12-cdef3456".to_owned(),
            vec!["111111111111".to_owned(), "222222222222".to_owned(), "333333333333".to_owned()],
        )]
        .into();
        let found: Vec<(Place, Option<bool>)> = targets.shards(&discovered).map(|s| (s.place, s.dry_run)).collect();
        assert_eq!(
            found,
            vec![
                // listed by itself: its own regions and setting win over the unit's
                (place("111111111111", "eu-west-1"), Some(false)),
                (place("222222222222", "eu-central-1"), Some(true)),
                (place("222222222222", "eu-west-1"), Some(true)),
                (place("333333333333", "eu-central-1"), Some(true)),
            ]
        );
        // a unit not discovered (yet) adds nothing
        assert_eq!(targets.shards(&BTreeMap::new()).count(), 1);
    }

    #[test]
    fn a_document_names_its_targets_and_every_mistake_in_them_is_reported() {
        let policy = crate::policy::Policy::from_yaml(
            "version: 1\ntargets:\n  regions: [eu-central-1]\n  accounts:\n    - id: \"111122223333\"\n      dry_run: true\n  organizational_units:\n    - id: ou-ab12-cdef3456\n      regions: [eu-west-1, eu-central-1]\n  exclude:\n    - account: \"444455556666\"\n",
        )
        .expect("valid targets");
        let targets = policy.targets.expect("targets");
        assert_eq!(targets.role_name, DEFAULT_SPOKE_ROLE);
        assert_eq!(targets.accounts[0].regions, vec!["eu-central-1"]);
        assert_eq!(targets.accounts[0].dry_run, Some(true));
        assert_eq!(targets.organizational_units[0].regions, vec!["eu-west-1", "eu-central-1"]);

        let error = crate::policy::Policy::from_yaml(
            "version: 1\ntargets:\n  role_name: \"bad role\"\n  accounts:\n    - id: \"1234\"\n    - id: \"111122223333\"\n      regions: [eu-central]\n  exclude:\n    - account: x\n",
        )
        .expect_err("invalid targets");
        let paths: Vec<&str> = error.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "targets.role_name",
                "targets.accounts[0].id",
                "targets.accounts[0]",
                "targets.accounts[1].regions[0]",
                "targets.exclude[0].account"
            ],
            "{error}"
        );
        let none = crate::policy::Policy::from_yaml("version: 1\n").expect("no targets");
        assert!(none.targets.is_none(), "no targets: the hub's own account and region");
    }
}

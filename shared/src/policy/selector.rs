//! Which resources a policy rule applies to: by tags, by ids, by names, or a combination (all must match).

use super::values::InvalidValue;
use serde::Serialize;
use std::collections::BTreeMap;

/// What a selector needs to know of a resource.
pub trait ResourceView {
    fn id(&self) -> &str;
    fn name(&self) -> Option<&str>;
    fn tag(&self, key: &str) -> Option<&str>;
}

/// A validated selector: at least one criterion is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Selector {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tag: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    names: Vec<String>,
}

impl Selector {
    pub fn new(tag: BTreeMap<String, String>, ids: Vec<String>, names: Vec<String>) -> Result<Self, InvalidValue> {
        if tag.is_empty() && ids.is_empty() && names.is_empty() {
            return Err("selects nothing (give tag, ids or names)".into());
        }
        if let Some(key) = tag.keys().find(|key| key.is_empty()) {
            return Err(InvalidValue(format!("tag key {key:?} is empty")));
        }
        Ok(Self { tag, ids, names })
    }

    /// A selector that matches no resource; stands in for an invalid one while validation collects errors.
    pub(crate) fn nothing() -> Self {
        Self { tag: BTreeMap::new(), ids: Vec::new(), names: Vec::new() }
    }

    /// True when every criterion given matches: all tags equal, the id listed, the name listed.
    pub fn matches(&self, resource: &impl ResourceView) -> bool {
        if self.tag.is_empty() && self.ids.is_empty() && self.names.is_empty() {
            return false;
        }
        let tags_match = self.tag.iter().all(|(key, value)| resource.tag(key) == Some(value.as_str()));
        let id_matches = self.ids.is_empty() || self.ids.iter().any(|id| id == resource.id());
        let name_matches =
            self.names.is_empty() || resource.name().is_some_and(|name| self.names.iter().any(|n| n == name));
        tags_match && id_matches && name_matches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Res {
        id: &'static str,
        name: Option<&'static str>,
        tags: BTreeMap<String, String>,
    }

    impl ResourceView for Res {
        fn id(&self) -> &str {
            self.id
        }
        fn name(&self) -> Option<&str> {
            self.name
        }
        fn tag(&self, key: &str) -> Option<&str> {
            self.tags.get(key).map(String::as_str)
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn all_criteria_must_match() {
        let sales = Res { id: "wspool-1", name: Some("sales"), tags: tags(&[("autopilot/capacity", "sales")]) };
        let check = |selector: Result<Selector, InvalidValue>, expected: bool| {
            assert_eq!(selector.map(|s| s.matches(&sales)), Ok(expected));
        };
        check(Selector::new(tags(&[("autopilot/capacity", "sales")]), vec![], vec![]), true);
        check(Selector::new(tags(&[("autopilot/capacity", "hr")]), vec![], vec![]), false);
        check(Selector::new(BTreeMap::new(), vec!["wspool-1".into()], vec![]), true);
        check(Selector::new(BTreeMap::new(), vec![], vec!["sales".into()]), true);
        check(Selector::new(tags(&[("autopilot/capacity", "sales")]), vec!["wspool-2".into()], vec![]), false);
        assert!(Selector::new(BTreeMap::new(), vec![], vec![]).is_err());
        assert!(!Selector::nothing().matches(&sales));
    }
}

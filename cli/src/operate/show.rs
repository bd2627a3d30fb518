//! How the operator commands write what they found: resources by kind, id and name (not ledger keys), the account
//! and region only where they differ from the rest, and lines that fit the terminal.

use autopilot_shared::ledger::audit::AuditRecord;
use autopilot_shared::resource::{ResourceKind, ResourceRef};
use std::collections::BTreeSet;
use std::io::IsTerminal;

/// The short word for a kind of resource.
fn kind_word(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::WorkspacesPool => "pool",
        ResourceKind::ImageBuilder => "builder",
        ResourceKind::ExportTask => "export",
        other => other.as_str(),
    }
}

/// The place (account, region) every one of `keys` is in, when they are all in one: then it need not be repeated
/// on every line. Across places, every line names its own (none is taken for granted).
pub fn single_place<'a>(keys: impl IntoIterator<Item = &'a str>) -> Option<(String, String)> {
    let places: BTreeSet<(String, String)> = keys
        .into_iter()
        .filter_map(|key| ResourceRef::from_key(key).ok())
        .map(|resource| (resource.account().to_owned(), resource.region().to_owned()))
        .collect();
    let mut places = places.into_iter();
    match (places.next(), places.next()) {
        (Some(place), None) => Some(place),
        _ => None,
    }
}

/// A resource as an operator reads it: `pool wspool-sales0001 (sales)`; its account and region when they are not
/// `usual`; the key itself when it is not a resource key.
pub fn resource(key: &str, name: Option<&str>, usual: Option<&(String, String)>) -> String {
    let Ok(resource) = ResourceRef::from_key(key) else { return key.to_owned() };
    let mut out = format!("{} {}", kind_word(resource.kind()), resource.id());
    if let Some(name) = name.filter(|n| !n.is_empty() && *n != resource.id()) {
        out.push_str(&format!(" ({name})"));
    }
    if usual.is_none_or(|(account, region)| account != resource.account() || region != resource.region()) {
        out.push_str(&format!(" in {}/{}", resource.account(), resource.region()));
    }
    out
}

/// The name an audit record gives its resource (`details.name`), if any.
pub fn record_name(record: &AuditRecord) -> Option<&str> {
    record.details.get("name").and_then(serde_json::Value::as_str)
}

/// The width to fit lines to: the terminal's (`COLUMNS`, else 120) when standard output is one; none when it is
/// a pipe or a file (one record per line, for `grep`).
pub fn width() -> Option<usize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    Some(std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).filter(|c: &usize| *c >= 40).unwrap_or(120))
}

/// `head` and then `reason`: on the same line when it fits `width`, otherwise on the next, indented and wrapped.
pub fn line(head: &str, reason: &str, width: Option<usize>) -> String {
    let Some(width) = width else { return format!("{head}  {reason}\n") };
    if head.chars().count() + 2 + reason.chars().count() <= width {
        return format!("{head}  {reason}\n");
    }
    let mut out = format!("{head}\n");
    let indent = "    ";
    let mut current = String::new();
    for word in reason.split(' ') {
        if !current.is_empty() && indent.len() + current.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&format!("{indent}{current}\n"));
            current.clear();
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() {
        out.push_str(&format!("{indent}{current}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: &str = "workspaces#123456789012#eu-central-1#workspaces-pool#wspool-sales0001";

    #[test]
    fn resources_read_by_kind_id_and_name_with_their_place_only_when_it_differs() {
        let usual = single_place([POOL, "appstream#123456789012#eu-central-1#fleet#sales-fleet"]);
        assert_eq!(resource(POOL, Some("sales"), usual.as_ref()), "pool wspool-sales0001 (sales)");
        let fleet = "appstream#123456789012#eu-central-1#fleet#sales-fleet";
        assert_eq!(resource(fleet, Some("sales-fleet"), usual.as_ref()), "fleet sales-fleet");
        let elsewhere = "appstream#210987654321#us-east-1#image-builder#b1";
        assert_eq!(resource(elsewhere, None, usual.as_ref()), "builder b1 in 210987654321/us-east-1");
        assert_eq!(resource("EXPORT#job-1", None, usual.as_ref()), "EXPORT#job-1");
        // across places, none is taken for granted, however many records one has
        assert_eq!(single_place([POOL, POOL, elsewhere]), None);
        assert_eq!(
            resource(POOL, None, single_place([POOL, POOL, elsewhere]).as_ref()),
            "pool wspool-sales0001 in 123456789012/eu-central-1"
        );
    }

    #[test]
    fn a_long_reason_goes_to_the_next_line_wrapped_to_the_width() {
        assert_eq!(line("head", "short", Some(40)), "head  short\n");
        assert_eq!(line("head", "short", None), "head  short\n");
        let wrapped = line("a head of some length", "a reason that is much too long to fit in forty columns", Some(40));
        assert!(wrapped.lines().all(|l| l.chars().count() <= 40), "{wrapped}");
        assert_eq!(wrapped.lines().count(), 3, "{wrapped}");
    }
}

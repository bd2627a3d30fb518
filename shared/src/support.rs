//! End of support that AWS has announced and the warnings operators see (`autopilot plan`, the
//! demo report): WorkSpaces Pools end on 2027-12-31, WorkSpaces Thin Client on 2027-03-31, and every software
//! set carries its own `supportedUntil` (the roller never rolls one out past it).

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// AWS's announced end of support of WorkSpaces Pools.
pub const WORKSPACES_POOLS_END: NaiveDate = match NaiveDate::from_ymd_opt(2027, 12, 31) {
    Some(date) => date,
    None => NaiveDate::MIN,
};
/// AWS's announced end of support of WorkSpaces Thin Client.
pub const THIN_CLIENT_END: NaiveDate = match NaiveDate::from_ymd_opt(2027, 3, 31) {
    Some(date) => date,
    None => NaiveDate::MIN,
};
/// A software set in use whose support ends within this many days is warned about.
pub const SOFTWARE_SET_NOTICE_DAYS: i64 = 90;

/// A software set and the environments that use it (their desired set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftwareSetInUse {
    pub id: String,
    pub version: String,
    pub supported_until: Option<DateTime<Utc>>,
    pub environments: Vec<String>,
}

/// One warning: what ends, when, how many days are left (negative: already past) and what it affects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SupportWarning {
    pub subject: String,
    pub ends: NaiveDate,
    pub days_left: i64,
    pub message: String,
}

/// The warnings for an estate with `pools` WorkSpaces Pools, `environments` Thin Client environments and the
/// software sets those environments use, at `now`. Pure.
pub fn warnings(
    now: DateTime<Utc>,
    pools: usize,
    environments: usize,
    sets: &[SoftwareSetInUse],
) -> Vec<SupportWarning> {
    let today = now.date_naive();
    let days_to = |end: NaiveDate| (end - today).num_days();
    let mut out = Vec::new();
    if pools > 0 {
        let days_left = days_to(WORKSPACES_POOLS_END);
        out.push(SupportWarning {
            subject: "WorkSpaces Pools".into(),
            ends: WORKSPACES_POOLS_END,
            days_left,
            message: format!(
                "AWS ends support of WorkSpaces Pools on {WORKSPACES_POOLS_END} ({}); {pools} pool(s) here: plan their move",
                in_days(days_left)
            ),
        });
    }
    if environments > 0 {
        let days_left = days_to(THIN_CLIENT_END);
        out.push(SupportWarning {
            subject: "WorkSpaces Thin Client".into(),
            ends: THIN_CLIENT_END,
            days_left,
            message: format!(
                "AWS ends support of WorkSpaces Thin Client on {THIN_CLIENT_END} ({}); {environments} environment(s) here: plan the devices' replacement",
                in_days(days_left)
            ),
        });
    }
    for set in sets.iter().filter(|s| !s.environments.is_empty()) {
        let Some(until) = set.supported_until else { continue };
        let days_left = days_to(until.date_naive());
        if days_left > SOFTWARE_SET_NOTICE_DAYS {
            continue;
        }
        out.push(SupportWarning {
            subject: format!("software set {} ({})", set.id, set.version),
            ends: until.date_naive(),
            days_left,
            message: format!(
                "software set {} ({}) is supported until {} ({}) and is the desired set of {}: roll out a newer set",
                set.id,
                set.version,
                until.date_naive(),
                in_days(days_left),
                set.environments.join(", ")
            ),
        });
    }
    out
}

fn in_days(days: i64) -> String {
    match days {
        d if d < 0 => format!("{} days ago", -d),
        0 => "today".into(),
        d => format!("in {d} days"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).single().unwrap_or_default()
    }

    fn set(id: &str, until: Option<DateTime<Utc>>, environments: &[&str]) -> SoftwareSetInUse {
        SoftwareSetInUse {
            id: id.into(),
            version: format!("v{id}"),
            supported_until: until,
            environments: environments.iter().map(|e| (*e).to_owned()).collect(),
        }
    }

    #[test]
    fn services_are_warned_about_only_when_used() {
        let now = at(2026, 11, 21);
        assert!(warnings(now, 0, 0, &[]).is_empty());
        let found = warnings(now, 3, 2, &[]);
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].ends, found[0].days_left), (WORKSPACES_POOLS_END, 405));
        assert!(found[0].message.contains("3 pool(s)") && found[0].message.contains("in 405 days"));
        assert_eq!((found[1].ends, found[1].days_left), (THIN_CLIENT_END, 130));
        let after = warnings(at(2027, 4, 2), 0, 1, &[]);
        assert_eq!(after[0].days_left, -2);
        assert!(after[0].message.contains("2 days ago"), "{}", after[0].message);
    }

    #[test]
    fn software_sets_in_use_near_or_past_their_date_are_warned_about() {
        let now = at(2026, 11, 21);
        let sets = [
            set("soon", Some(at(2027, 1, 10)), &["kiosks"]),
            set("past", Some(at(2026, 11, 1)), &["lab", "hall"]),
            set("far", Some(at(2027, 6, 30)), &["office"]),
            set("unused", Some(at(2026, 11, 1)), &[]),
            set("undated", None, &["office"]),
        ];
        let found = warnings(now, 0, 0, &sets);
        let subjects: Vec<&str> = found.iter().map(|w| w.subject.as_str()).collect();
        assert_eq!(subjects, ["software set soon (vsoon)", "software set past (vpast)"]);
        assert_eq!(found[0].days_left, 50);
        assert!(found[1].message.contains("20 days ago") && found[1].message.contains("lab, hall"));
    }
}

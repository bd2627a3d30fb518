//! `autopilot audit`: the audit trail from the ledger, by day (the table) or by resource (the index).

use crate::error::CliError;
use autopilot_shared::ledger::Ledger;
use autopilot_shared::ledger::audit::{AuditRead, AuditRecord, Outcome};
use chrono::{DateTime, Duration, Utc};

/// The longest window read day by day (the records' retention).
pub const MAX_DAYS: i64 = 400;

/// Which records to read.
#[derive(Debug, Clone)]
pub struct Query {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// A resource key (`appstream#<account>#<region>#fleet#<name>`, read from the index) or a bare id or name
    /// (matched against the end of each key of the days read).
    pub resource: Option<String>,
    /// Only this function's records.
    pub function: Option<String>,
    /// Only records of resources in this account.
    pub account: Option<String>,
    /// Only records of resources in this region.
    pub region: Option<String>,
}

/// Whether a resource key (`<service>#<account>#<region>#<kind>#<id>`) is in `account` and `region` (each when
/// given).
pub fn in_place(resource: &str, account: Option<&str>, region: Option<&str>) -> bool {
    let mut parts = resource.split('#').skip(1);
    let (found_account, found_region) = (parts.next(), parts.next());
    account.is_none_or(|a| found_account == Some(a)) && region.is_none_or(|r| found_region == Some(r))
}

/// `--since`: an RFC 3339 instant or a duration back from `now` (`90m`, `24h`, `7d`).
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, CliError> {
    let refused = |problem: String| CliError::Flag { flag: "since", value: format!("{text:?}"), problem };
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        let at = at.with_timezone(&Utc);
        if at > now {
            return Err(refused(format!(
                "is in the future (now is {})",
                now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )));
        }
        return Ok(at);
    }
    // A bare date: the day's start in UTC (the instant's form, said).
    if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Err(refused(format!("is a date; give an instant, e.g. {day}T00:00:00Z")));
    }
    match autopilot_shared::policy::values::parse_duration(text) {
        Ok(back) => Ok(now - back),
        // A duration too long for the parser is still a duration: say how far back the trail goes.
        Err(_)
            if text.len() > 1
                && text.ends_with(['d', 'h', 'm', 's'])
                && text[..text.len() - 1].bytes().all(|b| b.is_ascii_digit()) =>
        {
            Err(refused(format!("reaches back more than {MAX_DAYS} days (records are kept {MAX_DAYS} days)")))
        }
        Err(_) => Err(refused("neither an RFC 3339 instant nor a duration like 24h or 7d".into())),
    }
}

/// The records matching `query`, oldest first. Items that are not records this version can read are told on
/// standard error (their key and why), not silently dropped, and do not hide the others.
pub async fn read(ledger: &Ledger, query: &Query) -> Result<Vec<AuditRecord>, CliError> {
    if query.until - query.since > Duration::days(MAX_DAYS) {
        return Err(CliError::Flag {
            flag: "since",
            value: query.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            problem: format!("reaches back more than {MAX_DAYS} days (records are kept {MAX_DAYS} days)"),
        });
    }
    let read = match query.resource.as_deref().filter(|r| r.contains('#')) {
        Some(key) => ledger.read_audit_by_resource(key).await?,
        None => {
            let mut all = AuditRead::default();
            let mut day = query.since.date_naive();
            while day <= query.until.date_naive() {
                let one = ledger.read_audit_by_day(day).await?;
                all.records.extend(one.records);
                all.unreadable.extend(one.unreadable);
                day = day.succ_opt().ok_or(CliError::Missing("a day after the last one (date out of range)"))?;
            }
            all
        }
    };
    for item in &read.unreadable {
        warnln!("autopilot: audit item {} is not a record this version reads (left out): {}", item.key, item.reason);
    }
    let mut records = read.records;
    records.retain(|r| {
        r.at >= query.since
            && r.at <= query.until
            && query.function.as_deref().is_none_or(|f| r.function == f)
            && in_place(&r.resource, query.account.as_deref(), query.region.as_deref())
            && query.resource.as_deref().is_none_or(|wanted| {
                r.resource == wanted
                    || (!wanted.contains('#')
                        && (r.resource.ends_with(&format!("#{wanted}")) || super::show::record_name(r) == Some(wanted)))
            })
    });
    records.sort_by_key(|r| r.at);
    Ok(records)
}

/// One word per outcome, as the text output shows it.
pub fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Applied => "applied",
        Outcome::DryRun => "would",
        Outcome::Skipped => "skipped",
        Outcome::Deferred => "deferred",
        Outcome::Failed => "FAILED",
        Outcome::Released => "released",
    }
}

/// One line per record: time, function, outcome, action, resource (kind, id and name), reason — the reason on
/// lines of its own when the line would not fit `width`.
pub fn render(records: &[AuditRecord], width: Option<usize>) -> String {
    let usual = super::show::single_place(records.iter().map(|r| r.resource.as_str()));
    let mut out = String::new();
    for r in records {
        let head = format!(
            "{}  {:<18} {:<8} {:<20} {}",
            r.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            r.function,
            outcome_word(r.outcome),
            r.action,
            super::show::resource(&r.resource, super::show::record_name(r), usual.as_ref())
        );
        out.push_str(&super::show::line(&head, &r.reason, width));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn since_takes_an_instant_or_a_duration() {
        let now = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).single().unwrap_or_default();
        assert_eq!(parse_since("24h", now).ok(), Some(now - Duration::hours(24)));
        assert_eq!(parse_since("7d", now).ok(), Some(now - Duration::days(7)));
        assert_eq!(parse_since("2026-11-20T08:00:00Z", now).ok(), Some(now - Duration::hours(28)));
        assert!(parse_since("yesterday", now).is_err_and(|e| e.to_string().contains("yesterday")));
        // the odd ones say what is wrong with them
        assert!(parse_since("100000d", now).is_err_and(|e| e.to_string().contains("more than 400 days")));
        assert!(parse_since("d", now).is_err_and(|e| e.to_string().contains("neither an RFC 3339 instant")));
        assert!(parse_since("2026-11-20", now).is_err_and(|e| e.to_string().contains("2026-11-20T00:00:00Z")));
        assert!(parse_since("2099-01-01T00:00:00Z", now).is_err_and(|e| e.to_string().contains("in the future")));
    }
}

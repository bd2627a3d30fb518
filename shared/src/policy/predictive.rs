//! `capacity[].predictive`: scale ahead of each pool's and fleet's learned weekly demand (the pool-scaler's
//! `forecast` module learns and forecasts; this is the rule's configuration and its validation).

use super::raw;
use super::{Validator, serialize_duration};
use chrono::Duration;
use serde::Serialize;

/// Prewarm ahead of the learned weekly profile: the capacity a rule's bounds give for the sessions in use now plus
/// the increase the profile expects within the lead time. Without history (a new resource, a slot never seen) the rule
/// scales reactively, as without this block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Predictive {
    /// Weeks of history kept per 15-minute slot of the week; the forecast is their lower median, so one week's
    /// spike or holiday does not move it once two weeks are known.
    pub history_weeks: u32,
    /// The start-up lead time assumed until the resource's own scale-outs have taught one.
    #[serde(serialize_with = "serialize_duration")]
    pub lead_time: Duration,
}

/// Defaults: three weeks of history, 15 minutes' lead time until learned.
pub const DEFAULT_HISTORY_WEEKS: u32 = 3;
pub const MAX_HISTORY_WEEKS: u32 = 8;
pub const DEFAULT_LEAD_TIME_MINUTES: i64 = 15;
/// The longest lead time accepted (and learned): no pool or fleet takes longer to start.
pub const MAX_LEAD_TIME: Duration = Duration::hours(2);

/// Validates a rule's `predictive` block: `None` when absent or `enabled: false`.
pub(super) fn validate(v: &mut Validator, path: &str, raw: Option<&raw::Predictive>) -> Option<Predictive> {
    let raw = raw?;
    if raw.enabled == Some(false) {
        return None;
    }
    let history_weeks = raw.history_weeks.unwrap_or(DEFAULT_HISTORY_WEEKS);
    if !(1..=MAX_HISTORY_WEEKS).contains(&history_weeks) {
        v.error(format!("{path}.history_weeks"), format!("must be 1 to {MAX_HISTORY_WEEKS}"));
    }
    let lead_time = v.positive_duration(
        &format!("{path}.lead_time"),
        raw.lead_time.as_deref(),
        Duration::minutes(DEFAULT_LEAD_TIME_MINUTES),
    );
    if lead_time > MAX_LEAD_TIME {
        v.error(format!("{path}.lead_time"), "must be at most 2h");
    }
    Some(Predictive { history_weeks, lead_time: lead_time.min(MAX_LEAD_TIME) })
}

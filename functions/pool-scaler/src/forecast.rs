//! Predictive prewarm, pure: each pool's and fleet's weekly demand profile, learned from the capacity in use the
//! pool-scaler observes; its start-up lead time, learned from its own scale-outs; and the forecast the decide
//! step scales ahead of. Both live in the resource's memory (the ledger item every reconcile already reads in
//! one batch), so learning costs no extra read.
//!
//! - **Profile**: the local week (in the rule's schedule's time zone, else the policy's) in 15-minute slots. Each
//!   slot keeps the peak in use of its latest weeks (`history_weeks`, newest first). Local time keeps an office's
//!   09:00 at 09:00 across daylight-saving changes. A holiday's observations are not learned, so the week after a
//!   holiday forecasts from the weeks before it.
//! - **Forecast** of a slot: the lower median of its weeks. A one-off spike moves it only while it is the only
//!   week known; with two weeks or more the lower value wins.
//! - **Lead time**: from raising a resource's desired capacity (or starting it) to seeing that capacity running,
//!   the longest of the latest [`LEAD_SAMPLES`]; the rule's `lead_time` until one is learned.
//! - **Outlook**: the highest slot forecast from now to now + lead time + [`TICK_ALLOWANCE`] (capacity asked
//!   for at the next tick arrives that much later), holidays skipped, and the **increase**: how far the
//!   forecast *level* rises from now to its highest point in that window. The level runs through each slot's
//!   forecast placed at the slot's middle, joined by straight lines, so a ramp under way counts from where it
//!   is now and only as far as the window reaches (on a steady ramp, exactly the rise over the window; a slot's
//!   peak on a plateau is noise, and the level is not the highest of a few of them). The decide step sizes for
//!   the sessions in use now plus that increase: the profile says when demand rises and by how much, what is in
//!   use says from which level (this week's demand may run above or below last week's). No history in that
//!   window: no outlook, and the rule scales reactively.
//! - **Recent peak**: the most in use in the slot under way and the slot before it, which the decide step does
//!   not scale in below (capacity released takes a lead time to come back).

use autopilot_shared::policy::Predictive;
use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The width of a profile slot, in minutes.
pub const SLOT_MINUTES: i64 = 15;
/// Slots in a week.
pub const SLOTS: usize = (7 * 24 * 60 / SLOT_MINUTES) as usize;
/// How far past the lead time a forecast looks: the pool-scaler's schedule interval (template.yaml), since what
/// the next tick asks for arrives that much later.
pub const TICK_ALLOWANCE: Duration = Duration::minutes(5);
/// A forecast level is kept exact as sessions × this, a slot's seconds (a point between two slot middles weighs
/// them by whole seconds).
const LEVEL_SCALE: i64 = SLOT_MINUTES * 60;
/// Lead-time samples kept.
pub const LEAD_SAMPLES: usize = 5;
/// Slots remembered as recently filed: the longest repeated local hour (a daylight-saving fold) spans four.
const FILED: usize = 4;
/// A rise not complete after this long teaches nothing (refused, lowered again, or the service is stuck).
const RISE_EXPIRY: Duration = Duration::hours(2);

/// The slot of the local week `instant` falls in (Monday 00:00–00:15 is 0).
pub fn slot_of(instant: DateTime<Utc>, timezone: Tz) -> usize {
    let local = instant.with_timezone(&timezone);
    let day = local.weekday().num_days_from_monday() as usize;
    day * 24 * 4 + local.hour() as usize * 4 + local.minute() as usize / SLOT_MINUTES as usize
}

/// The instant the local slot holding `instant` started (at most `instant`).
fn slot_start(instant: DateTime<Utc>, timezone: Tz) -> DateTime<Utc> {
    let local = instant.with_timezone(&timezone);
    let into_slot = i64::from(local.minute()) % SLOT_MINUTES * 60 + i64::from(local.second());
    instant - Duration::seconds(into_slot) - Duration::nanoseconds(i64::from(local.nanosecond()))
}

/// A resource's learned weekly demand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The slot being observed now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    open: Option<OpenSlot>,
    /// Per slot of the local week, the peaks of the latest weeks, newest first (empty until the first slot closes).
    #[serde(default, with = "compact", skip_serializing_if = "Vec::is_empty")]
    slots: Vec<Vec<u32>>,
    /// The latest slots filed and when: a slot seen again within a day (the autumn fold's repeated hour) is
    /// merged into its week, not filed as another.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    filed: Vec<(usize, DateTime<Utc>)>,
}

/// The slot being observed: its peak so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct OpenSlot {
    slot: usize,
    /// When it was first observed: the same slot a week later is a new one.
    seen: DateTime<Utc>,
    peak: u32,
    /// Observed on a holiday: not learned.
    holiday: bool,
}

/// The highest forecast in a window and the instant its slot starts (or now, for the slot under way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forecast {
    pub in_use: u32,
    pub at: DateTime<Utc>,
}

impl Profile {
    pub fn is_empty(&self) -> bool {
        self.open.is_none() && self.slots.is_empty() && self.filed.is_empty()
    }

    /// Learns `in_use` observed at `at` (on a holiday: noted, not learned), keeping `weeks` weeks per slot.
    pub fn observe(&mut self, at: DateTime<Utc>, in_use: u32, timezone: Tz, holiday: bool, weeks: usize) {
        let slot = slot_of(at, timezone);
        match &mut self.open {
            // The memory changes (and is written) only when the peak rises or the slot closes.
            Some(open) if open.slot == slot && (at - open.seen).abs() < Duration::days(1) => {
                open.peak = open.peak.max(in_use);
                open.holiday |= holiday;
            }
            _ => {
                self.close(weeks);
                self.open = Some(OpenSlot { slot, seen: at, peak: in_use, holiday });
            }
        }
    }

    /// Files the open slot's peak as its newest week.
    fn close(&mut self, weeks: usize) {
        let Some(open) = self.open.take().filter(|open| !open.holiday) else { return };
        if self.slots.len() != SLOTS {
            self.slots = vec![Vec::new(); SLOTS];
        }
        let again = self.filed.iter().any(|(slot, at)| *slot == open.slot && open.seen - *at < Duration::days(1));
        if let Some(ring) = self.slots.get_mut(open.slot) {
            match ring.first_mut() {
                Some(newest) if again => *newest = (*newest).max(open.peak),
                _ => ring.insert(0, open.peak),
            }
            ring.truncate(weeks.max(1));
        }
        self.filed.retain(|(slot, _)| *slot != open.slot);
        self.filed.insert(0, (open.slot, open.seen));
        self.filed.truncate(FILED);
    }

    /// The most in use seen lately: in the slot under way and, when it closed within the last two slots' time,
    /// in the slot before it; `None` when no slot is under way.
    pub fn recent_peak(&self, now: DateTime<Utc>) -> Option<u32> {
        let slot = Duration::minutes(SLOT_MINUTES);
        let open = self.open.filter(|open| (now - open.seen).abs() < slot)?;
        let before = self
            .filed
            .first()
            .filter(|(_, seen)| now - *seen < slot * 2)
            .and_then(|(filed, _)| self.slots.get(*filed)?.first().copied());
        Some(open.peak.max(before.unwrap_or(0)))
    }

    /// The forecast of one slot: the lower median of its weeks; `None` without history.
    pub fn slot_forecast(&self, slot: usize) -> Option<u32> {
        let mut weeks = self.slots.get(slot).filter(|ring| !ring.is_empty())?.clone();
        weeks.sort_unstable();
        weeks.get((weeks.len() - 1) / 2).copied()
    }

    /// The forecast of the slot holding `instant` unless `holiday` names it.
    fn forecast_at(
        &self,
        instant: DateTime<Utc>,
        timezone: Tz,
        holiday: &impl Fn(DateTime<Utc>) -> bool,
    ) -> Option<u32> {
        (!holiday(instant)).then(|| self.slot_forecast(slot_of(instant, timezone))).flatten()
    }

    /// The forecast level at `instant`, exact, in sessions × [`LEVEL_SCALE`]: each slot's forecast placed at the
    /// slot's middle, straight between neighbouring slots; either alone when the other has no history, `None`
    /// when neither has.
    fn level_at(&self, instant: DateTime<Utc>, timezone: Tz, holiday: &impl Fn(DateTime<Utc>) -> bool) -> Option<i64> {
        let slot = Duration::minutes(SLOT_MINUTES);
        let middle = slot_start(instant, timezone) + slot / 2;
        let (left, right) = if instant >= middle { (middle, middle + slot) } else { (middle - slot, middle) };
        let through = (instant - left).num_seconds().clamp(0, LEVEL_SCALE);
        let value = |at| self.forecast_at(at, timezone, holiday).map(i64::from);
        match (value(left), value(right)) {
            (Some(left), Some(right)) => Some(left * (LEVEL_SCALE - through) + right * through),
            (one, other) => one.or(other).map(|value| value * LEVEL_SCALE),
        }
    }

    /// The highest slot forecast from `from` to `to`, skipping instants `holiday` names; `None` when no slot
    /// in the window has history.
    pub fn peak_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        timezone: Tz,
        holiday: impl Fn(DateTime<Utc>) -> bool,
    ) -> Option<Forecast> {
        let mut best: Option<Forecast> = None;
        let mut at = from;
        while at <= to {
            if let Some(in_use) = self.forecast_at(at, timezone, &holiday)
                && best.is_none_or(|b| in_use > b.in_use)
            {
                best = Some(Forecast { in_use, at });
            }
            at = slot_start(at, timezone) + Duration::minutes(SLOT_MINUTES);
        }
        best
    }
}

/// A resource's learned start-up lead time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadTime {
    /// Minutes from a rise to its capacity running, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    samples: Vec<u32>,
    /// The rise being timed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rising: Option<Rise>,
}

/// Desired capacity raised (or the resource started) at `since`, to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Rise {
    since: DateTime<Utc>,
    to: u32,
}

impl LeadTime {
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty() && self.rising.is_none()
    }

    /// Times the rise under way against what is observed at `now`: `running` units of `desired`, the resource
    /// `up` (RUNNING) or not.
    pub fn observe(&mut self, now: DateTime<Utc>, running: u32, desired: u32, up: bool) {
        let Some(rise) = self.rising else { return };
        if up && running >= rise.to {
            let minutes = (now - rise.since).num_seconds().max(0).unsigned_abs().div_ceil(60);
            self.samples.insert(0, u32::try_from(minutes).unwrap_or(u32::MAX));
            self.samples.truncate(LEAD_SAMPLES);
            self.rising = None;
        } else if desired < rise.to || now - rise.since > RISE_EXPIRY {
            self.rising = None;
        }
    }

    /// Starts timing a rise to `to` from `running` (one at a time: a rise during another is not timed).
    pub fn rise(&mut self, now: DateTime<Utc>, running: u32, to: u32) {
        if to > running && self.rising.is_none() {
            self.rising = Some(Rise { since: now, to });
        }
    }

    /// The longest of the latest samples; `None` before the first.
    pub fn learned(&self) -> Option<Duration> {
        self.samples.iter().max().map(|minutes| Duration::minutes(i64::from(*minutes)))
    }
}

/// What the forecast says for the next lead time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outlook {
    /// The highest forecast within the lead time (and the tick after it).
    pub forecast: Forecast,
    /// How far the forecast level rises from now to its highest point in the window (rounded): what to expect
    /// on top of what is in use now.
    pub increase: u32,
    pub lead: Duration,
    /// Whether `lead` was learned (else the rule's `lead_time`).
    pub learned: bool,
}

impl Outlook {
    /// The outlook at `now` from a profile and lead time; `None` without history for the window.
    pub fn at(
        profile: &Profile,
        lead: &LeadTime,
        predictive: &Predictive,
        now: DateTime<Utc>,
        timezone: Tz,
        holiday: impl Fn(DateTime<Utc>) -> bool,
    ) -> Option<Outlook> {
        let (lead, learned) = lead.learned().map_or((predictive.lead_time, false), |learned| (learned, true));
        let end = now + lead + TICK_ALLOWANCE;
        let forecast = profile.peak_between(now, end, timezone, &holiday)?;
        let level = |instant| profile.level_at(instant, timezone, &holiday);
        let from = level(now).unwrap_or(0);
        // The level is straight between slot middles: its highest point in the window is at one of them or at
        // the window's end.
        let half = Duration::minutes(SLOT_MINUTES) / 2;
        let mut highest = from;
        let mut at = now;
        while at < end {
            let middle = slot_start(at, timezone) + half;
            let next = if middle > at { middle } else { middle + Duration::minutes(SLOT_MINUTES) };
            at = next.min(end);
            highest = level(at).map_or(highest, |value| highest.max(value));
        }
        // Rounded half up, in whole sessions.
        let increase = u32::try_from((highest - from + LEVEL_SCALE / 2) / LEVEL_SCALE).unwrap_or(0);
        Some(Outlook { forecast, increase, lead, learned })
    }

    /// The sessions to expect within the lead time, with `in_use` now.
    pub fn expected(&self, in_use: u32) -> u32 {
        in_use.saturating_add(self.increase)
    }

    /// "forecast 42 sessions at 08:30 (+12 on now), lead time 14 min" (local time).
    pub fn explain(&self, unit: &str, timezone: Tz) -> String {
        format!(
            "forecast {} {unit} at {} (+{} on now), lead time {} min{}",
            self.forecast.in_use,
            self.forecast.at.with_timezone(&timezone).format("%H:%M"),
            self.increase,
            self.lead.num_minutes(),
            if self.learned { "" } else { " (not learned yet)" }
        )
    }
}

/// The slots as one compact string (`"45 44 46,0 0,,…"`: weeks by spaces, slots by commas): a few kilobytes for
/// a week of history instead of a DynamoDB list per slot. A string that does not parse is read as no history
/// (learned again), never as an error that would block the resource.
mod compact {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(slots: &[Vec<u32>], serializer: S) -> Result<S::Ok, S::Error> {
        let text: Vec<String> =
            slots.iter().map(|weeks| weeks.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")).collect();
        serializer.serialize_str(&text.join(","))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Vec<u32>>, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(parse(&text).unwrap_or_default())
    }

    pub(super) fn parse(text: &str) -> Option<Vec<Vec<u32>>> {
        let slots: Option<Vec<Vec<u32>>> =
            text.split(',').map(|slot| slot.split_whitespace().map(|n| n.parse().ok()).collect()).collect();
        slots.filter(|slots| slots.len() == super::SLOTS)
    }
}

#[cfg(test)]
mod tests;

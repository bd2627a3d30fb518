//! Schedules: weekly periods in an IANA time zone, holiday calendars and a prewarm lead, evaluated purely.
//!
//! Semantics: every boundary is resolved from local wall time to one instant — a boundary inside
//! a spring-forward gap takes effect at the first valid instant after the gap, a boundary inside an autumn
//! fold at its first occurrence — so a period is one half-open interval of instants and can never run twice
//! in one night. A holiday makes its whole local day off-hours, including the prewarm of a period that
//! starts on it and the part of a midnight-crossing period that reaches into it.

use super::values::InvalidValue;
use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::Serialize;
use std::collections::BTreeSet;

/// The largest prewarm a schedule accepts; it bounds how far evaluation has to look around an instant.
pub const MAX_PREWARM: Duration = Duration::hours(24);

/// How far `next_transition` looks ahead before it answers "never".
const HORIZON_DAYS: i64 = 800;

/// One weekly period: on each of `days`, from `start` to `end` local time; `end <= start` crosses midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Period {
    days: [bool; 7],
    start: NaiveTime,
    end: NaiveTime,
}

impl Period {
    /// A period needs at least one day and `start != end`.
    pub fn new(days: &[Weekday], start: NaiveTime, end: NaiveTime) -> Result<Self, InvalidValue> {
        if days.is_empty() {
            return Err("a period needs at least one day".into());
        }
        if start == end {
            return Err(InvalidValue(format!(
                "start and end are both {}; a period must have a length",
                start.format("%H:%M")
            )));
        }
        let mut set = [false; 7];
        for day in days {
            set[day.num_days_from_monday() as usize] = true;
        }
        Ok(Self { days: set, start, end })
    }

    fn runs_on(&self, date: NaiveDate) -> bool {
        self.days[date.weekday().num_days_from_monday() as usize]
    }

    pub fn start(&self) -> NaiveTime {
        self.start
    }

    pub fn end(&self) -> NaiveTime {
        self.end
    }
}

/// In-hours or off-hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    InHours,
    OffHours,
}

/// Why the schedule is in its phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    /// Inside period `period` (index in the schedule), which started at `since`.
    InPeriod { period: usize, since: DateTime<Utc> },
    /// Within the prewarm lead of period `period`, which starts at `starts_at`.
    Prewarm { period: usize, starts_at: DateTime<Utc> },
    /// The local day is a holiday.
    Holiday { date: NaiveDate },
    /// No period covers the instant.
    OutsidePeriods,
}

/// The evaluated state of a schedule at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleState {
    pub phase: Phase,
    pub reason: Reason,
}

/// A validated schedule. Construct with [`Schedule::new`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    timezone: Tz,
    periods: Vec<Period>,
    holidays: BTreeSet<NaiveDate>,
    #[serde(serialize_with = "serialize_duration")]
    prewarm: Duration,
}

fn serialize_duration<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&super::values::format_duration(*duration))
}

/// One occurrence of a period: `[prewarm_from, end)` with the period proper starting at `start`.
#[derive(Debug, Clone, Copy)]
struct Occurrence {
    period: usize,
    prewarm_from: DateTime<Utc>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl Schedule {
    pub fn new(
        timezone: Tz,
        periods: Vec<Period>,
        holidays: BTreeSet<NaiveDate>,
        prewarm: Duration,
    ) -> Result<Self, InvalidValue> {
        if prewarm < Duration::zero() || prewarm > MAX_PREWARM {
            return Err(InvalidValue(format!(
                "prewarm must be between 0s and {}",
                super::values::format_duration(MAX_PREWARM)
            )));
        }
        Ok(Self { timezone, periods, holidays, prewarm })
    }

    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    pub fn periods(&self) -> &[Period] {
        &self.periods
    }

    pub fn prewarm(&self) -> Duration {
        self.prewarm
    }

    pub fn holidays(&self) -> &BTreeSet<NaiveDate> {
        &self.holidays
    }

    /// The instant a local wall-clock time takes effect: itself when it exists once, its first occurrence in
    /// a fold, and the first valid instant after a gap.
    pub fn resolve_local(&self, local: NaiveDateTime) -> DateTime<Utc> {
        resolve_local(self.timezone, local)
    }

    fn local_date(&self, instant: DateTime<Utc>) -> NaiveDate {
        instant.with_timezone(&self.timezone).date_naive()
    }

    fn day_start(&self, date: NaiveDate) -> DateTime<Utc> {
        self.resolve_local(date.and_time(NaiveTime::MIN))
    }

    /// The holiday whose local day contains `instant`, if any.
    /// Whether the local day of `instant` is one of the schedule's holidays.
    pub fn is_holiday(&self, instant: DateTime<Utc>) -> bool {
        self.holiday_at(instant).is_some()
    }

    fn holiday_at(&self, instant: DateTime<Utc>) -> Option<NaiveDate> {
        let around = self.local_date(instant);
        [around.pred_opt(), Some(around), around.succ_opt()].into_iter().flatten().find(|date| {
            self.holidays.contains(date)
                && date
                    .succ_opt()
                    .is_some_and(|next| self.day_start(*date) <= instant && instant < self.day_start(next))
        })
    }

    /// The occurrences of all periods whose start falls on local `date` (none on a holiday).
    fn occurrences_on(&self, date: NaiveDate) -> impl Iterator<Item = Occurrence> + '_ {
        let holiday = self.holidays.contains(&date);
        self.periods.iter().enumerate().filter_map(move |(index, period)| {
            if holiday || !period.runs_on(date) {
                return None;
            }
            let start = self.resolve_local(date.and_time(period.start));
            let end_date = if period.end > period.start { date } else { date.succ_opt()? };
            let end = self.resolve_local(end_date.and_time(period.end));
            // A period wholly inside a gap has no valid instants that day.
            (end > start).then_some(Occurrence { period: index, prewarm_from: start - self.prewarm, start, end })
        })
    }

    fn dates_around(&self, instant: DateTime<Utc>) -> impl Iterator<Item = NaiveDate> {
        let date = self.local_date(instant);
        // Occurrences reach back one day (midnight crossing) and forward one day (prewarm up to 24 h, DST slop).
        (-1..=2).filter_map(move |offset| date.checked_add_signed(Duration::days(offset)))
    }

    /// The phase and its reason at `instant`. Pure.
    pub fn state_at(&self, instant: DateTime<Utc>) -> ScheduleState {
        if let Some(date) = self.holiday_at(instant) {
            return ScheduleState { phase: Phase::OffHours, reason: Reason::Holiday { date } };
        }
        let mut prewarm = None;
        for occurrence in self.dates_around(instant).flat_map(|date| self.occurrences_on(date)) {
            if occurrence.start <= instant && instant < occurrence.end {
                return ScheduleState {
                    phase: Phase::InHours,
                    reason: Reason::InPeriod { period: occurrence.period, since: occurrence.start },
                };
            }
            if occurrence.prewarm_from <= instant && instant < occurrence.start {
                prewarm.get_or_insert(Reason::Prewarm { period: occurrence.period, starts_at: occurrence.start });
            }
        }
        match prewarm {
            Some(reason) => ScheduleState { phase: Phase::InHours, reason },
            None => ScheduleState { phase: Phase::OffHours, reason: Reason::OutsidePeriods },
        }
    }

    /// The phase at `instant`. Pure.
    pub fn phase_at(&self, instant: DateTime<Utc>) -> Phase {
        self.state_at(instant).phase
    }

    /// The first instant strictly after `after` at which the phase differs from the phase at `after`, or
    /// `None` when it does not change within about two years. Pure.
    pub fn next_transition(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let current = self.phase_at(after);
        let first = self.local_date(after).pred_opt()?;
        let mut window_start = first;
        let mut horizon = 14;
        while (window_start - first).num_days() < HORIZON_DAYS {
            let window_end = window_start.checked_add_signed(Duration::days(horizon))?;
            // Every boundary earlier than the start of `window_end` comes from a date before `window_end + 2`.
            let limit = self.day_start(window_end);
            let mut boundaries = Vec::new();
            let mut date = window_start.pred_opt()?;
            while date <= window_end.checked_add_signed(Duration::days(2))? {
                for occurrence in self.occurrences_on(date) {
                    boundaries.extend([occurrence.prewarm_from, occurrence.start, occurrence.end]);
                }
                if self.holidays.contains(&date) {
                    boundaries.push(self.day_start(date));
                    boundaries.push(self.day_start(date.succ_opt()?));
                }
                date = date.succ_opt()?;
            }
            boundaries.sort_unstable();
            boundaries.dedup();
            if let Some(found) = boundaries
                .into_iter()
                .filter(|boundary| *boundary > after && *boundary <= limit)
                .find(|boundary| self.phase_at(*boundary) != current)
            {
                return Some(found);
            }
            window_start = window_end;
            horizon = (horizon * 2).min(HORIZON_DAYS);
        }
        None
    }
}

/// The instant a local wall-clock time takes effect in `timezone` (see [`Schedule::resolve_local`]).
pub fn resolve_local(timezone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match timezone.from_local_datetime(&local) {
        LocalResult::Single(instant) => instant.with_timezone(&Utc),
        LocalResult::Ambiguous(first, second) => first.min(second).with_timezone(&Utc),
        LocalResult::None => {
            // In a gap: the first valid instant after it is where the gap ends. Zone offsets change on whole
            // minutes, so the first local minute that exists is that instant.
            let mut probe = local;
            for _ in 0..(26 * 60) {
                probe += Duration::minutes(1);
                match timezone.from_local_datetime(&probe) {
                    LocalResult::Single(instant) => return instant.with_timezone(&Utc),
                    LocalResult::Ambiguous(first, second) => return first.min(second).with_timezone(&Utc),
                    LocalResult::None => {}
                }
            }
            // No zone has a gap of more than a day; interpret with UTC rather than fail.
            Utc.from_utc_datetime(&local)
        }
    }
}

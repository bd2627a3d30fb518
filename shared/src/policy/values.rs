//! Parsers for the scalar values of the policy document: durations (`30m`, `1h30m`, `2d`), times of day
//! (`07:00`), weekdays (`mon`, `mon-fri`), shares (`0.75`) and calendar dates (`2026-12-24`).
//! Each returns a reason phrased for the operator; the caller adds the path.

use chrono::{Duration, NaiveDate, NaiveTime, Weekday};

/// A value of the policy document that does not parse or is out of range: the reason, phrased for the operator
/// (the caller adds the path).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

impl From<&str> for InvalidValue {
    fn from(reason: &str) -> Self {
        Self(reason.to_owned())
    }
}

/// Which shares a field accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareRange {
    /// `0 < value <= 1` (a target utilization, a threshold that must let something through).
    Positive,
    /// `0 <= value <= 1` (a tolerance that may be zero).
    ZeroAllowed,
}

/// The longest duration accepted: longer than any schedule, bake, retry or window needs, and far enough from
/// chrono's limits that `instant + duration` (which panics on overflow) is safe for any instant the functions
/// see. `2147483647d` would otherwise validate and then panic in the first decide step that adds it.
pub const MAX_DURATION: Duration = Duration::days(3650);

/// Parses `90s`, `30m`, `24h`, `2d`, or combinations such as `1h30m`. Zero is written `0s`; at most
/// [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, InvalidValue> {
    let bad = || InvalidValue(format!("{text:?} is not a duration (use e.g. 90s, 30m, 1h30m, 24h, 2d)"));
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::zero();
    let mut digits = String::new();
    let mut last_rank = usize::MAX;
    for ch in trimmed.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        let (rank, unit) = match ch {
            'd' => (3, Duration::days(1)),
            'h' => (2, Duration::hours(1)),
            'm' => (1, Duration::minutes(1)),
            's' => (0, Duration::seconds(1)),
            _ => return Err(bad()),
        };
        // Units must appear once each, largest first: `30m1h` is a typo, not a duration.
        if digits.is_empty() || rank >= last_rank {
            return Err(bad());
        }
        last_rank = rank;
        let amount: i32 = digits.parse().map_err(|_| bad())?;
        total += unit * amount;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    if total > MAX_DURATION {
        return Err(InvalidValue(format!(
            "{text:?} is longer than {} (the longest duration accepted)",
            format_duration(MAX_DURATION)
        )));
    }
    Ok(total)
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn format_duration(duration: Duration) -> String {
    let mut seconds = duration.num_seconds();
    if seconds == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, suffix) in [(86_400, 'd'), (3_600, 'h'), (60, 'm'), (1, 's')] {
        if seconds >= unit {
            out.push_str(&format!("{}{suffix}", seconds / unit));
            seconds %= unit;
        }
    }
    out
}

/// Parses `HH:MM` (24-hour clock).
pub fn parse_time_of_day(text: &str) -> Result<NaiveTime, InvalidValue> {
    let bad = || InvalidValue(format!("{text} is not a time of day (use HH:MM, 00:00 to 23:59)"));
    let (hours, minutes) = text.split_once(':').ok_or_else(bad)?;
    // Two ASCII digits each: `u32::from_str` would also take `+7`.
    if hours.len() != 2 || minutes.len() != 2 || !hours.bytes().chain(minutes.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let hours: u32 = hours.parse().map_err(|_| bad())?;
    let minutes: u32 = minutes.parse().map_err(|_| bad())?;
    NaiveTime::from_hms_opt(hours, minutes, 0).ok_or_else(bad)
}

fn parse_weekday(text: &str) -> Option<Weekday> {
    Some(match text {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return None,
    })
}

/// Parses `mon` or a range `mon-fri` (ranges may wrap: `fri-mon`). Returns the days in order.
pub fn parse_days(text: &str) -> Result<Vec<Weekday>, InvalidValue> {
    let bad = || {
        InvalidValue(format!(
            "{text:?} is not a weekday (use mon, tue, wed, thu, fri, sat, sun or a range like mon-fri)"
        ))
    };
    match text.split_once('-') {
        None => parse_weekday(text).map(|day| vec![day]).ok_or_else(bad),
        Some((first, last)) => {
            let first = parse_weekday(first).ok_or_else(bad)?;
            let last = parse_weekday(last).ok_or_else(bad)?;
            let mut days = vec![first];
            let mut day = first;
            while day != last {
                day = day.succ();
                days.push(day);
            }
            Ok(days)
        }
    }
}

/// Parses `YYYY-MM-DD` (four digits of year: `26-12-24` is not the year 26 but a typo).
pub fn parse_date(text: &str) -> Result<NaiveDate, InvalidValue> {
    let four_digit_year = text.split('-').next().is_some_and(|year| year.len() == 4);
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|_| four_digit_year)
        .ok_or_else(|| InvalidValue(format!("{text} is not a date (use YYYY-MM-DD)")))
}

/// A share in (0, 1], e.g. a target utilization of 0.75.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, serde::Serialize)]
pub struct Share(f64);

impl Share {
    /// Accepts a finite value in `range`.
    pub fn new(value: f64, range: ShareRange) -> Result<Self, InvalidValue> {
        let low_ok = match range {
            ShareRange::Positive => value > 0.0,
            ShareRange::ZeroAllowed => value >= 0.0,
        };
        if value.is_finite() && low_ok && value <= 1.0 {
            return Ok(Self(value));
        }
        Err(InvalidValue(match range {
            ShareRange::ZeroAllowed => format!("{value} is not a share between 0 and 1"),
            ShareRange::Positive => format!("{value} is not a share greater than 0 and at most 1"),
        }))
    }

    /// For defaults written in this crate; the value is clamped into [0, 1].
    pub(crate) fn constant(value: f64) -> Self {
        Self(value.clamp(0.0, 1.0))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (text, expected) in [
            ("90s", Some(90)),
            ("30m", Some(1_800)),
            ("1h30m", Some(5_400)),
            ("24h", Some(86_400)),
            ("2d", Some(172_800)),
            ("0s", Some(0)),
            ("1d2h3m4s", Some(93_784)),
            ("", None),
            ("30", None),
            ("m", None),
            ("30m1h", None),
            ("1h1h", None),
            ("-5m", None),
            ("5 m", None),
            ("1w", None),
        ] {
            assert_eq!(parse_duration(text).ok().map(|d| d.num_seconds()), expected, "{text:?}");
        }
    }

    #[test]
    fn durations_round_trip_through_format() {
        for seconds in [0, 1, 59, 60, 3_600, 5_400, 86_400, 93_784] {
            let duration = Duration::seconds(seconds);
            assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }
    }

    #[test]
    fn times_of_day() {
        assert_eq!(parse_time_of_day("07:00"), Ok(NaiveTime::from_hms_opt(7, 0, 0).unwrap_or_default()));
        assert_eq!(parse_time_of_day("23:59").map(|t| t.to_string()), Ok("23:59:00".into()));
        for bad in ["25:00", "7:00", "07:60", "0700", "24:00", "aa:bb", "07:00:00"] {
            let error = parse_time_of_day(bad).err().map(|e| e.0).unwrap_or_default();
            assert!(error.contains("is not a time of day"), "{bad}: {error}");
        }
        assert_eq!(
            parse_time_of_day("25:00"),
            Err(InvalidValue("25:00 is not a time of day (use HH:MM, 00:00 to 23:59)".into()))
        );
    }

    #[test]
    fn weekdays_and_ranges() {
        assert_eq!(parse_days("mon"), Ok(vec![Weekday::Mon]));
        assert_eq!(parse_days("mon-fri").map(|d| d.len()), Ok(5));
        assert_eq!(parse_days("fri-mon"), Ok(vec![Weekday::Fri, Weekday::Sat, Weekday::Sun, Weekday::Mon]));
        assert!(parse_days("monday").is_err());
        assert!(parse_days("mon-funday").is_err());
    }

    #[test]
    fn shares() {
        assert!(Share::new(0.75, ShareRange::Positive).is_ok());
        assert!(Share::new(1.0, ShareRange::Positive).is_ok());
        assert!(Share::new(0.0, ShareRange::Positive).is_err());
        assert!(Share::new(0.0, ShareRange::ZeroAllowed).is_ok());
        assert!(Share::new(1.5, ShareRange::ZeroAllowed).is_err());
        assert!(Share::new(f64::NAN, ShareRange::ZeroAllowed).is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("2026-12-24").map(|d| d.to_string()), Ok("2026-12-24".into()));
        assert!(parse_date("2026-02-30").is_err());
        assert!(parse_date("24.12.2026").is_err());
    }
}

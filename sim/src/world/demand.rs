//! User demand: concurrent sessions wanted per hour of the day (weekday and weekend profiles in a time zone),
//! interpolated minute by minute.

use crate::estate::Demand;
use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Tz;

/// Demand evaluated per minute.
#[derive(Debug, Clone)]
pub struct DemandModel {
    timezone: Tz,
    weekday: Vec<f64>,
    weekend: Vec<f64>,
    pub(super) noise: f64,
}

/// Why a demand profile was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DemandError {
    #[error("{0} is not an IANA time zone")]
    NotATimezone(String),
    #[error("demand profiles need 24 hourly values")]
    NotHourly,
}

impl DemandModel {
    pub fn from_spec(spec: &Demand) -> Result<Self, DemandError> {
        let timezone: Tz = spec.timezone.parse().map_err(|_| DemandError::NotATimezone(spec.timezone.clone()))?;
        if spec.weekday.len() != 24 || spec.weekend.as_ref().is_some_and(|w| w.len() != 24) {
            return Err(DemandError::NotHourly);
        }
        Ok(Self {
            timezone,
            weekday: spec.weekday.clone(),
            weekend: spec.weekend.clone().unwrap_or_else(|| vec![0.0; 24]),
            noise: spec.noise,
        })
    }

    /// The most sessions this profile can want (its highest hourly value with the noise on top).
    pub fn peak(&self) -> u32 {
        let highest = self.weekday.iter().chain(self.weekend.iter()).copied().fold(0.0, f64::max);
        (highest * (1.0 + 3.0 * self.noise.abs())).ceil().max(0.0) as u32
    }

    /// Wanted concurrent sessions at `now` (before noise).
    pub fn wanted(&self, now: DateTime<Utc>) -> f64 {
        let local = now.with_timezone(&self.timezone);
        let profile = |weekday: Weekday| {
            if matches!(weekday, Weekday::Sat | Weekday::Sun) { &self.weekend } else { &self.weekday }
        };
        let hour = local.hour() as usize;
        let this = profile(local.weekday())[hour];
        let next_weekday = if hour == 23 { local.weekday().succ() } else { local.weekday() };
        let next = profile(next_weekday)[(hour + 1) % 24];
        let fraction = f64::from(local.minute()) / 60.0;
        this + (next - this) * fraction
    }
}

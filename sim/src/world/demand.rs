//! User demand: concurrent sessions wanted per hour of the day (weekday and weekend profiles in a time zone),
//! interpolated minute by minute, times a relative noise that drifts slowly.

use crate::estate::Demand;
use crate::rng::Rng;
use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Tz;

/// How much of the noise one minute keeps into the next (its correlation time is about half an hour).
const DRIFT_KEEP: f64 = 0.97;

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

    /// The next minute's relative noise after `drift`. Noise drifts slowly (an AR(1) walk with standard
    /// deviation `noise`, uniform shocks, kept within 3 standard deviations), as real demand does; independent
    /// per-minute jitter would make users leave and return every minute.
    pub(super) fn next_drift(&self, drift: f64, rng: &mut Rng) -> f64 {
        if self.noise <= 0.0 {
            return drift;
        }
        let shock = (rng.unit() * 2.0 - 1.0) * 3f64.sqrt() * self.noise * (1.0 - DRIFT_KEEP * DRIFT_KEEP).sqrt();
        (DRIFT_KEEP * drift + shock).clamp(-3.0 * self.noise, 3.0 * self.noise)
    }

    /// Wanted concurrent sessions `minutes` after `now` that are exceeded with the probability a standard normal
    /// exceeds `z`, knowing the curve and the noise law and that the noise is `drift` now: what a scaler that
    /// knew everything but the noise still to come would have to provision (the noise ahead taken as normal).
    pub fn quantile_ahead(&self, now: DateTime<Utc>, drift: f64, minutes: i64, z: f64) -> f64 {
        let keep = DRIFT_KEEP.powi(i32::try_from(minutes.max(0)).unwrap_or(i32::MAX));
        let spread = self.noise.abs() * (1.0 - keep * keep).sqrt();
        let noise = (keep * drift + z * spread).clamp(-3.0 * self.noise.abs(), 3.0 * self.noise.abs());
        (self.wanted(now + chrono::Duration::minutes(minutes)) * (1.0 + noise)).max(0.0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn flat(level: f64, noise: f64) -> DemandModel {
        DemandModel::from_spec(&Demand {
            timezone: "UTC".into(),
            weekday: vec![level; 24],
            weekend: None,
            noise,
            session_minutes: 60,
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_quantile_ahead_starts_at_todays_noise_and_widens_towards_the_curve() {
        let monday = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).single().unwrap_or_default();
        let demand = flat(100.0, 0.1);
        // now: exactly today's noise, whatever the quantile
        assert!((demand.quantile_ahead(monday, 0.1, 0, 2.0) - 110.0).abs() < 1e-9);
        // ahead: today's noise fades (0.97 a minute) and the median follows it down to the curve
        let median = |minutes| demand.quantile_ahead(monday, 0.1, minutes, 0.0);
        assert!((median(10) - 100.0 * (1.0 + 0.1 * 0.97f64.powi(10))).abs() < 1e-9);
        assert!(median(1) > median(10) && median(10) > median(60) && median(600) > 100.0);
        // a higher quantile asks for more, and more the further ahead
        let high = |minutes| demand.quantile_ahead(monday, 0.0, minutes, 2.0);
        assert!(high(10) > median(10) - 100.0 * 0.1 * 0.97f64.powi(10) && high(15) > high(10));
        // never beyond the noise's bounds (3 standard deviations), never below nobody
        assert!((demand.quantile_ahead(monday, 0.3, 5, 3.0) - 130.0).abs() < 1e-9);
        assert!(demand.quantile_ahead(monday, -0.3, 5, -3.0) >= 0.0);
        // without noise, the curve itself
        assert!((flat(40.0, 0.0).quantile_ahead(monday, 0.0, 10, 2.0) - 40.0).abs() < 1e-9);
    }
}

//! Time as a dependency: every component that needs "now" takes a [`Clock`], so the decide step stays pure
//! (it receives `now` as an argument) and the simulator and tests can run on a virtual clock.

use chrono::{DateTime, Duration, Utc};
use std::sync::{Arc, Mutex, PoisonError};

/// A source of the current instant.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock of the machine.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to. Clones share the same instant.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl VirtualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self { now: Arc::new(Mutex::new(start)) }
    }

    /// Sets the clock to `instant`; a virtual clock may be moved backwards on purpose (tests of clock skew).
    pub fn set(&self, instant: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = instant;
    }

    /// Moves the clock forward by `by` and returns the new instant.
    pub fn advance(&self, by: Duration) -> DateTime<Utc> {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
        *now
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn virtual_clock_moves_only_when_told_and_clones_share_time() {
        let start = Utc.with_ymd_and_hms(2026, 3, 29, 0, 0, 0).single().unwrap_or_default();
        let clock = VirtualClock::new(start);
        let shared = clock.clone();
        assert_eq!(clock.now(), start);
        assert_eq!(clock.advance(Duration::minutes(90)), start + Duration::minutes(90));
        assert_eq!(shared.now(), start + Duration::minutes(90));
        shared.set(start);
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn system_clock_is_close_to_chrono_now() {
        let delta = SystemClock.now() - Utc::now();
        assert!(delta.num_seconds().abs() < 5);
    }
}

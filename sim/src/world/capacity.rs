//! Capacity and demand of a pool or fleet, minute by minute: units provisioned after a delay, sessions started
//! while capacity lasts, and the running totals (capacity-hours, served and unserved session-minutes).

use super::demand::DemandModel;
use super::{Pending, durations};
use crate::rng::Rng;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// Capacity and the sessions using it, shared by pools and fleets. Units are sessions for pools and
/// multi-session fleets and instances for single-session fleets (`sessions_per_unit` converts).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Capacity {
    pub desired: u32,
    pub actual: u32,
    pub active_sessions: u32,
    pub sessions_per_unit: u32,
    /// Capacity being added: each increase becomes usable on its own after the provisioning delay.
    pub provisioning: Vec<(DateTime<Utc>, u32)>,
}

impl Capacity {
    pub(super) fn new(desired: u32, sessions_per_unit: u32, running: bool) -> Self {
        Self {
            desired,
            actual: if running { desired } else { 0 },
            active_sessions: 0,
            sessions_per_unit: sessions_per_unit.max(1),
            provisioning: Vec::new(),
        }
    }

    /// Sessions the current units can hold.
    pub fn session_capacity(&self) -> u32 {
        self.actual * self.sessions_per_unit
    }

    /// Sessions asked for and still provisioning (each increase arrives after the provisioning delay).
    pub fn incoming_sessions(&self) -> u32 {
        let target = self.provisioning.iter().map(|(_, target)| (*target).min(self.desired)).max().unwrap_or(0);
        target.saturating_sub(self.actual) * self.sessions_per_unit
    }

    /// Units that carry at least one session (never removed by scale-in).
    pub fn units_in_use(&self) -> u32 {
        self.active_sessions.div_ceil(self.sessions_per_unit)
    }

    pub fn set_desired(&mut self, desired: u32, now: DateTime<Utc>) {
        self.desired = desired;
        if desired > self.actual {
            self.provisioning.push((now + Duration::minutes(durations::PROVISION), desired));
        } else {
            // Scale-in never ends an active session: keep the units in use.
            self.actual = desired.max(self.units_in_use());
            self.provisioning.clear();
        }
    }

    fn tick(&mut self, now: DateTime<Utc>) {
        let desired = self.desired;
        let mut actual = self.actual;
        self.provisioning.retain(|(ready, target)| {
            let done = *ready <= now;
            if done {
                actual = actual.max((*target).min(desired));
            }
            !done
        });
        self.actual = actual;
        if self.desired < self.actual {
            self.actual = self.desired.max(self.units_in_use());
        }
    }
}

/// Running totals of one resource, for cost and service-level measurement.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Units (sessions or instances) running, in hours.
    pub capacity_hours: f64,
    pub served_session_minutes: u64,
    /// Sessions that started (users who found capacity).
    pub sessions_started: u64,
    pub unserved_session_minutes: u64,
    /// Users who wanted a session and found no capacity (each shortfall counted once).
    pub unserved_requests: u64,
    shortfall: u32,
    /// Sessions wanted in the last simulated minute (for charts).
    pub wanted_now: u32,
    /// The current relative demand noise ([`DemandModel::next_drift`]).
    #[serde(skip)]
    drift: f64,
    /// Minutes with users left without a session, and how many (the first 10,000).
    #[serde(skip)]
    pub shortfalls: Vec<(DateTime<Utc>, u32)>,
    /// Free sessions (running capacity not in use, and capacity asked for that is on its way) from each minute
    /// they changed on, while anyone wants a session (`None`: nobody does): what a scaler under pressure had to
    /// see, for detection latency. Capacity on its way counts: a scaler that asked ahead of the pressure has
    /// nothing left to detect.
    #[serde(skip)]
    pub free: Vec<(DateTime<Utc>, Option<u32>)>,
}

impl Totals {
    /// The demand's relative noise this minute.
    pub fn drift(&self) -> f64 {
        self.drift
    }

    /// Users who wanted a session: those who got one and those who found no capacity.
    pub fn session_requests(&self) -> u64 {
        self.sessions_started + self.unserved_requests
    }
}

/// What one simulated minute changes of a pool or a fleet (both scale the same way).
pub(super) struct Scaled<'a> {
    pub state: &'a mut String,
    pub pending: &'a mut Option<Pending>,
    pub capacity: &'a mut Capacity,
    pub totals: &'a mut Totals,
    pub demand: Option<&'a DemandModel>,
}

impl Scaled<'_> {
    /// One minute of a pool or fleet: due state change, capacity provisioning, then user demand.
    pub(super) fn step(self, now: DateTime<Utc>, rng: &mut Rng) {
        let Scaled { state, pending, capacity, totals, demand } = self;
        if let Some(due) = pending.take_if(|p| p.at <= now) {
            *state = due.state;
            match state.as_str() {
                "RUNNING" if capacity.actual == 0 => capacity.actual = capacity.desired,
                "STOPPED" => {
                    capacity.actual = 0;
                    capacity.active_sessions = 0;
                }
                _ => {}
            }
        }
        // A pool keeps serving while UPDATING; a fleet has no such state.
        let running = matches!(state.as_str(), "RUNNING" | "UPDATING");
        capacity.tick(now);
        serve_demand(capacity, totals, demand, running, now, rng);
    }
}

/// One minute of user demand against one resource's capacity.
fn serve_demand(
    capacity: &mut Capacity,
    totals: &mut Totals,
    demand: Option<&DemandModel>,
    running: bool,
    now: DateTime<Utc>,
    rng: &mut Rng,
) {
    if running {
        totals.capacity_hours += f64::from(capacity.actual) / 60.0;
    }
    let Some(demand) = demand else { return };
    totals.drift = demand.next_drift(totals.drift, rng);
    let jitter = 1.0 + totals.drift;
    let wanted = (demand.wanted(now) * jitter).round().max(0.0) as u32;
    totals.wanted_now = wanted;
    if !running {
        capacity.active_sessions = 0;
    }
    if wanted < capacity.active_sessions {
        capacity.active_sessions = wanted;
    }
    let arrivals = wanted.saturating_sub(capacity.active_sessions);
    let free = if running { capacity.session_capacity().saturating_sub(capacity.active_sessions) } else { 0 };
    let served = arrivals.min(free);
    capacity.active_sessions += served;
    totals.sessions_started += u64::from(served);
    let missed = arrivals - served;
    let incoming = if running { capacity.incoming_sessions() } else { 0 };
    let free_now = (wanted > 0).then(|| free - served + incoming);
    if totals.free.last().is_none_or(|(_, last)| *last != free_now) {
        totals.free.push((now, free_now));
    }
    totals.served_session_minutes += u64::from(capacity.active_sessions);
    totals.unserved_session_minutes += u64::from(missed);
    if missed > 0 && totals.shortfalls.len() < 10_000 {
        totals.shortfalls.push((now, missed));
    }
    totals.unserved_requests += u64::from(missed.saturating_sub(totals.shortfall));
    totals.shortfall = missed;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn capacity_asked_for_is_incoming_until_it_arrives_and_a_scale_in_cancels_it() {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).single().unwrap_or_default();
        let mut capacity = Capacity::new(4, 2, true); // 4 instances of 2 sessions each
        assert_eq!(capacity.incoming_sessions(), 0);
        capacity.set_desired(6, t0);
        capacity.set_desired(9, t0 + Duration::minutes(2));
        assert_eq!(capacity.incoming_sessions(), 10, "5 instances on their way");
        capacity.tick(t0 + Duration::minutes(durations::PROVISION));
        assert_eq!((capacity.actual, capacity.incoming_sessions()), (6, 6), "the first increase arrived");
        capacity.set_desired(5, t0 + Duration::minutes(11));
        assert_eq!((capacity.actual, capacity.incoming_sessions()), (5, 0));
    }
}

//! Detection latency: from the minute a pool or fleet comes under pressure to the first call that changes its
//! capacity. Pressure means users want sessions and fewer sessions are free or on their way than the rule's
//! buffer (at least one: a full resource is under pressure even with no buffer). Capacity on its way counts
//! because a scaler that asked for it before the pressure began had already seen it coming: it has nothing left
//! to detect, and a later call for other reasons is no measure of its latency. The same measure is applied to
//! the pool-scaler's run and to Application Auto Scaling's, on the same demand.
//!
//! An episode that ends without a call is not counted as answered. This happens when capacity asked for earlier
//! arrives, demand recedes, or the resource is at its maximum. Those episodes are counted apart, as `unanswered`.
//! The buffer is read where the free sessions change, so a phase change alone starts no episode.

use super::rules::{View, governing_rule, phase_bounds};
use autopilot_shared::policy::Policy;
use autopilot_sim::calllog::CallRecord;
use autopilot_sim::world::{Totals, World};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// The operations that change a pool's or fleet's capacity.
const CAPACITY_CALLS: [&str; 4] = ["UpdateFleet", "StartFleet", "UpdateWorkspacesPool", "StartWorkspacesPool"];

/// Detection latency over a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Pressure episodes a capacity call answered.
    pub answered: u64,
    /// Pressure episodes that ended without one.
    pub unanswered: u64,
    pub p50_seconds: Option<i64>,
    pub p95_seconds: Option<i64>,
    pub max_seconds: Option<i64>,
}

/// The pressure episodes in a resource's record of free sessions, as (start, end): `threshold` gives the
/// free sessions below which an instant is under pressure; an episode still open at `to` ends there.
pub fn episodes(
    free: &[(DateTime<Utc>, Option<u32>)],
    threshold: impl Fn(DateTime<Utc>) -> u32,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut episodes = Vec::new();
    let mut open: Option<DateTime<Utc>> = None;
    for (at, free) in free {
        let pressure = free.is_some_and(|free| free < threshold(*at).max(1));
        match (open, pressure) {
            (None, true) => open = Some(*at),
            (Some(start), false) => {
                episodes.push((start, *at));
                open = None;
            }
            _ => {}
        }
    }
    episodes.extend(open.map(|start| (start, to)));
    episodes
}

/// Each episode's latency to the first of `calls` (sorted instants) within it, and the episodes none answered.
pub fn latencies(episodes: &[(DateTime<Utc>, DateTime<Utc>)], calls: &[DateTime<Utc>]) -> (Vec<Duration>, u64) {
    let mut answered = Vec::new();
    let mut unanswered = 0;
    for (start, end) in episodes {
        match calls.iter().find(|at| *at >= start && *at <= end) {
            Some(at) => answered.push(*at - *start),
            None => unanswered += 1,
        }
    }
    (answered, unanswered)
}

/// The latency summary: nearest-rank percentiles.
pub fn summarize(mut latencies: Vec<Duration>, unanswered: u64) -> Latency {
    latencies.sort();
    let rank = |p: f64| {
        let index = ((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len().max(1)) - 1;
        latencies.get(index).map(|d| d.num_seconds())
    };
    Latency {
        answered: latencies.len() as u64,
        unanswered,
        p50_seconds: rank(0.5),
        p95_seconds: rank(0.95),
        max_seconds: latencies.last().map(|d| d.num_seconds()),
    }
}

/// Detection latency over every pool and fleet a capacity rule governs in `world`, against the capacity calls
/// of `calls`, for the episodes that start from `from` on.
pub(super) fn detection(
    world: &World,
    calls: &[CallRecord],
    policy: &Policy,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Latency {
    let mut all = Vec::new();
    let mut unanswered = 0;
    let mut measure = |id: &str, view: &View<'_>, autoscaled: bool, totals: &Totals| {
        let Some(rule) = governing_rule(policy, view, autoscaled) else { return };
        let threshold = |at: DateTime<Utc>| phase_bounds(rule, at).1.buffer;
        let mut capacity_calls: Vec<DateTime<Utc>> = calls
            .iter()
            .filter(|c| c.ok() && c.resource.as_deref() == Some(id) && CAPACITY_CALLS.contains(&c.operation.as_str()))
            .map(|c| c.at)
            .collect();
        capacity_calls.sort();
        let mut measured = episodes(&totals.free, threshold, to);
        measured.retain(|(start, _)| *start >= from);
        let (answered, missed) = latencies(&measured, &capacity_calls);
        all.extend(answered);
        unanswered += missed;
    };
    for pool in world.pools.values() {
        let view = View { id: &pool.id, name: &pool.name, tags: &pool.tags };
        measure(&pool.id, &view, pool.application_autoscaling, &pool.totals);
    }
    for fleet in world.fleets.values() {
        let view = View { id: &fleet.name, name: &fleet.name, tags: &fleet.tags };
        measure(&fleet.name, &view, fleet.application_autoscaling, &fleet.totals);
    }
    summarize(all, unanswered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).single().unwrap_or_default() + Duration::minutes(minute)
    }

    #[test]
    fn an_episode_runs_from_the_minute_free_sessions_fall_below_the_buffer_to_the_minute_they_recover() {
        let free = [(at(0), Some(5)), (at(3), Some(1)), (at(4), Some(0)), (at(9), Some(4)), (at(12), None)];
        assert_eq!(episodes(&free, |_| 3, at(60)), vec![(at(3), at(9))]);
        // no buffer: only a full resource is under pressure
        assert_eq!(episodes(&free, |_| 0, at(60)), vec![(at(4), at(9))]);
    }

    #[test]
    fn nobody_wanting_a_session_is_no_pressure_and_an_open_episode_ends_with_the_run() {
        let free = [(at(0), None), (at(30), Some(0))];
        assert_eq!(episodes(&free, |_| 2, at(60)), vec![(at(30), at(60))]);
    }

    #[test]
    fn the_latency_is_to_the_first_call_within_the_episode() {
        let episodes = [(at(3), at(9)), (at(20), at(25))];
        let calls = [at(1), at(5), at(7), at(40)];
        let (answered, unanswered) = latencies(&episodes, &calls);
        assert_eq!(answered, vec![Duration::minutes(2)]);
        assert_eq!(unanswered, 1, "the second episode ended before any call");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let latencies: Vec<Duration> = (1..=20).map(Duration::minutes).collect();
        let summary = summarize(latencies, 3);
        assert_eq!(summary.answered, 20);
        assert_eq!(summary.unanswered, 3);
        assert_eq!(summary.p50_seconds, Some(600));
        assert_eq!(summary.p95_seconds, Some(1140));
        assert_eq!(summary.max_seconds, Some(1200));
        assert_eq!(summarize(Vec::new(), 0).p95_seconds, None);
    }
}

//! Application Auto Scaling (AAS) as an administrator sets it up instead of the pool-scaler: a target-tracking
//! policy on the capacity-utilization metric, with scheduled actions that set the minimum and maximum capacity
//! for working hours and for the night. Pure: one call per simulated minute, no IO, no clock.
//!
//! The model follows what AAS documents for target tracking:
//! - the metric is a 60-second datapoint of utilization (AppStream `CapacityUtilization`: capacity in use ÷
//!   running capacity, in percent); without running capacity there is no datapoint (`INSUFFICIENT_DATA`);
//! - the managed high alarm needs 3 of 3 datapoints above the target, the low alarm 15 of 15 below 90% of it;
//!   neither is configurable;
//! - while an alarm is in `ALARM`, the policy is evaluated every minute and sets the capacity that would bring
//!   the metric back to the target: ⌈capacity in use ÷ target⌉, within the scheduled minimum and maximum;
//! - a scale-out is never held by a cooldown, but counts what it already asked for (it only ever raises the
//!   desired capacity); a scale-in waits for the scale-in cooldown after the last scale-in and the scale-out
//!   cooldown after the last scale-out (AppStream's default for both: 300 s);
//! - a scheduled action that moves the minimum above, or the maximum below, the desired capacity moves it there
//!   at once.
//!
//! Where it simplifies AAS (docs/scaling.md says how each bends the comparison):
//! - datapoints are read the minute they happen (CloudWatch publishes them about a minute late): in AAS's favour;
//! - the scheduled actions are the policy's own phases, prewarm included, so AAS gets the same schedule;
//! - no step-scaling policies (the AppStream console's default policies): target tracking is what AWS recommends
//!   and what an administrator sets up today.

use chrono::{DateTime, Duration, Utc};
use std::collections::VecDeque;

/// Datapoints above the target that set the high alarm off: 3 of 3 one-minute datapoints.
pub const HIGH_DATAPOINTS: usize = 3;
/// Datapoints below [`LOW_SHARE`] of the target that set the low alarm off: 15 of 15.
pub const LOW_DATAPOINTS: usize = 15;
/// The low alarm's threshold as a share of the target.
pub const LOW_SHARE: f64 = 0.9;
/// AppStream fleets' default scale-out and scale-in cooldown.
pub const DEFAULT_COOLDOWN: Duration = Duration::seconds(300);

/// One target-tracking policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TargetTracking {
    /// Target utilization, percent (0–100].
    pub target: f64,
    pub scale_out_cooldown: Duration,
    pub scale_in_cooldown: Duration,
}

impl TargetTracking {
    /// A policy at `target` percent with AppStream's default cooldowns.
    pub fn at(target: f64) -> Self {
        Self { target, scale_out_cooldown: DEFAULT_COOLDOWN, scale_in_cooldown: DEFAULT_COOLDOWN }
    }
}

/// What one scalable target shows in one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minute {
    pub at: DateTime<Utc>,
    /// Running capacity (units: instances or sessions, as the resource counts them).
    pub running: u32,
    /// Units carrying at least one session.
    pub in_use: u32,
    /// The desired capacity the service holds.
    pub desired: u32,
    /// The scheduled minimum and maximum in force.
    pub min: u32,
    pub max: u32,
}

impl Minute {
    /// The metric's datapoint: utilization in percent, none without running capacity.
    pub fn utilization(&self) -> Option<f64> {
        (self.running > 0).then(|| f64::from(self.in_use.min(self.running)) * 100.0 / f64::from(self.running))
    }
}

/// Why AAS changed the desired capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// A scheduled action moved the minimum above or the maximum below the desired capacity.
    Scheduled,
    /// The high alarm: scale out.
    ScaleOut,
    /// The low alarm: scale in.
    ScaleIn,
}

/// A change of desired capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub to: u32,
    pub activity: Activity,
}

/// What AAS keeps for one scalable target: the recent datapoints and when it last scaled.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    datapoints: VecDeque<Option<f64>>,
    last_scale_out: Option<DateTime<Utc>>,
    last_scale_in: Option<DateTime<Utc>>,
}

impl Tracker {
    /// One minute: records its datapoint and returns the change AAS makes, if any. The caller applies it and,
    /// when the service refuses it (the resource is busy), calls [`Tracker::refused`].
    pub fn step(&mut self, policy: &TargetTracking, minute: &Minute) -> Option<Change> {
        self.datapoints.push_back(minute.utilization());
        while self.datapoints.len() > LOW_DATAPOINTS.max(HIGH_DATAPOINTS) {
            self.datapoints.pop_front();
        }
        let (min, max) = (minute.min, minute.max.max(minute.min));
        if minute.desired < min || minute.desired > max {
            return Some(Change { to: minute.desired.clamp(min, max), activity: Activity::Scheduled });
        }
        let wanted = (f64::from(minute.in_use) * 100.0 / policy.target.max(f64::MIN_POSITIVE)).ceil();
        let wanted = (wanted.min(f64::from(u32::MAX)) as u32).clamp(min, max);
        if self.breaching(HIGH_DATAPOINTS, |v| v > policy.target) && wanted > minute.desired {
            self.last_scale_out = Some(minute.at);
            return Some(Change { to: wanted, activity: Activity::ScaleOut });
        }
        let cooled = |last: Option<DateTime<Utc>>, cooldown: Duration| last.is_none_or(|at| minute.at - at >= cooldown);
        if self.breaching(LOW_DATAPOINTS, |v| v < policy.target * LOW_SHARE)
            && wanted < minute.desired
            && cooled(self.last_scale_in, policy.scale_in_cooldown)
            && cooled(self.last_scale_out, policy.scale_out_cooldown)
        {
            self.last_scale_in = Some(minute.at);
            return Some(Change { to: wanted, activity: Activity::ScaleIn });
        }
        None
    }

    /// The service refused the last change: it did not happen, so it starts no cooldown.
    pub fn refused(&mut self, change: Change) {
        match change.activity {
            Activity::ScaleOut => self.last_scale_out = None,
            Activity::ScaleIn => self.last_scale_in = None,
            Activity::Scheduled => {}
        }
    }

    /// Whether the last `n` datapoints all exist and all breach.
    fn breaching(&self, n: usize, breach: impl Fn(f64) -> bool) -> bool {
        self.datapoints.len() >= n && self.datapoints.iter().rev().take(n).all(|d| d.is_some_and(&breach))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 8, 0, 0).single().unwrap_or_default() + Duration::minutes(minute)
    }

    fn minute(m: i64, running: u32, in_use: u32, desired: u32) -> Minute {
        Minute { at: at(m), running, in_use, desired, min: 1, max: 100 }
    }

    /// Runs `minutes` through a fresh tracker under `policy`, the service applying each change (the desired
    /// capacity of the minutes after it is the change's); the changes with the minute they came in.
    fn run_with(policy: &TargetTracking, minutes: &[Minute]) -> Vec<(usize, Change)> {
        let mut tracker = Tracker::default();
        let mut applied: Option<u32> = None;
        let mut changes = Vec::new();
        for (i, m) in minutes.iter().enumerate() {
            let m = Minute { desired: applied.unwrap_or(m.desired), ..*m };
            if let Some(change) = tracker.step(policy, &m) {
                applied = Some(change.to);
                changes.push((i, change));
            }
        }
        changes
    }

    fn run(minutes: &[Minute]) -> Vec<(usize, Change)> {
        run_with(&TargetTracking::at(75.0), minutes)
    }

    #[test]
    fn scale_out_needs_three_minutes_above_the_target() {
        // 10 running, all in use from minute 0: the alarm fires on the third datapoint, not before.
        let minutes: Vec<_> = (0..5).map(|m| minute(m, 10, 10, 10)).collect();
        assert_eq!(run(&minutes), vec![(2, Change { to: 14, activity: Activity::ScaleOut })]);
    }

    #[test]
    fn a_dip_below_the_target_restarts_the_count() {
        let minutes = [minute(0, 10, 10, 10), minute(1, 10, 10, 10), minute(2, 10, 7, 10), minute(3, 10, 10, 10)];
        assert_eq!(run(&minutes), vec![]);
    }

    #[test]
    fn scale_in_needs_fifteen_minutes_below_ninety_percent_of_the_target() {
        // 20 running, 5 in use (25%): wanted ⌈5 ÷ 0.75⌉ = 7, on the 15th datapoint.
        let minutes: Vec<_> = (0..20).map(|m| minute(m, 20, 5, 20)).collect();
        assert_eq!(run(&minutes), vec![(14, Change { to: 7, activity: Activity::ScaleIn })]);
        // 20 running, 14 in use (70% ≥ 67.5%): never below the low threshold.
        let minutes: Vec<_> = (0..30).map(|m| minute(m, 20, 14, 20)).collect();
        assert_eq!(run(&minutes), vec![]);
    }

    #[test]
    fn a_scale_out_holds_scale_in_for_its_cooldown_but_not_another_scale_out() {
        let policy = TargetTracking { scale_out_cooldown: Duration::minutes(20), ..TargetTracking::at(75.0) };
        // 10 running, all in use: out to 14 at minute 2. The new capacity is not there yet and the sessions
        // fill what runs (12 at minute 3): a bigger need scales out again at once, cooldown or not. Then demand
        // collapses: 15 low datapoints by minute 18, but scale-in waits for the scale-out cooldown (20 minutes
        // from minute 3).
        let mut minutes: Vec<_> = (0..3).map(|m| minute(m, 10, 10, 10)).collect();
        minutes.push(minute(3, 12, 12, 14));
        minutes.extend((4..40).map(|m| minute(m, 16, 1, 16)));
        assert_eq!(
            run_with(&policy, &minutes),
            vec![
                (2, Change { to: 14, activity: Activity::ScaleOut }),
                (3, Change { to: 16, activity: Activity::ScaleOut }),
                (23, Change { to: 2, activity: Activity::ScaleIn }),
            ]
        );
    }

    #[test]
    fn scale_in_waits_for_its_own_cooldown() {
        let policy = TargetTracking { scale_in_cooldown: Duration::minutes(30), ..TargetTracking::at(75.0) };
        // 20 running, 5 in use, then 3 in use from minute 15: in to 7 at minute 14, then to 4 only 30 minutes later.
        let minutes: Vec<_> = (0..60).map(|m| minute(m, 20, if m < 15 { 5 } else { 3 }, 20)).collect();
        assert_eq!(
            run_with(&policy, &minutes),
            vec![
                (14, Change { to: 7, activity: Activity::ScaleIn }),
                (44, Change { to: 4, activity: Activity::ScaleIn }),
            ]
        );
    }

    #[test]
    fn no_running_capacity_means_no_datapoint_and_no_scale_out() {
        let minutes: Vec<_> = (0..10).map(|m| Minute { min: 0, ..minute(m, 0, 0, 0) }).collect();
        assert_eq!(run(&minutes), vec![]);
    }

    #[test]
    fn scheduled_actions_move_desired_into_the_new_bounds_at_once() {
        let morning = Minute { min: 15, max: 80, ..minute(0, 2, 0, 2) };
        assert_eq!(run(&[morning]), vec![(0, Change { to: 15, activity: Activity::Scheduled })]);
        let night = Minute { min: 1, max: 20, ..minute(0, 40, 30, 40) };
        assert_eq!(run(&[night]), vec![(0, Change { to: 20, activity: Activity::Scheduled })]);
    }

    #[test]
    fn a_refused_scale_in_starts_no_cooldown() {
        let policy = TargetTracking::at(75.0);
        let mut tracker = Tracker::default();
        let mut changes = Vec::new();
        for m in 0..17 {
            if let Some(change) = tracker.step(&policy, &minute(m, 20, 5, 20)) {
                changes.push(m);
                tracker.refused(change);
            }
        }
        assert_eq!(changes, vec![14, 15, 16], "retried every minute while the alarm lasts");
    }

    proptest! {
        /// Whatever the minutes, a change stays within the scheduled bounds, scale-out only raises and scale-in
        /// only lowers the desired capacity.
        #[test]
        fn changes_stay_in_bounds_and_go_the_right_way(
            steps in prop::collection::vec((0u32..60, 0u32..60, 0u32..60, 0u32..30, 0u32..80), 1..120),
            target in 10.0f64..=100.0,
        ) {
            let policy = TargetTracking::at(target);
            let mut tracker = Tracker::default();
            for (i, (running, in_use, desired, min, max)) in steps.into_iter().enumerate() {
                let m = Minute { at: at(i as i64), running, in_use, desired, min, max };
                if let Some(change) = tracker.step(&policy, &m) {
                    prop_assert!(change.to >= min && change.to <= max.max(min));
                    match change.activity {
                        Activity::ScaleOut => prop_assert!(change.to > desired),
                        Activity::ScaleIn => prop_assert!(change.to < desired),
                        Activity::Scheduled => prop_assert!(desired < min || desired > max.max(min)),
                    }
                }
            }
        }
    }
}

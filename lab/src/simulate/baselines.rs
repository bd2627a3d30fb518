//! The baselines a simulation is compared with, on the same estate and seed: *static* (capacity fixed at the
//! peak), *schedule-only* (the schedule's minimums, no utilization tracking), *Application Auto Scaling*
//! (target tracking with scheduled minimum and maximum, [`super::aas`]) and *the floor*; the lead-time oracle,
//! which runs the same scalable targets, is [`super::oracle`].

use super::aas::{Minute, TargetTracking, Tracker};
use super::charts::{Series, sample_world};
use super::figures::Measured;
use super::latency::{Latency, detection};
use super::rules::{View, governing_rule, phase_bounds};
use super::{Figures, Options};
use autopilot_shared::policy::{CapacityRule, Phase, Policy};
use autopilot_sim::Simulator;
use autopilot_sim::estate::Estate;
use autopilot_sim::server::SimulatorError;
use autopilot_sim::world::{Capacity, DemandModel, Totals, World};
use chrono::Duration;
use serde_json::json;
use std::collections::BTreeMap;

/// *static*: every governed resource runs all the time at its demand peak.
pub(super) fn static_baseline(estate: &Estate, policy: &Policy, options: &Options) -> Result<Figures, SimulatorError> {
    let sim = Simulator::new(estate, options.seed)?;
    sim.with_world_mut(|w| at_peak(w, policy));
    let mut measured = Measured::from(options.measure_from());
    sim.advance_to(measured.from);
    measured.reach(measured.from, &sim);
    sim.advance_to(options.to);
    Ok(measured.finish(&sim).0)
}

/// A governed pool or fleet: its id, its rule and the sessions one of its units holds.
struct Governed<'p> {
    id: String,
    rule: &'p CapacityRule,
    sessions_per_unit: u32,
}

/// Runs every governed pool and fleet at its demand peak (so all its demand is served); returns them.
fn at_peak<'p>(w: &mut World, policy: &'p Policy) -> Vec<Governed<'p>> {
    let mut governed = Vec::new();
    for pool in w.pools.values_mut() {
        let view = View { id: &pool.id, name: &pool.name, tags: &pool.tags };
        if let Some(rule) = governing_rule(policy, &view, pool.application_autoscaling) {
            let peak = pool.demand.as_ref().map_or(pool.capacity.desired, |d| d.peak());
            pool.state = "RUNNING".into();
            (pool.capacity.desired, pool.capacity.actual) = (peak, peak);
            governed.push(Governed { id: pool.id.clone(), rule, sessions_per_unit: pool.capacity.sessions_per_unit });
        }
    }
    for fleet in w.fleets.values_mut() {
        let view = View { id: &fleet.name, name: &fleet.name, tags: &fleet.tags };
        if let Some(rule) = governing_rule(policy, &view, fleet.application_autoscaling) {
            let peak = fleet.demand.as_ref().map_or(fleet.capacity.desired, |d| d.peak());
            fleet.state = "RUNNING".into();
            (fleet.capacity.desired, fleet.capacity.actual) = (peak, peak);
            let sessions_per_unit = fleet.capacity.sessions_per_unit;
            governed.push(Governed { id: fleet.name.clone(), rule, sessions_per_unit });
        }
    }
    governed
}

/// *instant*, the floor: the capacity-hours of a scaler that had, each minute, exactly the capacity that minute's
/// demand needed (within the phase's minimum and maximum) with no start-up delay, so nobody waits. No real scaler
/// reaches it; it shows how much of a gap is left. Measured on a run at the peak (all demand seen): each governed
/// resource counts max(demand, minimum) per minute, the others what they ran.
pub(super) fn instant_baseline(estate: &Estate, policy: &Policy, options: &Options) -> Result<Figures, SimulatorError> {
    let sim = Simulator::new(estate, options.seed)?;
    let governed = sim.with_world_mut(|w| at_peak(w, policy));
    let mut measured = Measured::from(options.measure_from());
    let mut floor_hours = 0.0;
    let mut now = options.from;
    while now < options.to {
        sim.advance_to(now);
        measured.reach(now, &sim);
        if now >= measured.from {
            floor_hours += sim.with_world(|w| {
                governed
                    .iter()
                    .filter_map(|g| {
                        let totals =
                            w.pools.get(&g.id).map(|p| &p.totals).or(w.fleets.get(&g.id).map(|f| &f.totals))?;
                        let bounds = phase_bounds(g.rule, now).1;
                        let units = totals.wanted_now.div_ceil(g.sessions_per_unit.max(1));
                        Some(f64::from(units.clamp(bounds.min, bounds.max.max(bounds.min))) / 60.0)
                    })
                    .sum::<f64>()
            });
        }
        now += Duration::minutes(1);
    }
    sim.advance_to(options.to);
    let (mut figures, resources) = measured.finish(&sim);
    let at_peak: f64 =
        resources.iter().filter(|r| governed.iter().any(|g| g.id == r.id)).map(|r| r.figures.capacity_hours).sum();
    figures.capacity_hours = figures.capacity_hours - at_peak + floor_hours;
    Ok(figures)
}

/// *schedule-only*: each tick, the schedule's phase minimum (start when in-hours, stop when off-hours allows it).
pub(super) fn schedule_only_baseline(
    estate: &Estate,
    policy: &Policy,
    options: &Options,
) -> Result<Figures, SimulatorError> {
    let sim = Simulator::new(estate, options.seed)?;
    let mut now = options.from;
    let mut measured = Measured::from(options.measure_from());
    while now < options.to {
        sim.advance_to(now);
        measured.reach(now, &sim);
        let snapshot = sim.with_world(|w| w.clone());
        for pool in snapshot.pools.values() {
            let Some(rule) = governing_rule(
                policy,
                &View { id: &pool.id, name: &pool.name, tags: &pool.tags },
                pool.application_autoscaling,
            ) else {
                continue;
            };
            let (phase, bounds) = phase_bounds(rule, now);
            let id = json!(pool.id);
            match pool.state.as_str() {
                "STOPPED" if (phase == Phase::InHours || bounds.min > 0) && pool.running_mode == "AUTO_STOP" => {
                    drop(sim.invoke("workspaces", "StartWorkspacesPool", &json!({ "PoolId": id })))
                }
                "RUNNING"
                    if phase == Phase::OffHours
                        && bounds.stop_when_idle
                        && bounds.min == 0
                        && pool.running_mode == "AUTO_STOP" =>
                {
                    drop(sim.invoke("workspaces", "StopWorkspacesPool", &json!({ "PoolId": id })))
                }
                "RUNNING" if pool.capacity.desired != bounds.min => drop(sim.invoke(
                    "workspaces",
                    "UpdateWorkspacesPool",
                    &json!({ "PoolId": id, "Capacity": { "DesiredUserSessions": bounds.min } }),
                )),
                _ => {}
            }
        }
        for fleet in snapshot.fleets.values() {
            let Some(rule) = governing_rule(
                policy,
                &View { id: &fleet.name, name: &fleet.name, tags: &fleet.tags },
                fleet.application_autoscaling,
            ) else {
                continue;
            };
            let (phase, bounds) = phase_bounds(rule, now);
            let name = json!(fleet.name);
            let member = if fleet.is_multi_session() { "DesiredSessions" } else { "DesiredInstances" };
            match fleet.state.as_str() {
                "STOPPED" if phase == Phase::InHours || bounds.min > 0 => {
                    drop(sim.invoke("appstream", "StartFleet", &json!({ "Name": name })))
                }
                "RUNNING" if phase == Phase::OffHours && bounds.stop_when_idle && bounds.min == 0 => {
                    drop(sim.invoke("appstream", "StopFleet", &json!({ "Name": name })))
                }
                "RUNNING" if fleet.capacity.desired != bounds.min => drop(sim.invoke(
                    "appstream",
                    "UpdateFleet",
                    &json!({ "Name": name, "ComputeCapacity": { member: bounds.min } }),
                )),
                _ => {}
            }
        }
        now += options.tick;
    }
    sim.advance_to(options.to);
    Ok(measured.finish(&sim).0)
}

/// *Application Auto Scaling*: what an administrator sets up instead of the pool-scaler. Every governed pool and
/// fleet runs all the time (AAS never stops one); scheduled actions set the minimum and maximum of the rule's
/// phase (the same schedule and prewarm the pool-scaler follows); a target-tracking policy at `target` percent
/// utilization scales between them, minute by minute, as [`super::aas`] models it. Same demand, seed and
/// start-up delays as the pool-scaler's run. With `series`, every pool and fleet is sampled at the instants the
/// pool-scaler's run samples them (each tick), for the charts.
pub(super) fn aas_baseline(
    estate: &Estate,
    policy: &Policy,
    options: &Options,
    target: f64,
    mut series: Option<&mut Series>,
) -> Result<(Figures, Latency), SimulatorError> {
    let sim = Simulator::new(estate, options.seed)?;
    let tracking = TargetTracking::at(target);
    let governed = sim.with_world_mut(|w| always_on(w, policy, options));
    let mut trackers: BTreeMap<String, Tracker> = BTreeMap::new();
    let mut now = options.from;
    let mut measured = Measured::from(options.measure_from());
    while now < options.to {
        sim.advance_to(now);
        measured.reach(now, &sim);
        for (scalable, id, rule) in &governed {
            let bounds = phase_bounds(rule, now).1;
            let Some(minute) = sim.with_world(|w| {
                let (capacity, ..) = scalable.in_world(w, id)?;
                Some(Minute {
                    at: now,
                    running: capacity.actual,
                    in_use: capacity.units_in_use(),
                    desired: capacity.desired,
                    min: bounds.min,
                    max: bounds.max,
                })
            }) else {
                continue;
            };
            let tracker = trackers.entry(id.clone()).or_default();
            if let Some(change) = tracker.step(&tracking, &minute)
                && sim.invoke(scalable.service(), scalable.operation(), &scalable.input(id, change.to)).is_err()
            {
                // Busy (a pool updating): AAS tries again at the next evaluation.
                tracker.refused(change);
            }
        }
        if let Some(series) = series.as_deref_mut()
            && (now - options.from).num_minutes() % options.tick.num_minutes().max(1) == 0
        {
            sim.with_world(|w| sample_world(w, series));
        }
        now += Duration::minutes(1);
    }
    sim.advance_to(options.to);
    let calls = sim.calls();
    let latency = sim.with_world(|w| detection(w, &calls, policy, measured.from, options.to));
    Ok((measured.finish(&sim).0, latency))
}

/// Runs every governed pool and fleet from the start at its phase minimum (AAS never stops one); returns them as
/// scalable targets, each with the rule that governs it.
pub(super) fn always_on<'p>(
    w: &mut World,
    policy: &'p Policy,
    options: &Options,
) -> Vec<(Scalable, String, &'p CapacityRule)> {
    let mut governed = Vec::new();
    for pool in w.pools.values_mut() {
        let view = View { id: &pool.id, name: &pool.name, tags: &pool.tags };
        if let Some(rule) = governing_rule(policy, &view, pool.application_autoscaling) {
            let min = phase_bounds(rule, options.from).1.min;
            pool.state = "RUNNING".into();
            (pool.capacity.desired, pool.capacity.actual) = (min, min);
            governed.push((Scalable::Pool, pool.id.clone(), rule));
        }
    }
    for fleet in w.fleets.values_mut() {
        let view = View { id: &fleet.name, name: &fleet.name, tags: &fleet.tags };
        if let Some(rule) = governing_rule(policy, &view, fleet.application_autoscaling) {
            let min = phase_bounds(rule, options.from).1.min;
            fleet.state = "RUNNING".into();
            (fleet.capacity.desired, fleet.capacity.actual) = (min, min);
            let scalable = if fleet.is_multi_session() { Scalable::MultiSessionFleet } else { Scalable::Fleet };
            governed.push((scalable, fleet.name.clone(), rule));
        }
    }
    governed
}

/// A scalable target of the AAS baseline and the call that sets its desired capacity.
#[derive(Debug, Clone, Copy)]
pub(super) enum Scalable {
    Pool,
    Fleet,
    MultiSessionFleet,
}

impl Scalable {
    /// The target `id` in a world: its capacity, its running totals and its demand.
    pub(super) fn in_world<'w>(
        self,
        w: &'w World,
        id: &str,
    ) -> Option<(&'w Capacity, &'w Totals, Option<&'w DemandModel>)> {
        match self {
            Scalable::Pool => w.pools.get(id).map(|p| (&p.capacity, &p.totals, p.demand.as_ref())),
            Scalable::Fleet | Scalable::MultiSessionFleet => {
                w.fleets.get(id).map(|f| (&f.capacity, &f.totals, f.demand.as_ref()))
            }
        }
    }

    pub(super) fn service(self) -> &'static str {
        match self {
            Scalable::Pool => "workspaces",
            Scalable::Fleet | Scalable::MultiSessionFleet => "appstream",
        }
    }

    pub(super) fn operation(self) -> &'static str {
        match self {
            Scalable::Pool => "UpdateWorkspacesPool",
            Scalable::Fleet | Scalable::MultiSessionFleet => "UpdateFleet",
        }
    }

    pub(super) fn input(self, id: &str, desired: u32) -> serde_json::Value {
        match self {
            Scalable::Pool => json!({ "PoolId": id, "Capacity": { "DesiredUserSessions": desired } }),
            Scalable::Fleet => json!({ "Name": id, "ComputeCapacity": { "DesiredInstances": desired } }),
            Scalable::MultiSessionFleet => json!({ "Name": id, "ComputeCapacity": { "DesiredSessions": desired } }),
        }
    }
}

//! The two baselines a simulation is compared with, on the same estate and seed: *static* (capacity fixed at the
//! peak) and *schedule-only* (the schedule's minimums, no utilization tracking).

use super::figures::figures;
use super::{Figures, Options};
use autopilot_shared::policy::{Phase, Policy, ResourceView};
use autopilot_sim::Simulator;
use autopilot_sim::estate::Estate;
use autopilot_sim::server::SimulatorError;
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::BTreeMap;

/// The capacity rule governing a resource, if exactly one selects it and nothing tells us to keep off.
fn governing_rule<'a>(
    policy: &'a Policy,
    resource: &impl ResourceView,
    application_autoscaling: bool,
) -> Option<&'a autopilot_shared::policy::CapacityRule> {
    let rules: Vec<_> = policy.capacity.iter().filter(|r| r.select.matches(resource)).collect();
    let skip = resource.tag("autopilot/skip").is_some_and(|v| !v.eq_ignore_ascii_case("false"));
    (rules.len() == 1 && !skip && !application_autoscaling).then(|| rules[0])
}

struct View<'a> {
    id: &'a str,
    name: &'a str,
    tags: &'a BTreeMap<String, String>,
}

impl ResourceView for View<'_> {
    fn id(&self) -> &str {
        self.id
    }
    fn name(&self) -> Option<&str> {
        Some(self.name)
    }
    fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

/// *static*: every governed resource runs all the time at its demand peak.
pub(super) fn static_baseline(estate: &Estate, policy: &Policy, options: &Options) -> Result<Figures, SimulatorError> {
    let sim = Simulator::new(estate, options.seed)?;
    sim.with_world_mut(|w| {
        for pool in w.pools.values_mut() {
            if governing_rule(
                policy,
                &View { id: &pool.id, name: &pool.name, tags: &pool.tags },
                pool.application_autoscaling,
            )
            .is_some()
            {
                let peak = pool.demand.as_ref().map_or(pool.capacity.desired, |d| d.peak());
                pool.state = "RUNNING".into();
                pool.capacity.desired = peak;
                pool.capacity.actual = peak;
            }
        }
        for fleet in w.fleets.values_mut() {
            if governing_rule(
                policy,
                &View { id: &fleet.name, name: &fleet.name, tags: &fleet.tags },
                fleet.application_autoscaling,
            )
            .is_some()
            {
                let peak = fleet.demand.as_ref().map_or(fleet.capacity.desired, |d| d.peak());
                fleet.state = "RUNNING".into();
                fleet.capacity.desired = peak;
                fleet.capacity.actual = peak;
            }
        }
    });
    sim.advance_to(options.to);
    // Read the call log first: `with_world` holds the simulator's lock.
    let calls = sim.calls();
    Ok(sim.with_world(|w| figures(w, &calls).0))
}

/// *schedule-only*: each tick, the schedule's phase minimum (start when in-hours, stop when off-hours allows it).
pub(super) fn schedule_only_baseline(
    estate: &Estate,
    policy: &Policy,
    options: &Options,
) -> Result<Figures, SimulatorError> {
    let sim = Simulator::new(estate, options.seed)?;
    let mut now = options.from;
    while now < options.to {
        sim.advance_to(now);
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
    // Read the call log first: `with_world` holds the simulator's lock.
    let calls = sim.calls();
    Ok(sim.with_world(|w| figures(w, &calls).0))
}

fn phase_bounds(
    rule: &autopilot_shared::policy::CapacityRule,
    now: DateTime<Utc>,
) -> (Phase, &autopilot_shared::policy::Bounds) {
    let phase = rule.schedule.as_ref().map_or(Phase::InHours, |s| s.schedule.phase_at(now));
    (phase, if phase == Phase::InHours { &rule.in_hours } else { &rule.off_hours })
}

//! What a simulation charts, sampled at every tick: each pool's and fleet's demand and capacity, and devices on
//! the newest software set per rollout ring; and their SVGs (see [`crate::chart`]).

use crate::chart::{Line, line_chart};
use autopilot_shared::policy::Policy;
use autopilot_shared::policy::tags::DEFAULT_TAG_PREFIX;
use autopilot_sim::world::World;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Where the rollout chart is written, relative to the output folder (and the report).
pub(super) const ROLLOUT_CHART: &str = "charts/rollout.svg";
/// Where the WorkSpaces health chart is written, relative to the output folder (and the report).
pub(super) const HEALTH_CHART: &str = "charts/workspaces-health.svg";

/// One sample of a resource for the charts.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    at: DateTime<Utc>,
    wanted: u32,
    in_use: u32,
    desired: u32,
}

/// Every pool's and fleet's samples, by id.
pub(super) type Series = BTreeMap<String, Vec<Sample>>;

/// Samples one pool or fleet.
pub(super) fn sample(now: DateTime<Utc>, capacity: &autopilot_sim::world::Capacity, wanted: u32) -> Sample {
    Sample { at: now, wanted, in_use: capacity.active_sessions, desired: capacity.desired }
}

/// Samples every pool and fleet of `world` into `series`.
pub(super) fn sample_world(world: &World, series: &mut Series) {
    for pool in world.pools.values() {
        series.entry(pool.id.clone()).or_default().push(sample(world.now, &pool.capacity, pool.totals.wanted_now));
    }
    for fleet in world.fleets.values() {
        series.entry(fleet.name.clone()).or_default().push(sample(world.now, &fleet.capacity, fleet.totals.wanted_now));
    }
}

/// Where a resource's chart is written, relative to the output folder (and the report).
pub(super) fn resource_chart(id: &str) -> String {
    format!("charts/{id}.svg")
}

/// Where the cost-versus-unserved chart of every run is written, relative to the output folder (and the report).
pub(super) const COST_CHART: &str = "charts/cost-vs-unserved.svg";

/// Sessions wanted and not served at a sample.
fn unserved(sample: &Sample) -> u32 {
    sample.wanted.saturating_sub(sample.in_use)
}

/// A line chart of one resource on one time axis: sessions wanted; the pool-scaler's desired capacity and the
/// sessions it left unserved; and, when given, the same two for the Application Auto Scaling baseline (sampled
/// at the same instants). Plain SVG.
pub(super) fn chart(title: &str, samples: &[Sample], aas: Option<&[Sample]>) -> String {
    let at: Vec<DateTime<Utc>> = samples.iter().map(|s| s.at).collect();
    let line = |label, colour, samples: &[Sample], value: fn(&Sample) -> u32| Line {
        label,
        colour,
        values: samples.iter().map(value).collect(),
    };
    let mut lines = vec![
        line("wanted", "#999999", samples, |s| s.wanted),
        line("pool-scaler capacity", "#1f77b4", samples, |s| s.desired),
        line("pool-scaler unserved", "#d62728", samples, unserved),
    ];
    if let Some(aas) = aas.filter(|aas| aas.len() == samples.len()) {
        lines.push(line("AAS capacity", "#ff7f0e", aas, |s| s.desired));
        lines.push(line("AAS unserved", "#9467bd", aas, unserved));
    }
    line_chart(title, &at, &lines)
}

/// Cost (capacity-hours) against unserved session-minutes, one point per run (plain SVG).
pub(super) fn cost_chart(runs: &[(String, &super::Figures)]) -> String {
    let points: Vec<crate::chart::Point<'_>> = runs
        .iter()
        .map(|(name, f)| crate::chart::Point {
            label: name.as_str(),
            x: f.capacity_hours,
            y: f.unserved_session_minutes as f64,
        })
        .collect();
    crate::chart::scatter_chart(
        "cost against unserved demand, every run",
        "capacity-hours",
        "unserved session-minutes",
        &points,
    )
}

/// Devices on the newest software set per rollout ring over time (for the rollout chart).
#[derive(Debug, Default)]
pub(super) struct RolloutTimeline {
    at: Vec<DateTime<Utc>>,
    rings: BTreeMap<usize, (String, Vec<u32>)>,
}

impl RolloutTimeline {
    pub(super) fn sample(&mut self, world: &World, policy: &Policy) {
        let Some(rollouts) = &policy.rollouts else { return };
        let Some(newest) = world.latest_software_set() else { return };
        let environments: Vec<softwareset_roller::observe::EnvironmentView> = world
            .environments
            .values()
            .map(|e| softwareset_roller::observe::EnvironmentView {
                id: e.id.clone(),
                name: e.name.clone(),
                arn: String::new(),
                desired_software_set_id: e.desired_software_set_id.clone(),
                update_mode: e.update_mode.clone(),
                // The chart groups devices by ring; when they update is the world's.
                window: Default::default(),
                tags: e.tags.clone(),
            })
            .collect();
        self.at.push(world.now);
        let tags = softwareset_roller::plan::Tags { prefix: DEFAULT_TAG_PREFIX, now: world.now };
        for (index, ring) in softwareset_roller::plan::rings(rollouts, &environments, tags).into_iter().enumerate() {
            let members: Vec<&str> = ring.environments.iter().map(|e| e.id.as_str()).collect();
            let on_newest = world
                .devices
                .values()
                .filter(|d| members.contains(&d.environment_id.as_str()) && d.current_software_set_id == newest)
                .count() as u32;
            self.rings.entry(index).or_insert_with(|| (ring.name.clone(), Vec::new())).1.push(on_newest);
        }
    }

    pub(super) fn chart(&self) -> Option<String> {
        const COLOURS: [&str; 4] = ["#d62728", "#ff7f0e", "#1f77b4", "#2ca02c"];
        if self.rings.is_empty() {
            return None;
        }
        let lines: Vec<Line<'_>> = self
            .rings
            .values()
            .enumerate()
            .map(|(i, (name, values))| Line {
                label: name.as_str(),
                colour: COLOURS[i % COLOURS.len()],
                values: values.clone(),
            })
            .collect();
        Some(line_chart("devices on the newest software set, per ring", &self.at, &lines))
    }
}

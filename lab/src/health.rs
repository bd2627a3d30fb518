//! WorkSpaces health in `autopilot simulate`: hours spent unhealthy with the remediator, against a baseline run
//! of the same estate and seed without it (nobody repairs anything), the remediator's reboots, rebuilds,
//! escalations, deferrals and skips, a chart of unhealthy WorkSpaces over time in both runs, and the report
//! section.

use crate::chart::{Line, line_chart};
use autopilot_shared::ledger::audit::{AuditRecord, Outcome};
use autopilot_sim::Simulator;
use autopilot_sim::estate::Estate;
use autopilot_sim::server::SimulatorError;
use autopilot_sim::world::World;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// WorkSpaces health over the simulation (`summary.json` key `workspaces`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HealthSummary {
    pub workspaces: u64,
    /// Health faults that began (each an episode a person or the remediator has to deal with).
    pub faults: u64,
    /// WorkSpace-hours UNHEALTHY, IMPAIRED or ERROR with the remediator.
    pub unhealthy_hours: f64,
    /// WorkSpace-hours REBOOTING or REBUILDING (the price of a repair).
    pub repair_hours: f64,
    /// WorkSpace-hours UNHEALTHY, IMPAIRED or ERROR in the baseline run (no remediator).
    pub baseline_unhealthy_hours: f64,
    pub unhealthy_at_end: u64,
    pub baseline_unhealthy_at_end: u64,
    pub reboots: u64,
    pub rebuilds: u64,
    /// Escalations by cause (`unremedied`, `outage`, `error-state`, `configuration`, ...).
    pub escalations: BTreeMap<String, u64>,
    pub deferrals: u64,
    pub skips: u64,
}

/// Unhealthy WorkSpaces over time, with and without the remediator.
#[derive(Debug, Default)]
pub struct HealthTimeline {
    at: Vec<DateTime<Utc>>,
    with: Vec<u32>,
    without: Vec<u32>,
}

fn unhealthy_now(world: &World) -> u32 {
    world.workspaces.values().filter(|w| w.is_unhealthy()).count() as u32
}

impl HealthTimeline {
    /// Samples the remediated world at a tick.
    pub fn sample(&mut self, world: &World) {
        self.at.push(world.now);
        self.with.push(unhealthy_now(world));
    }

    /// The chart, when the estate has WorkSpaces.
    pub fn chart(&self) -> Option<String> {
        (!self.with.is_empty() && self.with.iter().chain(&self.without).any(|n| *n > 0)).then(|| {
            line_chart(
                "unhealthy WorkSpaces: with the remediator and without (baseline)",
                &self.at,
                &[
                    Line { label: "without", colour: "#d62728", values: self.without.clone() },
                    Line { label: "with", colour: "#2ca02c", values: self.with.clone() },
                ],
            )
        })
    }
}

/// Runs the baseline (the same estate and seed, nothing repairs anything) and samples it at the same ticks.
/// Returns its unhealthy WorkSpace-hours and how many are unhealthy at the end.
pub fn baseline(
    estate: &Estate,
    seed: u64,
    timeline: &mut HealthTimeline,
    to: DateTime<Utc>,
) -> Result<(f64, u64), SimulatorError> {
    let sim = Simulator::new(estate, seed)?;
    for at in timeline.at.clone() {
        sim.advance_to(at);
        timeline.without.push(sim.with_world(unhealthy_now));
    }
    sim.advance_to(to);
    Ok(sim.with_world(|w| {
        let minutes: u64 = w.workspaces.values().map(|ws| ws.unhealthy_minutes).sum();
        (minutes as f64 / 60.0, u64::from(unhealthy_now(w)))
    }))
}

/// The summary from the remediated world, the remediator's audit records and its outcome events.
pub fn summary(world: &World, audit: &[AuditRecord], baseline: (f64, u64)) -> HealthSummary {
    let remediator = audit.iter().filter(|r| r.function == remediator::FUNCTION);
    let mut summary = HealthSummary {
        workspaces: world.workspaces.len() as u64,
        faults: world.workspaces.values().map(|w| u64::from(w.faults_started)).sum(),
        unhealthy_hours: world.workspaces.values().map(|w| w.unhealthy_minutes).sum::<u64>() as f64 / 60.0,
        repair_hours: world.workspaces.values().map(|w| w.repair_minutes).sum::<u64>() as f64 / 60.0,
        baseline_unhealthy_hours: baseline.0,
        unhealthy_at_end: u64::from(unhealthy_now(world)),
        baseline_unhealthy_at_end: baseline.1,
        ..HealthSummary::default()
    };
    for record in remediator {
        match (record.action.as_str(), record.outcome) {
            ("RebootWorkspaces", Outcome::Applied) => summary.reboots += 1,
            ("RebuildWorkspaces", Outcome::Applied) => summary.rebuilds += 1,
            (_, Outcome::Deferred) => summary.deferrals += 1,
            (_, Outcome::Skipped) => summary.skips += 1,
            _ => {}
        }
    }
    for event in world.events.iter().filter(|e| e.detail_type == "Escalation") {
        let cause = event.detail["cause"].as_str().unwrap_or("unknown");
        let cause = cause.split(':').next().unwrap_or(cause).to_owned();
        *summary.escalations.entry(cause).or_default() += 1;
    }
    summary
}

/// The share of unhealthy hours the remediator saved against the baseline.
pub fn saving(summary: &HealthSummary) -> f64 {
    if summary.baseline_unhealthy_hours > 0.0 {
        1.0 - summary.unhealthy_hours / summary.baseline_unhealthy_hours
    } else {
        0.0
    }
}

/// The report's WorkSpaces section, with the chart at `chart` (relative to the report) when one was written.
pub fn section(summary: &HealthSummary, chart: Option<&str>) -> String {
    let mut out = String::from("\n## WorkSpaces health\n\n");
    let escalations: Vec<String> = summary.escalations.iter().map(|(cause, n)| format!("{n} {cause}")).collect();
    let _ = writeln!(
        out,
        "{} WorkSpaces, {} health faults. Unhealthy **{:.1} WorkSpace-hours with the remediator vs {:.1} without** \
         ({:.0}% less), plus {:.1} hours rebooting or rebuilding; unhealthy at the end: {} vs {}.\n\n\
         Remediator: {} reboots, {} rebuilds, escalations: {}; {} deferrals and {} skips recorded (budget, \
         circuit breaker, connected users, maintenance, tags).\n",
        summary.workspaces,
        summary.faults,
        summary.unhealthy_hours,
        summary.baseline_unhealthy_hours,
        saving(summary) * 100.0,
        summary.repair_hours,
        summary.unhealthy_at_end,
        summary.baseline_unhealthy_at_end,
        summary.reboots,
        summary.rebuilds,
        if escalations.is_empty() { "none".to_owned() } else { escalations.join(", ") },
        summary.deferrals,
        summary.skips,
    );
    if let Some(chart) = chart {
        let _ = writeln!(out, "![WorkSpaces health]({chart})");
    }
    out
}

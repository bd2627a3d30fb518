//! The figures of `summary.json` from the simulated world, its call log, the audit records and the outcome
//! events: capacity and sessions per resource, image builders, exports and imports.

use super::{BuilderFigures, BuilderSummary, Deferral, ExportRow, Figures, Options, ResourceFigures};
use autopilot_shared::ledger::LedgerError;
use autopilot_shared::resource::Place;
use autopilot_sim::calllog::{self, CallRecord};
use autopilot_sim::estate::Estate;
use autopilot_sim::world::World;
use autopilot_sim::{LocalEstate, Simulator};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::collections::BTreeMap;

/// The figures of a run from an instant on (the end of a learning period): what a world and its call log
/// count at the end, less what they counted when the run reached that instant.
pub(super) struct Measured {
    pub from: DateTime<Utc>,
    before: Option<(Figures, Vec<ResourceFigures>)>,
}

impl Measured {
    pub fn from(from: DateTime<Utc>) -> Self {
        Self { from, before: None }
    }

    /// Notes the figures so far the first time `now` reaches the start of the measurement (call before each
    /// step of the run).
    pub fn reach(&mut self, now: DateTime<Utc>, sim: &Simulator) {
        if self.before.is_none() && now >= self.from {
            // Read the call log first: `with_world` holds the simulator's lock.
            let calls = sim.calls();
            self.before = Some(sim.with_world(|w| figures(w, &calls)));
        }
    }

    /// The figures since the start of the measurement (all of them when it was never reached).
    pub fn finish(&self, sim: &Simulator) -> (Figures, Vec<ResourceFigures>) {
        let calls = sim.calls();
        let (mut totals, mut resources) = sim.with_world(|w| figures(w, &calls));
        if let Some((before, before_resources)) = &self.before {
            totals = totals.since(before);
            for resource in &mut resources {
                if let Some(earlier) = before_resources.iter().find(|r| r.id == resource.id) {
                    resource.figures = resource.figures.since(&earlier.figures);
                }
            }
        }
        (totals, resources)
    }
}

/// Per-resource figures from a world and its call log.
pub(super) fn figures(world: &World, calls: &[CallRecord]) -> (Figures, Vec<ResourceFigures>) {
    let mut resources = Vec::new();
    let mut per_resource = |id: &str, service: &str, totals: &autopilot_sim::world::Totals| {
        let named: Vec<&CallRecord> = calls.iter().filter(|c| c.resource.as_deref() == Some(id)).collect();
        resources.push(ResourceFigures {
            id: id.to_owned(),
            service: service.to_owned(),
            figures: Figures {
                capacity_hours: totals.capacity_hours,
                served_session_minutes: totals.served_session_minutes,
                session_requests: totals.session_requests(),
                unserved_session_requests: totals.unserved_requests,
                unserved_session_minutes: totals.unserved_session_minutes,
                actions: named.iter().filter(|c| calllog::is_mutating(&c.operation) && c.ok()).count() as u64,
                api_calls: named.len() as u64,
            },
        });
    };
    for pool in world.pools.values() {
        per_resource(&pool.id, "workspaces", &pool.totals);
    }
    for fleet in world.fleets.values() {
        per_resource(&fleet.name, "appstream", &fleet.totals);
    }
    let mut totals = Figures::default();
    for resource in &resources {
        totals.add(&resource.figures);
    }
    // Every call counts in the total, list calls included.
    totals.api_calls = calls.iter().filter(|c| c.service != "eventbridge").count() as u64;
    (totals, resources)
}

/// Every audit record of the simulated period.
pub(super) async fn read_audit(
    ledger: &autopilot_shared::ledger::Ledger,
    options: &Options,
) -> Result<Vec<autopilot_shared::ledger::audit::AuditRecord>, LedgerError> {
    let mut records = Vec::new();
    let mut day = options.from.date_naive();
    while day <= options.to.date_naive() {
        records.extend(ledger.audit_by_day(day).await?);
        day = day.succ_opt().unwrap_or(day + Duration::days(1));
    }
    Ok(records)
}

/// Image builder figures: billed hours against the *always running once started* baseline, the
/// builder-scheduler's starts, stops, warnings and deferrals.
pub(super) fn builder_figures(
    world: &World,
    estate: &Estate,
    first_starts: &BTreeMap<String, DateTime<Utc>>,
    audit: &[autopilot_shared::ledger::audit::AuditRecord],
    options: &Options,
) -> BuilderSummary {
    let mut summary = BuilderSummary::default();
    for spec in &estate.image_builders {
        let Some(builder) = world.builders.get(&spec.name) else { continue };
        let initially_billing = !matches!(spec.state.as_str(), "STOPPED" | "STOPPING" | "FAILED" | "DELETING");
        let baseline_hours = crate::people::baseline_hours(
            initially_billing,
            first_starts.get(&spec.name).copied(),
            options.from,
            options.to,
        );
        let resource_suffix = format!("#image-builder#{}", spec.name);
        let deferrals: Vec<Deferral> = audit
            .iter()
            .filter(|r| {
                r.function == builder_scheduler::FUNCTION
                    && r.outcome == autopilot_shared::ledger::audit::Outcome::Deferred
                    && r.resource.ends_with(&resource_suffix)
            })
            .map(|r| Deferral { at: r.at, reason: r.reason.clone() })
            .collect();
        // The function's own starts and stops, from its audit (people's starts are in the call log too).
        let applied = |action: &str| {
            audit
                .iter()
                .filter(|r| {
                    r.function == builder_scheduler::FUNCTION
                        && r.action == action
                        && r.outcome == autopilot_shared::ledger::audit::Outcome::Applied
                        && r.resource.ends_with(&resource_suffix)
                })
                .count() as u64
        };
        let running_hours = builder.running_minutes as f64 / 60.0;
        let figures = BuilderFigures {
            name: spec.name.clone(),
            running_hours,
            baseline_hours,
            hours_saved: baseline_hours - running_hours,
            starts: applied("StartImageBuilder"),
            stops: applied("StopImageBuilder"),
            stop_warnings: world
                .events
                .iter()
                .filter(|e| {
                    e.detail_type == "Image Builder Stop Scheduled"
                        && e.detail.get("imageBuilder").and_then(Value::as_str) == Some(spec.name.as_str())
                })
                .count() as u64,
            deferrals,
        };
        summary.running_hours += figures.running_hours;
        summary.baseline_hours += figures.baseline_hours;
        summary.hours_saved += figures.hours_saved;
        summary.deferrals += figures.deferrals.len() as u64;
        summary.builders.push(figures);
    }
    summary
}

/// Export and import rows: finished ones from the outcome events, open ones from the ledger.
pub(super) async fn export_rows(
    local: &LocalEstate,
    ledger: &autopilot_shared::ledger::Ledger,
) -> Result<Vec<ExportRow>, LedgerError> {
    let events: Vec<(String, Value)> =
        local.simulator.with_world(|w| w.events.iter().map(|e| (e.detail_type.clone(), e.detail.clone())).collect());
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let minutes = |v: &Value| v.get("durationSeconds").and_then(Value::as_i64).map(|s| s / 60);
    let stuck: Vec<String> = events
        .iter()
        .filter(|(t, _)| t == "Export Stuck" || t == "Image Import Stuck")
        .filter_map(|(_, d)| text(d, "job").or_else(|| text(d, "image")))
        .collect();
    let mut rows = Vec::new();
    for (detail_type, d) in &events {
        let row = |kind: &str, attempts: u64, outcome: String, duration_minutes: Option<i64>| ExportRow {
            kind: kind.into(),
            image: text(d, "image").unwrap_or_default(),
            ami_name: text(d, "amiName"),
            attempts,
            outcome,
            duration_minutes,
            escalated: stuck.iter().any(|s| Some(s) == text(d, "job").as_ref() || Some(s) == text(d, "image").as_ref()),
        };
        match detail_type.as_str() {
            "Export Completed" => rows.push(row(
                "export",
                d.get("attempts").and_then(Value::as_u64).unwrap_or(1),
                format!("COMPLETED {}", text(d, "amiId").unwrap_or_default()),
                minutes(d),
            )),
            "Export Failed" => rows.push(row(
                "export",
                d.get("attempts").and_then(Value::as_array).map_or(0, |a| a.len() as u64),
                format!("FAILED: {}", text(d, "reason").unwrap_or_default()),
                None,
            )),
            "Image Import Completed" => rows.push(row("import", 1, "AVAILABLE".into(), minutes(d))),
            "Image Import Failed" => rows.push(row("import", 1, "FAILED".into(), minutes(d))),
            _ => {}
        }
    }
    // Each account × region's open exports (a shard's work items are keyed by its place).
    let home = local.simulator.place();
    let places: std::collections::BTreeSet<Place> = local.simulator.with_world(|w| {
        use autopilot_sim::world::Placed;
        w.images.values().map(|i| Place { account: i.account().to_owned(), region: i.region().to_owned() }).collect()
    });
    let mut open = Vec::new();
    for place in places.iter().chain([&home]).collect::<std::collections::BTreeSet<_>>() {
        open.extend(ledger.for_place(place, &home).open_work_items::<export_chaser::decide::Job>("EXPORT").await?);
    }
    for (_, job) in open {
        let job = job.state;
        rows.push(ExportRow {
            kind: "export".into(),
            image: job.image_name.clone(),
            ami_name: Some(job.ami_name.clone()),
            attempts: job.attempts.len() as u64,
            outcome: format!("IN FLIGHT ({})", job.current().and_then(|a| a.state.clone()).unwrap_or_default()),
            duration_minutes: None,
            escalated: job.escalated_at.is_some(),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_count_from_the_end_of_the_learning_period() {
        // GIVEN a pool of 6 sessions running all day, measured from 10:00
        let estate = Estate::from_yaml(
            "workspaces_pools:\n  - { id: wspool-a, name: a, state: RUNNING, running_mode: ALWAYS_ON, desired_user_sessions: 6 }\n",
        )
        .unwrap();
        let sim = Simulator::new(&estate, 1).unwrap();
        let start = sim.now();
        let mut measured = Measured::from(start + Duration::hours(10));
        // WHEN a day passes, hour by hour
        for hour in 0..24 {
            sim.advance_to(start + Duration::hours(hour));
            measured.reach(start + Duration::hours(hour), &sim);
        }
        sim.advance_to(start + Duration::hours(24));
        // THEN the figures hold the 14 hours from 10:00 on, in total and per resource
        let (totals, resources) = measured.finish(&sim);
        assert!((totals.capacity_hours - 6.0 * 14.0).abs() < 0.2, "{totals:?}");
        assert!((resources[0].figures.capacity_hours - 6.0 * 14.0).abs() < 0.2, "{resources:?}");
        // and never reaching the start measures everything
        let everything = Measured::from(start + Duration::days(2)).finish(&sim).0;
        assert!((everything.capacity_hours - 6.0 * 24.0).abs() < 0.2, "{everything:?}");
    }
}

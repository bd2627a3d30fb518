//! `autopilot simulate` and `autopilot demo`: run the functions in-process against the simulated estate on the
//! virtual clock, tick by tick, deliver injected events as EventBridge rules would, and write the call log,
//! audit records, outcome events, a summary and a report with charts; compare with two baselines computed on
//! the same estate and seed: *static* (capacity fixed at the peak) and *schedule-only* (the schedule's minimums,
//! no utilization tracking).

use autopilot_functions::Function;
use autopilot_shared::policy::{Phase, Policy, ResourceView};
use autopilot_sim::calllog::{self, CallRecord};
use autopilot_sim::estate::Estate;
use autopilot_sim::world::World;
use autopilot_sim::{LocalEstate, Simulator};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The demo estate (`autopilot demo`): a small mixed estate with a week of demand, faults and people.
pub const DEMO_ESTATE: &str = include_str!("../../sim/estates/demo.yaml");
/// The demo's policy.
pub const DEMO_POLICY: &str = include_str!("../../sim/estates/demo-policy.yaml");

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Options {
    pub estate: PathBuf,
    pub policy: PathBuf,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub tick: Duration,
    pub events: Option<PathBuf>,
    pub seed: u64,
    pub out: PathBuf,
    /// Print progress to standard error.
    pub progress: bool,
    /// Share of deliveries (ticks and events) delivered again, as EventBridge sometimes does: each delivery is
    /// followed by another with this probability (seeded; at most 10 copies). 0: none.
    pub redeliver: f64,
}

/// The per-resource and total figures of `summary.json` (contract: these keys stay).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    pub capacity_hours: f64,
    pub served_session_minutes: u64,
    pub session_requests: u64,
    pub unserved_session_requests: u64,
    pub actions: u64,
    pub api_calls: u64,
}

impl Figures {
    fn add(&mut self, other: &Figures) {
        self.capacity_hours += other.capacity_hours;
        self.served_session_minutes += other.served_session_minutes;
        self.session_requests += other.session_requests;
        self.unserved_session_requests += other.unserved_session_requests;
        self.actions += other.actions;
        self.api_calls += other.api_calls;
    }

    /// Unserved share of session requests.
    pub fn unserved_share(&self) -> f64 {
        if self.session_requests == 0 {
            0.0
        } else {
            self.unserved_session_requests as f64 / self.session_requests as f64
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ResourceFigures {
    pub id: String,
    pub service: String,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Clone, Serialize)]
pub struct Baselines {
    #[serde(rename = "static")]
    pub fixed: Figures,
    pub schedule_only: Figures,
}

/// One image builder over the simulation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BuilderFigures {
    pub name: String,
    /// Hours in a billing state (everything but STOPPED, STOPPING, FAILED, DELETING).
    pub running_hours: f64,
    /// Hours it would have billed if it ran from its first start to the end (nobody stops builders).
    pub baseline_hours: f64,
    pub hours_saved: f64,
    pub starts: u64,
    pub stops: u64,
    pub stop_warnings: u64,
    pub deferrals: Vec<Deferral>,
}

/// A stop the builder-scheduler deferred, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deferral {
    pub at: DateTime<Utc>,
    pub reason: String,
}

/// Image builders: totals and per builder.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BuilderSummary {
    pub running_hours: f64,
    pub baseline_hours: f64,
    pub hours_saved: f64,
    pub deferrals: u64,
    pub builders: Vec<BuilderFigures>,
}

/// One export job or imported image over the simulation (from the export-chaser's outcome events and the
/// jobs still open at the end).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportRow {
    /// `export` or `import`.
    pub kind: String,
    pub image: String,
    pub ami_name: Option<String>,
    pub attempts: u64,
    /// COMPLETED, FAILED, IN FLIGHT, …, with the AMI id or the reason.
    pub outcome: String,
    pub duration_minutes: Option<i64>,
    pub escalated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub seed: u64,
    pub ticks: u64,
    pub events_delivered: u64,
    /// Extra deliveries made by `--redeliver` (duplicates of ticks and events).
    pub redelivered: u64,
    pub events_not_routed: u64,
    /// Invocations (ticks or events) that returned an error: each is an error a real deployment would log and
    /// retry or dead-letter; a healthy run has none (bad input aside).
    pub failed_invocations: Vec<String>,
    pub totals: Figures,
    pub baselines: Baselines,
    pub resources: Vec<ResourceFigures>,
    pub builders: BuilderSummary,
    pub exports: Vec<ExportRow>,
    pub workspaces: crate::health::HealthSummary,
    /// Every request was authorised against its identity's role in `template.yaml`, as AWS would.
    pub iam: IamSummary,
}

/// What IAM decided over a run: the distinct authorisations (identity, action, resource, context) and the
/// refusals among them, as `identity: action on resource` (a healthy run has none).
#[derive(Debug, Clone, Default, Serialize)]
pub struct IamSummary {
    pub authorizations: usize,
    pub refused: Vec<String>,
}

/// One sample of a resource for the charts.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: DateTime<Utc>,
    wanted: u32,
    in_use: u32,
    desired: u32,
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))
}

/// Injected events in delivery order: when, and the EventBridge envelope.
pub type Injected = Vec<(DateTime<Utc>, Value)>;

/// An injected event: `{"at": "<RFC 3339>", "event": {<EventBridge envelope>}}` per line.
fn read_events(path: &Path) -> Result<Injected, String> {
    let mut events = Vec::new();
    for (number, line) in read(path)?.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let where_ = format!("{}:{}", path.display(), number + 1);
        let value: Value = serde_json::from_str(line).map_err(|e| format!("{where_}: not JSON: {e}"))?;
        let at = value
            .get("at")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .ok_or_else(|| format!("{where_}: at: missing or not an RFC 3339 instant"))?
            .with_timezone(&Utc);
        let event = value
            .get("event")
            .cloned()
            .ok_or_else(|| format!("{where_}: event: missing (a full EventBridge envelope)"))?;
        autopilot_shared::events::parse(event.clone()).map_err(|e| format!("{where_}: {e}"))?;
        events.push((at, event));
    }
    events.sort_by_key(|(at, _)| *at);
    Ok(events)
}

/// Loads and checks every input file; errors name the file, the path inside it and the reason.
pub fn load(options: &Options) -> Result<(Estate, String, Injected), String> {
    let mut estate =
        Estate::from_yaml(&read(&options.estate)?).map_err(|e| format!("{}: {e}", options.estate.display()))?;
    let policy = read(&options.policy)?;
    Policy::from_yaml(&policy).map_err(|e| {
        format!("{}: {}", options.policy.display(), e.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
    })?;
    let events = match &options.events {
        Some(path) => read_events(path)?,
        None => Vec::new(),
    };
    if options.to <= options.from {
        return Err(format!("--to ({}) must be after --from ({})", options.to, options.from));
    }
    if options.tick < Duration::minutes(1) {
        return Err("--tick must be at least 1m".into());
    }
    estate.start = options.from.to_rfc3339();
    Simulator::new(&estate, options.seed).map_err(|e| format!("{}: {e}", options.estate.display()))?;
    crate::people::builder_activity(&estate, options.from, options.to)
        .map_err(|e| format!("{}: {e}", options.estate.display()))?;
    Ok((estate, policy, events))
}

fn sample_world(world: &World, series: &mut BTreeMap<String, Vec<Sample>>) {
    for pool in world.pools.values() {
        series.entry(pool.id.clone()).or_default().push(Sample {
            at: world.now,
            wanted: pool.totals.wanted_now,
            in_use: pool.capacity.active_sessions,
            desired: pool.capacity.desired,
        });
    }
    for fleet in world.fleets.values() {
        series.entry(fleet.name.clone()).or_default().push(Sample {
            at: world.now,
            wanted: fleet.totals.wanted_now,
            in_use: fleet.capacity.active_sessions,
            desired: fleet.capacity.desired,
        });
    }
}

/// Per-resource figures from a world and its call log.
fn figures(world: &World, calls: &[CallRecord]) -> (Figures, Vec<ResourceFigures>) {
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
fn static_baseline(estate: &Estate, policy: &Policy, options: &Options) -> Result<Figures, String> {
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
fn schedule_only_baseline(estate: &Estate, policy: &Policy, options: &Options) -> Result<Figures, String> {
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

/// Runs a simulation and writes its outputs into `options.out`.
pub async fn simulate(options: &Options) -> Result<Summary, String> {
    let (estate, policy_text, events) = load(options)?;
    let policy = Policy::from_yaml(&policy_text).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&options.out).map_err(|e| format!("{}: cannot create: {e}", options.out.display()))?;
    let local = LocalEstate::start(&estate, options.seed, 0).await?;
    let ledger = local.ledger();
    ledger.put_policy(&policy_text, options.from).await.map_err(|e| e.to_string())?;
    let crew = crate::crew(&local);
    let activity = crate::people::builder_activity(&estate, options.from, options.to)?;
    let first_starts: BTreeMap<String, DateTime<Utc>> = activity
        .iter()
        .rev()
        .filter(|a| a.act == crate::people::Act::StartBuilder)
        .map(|a| (a.builder.clone(), a.at))
        .collect();
    let mut people = activity.into_iter().peekable();

    let mut series: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    let mut rollout = RolloutTimeline::default();
    let mut health = crate::health::HealthTimeline::default();
    let mut pending_events = events.into_iter().peekable();
    let (mut ticks, mut delivered, mut not_routed) = (0u64, 0u64, 0u64);
    let mut failed = Vec::new();
    let total_ticks = ((options.to - options.from).num_minutes() / options.tick.num_minutes().max(1)).max(1);
    let mut now = options.from;
    let mut last_report = std::time::Instant::now();
    let mut duplicates = autopilot_sim::rng::Rng::new(options.seed ^ 0x5eed_d0b1e);
    let mut redelivered = 0_u64;
    while now < options.to {
        // Injected events and people's actions happen at their own time, before the tick that follows them.
        loop {
            let next_event = pending_events.peek().map(|(at, _)| *at).filter(|at| *at <= now);
            let next_person = people.peek().map(|a| a.at).filter(|at| *at <= now);
            let event = match (next_event, next_person) {
                (Some(e), Some(p)) if p < e => people.next().and_then(|a| act_as_person(&local, &a)),
                (None, Some(_)) => people.next().and_then(|a| act_as_person(&local, &a)),
                (Some(_), _) => pending_events.next().map(|(at, event)| {
                    local.simulator.advance_to(at);
                    event
                }),
                (None, None) => break,
            };
            let Some(event) = event else { continue };
            if deliver(&crew, &event, &mut failed).await {
                delivered += 1;
                let extra = extra_copies(&mut duplicates, options.redeliver);
                redelivered += extra;
                for _ in 0..extra {
                    deliver(&crew, &event, &mut failed).await;
                }
            } else {
                not_routed += 1;
            }
        }
        local.simulator.advance_to(now);
        for function in Function::ALL {
            let schedule = function.name();
            let tick = autopilot_sim::tick_event(&format!("euc-autopilot-{schedule}"), now);
            let extra = extra_copies(&mut duplicates, options.redeliver);
            redelivered += extra;
            for _ in 0..=extra {
                if let Err(error) = crew.invoke(function, tick.clone(), INVOCATION_TIME).await {
                    tracing::warn!(%error, schedule, "tick failed");
                    failed.push(format!("{now} {schedule} tick: {error}"));
                }
            }
        }
        ticks += 1;
        local.simulator.with_world(|w| {
            sample_world(w, &mut series);
            rollout.sample(w, &policy);
            health.sample(w);
        });
        if options.progress && last_report.elapsed() > std::time::Duration::from_secs(2) {
            eprintln!("simulate: {now} ({}%)", ticks * 100 / total_ticks as u64);
            last_report = std::time::Instant::now();
        }
        now += options.tick;
    }
    local.simulator.advance_to(options.to);

    let calls = local.simulator.calls();
    let (totals, resources) = local.simulator.with_world(|w| figures(w, &calls));
    let audit_records = read_audit(&ledger, options).await?;
    let builders = local.simulator.with_world(|w| builder_figures(w, &estate, &first_starts, &audit_records, options));
    let baselines = Baselines {
        fixed: static_baseline(&estate, &policy, options)?,
        schedule_only: schedule_only_baseline(&estate, &policy, options)?,
    };
    let health_baseline = crate::health::baseline(&estate, options.seed, &mut health, options.to)?;
    let workspaces = local.simulator.with_world(|w| crate::health::summary(w, &audit_records, health_baseline));
    let summary = Summary {
        from: options.from,
        to: options.to,
        seed: options.seed,
        ticks,
        events_delivered: delivered,
        redelivered,
        events_not_routed: not_routed,
        failed_invocations: failed,
        totals,
        baselines,
        resources,
        builders,
        exports: export_rows(&local, &ledger).await?,
        workspaces,
        iam: IamSummary {
            authorizations: local.simulator.authorizer().decisions().len(),
            refused: local.simulator.authorizer().refusals(),
        },
    };

    let write = |name: &str, text: String| {
        std::fs::write(options.out.join(name), text).map_err(|e| format!("{}: {e}", options.out.join(name).display()))
    };
    write("calls.jsonl", calllog::to_jsonl(&calls))?;
    let audit: String =
        audit_records.iter().filter_map(|r| serde_json::to_string(r).ok()).map(|line| line + "\n").collect();
    write("audit.jsonl", audit)?;
    let outcome_events = local.simulator.with_world(|w| {
        w.events.iter().filter_map(|e| serde_json::to_string(e).ok()).map(|l| l + "\n").collect::<String>()
    });
    write("events.jsonl", outcome_events)?;
    write("summary.json", serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?)?;
    let matrix = local.simulator.authorizer().matrix();
    write("authorizations.json", serde_json::to_string(&matrix).map_err(|e| e.to_string())?)?;
    std::fs::create_dir_all(options.out.join("charts")).map_err(|e| e.to_string())?;
    for (id, samples) in &series {
        write(&format!("charts/{id}.svg"), chart(id, samples))?;
    }
    let rollout_chart = rollout.chart();
    if let Some(svg) = &rollout_chart {
        write("charts/rollout.svg", svg.clone())?;
    }
    let health_chart = health.chart();
    if let Some(svg) = &health_chart {
        write("charts/workspaces-health.svg", svg.clone())?;
    }
    let mut report_text = report(&summary, &series);
    if summary.workspaces.workspaces > 0 {
        report_text.push_str(&crate::health::section(&summary.workspaces, health_chart.is_some()));
    }
    if rollout_chart.is_some() || !estate.environments.is_empty() {
        report_text.push_str(&rollout_section(rollout_chart.is_some()));
    }
    write("report.md", report_text)?;
    Ok(summary)
}

/// Devices on the newest software set per rollout ring over time (for the rollout chart).
#[derive(Debug, Default)]
struct RolloutTimeline {
    at: Vec<DateTime<Utc>>,
    rings: BTreeMap<usize, (String, Vec<u32>)>,
}

impl RolloutTimeline {
    fn sample(&mut self, world: &World, policy: &Policy) {
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
                tags: e.tags.clone(),
            })
            .collect();
        self.at.push(world.now);
        for (index, ring) in softwareset_roller::plan::rings(rollouts, &environments).into_iter().enumerate() {
            let members: Vec<&str> = ring.environments.iter().map(|e| e.id.as_str()).collect();
            let on_newest = world
                .devices
                .values()
                .filter(|d| members.contains(&d.environment_id.as_str()) && d.current_software_set_id == newest)
                .count() as u32;
            self.rings.entry(index).or_insert_with(|| (ring.name.clone(), Vec::new())).1.push(on_newest);
        }
    }

    fn chart(&self) -> Option<String> {
        const COLOURS: [&str; 4] = ["#d62728", "#ff7f0e", "#1f77b4", "#2ca02c"];
        if self.rings.is_empty() {
            return None;
        }
        let lines: Vec<(&str, &str, Vec<u32>)> = self
            .rings
            .values()
            .enumerate()
            .map(|(i, (name, values))| (name.as_str(), COLOURS[i % COLOURS.len()], values.clone()))
            .collect();
        Some(line_chart("devices on the newest software set, per ring", &self.at, &lines))
    }
}

/// The report's Thin Client section: the rollout chart, and the service's announced end of support.
fn rollout_section(with_chart: bool) -> String {
    let mut out = String::from("\n## WorkSpaces Thin Client\n\n");
    if with_chart {
        out.push_str("![rollout](charts/rollout.svg)\n\n");
    }
    out.push_str(&format!(
        "AWS has announced the end of support of WorkSpaces Thin Client on {}: plan the devices' \
         replacement; no software set is rolled out past its own `supportedUntil`.\n",
        autopilot_shared::support::THIN_CLIENT_END
    ));
    out
}

/// The remaining time each simulated invocation gets: the `Timeout` template.yaml gives every function.
const INVOCATION_TIME: std::time::Duration = std::time::Duration::from_secs(300);

/// Delivers an event to every function whose rules match it, as EventBridge would; false when none does.
async fn deliver(crew: &autopilot_functions::Crew, event: &Value, failed: &mut Vec<String>) -> bool {
    let mut routed = false;
    for function in Function::ALL {
        if function.routes(event) {
            routed = true;
            if let Err(error) = crew.invoke(function, event.clone(), INVOCATION_TIME).await {
                tracing::warn!(%error, ?function, "event failed");
                let id = event.get("id").and_then(Value::as_str).unwrap_or_default();
                failed.push(format!("{function:?} event {id}: {error}"));
            }
        }
    }
    routed
}

/// How many extra copies follow one delivery: each one more with probability `p`, at most 9 (10 in all).
fn extra_copies(rng: &mut autopilot_sim::rng::Rng, p: f64) -> u64 {
    let mut extra = 0;
    while extra < 9 && p > 0.0 && rng.chance(p) {
        extra += 1;
    }
    extra
}

/// A person's action at its time; the CloudTrail event it makes, if any.
fn act_as_person(local: &LocalEstate, activity: &crate::people::Activity) -> Option<Value> {
    local.simulator.advance_to(activity.at);
    crate::people::perform(&local.simulator, activity)
}

/// Every audit record of the simulated period.
async fn read_audit(
    ledger: &autopilot_shared::ledger::Ledger,
    options: &Options,
) -> Result<Vec<autopilot_shared::ledger::audit::AuditRecord>, String> {
    let mut records = Vec::new();
    let mut day = options.from.date_naive();
    while day <= options.to.date_naive() {
        records.extend(ledger.audit_by_day(day).await.map_err(|e| e.to_string())?);
        day = day.succ_opt().unwrap_or(day + Duration::days(1));
    }
    Ok(records)
}

/// Image builder figures: billed hours against the *always running once started* baseline, the
/// builder-scheduler's starts, stops, warnings and deferrals.
fn builder_figures(
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
async fn export_rows(local: &LocalEstate, ledger: &autopilot_shared::ledger::Ledger) -> Result<Vec<ExportRow>, String> {
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
    for (_, job) in ledger.open_work_items::<export_chaser::decide::Job>("EXPORT").await.map_err(|e| e.to_string())? {
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

/// A line chart of wanted sessions, sessions in use and desired capacity over time (plain SVG).
fn chart(title: &str, samples: &[Sample]) -> String {
    let at: Vec<DateTime<Utc>> = samples.iter().map(|s| s.at).collect();
    line_chart(
        title,
        &at,
        &[
            ("wanted", "#999999", samples.iter().map(|s| s.wanted).collect()),
            ("in use", "#d62728", samples.iter().map(|s| s.in_use).collect()),
            ("desired capacity", "#1f77b4", samples.iter().map(|s| s.desired).collect()),
        ],
    )
}

/// A plain SVG line chart: one labelled, coloured line per series over the instants `at`.
pub(crate) fn line_chart(title: &str, at: &[DateTime<Utc>], lines: &[(&str, &str, Vec<u32>)]) -> String {
    let (width, height, margin) = (900.0, 260.0, 40.0);
    let max = lines.iter().flat_map(|(_, _, values)| values.iter().copied()).max().unwrap_or(1).max(1) as f64;
    let n = at.len().max(2) as f64 - 1.0;
    let mut legend = String::new();
    let mut polylines = String::new();
    for (index, (label, colour, values)) in lines.iter().enumerate() {
        let x = width - 330.0 + 110.0 * index as f64;
        let _ = write!(legend, r#"<text x="{x}" y="20" fill="{colour}">{label}</text>"#);
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, value)| {
                format!(
                    "{:.1},{:.1}",
                    margin + (width - 2.0 * margin) * i as f64 / n,
                    height - margin - (height - 2.0 * margin) * f64::from(*value) / max
                )
            })
            .collect();
        let _ = writeln!(
            polylines,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
            points.join(" ")
        );
    }
    let first = at.first().map(|t| t.format("%a %d %b %H:%M").to_string()).unwrap_or_default();
    let last = at.last().map(|t| t.format("%a %d %b %H:%M").to_string()).unwrap_or_default();
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{margin}" y="20" font-weight="bold">{title}</text>
{legend}
<line x1="{margin}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="black"/><line x1="{margin}" y1="{margin}" x2="{margin}" y2="{bottom}" stroke="black"/>
<text x="4" y="{top_label}">{max}</text><text x="4" y="{bottom}">0</text>
<text x="{margin}" y="{date_y}">{first}</text><text x="{right}" y="{date_y}" text-anchor="end">{last}</text>
{polylines}</svg>
"##,
        bottom = height - margin,
        right = width - margin,
        top_label = margin + 4.0,
        date_y = height - 12.0,
    )
}

/// A Markdown table.
fn table(out: &mut String, headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    let _ = writeln!(out, "| {} |\n|{}", headers.join(" | "), "---|".repeat(headers.len()));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
}

fn report(summary: &Summary, series: &BTreeMap<String, Vec<Sample>>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# EUC Autopilot simulation\n\n{} to {}, seed {}, {} ticks, {} injected events delivered ({} matched no rule).\n",
        summary.from, summary.to, summary.seed, summary.ticks, summary.events_delivered, summary.events_not_routed
    );
    if !summary.failed_invocations.is_empty() {
        let _ = writeln!(
            out,
            "**{} invocations failed** (a deployment would log, retry or dead-letter them):\n\n{}\n",
            summary.failed_invocations.len(),
            summary.failed_invocations.iter().take(20).map(|f| format!("- {f}")).collect::<Vec<_>>().join("\n")
        );
    }
    let runs = [
        ("pool-scaler", &summary.totals),
        ("static (peak)", &summary.baselines.fixed),
        ("schedule-only", &summary.baselines.schedule_only),
    ];
    table(
        &mut out,
        &["run", "capacity-hours", "session requests", "unserved", "unserved share", "actions", "API calls"],
        runs.iter().map(|(name, f)| {
            vec![
                (*name).to_owned(),
                format!("{:.1}", f.capacity_hours),
                f.session_requests.to_string(),
                f.unserved_session_requests.to_string(),
                format!("{:.2}%", f.unserved_share() * 100.0),
                f.actions.to_string(),
                f.api_calls.to_string(),
            ]
        }),
    );
    let _ = writeln!(out, "\n{}\n\n## Resources\n", goals(summary).join("\n"));
    table(
        &mut out,
        &["resource", "service", "capacity-hours", "session requests", "unserved", "actions"],
        summary.resources.iter().map(|r| {
            vec![
                r.id.clone(),
                r.service.clone(),
                format!("{:.1}", r.figures.capacity_hours),
                r.figures.session_requests.to_string(),
                r.figures.unserved_session_requests.to_string(),
                r.figures.actions.to_string(),
            ]
        }),
    );
    let b = &summary.builders;
    if !b.builders.is_empty() {
        let _ = writeln!(
            out,
            "\n## Image builders\n\n{:.1} billed hours vs {:.1} if every builder ran from its first start to the end: {:.1} hours saved; {} stops deferred.\n",
            b.running_hours, b.baseline_hours, b.hours_saved, b.deferrals
        );
        table(
            &mut out,
            &["builder", "billed hours", "baseline hours", "saved", "starts", "stops", "stop warnings", "deferrals"],
            b.builders.iter().map(|f| {
                vec![
                    f.name.clone(),
                    format!("{:.1}", f.running_hours),
                    format!("{:.1}", f.baseline_hours),
                    format!("{:.1}", f.hours_saved),
                    f.starts.to_string(),
                    f.stops.to_string(),
                    f.stop_warnings.to_string(),
                    f.deferrals.len().to_string(),
                ]
            }),
        );
        let deferrals: Vec<String> = b
            .builders
            .iter()
            .flat_map(|f| f.deferrals.iter().map(move |d| format!("- {} {}: {}", d.at, f.name, d.reason)))
            .collect();
        if !deferrals.is_empty() {
            let _ = writeln!(out, "\nDeferred stops:\n\n{}", deferrals.join("\n"));
        }
    }
    if !summary.exports.is_empty() {
        let _ = writeln!(out, "\n## Image exports and imports\n");
        table(
            &mut out,
            &["kind", "image", "AMI name", "attempts", "outcome", "duration (min)", "escalated"],
            summary.exports.iter().map(|r| {
                vec![
                    r.kind.clone(),
                    r.image.clone(),
                    r.ami_name.clone().unwrap_or_default(),
                    r.attempts.to_string(),
                    r.outcome.clone(),
                    r.duration_minutes.map(|m| m.to_string()).unwrap_or_default(),
                    if r.escalated { "yes".into() } else { String::new() },
                ]
            }),
        );
    }
    out.push('\n');
    for id in series.keys() {
        let _ = writeln!(out, "### {id}\n\n![{id}](charts/{id}.svg)\n");
    }
    out
}

/// The demo's goals, each line starting with PASS or MISS.
pub fn goals(summary: &Summary) -> Vec<String> {
    let t = &summary.totals;
    let saving = if summary.baselines.fixed.capacity_hours > 0.0 {
        1.0 - t.capacity_hours / summary.baselines.fixed.capacity_hours
    } else {
        0.0
    };
    let mark = |ok: bool| if ok { "PASS" } else { "MISS" };
    let b = &summary.builders;
    let builder_saving = if b.baseline_hours > 0.0 { b.hours_saved / b.baseline_hours } else { 0.0 };
    let builder_goal = (!b.builders.is_empty()).then(|| {
        format!(
            "{} image builder hours {:.0}% below running from first start (goal: at least 50%)",
            mark(builder_saving >= 0.5),
            builder_saving * 100.0
        )
    });
    let mut goals = vec![
        format!("{} capacity-hours {:.0}% below static (goal: at least 40%)", mark(saving >= 0.40), saving * 100.0),
        format!(
            "{} unserved session requests {:.2}% (goal: at most 1%)",
            mark(t.unserved_share() <= 0.01),
            t.unserved_share() * 100.0
        ),
        format!(
            "{} unserved requests {} vs schedule-only {} (goal: fewer)",
            mark(t.unserved_session_requests < summary.baselines.schedule_only.unserved_session_requests),
            t.unserved_session_requests,
            summary.baselines.schedule_only.unserved_session_requests
        ),
    ];
    goals.extend(builder_goal);
    goals.push(format!(
        "{} {} requests refused by IAM of {} authorisations (goal: none: the template's roles are wide enough){}",
        mark(summary.iam.refused.is_empty()),
        summary.iam.refused.len(),
        summary.iam.authorizations,
        if summary.iam.refused.is_empty() { String::new() } else { format!(": {}", summary.iam.refused.join("; ")) }
    ));
    goals.push(format!(
        "{} {} failed invocations (goal: none)",
        mark(summary.failed_invocations.is_empty()),
        summary.failed_invocations.len()
    ));
    let w = &summary.workspaces;
    if w.baseline_unhealthy_hours > 0.0 {
        let saving = crate::health::saving(w);
        goals.push(format!(
            "{} unhealthy WorkSpace-hours {:.0}% below the run without the remediator (goal: at least 50%)",
            mark(saving >= 0.5),
            saving * 100.0
        ));
    }
    goals
}

//! `autopilot simulate` and `autopilot demo`: run the functions in-process against the simulated estate on the
//! virtual clock, tick by tick, deliver injected events as EventBridge rules would, and write the call log,
//! audit records, outcome events, a summary and a report with charts; compare with two baselines computed on
//! the same estate and seed: *static* (capacity fixed at the peak) and *schedule-only* (the schedule's minimums,
//! no utilization tracking).

use crate::calllog::{self, CallRecord};
use crate::estate::Estate;
use crate::world::World;
use crate::{LocalEstate, Simulator};
use autopilot_shared::policy::{Phase, Policy, ResourceView};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

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

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub seed: u64,
    pub ticks: u64,
    pub events_delivered: u64,
    pub events_not_routed: u64,
    pub totals: Figures,
    pub baselines: Baselines,
    pub resources: Vec<ResourceFigures>,
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
    let mut per_resource = |id: &str, service: &str, totals: &crate::world::Totals| {
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
    let scaler = local.deps();

    let mut series: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    let mut pending_events = events.into_iter().peekable();
    let (mut ticks, mut delivered, mut not_routed) = (0u64, 0u64, 0u64);
    let total_ticks = ((options.to - options.from).num_minutes() / options.tick.num_minutes().max(1)).max(1);
    let mut now = options.from;
    let mut last_report = std::time::Instant::now();
    while now < options.to {
        // Injected events are delivered at their own time, before the tick that follows them.
        while let Some((at, event)) = pending_events.next_if(|(at, _)| *at <= now) {
            local.simulator.advance_to(at);
            if pool_scaler::routing::routes(&event) {
                delivered += 1;
                if let Err(error) =
                    Box::pin(pool_scaler::handle(&scaler, event, std::time::Duration::from_secs(60))).await
                {
                    tracing::warn!(%error, "injected event failed");
                }
            } else {
                not_routed += 1;
            }
        }
        local.simulator.advance_to(now);
        let tick = crate::tick_event("euc-autopilot-pool-scaler", now);
        if let Err(error) = Box::pin(pool_scaler::handle(&scaler, tick, std::time::Duration::from_secs(60))).await {
            tracing::warn!(%error, "tick failed");
        }
        ticks += 1;
        local.simulator.with_world(|w| sample_world(w, &mut series));
        if options.progress && last_report.elapsed() > std::time::Duration::from_secs(2) {
            eprintln!("simulate: {now} ({}%)", ticks * 100 / total_ticks as u64);
            last_report = std::time::Instant::now();
        }
        now += options.tick;
    }
    local.simulator.advance_to(options.to);

    let calls = local.simulator.calls();
    let (totals, resources) = local.simulator.with_world(|w| figures(w, &calls));
    let baselines = Baselines {
        fixed: static_baseline(&estate, &policy, options)?,
        schedule_only: schedule_only_baseline(&estate, &policy, options)?,
    };
    let summary = Summary {
        from: options.from,
        to: options.to,
        seed: options.seed,
        ticks,
        events_delivered: delivered,
        events_not_routed: not_routed,
        totals,
        baselines,
        resources,
    };

    let write = |name: &str, text: String| {
        std::fs::write(options.out.join(name), text).map_err(|e| format!("{}: {e}", options.out.join(name).display()))
    };
    write("calls.jsonl", calllog::to_jsonl(&calls))?;
    let mut audit = String::new();
    let mut day = options.from.date_naive();
    while day <= options.to.date_naive() {
        for record in ledger.audit_by_day(day).await.map_err(|e| e.to_string())? {
            audit.push_str(&serde_json::to_string(&record).unwrap_or_default());
            audit.push('\n');
        }
        day = day.succ_opt().unwrap_or(day + Duration::days(1));
    }
    write("audit.jsonl", audit)?;
    let outcome_events = local.simulator.with_world(|w| {
        w.events.iter().filter_map(|e| serde_json::to_string(e).ok()).map(|l| l + "\n").collect::<String>()
    });
    write("events.jsonl", outcome_events)?;
    write("summary.json", serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?)?;
    std::fs::create_dir_all(options.out.join("charts")).map_err(|e| e.to_string())?;
    for (id, samples) in &series {
        write(&format!("charts/{id}.svg"), chart(id, samples))?;
    }
    write("report.md", report(&summary, &series))?;
    Ok(summary)
}

/// A line chart of wanted sessions, sessions in use and desired capacity over time (plain SVG).
fn chart(title: &str, samples: &[Sample]) -> String {
    let (width, height, margin) = (900.0, 260.0, 40.0);
    let max = samples.iter().map(|s| s.wanted.max(s.desired).max(s.in_use)).max().unwrap_or(1).max(1) as f64;
    let n = samples.len().max(2) as f64 - 1.0;
    let line = |value: fn(&Sample) -> u32, colour: &str| {
        let points: Vec<String> = samples
            .iter()
            .enumerate()
            .map(|(i, s)| {
                format!(
                    "{:.1},{:.1}",
                    margin + (width - 2.0 * margin) * i as f64 / n,
                    height - margin - (height - 2.0 * margin) * f64::from(value(s)) / max
                )
            })
            .collect();
        format!(r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#, points.join(" "))
    };
    let first = samples.first().map(|s| s.at.format("%a %d %b %H:%M").to_string()).unwrap_or_default();
    let last = samples.last().map(|s| s.at.format("%a %d %b %H:%M").to_string()).unwrap_or_default();
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{margin}" y="20" font-weight="bold">{title}</text>
<text x="{lx}" y="20" fill="#999999">wanted</text><text x="{lx2}" y="20" fill="#d62728">in use</text><text x="{lx3}" y="20" fill="#1f77b4">desired capacity</text>
<line x1="{margin}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="black"/><line x1="{margin}" y1="{margin}" x2="{margin}" y2="{bottom}" stroke="black"/>
<text x="4" y="{top_label}">{max}</text><text x="4" y="{bottom}">0</text>
<text x="{margin}" y="{date_y}">{first}</text><text x="{right}" y="{date_y}" text-anchor="end">{last}</text>
{wanted}
{in_use}
{desired}
</svg>
"##,
        lx = width - 330.0,
        lx2 = width - 270.0,
        lx3 = width - 210.0,
        bottom = height - margin,
        right = width - margin,
        top_label = margin + 4.0,
        date_y = height - 12.0,
        wanted = line(|s| s.wanted, "#999999"),
        in_use = line(|s| s.in_use, "#d62728"),
        desired = line(|s| s.desired, "#1f77b4"),
    )
}

fn report(summary: &Summary, series: &BTreeMap<String, Vec<Sample>>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# EUC Autopilot simulation\n\n{} to {}, seed {}, {} ticks, {} injected events delivered ({} matched no rule).\n",
        summary.from, summary.to, summary.seed, summary.ticks, summary.events_delivered, summary.events_not_routed
    );
    let _ = writeln!(
        out,
        "| run | capacity-hours | session requests | unserved | unserved share | actions | API calls |\n|---|---|---|---|---|---|---|"
    );
    for (name, f) in [
        ("pool-scaler", &summary.totals),
        ("static (peak)", &summary.baselines.fixed),
        ("schedule-only", &summary.baselines.schedule_only),
    ] {
        let _ = writeln!(
            out,
            "| {name} | {:.1} | {} | {} | {:.2}% | {} | {} |",
            f.capacity_hours,
            f.session_requests,
            f.unserved_session_requests,
            f.unserved_share() * 100.0,
            f.actions,
            f.api_calls
        );
    }
    let _ = writeln!(out, "\n{}\n\n## Resources\n", goals(summary).join("\n"));
    let _ = writeln!(
        out,
        "| resource | service | capacity-hours | session requests | unserved | actions |\n|---|---|---|---|---|---|"
    );
    for r in &summary.resources {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {} | {} | {} |",
            r.id,
            r.service,
            r.figures.capacity_hours,
            r.figures.session_requests,
            r.figures.unserved_session_requests,
            r.figures.actions
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
    vec![
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
    ]
}

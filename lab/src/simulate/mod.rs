//! `autopilot simulate` and `autopilot demo`: run the functions in-process against the simulated estate on the
//! virtual clock, tick by tick, deliver injected events as EventBridge rules would, and write the call log,
//! audit records, outcome events, a summary and a report with charts; compare with baselines computed on the
//! same estate and seed: *static* (capacity fixed at the peak), *schedule-only* (the schedule's minimums, no
//! utilization tracking) and what an administrator would set up instead of the pool-scaler, *Application Auto
//! Scaling* target tracking with scheduled minimum and maximum capacity, at 60, 75 and 90% targets.
//!
//! - [`inputs`]: the input files, read and checked; [`baselines`]: the baselines, [`aas`] the Application Auto
//!   Scaling model one of them runs;
//! - [`figures`]: the summary's figures; [`charts`]: what is charted and its SVGs; [`report`]: `report.md`.

pub mod aas;
mod baselines;
mod charts;
mod error;
mod figures;
mod inputs;
pub mod latency;
mod oracle;
mod reactive;
mod report;
mod rules;

pub use crate::people::PersonCall;
pub use error::{EventLineError, SimulateError};
pub use inputs::{Injected, Injection, load};
pub use oracle::OracleRun;
pub use report::goals;

use autopilot_functions::Function;
use autopilot_shared::policy::Policy;
use autopilot_sim::LocalEstate;
use autopilot_sim::calllog;
use baselines::{aas_baseline, instant_baseline, schedule_only_baseline, static_baseline};
use charts::{
    COST_CHART, HEALTH_CHART, ROLLOUT_CHART, RolloutTimeline, Series, chart, cost_chart, resource_chart, sample_world,
};
use chrono::{DateTime, Duration, Utc};
use figures::{builder_figures, export_rows, read_audit};
use report::{report, rollout_section};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The demo estate (`autopilot demo`): a small mixed estate with a week of demand, faults and people.
pub const DEMO_ESTATE: &str = include_str!("../../../sim/estates/demo.yaml");

/// When `autopilot demo`'s simulated week starts: Monday 23 November 2026, 00:00 UTC.
pub fn demo_start() -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono::Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).earliest().unwrap_or_default()
}
/// The policy `autopilot scenario` runs against a generated estate.
pub const RAMPS_POLICY: &str = include_str!("../../../sim/estates/ramps-policy.yaml");

/// `autopilot scenario`'s estate: `pools` pools and `fleets` fleets with office demand (morning ramps, noise,
/// four time zones), as `autopilot estate generate` makes them, and nothing else.
pub fn ramps_estate(pools: u32, fleets: u32, seed: u64) -> autopilot_sim::estate::Estate {
    let sizes = autopilot_sim::generate::Sizes { pools, fleets, ..Default::default() };
    autopilot_sim::generate::generate(sizes, seed)
}

/// How long `autopilot demo` runs: three weeks...
pub const DEMO_DAYS: i64 = 21;
/// ...the first of them learning (the predictive rules' weekly profiles); the goals count weeks 2 and 3.
pub const DEMO_LEARNING_DAYS: i64 = 7;
/// The demo's policy.
pub const DEMO_POLICY: &str = include_str!("../../../sim/estates/demo-policy.yaml");

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
    /// A learning period at the start: the capacity and service figures (ours and every baseline's) and the
    /// detection latency count from `from + learn` on; image builders, exports and health count the whole run.
    pub learn: Duration,
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
    /// Minutes users wanted a session and had none, summed over users (one user for ten minutes: 10).
    pub unserved_session_minutes: u64,
    pub actions: u64,
    pub api_calls: u64,
}

impl Figures {
    /// What was counted after `before` (a snapshot of the same run).
    fn since(&self, before: &Figures) -> Figures {
        Figures {
            capacity_hours: (self.capacity_hours - before.capacity_hours).max(0.0),
            served_session_minutes: self.served_session_minutes.saturating_sub(before.served_session_minutes),
            session_requests: self.session_requests.saturating_sub(before.session_requests),
            unserved_session_requests: self.unserved_session_requests.saturating_sub(before.unserved_session_requests),
            unserved_session_minutes: self.unserved_session_minutes.saturating_sub(before.unserved_session_minutes),
            actions: self.actions.saturating_sub(before.actions),
            api_calls: self.api_calls.saturating_sub(before.api_calls),
        }
    }

    fn add(&mut self, other: &Figures) {
        self.capacity_hours += other.capacity_hours;
        self.served_session_minutes += other.served_session_minutes;
        self.session_requests += other.session_requests;
        self.unserved_session_requests += other.unserved_session_requests;
        self.unserved_session_minutes += other.unserved_session_minutes;
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
    /// Application Auto Scaling target tracking with scheduled minimum and maximum, one run per target in
    /// [`AAS_TARGETS`].
    pub aas_target_tracking: Vec<AasRun>,
    /// The pool-scaler with the policy's `predictive` blocks removed ([`reactive`]); `None` when no rule has one.
    pub reactive: Option<Figures>,
    /// The floor: each minute exactly the capacity the demand needed, with no start-up delay
    /// ([`baselines::instant_baseline`]).
    pub instant: Figures,
    /// The lead-time oracle ([`oracle`]) at the cheapest quantile that meets the goals' service: no more
    /// requests unserved than AAS at the reference target, and at most [`UNSERVED_SHARE_GOAL`] of them: what a
    /// scaler that knew the demand curve and the noise would have needed; `None` without an AAS reference run.
    pub oracle: Option<OracleRun>,
}

/// The targets (percent utilization) the Application Auto Scaling baseline runs at.
pub const AAS_TARGETS: [u32; 3] = [60, 75, 90];
/// The one the goals compare with: 75%, the pool-scaler's own default target.
pub const AAS_REFERENCE_TARGET: u32 = 75;
/// The goals' most unserved session requests, as a share of them.
pub const UNSERVED_SHARE_GOAL: f64 = 0.005;

/// One Application Auto Scaling run.
#[derive(Debug, Clone, Serialize)]
pub struct AasRun {
    pub target_percent: u32,
    #[serde(flatten)]
    pub figures: Figures,
    /// From the minute a resource came under pressure to AAS's scaling call ([`latency`]).
    pub detection_latency: latency::Latency,
}

impl Baselines {
    /// The AAS run the goals compare with.
    pub fn aas_reference(&self) -> Option<&AasRun> {
        self.aas_target_tracking.iter().find(|r| r.target_percent == AAS_REFERENCE_TARGET)
    }
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
    /// Where the capacity and service figures start: after the learning period (`from` without one).
    pub measured_from: DateTime<Utc>,
    pub seed: u64,
    pub ticks: u64,
    pub events_delivered: u64,
    /// Extra deliveries made by `--redeliver` (duplicates of ticks and events).
    pub redelivered: u64,
    /// Session events (`AppStream Session Notification`, `WorkSpaces Access`) the simulated users made and the
    /// rules delivered, minute by minute.
    pub session_events: u64,
    pub events_not_routed: u64,
    /// Invocations (ticks or events) that returned an error: each is an error a real deployment would log and
    /// retry or dead-letter; a healthy run has none (bad input aside).
    pub failed_invocations: Vec<String>,
    pub totals: Figures,
    /// From the minute a pool or fleet came under pressure to the pool-scaler's scaling call ([`latency`]).
    pub detection_latency: latency::Latency,
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

impl Summary {
    /// The pool-scaler's run and every baseline, named as the tables print them.
    pub fn runs(&self) -> Vec<(String, &Figures)> {
        let mut runs = vec![
            (
                if self.baselines.reactive.is_some() { "pool-scaler predictive" } else { "pool-scaler" }.to_owned(),
                &self.totals,
            ),
            ("static (peak)".to_owned(), &self.baselines.fixed),
            ("schedule-only".to_owned(), &self.baselines.schedule_only),
        ];
        runs.extend(self.baselines.reactive.iter().map(|f| ("pool-scaler reactive".to_owned(), f)));
        runs.extend(
            self.baselines.aas_target_tracking.iter().map(|r| (format!("AAS {}%", r.target_percent), &r.figures)),
        );
        runs.extend(self.baselines.oracle.iter().map(|o| ("lead-time oracle".to_owned(), &o.figures)));
        runs.push(("instant (the floor)".to_owned(), &self.baselines.instant));
        runs
    }
}

impl Options {
    /// Where the figures start: after the learning period.
    pub fn measure_from(&self) -> DateTime<Utc> {
        (self.from + self.learn.max(Duration::zero())).min(self.to)
    }
}

/// Runs a simulation and writes its outputs into `options.out`.
pub async fn simulate(options: &Options) -> Result<Summary, SimulateError> {
    let (estate, policy_text, events) = load(options)?;
    let policy = Policy::from_yaml(&policy_text).map_err(SimulateError::ParsePolicy)?;
    std::fs::create_dir_all(&options.out)
        .map_err(|source| SimulateError::CreateOut { path: options.out.clone(), source })?;
    // The reactive twin runs beside this run, on its own thread; its figures are collected with the baselines.
    let twin = reactive::spawn(&estate, &policy_text, options)?;
    let local = LocalEstate::start(&estate, options.seed, 0).await?;
    let ledger = local.ledger();
    ledger.put_policy(&policy_text, options.from).await?;
    let crew = crate::crew(&local);
    let activity = crate::people::builder_activity(&estate, options.from, options.to)?;
    let first_starts: BTreeMap<String, DateTime<Utc>> = activity
        .iter()
        .rev()
        .filter(|a| a.act == crate::people::Act::StartBuilder)
        .map(|a| (a.builder.clone(), a.at))
        .collect();
    let mut people = activity.into_iter().peekable();

    let mut series = Series::new();
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
    let mut session_events = 0_u64;
    let place = local.simulator.place();
    // Users' sessions start and end minute by minute; AWS sends an event for each, which the rules deliver.
    local.simulator.with_world_mut(|w| w.session_events = Some(Vec::new()));
    let mut minute = now;
    let mut measured = figures::Measured::from(options.measure_from());
    while now < options.to {
        while minute <= now {
            // Injected events and people's actions happen at their own time, before the tick that follows them.
            loop {
                let next_event = pending_events.peek().map(|(at, _)| *at).filter(|at| *at <= minute);
                let next_person = people.peek().map(|a| a.at).filter(|at| *at <= minute);
                let event = match (next_event, next_person) {
                    (Some(e), Some(p)) if p < e => people.next().and_then(|a| act_as_person(&local, &a)),
                    (None, Some(_)) => people.next().and_then(|a| act_as_person(&local, &a)),
                    (Some(_), _) => pending_events.next().and_then(|(at, injection)| {
                        local.simulator.advance_to(at);
                        match injection {
                            Injection::Event(event) => Some(event),
                            Injection::Call(call) => crate::people::call(&local.simulator, &call),
                        }
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
            local.simulator.advance_to(minute);
            let sessions = local.simulator.with_world_mut(|w| w.session_events.as_mut().map(std::mem::take));
            for event in sessions.unwrap_or_default() {
                if deliver(&crew, &event, &mut failed).await {
                    session_events += 1;
                }
            }
            minute += Duration::minutes(1);
        }
        measured.reach(now, &local.simulator);
        for function in Function::ALL {
            let schedule = function.name();
            let tick = autopilot_sim::tick_event_in(&place, &format!("euc-autopilot-{schedule}"), now);
            let extra = extra_copies(&mut duplicates, options.redeliver);
            redelivered += extra;
            let published = local.bus_event_count();
            for _ in 0..=extra {
                if let Err(error) = crew.invoke(function, tick.clone(), INVOCATION_TIME).await {
                    tracing::warn!(%error, schedule, "tick failed");
                    failed.push(format!("{now} {schedule} tick: {error}"));
                }
            }
            // With `targets`, the hub tick published one Shard Tick per account x region: EventBridge delivers each.
            for shard_tick in local.bus_events_since(published, autopilot_shared::events::SHARD_TICK_DETAIL_TYPE) {
                if let Err(error) = crew.invoke(function, shard_tick, INVOCATION_TIME).await {
                    tracing::warn!(%error, schedule, "shard tick failed");
                    failed.push(format!("{now} {schedule} shard tick: {error}"));
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
    let (totals, resources) = measured.finish(&local.simulator);
    let detection_latency =
        local.simulator.with_world(|w| latency::detection(w, &calls, &policy, measured.from, options.to));
    let audit_records = read_audit(&ledger, options).await?;
    let builders = local.simulator.with_world(|w| builder_figures(w, &estate, &first_starts, &audit_records, options));
    let mut aas_series = Series::new();
    if options.progress {
        eprintln!(
            "simulate: the baselines (static, schedule-only, AAS at 60, 75 and 90%, the lead-time oracle, the floor)"
        );
    }
    let aas_target_tracking: Vec<AasRun> = AAS_TARGETS
        .into_iter()
        .map(|target| {
            let samples = (target == AAS_REFERENCE_TARGET).then_some(&mut aas_series);
            let (figures, detection_latency) = aas_baseline(&estate, &policy, options, f64::from(target), samples)?;
            Ok(AasRun { target_percent: target, figures, detection_latency })
        })
        .collect::<Result<_, SimulateError>>()?;
    let oracle = aas_target_tracking
        .iter()
        .find(|r| r.target_percent == AAS_REFERENCE_TARGET)
        .map(|aas| {
            let unserved = aas.figures.unserved_session_requests;
            oracle::cheapest(&estate, &policy, options, |f: &Figures| {
                f.unserved_session_requests <= unserved && f.unserved_share() <= UNSERVED_SHARE_GOAL
            })
        })
        .transpose()?;
    let baselines = Baselines {
        fixed: static_baseline(&estate, &policy, options)?,
        schedule_only: schedule_only_baseline(&estate, &policy, options)?,
        aas_target_tracking,
        reactive: match twin {
            Some(twin) => {
                if options.progress {
                    eprintln!("simulate: the reactive twin (predictive off)");
                }
                Some(twin.figures()?)
            }
            None => None,
        },
        instant: instant_baseline(&estate, &policy, options)?,
        oracle,
    };
    let health_baseline = crate::health::baseline(&estate, options.seed, &mut health, options.to)?;
    let workspaces = local.simulator.with_world(|w| crate::health::summary(w, &audit_records, health_baseline));
    let summary = Summary {
        from: options.from,
        to: options.to,
        measured_from: measured.from,
        seed: options.seed,
        ticks,
        events_delivered: delivered,
        redelivered,
        session_events,
        events_not_routed: not_routed,
        failed_invocations: failed,
        totals,
        detection_latency,
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
        let path = options.out.join(name);
        std::fs::write(&path, text).map_err(|source| SimulateError::Write { path, source })
    };
    write("calls.jsonl", calllog::to_jsonl(&calls))?;
    let audit: String =
        audit_records.iter().filter_map(|r| serde_json::to_string(r).ok()).map(|line| line + "\n").collect();
    write("audit.jsonl", audit)?;
    let outcome_events = local.simulator.with_world(|w| {
        w.events.iter().filter_map(|e| serde_json::to_string(e).ok()).map(|l| l + "\n").collect::<String>()
    });
    write("events.jsonl", outcome_events)?;
    write("summary.json", serde_json::to_string_pretty(&summary)?)?;
    let matrix = local.simulator.authorizer().matrix();
    write("authorizations.json", serde_json::to_string(&matrix)?)?;
    std::fs::create_dir_all(options.out.join("charts")).map_err(SimulateError::CreateCharts)?;
    for (id, samples) in &series {
        write(&resource_chart(id), chart(id, samples, aas_series.get(id).map(Vec::as_slice)))?;
    }
    write(COST_CHART, cost_chart(&summary.runs()))?;
    let rollout_chart = rollout.chart().map(|svg| write(ROLLOUT_CHART, svg)).transpose()?.map(|()| ROLLOUT_CHART);
    let health_chart = health.chart().map(|svg| write(HEALTH_CHART, svg)).transpose()?.map(|()| HEALTH_CHART);
    let mut report_text = report(&summary, &series);
    if summary.workspaces.workspaces > 0 {
        report_text.push_str(&crate::health::section(&summary.workspaces, health_chart));
    }
    if rollout_chart.is_some() || !estate.environments.is_empty() {
        report_text.push_str(&rollout_section(rollout_chart));
    }
    write("report.md", report_text)?;
    Ok(summary)
}

/// The remaining time each simulated invocation gets: the `Timeout` template.yaml gives every function.
pub(super) const INVOCATION_TIME: std::time::Duration = std::time::Duration::from_secs(300);

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

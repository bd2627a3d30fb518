//! `autopilot bench`: performance figures as ratios against the physical bounds — the services' page sizes and
//! rate limits, and Lambda's start-up — on generated estates (see `docs/performance.md`).
//!
//! - [`estate`]: the benchmark estates; [`tick`]: one measured tick; [`bound`]: the lower bound of a tick's
//!   calls; [`throughput`]: a reconcile at the rate limits;
//! - [`process`]: the release binaries under a local Lambda Runtime API (cold start, peak memory).

pub mod bound;
pub mod estate;
pub mod layers;
pub mod process;
mod report;
pub mod shards;
pub mod throughput;
pub mod tick;

pub use report::{failures, render};

use autopilot_functions::Function;
use autopilot_shared::error::AutopilotError;
use autopilot_shared::ledger::LedgerError;
use autopilot_shared::policy::PolicyError;
use autopilot_sim::{LocalEstate, LocalEstateError};
use estate::Scale;
use process::ProcessError;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// The goals, in one place: the table marks each figure against them.
pub mod goals {
    /// Calls of a tick ÷ their lower bound.
    pub const CALL_RATIO: f64 = 1.05;
    /// Wall time of a reconcile at the rate limits ÷ the bound they imply.
    pub const THROUGHPUT_RATIO: f64 = 1.2;
    /// CPU milliseconds per 1,000 resources of the pool-scaler's decide step alone.
    pub const CPU_MS_PER_1000: f64 = 20.0;
    /// Decide + act CPU milliseconds per 1,000 resources of the estate: on a first tick (about 230 mutations per
    /// 1,000), on a steady tick.
    pub const FIRST_TICK_MS_PER_1000: f64 = 40.0;
    pub const STEADY_TICK_MS_PER_1000: f64 = 5.0;
    /// A first tick's decide + act CPU per mutation ÷ the floor F (the bare SDK request over a kept-alive
    /// loopback connection, measured in the same run): a mutation needs at least its one EUC call.
    pub const PER_MUTATION_FLOOR_RATIO: f64 = 1.5;
    /// Judged only for functions whose first tick makes at least this many mutations (below it, the tick's
    /// fixed work dominates the division).
    pub const PER_MUTATION_MIN_MUTATIONS: u64 = 50;
    /// Ledger requests per mutation on a first tick (all functions of the estate together), judged where the
    /// first tick makes at least [`LEDGER_MIN_MUTATIONS`] (below it, the five ticks' fixed requests — leases,
    /// queries — dominate the division).
    pub const LEDGER_PER_MUTATION: f64 = 0.2;
    pub const LEDGER_MIN_MUTATIONS: u64 = 500;
    /// TCP connections opened per tick ÷ the most requests in flight at once, per endpoint.
    pub const CONNECTIONS_PER_LANE: u64 = 2;
    /// Cold start ÷ a bare `lambda_runtime` function's, measured in the same run.
    pub const COLD_START_RATIO: f64 = 3.0;
    /// Cold start (spawn → first `/next`), median, milliseconds.
    pub const COLD_START_MS: f64 = 20.0;
    /// Peak resident memory during a 10,000-resource tick, MiB.
    pub const PEAK_RSS_MIB: f64 = 64.0;
    /// Zip size per function, MiB.
    pub const ZIP_MIB: f64 = 8.0;
    /// Many accounts and regions: a full reconcile's wall time ÷ the largest shard's rate-limit bound (the shards
    /// run in parallel), and the sum of the shards' bounds ÷ that wall time (walking the spokes one by one).
    pub const SHARDS_RATIO: f64 = 1.2;
    pub const SHARDS_FASTER: f64 = 20.0;
    /// A shard invocation's wall time: mean and peak, seconds (AWS Instance Scheduler's guidance).
    pub const SHARD_MEAN_S: f64 = 90.0;
    pub const SHARD_PEAK_S: f64 = 240.0;
}

/// Why a benchmark could not be run (a figure that misses its goal is in [`failures`], not here).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Start(#[from] LocalEstateError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Observe(#[from] autopilot_shared::error::ObserveError),
    #[error("export {export} could not be requested: {source}")]
    RequestExport { export: u32, source: AutopilotError },
    #[error("cannot start a runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("cannot start the tick's thread: {0}")]
    TickThread(#[source] std::io::Error),
    #[error("the tick's thread failed")]
    TickThreadFailed,
    #[error("cannot read this thread's CPU time")]
    ThreadCpu,
    #[error("layer {layer}: {message}")]
    Layer { layer: &'static str, message: String },
    #[error("cannot find this executable: {0}")]
    CurrentExe(#[source] std::io::Error),
    #[error("cannot run autopilot demo: {0}")]
    RunDemo(#[source] std::io::Error),
    #[error("autopilot demo failed: {0}")]
    DemoFailed(std::process::ExitStatus),
    #[error("the hub tick of the shard benchmark failed: {0}")]
    Shards(#[source] AutopilotError),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Estate sizes (pools + fleets) for the call and CPU figures.
    pub sizes: Vec<u32>,
    /// Estate size of the rate-limit runs (0: skip them).
    pub throughput_size: u32,
    /// Spawns per binary for the cold start (0: skip the process figures).
    pub spawns: usize,
    /// Estate size of the peak-memory tick.
    pub memory_size: u32,
    /// Time `autopilot demo` (spawned from this executable).
    pub demo: bool,
    /// Requests per operation and layer of the layer table (0: skip it, and the floor with it).
    pub layer_requests: u32,
    /// Pools + fleets of the many-accounts run (0: skip it), over `accounts` × `regions`.
    pub shard_size: u32,
    pub accounts: u32,
    pub regions: Vec<String>,
    pub seed: u64,
    /// Where the results go (JSON).
    pub out: PathBuf,
}

/// One function's tick on one estate.
#[derive(Debug, Clone, Serialize)]
pub struct TickFigures {
    pub size: u32,
    pub function: String,
    /// `first` (the function has never seen the estate) or `steady` (the next tick, 5 minutes later).
    pub tick: &'static str,
    /// Resources the function reads (see [`Scale::seen_by`]).
    pub resources: u32,
    pub calls: u64,
    pub bound: bound::Bound,
    pub ratio: f64,
    /// CPU of the whole tick (observe + decide + act).
    pub cpu_ms: f64,
    pub cpu_ms_per_1000: f64,
    /// The part of `cpu_ms` spent in the decide and act steps.
    pub decide_act_cpu_ms: f64,
    pub wall_ms: f64,
    pub outcome: String,
    /// Requests to the ledger (DynamoDB), not EUC API calls.
    pub ledger_requests: u64,
    /// Mutations of the estate that succeeded.
    pub mutations: u64,
    /// TCP connections opened during the tick, server side: to the simulated services and to the ledger.
    pub connections_euc: u64,
    pub connections_ledger: u64,
    /// The most requests in flight at once (the lanes), to the simulated services and to the ledger.
    pub lanes_euc: u64,
    pub lanes_ledger: u64,
    /// Requests to the ledger by DynamoDB operation.
    pub ledger_operations: std::collections::BTreeMap<String, u64>,
    /// Calls by operation.
    pub operations: std::collections::BTreeMap<String, u64>,
}

/// CPU of the pool-scaler's decide step alone (pure), per 1,000 pools and fleets.
#[derive(Debug, Clone, Serialize)]
pub struct DecideFigures {
    pub size: u32,
    pub function: String,
    pub resources: u32,
    pub cpu_ms_per_1000: f64,
}

/// CPU of all five functions' ticks on one estate, per 1,000 resources of the estate: the decide and act
/// steps (the goal's measure) and the whole ticks (observing too).
#[derive(Debug, Clone, Serialize)]
pub struct CpuFigures {
    pub size: u32,
    pub tick: &'static str,
    /// Every resource of the estate ([`Scale::resources`]).
    pub resources: u32,
    pub decide_act_ms: f64,
    pub decide_act_ms_per_1000: f64,
    /// Whole ticks.
    pub cpu_ms: f64,
    pub cpu_ms_per_1000: f64,
}

/// [`CpuFigures`] from the ticks.
pub fn cpu(ticks: &[TickFigures]) -> Vec<CpuFigures> {
    let mut figures: Vec<CpuFigures> = Vec::new();
    for t in ticks {
        let resources = Scale::of(t.size).resources();
        match figures.iter_mut().find(|f| f.size == t.size && f.tick == t.tick) {
            Some(f) => {
                f.cpu_ms += t.cpu_ms;
                f.decide_act_ms += t.decide_act_cpu_ms;
            }
            None => figures.push(CpuFigures {
                size: t.size,
                tick: t.tick,
                resources,
                decide_act_ms: t.decide_act_cpu_ms,
                decide_act_ms_per_1000: 0.0,
                cpu_ms: t.cpu_ms,
                cpu_ms_per_1000: 0.0,
            }),
        }
    }
    for f in &mut figures {
        f.cpu_ms_per_1000 = f.cpu_ms * 1000.0 / f64::from(f.resources.max(1));
        f.decide_act_ms_per_1000 = f.decide_act_ms * 1000.0 / f64::from(f.resources.max(1));
    }
    figures
}

/// Each first tick's decide + act CPU per mutation, against the floor.
pub fn per_mutation(ticks: &[TickFigures], floor: Option<Floor>) -> Vec<PerMutation> {
    ticks
        .iter()
        .filter(|t| t.tick == "first" && t.mutations > 0)
        .map(|t| {
            let us = t.decide_act_cpu_ms * 1000.0 / t.mutations as f64;
            PerMutation {
                size: t.size,
                function: t.function.clone(),
                mutations: t.mutations,
                decide_act_us_per_mutation: us,
                floor_ratio: floor.map(|f| us / f.update_fleet_us),
                ledger_per_mutation: t.ledger_requests as f64 / t.mutations as f64,
            }
        })
        .collect()
}

/// Each estate's first tick: ledger requests per mutation, all functions together.
pub fn ledger(ticks: &[TickFigures]) -> Vec<LedgerFigures> {
    let mut figures: Vec<LedgerFigures> = Vec::new();
    for t in ticks.iter().filter(|t| t.tick == "first") {
        match figures.iter_mut().find(|f| f.size == t.size) {
            Some(f) => {
                f.ledger_requests += t.ledger_requests;
                f.mutations += t.mutations;
            }
            None => figures.push(LedgerFigures {
                size: t.size,
                ledger_requests: t.ledger_requests,
                mutations: t.mutations,
                per_mutation: 0.0,
            }),
        }
    }
    for f in &mut figures {
        f.per_mutation = f.ledger_requests as f64 / f.mutations.max(1) as f64;
    }
    figures
}

/// A binary's cold start.
#[derive(Debug, Clone, Serialize)]
pub struct ColdStartFigures {
    pub function: String,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub runs: usize,
    pub init_connections: u64,
}

/// A binary's tick on the memory estate, and its zip.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryFigures {
    pub function: String,
    pub size: u32,
    pub peak_rss_mib: f64,
    pub wall_ms: f64,
    pub outcome: String,
    /// `target/lambda/<function>/bootstrap.zip` (arm64, `scripts/package.sh`), when built.
    pub zip_mib: Option<f64>,
}

/// The floor F measured in the run: the bare SDK's request over a kept-alive loopback connection, CPU µs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Floor {
    pub put_item_us: f64,
    pub update_fleet_us: f64,
}

/// A first tick's cost per mutation, against the floor.
#[derive(Debug, Clone, Serialize)]
pub struct PerMutation {
    pub size: u32,
    pub function: String,
    pub mutations: u64,
    pub decide_act_us_per_mutation: f64,
    /// ÷ F (one EUC request, `UpdateFleet`'s floor).
    pub floor_ratio: Option<f64>,
    pub ledger_per_mutation: f64,
}

/// A first tick's ledger requests per mutation, all functions of an estate together.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerFigures {
    pub size: u32,
    pub ledger_requests: u64,
    pub mutations: u64,
    pub per_mutation: f64,
}

/// Everything measured.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub machine: String,
    pub command: String,
    /// CPU per request, one layer at a time.
    pub layers: Vec<layers::LayerFigures>,
    pub floor: Option<Floor>,
    pub per_mutation: Vec<PerMutation>,
    pub ledger: Vec<LedgerFigures>,
    /// The bare `lambda_runtime` function's cold start (the floor of the functions').
    pub bare_cold_start: Option<ColdStartFigures>,
    /// The cold start of `shared/examples/lambda_probe.rs`: the bare runtime plus the SDK configuration, every
    /// client and logging, as the functions build them (the step between the floor and a function).
    pub probe_cold_start: Option<ColdStartFigures>,
    pub ticks: Vec<TickFigures>,
    pub cpu: Vec<CpuFigures>,
    pub decide: Vec<DecideFigures>,
    pub throughput: Vec<throughput::Throughput>,
    pub cold_start: Vec<ColdStartFigures>,
    pub memory: Vec<MemoryFigures>,
    /// The pool-scaler's hub tick dispatching 100, 1,000 and 10,000 targets: its peak memory.
    pub dispatch_memory: Vec<shards::DispatchMemory>,
    pub demo_wall_s: Option<f64>,
    /// Many accounts and regions.
    pub shards: Option<shards::ShardFigures>,
}

fn outcome(result: &Result<serde_json::Value, impl std::fmt::Display>) -> String {
    match result {
        Ok(report) => report.get("status").and_then(|s| s.as_str()).unwrap_or("ok").to_owned(),
        Err(error) => format!("error: {error}"),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Every function's first and steady tick on an estate of `size`.
pub async fn ticks(size: u32, seed: u64) -> Result<Vec<TickFigures>, BenchError> {
    Ok(ticks_and_decide(size, seed).await?.0)
}

/// [`ticks`], then the pool-scaler's decide step alone on the same estate.
pub async fn ticks_and_decide(size: u32, seed: u64) -> Result<(Vec<TickFigures>, DecideFigures), BenchError> {
    let scale = Scale::of(size);
    let local = LocalEstate::start(&estate::estate(scale, seed), seed, 0).await?;
    estate::prepare(&local, scale).await?;
    let start = local.simulator.now() + chrono::Duration::minutes(5);
    let mut figures = Vec::new();
    for (tick, at) in [("first", start), ("steady", start + chrono::Duration::minutes(5))] {
        for function in Function::ALL {
            let run = tick::tick(&local, function, at).await?;
            let bound = local.simulator.with_world(|w| {
                bound::of(
                    function,
                    w,
                    &run.calls,
                    if tick == "first" { bound::Tick::First } else { bound::Tick::Steady },
                )
            });
            let calls = run.calls.len() as u64;
            let resources = scale.seen_by(function);
            let cpu_ms = ms(run.cpu);
            figures.push(TickFigures {
                size,
                function: function.name().to_owned(),
                tick,
                resources,
                calls,
                bound,
                ratio: calls as f64 / bound.total().max(1) as f64,
                cpu_ms,
                cpu_ms_per_1000: cpu_ms * 1000.0 / f64::from(resources.max(1)),
                decide_act_cpu_ms: ms(run.steps.decide + run.steps.act),
                wall_ms: ms(run.wall),
                outcome: outcome(&run.outcome),
                ledger_requests: run.ledger_requests,
                mutations: run.mutations(),
                connections_euc: run.connections.0,
                connections_ledger: run.connections.1,
                lanes_euc: run.peak_in_flight.0,
                lanes_ledger: run.peak_in_flight.1,
                ledger_operations: run.ledger_operations.clone(),
                operations: run.by_operation(),
            });
        }
    }
    let (resources, cpu_ms_per_1000) = tick::pool_scaler_decide(&local, 20).await?;
    let decide = DecideFigures { size, function: Function::PoolScaler.name().to_owned(), resources, cpu_ms_per_1000 };
    Ok((figures, decide))
}

/// Each function's release binary on a prepared estate of `size`: one tick as Lambda runs it, its peak memory.
pub async fn memory(size: u32, seed: u64) -> Result<Vec<MemoryFigures>, BenchError> {
    let scale = Scale::of(size);
    let mut figures = Vec::new();
    for function in Function::ALL {
        let local = LocalEstate::start(&estate::estate(scale, seed), seed, 0).await?;
        estate::prepare(&local, scale).await?;
        let at = local.simulator.advance(chrono::Duration::minutes(5));
        let event =
            autopilot_sim::tick_event_in(&local.simulator.place(), &format!("euc-autopilot-{}", function.name()), at);
        let binary = process::binary(function.name())?;
        let run = process::invoke_once(
            &binary,
            function.name(),
            local.env_as(autopilot_sim::Identity::Function(function.name())),
            event,
            tick::INVOCATION_TIME,
        )
        .await?;
        let zip = PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
            .join("lambda")
            .join(function.name())
            .join("bootstrap.zip");
        figures.push(MemoryFigures {
            function: function.name().to_owned(),
            size,
            peak_rss_mib: run.peak_rss_kib as f64 / 1024.0,
            wall_ms: run.wall_ms,
            outcome: outcome(&run.outcome),
            zip_mib: std::fs::metadata(&zip).ok().map(|m| m.len() as f64 / (1024.0 * 1024.0)),
        });
    }
    Ok(figures)
}

/// Every function binary's cold start, `spawns` times each.
pub async fn cold_starts(spawns: usize) -> Result<Vec<ColdStartFigures>, BenchError> {
    let mut figures = Vec::new();
    for function in Function::ALL {
        let binary = process::binary(function.name())?;
        let c = process::cold_start(&binary, function.name(), spawns).await?;
        figures.push(ColdStartFigures {
            function: function.name().to_owned(),
            median_ms: c.median_ms,
            min_ms: c.min_ms,
            max_ms: c.max_ms,
            runs: c.runs,
            init_connections: c.init_connections,
        });
    }
    Ok(figures)
}

/// The cold start of an example binary (`examples/…`) measured beside the functions.
async fn floor_cold_start(example: &str, spawns: usize) -> Result<ColdStartFigures, BenchError> {
    let binary = process::binary(example)?;
    let name = example.trim_start_matches("examples/");
    let c = process::cold_start(&binary, name, spawns).await?;
    Ok(ColdStartFigures {
        function: name.to_owned(),
        median_ms: c.median_ms,
        min_ms: c.min_ms,
        max_ms: c.max_ms,
        runs: c.runs,
        init_connections: c.init_connections,
    })
}

/// Wall time of `autopilot demo`, spawned from this executable into a scratch directory.
pub fn demo_wall() -> Result<f64, BenchError> {
    let exe = std::env::current_exe().map_err(BenchError::CurrentExe)?;
    let out = std::env::temp_dir().join(format!("autopilot-bench-demo-{}", std::process::id()));
    let started = std::time::Instant::now();
    let status = std::process::Command::new(exe)
        .args(["demo", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(BenchError::RunDemo)?;
    let wall = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&out);
    if status.success() { Ok(wall) } else { Err(BenchError::DemoFailed(status)) }
}

/// The machine the figures come from.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    format!("{cpus} CPUs, {model}, {} {}", std::env::consts::OS, std::env::consts::ARCH)
}

/// Runs everything `options` asks for.
pub async fn run(options: &Options) -> Result<Results, BenchError> {
    let mut results = Results {
        machine: machine(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        layers: Vec::new(),
        floor: None,
        per_mutation: Vec::new(),
        ledger: Vec::new(),
        bare_cold_start: None,
        probe_cold_start: None,
        ticks: Vec::new(),
        cpu: Vec::new(),
        decide: Vec::new(),
        throughput: Vec::new(),
        cold_start: Vec::new(),
        memory: Vec::new(),
        dispatch_memory: Vec::new(),
        demo_wall_s: None,
        shards: None,
    };
    if options.layer_requests > 0 {
        eprintln!("bench: CPU per request, layer by layer ({} requests each)", options.layer_requests);
        let local = LocalEstate::start(&estate::estate(Scale::of(100), options.seed), options.seed, 0).await?;
        results.layers = layers::layers(&local, options.layer_requests).await?;
        let floor = |operation: &str| {
            results.layers.iter().find(|l| l.layer == layers::FLOOR && l.operation == operation).map(|l| l.cpu_us)
        };
        if let (Some(put_item_us), Some(update_fleet_us)) = (floor("PutItem"), floor("UpdateFleet")) {
            results.floor = Some(Floor { put_item_us, update_fleet_us });
        }
    }
    for &size in &options.sizes {
        eprintln!("bench: ticks on {size} pools + fleets");
        let (figures, decide) = ticks_and_decide(size, options.seed).await?;
        results.ticks.extend(figures);
        results.decide.push(decide);
    }
    results.cpu = cpu(&results.ticks);
    results.per_mutation = per_mutation(&results.ticks, results.floor);
    results.ledger = ledger(&results.ticks);
    if options.throughput_size > 0 {
        for function in Function::ALL {
            eprintln!("bench: {} at the rate limits ({} pools + fleets)", function.name(), options.throughput_size);
            results
                .throughput
                .push(throughput::reconcile(function, Scale::of(options.throughput_size), options.seed).await?);
        }
    }
    if options.shard_size > 0 {
        eprintln!(
            "bench: {} pools + fleets over {} accounts x {} regions, shards in parallel at the rate limits",
            options.shard_size,
            options.accounts,
            options.regions.len()
        );
        results.shards = Some(shards::run(options.shard_size, options.accounts, &options.regions, options.seed).await?);
    }
    if options.spawns > 0 {
        eprintln!("bench: cold starts ({} spawns per function)", options.spawns);
        results.cold_start = cold_starts(options.spawns).await?;
        results.bare_cold_start = Some(floor_cold_start(process::BARE_RUNTIME, options.spawns).await?);
        results.probe_cold_start = Some(floor_cold_start(process::LAMBDA_PROBE, options.spawns).await?);
        eprintln!("bench: peak memory ({} pools + fleets)", options.memory_size);
        results.memory = memory(options.memory_size, options.seed).await?;
        eprintln!("bench: peak memory of a hub tick dispatching 100, 1,000 and 10,000 targets");
        results.dispatch_memory = shards::dispatch_memory(
            &process::binary(Function::PoolScaler.name())?,
            &shards::DISPATCH_TARGETS,
            options.seed,
        )
        .await?;
    }
    if options.demo {
        eprintln!("bench: autopilot demo");
        results.demo_wall_s = Some(demo_wall()?);
    }
    Ok(results)
}

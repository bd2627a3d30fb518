//! Many accounts and regions at the rate limits: a generated estate of pools and fleets spread over accounts ×
//! regions (each account × region throttled at its own rates, as AWS throttles), the pool-scaler's hub tick
//! fanning out one `Shard Tick` per shard, and every shard tick delivered at once, as EventBridge and Lambda run
//! them. The full reconcile's wall time is judged against the largest shard's rate-limit bound (the shards run in
//! parallel) and set beside the sum of the shards' bounds (walking the spokes one after another). A second run
//! dispatches a thousand targets in one hub tick and reports what that costs.

use super::BenchError;
use super::estate::{POLICY, START};
use super::throughput::rate;
use autopilot_functions::Function;
use autopilot_sim::LocalEstate;
use autopilot_sim::generate::{Sizes, generate, spread};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The time each invocation may take (Lambda's maximum).
const INVOCATION_TIME: Duration = Duration::from_secs(900);

/// The operations the pool-scaler's tick uses, throttled at [`rate`] per account × region.
const OPERATIONS: [&str; 12] = [
    "DescribeWorkspacesPools",
    "DescribeFleets",
    "DescribeTags",
    "ListTagsForResource",
    "DescribeScalableTargets",
    "UpdateWorkspacesPool",
    "StartWorkspacesPool",
    "StopWorkspacesPool",
    "UpdateFleet",
    "StartFleet",
    "StopFleet",
    "PutEvents",
];

/// A full reconcile over many shards.
#[derive(Debug, Clone, Serialize)]
pub struct ShardFigures {
    /// Pools + fleets.
    pub resources: u32,
    pub accounts: u32,
    pub regions: Vec<String>,
    pub shards: u32,
    /// The hub tick: its wall time and its requests (PutEvents, 10 shard ticks each).
    pub dispatch_ms: f64,
    pub dispatch_calls: u64,
    /// From the first shard tick delivered to the last shard done.
    pub wall_s: f64,
    /// The largest shard's bound (its largest `calls_op / R_op`), and the sum over the shards.
    pub largest_bound_s: f64,
    pub sequential_bound_s: f64,
    /// `wall_s / largest_bound_s` (goal ≤ 1.2) and `sequential_bound_s / wall_s` (goal ≥ 20).
    pub ratio_to_largest: f64,
    pub faster_than_sequential: f64,
    /// Each shard invocation's own wall time: mean and largest (Instance Scheduler's guidance: 90 s, 4 minutes).
    pub shard_mean_s: f64,
    pub shard_peak_s: f64,
    /// Requests that failed other than by throttling, and shard invocations that failed.
    pub failed_requests: u64,
    pub failed_shards: u32,
    /// Requests the simulator throttled (retried by the shards' clients).
    pub throttled: u64,
    /// Each shard's requests (throttled ones left out) ÷ the lower bound of its tick on what it sees
    /// ([`super::bound`]): the smallest and the largest over the shards (goal: 1.000).
    pub calls_per_bound_min: f64,
    pub calls_per_bound_max: f64,
    /// The changes the shards made (their count sets the mutations' part of the bounds).
    pub mutations: u64,
    /// The operation that sets the largest shard's bound.
    pub limiting_operation: String,
    /// A thousand targets in one hub tick.
    pub thousand: Dispatch,
    /// Bad shards beside good ones.
    pub bad: BadShards,
}

/// Three bad shards beside three good ones, one account × region each: one without a spoke role, one answering
/// 30% of requests with a 5xx, one throttled at 1 request per second.
#[derive(Debug, Clone, Serialize)]
pub struct BadShards {
    /// Pools + fleets per shard.
    pub per_shard: u32,
    /// The good shards: all reconciled, and the longest one's wall time against its rate-limit bound.
    pub good_reconciled: u32,
    pub good_wall_s: f64,
    pub good_bound_s: f64,
    /// Each bad shard: what it is, how its invocation ended (its last tick as `autopilot targets` shows it) and how
    /// long it took.
    pub bad: Vec<BadShard>,
}

/// One bad shard's tick.
#[derive(Debug, Clone, Serialize)]
pub struct BadShard {
    pub fault: String,
    pub outcome: String,
    pub wall_s: f64,
}

/// One hub tick dispatching many targets.
#[derive(Debug, Clone, Serialize)]
pub struct Dispatch {
    pub targets: u32,
    pub dispatched: u32,
    pub wall_ms: f64,
    pub calls: u64,
    /// The largest `Shard Tick` entry (EventBridge takes 256 KiB per `PutEvents` call).
    pub largest_entry_bytes: usize,
    /// What the dispatch costs on EventBridge: each shard tick is a custom event (billed per 64 KiB chunk).
    pub cost_usd: f64,
}

/// EventBridge's price of a custom event put on a bus (us-east-1, per event of at most 64 KiB).
pub const USD_PER_CUSTOM_EVENT: f64 = 1.00 / 1_000_000.0;

/// The policy of the benchmark with `targets` naming every generated account in `regions`.
fn policy(accounts: u32, regions: &[String]) -> String {
    let mut text = format!("{POLICY}\ntargets:\n  regions: [{}]\n  accounts:\n", regions.join(", "));
    for n in 1..=u64::from(accounts) {
        text.push_str(&format!("    - id: \"{:012}\"\n", 100_000_000_000 + n));
    }
    text
}

/// The `Shard Tick` events the hub published since event `from`, as EventBridge delivers them.
fn shard_ticks(local: &LocalEstate, from: usize) -> Vec<serde_json::Value> {
    local.bus_events_since(from, autopilot_shared::events::SHARD_TICK_DETAIL_TYPE)
}

/// The hub tick of `function` at the estate's current time, timed; its report and the calls it made.
async fn hub_tick(local: &LocalEstate, deps: &autopilot_shared::runtime::Deps) -> Result<(f64, u64), BenchError> {
    let before = local.simulator.calls().len();
    let tick =
        autopilot_sim::tick_event_in(&local.simulator.place(), "euc-autopilot-pool-scaler", local.simulator.now());
    let started = Instant::now();
    Function::PoolScaler.invoke(deps, tick, INVOCATION_TIME).await.map_err(BenchError::Shards)?;
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok((wall_ms, (local.simulator.calls().len() - before) as u64))
}

/// Runs the benchmark: `size` pools + fleets over `accounts` × `regions`.
pub async fn run(size: u32, accounts: u32, regions: &[String], seed: u64) -> Result<ShardFigures, BenchError> {
    let sizes =
        Sizes { pools: size / 2, fleets: size - size / 2, builders: 0, environments: 0, devices: 0, workspaces: 0 };
    let mut estate = generate(sizes, seed);
    estate.start = START.into();
    spread(&mut estate, accounts, regions);
    let local = LocalEstate::start(&estate, seed, 0).await?;
    local.ledger().put_policy(&policy(accounts, regions), local.simulator.now()).await?;
    local.simulator.with_world_mut(|w| {
        w.faults.throttle_per_second = OPERATIONS.iter().map(|op| ((*op).to_owned(), rate(op))).collect();
    });
    local.simulator.advance(chrono::Duration::minutes(5));
    let deps = local.deps_for(Function::PoolScaler.name());

    let events_before = local.bus_event_count();
    let (dispatch_ms, dispatch_calls) = hub_tick(&local, &deps).await?;
    let ticks = shard_ticks(&local, events_before);
    let calls_before = local.simulator.calls().len();
    let world_before = local.simulator.with_world(autopilot_sim::world::World::clone);
    let started = Instant::now();
    let runs = futures::future::join_all(ticks.iter().map(|tick| {
        let deps = &deps;
        async move {
            let begun = Instant::now();
            let outcome = Function::PoolScaler.invoke(deps, tick.clone(), INVOCATION_TIME).await;
            (begun.elapsed(), outcome.is_ok())
        }
    }))
    .await;
    let wall_s = started.elapsed().as_secs_f64();

    // Each shard signs as its own spoke session: its calls are those of one caller.
    let calls = local.simulator.calls();
    let mut by_shard: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut by_place: BTreeMap<(String, String), Vec<autopilot_sim::calllog::CallRecord>> = BTreeMap::new();
    let (mut throttled, mut failed_requests) = (0, 0);
    for call in &calls[calls_before..] {
        if super::tick::is_throttle(&call.outcome) {
            throttled += 1;
            continue;
        }
        if !call.ok() {
            failed_requests += 1;
        }
        // A spoke session's key is `ASIASPOKE<account><n>`; the region is its SigV4 scope.
        if let (Some(account), Some(region)) =
            (call.caller.as_deref().and_then(|c| c.strip_prefix("ASIASPOKE")).and_then(|c| c.get(..12)), &call.region)
        {
            by_place.entry((account.to_owned(), region.clone())).or_default().push(call.clone());
        }
        let caller = call.caller.clone().unwrap_or_default();
        *by_shard.entry(caller).or_default().entry(call.operation.clone()).or_insert(0) += 1;
    }
    let spokes = || by_shard.iter().filter(|(caller, _)| caller.starts_with("ASIASPOKE"));
    let bounds: Vec<f64> = spokes()
        .map(|(_, ops)| ops.values().zip(ops.keys()).map(|(n, op)| *n as f64 / rate(op)).fold(0.0, f64::max))
        .collect();
    let largest_bound_s = bounds.iter().copied().fold(0.0, f64::max);
    let limiting_operation = spokes()
        .flat_map(|(_, ops)| ops.iter().map(|(op, n)| (*n as f64 / rate(op), op.clone())))
        .fold((0.0, String::new()), |best, next| if next.0 > best.0 { next } else { best })
        .1;
    let mutations = by_place.values().map(|calls| super::tick::mutations(calls)).sum();
    let sequential_bound_s: f64 = bounds.iter().sum();
    let durations: Vec<f64> = runs.iter().map(|(d, _)| d.as_secs_f64()).collect();
    let shard_mean_s = durations.iter().sum::<f64>() / durations.len().max(1) as f64;
    let shard_peak_s = durations.iter().copied().fold(0.0, f64::max);
    let failed_shards = runs.iter().filter(|(_, ok)| !ok).count() as u32;
    let per_bound: Vec<f64> = by_place
        .iter()
        .map(|((account, region), calls)| {
            let seen = world_before.in_place(account, region);
            let bound = super::bound::of(Function::PoolScaler, &seen, calls, super::bound::Tick::First);
            calls.len() as f64 / bound.total().max(1) as f64
        })
        .collect();

    Ok(ShardFigures {
        resources: size,
        accounts,
        regions: regions.to_vec(),
        shards: ticks.len() as u32,
        dispatch_ms,
        dispatch_calls,
        wall_s,
        largest_bound_s,
        sequential_bound_s,
        ratio_to_largest: if largest_bound_s > 0.0 { wall_s / largest_bound_s } else { 0.0 },
        faster_than_sequential: if wall_s > 0.0 { sequential_bound_s / wall_s } else { 0.0 },
        shard_mean_s,
        shard_peak_s,
        failed_requests,
        failed_shards,
        throttled,
        calls_per_bound_min: per_bound.iter().copied().fold(f64::INFINITY, f64::min).min(f64::MAX),
        calls_per_bound_max: per_bound.iter().copied().fold(0.0, f64::max),
        mutations,
        limiting_operation,
        thousand: thousand_targets(seed).await?,
        bad: bad_shards(BAD_SHARD_SIZE, seed).await?,
    })
}

/// Pools + fleets in each shard of the bad-shards run (its 1 request/s shard takes about a second a call).
pub const BAD_SHARD_SIZE: u32 = 20;

/// Three good shards and three bad ones (see [`BadShards`]), all run at once as Lambda would, each within the
/// functions' 300-second timeout.
pub async fn bad_shards(per_shard: u32, seed: u64) -> Result<BadShards, BenchError> {
    let region = "eu-central-1".to_owned();
    let regions = std::slice::from_ref(&region);
    let sizes =
        Sizes { pools: per_shard * 3, fleets: per_shard * 3, builders: 0, environments: 0, devices: 0, workspaces: 0 };
    let mut estate = generate(sizes, seed);
    estate.start = START.into();
    spread(&mut estate, 6, regions);
    let account = |n: u64| format!("{:012}", 100_000_000_000 + n);
    // the first account has no spoke role; the second answers 30% with a 5xx; the third, 1 request per second
    estate.spokes.retain(|spoke| spoke.account != account(1));
    let faults = [
        (account(2), autopilot_sim::estate::PlaceFaults { error_rate: 0.3, throttle_per_second: None }),
        (account(3), autopilot_sim::estate::PlaceFaults { error_rate: 0.0, throttle_per_second: Some(1.0) }),
    ];
    for (account, fault) in faults {
        estate.faults.places.insert(format!("{account}/{region}"), fault);
    }
    let local = LocalEstate::start(&estate, seed, 0).await?;
    local.ledger().put_policy(&policy(6, regions), local.simulator.now()).await?;
    local.simulator.with_world_mut(|w| {
        w.faults.throttle_per_second = OPERATIONS.iter().map(|op| ((*op).to_owned(), rate(op))).collect();
    });
    local.simulator.advance(chrono::Duration::minutes(5));
    let deps = local.deps_for(Function::PoolScaler.name());
    hub_tick(&local, &deps).await?;
    let ticks = shard_ticks(&local, 0);
    let calls_before = local.simulator.calls().len();
    let runs = futures::future::join_all(ticks.iter().map(|tick| {
        let deps = &deps;
        async move {
            let begun = Instant::now();
            let outcome = Function::PoolScaler.invoke(deps, tick.clone(), LAMBDA_TIMEOUT).await;
            let account = tick["detail"]["account"].as_str().unwrap_or_default().to_owned();
            (account, begun.elapsed().as_secs_f64(), outcome.is_ok())
        }
    }))
    .await;
    let statuses = local.ledger().shard_statuses().await?;
    let fault_of = |a: &str| match a {
        _ if a == account(1) => Some("no spoke role"),
        _ if a == account(2) => Some("30% 5xx"),
        _ if a == account(3) => Some("1 request/s"),
        _ => None,
    };
    let mut good = (0, 0.0_f64);
    let mut bad = Vec::new();
    for (account, wall_s, ok) in &runs {
        match fault_of(account) {
            None => {
                good.0 += u32::from(*ok);
                good.1 = good.1.max(*wall_s);
            }
            Some(fault) => {
                let outcome = statuses
                    .iter()
                    .find(|s| &s.account == account)
                    .map_or_else(|| "not recorded".to_owned(), |s| format!("{:?}", s.outcome).to_lowercase());
                bad.push(BadShard { fault: fault.to_owned(), outcome, wall_s: *wall_s });
            }
        }
    }
    let calls = local.simulator.calls();
    let mut good_calls: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for call in &calls[calls_before..] {
        let caller = call.caller.clone().unwrap_or_default();
        let good_caller = [4, 5, 6].iter().any(|n| caller.starts_with(&format!("ASIASPOKE{}", account(*n))));
        if good_caller && !super::tick::is_throttle(&call.outcome) {
            *good_calls.entry(caller).or_default().entry(call.operation.clone()).or_insert(0) += 1;
        }
    }
    let good_bound_s = good_calls
        .values()
        .map(|ops| ops.iter().map(|(op, n)| *n as f64 / rate(op)).fold(0.0, f64::max))
        .fold(0.0, f64::max);
    bad.sort_by(|a, b| a.fault.cmp(&b.fault));
    Ok(BadShards { per_shard, good_reconciled: good.0, good_wall_s: good.1, good_bound_s, bad })
}

/// The functions' timeout in `template.yaml`.
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(300);

/// One hub tick of a policy naming 500 accounts × 2 regions, on an estate with nothing in them: the cost of the
/// dispatch alone.
async fn thousand_targets(seed: u64) -> Result<Dispatch, BenchError> {
    let regions = ["eu-central-1".to_owned(), "eu-west-1".to_owned()];
    let mut estate =
        generate(Sizes { pools: 0, fleets: 0, builders: 0, environments: 0, devices: 0, workspaces: 0 }, seed);
    estate.start = START.into();
    let local = LocalEstate::start(&estate, seed, 0).await?;
    local.ledger().put_policy(&policy(500, &regions), local.simulator.now()).await?;
    let deps = local.deps_for(Function::PoolScaler.name());
    let (wall_ms, calls) = hub_tick(&local, &deps).await?;
    let ticks = shard_ticks(&local, 0);
    let largest_entry_bytes = ticks.iter().map(|t| t["detail"].to_string().len()).max().unwrap_or(0);
    let cost_usd = ticks.len() as f64 * USD_PER_CUSTOM_EVENT;
    Ok(Dispatch { targets: 1000, dispatched: ticks.len() as u32, wall_ms, calls, largest_entry_bytes, cost_usd })
}

/// The numbers of targets the dispatch's memory is measured at.
pub const DISPATCH_TARGETS: [u32; 3] = [100, 1_000, 10_000];

/// Whether the dispatch's memory grows with the targets by no more than [`DISPATCH_GROWTH`] times the policy
/// document's own growth. The dispatch holds ten shard ticks at a time; what grows is the document, read from
/// DynamoDB, parsed from YAML and kept parsed (about 20 bytes of memory per byte of it, measured; 46 when the
/// shard ticks were collected before publishing).
pub fn dispatch_memory_flat(figures: &[DispatchMemory]) -> bool {
    let (Some(small), Some(large)) = (figures.first(), figures.last()) else { return true };
    let growth_kib = (large.peak_rss_mib - small.peak_rss_mib) * 1024.0;
    figures.iter().all(|f| f.dispatched == f.targets)
        && growth_kib <= DISPATCH_GROWTH * (large.policy_kib - small.policy_kib)
}

/// See [`dispatch_memory_flat`].
pub const DISPATCH_GROWTH: f64 = 32.0;

/// The dispatching invocation's memory against the number of targets.
#[derive(Debug, Clone, Serialize)]
pub struct DispatchMemory {
    pub targets: u32,
    pub dispatched: u32,
    /// The policy document's size: the one thing that must grow with the targets.
    pub policy_kib: f64,
    /// Peak resident memory of the function's process (init and the hub tick), and the hub tick's wall time.
    pub peak_rss_mib: f64,
    pub wall_ms: f64,
    /// The invocation's answer (`dispatched`), or its error.
    pub outcome: String,
}

/// The pool-scaler's release binary (`binary`) dispatching each of `targets` (accounts x 2 regions) in one hub
/// tick, as Lambda runs it: its peak memory. The shard list is built from the policy and published ten to a
/// `PutEvents` call, so beyond the policy document itself the memory should not grow with the targets.
pub async fn dispatch_memory(
    binary: &std::path::Path,
    targets: &[u32],
    seed: u64,
) -> Result<Vec<DispatchMemory>, BenchError> {
    let regions = ["eu-central-1".to_owned(), "eu-west-1".to_owned()];
    let mut figures = Vec::new();
    for &n in targets {
        let mut estate =
            generate(Sizes { pools: 0, fleets: 0, builders: 0, environments: 0, devices: 0, workspaces: 0 }, seed);
        estate.start = START.into();
        let local = LocalEstate::start(&estate, seed, 0).await?;
        let document = policy(n.div_ceil(2), &regions);
        local.ledger().put_policy(&document, local.simulator.now()).await?;
        let name = Function::PoolScaler.name();
        let tick =
            autopilot_sim::tick_event_in(&local.simulator.place(), "euc-autopilot-pool-scaler", local.simulator.now());
        let run = super::process::invoke_once(
            binary,
            name,
            local.env_as(autopilot_sim::Identity::Function(name)),
            tick,
            INVOCATION_TIME,
        )
        .await?;
        figures.push(DispatchMemory {
            targets: n,
            dispatched: shard_ticks(&local, 0).len() as u32,
            policy_kib: document.len() as f64 / 1024.0,
            peak_rss_mib: run.peak_rss_kib as f64 / 1024.0,
            wall_ms: run.wall_ms,
            outcome: match &run.outcome {
                Ok(answer) => answer["status"].as_str().unwrap_or("answered").to_owned(),
                Err(error) => format!("error: {error}"),
            },
        });
    }
    Ok(figures)
}

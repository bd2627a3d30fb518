//! Throughput at the services' rate limits: the simulator throttles each operation at its own rate (a token
//! bucket per operation, as the services do), and a full reconcile — the first tick of a function on a fresh
//! estate: everything listed, every tag read, every mutation made — is timed against the bound those rates
//! imply: the largest `calls_op / R_op` (no schedule of the same calls can finish sooner, give or take the
//! buckets' first second of burst).

use super::BenchError;
use super::estate::{self, Scale};
use super::tick::{self, TickRun};
use autopilot_functions::Function;
use autopilot_sim::LocalEstate;
use serde::Serialize;
use std::collections::BTreeMap;

/// The rate limits assumed, requests per second per operation (AWS does not publish per-operation quotas for
/// these services; these are of the order seen in practice, and only their ratios to the calls matter).
pub fn rate(operation: &str) -> f64 {
    if operation == "PutEvents" {
        50.0
    } else if autopilot_shared::clients::is_read_only(operation) {
        20.0
    } else {
        5.0
    }
}

/// Below this bound a reconcile is too short for a ratio to mean anything (a call or two): shown, not judged.
pub const MIN_JUDGED_BOUND_S: f64 = 1.0;

/// One function's reconcile at the rate limits.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub function: String,
    pub wall_s: f64,
    /// The largest `calls_op / R_op`.
    pub bound_s: f64,
    /// The operation that sets the bound.
    pub limiting_operation: String,
    pub ratio: f64,
    /// A bound that respects observe → act: the slowest read, then the slowest mutation (a resource is acted
    /// on only once it has been seen).
    pub phased_bound_s: f64,
    /// Requests the simulator throttled (retried by the function).
    pub throttled: u64,
    /// Mutations made, and in the same tick without throttling.
    pub mutations: u64,
    pub mutations_unthrottled: u64,
    /// Requests that failed other than by throttling, plus mutations missing against the unthrottled run.
    pub failed_actions: u64,
    /// CPU time of the function's thread in this reconcile, and its share of the bound: how much of the time the
    /// rate limits impose the program's own work takes (the SDK and the ledger included).
    pub cpu_s: f64,
    pub cpu_share_of_bound: f64,
    pub outcome: String,
}

async fn first_tick(
    function: Function,
    scale: Scale,
    seed: u64,
    limits: Option<BTreeMap<String, f64>>,
) -> Result<TickRun, BenchError> {
    let local = LocalEstate::start(&estate::estate(scale, seed), seed, 0).await?;
    estate::prepare(&local, scale).await?;
    if let Some(limits) = limits {
        local.simulator.with_world_mut(|w| w.faults.throttle_per_second = limits);
    }
    let at = local.simulator.now() + chrono::Duration::minutes(5);
    tick::tick(&local, function, at).await
}

/// Times `function`'s first tick on a fresh estate of `scale` with every operation throttled at [`rate`].
pub async fn reconcile(function: Function, scale: Scale, seed: u64) -> Result<Throughput, BenchError> {
    let free = first_tick(function, scale, seed, None).await?;
    // Every operation the tick uses is throttled at its rate.
    let limits = free.by_operation().into_keys().map(|op| {
        let r = rate(&op);
        (op, r)
    });
    let run = first_tick(function, scale, seed, Some(limits.collect())).await?;
    let mut calls: BTreeMap<&str, u64> = BTreeMap::new();
    for call in run.calls.iter().filter(|c| !tick::is_throttle(&c.outcome)) {
        *calls.entry(call.operation.as_str()).or_insert(0) += 1;
    }
    let (limiting_operation, bound_s) = calls
        .iter()
        .map(|(op, n)| ((*op).to_owned(), *n as f64 / rate(op)))
        .fold((String::new(), 0.0_f64), |best, next| if next.1 > best.1 { next } else { best });
    let slowest = |reads: bool| {
        calls
            .iter()
            .filter(|(op, _)| autopilot_shared::clients::is_read_only(op) == reads)
            .map(|(op, n)| *n as f64 / rate(op))
            .fold(0.0_f64, f64::max)
    };
    let phased_bound_s = slowest(true) + slowest(false);
    let wall_s = run.wall.as_secs_f64();
    let failed_actions = run.failed_requests() + free.mutations().saturating_sub(run.mutations());
    Ok(Throughput {
        function: function.name().to_owned(),
        wall_s,
        bound_s,
        limiting_operation,
        ratio: if bound_s > 0.0 { wall_s / bound_s } else { 0.0 },
        phased_bound_s,
        throttled: run.throttled(),
        mutations: run.mutations(),
        mutations_unthrottled: free.mutations(),
        failed_actions,
        cpu_s: run.cpu.as_secs_f64(),
        cpu_share_of_bound: if bound_s > 0.0 { run.cpu.as_secs_f64() / bound_s } else { 0.0 },
        outcome: match &run.outcome {
            Ok(_) => "ok".into(),
            Err(e) => e.to_string(),
        },
    })
}

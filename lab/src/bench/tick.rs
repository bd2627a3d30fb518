//! One tick of one function, measured: the calls it made (from the simulator's call log), its CPU time and its
//! wall time. The function runs on a thread of its own (a current-thread runtime), so that thread's CPU time is
//! the function's own work — observe, decide and act, the SDK's serialisation included — and excludes the
//! simulator and the embedded DynamoDB (their own threads) and every wait on the network.

use super::BenchError;
use autopilot_functions::Function;
use autopilot_sim::LocalEstate;
use autopilot_sim::calllog::CallRecord;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The time a benchmark tick may take (Lambda's maximum).
pub const INVOCATION_TIME: Duration = Duration::from_secs(900);

/// What one tick did.
#[derive(Debug, Clone)]
pub struct TickRun {
    /// Every request the simulator answered during the tick (throttled ones included).
    pub calls: Vec<CallRecord>,
    /// CPU time of the function's thread.
    pub cpu: Duration,
    /// The part of it spent in the decide and act steps (`autopilot_shared::cpu`): the rest is observing (the
    /// listing, the reads of memories and tags) and the runtime's own I/O driving.
    pub steps: autopilot_shared::cpu::Steps,
    pub wall: Duration,
    /// The function's report, or its error.
    pub outcome: Result<serde_json::Value, autopilot_shared::error::AutopilotError>,
    /// Requests to the ledger (DynamoDB) during the tick.
    pub ledger_requests: u64,
    /// TCP connections opened during the tick (server side): to the simulated services, to the ledger.
    pub connections: (u64, u64),
    /// The most requests in flight at once: to the simulated services, to the ledger (the lanes a client that
    /// keeps its connections alive needs a connection for).
    pub peak_in_flight: (u64, u64),
    /// Requests to the ledger by DynamoDB operation.
    pub ledger_operations: BTreeMap<String, u64>,
}

impl TickRun {
    /// Requests by operation.
    pub fn by_operation(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for call in &self.calls {
            *counts.entry(call.operation.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Mutations of the estate that succeeded.
    pub fn mutations(&self) -> u64 {
        mutations(&self.calls)
    }

    /// Mutations of the estate that failed (after the SDK's retries, the last answer of each).
    pub fn failed_requests(&self) -> u64 {
        self.calls.iter().filter(|c| !c.ok() && !is_throttle(&c.outcome)).count() as u64
    }

    /// Requests answered with a throttling error.
    pub fn throttled(&self) -> u64 {
        self.calls.iter().filter(|c| is_throttle(&c.outcome)).count() as u64
    }
}

/// Whether an outcome is the services' rate-limit error.
pub fn is_throttle(outcome: &str) -> bool {
    matches!(outcome, "ThrottlingException" | "RequestLimitExceededException")
}

/// Runs `function`'s schedule tick at `at` (the simulator's clock is moved there first).
pub async fn tick(local: &LocalEstate, function: Function, at: DateTime<Utc>) -> Result<TickRun, BenchError> {
    local.simulator.advance_to(at);
    let before = local.simulator.call_count();
    let connections_before = local.connections();
    // Every request goes through a counting gate (never crashes, never holds): the ledger's requests are the
    // gate's count minus the simulator's.
    let gate = crate::chaos::gate::Gate::new();
    let deps = local.deps_through(Some(gate.http_client()), autopilot_sim::Identity::Function(function.name()));
    let event =
        autopilot_sim::tick_event_in(&local.simulator.place(), &format!("euc-autopilot-{}", function.name()), at);
    // A thread of its own, named so a profiler can pick it out (`perf report --comms bench-tick`).
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let run = move || {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(BenchError::Runtime)?;
        let cpu_before = thread_cpu()?;
        let started = Instant::now();
        autopilot_shared::cpu::start();
        let outcome = runtime.block_on(function.invoke(&deps, event, INVOCATION_TIME));
        let steps = autopilot_shared::cpu::stop().unwrap_or_default();
        let wall = started.elapsed();
        let cpu = thread_cpu()?.saturating_sub(cpu_before);
        drop(runtime);
        Ok::<_, BenchError>((cpu, steps, wall, outcome))
    };
    let thread = std::thread::Builder::new().name("bench-tick".into()).spawn(move || {
        let _ = sender.send(run());
    });
    thread.map_err(BenchError::TickThread)?;
    let (cpu, steps, wall, outcome) = receiver.await.map_err(|_| BenchError::TickThreadFailed)??;
    let calls = local.simulator.calls_since(before);
    let ledger_requests = gate.requests().saturating_sub(calls.len() as u64);
    let after = local.connections();
    let connections = (after.0 - connections_before.0, after.1 - connections_before.1);
    let peaks = gate.peak_in_flight();
    let peak = |endpoint: &str| peaks.get(endpoint.trim_start_matches("http://")).copied().unwrap_or(0);
    let peak_in_flight = (peak(&local.endpoint), peak(&local.dynamo.endpoint));
    let ledger_operations = gate
        .targets()
        .into_iter()
        .filter_map(|(target, n)| target.strip_prefix("DynamoDB_20120810.").map(|op| (op.to_owned(), n)))
        .collect();
    Ok(TickRun { calls, cpu, steps, wall, outcome, ledger_requests, connections, peak_in_flight, ledger_operations })
}

/// CPU time of the calling thread so far (user + kernel: `CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu() -> Result<Duration, BenchError> {
    autopilot_shared::cpu::thread_time().ok_or(BenchError::ThreadCpu)
}

/// CPU of the pool-scaler's decide step alone — pure, no IO — over every pool and fleet of `local`: observed
/// once, then decided `rounds` times on this thread. Per 1,000 resources, and the resources.
pub async fn pool_scaler_decide(local: &LocalEstate, rounds: u32) -> Result<(u32, f64), BenchError> {
    let deps = local.deps_for(Function::PoolScaler.name());
    let now = local.simulator.now();
    let scope = pool_scaler::observe::Scope::All;
    let observation =
        pool_scaler::observe::observe(&deps.aws, &deps.ledger, now, &scope, autopilot_sim::LOCAL_REGION).await?;
    let policy = autopilot_shared::policy::Policy::from_yaml(super::estate::POLICY)?;
    let memories = BTreeMap::new();
    let prefix = autopilot_shared::policy::tags::DEFAULT_TAG_PREFIX;
    // No await from here on: the work stays on this thread.
    let before = thread_cpu()?;
    for _ in 0..rounds {
        std::hint::black_box(pool_scaler::decide::plan(
            &observation.resources,
            &policy,
            &memories,
            prefix,
            now,
            pool_scaler::decide::Trigger::Tick,
        ));
    }
    let cpu = thread_cpu()?.saturating_sub(before);
    let resources = observation.resources.len() as u32;
    let per_1000 = cpu.as_secs_f64() * 1000.0 / f64::from(rounds.max(1)) * 1000.0 / f64::from(resources.max(1));
    Ok((resources, per_1000))
}

/// The successful changes of the estate among `calls`.
pub fn mutations(calls: &[autopilot_sim::calllog::CallRecord]) -> u64 {
    calls.iter().filter(|c| c.is_estate_mutation() && c.ok()).count() as u64
}

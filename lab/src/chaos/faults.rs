//! Faults (`autopilot chaos` and `tests/tests/faults.rs`): a function's sample scenario with the simulator
//! throttling, failing or slowing the operations the function calls, or failing items of its batch calls, for
//! the whole run. The run must converge: within [`EXTRA_TICKS`] ticks after the scenario its successful
//! mutating calls equal those of the undisturbed run at the same virtual time, none repeated, none missing, no
//! action left failed.
//!
//! The profiles ([`PROFILES`]), each on the EUC operations (and Application Auto Scaling) the function's
//! undisturbed run calls — EventBridge (outcome events) and the ledger are not faulted here (the ledger outage is
//! its own experiment):
//!
//! - `throttle`: [`THROTTLE_PER_SECOND`] requests per second per operation (the simulator's wall-clock token
//!   bucket); the SDK backs off and retries.
//! - `5xx-10%`, `5xx-30%` (any `5xx-<percent>%` is understood): that share of requests answered
//!   `500 InternalServerException`.
//! - `latency`: [`LATENCY_SHARE`] of the SDK's per-attempt timeout (from [`timeouts_for`] with the scenario's
//!   [`scenario::REMAINING`] of 60 s: 58 s per operation, 19.3 s per attempt, so 16.4 s) added to the function's
//!   mutating operation and its least-called read ([`MAX_SLOWED_READ_CALLS`]: every slowed call costs the
//!   latency in wall time).
//! - `batch-failures`: the first [`BATCH_FAILED_ATTEMPTS`] attempts of every item of the batch operations the
//!   function calls end in `FailedRequests` (`InternalError`); n/a for a function that calls none.
//!
//! Calls are compared per item: a batch call counts once per WorkSpace it names. It answers 200 even when an
//! item failed, and the call log does not see which, so an item the simulator failed on purpose is found in the
//! audit records (`Failed`, the simulator's item error code, same operation, WorkSpace and virtual time) and
//! not counted: the retry that follows is the action, not a repeat.
//!
//! Figures ([`FaultRun`]): `failed_actions` are actions whose last audit record is `Failed` or a throttled
//! deferral (failed and never retried to success), `missing_calls` baseline calls absent at the end, `repeated_calls` calls beyond the
//! baseline's; all three must be 0.

use super::ChaosError;
use super::experiments;
use super::scenario::{self, Deliveries, Run};
use crate::samples;
use autopilot_functions::Function;
use autopilot_shared::clients::timeouts_for;
use autopilot_shared::effect::THROTTLED;
use autopilot_shared::ledger::audit::{AuditRecord, Outcome};
use autopilot_sim::estate::{Estate, Faults};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The fault profiles, in the order they are run and printed.
pub const PROFILES: [&str; 5] = ["throttle", "5xx-10%", "5xx-30%", "latency", "batch-failures"];
/// Ticks (one per slot) delivered after the scenario at most, for the faulted run to catch up.
pub const EXTRA_TICKS: usize = 12;
/// Ticks delivered after the run converged, to see that it stays converged (no late repeat).
pub const CONFIRM_TICKS: usize = 1;
/// Allowed requests per second and operation under `throttle`: below what one delivery asks of the busiest
/// operations, so throttling happens in every run.
pub const THROTTLE_PER_SECOND: f64 = 1.0;
/// Share of the SDK's per-attempt timeout added as latency under `latency`.
pub const LATENCY_SHARE: f64 = 0.85;
/// Under `latency`, a read is slowed besides the mutating operation only when the undisturbed run calls it at
/// most this often (every slowed call costs the added latency in wall time); a function without a mutating
/// call gets its least-called read slowed.
pub const MAX_SLOWED_READ_CALLS: usize = 2;
/// Attempts of every batch item that fail under `batch-failures` before one succeeds (deterministic: the
/// retry path is taken for every item, and the remediator's escalation after 3 failed attempts is not reached).
pub const BATCH_FAILED_ATTEMPTS: u32 = 2;
/// The batch operations whose items the simulator fails (`FailedRequests`).
pub const BATCH_OPERATIONS: [&str; 3] = ["StartWorkspaces", "StopWorkspaces", "RebootWorkspaces"];
/// The error code of an item the simulator failed on purpose.
const BATCH_ITEM_FAILURE_CODE: &str = "InternalError";

/// One function's scenario under one fault profile.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRun {
    pub function: &'static str,
    pub profile: &'static str,
    /// `false`: the profile does not apply to this function (`batch-failures` without a batch operation).
    pub applicable: bool,
    /// What was injected, in words (`error_rate 0.3 on DescribeFleets, …`).
    pub injected: String,
    /// Extra ticks after the scenario until the calls equalled the baseline's (0: at the scenario's end).
    pub ticks_to_converge: Option<usize>,
    /// The calls equalled the baseline's within [`EXTRA_TICKS`] and still did [`CONFIRM_TICKS`] later.
    pub converged: bool,
    /// Deliveries (first deliveries, ticks and EventBridge's redeliveries) and those of the baseline over the
    /// same slots.
    pub deliveries: usize,
    pub baseline_deliveries: usize,
    /// Requests sent (AWS and ledger, every SDK attempt) and those of the baseline over the same slots.
    pub requests: u64,
    pub baseline_requests: u64,
    /// SDK retries: faulted responses followed by the same request (operation and parameters) at the same
    /// virtual time, i.e. within the same invocation (a faulted response the SDK gave up on failed the call).
    pub retries: usize,
    /// Deliveries beyond the baseline's: EventBridge's retries after a failed invocation.
    pub redeliveries: i64,
    /// Faults that fired: throttled responses, 5xx responses, failed batch items, slowed calls (from the
    /// simulator's call log and, for batch items, the audit records).
    pub throttled: usize,
    pub server_errors: usize,
    pub batch_item_failures: usize,
    pub slowed_calls: usize,
    /// Slowed calls one after another: calls that arrived within the added latency of an earlier one (a
    /// function's concurrent look-ups, e.g. the tags of two builders) count once.
    pub slowed_in_sequence: usize,
    /// Added latency per slowed call, ms (0 unless `latency`).
    pub latency_ms: u64,
    /// Wall time of the faulted run, ms.
    pub wall_ms: u64,
    /// Actions (resource + action) whose last audit record is `Failed` or a throttled deferral: failed and never
    /// retried to success.
    pub failed_actions: usize,
    /// Baseline calls missing at the end (an action lost).
    pub missing_calls: usize,
    /// Calls beyond the baseline's at the end (an action repeated).
    pub repeated_calls: usize,
    /// The most an action came after the baseline's same action, virtual minutes (a retry in a later tick, or
    /// EventBridge's redelivery; 0: every action on time).
    pub action_delay_minutes: i64,
    /// Failed invocations by error class (`Retryable`, …).
    pub errors: BTreeMap<String, usize>,
    /// Deliveries that ended for good (a non-retryable error, or still failing after EventBridge's retries).
    pub delivery_failures: Vec<String>,
    /// Call differences from the baseline at the end (empty when converged).
    pub differences: Vec<String>,
    /// Outcome-event differences at the end (at least once: printed, not a failure).
    pub event_differences: Vec<String>,
}

impl FaultRun {
    /// Whether the fault actually fired (a profile that injected nothing proves nothing).
    pub fn fired(&self) -> bool {
        match self.profile {
            "throttle" => self.throttled > 0,
            _ if server_error_rate(self.profile).is_some() => self.server_errors > 0,
            // The run took at least the added latency of the slowed calls made one after another.
            "latency" => {
                self.slowed_calls > 0
                    && self.wall_ms
                        >= self.latency_ms.saturating_mul(u64::try_from(self.slowed_in_sequence).unwrap_or(0))
            }
            "batch-failures" => self.batch_item_failures > 0,
            _ => false,
        }
    }

    /// Converged, nothing repeated, lost or left failed, no delivery given up on, and the fault fired; `true`
    /// for a profile that does not apply.
    pub fn held(&self) -> bool {
        !self.applicable
            || (self.converged
                && self.repeated_calls == 0
                && self.missing_calls == 0
                && self.failed_actions == 0
                && self.delivery_failures.is_empty()
                && self.fired())
    }

    fn not_applicable(function: Function, profile: &'static str, why: &str) -> FaultRun {
        FaultRun {
            function: function.name(),
            profile,
            applicable: false,
            injected: why.to_owned(),
            ticks_to_converge: None,
            converged: false,
            deliveries: 0,
            baseline_deliveries: 0,
            requests: 0,
            baseline_requests: 0,
            retries: 0,
            redeliveries: 0,
            throttled: 0,
            server_errors: 0,
            batch_item_failures: 0,
            slowed_calls: 0,
            slowed_in_sequence: 0,
            latency_ms: 0,
            wall_ms: 0,
            failed_actions: 0,
            missing_calls: 0,
            repeated_calls: 0,
            action_delay_minutes: 0,
            errors: BTreeMap::new(),
            delivery_failures: Vec::new(),
            differences: Vec::new(),
            event_differences: Vec::new(),
        }
    }
}

/// The latency injected under `latency`: [`LATENCY_SHARE`] of the per-attempt timeout the functions' clients
/// get for the scenario's remaining time.
pub fn latency() -> std::time::Duration {
    let attempt = timeouts_for(scenario::REMAINING).operation_attempt_timeout().unwrap_or(scenario::REMAINING);
    attempt.mul_f64(LATENCY_SHARE)
}

/// The operations (besides EventBridge's) of a run's call log, with how often each was called.
fn operations(run: &Run) -> BTreeMap<String, usize> {
    let mut operations = BTreeMap::new();
    for call in run.local.simulator.calls() {
        if call.service != "eventbridge" {
            *operations.entry(call.operation).or_default() += 1;
        }
    }
    operations
}

/// The faults of `profile` for a function whose undisturbed run called `operations`, with a description;
/// `None` when the profile does not apply. The samples' other faults (export outcomes) are kept.
fn profile_faults(profile: &str, operations: &BTreeMap<String, usize>) -> Result<Option<(Faults, String)>, ChaosError> {
    let mut faults = Estate::from_yaml(samples::ESTATE)?.faults;
    let names = |ops: &mut dyn Iterator<Item = &String>| ops.map(String::as_str).collect::<Vec<_>>().join(", ");
    let described = match profile {
        "throttle" => {
            faults.throttle_per_second = operations.keys().map(|op| (op.clone(), THROTTLE_PER_SECOND)).collect();
            format!("{THROTTLE_PER_SECOND}/s on each of {}", names(&mut operations.keys()))
        }
        _ if let Some(rate) = server_error_rate(profile) => {
            faults.error_rate = operations.keys().map(|op| (op.clone(), rate)).collect();
            format!("500 on {:.0}% of {}", rate * 100.0, names(&mut operations.keys()))
        }
        "latency" => {
            let ms = u64::try_from(latency().as_millis()).unwrap_or(u64::MAX);
            let mutating = operations.keys().find(|op| autopilot_sim::calllog::is_mutating(op));
            let read = operations
                .iter()
                .filter(|(op, count)| {
                    !autopilot_sim::calllog::is_mutating(op) && (mutating.is_none() || **count <= MAX_SLOWED_READ_CALLS)
                })
                .min_by_key(|(_, count)| **count)
                .map(|(op, _)| op);
            let slowed: Vec<&String> = mutating.into_iter().chain(read).collect();
            faults.latency_ms = slowed.iter().map(|op| ((*op).clone(), ms)).collect();
            format!("+{ms} ms on {}", names(&mut slowed.into_iter()))
        }
        "batch-failures" => {
            let batch: Vec<&String> = operations.keys().filter(|op| BATCH_OPERATIONS.contains(&op.as_str())).collect();
            if batch.is_empty() {
                return Ok(None);
            }
            faults.batch_fail_first = batch.iter().map(|op| ((*op).clone(), BATCH_FAILED_ATTEMPTS)).collect();
            format!(
                "the first {BATCH_FAILED_ATTEMPTS} attempts of every item of {} fail",
                names(&mut batch.into_iter())
            )
        }
        other => return Err(ChaosError::NoProfile { profile: other.to_owned() }),
    };
    Ok(Some((faults, described)))
}

/// The share of 5xx answers of a `5xx-<percent>%` profile.
fn server_error_rate(profile: &str) -> Option<f64> {
    let percent: f64 = profile.strip_prefix("5xx-")?.strip_suffix('%')?.parse().ok()?;
    (0.0..=100.0).contains(&percent).then_some(percent / 100.0)
}

/// The run's audit records, oldest first.
async fn audit_records(run: &Run) -> Result<Vec<AuditRecord>, ChaosError> {
    let ledger = run.local.ledger();
    let mut day = run.slot(0).date_naive();
    let mut records = Vec::new();
    while day <= run.local.simulator.now().date_naive() {
        records.extend(ledger.audit_by_day(day).await.map_err(ChaosError::ReadAudit)?);
        day = day.succ_opt().ok_or(ChaosError::NoNextDay(day))?;
    }
    records.sort_by_key(|r| r.at);
    Ok(records)
}

/// The id a call-log resource names for an audit record's resource key (its last `#` part).
fn resource_id(key: &str) -> &str {
    key.rsplit('#').next().unwrap_or(key)
}

/// Items of batch calls the simulator failed on purpose: `(operation, id, virtual time)` of each.
fn failed_batch_items(records: &[AuditRecord]) -> Vec<(String, String, DateTime<Utc>)> {
    let prefix = format!("{BATCH_ITEM_FAILURE_CODE}:");
    records
        .iter()
        .filter(|record| {
            record.outcome == Outcome::Failed
                && BATCH_OPERATIONS.contains(&record.action.as_str())
                && record
                    .details
                    .get("error")
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|e| e.starts_with(&prefix))
        })
        .map(|record| (record.action.clone(), resource_id(&record.resource).to_owned(), record.at))
        .collect()
}

/// Actions (resource + action) whose last audit record says `Failed`, or deferred for throttling (a failure
/// the next delivery is meant to make good).
fn left_failed(records: &[AuditRecord]) -> usize {
    let throttled = |record: &AuditRecord| {
        record.outcome == Outcome::Deferred
            && record.details.get("error").and_then(serde_json::Value::as_str).is_some_and(|e| e.starts_with(THROTTLED))
    };
    let mut last: BTreeMap<(&str, &str), bool> = BTreeMap::new();
    for record in records {
        if matches!(record.outcome, Outcome::Applied | Outcome::Failed) || throttled(record) {
            last.insert((&record.resource, &record.action), record.outcome != Outcome::Applied);
        }
    }
    last.values().filter(|failed| **failed).count()
}

/// Successful mutating calls as `operation resource` → the virtual times they were made, a batch call once per
/// item (an item the simulator failed on purpose left out).
type Calls = BTreeMap<String, Vec<DateTime<Utc>>>;

/// The run's [`Calls`] and how many batch items were failed on purpose. A failed item is matched to its call by
/// operation, id and virtual time (the audit record's time is the invocation's, and the clock stands still
/// within one).
async fn calls(run: &Run) -> Result<(Calls, usize), ChaosError> {
    let mut failed = failed_batch_items(&audit_records(run).await?);
    let mut failed_items = 0;
    let mut calls = Calls::new();
    for call in run.local.simulator.calls() {
        if !(call.ok() && call.is_estate_mutation()) {
            continue;
        }
        let resource = call.resource.clone().unwrap_or_default();
        for id in resource.split(',') {
            let item = (call.operation.clone(), id.to_owned(), call.at);
            if let Some(i) = failed.iter().position(|f| *f == item) {
                failed.swap_remove(i);
                failed_items += 1;
            } else {
                calls.entry(format!("{} {id}", call.operation)).or_default().push(call.at);
            }
        }
    }
    Ok((calls, failed_items))
}

/// How the calls compare with the baseline's.
#[derive(Debug, Default)]
struct Comparison {
    /// `call … : a (baseline b)`, one line per difference.
    lines: Vec<String>,
    repeated: usize,
    missing: usize,
    /// The most the n-th call of a kind came after the baseline's n-th, virtual minutes.
    delay_minutes: i64,
}

fn compare(mine: &Calls, baseline: &Calls) -> Comparison {
    let keys: BTreeSet<&String> = mine.keys().chain(baseline.keys()).collect();
    let mut comparison = Comparison::default();
    let none = Vec::new();
    for key in keys {
        let (a, b) = (mine.get(key).unwrap_or(&none), baseline.get(key).unwrap_or(&none));
        if a.len() != b.len() {
            comparison.lines.push(format!("call {key}: {} (baseline {})", a.len(), b.len()));
        }
        comparison.repeated += a.len().saturating_sub(b.len());
        comparison.missing += b.len().saturating_sub(a.len());
        for (at, base_at) in a.iter().zip(b) {
            comparison.delay_minutes = comparison.delay_minutes.max((*at - *base_at).num_minutes());
        }
    }
    comparison
}

/// Delivers a tick in slot `slot` of `run`; a delivery that ends for good is noted in `failures`.
async fn tick(run: &mut Run, slot: usize, failures: &mut Vec<String>) {
    run.advance_to(run.slot(slot));
    let event = run.tick();
    if let Err(error) = Box::pin(run.deliver(slot, &event)).await {
        failures.push(format!("tick in slot {slot}: {error}"));
    }
}

/// `function`'s scenario under `profile` (one of [`PROFILES`]), then ticks until its calls equal those of the
/// undisturbed run ticked alongside it, at most [`EXTRA_TICKS`]; the figures.
pub async fn faults(function: Function, profile: &'static str) -> Result<FaultRun, ChaosError> {
    let (mut base, _) = Box::pin(experiments::baseline(function)).await?;
    let Some((faults, injected)) = profile_faults(profile, &operations(&base))? else {
        return Ok(FaultRun::not_applicable(function, profile, "n/a: the function calls no batch operation"));
    };
    let yaml = serde_yaml_ng::to_string(&faults).map_err(ChaosError::WriteFaults)?;
    let started = std::time::Instant::now();
    let mut run = Box::pin(Run::start(function, Some(&yaml))).await?;
    let mut delivery_failures = Vec::new();
    if let Err(error) = Box::pin(run.scenario(Deliveries::ONCE)).await {
        delivery_failures.push(format!("scenario: {error}"));
    }
    let first_extra = scenario::sample_events(function)?.len() + scenario::SETTLE_TICKS;
    let mut ticks_to_converge = None;
    let mut converged_for = 0;
    for extra in 0..=EXTRA_TICKS + CONFIRM_TICKS {
        if extra > 0 {
            let slot = first_extra + extra - 1;
            Box::pin(tick(&mut run, slot, &mut delivery_failures)).await;
            let mut base_failures = Vec::new();
            Box::pin(tick(&mut base, slot, &mut base_failures)).await;
            if !base_failures.is_empty() {
                return Err(ChaosError::BaselineFailed { function: function.name(), failures: base_failures });
            }
        }
        let (mine, _) = Box::pin(calls(&run)).await?;
        let (theirs, _) = Box::pin(calls(&base)).await?;
        if compare(&mine, &theirs).lines.is_empty() {
            ticks_to_converge.get_or_insert(extra);
            converged_for += 1;
            if converged_for > CONFIRM_TICKS {
                break;
            }
        } else {
            ticks_to_converge = None;
            converged_for = 0;
            if extra >= EXTRA_TICKS {
                break;
            }
        }
    }
    let wall_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (mine, batch_item_failures) = Box::pin(calls(&run)).await?;
    let (theirs, _) = Box::pin(calls(&base)).await?;
    let comparison = compare(&mine, &theirs);
    let event_differences = Box::pin(run.effects())
        .await?
        .differences(&Box::pin(base.effects()).await?)
        .into_iter()
        .filter(|d| d.starts_with("event "))
        .collect();
    let failed_actions = left_failed(&Box::pin(audit_records(&run)).await?);
    let log = run.local.simulator.calls();
    let throttled = log
        .iter()
        .filter(|c| c.outcome == "ThrottlingException" || c.outcome == "RequestLimitExceededException")
        .count();
    let server_errors = log.iter().filter(|c| c.status >= 500).count();
    let retries = log
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            !c.ok()
                && log[i + 1..]
                    .iter()
                    .any(|later| later.at == c.at && later.operation == c.operation && later.parameters == c.parameters)
        })
        .count();
    let latency_ms = faults.latency_ms.values().copied().max().unwrap_or(0);
    let mut slowed_at: Vec<u64> =
        log.iter().filter(|c| faults.latency_ms.contains_key(&c.operation)).map(|c| c.wall_ms).collect();
    slowed_at.sort_unstable();
    let slowed_calls = slowed_at.len();
    let mut last_wave: Option<u64> = None;
    let mut slowed_in_sequence = 0;
    for at in slowed_at {
        if last_wave.is_none_or(|wave| at >= wave.saturating_add(latency_ms)) {
            slowed_in_sequence += 1;
            last_wave = Some(at);
        }
    }
    let (requests, baseline_requests) = (run.gate.requests(), base.gate.requests());
    let (deliveries, baseline_deliveries) = (run.deliveries, base.deliveries);
    let signed = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let redeliveries = signed(deliveries) - signed(baseline_deliveries);
    Ok(FaultRun {
        function: function.name(),
        profile,
        applicable: true,
        injected,
        converged: ticks_to_converge.is_some() && converged_for > CONFIRM_TICKS,
        ticks_to_converge,
        deliveries,
        baseline_deliveries,
        requests,
        baseline_requests,
        retries,
        redeliveries,
        throttled,
        server_errors,
        batch_item_failures,
        slowed_calls,
        slowed_in_sequence,
        latency_ms,
        wall_ms,
        failed_actions,
        missing_calls: comparison.missing,
        repeated_calls: comparison.repeated,
        action_delay_minutes: comparison.delay_minutes,
        errors: run.errors.clone(),
        delivery_failures,
        differences: comparison.lines,
        event_differences,
    })
}

/// Every function under every profile of `profiles`, all at once (most of a faulted run is waiting: back-off,
/// added latency), in the order of [`Function::ALL`] within each profile.
pub async fn all(profiles: &[&'static str]) -> Result<Vec<FaultRun>, ChaosError> {
    let runs = profiles.iter().flat_map(|profile| Function::ALL.map(|function| Box::pin(faults(function, profile))));
    futures::future::join_all(runs).await.into_iter().collect()
}

/// Markdown rows (`| experiment | function | runs / deliveries | result | figures |`) for `chaos::run`.
pub fn table_rows(results: &[FaultRun]) -> String {
    let mut rows = String::new();
    for r in results {
        if !r.applicable {
            rows.push_str(&format!("| faults: {} | {} | – | n/a | {} |\n", r.profile, r.function, r.injected));
            continue;
        }
        let fired = match r.profile {
            "throttle" => format!("throttled {}", r.throttled),
            "latency" => format!("slowed calls {} (+{} ms each)", r.slowed_calls, r.latency_ms),
            "batch-failures" => format!("failed items {}", r.batch_item_failures),
            _ => format!("5xx {}", r.server_errors),
        };
        rows.push_str(&format!(
            "| faults: {} ({}) | {} | 1 run, {} deliveries (baseline {}) | {} | {}, ticks to converge {}, actions late by {} min, requests {} (baseline {}), SDK retries {}, redeliveries {}, failed actions {}, missing calls {}, repeated calls {}, errors {}, {:.1} s{} |\n",
            r.profile,
            r.injected,
            r.function,
            r.deliveries,
            r.baseline_deliveries,
            if r.held() { "held" } else { "FAILED" },
            fired,
            r.ticks_to_converge.map_or_else(|| format!("> {EXTRA_TICKS}"), |t| t.to_string()),
            r.action_delay_minutes,
            r.requests,
            r.baseline_requests,
            r.retries,
            r.redeliveries,
            r.failed_actions,
            r.missing_calls,
            r.repeated_calls,
            if r.errors.is_empty() {
                "none".to_owned()
            } else {
                r.errors.iter().map(|(class, n)| format!("{class} {n}")).collect::<Vec<_>>().join(" ")
            },
            r.wall_ms as f64 / 1000.0,
            if r.held() {
                String::new()
            } else {
                format!("; {}", r.differences.iter().chain(&r.delivery_failures).cloned().collect::<Vec<_>>().join("; "))
            },
        ));
    }
    rows
}

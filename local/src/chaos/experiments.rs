//! The experiments, each on one function's sample scenario ([`Run::scenario`]) and each returning its figures.

use super::scenario::{Effects, Run};
use crate::functions::Function;
use serde::Serialize;

/// Duplicate delivery: every sample (and every settling tick) delivered `copies` times.
#[derive(Debug, Clone, Serialize)]
pub struct Duplicates {
    pub function: &'static str,
    pub copies: usize,
    pub concurrent: bool,
    pub deliveries: usize,
    /// Invocations that failed (by error class; EventBridge retries the `Retryable` ones).
    pub errors: std::collections::BTreeMap<String, usize>,
    /// Successful mutating calls: baseline (one delivery each) and under duplicates.
    pub baseline_mutations: usize,
    pub mutations: usize,
    pub baseline_audit_records: usize,
    pub audit_records: usize,
    /// Differences in calls or outcome events from the baseline (empty: exactly once).
    pub differences: Vec<String>,
}

/// The undisturbed run of `function`'s scenario.
pub async fn baseline(function: Function) -> Result<(Run, Effects), String> {
    let mut run = Run::start(function, None).await?;
    run.scenario(1, false).await?;
    let effects = run.effects().await?;
    Ok((run, effects))
}

pub async fn duplicates(function: Function, copies: usize, concurrent: bool) -> Result<Duplicates, String> {
    let (_, base) = baseline(function).await?;
    let mut run = Run::start(function, None).await?;
    run.scenario(copies, concurrent).await?;
    let effects = run.effects().await?;
    Ok(Duplicates {
        function: function.name(),
        copies,
        concurrent,
        deliveries: run.deliveries,
        errors: run.errors.clone(),
        baseline_mutations: base.mutation_count(),
        mutations: effects.mutation_count(),
        baseline_audit_records: base.audit_records,
        audit_records: effects.audit_records,
        differences: effects.differences(&base),
    })
}

/// Crashes: the scenario crashed once right after its k-th request, for every k the baseline makes.
#[derive(Debug, Clone, Serialize)]
pub struct Crashes {
    pub function: &'static str,
    /// Requests (AWS and ledger) of the undisturbed scenario: the crash points tried.
    pub crash_points: u64,
    /// Runs whose AWS calls equal the baseline's.
    pub converged: u64,
    pub baseline_mutations: usize,
    /// Idempotency records left INPROGRESS past their expiry at the end, over all runs.
    pub stale_claims: usize,
    /// Deliveries made in all runs (retries after the crash included).
    pub deliveries: usize,
    /// `k: difference` for every run whose AWS calls differ from the baseline's (a repeated or lost action).
    pub failures: Vec<String>,
    /// `k: difference` for every run whose outcome events differ: an announcement repeated or lost when the crash
    /// fell between `PutEvents` and its record (EventBridge has no idempotency token: outcome events are at least
    /// once, and a best-effort announcement after the action can be lost).
    pub event_differences: Vec<String>,
}

pub async fn crashes(function: Function, every: u64) -> Result<Crashes, String> {
    let (base_run, base) = baseline(function).await?;
    let points = base_run.gate.requests();
    let mut result = Crashes {
        function: function.name(),
        crash_points: 0,
        converged: 0,
        baseline_mutations: base.mutation_count(),
        stale_claims: 0,
        deliveries: 0,
        failures: Vec::new(),
        event_differences: Vec::new(),
    };
    let mut k = 1;
    while k <= points {
        let mut run = Run::start(function, None).await?;
        run.gate.crash_after(Some(k));
        let outcome = run.scenario(1, false).await;
        let effects = run.effects().await?;
        let differences = effects.differences(&base);
        result.crash_points += 1;
        result.deliveries += run.deliveries;
        result.stale_claims += run.stale_claims().await?;
        let (calls, events): (Vec<String>, Vec<String>) = differences.into_iter().partition(|d| d.starts_with("call "));
        match outcome {
            Err(error) => result.failures.push(format!("crash after request {k}: {error}")),
            Ok(()) if calls.is_empty() => result.converged += 1,
            Ok(()) => result.failures.push(format!("crash after request {k}: {}", calls.join("; "))),
        }
        if !events.is_empty() {
            result.event_differences.push(format!("crash after request {k}: {}", events.join("; ")));
        }
        k += every.max(1);
    }
    Ok(result)
}

/// Ledger outage: the embedded DynamoDB is stopped before slot `i` of the scenario (every `every`-th slot), one
/// delivery is made while it is down, then it is started again and the scenario goes on with EventBridge's
/// retries.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerOutage {
    pub function: &'static str,
    /// Runs (one outage each).
    pub outages: usize,
    /// Deliveries made while the ledger was down, and how they ended.
    pub deliveries_during_outage: usize,
    pub retryable_errors: usize,
    /// Errors of another class, or a success, while the ledger was down (want 0).
    pub other_outcomes: Vec<String>,
    /// Mutating AWS calls made while the ledger was down: each would have had no idempotency record (want 0).
    pub calls_without_ledger: usize,
    /// Runs whose AWS calls after recovery equal the baseline's.
    pub converged: usize,
    pub failures: Vec<String>,
}

pub async fn ledger_outage(function: Function, every: usize) -> Result<LedgerOutage, String> {
    let (_, base) = baseline(function).await?;
    let slots = super::scenario::sample_events(function)?.len() + super::scenario::SETTLE_TICKS;
    let mut result = LedgerOutage {
        function: function.name(),
        outages: 0,
        deliveries_during_outage: 0,
        retryable_errors: 0,
        other_outcomes: Vec::new(),
        calls_without_ledger: 0,
        converged: 0,
        failures: Vec::new(),
    };
    for slot in (0..slots).step_by(every.max(1)) {
        let mut run = Run::start(function, None).await?;
        run.outage_at = Some(slot);
        let outcome = run.scenario(1, false).await;
        result.outages += 1;
        let seen = run.outage.take().unwrap_or_default();
        result.deliveries_during_outage += 1;
        if seen.outcome == "Retryable" {
            result.retryable_errors += 1;
        } else {
            result.other_outcomes.push(format!("slot {slot}: {}", seen.outcome));
        }
        result.calls_without_ledger += seen.calls_during;
        let differences: Vec<String> =
            run.effects().await?.differences(&base).into_iter().filter(|d| d.starts_with("call ")).collect();
        match outcome {
            Err(error) => result.failures.push(format!("outage before slot {slot}: {error}")),
            Ok(()) if differences.is_empty() => result.converged += 1,
            Ok(()) => result.failures.push(format!("outage before slot {slot}: {}", differences.join("; "))),
        }
    }
    Ok(result)
}

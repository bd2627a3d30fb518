//! The experiments, each on one function's sample scenario ([`Run::scenario`]) and each returning its figures.

use super::ChaosError;
use super::scenario::{Arrival, Deliveries, Effects, Run};
use autopilot_functions::Function;
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
pub async fn baseline(function: Function) -> Result<(Run, Effects), ChaosError> {
    let mut run = Run::start(function, None).await?;
    run.scenario(Deliveries::ONCE).await?;
    let effects = run.effects().await?;
    Ok((run, effects))
}

pub async fn duplicates(function: Function, deliveries: Deliveries) -> Result<Duplicates, ChaosError> {
    let (_, base) = baseline(function).await?;
    let mut run = Run::start(function, None).await?;
    run.scenario(deliveries).await?;
    let effects = run.effects().await?;
    Ok(Duplicates {
        function: function.name(),
        copies: deliveries.copies,
        concurrent: deliveries.arrival == Arrival::Together,
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

pub async fn crashes(function: Function, every: u64) -> Result<Crashes, ChaosError> {
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
        let outcome = run.scenario(Deliveries::ONCE).await;
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

pub async fn ledger_outage(function: Function, every: usize) -> Result<LedgerOutage, ChaosError> {
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
        let outcome = run.scenario(Deliveries::ONCE).await;
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

/// Ledger stopped mid-invocation: right after the scenario's k-th request was served (every `every`-th k of the
/// baseline), the embedded DynamoDB stops for the rest of that delivery and starts again after it.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerOutageMid {
    pub function: &'static str,
    pub outages: usize,
    /// How the interrupted deliveries ended: `Retryable` wanted (or `ok` when nothing was left to write).
    pub outcomes: std::collections::BTreeMap<String, usize>,
    /// Mutating AWS calls made while the ledger was down: only calls whose claim was written before it stopped.
    pub calls_while_down: usize,
    /// Runs whose AWS calls after recovery equal the baseline's.
    pub converged: usize,
    pub stale_claims: usize,
    pub failures: Vec<String>,
}

pub async fn ledger_outage_mid(function: Function, every: u64) -> Result<LedgerOutageMid, ChaosError> {
    let (base_run, base) = baseline(function).await?;
    let points = base_run.gate.requests();
    let mut result = LedgerOutageMid {
        function: function.name(),
        outages: 0,
        outcomes: std::collections::BTreeMap::new(),
        calls_while_down: 0,
        converged: 0,
        stale_claims: 0,
        failures: Vec::new(),
    };
    let mut k = 1;
    while k <= points {
        let mut run = Run::start(function, None).await?;
        run.outage_after_request = Some(k);
        let outcome = run.scenario(Deliveries::ONCE).await;
        k += every.max(1);
        let Some(seen) = run.outage.take() else { continue };
        result.outages += 1;
        *result.outcomes.entry(seen.outcome.clone()).or_default() += 1;
        result.calls_while_down += seen.calls_during;
        result.stale_claims += run.stale_claims().await?;
        let calls: Vec<String> =
            run.effects().await?.differences(&base).into_iter().filter(|d| d.starts_with("call ")).collect();
        match outcome {
            Err(error) => result.failures.push(format!("outage after request {k}: {error}")),
            Ok(()) if calls.is_empty() => result.converged += 1,
            Ok(()) => result.failures.push(format!("outage after request {k}: {}", calls.join("; "))),
        }
        if !matches!(seen.outcome.as_str(), "Retryable" | "ok") {
            result.failures.push(format!("outage after request {k}: the delivery ended {}", seen.outcome));
        }
    }
    Ok(result)
}

/// When the second invocation (B) of [`overlap`] comes while the first (A) is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BArrives {
    /// One second later, while A holds the lease: B must yield.
    WhileLeaseHeld,
    /// After A's lease has run out (A was paused past it): B takes the lease over, and A, let go, must not act.
    AfterLeaseExpired,
}

/// Overlap: invocation A is paused right after its k-th request (every `every`-th k of its delivery) while
/// invocation B of the same function runs a tick of its own. A is the scenario's busiest schedule tick (the tick
/// whose delivery makes the most AWS mutations in the baseline) and B comes one second later, while A holds the
/// lease ([`BArrives::WhileLeaseHeld`]); or A is the busiest delivery of any kind (a tick on a tie) and B comes
/// after A's lease has run out ([`BArrives::AfterLeaseExpired`]: `past_lease`).
#[derive(Debug, Clone, Serialize)]
pub struct Overlap {
    pub function: &'static str,
    pub past_lease: bool,
    /// The delivery overlapped (its slot and name) and the mutations it makes in the baseline.
    pub slot: usize,
    pub event: String,
    pub slot_mutations: usize,
    /// Pause points tried.
    pub runs: usize,
    /// Runs where B yielded (A held the lease) and where B acted (A had not taken it yet, or had lost it).
    pub b_yielded: usize,
    pub b_acted: usize,
    /// How A ended after it was let go, by outcome (`ok`, `Retryable`, …).
    pub a_outcomes: std::collections::BTreeMap<String, usize>,
    /// Past the lease: mutating AWS calls A made after it was let go (want 0) and versioned ledger items it
    /// changed (want 0: every such write is fenced).
    pub calls_after_lease: usize,
    pub writes_after_lease: usize,
    /// Runs whose AWS calls (after EventBridge's retry of A, and the rest of the scenario) equal the baseline's.
    pub converged: usize,
    pub failures: Vec<String>,
}

/// Which deliveries [`busiest_slot`] chooses among.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Among {
    Ticks,
    Everything,
}

/// The slot of `function`'s scenario whose delivery (among `among`) makes the most AWS mutations (a schedule
/// tick on a tie), and how many.
async fn busiest_slot(function: Function, among: Among) -> Result<(usize, usize), ChaosError> {
    let mut run = Run::start(function, None).await?;
    let slots = run.slots()?;
    let made = run.deliver_slots(0..slots).await?;
    let mut busiest: Option<(usize, (usize, bool))> = None;
    for (j, mutations) in made.into_iter().enumerate() {
        let (_, event) = run.slot_event(j)?;
        let is_tick = event.get("detail-type").and_then(serde_json::Value::as_str) == Some("Scheduled Event");
        if (is_tick || among == Among::Everything) && busiest.is_none_or(|(_, most)| (mutations, is_tick) > most) {
            busiest = Some((j, (mutations, is_tick)));
        }
    }
    busiest.map(|(j, (mutations, _))| (j, mutations)).ok_or(ChaosError::NoTick { function: function.name() })
}

pub async fn overlap(function: Function, b_arrives: BArrives, every: u64) -> Result<Overlap, ChaosError> {
    let past_lease = b_arrives == BArrives::AfterLeaseExpired;
    let among = if past_lease { Among::Everything } else { Among::Ticks };
    let (_, base) = baseline(function).await?;
    let (slot, slot_mutations) = busiest_slot(function, among).await?;
    let mut result = Overlap {
        function: function.name(),
        past_lease,
        slot,
        event: String::new(),
        slot_mutations,
        runs: 0,
        b_yielded: 0,
        b_acted: 0,
        a_outcomes: std::collections::BTreeMap::new(),
        calls_after_lease: 0,
        writes_after_lease: 0,
        converged: 0,
        failures: Vec::new(),
    };
    let remaining = super::scenario::REMAINING;
    let mut k = 1;
    loop {
        let mut run = Run::start(function, None).await?;
        let slots = run.slots()?;
        run.deliver_slots(0..slot).await?;
        run.advance_to(run.slot(slot));
        let (name, tick_a) = run.slot_event(slot)?;
        result.event = name;
        run.gate.hold_after(Some(k));
        let (a_outcome, b_status, calls_after, writes_after) = {
            let mut a = std::pin::pin!(run.function.invoke(&run.deps, tick_a.clone(), remaining));
            let paused = tokio::select! {
                biased;
                _ = &mut a => false,
                () = run.gate.holding() => true,
            };
            if !paused {
                break; // A ended before its k-th request: every pause point was tried
            }
            let later = if past_lease {
                chrono::Duration::from_std(remaining).unwrap_or_default() + chrono::Duration::seconds(1)
            } else {
                chrono::Duration::seconds(1)
            };
            run.advance_to(run.local.simulator.now() + later);
            let tick_b = run.tick();
            let b = run.function.invoke(&run.deps, tick_b, remaining).await;
            let b_status = match &b {
                Ok(report) => report.get("status").and_then(serde_json::Value::as_str).unwrap_or("?").to_owned(),
                Err(error) => error.class.as_str().to_owned(),
            };
            let (calls_before, versions_before) = (run.mutating_calls(), run.versions().await?);
            run.gate.release();
            let a_result = a.await;
            let versions_after = run.versions().await?;
            let writes = versions_after.iter().filter(|(key, v)| versions_before.get(*key) != Some(*v)).count();
            let a_outcome = match &a_result {
                Ok(_) => "ok".to_owned(),
                Err(error) if error.class == autopilot_shared::error::ErrorClass::Retryable => "Retryable".to_owned(),
                Err(error) => error.to_string(),
            };
            (a_outcome, b_status, run.mutating_calls() - calls_before, writes)
        };
        result.runs += 1;
        match b_status.as_str() {
            "busy" => result.b_yielded += 1,
            status if status.starts_with(|c: char| c.is_lowercase()) => result.b_acted += 1,
            failed => result.failures.push(format!("pause after request {k}: B failed {failed}")),
        }
        if past_lease {
            result.calls_after_lease += calls_after;
            result.writes_after_lease += writes_after;
            if calls_after + writes_after > 0 {
                result.failures.push(format!(
                    "pause after request {k}: A acted after its lease ran out ({calls_after} calls, {writes_after} writes)"
                ));
            }
        }
        if !matches!(a_outcome.as_str(), "ok" | "Retryable") {
            result.failures.push(format!("pause after request {k}: A ended {a_outcome}"));
        }
        let a_failed = a_outcome != "ok";
        *result.a_outcomes.entry(a_outcome.split(':').next().unwrap_or_default().to_owned()).or_default() += 1;
        // EventBridge retries A's tick when it failed; then the rest of the scenario.
        let retried =
            if a_failed { run.deliver(slot, &tick_a).await.map(drop).map_err(ChaosError::from) } else { Ok(()) };
        let finished = match retried {
            Ok(()) => run.deliver_slots(slot + 1..slots).await.map(drop),
            Err(error) => Err(error),
        };
        let calls: Vec<String> =
            run.effects().await?.differences(&base).into_iter().filter(|d| d.starts_with("call ")).collect();
        match finished {
            Err(error) => result.failures.push(format!("pause after request {k}: {error}")),
            Ok(()) if calls.is_empty() => result.converged += 1,
            Ok(()) => result.failures.push(format!("pause after request {k}: {}", calls.join("; "))),
        }
        k += every.max(1);
    }
    Ok(result)
}

/// A per-item failure of a batch call healed by a duplicate delivery: the first attempt of every
/// `RebootWorkspaces` / `RebuildWorkspaces` item fails, and every event of the scenario is delivered twice, one
/// after the other (at the same virtual instant). The audit must keep the `failed` record and the `applied`
/// record the retry earned, and hold exactly one `applied` record per item the call log shows changed.
#[derive(Debug, Clone, Serialize)]
pub struct ItemFailureHealed {
    pub function: &'static str,
    /// Items a batch call reported failed.
    pub failed_items: usize,
    /// Items with both a `failed` and a later `applied` audit record.
    pub healed: usize,
    /// `operation id: calls n, applied records m` wherever the call log and the audit disagree (empty: one to one).
    pub mismatches: Vec<String>,
}

pub async fn item_failure_healed(function: Function) -> Result<ItemFailureHealed, ChaosError> {
    const BATCH: [&str; 2] = ["RebootWorkspaces", "RebuildWorkspaces"];
    let faults = BATCH.iter().map(|op| format!("{op}: 1")).collect::<Vec<_>>().join(", ");
    let mut run = Run::start(function, Some(&format!("batch_fail_first: {{{faults}}}"))).await?;
    run.scenario(Deliveries { copies: 2, arrival: Arrival::OneByOne }).await?;
    let mut changed: std::collections::BTreeMap<(String, String), (usize, usize)> = Default::default();
    let mut failed_items = 0;
    for call in run.local.simulator.calls().iter().filter(|c| BATCH.contains(&c.operation.as_str())) {
        failed_items += call.failed_items.len();
        for id in call.succeeded_items() {
            changed.entry((call.operation.clone(), id.to_owned())).or_default().0 += 1;
        }
    }
    let mut stages: std::collections::BTreeMap<(String, String), Vec<String>> = Default::default();
    for record in run.audit_records().await? {
        let field = |name: &str| record.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let (action, outcome) = (field("action"), field("outcome"));
        if !BATCH.contains(&action.as_str()) {
            continue;
        }
        let id = field("resource").rsplit('#').next().unwrap_or_default().to_owned();
        if outcome == "applied" {
            changed.entry((action.clone(), id.clone())).or_default().1 += 1;
        }
        stages.entry((action, id)).or_default().push(outcome);
    }
    let healed = stages
        .values()
        .filter(|s| s.iter().position(|o| o == "failed") < s.iter().position(|o| o == "applied"))
        .filter(|s| s.contains(&"failed".to_owned()))
        .count();
    let mismatches = changed
        .iter()
        .filter(|(_, (calls, records))| calls != records)
        .map(|((op, id), (calls, records))| format!("{op} {id}: calls {calls}, applied records {records}"))
        .collect();
    Ok(ItemFailureHealed { function: function.name(), failed_items, healed, mismatches })
}

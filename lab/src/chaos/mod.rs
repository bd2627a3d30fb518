//! Reliability experiments (`autopilot chaos`, `tests/tests/reliability.rs`, `tests/tests/faults.rs`): the
//! functions' sample scenarios under duplicate delivery, crashes at every request, a ledger outage (between and
//! during invocations), overlapping invocations and a holder paused past its lease, throttling / 5xx / latency /
//! per-item batch failures, and malformed input, each compared with an undisturbed baseline.

pub mod bad_input;
mod error;
pub mod experiments;
pub mod faults;
pub mod gate;
pub mod scenario;

pub use error::{ChaosError, ScanError};

use autopilot_functions::Function;
use experiments::BArrives;
use scenario::{Arrival, Deliveries};

/// What `autopilot chaos` runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Crash after every `crash_every`-th request of each baseline (1: every request).
    pub crash_every: u64,
    /// Generated bad-input cases (property run over every event and policy parser).
    pub cases: u32,
    pub seed: u64,
}

/// Runs every experiment and renders the results table; `Ok((table, held))`, `held` false when any
/// experiment found a lost or repeated effect, a panic or a misclassified error.
pub async fn run(options: &Options) -> Result<(String, bool), ChaosError> {
    let mut held = true;
    let mut table =
        String::from("| experiment | function | runs / deliveries | result | figures |\n|---|---|---|---|---|\n");
    for function in Function::ALL {
        for copies in [2, 3, 10] {
            for arrival in [Arrival::OneByOne, Arrival::Together] {
                let d = experiments::duplicates(function, Deliveries { copies, arrival }).await?;
                let ok = d.differences.is_empty() && d.audit_records == d.baseline_audit_records;
                held &= ok;
                table.push_str(&format!(
                    "| duplicates ×{copies} {} | {} | {} deliveries | {} | calls {} (baseline {}), audit records {} (baseline {}){} |\n",
                    if d.concurrent { "concurrent" } else { "sequential" },
                    d.function,
                    d.deliveries,
                    if ok { "held" } else { "FAILED" },
                    d.mutations,
                    d.baseline_mutations,
                    d.audit_records,
                    d.baseline_audit_records,
                    if ok { String::new() } else { format!("; {}", d.differences.join("; ")) },
                ));
            }
        }
    }
    let h = experiments::item_failure_healed(Function::Remediator).await?;
    let ok = h.healed > 0 && h.mismatches.is_empty();
    held &= ok;
    table.push_str(&format!(
        "| duplicates ×2 after a failed batch item | {} | 1 run | {} | failed items {}, failed then applied {}, applied records = changed items{} |\n",
        h.function,
        if ok { "held" } else { "FAILED" },
        h.failed_items,
        h.healed,
        if h.mismatches.is_empty() { String::new() } else { format!(" except {}", h.mismatches.join("; ")) },
    ));
    for function in Function::ALL {
        let c = experiments::crashes(function, options.crash_every).await?;
        let ok = c.failures.is_empty() && c.stale_claims == 0;
        held &= ok;
        table.push_str(&format!(
            "| crash after request k | {} | {} runs, {} deliveries | {} | no repeated or lost call in {}/{}, outcome events differed in {}, stale claims {}{} |\n",
            c.function,
            c.crash_points,
            c.deliveries,
            if ok { "held" } else { "FAILED" },
            c.converged,
            c.crash_points,
            c.event_differences.len(),
            c.stale_claims,
            if ok { String::new() } else { format!("; {}", c.failures.join("; ")) },
        ));
    }
    for function in Function::ALL {
        let o = experiments::ledger_outage(function, 1).await?;
        let ok = o.calls_without_ledger == 0
            && o.other_outcomes.is_empty()
            && o.failures.is_empty()
            && o.retryable_errors == o.outages;
        held &= ok;
        table.push_str(&format!(
            "| ledger stopped before slot i, every i | {} | {} runs | {} | retryable {}/{}, AWS mutations while down {}, converged {}/{}{} |\n",
            o.function,
            o.outages,
            if ok { "held" } else { "FAILED" },
            o.retryable_errors,
            o.outages,
            o.calls_without_ledger,
            o.converged,
            o.outages,
            if ok { String::new() } else { format!("; {} {}", o.other_outcomes.join("; "), o.failures.join("; ")) },
        ));
    }
    for function in Function::ALL {
        let o = experiments::ledger_outage_mid(function, 3).await?;
        let ok = o.failures.is_empty() && o.stale_claims == 0;
        held &= ok;
        table.push_str(&format!(
            "| ledger stopped mid-invocation, after every 3rd request | {} | {} runs | {} | ended {:?}, AWS mutations while down {} (each claimed before), converged {}/{}, stale claims {}{} |\n",
            o.function,
            o.outages,
            if ok { "held" } else { "FAILED" },
            o.outcomes,
            o.calls_while_down,
            o.converged,
            o.outages,
            o.stale_claims,
            if ok { String::new() } else { format!("; {}", o.failures.join("; ")) },
        ));
    }
    for function in Function::ALL {
        for b_arrives in [BArrives::WhileLeaseHeld, BArrives::AfterLeaseExpired] {
            let o = experiments::overlap(function, b_arrives, 1).await?;
            let ok = o.failures.is_empty();
            held &= ok;
            let what = if o.past_lease {
                format!("A paused past its lease at every request of {}, B takes over", o.event)
            } else {
                format!("overlapping ticks: A paused at every request of {}, B 1 s later", o.event)
            };
            table.push_str(&format!(
                "| {what} | {} | {} runs | {} | B yielded {}, acted {}; A ended {:?}; A's calls / fenced writes after its lease {} / {}; converged {}/{}{} |\n",
                o.function,
                o.runs,
                if ok { "held" } else { "FAILED" },
                o.b_yielded,
                o.b_acted,
                o.a_outcomes,
                o.calls_after_lease,
                o.writes_after_lease,
                o.converged,
                o.runs,
                if ok { String::new() } else { format!("; {}", o.failures.join("; ")) },
            ));
        }
    }
    let fault_runs = faults::all(&faults::PROFILES).await?;
    held &= fault_runs.iter().all(faults::FaultRun::held);
    table.push_str(&faults::table_rows(&fault_runs));
    let root = bad_input::workspace_root();
    let mut figures = bad_input::run_corpus(&root)?;
    figures.absorb(bad_input::run_properties(options.cases, options.seed));
    figures.absorb(bad_input::run_handlers(&root, options.cases / 7, options.seed).await?);
    held &= figures.is_clean();
    table.push_str(&format!(
        "| bad input (corpus + {} generated) | all parsers | {} cases | {} | rejected as InvalidInput {}, accepted {}, panics {}, misclassified {}, {:.1} s |\n",
        options.cases,
        figures.corpus_files as u64 + figures.generated_cases + figures.policy_cases + figures.handler_cases,
        if figures.is_clean() { "held" } else { "FAILED" },
        figures.rejected_invalid_input,
        figures.accepted,
        figures.panics,
        figures.misclassified,
        figures.elapsed.as_secs_f64(),
    ));
    Ok((table, held))
}

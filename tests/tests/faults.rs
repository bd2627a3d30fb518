//! Faults: every function's sample scenario under throttling, 5xx at 10% and 30%,
//! latency near the SDK's per-attempt timeout and per-item batch failures, the faults on for the whole run
//! (`autopilot_lab::chaos::faults`). Every run converges to the undisturbed run's calls within
//! `EXTRA_TICKS` ticks, nothing repeated, lost or left failed, and every fault fired. The figures are printed
//! (`cargo test -p autopilot-tests --test e2e faults:: -- --nocapture`).
//!
//! The 25 runs go at once: most of a faulted run is waiting (SDK back-off, added latency), so the test takes
//! about as long as its slowest run (the pool-scaler's three slowed calls one after another, 3 × 16.4 s).

use autopilot_functions::Function;
use autopilot_lab::chaos::faults::{self, EXTRA_TICKS, PROFILES};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn every_function_converges_under_throttling_5xx_latency_and_batch_failures() {
    let started = std::time::Instant::now();
    let results = runtime().block_on(faults::all(&PROFILES)).unwrap();
    eprintln!("| experiment | function | runs / deliveries | result | figures |\n|---|---|---|---|---|");
    eprint!("{}", faults::table_rows(&results));
    eprintln!("all runs: {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(results.len(), PROFILES.len() * Function::ALL.len());

    let mut failures = Vec::new();
    for r in &results {
        eprintln!("{r:?}");
        if !r.applicable {
            // Only the remediator calls a batch operation (RebootWorkspaces).
            assert_eq!(r.profile, "batch-failures", "{r:?}");
            assert_ne!(r.function, Function::Remediator.name(), "{r:?}");
            continue;
        }
        let mut wrong = Vec::new();
        if !r.converged {
            wrong.push(format!("not converged within {EXTRA_TICKS} ticks: {}", r.differences.join("; ")));
        }
        if r.ticks_to_converge.is_none_or(|t| t > EXTRA_TICKS) {
            wrong.push(format!("ticks to converge {:?}", r.ticks_to_converge));
        }
        if r.repeated_calls != 0 {
            wrong.push(format!("repeated calls {}", r.repeated_calls));
        }
        if r.missing_calls != 0 {
            wrong.push(format!("missing calls {}", r.missing_calls));
        }
        if r.failed_actions != 0 {
            wrong.push(format!("failed actions {}", r.failed_actions));
        }
        if !r.delivery_failures.is_empty() {
            wrong.push(format!("deliveries given up on: {}", r.delivery_failures.join("; ")));
        }
        if !r.fired() {
            wrong.push(format!(
                "the fault did not fire (throttled {}, 5xx {}, failed items {}, slowed calls {} ({} in sequence) in {} ms)",
                r.throttled, r.server_errors, r.batch_item_failures, r.slowed_calls, r.slowed_in_sequence, r.wall_ms
            ));
        }
        assert_eq!(r.held(), wrong.is_empty(), "{r:?}");
        if !wrong.is_empty() {
            failures.push(format!("{} under {}: {}", r.function, r.profile, wrong.join(", ")));
        }
    }
    let remediator = results.iter().find(|r| r.profile == "batch-failures" && r.applicable);
    assert!(
        remediator.is_some_and(|r| r.function == Function::Remediator.name()),
        "batch failures reach the remediator"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

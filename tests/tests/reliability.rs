//! Reliability under at-least-once delivery (issue 10): the experiments of `autopilot_local::chaos` at CI size,
//! with their figures printed (`cargo test -p autopilot-tests --test reliability -- --nocapture`); `autopilot
//! chaos` runs the same experiments at full size and prints a table.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use autopilot_local::chaos::experiments;
use autopilot_local::functions::Function;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn duplicate_deliveries_make_one_side_effect_per_business_event() {
    let runtime = runtime();
    let mut failures = Vec::new();
    for function in Function::ALL {
        for copies in [2, 3, 10] {
            for concurrent in [false, true] {
                let figures = runtime.block_on(experiments::duplicates(function, copies, concurrent)).unwrap();
                eprintln!("{figures:?}");
                if !figures.differences.is_empty() || figures.audit_records != figures.baseline_audit_records {
                    failures.push(format!("{figures:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Crash after every request of the undisturbed scenario (k = 1..n), then EventBridge's retry: the run must end
/// with the baseline's AWS calls — none repeated, none lost — for every function. Outcome events may differ
/// after a crash between `PutEvents` and its record (at least once; printed, and in README "Reliability").
#[test]
fn a_crash_after_any_request_converges_without_a_repeated_side_effect() {
    let runtime = runtime();
    let mut failures = Vec::new();
    for function in Function::ALL {
        let figures = runtime.block_on(experiments::crashes(function, 1)).unwrap();
        eprintln!("{figures:?}");
        assert!(figures.crash_points > 10, "{}: the scenario makes requests to crash after", function.name());
        if !figures.failures.is_empty() {
            failures.push(format!("{figures:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

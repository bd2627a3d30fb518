//! Reliability under at-least-once delivery: the experiments of `autopilot_lab::chaos` at CI size,
//! with their figures printed (`cargo test -p autopilot-tests --test e2e reliability:: -- --nocapture`); `autopilot
//! chaos` runs the same experiments at full size and prints a table.

use autopilot_functions::Function;
use autopilot_lab::chaos::experiments::{self, BArrives};
use autopilot_lab::chaos::scenario::{Arrival, Deliveries};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn duplicate_deliveries_make_one_side_effect_per_business_event() {
    let runtime = runtime();
    let mut failures = Vec::new();
    for function in Function::ALL {
        for copies in [2, 3, 10] {
            for arrival in [Arrival::OneByOne, Arrival::Together] {
                let figures =
                    runtime.block_on(experiments::duplicates(function, Deliveries { copies, arrival })).unwrap();
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
/// with the baseline's AWS calls — none repeated, none lost — for every function, and no idempotency record
/// left in progress past its expiry (the next invocation under the lease releases such claims). Outcome events may differ
/// after a crash between `PutEvents` and its record (at least once; printed, and in docs/reliability.md).
#[test]
fn a_crash_after_any_request_converges_without_a_repeated_side_effect() {
    let runtime = runtime();
    let mut failures = Vec::new();
    for function in Function::ALL {
        let figures = runtime.block_on(experiments::crashes(function, 1)).unwrap();
        eprintln!("{figures:?}");
        assert!(figures.crash_points > 10, "{}: the scenario makes requests to crash after", function.name());
        if !figures.failures.is_empty() || figures.stale_claims > 0 {
            failures.push(format!("{figures:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The ledger (embedded DynamoDB) stopped before every third slot of the scenario (`autopilot chaos`: every slot): the delivery made while it
/// is down fails retryably and makes no AWS mutation (every mutation needs its idempotency record first); once it
/// is back, EventBridge's retry converges to the baseline's calls.
#[test]
fn a_ledger_outage_stops_every_action_and_the_run_converges_after_it() {
    let runtime = runtime();
    let mut failures = Vec::new();
    for function in Function::ALL {
        let figures = runtime.block_on(experiments::ledger_outage(function, 3)).unwrap();
        eprintln!("{figures:?}");
        let held = figures.calls_without_ledger == 0
            && figures.other_outcomes.is_empty()
            && figures.failures.is_empty()
            && figures.retryable_errors == figures.outages;
        if !held {
            failures.push(format!("{figures:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Two invocations of one function on overlapping ticks, at every request of the first: while A holds the
/// function lease, B yields; whichever way they interleave, the run makes the baseline's AWS calls. And a
/// holder paused past its lease (B takes the lease over and acts) makes no AWS call and no fenced ledger write
/// once it is let go: its claims are fenced, and the lease's expiry is checked before every call.
#[test]
fn overlapping_invocations_act_once_and_a_holder_paused_past_its_lease_cannot_write() {
    let runtime = runtime();
    let mut failures = Vec::new();
    for function in Function::ALL {
        for b_arrives in [BArrives::WhileLeaseHeld, BArrives::AfterLeaseExpired] {
            let figures = runtime.block_on(experiments::overlap(function, b_arrives, 1)).unwrap();
            eprintln!("{figures:?}");
            assert!(figures.runs > 3, "{}: the tick makes requests to pause after", function.name());
            if b_arrives == BArrives::AfterLeaseExpired {
                assert!(figures.b_acted > 0, "{}: B took the expired lease over", function.name());
            } else {
                assert!(figures.b_yielded > 0, "{}: B met A's lease and yielded", function.name());
            }
            if !figures.failures.is_empty() {
                failures.push(format!("{figures:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The ledger stopped in the middle of an invocation (right after its k-th request; every 30th k here, every
/// 3rd in `autopilot chaos`): the delivery fails retryably, and after recovery the run makes the baseline's
/// AWS calls, none repeated, none lost.
#[test]
fn a_ledger_outage_mid_invocation_fails_retryably_and_the_run_converges() {
    let runtime = runtime();
    let mut failures = Vec::new();
    for function in Function::ALL {
        let figures = runtime.block_on(experiments::ledger_outage_mid(function, 30)).unwrap();
        eprintln!("{figures:?}");
        assert!(figures.outages >= 2, "{}", function.name());
        if !figures.failures.is_empty() {
            failures.push(format!("{figures:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A reboot item that failed and was retried by a duplicate delivery at the same instant: both records are kept
/// (`failed`, then `applied`), and every item the call log shows changed has exactly one `applied` record.
#[test]
fn an_item_failure_healed_by_a_duplicate_keeps_both_records() {
    let figures = runtime().block_on(experiments::item_failure_healed(Function::Remediator)).unwrap();
    eprintln!("{figures:?}");
    assert!(figures.failed_items > 0, "the scenario reboots or rebuilds: {figures:?}");
    assert!(figures.healed > 0, "a failed item was applied by the duplicate: {figures:?}");
    assert!(figures.mismatches.is_empty(), "{figures:?}");
}

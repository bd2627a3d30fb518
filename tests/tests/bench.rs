//! `autopilot bench` at CI size: every function's first and steady tick on a 100-resource estate stays within
//! the goal's calls per lower-bound call (call counts are deterministic; the timed figures live in the benchmark
//! itself, `scripts/bench.sh`), and a reconcile with every operation throttled at its rate loses no action.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use autopilot_local::bench::{self, estate::Scale, goals, throughput};
use autopilot_local::functions::Function;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tick_stays_within_the_call_bound() {
    let (ticks, decide) = bench::ticks_and_decide(100, 1).await.unwrap();
    assert_eq!((decide.function.as_str(), decide.resources), ("pool-scaler", 100), "{decide:?}");
    assert!(decide.cpu_ms_per_1000 > 0.0, "{decide:?}");
    assert_eq!(ticks.len(), 10, "five functions, first and steady tick");
    for t in &ticks {
        println!(
            "{:<19} {:<6} calls {:>4} bound {:>4} ({:?}) ratio {:.3} ledger {:>4} {}",
            t.function,
            t.tick,
            t.calls,
            t.bound.total(),
            t.bound,
            t.ratio,
            t.ledger_requests,
            t.outcome
        );
        assert!(!t.outcome.starts_with("error"), "{} {} tick failed: {}", t.function, t.tick, t.outcome);
        assert!(
            t.ratio <= goals::CALL_RATIO,
            "{} {} tick: {} calls for a bound of {:?}: {:?}",
            t.function,
            t.tick,
            t.calls,
            t.bound,
            t.operations
        );
        if t.tick == "steady" {
            let tag_calls: u64 =
                ["DescribeTags", "ListTagsForResource"].iter().filter_map(|op| t.operations.get(*op)).sum();
            assert!(
                t.function == "remediator" || tag_calls == 0,
                "{}: {tag_calls} tag reads on a steady tick (the tags are cached)",
                t.function
            );
        }
    }
    let first_pool = ticks.iter().find(|t| t.function == "pool-scaler" && t.tick == "first").unwrap();
    assert!(first_pool.bound.mutations > 0, "the first tick scales something: {first_pool:?}");
    let table = bench::render(&bench::Results {
        machine: "test".into(),
        command: "test".into(),
        cpu: bench::cpu(&ticks),
        decide: vec![decide],
        ticks,
        throughput: Vec::new(),
        cold_start: Vec::new(),
        memory: Vec::new(),
        demo_wall_s: None,
    });
    for function in Function::ALL {
        assert!(table.contains(function.name()), "{table}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_at_the_rate_limits_loses_no_action() {
    let run = throughput::reconcile(Function::PoolScaler, Scale::of(100), 1).await.unwrap();
    println!("{run:?}");
    assert_eq!(run.outcome, "ok");
    assert_eq!(run.failed_actions, 0, "{run:?}");
    assert_eq!(run.mutations, run.mutations_unthrottled, "{run:?}");
    assert!(run.mutations > 0, "{run:?}");
    assert!(run.bound_s > 0.0 && !run.limiting_operation.is_empty(), "{run:?}");
}

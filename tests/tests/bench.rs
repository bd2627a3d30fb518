//! `autopilot bench` at CI size: every function's first and steady tick on a 100-resource estate stays within
//! the goal's calls per lower-bound call (call counts are deterministic; the timed figures live in the benchmark
//! itself, `scripts/bench.sh`), and a reconcile with every operation throttled at its rate loses no action.

use autopilot_functions::Function;
use autopilot_lab::bench::{self, estate::Scale, goals, throughput};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tick_stays_within_the_call_bound() {
    let (ticks, decide) = bench::ticks_and_decide(100, 1).await.unwrap();
    assert_eq!((decide.function.as_str(), decide.resources), ("pool-scaler", 100), "{decide:?}");
    assert!(decide.cpu_ms_per_1000 > 0.0, "{decide:?}");
    assert_eq!(ticks.len(), 10, "five functions, first and steady tick");
    for t in &ticks {
        println!(
            "{:<19} {:<6} calls {:>4} bound {:>4} ({:?}) ratio {:.3} ledger {:>4} CPU {:.1} d+a {:.1} {}",
            t.function,
            t.tick,
            t.calls,
            t.bound.total(),
            t.bound,
            t.ratio,
            t.ledger_requests,
            t.cpu_ms,
            t.decide_act_cpu_ms,
            t.outcome
        );
        assert!(!t.outcome.starts_with("error"), "{} {} tick failed: {}", t.function, t.tick, t.outcome);
        // Every function decides on every tick; its decide + act steps are part of its whole tick.
        assert!(
            t.decide_act_cpu_ms > 0.0 && t.decide_act_cpu_ms <= t.cpu_ms,
            "{} {} tick: {} ms in decide + act of {} ms",
            t.function,
            t.tick,
            t.decide_act_cpu_ms,
            t.cpu_ms
        );
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
            // The bookkeeping of a steady tick is a handful of batched requests, not one per resource: the
            // builders the first tick started have changed state, and their memories go 99 to a transaction
            // (7 requests in all; 12 when each was written on its own).
            let most = if t.function == "builder-scheduler" { 7 } else { 12 };
            assert!(t.ledger_requests <= most, "{} steady tick: {} ledger requests", t.function, t.ledger_requests);
        }
        // Keep-alive holds: a tick opens about one connection per request in flight, not one per request.
        for (endpoint, connections, lanes) in
            [("services", t.connections_euc, t.lanes_euc), ("ledger", t.connections_ledger, t.lanes_ledger)]
        {
            assert!(
                connections <= goals::CONNECTIONS_PER_LANE * lanes.max(1),
                "{} {} tick: {connections} connections to the {endpoint} for {lanes} lanes",
                t.function,
                t.tick
            );
        }
    }
    // The bookkeeping is batched: the pool-scaler's first tick claims and completes its mutations a transaction
    // at a time (65 mutations on this estate: about 20 ledger requests in all, where each claim and each
    // completion on its own made 150).
    let first = ticks.iter().find(|t| t.function == "pool-scaler" && t.tick == "first").unwrap();
    assert!(first.mutations > 50, "{first:?}");
    assert!(
        first.ledger_requests * 2 <= first.mutations,
        "{} ledger requests for {} mutations: {:?}",
        first.ledger_requests,
        first.mutations,
        first.ledger_operations
    );
    let first_pool = ticks.iter().find(|t| t.function == "pool-scaler" && t.tick == "first").unwrap();
    assert!(first_pool.bound.mutations > 0, "the first tick scales something: {first_pool:?}");
    let table = bench::render(&bench::Results {
        machine: "test".into(),
        command: "test".into(),
        layers: Vec::new(),
        floor: None,
        per_mutation: bench::per_mutation(&ticks, None),
        ledger: bench::ledger(&ticks),
        bare_cold_start: None,
        probe_cold_start: None,
        cpu: bench::cpu(&ticks),
        decide: vec![decide],
        ticks,
        throughput: Vec::new(),
        cold_start: Vec::new(),
        memory: Vec::new(),
        dispatch_memory: Vec::new(),
        demo_wall_s: None,
        shards: None,
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

/// A tick deciding more resources than a report lists still answers with every result counted, failures and
/// actions listed first, and stays small (Lambda's response limit is 6 MB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_tick_answers_with_a_bounded_report() {
    use autopilot_shared::runtime::LISTED_ITEMS;
    let scale = Scale::of(1_400); // about 1,100 of them selected by the demo policy's rules
    let local = autopilot_sim::LocalEstate::start(&bench::estate::estate(scale, 1), 1, 0).await.unwrap();
    bench::estate::prepare(&local, scale).await.unwrap();
    let at = local.simulator.now() + chrono::Duration::minutes(5);
    let run = bench::tick::tick(&local, Function::PoolScaler, at).await.unwrap();
    let mutations = run.mutations() as usize;
    let report = run.outcome.unwrap();
    let listed = report["actions"].as_array().unwrap();
    let counted: u64 = report["results"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
    assert!(counted > LISTED_ITEMS as u64, "{}", report["results"]);
    assert_eq!(listed.len(), LISTED_ITEMS);
    assert_eq!(report["omitted"].as_u64().unwrap(), counted - LISTED_ITEMS as u64, "every decision counted");
    let applied = report["results"]["applied"].as_u64().unwrap() as usize;
    assert!(applied > 0 && applied == mutations, "{}", report["results"]);
    let results: Vec<&str> = listed.iter().map(|a| a["result"].as_str().unwrap()).collect();
    assert!(results[..applied.min(LISTED_ITEMS)].iter().all(|r| *r == "applied"), "acted-on items first");
    assert!(serde_json::to_vec(&report).unwrap().len() < 1024 * 1024);
}

/// The layer table at CI size: every layer measures both operations, the canned layers open no connection, and
/// each loopback layer keeps its connections alive: for 2 × 70 requests to two endpoints, one connection each on a
/// current-thread runtime (two at most per endpoint). On a multi-thread runtime a connection may not be back in the
/// pool (another thread returns it) when the next request starts, more often the busier the machine (6 seen while
/// other tests ran beside it): there, kept alive means at most one request in ten opened a connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_table_measures_every_layer_over_kept_alive_connections() {
    let scale = Scale::of(100);
    let local = autopilot_sim::LocalEstate::start(&bench::estate::estate(scale, 1), 1, 0).await.expect("local estate");
    let layers = bench::layers::layers(&local, 20).await.expect("layers");
    assert_eq!(layers.len(), 12, "six layers, two operations: {layers:?}");
    for layer in &layers {
        println!(
            "{:<46} {:<12} {:>8.1} µs {} connections",
            layer.layer, layer.operation, layer.cpu_us, layer.connections
        );
        assert!(layer.cpu_us > 0.0, "{layer:?}");
        let canned = layer.layer.contains("canned") || layer.layer.starts_with('2') || layer.layer.starts_with('3');
        let sent = 2 * u64::from(bench::layers::WARM_UP + layer.requests);
        let kept_alive = if canned {
            layer.connections == 0
        } else if layer.layer.contains("multi-thread") {
            (2..=sent / 10).contains(&layer.connections)
        } else {
            (2..=4).contains(&layer.connections)
        };
        assert!(kept_alive, "{layer:?}");
    }
    assert!(layers.iter().any(|l| l.layer == bench::layers::FLOOR), "{layers:?}");
}

/// Many accounts and regions at CI size: 400 pools + fleets over 4 accounts × 2 regions, every shard throttled at
/// its own rates and run in parallel; the deterministic figures (the timed ones are the benchmark's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shard_reconciles_in_parallel_and_a_thousand_targets_dispatch_in_one_tick() {
    let regions = ["eu-central-1".to_owned(), "eu-west-1".to_owned()];
    let s = bench::shards::run(400, 4, &regions, 1).await.unwrap();
    println!("{s:?}");
    assert_eq!(s.shards, 8);
    assert_eq!(s.dispatch_calls, 1, "8 shard ticks in one PutEvents call");
    assert_eq!((s.failed_requests, s.failed_shards), (0, 0));
    assert!(s.largest_bound_s > 0.0 && s.sequential_bound_s >= s.largest_bound_s);
    assert_eq!((s.calls_per_bound_min, s.calls_per_bound_max), (1.0, 1.0), "each shard at its lower bound of calls");
    assert_eq!((s.thousand.dispatched, s.thousand.calls), (1000, 100), "ten shard ticks per PutEvents call");
    assert!(s.thousand.largest_entry_bytes < 1024, "{} bytes", s.thousand.largest_entry_bytes);
    assert!((s.thousand.cost_usd - 0.001).abs() < 1e-9, "a thousand custom events at $1 per million");
}

/// Three bad shards (no spoke role, 30% 5xx, 1 request/s) beside three good ones, at CI size: the good ones all
/// reconcile, each bad one ends recorded for `autopilot targets` (the role-less one failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_shards_are_recorded_and_do_not_hold_the_good_ones_back() {
    let b = bench::shards::bad_shards(4, 1).await.unwrap();
    println!("{b:?}");
    assert_eq!(b.good_reconciled, 3);
    let outcome = |fault: &str| b.bad.iter().find(|s| s.fault == fault).map(|s| s.outcome.clone());
    assert_eq!(outcome("no spoke role").as_deref(), Some("failed"));
    assert!(outcome("30% 5xx").is_some_and(|o| o != "not recorded"), "{b:?}");
    assert!(outcome("1 request/s").is_some_and(|o| o != "not recorded"), "{b:?}");
    let slow = b.bad.iter().find(|s| s.fault == "1 request/s").map_or(0.0, |s| s.wall_s);
    assert!(b.good_wall_s < slow, "the good shards did not wait for the slow one: {b:?}");
}

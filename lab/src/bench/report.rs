//! The bench's verdicts ([`failures`]) and the table it prints ([`render`]).

use super::{Results, goals, throughput};

/// Whether every figure meets its goal.
pub fn failures(results: &Results) -> Vec<String> {
    let mut failed = Vec::new();
    if let Some(s) = &results.shards {
        if s.ratio_to_largest > goals::SHARDS_RATIO || s.faster_than_sequential < goals::SHARDS_FASTER {
            failed.push(format!(
                "{} shards: {:.2} x the largest shard's bound, {:.1} x faster than one by one",
                s.shards, s.ratio_to_largest, s.faster_than_sequential
            ));
        }
        if s.shard_mean_s > goals::SHARD_MEAN_S || s.shard_peak_s > goals::SHARD_PEAK_S {
            failed.push(format!("shard invocations: mean {:.1} s, peak {:.1} s", s.shard_mean_s, s.shard_peak_s));
        }
        let b = &s.bad;
        if b.good_reconciled != 3
            || (b.good_bound_s >= throughput::MIN_JUDGED_BOUND_S
                && b.good_wall_s > goals::SHARDS_RATIO * b.good_bound_s)
            || b.bad.iter().any(|bad| bad.outcome == "not recorded")
        {
            failed.push(format!(
                "bad shards beside good ones: {} of 3 good reconciled in {:.1} s (bound {:.1} s); bad: {:?}",
                b.good_reconciled, b.good_wall_s, b.good_bound_s, b.bad
            ));
        }
        if s.calls_per_bound_max > goals::CALL_RATIO {
            failed.push(format!(
                "shards: {:.3} to {:.3} calls per bound call",
                s.calls_per_bound_min, s.calls_per_bound_max
            ));
        }
        if s.failed_requests > 0 || s.failed_shards > 0 || s.thousand.dispatched != s.thousand.targets {
            failed.push(format!(
                "shards: {} failed requests, {} failed shards, {} of {} targets dispatched",
                s.failed_requests, s.failed_shards, s.thousand.dispatched, s.thousand.targets
            ));
        }
    }
    if !super::shards::dispatch_memory_flat(&results.dispatch_memory) {
        failed.push(format!("dispatch memory grows with the targets: {:?}", results.dispatch_memory));
    }
    for t in &results.ticks {
        if t.ratio > goals::CALL_RATIO {
            failed.push(format!("{} {} tick on {}: {:.2} calls per bound call", t.function, t.tick, t.size, t.ratio));
        }
        if t.outcome.starts_with("error") {
            failed.push(format!("{} {} tick on {}: {}", t.function, t.tick, t.size, t.outcome));
        }
    }
    for d in &results.decide {
        if d.cpu_ms_per_1000 > goals::CPU_MS_PER_1000 {
            failed.push(format!("{} decide on {}: {:.2} ms CPU per 1,000", d.function, d.size, d.cpu_ms_per_1000));
        }
    }
    for c in &results.cpu {
        if c.decide_act_ms_per_1000 > tick_goal(c.tick) {
            failed.push(format!(
                "{} tick on {}: {:.1} ms CPU per 1,000 resources in decide + act",
                c.tick, c.size, c.decide_act_ms_per_1000
            ));
        }
    }
    for t in &results.ticks {
        for (endpoint, connections, lanes) in
            [("services", t.connections_euc, t.lanes_euc), ("ledger", t.connections_ledger, t.lanes_ledger)]
        {
            if connections > goals::CONNECTIONS_PER_LANE * lanes.max(1) {
                failed.push(format!(
                    "{} {} tick on {}: {connections} connections to the {endpoint} for {lanes} lanes",
                    t.function, t.tick, t.size
                ));
            }
        }
    }
    for m in results.per_mutation.iter().filter(|m| judged(m)) {
        if let Some(ratio) = m.floor_ratio.filter(|r| *r > goals::PER_MUTATION_FLOOR_RATIO) {
            failed.push(format!(
                "{} first tick on {}: {:.0} µs of decide + act CPU per mutation, {ratio:.2} × F",
                m.function, m.size, m.decide_act_us_per_mutation
            ));
        }
    }
    for l in results.ledger.iter().filter(|l| l.mutations >= goals::LEDGER_MIN_MUTATIONS) {
        if l.per_mutation > goals::LEDGER_PER_MUTATION {
            failed.push(format!("first tick on {}: {:.2} ledger requests per mutation", l.size, l.per_mutation));
        }
    }
    if let Some(bare) = &results.bare_cold_start {
        for c in &results.cold_start {
            let ratio = c.median_ms / bare.median_ms.max(f64::EPSILON);
            if ratio > goals::COLD_START_RATIO {
                failed.push(format!("{} cold start {ratio:.2} × the bare runtime's", c.function));
            }
        }
    }
    for t in &results.throughput {
        if (t.ratio > goals::THROUGHPUT_RATIO && t.bound_s >= throughput::MIN_JUDGED_BOUND_S) || t.failed_actions > 0 {
            failed.push(format!(
                "{} at the rate limits: {:.2}× the bound, {} failed",
                t.function, t.ratio, t.failed_actions
            ));
        }
    }
    for c in &results.cold_start {
        if c.median_ms > goals::COLD_START_MS || c.init_connections > 0 {
            failed.push(format!(
                "{} cold start {:.1} ms, {} connections in init",
                c.function, c.median_ms, c.init_connections
            ));
        }
    }
    for m in &results.memory {
        if m.peak_rss_mib > goals::PEAK_RSS_MIB || m.zip_mib.is_some_and(|z| z > goals::ZIP_MIB) {
            failed.push(format!("{} peak {:.1} MiB, zip {:?} MiB", m.function, m.peak_rss_mib, m.zip_mib));
        }
    }
    failed
}

/// The decide + act goal of a tick kind, ms per 1,000 resources.
fn tick_goal(tick: &str) -> f64 {
    if tick == "first" { goals::FIRST_TICK_MS_PER_1000 } else { goals::STEADY_TICK_MS_PER_1000 }
}

/// Whether a function's first tick makes enough mutations for its cost per mutation to be judged.
fn judged(m: &super::PerMutation) -> bool {
    m.mutations >= goals::PER_MUTATION_MIN_MUTATIONS
}

fn mark(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISSED" }
}

/// The table `autopilot bench` prints.
pub fn render(results: &Results) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "machine: {}", results.machine);
    if !results.layers.is_empty() {
        let _ = writeln!(
            out,
            "\nCPU per request, one layer at a time ({} requests each, after a warm-up; the servers' CPU excluded)",
            results.layers.first().map_or(0, |l| l.requests)
        );
        let _ = writeln!(out, "{:<46} {:>14} {:>16} {:>12}", "layer", "PutItem µs", "UpdateFleet µs", "connections");
        let mut names: Vec<&str> = results.layers.iter().map(|l| l.layer).collect();
        names.dedup();
        for name in names {
            let of = |operation: &str| results.layers.iter().find(|l| l.layer == name && l.operation == operation);
            let (put, update) = (of("PutItem"), of("UpdateFleet"));
            let _ = writeln!(
                out,
                "{:<46} {:>14.1} {:>16.1} {:>12}",
                name,
                put.map_or(0.0, |l| l.cpu_us),
                update.map_or(0.0, |l| l.cpu_us),
                put.map_or(0, |l| l.connections)
            );
        }
    }
    if let Some(floor) = results.floor {
        let _ = writeln!(
            out,
            "floor F (layer 4): PutItem {:.1} µs, UpdateFleet {:.1} µs of CPU per request",
            floor.put_item_us, floor.update_fleet_us
        );
    }
    if !results.ticks.is_empty() {
        let _ = writeln!(
            out,
            "\nEUC API calls per tick ÷ their lower bound (goal ≤ {}); ledger = DynamoDB requests",
            goals::CALL_RATIO
        );
        let _ = writeln!(
            out,
            "{:>6} {:<19} {:<6} {:>9} {:>8} {:>8} {:>7} {:>7} {:>9} {:>9} {:>9} {:>11} {:>11}",
            "size",
            "function",
            "tick",
            "resources",
            "calls",
            "bound",
            "ratio",
            "ledger",
            "CPU ms",
            "d+a ms",
            "wall ms",
            "conn/lanes",
            "ledger c/l"
        );
        for t in &results.ticks {
            let _ = writeln!(
                out,
                "{:>6} {:<19} {:<6} {:>9} {:>8} {:>8} {:>7.3} {:>7} {:>9.1} {:>9.1} {:>9.0} {:>11} {:>11} {} {}",
                t.size,
                t.function,
                t.tick,
                t.resources,
                t.calls,
                t.bound.total(),
                t.ratio,
                t.ledger_requests,
                t.cpu_ms,
                t.decide_act_cpu_ms,
                t.wall_ms,
                format!("{}/{}", t.connections_euc, t.lanes_euc),
                format!("{}/{}", t.connections_ledger, t.lanes_ledger),
                mark(
                    t.ratio <= goals::CALL_RATIO
                        && t.connections_euc <= goals::CONNECTIONS_PER_LANE * t.lanes_euc.max(1)
                        && t.connections_ledger <= goals::CONNECTIONS_PER_LANE * t.lanes_ledger.max(1)
                ),
                if t.outcome.starts_with("error") { t.outcome.as_str() } else { "" }
            );
        }
    }
    if !results.cpu.is_empty() {
        let _ = writeln!(
            out,
            "\nCPU per 1,000 resources of the estate, the five functions on their own threads: the decide + act steps (goal < {} ms on a first tick, < {} ms on a steady one; the SDK's serialisation and signing of the mutations and the ledger's bookkeeping included), the whole ticks (observing too: the listing, memories and tags), then the pool-scaler's decide step alone (goal < {} ms)",
            goals::FIRST_TICK_MS_PER_1000,
            goals::STEADY_TICK_MS_PER_1000,
            goals::CPU_MS_PER_1000
        );
        let _ = writeln!(
            out,
            "{:>6} {:<6} {:>9} {:>13} {:>10} {:>13} {:>10}",
            "size", "tick", "resources", "decide+act ms", "per 1,000", "whole tick ms", "per 1,000"
        );
        for c in &results.cpu {
            let _ = writeln!(
                out,
                "{:>6} {:<6} {:>9} {:>13.1} {:>10.2} {:>13.1} {:>10.2} {}",
                c.size,
                c.tick,
                c.resources,
                c.decide_act_ms,
                c.decide_act_ms_per_1000,
                c.cpu_ms,
                c.cpu_ms_per_1000,
                mark(c.decide_act_ms_per_1000 < tick_goal(c.tick))
            );
        }
    }
    if !results.per_mutation.is_empty() {
        let _ = writeln!(
            out,
            "\nfirst tick per mutation: decide + act CPU ÷ F (goal ≤ {}, judged from {} mutations), ledger requests",
            goals::PER_MUTATION_FLOOR_RATIO,
            goals::PER_MUTATION_MIN_MUTATIONS
        );
        for m in &results.per_mutation {
            let ratio = m.floor_ratio.map_or("no floor".to_owned(), |r| format!("{r:.2} × F"));
            let verdict = if judged(m) {
                mark(m.floor_ratio.is_none_or(|r| r <= goals::PER_MUTATION_FLOOR_RATIO))
            } else {
                "(not judged)"
            };
            let _ = writeln!(
                out,
                "{:>6} {:<19} {:>5} mutations {:>8.0} µs {:>12}  ledger {:.3} per mutation {verdict}",
                m.size, m.function, m.mutations, m.decide_act_us_per_mutation, ratio, m.ledger_per_mutation
            );
        }
    }
    for l in &results.ledger {
        let _ = writeln!(
            out,
            "{:>6} first tick, all functions: {} ledger requests for {} mutations, {:.3} per mutation (goal ≤ {}, judged from {} mutations) {}",
            l.size,
            l.ledger_requests,
            l.mutations,
            l.per_mutation,
            goals::LEDGER_PER_MUTATION,
            goals::LEDGER_MIN_MUTATIONS,
            if l.mutations >= goals::LEDGER_MIN_MUTATIONS {
                mark(l.per_mutation <= goals::LEDGER_PER_MUTATION)
            } else {
                "(not judged)"
            }
        );
    }
    for d in &results.decide {
        let _ = writeln!(
            out,
            "{:>6} {} decide step alone: {} resources, {:.3} ms CPU per 1,000 {}",
            d.size,
            d.function,
            d.resources,
            d.cpu_ms_per_1000,
            mark(d.cpu_ms_per_1000 < goals::CPU_MS_PER_1000)
        );
    }
    if !results.throughput.is_empty() {
        let _ = writeln!(
            out,
            "\nreconcile at the rate limits ÷ the bound they imply (goal ≤ {}, 0 failed)",
            goals::THROUGHPUT_RATIO
        );
        let _ = writeln!(
            out,
            "{:<19} {:>8} {:>8} {:>7} {:<28} {:>8} {:>7} {:>9} {:>10} {:>7} {:>12}",
            "function",
            "wall s",
            "bound s",
            "ratio",
            "limiting operation",
            "phased s",
            "ratio",
            "throttled",
            "mutations",
            "failed",
            "CPU ÷ bound"
        );
        for t in &results.throughput {
            let _ = writeln!(
                out,
                "{:<19} {:>8.2} {:>8.2} {:>7.3} {:<28} {:>8.2} {:>7.3} {:>9} {:>10} {:>7} {:>11.2}% {}",
                t.function,
                t.wall_s,
                t.bound_s,
                t.ratio,
                t.limiting_operation,
                t.phased_bound_s,
                if t.phased_bound_s > 0.0 { t.wall_s / t.phased_bound_s } else { 0.0 },
                t.throttled,
                format!("{}/{}", t.mutations, t.mutations_unthrottled),
                t.failed_actions,
                t.cpu_share_of_bound * 100.0,
                if t.bound_s < throughput::MIN_JUDGED_BOUND_S && t.failed_actions == 0 {
                    "n/a (bound < 1 s)"
                } else {
                    mark(t.ratio <= goals::THROUGHPUT_RATIO && t.failed_actions == 0)
                }
            );
        }
    }
    if !results.cold_start.is_empty() {
        let _ = writeln!(
            out,
            "\ncold start: spawn → first /next (goal median ≤ {} ms, no network in init)",
            goals::COLD_START_MS
        );
        let bare = results.bare_cold_start.as_ref().map(|b| b.median_ms);
        if let Some(b) = &results.bare_cold_start {
            let _ = writeln!(
                out,
                "{:<19} median {:>6.2} ms  min {:>6.2}  max {:>6.2}  runs {:>3}  (the floor; goal ≤ {} ×)",
                "bare lambda_runtime",
                b.median_ms,
                b.min_ms,
                b.max_ms,
                b.runs,
                goals::COLD_START_RATIO
            );
        }
        if let Some(p) = &results.probe_cold_start {
            let ratio = bare.map_or(String::new(), |b| format!("  {:.2} × bare", p.median_ms / b.max(f64::EPSILON)));
            let _ = writeln!(
                out,
                "{:<19} median {:>6.2} ms  min {:>6.2}  max {:>6.2}  runs {:>3}{ratio}  (+ SDK config, clients, logging)",
                "lambda_probe", p.median_ms, p.min_ms, p.max_ms, p.runs
            );
        }
        for c in &results.cold_start {
            let ratio = bare.map_or(String::new(), |b| format!("  {:.2} × bare", c.median_ms / b.max(f64::EPSILON)));
            let _ = writeln!(
                out,
                "{:<19} median {:>6.2} ms  min {:>6.2}  max {:>6.2}  runs {:>3}  connections in init {}{ratio} {}",
                c.function,
                c.median_ms,
                c.min_ms,
                c.max_ms,
                c.runs,
                c.init_connections,
                mark(c.median_ms <= goals::COLD_START_MS && c.init_connections == 0)
            );
        }
    }
    if !results.memory.is_empty() {
        let _ = writeln!(
            out,
            "\npeak RSS of one tick (goal ≤ {} MiB) and zip size (goal ≤ {} MiB)",
            goals::PEAK_RSS_MIB,
            goals::ZIP_MIB
        );
        for m in &results.memory {
            let zip = m.zip_mib.map_or("not built (scripts/package.sh)".to_owned(), |z| format!("{z:.2} MiB"));
            let _ = writeln!(
                out,
                "{:<19} size {:>6}  peak {:>6.1} MiB  wall {:>8.0} ms  {:<10} zip {} {}",
                m.function,
                m.size,
                m.peak_rss_mib,
                m.wall_ms,
                m.outcome,
                zip,
                mark(m.peak_rss_mib <= goals::PEAK_RSS_MIB && m.zip_mib.is_none_or(|z| z <= goals::ZIP_MIB))
            );
        }
    }
    if let Some(s) = &results.shards {
        let _ = writeln!(
            out,
            "\nmany accounts and regions: {} pools + fleets over {} accounts x {} regions = {} shards, each throttled at its own rates",
            s.resources,
            s.accounts,
            s.regions.len(),
            s.shards
        );
        let _ = writeln!(out, "  hub tick (dispatch)        {:>8.1} ms  {} PutEvents", s.dispatch_ms, s.dispatch_calls);
        let _ = writeln!(
            out,
            "  full reconcile             {:>8.1} s   largest shard's bound {:.1} s ({}; {} changes in all): {:.2} x (goal <= {}) {}",
            s.wall_s,
            s.largest_bound_s,
            s.limiting_operation,
            s.mutations,
            s.ratio_to_largest,
            goals::SHARDS_RATIO,
            mark(s.ratio_to_largest <= goals::SHARDS_RATIO)
        );
        let _ = writeln!(
            out,
            "  one shard after another    {:>8.1} s   (sum of the shards' bounds): {:.1} x slower (goal >= {}) {}",
            s.sequential_bound_s,
            s.faster_than_sequential,
            goals::SHARDS_FASTER,
            mark(s.faster_than_sequential >= goals::SHARDS_FASTER)
        );
        let _ = writeln!(
            out,
            "  shard invocation           mean {:.1} s, peak {:.1} s (goals {} s, {} s) {}",
            s.shard_mean_s,
            s.shard_peak_s,
            goals::SHARD_MEAN_S,
            goals::SHARD_PEAK_S,
            mark(s.shard_mean_s <= goals::SHARD_MEAN_S && s.shard_peak_s <= goals::SHARD_PEAK_S)
        );
        let _ = writeln!(
            out,
            "  calls / bound per shard    {:.3} to {:.3} (goal <= {:.3}; throttled requests left out) {}",
            s.calls_per_bound_min,
            s.calls_per_bound_max,
            goals::CALL_RATIO,
            mark(s.calls_per_bound_max <= goals::CALL_RATIO)
        );
        let _ = writeln!(
            out,
            "  failed requests {}, failed shards {}, throttled (retried) {} {}",
            s.failed_requests,
            s.failed_shards,
            s.throttled,
            mark(s.failed_requests == 0 && s.failed_shards == 0)
        );
        let b = &s.bad;
        let good_ok = b.good_reconciled == 3
            && (b.good_bound_s < throughput::MIN_JUDGED_BOUND_S
                || b.good_wall_s <= goals::SHARDS_RATIO * b.good_bound_s);
        let _ = writeln!(
            out,
            "  bad shards beside good ones ({} pools + fleets each): {} of 3 good reconciled in {:.1} s (their bound {:.1} s) {}",
            b.per_shard,
            b.good_reconciled,
            b.good_wall_s,
            b.good_bound_s,
            mark(good_ok)
        );
        for bad in &b.bad {
            let _ = writeln!(
                out,
                "    {:<14} last tick {:<12} after {:>6.1} s {}",
                bad.fault,
                bad.outcome,
                bad.wall_s,
                mark(bad.outcome != "not recorded")
            );
        }
        let t = &s.thousand;
        let _ = writeln!(
            out,
            "  {} targets in one hub tick: {} dispatched in {:.1} ms, {} requests, largest entry {} bytes, ${:.4} of EventBridge custom events {}",
            t.targets,
            t.dispatched,
            t.wall_ms,
            t.calls,
            t.largest_entry_bytes,
            t.cost_usd,
            mark(t.dispatched == t.targets)
        );
    }
    if !results.dispatch_memory.is_empty() {
        let _ = writeln!(
            out,
            "\nhub tick dispatching targets (release binary, as Lambda runs it; goal: growth <= {} x the policy's) {}",
            super::shards::DISPATCH_GROWTH,
            mark(super::shards::dispatch_memory_flat(&results.dispatch_memory))
        );
        for d in &results.dispatch_memory {
            let _ = writeln!(
                out,
                "  {:>6} targets: {:>6} dispatched in {:>7.1} ms, peak {:>5.1} MiB, policy document {:>6.1} KiB",
                d.targets, d.dispatched, d.wall_ms, d.peak_rss_mib, d.policy_kib
            );
        }
    }
    if let Some(wall) = results.demo_wall_s {
        let _ = writeln!(out, "\nautopilot demo (one simulated week, demo estate): {wall:.1} s wall");
    }
    out
}

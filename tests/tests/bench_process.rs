//! `autopilot bench`'s process figures (`autopilot_lab::bench::process`) on a real binary: the pool-scaler's
//! cold start makes no network connection before its first poll, and a tick of the demo estate answers with a
//! peak resident set read from `/proc`.
//!
//! The binary is the release build `autopilot bench` measures (`target/release/pool-scaler`) when it exists;
//! otherwise, said loudly, a debug build of the same package (built here, a no-op when it is fresh), whose
//! figures are slower and larger but obey the same rules.

use crate::workspace::{root, target_dir, without_test_env};
use autopilot_lab::bench::process::{self, ColdStart};
use autopilot_sim::LocalEstate;
use autopilot_sim::estate::Estate;
use std::path::{Path, PathBuf};
use std::time::Duration;

const FUNCTION: &str = "pool-scaler";

/// The release binary, or a debug build of the pool-scaler into this test's own target directory.
fn pool_scaler() -> PathBuf {
    match process::binary(FUNCTION) {
        Ok(release) if release.parent().is_some_and(|dir| dir.ends_with("release")) => release,
        found => {
            let why =
                found.map_or_else(|missing| missing.to_string(), |debug| format!("{} may be stale", debug.display()));
            eprintln!("\n!!! bench process test: no release build ({why}); a debug build, brought up to date\n");
            debug_build()
        }
    }
}

/// Builds the debug binary on the dependencies the test build compiled, without the variables `cargo test` set for
/// this test (`workspace::without_test_env`). The workspace's test targets are named beside the binary so that
/// features resolve as they did for the test build (dev-dependencies' included): `-p pool-scaler` alone resolved
/// them differently and compiled the SDK stack again, two minutes of CI (measured: 4 s now, nothing but the
/// binary compiled).
fn debug_build() -> PathBuf {
    let target = target_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command.current_dir(root()).args(["build", "--locked", "--workspace", "--tests", "--bin", FUNCTION]);
    command.arg("--target-dir").arg(&target);
    without_test_env(&mut command);
    let output = command.output().expect("cargo runs");
    assert!(output.status.success(), "debug build failed:\n{}", String::from_utf8_lossy(&output.stderr));
    target.join("debug").join(FUNCTION)
}

/// The tests one at a time: a script written while another test forks could not be executed (`ETXTBSY`).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_scaler_starts_without_network_and_reports_its_peak_memory() {
    let _serial = SERIAL.lock().await;
    let binary = pool_scaler();
    eprintln!("bench process test runs {}", binary.display());

    // WHEN it is started three times and killed at its first poll
    let cold: ColdStart = process::cold_start(&binary, FUNCTION, 3).await.unwrap();
    eprintln!("cold start: {cold:?}");
    // THEN init opened no connection, and each start took time
    assert_eq!(cold.init_connections, 0, "no network in init");
    assert_eq!(cold.runs, 3);
    assert!(0.0 < cold.min_ms && cold.min_ms <= cold.median_ms && cold.median_ms <= cold.max_ms, "{cold:?}");

    // GIVEN the demo estate with its policy
    let estate = Estate::from_yaml(&std::fs::read_to_string(root().join("sim/estates/demo.yaml")).unwrap()).unwrap();
    let local = LocalEstate::start(&estate, 1, 0).await.unwrap();
    let policy = std::fs::read_to_string(root().join("sim/estates/demo-policy.yaml")).unwrap();
    local.ledger().put_policy(&policy, local.simulator.now()).await.unwrap();
    let calls_before = local.simulator.calls().len();

    // WHEN the binary handles one tick
    let event = autopilot_sim::tick_event("euc-autopilot-pool-scaler", local.simulator.now());
    let invocation = process::invoke_once(
        &binary,
        "euc-autopilot-pool-scaler",
        local.env_as(autopilot_sim::Identity::Function(autopilot_functions::Function::PoolScaler.name())),
        event,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let status = invocation.outcome.as_ref().map(|report| report.get("status").cloned());
    eprintln!(
        "tick: {:.1} ms, peak RSS {} KiB, CPU {} ms, status {status:?}",
        invocation.wall_ms, invocation.peak_rss_kib, invocation.cpu_ms
    );

    // THEN it answered, having called the simulator, and its peak memory was read
    let report = invocation.outcome.as_ref().expect("the tick succeeds");
    assert!(report.get("status").and_then(|s| s.as_str()).is_some(), "a report: {report}");
    assert!(local.simulator.calls().len() > calls_before, "the tick reached the simulator");
    assert!(invocation.peak_rss_kib > 1024, "a peak resident set of more than 1 MiB: {invocation:?}");
    assert!(invocation.wall_ms > 0.0 && invocation.cpu_ms >= 0.0, "{invocation:?}");
}

/// A bootstrap (bash builtins only: the environment is empty) that connects to its DynamoDB endpoint in init,
/// then asks for an event and waits for it.
const CONNECTS_IN_INIT: &str = r#"#!/bin/bash
endpoint=${AWS_ENDPOINT_URL_DYNAMODB#http://}
exec 3<>"/dev/tcp/${endpoint%:*}/${endpoint##*:}"
exec 3>&-
api=$AWS_LAMBDA_RUNTIME_API
exec 4<>"/dev/tcp/${api%:*}/${api##*:}"
printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: %s\r\n\r\n' "$api" >&4
read -r line <&4
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_in_init_is_counted() {
    let _serial = SERIAL.lock().await;
    // GIVEN a bootstrap that opens one connection before its first poll
    let script = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-process-connects-in-init");
    std::fs::write(&script, CONNECTS_IN_INIT).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    // WHEN it is started twice after the warm-up
    let cold = process::cold_start(&script, "connects-in-init", 2).await.unwrap();

    // THEN each of the three starts is counted
    assert_eq!(cold.init_connections, 3, "{cold:?}");
    assert_eq!(cold.runs, 2);
}

/// The hub tick's memory does not grow with the number of targets beyond the policy document it reads: 100 and
/// 10,000 targets (5,000 accounts x 2 regions) dispatched by the real binary, as Lambda runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatching_ten_thousand_targets_takes_no_more_memory_than_their_policy_document() {
    let figures =
        autopilot_lab::bench::shards::dispatch_memory(&pool_scaler(), &[100, 10_000], 1).await.expect("dispatched");
    println!("{figures:#?}");
    for f in &figures {
        assert_eq!((f.dispatched, f.outcome.as_str()), (f.targets, "dispatched"), "{f:?}");
    }
    assert!(autopilot_lab::bench::shards::dispatch_memory_flat(&figures), "{figures:#?}");
}

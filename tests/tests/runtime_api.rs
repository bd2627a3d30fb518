//! The real runtime path: each function's release binary, run under the local Lambda Runtime API
//! (`autopilot_tests::runtime_api`) with the environment `autopilot serve` prints (`AWS_ENDPOINT_URL_*`, region,
//! dummy credentials, ledger table), handles every sample event in its `events/<function>/` folder; errors come
//! back with the right `errorType`.
//!
//! The binaries are the packaged ones: `scripts/package.sh` builds each function's `bootstrap.zip` as SAM deploys
//! it (arm64), the test unpacks it and runs `bootstrap`, natively on an arm64 machine and under `qemu-aarch64`
//! (Debian's `qemu-user` and `libc6-arm64-cross`, which `scripts/ci.sh` installs) elsewhere. Where that cannot
//! be done it says so loudly and runs a native release build of the same packages instead.
//!
//! The estate `sim/estates/samples.yaml` holds the resources the samples name (the policy is
//! `sim/estates/samples-policy.yaml`, whose names the samples share; `autopilot_lab::samples` has the delivery order
//! and each sample's expected outcome), so each sample does what it describes rather than meeting an empty estate. The functions
//! run on the system clock, the simulator on its virtual clock: only outcomes are asserted.

use crate::workspace::{root, target_dir, without_test_env};
use autopilot_functions::Function;
use autopilot_lab::samples::Expect::{self, Error, Status};
use autopilot_lab::samples::{ESTATE, EXPECTATIONS, prepare};
use autopilot_sim::LocalEstate;
use autopilot_sim::estate::Estate;
use autopilot_tests::runtime_api::{ARM64_SYSROOT, Program, RuntimeApi};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The functions, as packages, binaries and `events/` folders.
const FUNCTIONS: [&str; 5] = ["pool-scaler", "builder-scheduler", "export-chaser", "softwareset-roller", "remediator"];

/// The deadline each invocation gets (Lambda's `Timeout`).
const TIMEOUT: Duration = Duration::from_secs(60);

fn samples_on_disk(function: &str) -> BTreeSet<String> {
    std::fs::read_dir(root().join("events").join(function))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect()
}

#[test]
fn every_sample_has_an_expectation() {
    let folders: BTreeSet<String> = std::fs::read_dir(root().join("events"))
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_type().unwrap().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "outputs") // outcome events: what the functions send, not what they receive
        .collect();
    assert_eq!(folders, FUNCTIONS.iter().map(|f| (*f).to_owned()).collect(), "events/ input folders are the functions");
    for (function, expectations) in EXPECTATIONS {
        let expected: BTreeSet<String> = expectations.iter().map(|(sample, _)| (*sample).to_owned()).collect();
        assert_eq!(expected.len(), expectations.len(), "{function}: a sample is listed twice");
        let on_disk = samples_on_disk(function);
        let missing: Vec<_> = on_disk.difference(&expected).collect();
        let stale: Vec<_> = expected.difference(&on_disk).collect();
        assert!(missing.is_empty(), "events/{function}/ samples with no expectation in EXPECTATIONS: {missing:?}");
        assert!(stale.is_empty(), "EXPECTATIONS names samples events/{function}/ does not have: {stale:?}");
        assert!(
            expectations.iter().any(|(_, expect)| *expect == Error("InvalidInput")),
            "{function}: at least one sample must be rejected as InvalidInput"
        );
    }
}

/// The binaries under test, once per test run: the packaged arm64 `bootstrap` of each function (what SAM
/// deploys) when `scripts/package.sh` can build the zips and this machine can run arm64 code (natively or under
/// `qemu-aarch64`); otherwise, said loudly, a native release build of the same packages.
fn programs() -> &'static Programs {
    static PROGRAMS: std::sync::OnceLock<Programs> = std::sync::OnceLock::new();
    PROGRAMS.get_or_init(|| {
        let programs = packaged().unwrap_or_else(|reason| {
            eprintln!("\n!!! runtime test: NOT the packaged arm64 binaries ({reason}): native release build instead\n");
            native_release()
        });
        eprintln!("runtime test runs {}", programs.what);
        programs
    })
}

#[derive(Debug)]
struct Programs {
    what: String,
    by_function: std::collections::BTreeMap<&'static str, Program>,
}

impl Programs {
    fn get(&self, function: &str) -> &Program {
        self.by_function.get(function).unwrap()
    }
}

/// Runs `scripts/package.sh` (a no-op rebuild when the zips are fresh) and unpacks each `bootstrap.zip`.
fn packaged() -> Result<Programs, String> {
    let target = target_dir();
    let started = Instant::now();
    let mut package = std::process::Command::new("bash");
    // Without the variables `cargo test` set, the zips `scripts/ci.sh` just built are not built again.
    without_test_env(&mut package).arg(root().join("scripts/package.sh")).env("CARGO_TARGET_DIR", &target);
    let output = package.output().map_err(|e| format!("cannot run scripts/package.sh: {e}"))?;
    if !output.status.success() {
        panic!(
            "scripts/package.sh failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    eprintln!("scripts/package.sh: {:.1} s", started.elapsed().as_secs_f64());
    let mut by_function = std::collections::BTreeMap::new();
    for function in FUNCTIONS {
        let zip = target.join("lambda").join(function).join("bootstrap.zip");
        if !zip.is_file() {
            return Err(format!("{} was not built: {}", zip.display(), String::from_utf8_lossy(&output.stderr).trim()));
        }
        let unpacked = target.join("lambda").join(function).join("unpacked");
        let _ = std::fs::remove_dir_all(&unpacked);
        // The zip as Lambda receives it: Python's zipfile (on every machine with the Python CI needs anyway).
        let unzip = std::process::Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&zip)
            .arg(&unpacked)
            .output()
            .map_err(|e| format!("cannot run python3 to unpack {}: {e}", zip.display()))?;
        assert!(unzip.status.success(), "unpacking {}: {}", zip.display(), String::from_utf8_lossy(&unzip.stderr));
        let bootstrap = unpacked.join("bootstrap");
        let entries: Vec<_> =
            std::fs::read_dir(&unpacked).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(entries, ["bootstrap"], "{} holds exactly `bootstrap`, as provided.al2023 expects", zip.display());
        std::fs::set_permissions(&bootstrap, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let program = Program::arm64(&bootstrap).ok_or_else(|| {
            format!(
                "this {} machine cannot run arm64 code: no qemu-aarch64 or no {ARM64_SYSROOT}",
                std::env::consts::ARCH
            )
        })?;
        by_function.insert(function, program);
    }
    let how = if std::env::consts::ARCH == "aarch64" { "natively" } else { "under qemu-aarch64" };
    Ok(Programs { what: format!("the packaged arm64 bootstrap of each function ({how})"), by_function })
}

/// Builds the five release binaries for this machine into the test's own target directory.
fn native_release() -> Programs {
    let target = target_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command.current_dir(root()).args(["build", "--release", "--locked"]);
    for function in FUNCTIONS {
        command.args(["-p", function]);
    }
    command.arg("--target-dir").arg(&target);
    let started = Instant::now();
    let output = command.output().expect("cargo runs");
    assert!(output.status.success(), "release build failed:\n{}", String::from_utf8_lossy(&output.stderr));
    eprintln!("release build: {:.1} s", started.elapsed().as_secs_f64());
    let by_function = FUNCTIONS
        .into_iter()
        .map(|function| (function, Program::native(&target.join("release").join(function))))
        .collect();
    Programs { what: format!("native {} release binaries", std::env::consts::ARCH), by_function }
}

/// Runs one function's binary against a fresh estate and delivers its samples; returns what went wrong.
async fn run_function(function: &str, program: &Program, expectations: &[(&str, Expect)]) -> Vec<String> {
    let estate = Estate::from_yaml(ESTATE).expect("estate parses");
    let local = LocalEstate::start(&estate, 1, 0).await.expect("local estate starts");
    let policy = autopilot_lab::samples::POLICY;
    local.ledger().put_policy(policy, local.simulator.now()).await.expect("policy stored");
    prepare(function, &local);

    let api = RuntimeApi::start().await.expect("runtime API starts");
    // The function's own role (its access key), the estate's table, bus and clock.
    let identity = Function::named(function).map(|f| autopilot_sim::Identity::Function(f.name())).expect("a function");
    let mut env = local.env_as(identity);
    env.push(("AUTOPILOT_DRY_RUN".into(), "false".into()));
    let mut process =
        api.spawn_function(program, &format!("euc-autopilot-{function}"), env).expect("the binary starts");
    let Some(ready) = api.first_poll(Duration::from_secs(30)).await else {
        return vec![format!(
            "{function}: never asked for an event (running: {}, init error: {:?}):\n{}",
            process.is_running(),
            api.init_error(),
            process.output_tail(20)
        )];
    };
    eprintln!(
        "{function}: spawn → first /next {} ms (cold start; under emulation only indicative)",
        (ready - process.spawned_at).as_millis()
    );

    let mut failures = Vec::new();
    for (sample, expect) in expectations {
        let bytes = std::fs::read(root().join("events").join(function).join(sample)).unwrap();
        let payload: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let started = Instant::now();
        let outcome = api.invoke(payload, TIMEOUT).await;
        let took = started.elapsed().as_millis();
        let met = match (expect, &outcome) {
            (Status(status), Ok(response)) => response.get("status").and_then(|s| s.as_str()) == Some(*status),
            (Error(error_type), Err(error)) => error.error_type == *error_type,
            _ => false,
        };
        match &outcome {
            Ok(response) => eprintln!("{function}/{sample}: {took} ms, {response}"),
            Err(error) => eprintln!("{function}/{sample}: {took} ms, {error} (header {:?})", error.header),
        }
        if !met {
            failures.push(format!("{function}/{sample}: expected {expect:?}, got {outcome:?}"));
        }
        if let Err(error) = &outcome
            && error.header.as_deref() != Some("unhandled")
        {
            failures.push(format!("{function}/{sample}: error posted without the `unhandled` error-type header"));
        }
        if !process.is_running() {
            failures.push(format!("{function}/{sample}: the process exited:\n{}", process.output_tail(20)));
            return failures;
        }
    }
    if local.simulator.calls().is_empty() {
        failures.push(format!("{function}: no call reached the simulator (AWS_ENDPOINT_URL_* not used?)"));
    }
    check_effects(function, &local, &mut failures);
    process.kill().expect("the process is killed");
    failures
}

/// Effects the samples must have had on the estate, where they do not depend on the (system) time of day.
fn check_effects(function: &str, local: &LocalEstate, failures: &mut Vec<String>) {
    let called =
        |operation: &str, resource: &str| {
            local.simulator.calls().iter().any(|c| {
                c.operation == operation && c.ok() && c.resource.as_deref().is_some_and(|r| r.contains(resource))
            })
        };
    let wanted: &[(&str, &str)] = match function {
        "export-chaser" => &[("CreateExportImageTask", "golden-2026-11")],
        "remediator" => &[("RebootWorkspaces", "ws-f8h2k9m1p")],
        "softwareset-roller" => &[("UpdateEnvironment", "envcanary01")],
        _ => &[],
    };
    for (operation, resource) in wanted {
        if !called(operation, resource) {
            failures.push(format!("{function}: no {operation} for {resource}"));
        }
    }
}

#[test]
fn release_binaries_handle_every_sample_through_the_runtime_api() {
    let started = Instant::now();
    let programs = programs();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut failures = Vec::new();
    for (function, expectations) in EXPECTATIONS {
        failures.extend(runtime.block_on(run_function(function, programs.get(function), expectations)));
    }
    eprintln!("runtime API test: {:.1} s", started.elapsed().as_secs_f64());
    assert!(failures.is_empty(), "{} problem(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn a_binary_without_its_configuration_fails_at_init_and_never_polls() {
    let program = programs().get("pool-scaler");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let api = RuntimeApi::start().await.unwrap();
        // No AUTOPILOT_TABLE: the ledger cannot be found. Lambda reports `Runtime.ExitError` for the sandbox.
        let env = vec![("AWS_REGION".to_owned(), "eu-central-1".to_owned())];
        let mut process = api.spawn_function(program, "euc-autopilot-pool-scaler", env).unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        while process.is_running() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let status = process.kill().unwrap();
        assert!(!status.success(), "exits with an error: {status}");
        assert!(process.output().contains("AUTOPILOT_TABLE"), "names the variable:\n{}", process.output());
        assert_eq!(api.first_poll(Duration::ZERO).await, None, "never asked for an event");
    });
}

//! boto3 (an independent client that parses responses against AWS's own service models) drives every
//! simulated service through `autopilot serve`: WorkSpaces and EventBridge in awsJson1_1, AppStream in both
//! Smithy RPC v2 CBOR and awsJson1_1, Thin Client in restJson1.
//!
//! Python with boto3 comes from `AUTOPILOT_PYTHON`, else `.venv/bin/python` at the workspace root, which
//! `scripts/ci.sh` creates (`python3 -m venv .venv && .venv/bin/pip install boto3`).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

fn python() -> PathBuf {
    if let Ok(path) = std::env::var("AUTOPILOT_PYTHON") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python")
}

#[test]
fn boto3_drives_every_service_through_autopilot_serve() {
    let python = python();
    assert!(
        python.exists(),
        "no Python with boto3 at {}: run `python3 -m venv .venv && .venv/bin/pip install boto3` (scripts/ci.sh does)",
        python.display()
    );
    let estate = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sim/estates/demo.yaml");
    let args =
        ["--estate".as_ref(), estate.as_os_str(), "--port".as_ref(), "0".as_ref(), "--seed".as_ref(), "7".as_ref()];
    let (mut serve, lines) = common::serve(env!("CARGO_BIN_EXE_autopilot"), &args);
    let env = common::exports(&lines);
    // an endpoint for each of the five simulated services, STS (the spoke roles), Organizations (targets by OU)
    // and DynamoDB, the region, credentials and table
    assert_eq!(env.iter().filter(|(n, _)| n.starts_with("AWS_ENDPOINT_URL_")).count(), 8, "{env:?}");
    assert!(env.iter().any(|(n, v)| n == "AWS_DEFAULT_REGION" && v == "eu-central-1"), "{env:?}");
    assert!(env.iter().any(|(n, v)| n == "AWS_DISABLE_HOST_PREFIX_INJECTION" && v == "true"), "{env:?}");
    assert!(env.iter().any(|(n, v)| n == "AWS_REGION" && v == "eu-central-1"), "{env:?}");
    let output = Command::new(&python)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/boto3_client.py"))
        .envs(env)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("python runs");
    let _ = serve.kill();
    let _ = serve.wait();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "boto3 client failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("checks passed"), "{stdout}");
    println!("{stdout}");
}

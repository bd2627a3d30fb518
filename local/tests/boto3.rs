//! boto3 (an independent client that parses responses against AWS's own service models) drives every
//! simulated service through `autopilot serve`: WorkSpaces and EventBridge in awsJson1_1, AppStream in both
//! Smithy RPC v2 CBOR and awsJson1_1, Thin Client in restJson1.
//!
//! Python with boto3 comes from `AUTOPILOT_PYTHON`, else `.venv/bin/python` at the workspace root, which
//! `scripts/ci.sh` creates (`python3 -m venv .venv && .venv/bin/pip install boto3`).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

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
    let estate = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("estates/demo.yaml");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_autopilot"))
        .args(["serve", "--estate"])
        .arg(&estate)
        .args(["--port", "0", "--seed", "7"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("autopilot serve starts");
    let mut env = Vec::new();
    for line in BufReader::new(serve.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "ready" {
            break;
        }
        let (name, value) = line.strip_prefix("export ").and_then(|l| l.split_once('=')).expect("export line");
        env.push((name.to_owned(), value.to_owned()));
    }
    // an endpoint for each of the five simulated services and DynamoDB, the region, credentials and table
    assert_eq!(env.iter().filter(|(n, _)| n.starts_with("AWS_ENDPOINT_URL_")).count(), 6, "{env:?}");
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

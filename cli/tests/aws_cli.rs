//! The AWS CLI against `autopilot serve`, configured only by `eval` of the lines `serve` prints: one read of each
//! EUC service, signed as the operator (whose policy allows them), and a write the operator may not make,
//! refused as AWS refuses it.
//!
//! The CLI comes from `AUTOPILOT_AWS_CLI`, else `.venv/bin/aws` at the workspace root, which `scripts/ci.sh`
//! installs (`.venv/bin/pip install awscli`).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

fn aws_cli() -> PathBuf {
    if let Ok(path) = std::env::var("AUTOPILOT_AWS_CLI") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/aws")
}

/// Runs `aws <args>` in a shell that first `eval`s serve's output, with no AWS settings of the test's own.
fn aws(exports: &str, args: &str) -> Output {
    let cli = aws_cli();
    let script = format!("eval \"$SERVE_OUTPUT\"\n{} {args} --output json", cli.display());
    let mut command = Command::new("bash");
    command.arg("-c").arg(script).env("SERVE_OUTPUT", exports);
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("AWS_")) {
        command.env_remove(name);
    }
    // no shared config or credentials files of the machine
    command.env("AWS_CONFIG_FILE", "/dev/null").env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    command.output().unwrap()
}

#[test]
fn the_aws_cli_reads_every_service_after_eval_of_serves_exports() {
    assert!(
        aws_cli().exists(),
        "no AWS CLI at {}: run `.venv/bin/pip install awscli` (scripts/ci.sh does)",
        aws_cli().display()
    );
    // GIVEN autopilot serve on the demo estate
    let estate = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sim/estates/demo.yaml");
    let args = ["--estate".as_ref(), estate.as_os_str(), "--port".as_ref(), "0".as_ref()];
    let (mut serve, lines) = common::serve(env!("CARGO_BIN_EXE_autopilot"), &args);
    let exports = lines.join("\n");

    // WHEN the AWS CLI reads each service
    let pools = aws(&exports, "workspaces describe-workspaces-pools");
    let fleets = aws(&exports, "appstream describe-fleets");
    let environments = aws(&exports, "workspaces-thin-client list-environments");
    let refused = aws(&exports, "appstream stop-fleet --name engineering-fleet");
    let _ = serve.kill();
    let _ = serve.wait();

    // THEN each answers with the demo estate's resources
    let json = |output: &Output| -> serde_json::Value {
        assert!(
            output.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let pools = json(&pools);
    assert!(pools["WorkspacesPools"].as_array().is_some_and(|p| !p.is_empty()), "{pools}");
    let fleets = json(&fleets);
    assert!(fleets["Fleets"].as_array().unwrap().iter().any(|f| f["Name"] == "engineering-fleet"), "{fleets}");
    let environments = json(&environments);
    assert!(environments["environments"].as_array().is_some_and(|e| !e.is_empty()), "{environments}");
    // AND a change the operator's policy does not allow is refused as AWS refuses it
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("AccessDeniedException")
            && message.contains("is not authorized to perform: appstream:StopFleet on resource: arn:aws:appstream:eu-central-1:123456789012:fleet/engineering-fleet"),
        "{message}"
    );
}

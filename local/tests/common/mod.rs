//! Test support: a local estate on loopback and the product's own SDK clients pointed at it.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use autopilot_local::LocalEstate;
use autopilot_local::estate::Estate;
use autopilot_shared::clients::AwsClients;

pub const DEMO: &str = include_str!("../../estates/demo.yaml");

pub fn demo() -> Estate {
    Estate::from_yaml(DEMO).expect("demo estate parses")
}

pub async fn start(estate: &Estate, seed: u64) -> (LocalEstate, AwsClients) {
    let local = LocalEstate::start(estate, seed, 0).await.expect("local estate starts");
    let clients = local.clients();
    (local, clients)
}

/// Retries disabled, so a throttle or 5xx reaches the test as the service's typed error.
pub fn no_retry() -> aws_smithy_types::retry::RetryConfig {
    aws_smithy_types::retry::RetryConfig::disabled()
}

/// `autopilot serve <args>` (the binary under test) and the lines it printed before `ready`: comments and
/// `export NAME=value` lines.
pub fn serve(bin: &str, args: &[&std::ffi::OsStr]) -> (std::process::Child, Vec<String>) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(bin)
        .arg("serve")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("autopilot serve starts");
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == autopilot_local::READY {
            break;
        }
        lines.push(line);
    }
    (child, lines)
}

/// The `export NAME=value` lines of [`serve`] as pairs.
pub fn exports(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

//! Test support: a local estate on loopback and the product's own SDK clients pointed at it.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use autopilot_shared::clients::AwsClients;
use autopilot_sim::LocalEstate;
use autopilot_sim::estate::Estate;

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

//! Simulator throughput through the real Rust SDK: DescribeWorkspacesPools pages and UpdateFleet calls per
//! second against a generated estate on loopback. Run with `bash scripts/measure-simulator.sh` (release build).

use autopilot_sim::LocalEstate;
use autopilot_sim::generate::{Sizes, generate};
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let estate = generate(Sizes { pools: 1_000, fleets: 1_000, ..Sizes::default() }, 1);
    let started = Instant::now();
    let local = LocalEstate::start(&estate, 1, 0).await?;
    let start_ms = started.elapsed().as_secs_f64() * 1000.0;
    let aws = local.clients();

    let pages = 1_000;
    let started = Instant::now();
    let mut token: Option<String> = None;
    for _ in 0..pages {
        let page = aws.workspaces.describe_workspaces_pools().set_next_token(token.take()).send().await?;
        token = page.next_token().map(str::to_owned);
    }
    let describe_rate = f64::from(pages) / started.elapsed().as_secs_f64();

    let updates = 2_000u32;
    let started = Instant::now();
    for n in 0..updates {
        let name = format!(
            "{}-fleet-{:05}",
            ["sales", "support", "finance", "engineering", "hr"][(n % 1_000) as usize % 5],
            n % 1_000
        );
        let capacity = if (n % 1_000) % 3 == 2 {
            aws_sdk_appstream::types::ComputeCapacity::builder()
                .desired_sessions(i32::try_from(n % 50).unwrap_or(1) + 1)
                .build()
        } else {
            aws_sdk_appstream::types::ComputeCapacity::builder()
                .desired_instances(i32::try_from(n % 50).unwrap_or(1) + 1)
                .build()
        };
        aws.appstream.update_fleet().name(name).compute_capacity(capacity).send().await?;
    }
    let update_rate = f64::from(updates) / started.elapsed().as_secs_f64();

    println!("estate: 1000 pools, 1000 fleets (generated, seed 1)");
    println!("LocalEstate::start (simulator + embedded DynamoDB + ledger table): {start_ms:.1} ms");
    println!("DescribeWorkspacesPools pages (10 pools each, awsJson1_1), sequential: {describe_rate:.0} requests/s");
    println!("UpdateFleet (Smithy RPC v2 CBOR), sequential: {update_rate:.0} requests/s");
    Ok(())
}

//! Times the phases of a function's init in process (docs/performance.md, "Cold start, one layer at a time"):
//! logging, the SDK's configuration (`aws_config`'s loader: environment, profile files, credential and region
//! chains, the HTTPS client with the system's CA roots), and every client built from it.
//!
//! ```sh
//! cargo build --release -p autopilot-shared --example init_phases
//! env -i AWS_REGION=eu-central-1 AWS_ACCESS_KEY_ID=a AWS_SECRET_ACCESS_KEY=b \
//!   SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt target/release/examples/init_phases
//! ```

use std::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let started = Instant::now();
    autopilot_shared::telemetry::init_logging("init-phases");
    let logging = started.elapsed();
    let config = autopilot_shared::clients::load_sdk_config().await;
    let configured = started.elapsed();
    let clients = autopilot_shared::clients::AwsClients::from_sdk_config(&config);
    let built = started.elapsed();
    std::hint::black_box(&clients);
    eprintln!(
        "logging {:?}, SDK configuration {:?}, clients {:?}",
        logging,
        configured.saturating_sub(logging),
        built.saturating_sub(configured)
    );
}

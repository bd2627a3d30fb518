//! Lambda entry point: configuration, clients and metrics are built once (no network in init), then serve.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    autopilot_shared::runtime::serve(remediator::FUNCTION, remediator::handle).await
}

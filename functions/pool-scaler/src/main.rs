//! Lambda entry point: configuration, clients and metrics are built once (no network in init), then serve.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    autopilot_shared::runtime::serve(pool_scaler::FUNCTION, pool_scaler::handle).await
}

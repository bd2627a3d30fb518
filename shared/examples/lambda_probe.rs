//! A representative Lambda binary for measuring the release profile before the function crates exist: it
//! builds every SDK client, logging and metrics at cold start (no network), then serves invocations that
//! parse an EventBridge input. `scripts/measure-release-profile.sh` builds it under several profiles and
//! reports binary size and init time under a local Lambda Runtime API.

use autopilot_shared::clients::AwsClients;
use autopilot_shared::error::AutopilotError;
use autopilot_shared::{events, telemetry};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init_logging("lambda-probe");
    let clients = AwsClients::from_env().await;
    let clients = &clients;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let _deadline_clients = clients.with_deadline(std::time::Duration::from_secs(30));
        let input = events::parse(event.payload).map_err(|e| AutopilotError::from_classified(&e))?;
        Ok::<_, AutopilotError>(serde_json::json!({ "id": input.id() }))
    }))
    .await
}

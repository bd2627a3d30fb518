//! Lambda entry point: build configuration, clients and metrics once (no network in init), then serve.

use autopilot_shared::clients::AwsClients;
use autopilot_shared::clock::SystemClock;
use autopilot_shared::error::AutopilotError;
use autopilot_shared::ledger::Ledger;
use autopilot_shared::telemetry::{self, InvocationContext};
use lambda_runtime::{LambdaEvent, service_fn};
use pool_scaler::{Config, Deps, FUNCTION, handle};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init_logging(FUNCTION);
    let metrics = telemetry::init_metrics(FUNCTION)?;
    let config = Config::from_env()?;
    let aws = AwsClients::from_env().await;
    let deps = Deps {
        ledger: Ledger::new(aws.dynamodb.clone(), config.table.clone()),
        aws,
        clock: Arc::new(SystemClock),
        config,
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let remaining = std::time::Duration::from_millis(event.context.deadline).saturating_sub(
            std::time::Duration::from_millis(u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or_default()),
        );
        let correlation_id = event.payload.get("id").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
        let context = InvocationContext { request_id: event.context.request_id.clone(), correlation_id };
        // Boxed: the handler future is large and deeply nested.
        let result = telemetry::in_invocation(context.clone(), Box::pin(handle(deps, event.payload, remaining))).await;
        let _ = telemetry::flush_metrics(metrics, &context, std::io::stdout());
        result.inspect_err(|error: &AutopilotError| {
            tracing::error!(error_type = error.class.as_str(), message = %error.message, "invocation failed");
        })
    }))
    .await
}

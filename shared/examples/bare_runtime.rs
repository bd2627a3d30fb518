//! The smallest Lambda function on `lambda_runtime`: it answers every event with itself. `autopilot bench`
//! measures its cold start beside the functions' (the bare runtime's init is the floor a function's cold start
//! is judged against); `scripts/bench.sh` builds it.

use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, lambda_runtime::Error>(event.payload)
    }))
    .await
}

//! Lambda entry point: configuration, clients and metrics are built once (no network in init), then serve.

// One thread: the work is IO (a Lambda of 256 MB has a fraction of a vCPU), and a multi-thread runtime costs
// about a third more CPU per request in wake-ups across threads (`autopilot bench`, layers 5 and 6).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    autopilot_shared::runtime::serve(remediator::FUNCTION, remediator::handle).await
}

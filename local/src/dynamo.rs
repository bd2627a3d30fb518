//! The embedded DynamoDB: `dynoxide-rs` (SQLite-backed, speaks the real DynamoDB protocol) served over HTTP
//! on loopback, with the ledger table created through the real SDK and `ledger::table::create_table`.

use autopilot_shared::ledger::table;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;
use std::net::SocketAddr;

/// The ledger table name used locally (and the default of the deployed stack).
pub const DEFAULT_TABLE: &str = "euc-autopilot-ledger";

/// A running embedded DynamoDB; stops when dropped.
#[derive(Debug)]
pub struct EmbeddedDynamo {
    pub endpoint: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Starts an in-memory DynamoDB on `addr` (port 0 picks a free one) and creates the ledger table `table`.
pub async fn start(addr: SocketAddr, table_name: &str) -> Result<EmbeddedDynamo, String> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let endpoint = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let database = dynoxide::Database::memory().map_err(|e| format!("cannot open the embedded database: {e}"))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = dynoxide::server::serve_with_shutdown(listener, database, async move {
            let _ = stopped.await;
        })
        .await;
    });
    table::create_table(&client(&endpoint), table_name).await.map_err(|e| e.to_string())?;
    Ok(EmbeddedDynamo { endpoint, _stop: stop })
}

/// A DynamoDB client for a local endpoint (dummy credentials; nothing is signed-checked locally).
pub fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-central-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("local", "local", None, None, "autopilot-local"))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

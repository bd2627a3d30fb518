//! The embedded DynamoDB: `dynoxide-rs` (SQLite-backed, speaks the real DynamoDB protocol) served over HTTP
//! on loopback, with the ledger table created through the real SDK and `ledger::table::create_table`.

use autopilot_shared::ledger::table;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;
use std::net::SocketAddr;

/// The ledger table name used locally (and the default of the deployed stack).
pub const DEFAULT_TABLE: &str = "euc-autopilot-ledger";

/// A running embedded DynamoDB; stops when dropped. It can be stopped and started again on the same port with
/// the same data ([`Self::stop`], [`Self::restart`]): a ledger outage for the reliability experiments.
pub struct EmbeddedDynamo {
    pub endpoint: String,
    addr: SocketAddr,
    database: dynoxide::Database,
    server: std::sync::Mutex<Option<Server>>,
}

impl std::fmt::Debug for EmbeddedDynamo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedDynamo").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Server {
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

fn serve(listener: tokio::net::TcpListener, database: dynoxide::Database) -> Server {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        let _ = dynoxide::server::serve_with_shutdown(listener, database, async move {
            let _ = stopped.await;
        })
        .await;
    });
    Server { stop, done }
}

impl EmbeddedDynamo {
    fn take_server(&self) -> Option<Server> {
        self.server.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }

    /// Stops serving (connections are refused) and waits until the server is down; the data is kept.
    pub async fn stop(&self) {
        if let Some(server) = self.take_server() {
            let _ = server.stop.send(());
            let _ = server.done.await;
        }
    }

    /// Serves the same data on the same port again.
    pub async fn restart(&self) -> Result<(), String> {
        if self.server.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some() {
            return Ok(());
        }
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .map_err(|e| format!("cannot listen on {} again: {e}", self.addr))?;
        *self.server.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(serve(listener, self.database.clone()));
        Ok(())
    }
}

/// Starts an in-memory DynamoDB on `addr` (port 0 picks a free one) and creates the ledger table `table`.
pub async fn start(addr: SocketAddr, table_name: &str) -> Result<EmbeddedDynamo, String> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let endpoint = format!("http://{addr}");
    let database = dynoxide::Database::memory().map_err(|e| format!("cannot open the embedded database: {e}"))?;
    let server = serve(listener, database.clone());
    table::create_table(&client(&endpoint), table_name).await.map_err(|e| e.to_string())?;
    Ok(EmbeddedDynamo { endpoint, addr, database, server: std::sync::Mutex::new(Some(server)) })
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

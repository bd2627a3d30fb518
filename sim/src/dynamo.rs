//! The local estate's DynamoDB: the embedded one ([`EmbeddedDynamo`], dynoxide in process) behind an HTTP front on
//! loopback that authorises every request as DynamoDB does — the identity that signed it, its role's policy from
//! `template.yaml` ([`crate::iam`]) — before answering it, and refuses with DynamoDB's `AccessDeniedException`.
//! The ledger table is created through the real SDK and `ledger::table::create_table`.

use crate::iam::{ADMIN, Authorizer, Refusal, request::ServiceRequest};
use autopilot_shared::ledger::embedded::{Answer, CONTENT_TYPE, EmbeddedDynamo, TARGET_PREFIX};
use autopilot_shared::ledger::table;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// The ledger table name used locally (and the default of the deployed stack).
pub const DEFAULT_TABLE: &str = "euc-autopilot-ledger";

/// A running embedded DynamoDB; stops when dropped. Its front can be stopped and started again on the same
/// port with the same data ([`Self::stop`], [`Self::restart`]): a ledger outage for the reliability experiments.
pub struct LocalDynamo {
    /// Where clients send requests: the authorising front.
    pub endpoint: String,
    addr: SocketAddr,
    front: Arc<Front>,
    server: std::sync::Mutex<Option<Server>>,
    /// TCP connections the front has accepted so far (across restarts).
    pub connections: crate::Connections,
}

impl std::fmt::Debug for LocalDynamo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalDynamo").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Server {
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

/// The front's state: who may do what, and the database.
#[derive(Debug)]
struct Front {
    authorizer: Arc<Authorizer>,
    database: EmbeddedDynamo,
}

fn serve_front(listener: tokio::net::TcpListener, front: Arc<Front>, connections: &crate::Connections) -> Server {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let listener = connections.counting(listener);
    let router = axum::Router::new().fallback(handle).with_state(front);
    let done = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Server { stop, done }
}

impl LocalDynamo {
    fn take_server(&self) -> Option<Server> {
        self.server.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }

    /// Stops serving (connections are refused) and waits until the front is down; the data is kept.
    pub async fn stop(&self) {
        if let Some(server) = self.take_server() {
            let _ = server.stop.send(());
            let _ = server.done.await;
        }
    }

    /// Serves the same data on the same port again.
    pub async fn restart(&self) -> Result<(), std::io::Error> {
        if self.server.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some() {
            return Ok(());
        }
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        *self.server.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(serve_front(listener, self.front.clone(), &self.connections));
        Ok(())
    }
}

/// Why the local DynamoDB cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Open(#[from] autopilot_shared::ledger::embedded::OpenError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("cannot create the ledger table: {0}")]
    Table(String),
}

/// Starts an in-memory DynamoDB whose front listens on `addr` (port 0 picks a free one), authorising requests
/// with `authorizer`, and creates the ledger table `table_name`.
pub async fn start(addr: SocketAddr, table_name: &str, authorizer: Arc<Authorizer>) -> Result<LocalDynamo, StartError> {
    let database = EmbeddedDynamo::memory()?;
    table::create_table(&database.client(crate::LOCAL_REGION, ADMIN), table_name)
        .await
        .map_err(|e| StartError::Table(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| StartError::Listen { addr, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen { addr, source })?;
    let front = Arc::new(Front { authorizer, database });
    let connections = crate::Connections::default();
    let server = serve_front(listener, front.clone(), &connections);
    Ok(LocalDynamo {
        endpoint: format!("http://{addr}"),
        addr,
        front,
        server: std::sync::Mutex::new(Some(server)),
        connections,
    })
}

/// A DynamoDB client for a local endpoint signed as the local identity `access_key` (see [`crate::iam`]).
pub fn client(endpoint: &str, access_key: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(crate::LOCAL_REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(access_key, "local", None, None, "autopilot-local"))
        .http_client(autopilot_shared::clients::loopback_http_client())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

fn respond(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, answer.body).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
    headers.insert("x-amzn-requestid", HeaderValue::from_static("00000000-0000-4000-8000-000000000000"));
    response
}

/// Authorises a DynamoDB request, then answers it. A request without a target or with a body that is not JSON
/// is answered as DynamoDB answers it.
async fn handle(State(front): State<Arc<Front>>, method: Method, headers: HeaderMap, body: Bytes) -> Response {
    if method != Method::POST {
        return (StatusCode::NOT_FOUND, "<UnknownOperationException/>\n").into_response();
    }
    let Some(operation) =
        headers.get("x-amz-target").and_then(|v| v.to_str().ok()).and_then(|t| t.strip_prefix(TARGET_PREFIX))
    else {
        return respond(Answer::error(400, "UnknownOperationException", "no X-Amz-Target"));
    };
    let Ok(input) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return respond(Answer::error(400, "SerializationException", "the body is not JSON"));
    };
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    let refused = match front.authorizer.authenticate(authorization) {
        Err(refusal) => Some(refusal),
        Ok((principal, region)) => {
            let request = ServiceRequest { service: "dynamodb", operation, input: &input, path: None };
            front.authorizer.authorize(&principal, &request, Some(&region)).err()
        }
    };
    respond(match refused {
        Some(Refusal::Unauthenticated { code, message }) => Answer::error(400, code, &message),
        Some(Refusal::Denied { message }) => Answer::error(400, "AccessDeniedException", &message),
        Some(Refusal::Unmapped(gap)) => Answer::error(500, "InternalServerError", &gap.to_string()),
        None => front.database.answer(operation, &body),
    })
}

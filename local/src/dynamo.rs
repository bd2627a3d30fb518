//! The embedded DynamoDB: `dynoxide-rs` (SQLite-backed, speaks the real DynamoDB protocol) on loopback, behind
//! a front that authorises every request as DynamoDB does — the identity that signed it, its role's policy from
//! `template.yaml` ([`crate::iam`]) — and answers a refusal with DynamoDB's `AccessDeniedException`. The front
//! forwards what it allows, byte for byte, over kept-alive connections. The ledger table is created through
//! the real SDK and `ledger::table::create_table`.

use crate::iam::{ADMIN, Authorizer, Refusal, request::ServiceRequest};
use autopilot_shared::ledger::table;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::sync::Arc;

/// The ledger table name used locally (and the default of the deployed stack).
pub const DEFAULT_TABLE: &str = "euc-autopilot-ledger";

const TARGET_PREFIX: &str = "DynamoDB_20120810.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// A running embedded DynamoDB; stops when dropped. Its front can be stopped and started again on the same
/// port with the same data ([`Self::stop`], [`Self::restart`]): a ledger outage for the reliability experiments.
pub struct EmbeddedDynamo {
    /// Where clients send requests: the authorising front.
    pub endpoint: String,
    addr: SocketAddr,
    front: Arc<Front>,
    _database: Server,
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

/// The front's state: who may do what, and the pooled connections to dynoxide.
struct Front {
    authorizer: Arc<Authorizer>,
    backend: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

fn serve_database(listener: tokio::net::TcpListener, database: dynoxide::Database) -> Server {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        let _ = dynoxide::server::serve_with_shutdown(listener, database, async move {
            let _ = stopped.await;
        })
        .await;
    });
    Server { stop, done }
}

fn serve_front(listener: tokio::net::TcpListener, front: Arc<Front>) -> Server {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
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

impl EmbeddedDynamo {
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
    pub async fn restart(&self) -> Result<(), String> {
        if self.server.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some() {
            return Ok(());
        }
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .map_err(|e| format!("cannot listen on {} again: {e}", self.addr))?;
        *self.server.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(serve_front(listener, self.front.clone()));
        Ok(())
    }
}

/// Starts an in-memory DynamoDB whose front listens on `addr` (port 0 picks a free one), authorising requests
/// with `authorizer`, and creates the ledger table `table_name`.
pub async fn start(addr: SocketAddr, table_name: &str, authorizer: Arc<Authorizer>) -> Result<EmbeddedDynamo, String> {
    let database = dynoxide::Database::memory().map_err(|e| format!("cannot open the embedded database: {e}"))?;
    let inner = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| format!("cannot listen on loopback: {e}"))?;
    let backend = format!("http://{}", inner.local_addr().map_err(|e| e.to_string())?);
    let database_server = serve_database(inner, database);
    table::create_table(&client(&backend, ADMIN), table_name).await.map_err(|e| e.to_string())?;

    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let front = Arc::new(Front { authorizer, backend, client: Client::builder(TokioExecutor::new()).build_http() });
    let server = serve_front(listener, front.clone());
    Ok(EmbeddedDynamo {
        endpoint: format!("http://{addr}"),
        addr,
        front,
        _database: database_server,
        server: std::sync::Mutex::new(Some(server)),
    })
}

/// A DynamoDB client for a local endpoint signed as the local identity `access_key` (see [`crate::iam`]).
pub fn client(endpoint: &str, access_key: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(crate::LOCAL_REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(access_key, "local", None, None, "autopilot-local"))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// A DynamoDB error answer (`__type` with the coral namespace, as DynamoDB sends it).
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "__type": format!("com.amazon.coral.service#{code}"), "Message": message });
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
    headers.insert("x-amzn-requestid", HeaderValue::from_static("00000000-0000-4000-8000-000000000000"));
    response
}

/// Authorises a DynamoDB request, then forwards it to dynoxide unchanged. What cannot be read as a DynamoDB
/// request (no target, a body that is not JSON) is forwarded for dynoxide to answer as DynamoDB does.
async fn handle(
    State(front): State<Arc<Front>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let operation =
        headers.get("x-amz-target").and_then(|v| v.to_str().ok()).and_then(|t| t.strip_prefix(TARGET_PREFIX));
    if let (&Method::POST, Some(operation), Ok(input)) =
        (&method, operation, serde_json::from_slice::<serde_json::Value>(&body))
    {
        let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
        let refused = match front.authorizer.authenticate(authorization) {
            Err(refusal) => Some(refusal),
            Ok((principal, region)) => {
                let request = ServiceRequest { service: "dynamodb", operation, input: &input, path: None };
                front.authorizer.authorize(principal, &request, Some(&region)).err()
            }
        };
        match refused {
            Some(Refusal::Unauthenticated { code, message }) => return error(StatusCode::BAD_REQUEST, code, &message),
            Some(Refusal::Denied { message }) => {
                return error(StatusCode::BAD_REQUEST, "AccessDeniedException", &message);
            }
            Some(Refusal::Unmapped(gap)) => {
                return error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", &gap.to_string());
            }
            None => {}
        }
    }
    forward(&front, method, &uri, headers, body).await
}

async fn forward(front: &Front, method: Method, uri: &Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = Request::builder().method(method).uri(format!("{}{path}", front.backend));
    if let Some(request_headers) = request.headers_mut() {
        for (name, value) in &headers {
            if name != "host" {
                request_headers.append(name.clone(), value.clone());
            }
        }
    }
    let Ok(request) = request.body(Full::new(body)) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "cannot forward the request");
    };
    match front.client.request(request).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            match body.collect().await {
                Ok(collected) => Response::from_parts(parts, Body::from(collected.to_bytes())),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", &e.to_string()),
            }
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", &format!("embedded DynamoDB: {e}")),
    }
}

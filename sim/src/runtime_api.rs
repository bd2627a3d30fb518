//! A local Lambda Runtime API: what the Lambda service offers a custom runtime (`provided.al2023`), enough to run
//! a function's release binary as Lambda runs it. The binary's `lambda_runtime` polls
//! `GET /2018-06-01/runtime/invocation/next`, handles the event and posts `…/{request id}/response` or
//! `…/{request id}/error`; an initialisation failure is posted to `/2018-06-01/runtime/init/error`.
//!
//! One [`RuntimeApi`] serves one function process (one sandbox), like Lambda:
//!
//! ```no_run
//! # async fn example(binary: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
//! use autopilot_sim::runtime_api::{Program, RuntimeApi};
//! let api = RuntimeApi::start().await?;
//! let program = Program::native(binary);
//! let mut process = api.spawn_function(&program, "pool-scaler", Vec::new()).map_err(|e| e.to_string())?;
//! let ready = api.first_poll(std::time::Duration::from_secs(10)).await.ok_or("never polled")?;
//! println!("cold start: {:?}", ready - process.spawned_at); // spawn → first `/next`
//! let outcome = api.invoke(serde_json::json!({}), std::time::Duration::from_secs(60)).await;
//! assert!(process.is_running());
//! # Ok(()) }
//! ```
//!
//! Protocol as `lambda_runtime` 1.5 speaks it: `/next` answers `200` with the event as the body and the headers
//! `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms` (epoch milliseconds),
//! `Lambda-Runtime-Invoked-Function-Arn` and `Lambda-Runtime-Trace-Id`; the runtime posts errors with
//! `Lambda-Runtime-Function-Error-Type` (`unhandled` for an invocation, `Runtime.InitError` for init) and a
//! `{"errorType", "errorMessage"}` body. Answers are `202 Accepted` as Lambda gives them; an unknown request id
//! is `400 InvalidRequestID`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, watch};

/// The account in the invoked function ARN.
const ACCOUNT: &str = "123456789012";

/// Lambda's limit on an invocation's response payload (6 MB).
pub const RESPONSE_LIMIT: usize = 6 * 1024 * 1024;

/// How long [`RuntimeApi::invoke`] waits past the deadline before it gives up on an answer.
const GRACE: Duration = Duration::from_secs(5);

/// What a failed invocation reports: the `errorType` and `errorMessage` Lambda gives the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationError {
    /// The body's `errorType` (for our functions `Retryable`, `NonRetryable` or `InvalidInput`), or
    /// `Harness.Timeout` when no answer came in time.
    pub error_type: String,
    pub error_message: String,
    /// The `Lambda-Runtime-Function-Error-Type` header the runtime sent (`unhandled` from `lambda_runtime`),
    /// `None` for a timeout.
    pub header: Option<String>,
}

impl std::fmt::Display for InvocationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type, self.error_message)
    }
}

/// An event waiting for the runtime's next `/next`.
#[derive(Debug)]
struct Queued {
    request_id: String,
    payload: Value,
    deadline_ms: u128,
}

type Outcome = Result<Value, InvocationError>;

#[derive(Debug)]
struct Shared {
    /// The queue `/next` takes from (one poller at a time: the lock is held while it waits).
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>,
    /// Invocations given out or queued, by request id, with where their outcome goes.
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// When the runtime first asked for an event.
    first_poll: watch::Sender<Option<Instant>>,
    /// What the runtime posted to `/init/error`.
    init_error: Mutex<Option<InvocationError>>,
    /// The invoked function's ARN (set by [`RuntimeApi::spawn_function`]).
    function_arn: Mutex<String>,
    region: String,
}

impl Shared {
    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Outcome>>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn settle(&self, request_id: &str, outcome: Outcome) -> Response {
        match self.lock_pending().remove(request_id) {
            Some(reply) => {
                let _ = reply.send(outcome);
                accepted()
            }
            None => (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({
                    "errorType": "InvalidRequestID",
                    "errorMessage": format!("no invocation {request_id} is waiting for an answer"),
                })),
            )
                .into_response(),
        }
    }
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(serde_json::json!({ "status": "OK" }))).into_response()
}

fn epoch_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// The error a runtime posted: the `{"errorType", "errorMessage"}` body and the error-type header.
fn posted_error(headers: &HeaderMap, body: &[u8]) -> InvocationError {
    let header = headers.get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let field = |name: &str| parsed.get(name).and_then(Value::as_str).map(str::to_owned);
    InvocationError {
        error_type: field("errorType").unwrap_or_else(|| header.clone().unwrap_or_else(|| "Unknown".into())),
        error_message: field("errorMessage").unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
        header,
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    shared.first_poll.send_if_modified(|first| {
        let unset = first.is_none();
        if unset {
            *first = Some(Instant::now());
        }
        unset
    });
    // Cancel-safe: a runtime that goes away while waiting leaves the event in the queue.
    let mut queue = shared.queue.lock().await;
    let Some(event) = queue.recv().await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "the runtime API is shutting down").into_response();
    };
    drop(queue);
    let arn = shared.function_arn.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let trace = format!(
        "Root=1-{:08x}-{:0>24};Parent={:0>16};Sampled=0",
        epoch_ms() / 1000,
        event.request_id.replace('-', "").get(..24).unwrap_or_default(),
        event.request_id.replace('-', "").get(..16).unwrap_or_default()
    );
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", event.request_id.clone()),
        ("lambda-runtime-deadline-ms", event.deadline_ms.to_string()),
        ("lambda-runtime-invoked-function-arn", arn),
        ("lambda-runtime-trace-id", trace),
        ("content-type", "application/json".into()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    (StatusCode::OK, headers, event.payload.to_string()).into_response()
}

async fn response(State(shared): State<Arc<Shared>>, Path(request_id): Path<String>, body: Bytes) -> Response {
    let outcome = serde_json::from_slice::<Value>(&body).map_err(|e| InvocationError {
        error_type: "Runtime.InvalidResponse".into(),
        error_message: format!("the response is not JSON: {e}"),
        header: None,
    });
    shared.settle(&request_id, outcome)
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.settle(&request_id, Err(posted_error(&headers, &body)))
}

async fn init_error(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let error = posted_error(&headers, &body);
    *shared.init_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(error.clone());
    // Lambda fails the invocations the sandbox was started for.
    for (_, reply) in shared.lock_pending().drain() {
        let _ = reply.send(Err(error.clone()));
    }
    accepted()
}

/// Why the Runtime API cannot start: it found no port on loopback.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct ListenError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// A Lambda Runtime API on a free loopback port.
#[derive(Debug)]
pub struct RuntimeApi {
    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    shared: Arc<Shared>,
    queue: mpsc::UnboundedSender<Queued>,
    next_id: std::sync::atomic::AtomicU64,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    /// Starts the API on `127.0.0.1:0` (region `eu-central-1` in the function ARN).
    pub async fn start() -> Result<Self, ListenError> {
        let (queue, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(receiver),
            pending: Mutex::new(HashMap::new()),
            first_poll: watch::Sender::new(None),
            init_error: Mutex::new(None),
            function_arn: Mutex::new(format!("arn:aws:lambda:eu-central-1:{ACCOUNT}:function:function")),
            region: "eu-central-1".into(),
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            // Lambda takes responses up to its invocation payload limit; axum's default (2 MB) would turn a
            // large report into a lost answer.
            .layer(axum::extract::DefaultBodyLimit::max(RESPONSE_LIMIT))
            .with_state(Arc::clone(&shared));
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let listen = |source| ListenError { addr, source };
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(listen)?;
        let address = listener.local_addr().map_err(listen)?.to_string();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { address, shared, queue, next_id: std::sync::atomic::AtomicU64::new(1), server })
    }

    /// Starts `program` as Lambda starts a custom runtime's `bootstrap`: a clean environment with `env` (e.g.
    /// [`crate::LocalEstate::env`] and the function's own variables) and the variables Lambda
    /// reserves (`AWS_LAMBDA_RUNTIME_API` pointing here, `AWS_LAMBDA_FUNCTION_NAME` = `function`,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` = 256, `AWS_LAMBDA_FUNCTION_VERSION` = `$LATEST`, log group and
    /// stream, `TZ`). Its standard output and error are collected ([`FunctionProcess::output`]).
    pub fn spawn_function(
        &self,
        program: &Program,
        function: &str,
        env: Vec<(String, String)>,
    ) -> std::io::Result<FunctionProcess> {
        *self.shared.function_arn.lock().unwrap_or_else(PoisonError::into_inner) =
            format!("arn:aws:lambda:{}:{ACCOUNT}:function:{function}", self.shared.region);
        let mut command = std::process::Command::new(&program.path);
        command
            .args(&program.args)
            .env_clear()
            .envs(program.env.iter().cloned())
            .envs(env)
            .env("AWS_LAMBDA_RUNTIME_API", &self.address)
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/23/[$LATEST]local")
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
            .env("TZ", ":UTC")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let spawned_at = Instant::now();
        let mut child = command.spawn()?;
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        let pipes: [Option<Box<dyn Read + Send>>; 2] = [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        ];
        for mut pipe in pipes.into_iter().flatten() {
            let sink = Arc::clone(&output);
            readers.push(std::thread::spawn(move || {
                let mut buffer = [0_u8; 8192];
                while let Ok(read @ 1..) = pipe.read(&mut buffer) {
                    sink.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(&buffer[..read]);
                }
            }));
        }
        Ok(FunctionProcess { child, spawned_at, output, readers })
    }

    /// When the runtime first asked for an event (its init is over), waiting up to `timeout`: with
    /// [`FunctionProcess::spawned_at`], the cold start.
    pub async fn first_poll(&self, timeout: Duration) -> Option<Instant> {
        let mut first = self.shared.first_poll.subscribe();
        let waited = tokio::time::timeout(timeout, first.wait_for(Option::is_some)).await;
        waited.ok().and_then(|seen| seen.ok().and_then(|instant| *instant))
    }

    /// What the runtime posted to `/init/error`, if anything.
    pub fn init_error(&self) -> Option<InvocationError> {
        self.shared.init_error.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Invokes the function synchronously (`RequestResponse`) with `payload` and a deadline `timeout` from
    /// now: the response, or the error the runtime posted (`Harness.Timeout` when nothing came by the deadline
    /// and a few seconds' grace).
    pub async fn invoke(&self, payload: Value, timeout: Duration) -> Result<Value, InvocationError> {
        if let Some(error) = self.init_error() {
            return Err(error);
        }
        let n = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request_id = format!("{:08x}-0000-4000-8000-{n:012x}", std::process::id());
        let (reply, outcome) = oneshot::channel();
        self.shared.lock_pending().insert(request_id.clone(), reply);
        let deadline_ms = epoch_ms() + timeout.as_millis();
        let timed_out = |message: String| InvocationError {
            error_type: "Harness.Timeout".into(),
            error_message: message,
            header: None,
        };
        if self.queue.send(Queued { request_id: request_id.clone(), payload, deadline_ms }).is_err() {
            self.shared.lock_pending().remove(&request_id);
            return Err(timed_out("the runtime API is shut down".into()));
        }
        match tokio::time::timeout(timeout + GRACE, outcome).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(timed_out(format!("invocation {request_id} was dropped"))),
            Err(_) => {
                self.shared.lock_pending().remove(&request_id);
                Err(timed_out(format!("no answer to invocation {request_id} within {timeout:?}")))
            }
        }
    }
}

/// How a function's binary is started: directly, or an arm64 `bootstrap` under `qemu-aarch64` (user-mode
/// emulation) on another architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub path: std::path::PathBuf,
    pub args: Vec<std::ffi::OsString>,
    /// Variables the launcher needs (kept apart from the function's environment).
    pub env: Vec<(String, String)>,
}

/// Where Debian's `libc6-arm64-cross` puts the arm64 loader and C library `qemu-aarch64` needs.
pub const ARM64_SYSROOT: &str = "/usr/aarch64-linux-gnu";

impl Program {
    /// The binary itself, for the machine's own architecture.
    pub fn native(binary: &std::path::Path) -> Self {
        Self { path: binary.to_path_buf(), args: Vec::new(), env: Vec::new() }
    }

    /// An arm64 (`aarch64-unknown-linux-gnu`) binary: directly on an arm64 machine, else under `qemu-aarch64`
    /// with [`ARM64_SYSROOT`]; `None` when neither can run it (no qemu or no arm64 C library).
    pub fn arm64(binary: &std::path::Path) -> Option<Self> {
        if std::env::consts::ARCH == "aarch64" {
            return Some(Self::native(binary));
        }
        let qemu = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .map(|dir| dir.join("qemu-aarch64"))
            .find(|candidate| candidate.is_file())?;
        if !std::path::Path::new(ARM64_SYSROOT).join("lib/ld-linux-aarch64.so.1").exists() {
            return None;
        }
        Some(Self {
            path: qemu,
            args: vec![binary.as_os_str().to_owned()],
            env: vec![("QEMU_LD_PREFIX".into(), ARM64_SYSROOT.into())],
        })
    }
}

/// A function process started by [`RuntimeApi::spawn_function`]; killed when dropped.
#[derive(Debug)]
pub struct FunctionProcess {
    pub child: std::process::Child,
    /// Just before the process was spawned.
    pub spawned_at: Instant,
    output: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl FunctionProcess {
    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything it wrote to standard output and error so far (its JSON logs and EMF metrics).
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }

    /// The last `lines` lines of [`Self::output`], for a failure message.
    pub fn output_tail(&self, lines: usize) -> String {
        let output = self.output();
        let all: Vec<&str> = output.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Kills the process and waits for it (and for its output to be collected).
    pub fn kill(&mut self) -> std::io::Result<std::process::ExitStatus> {
        if self.is_running() {
            self.child.kill()?;
        }
        let status = self.child.wait()?;
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Ok(status)
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

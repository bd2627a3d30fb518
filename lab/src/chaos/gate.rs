//! A fault gate in the product's own HTTP path: every AWS SDK client of a [`GatedEstate`] (the simulated EUC
//! services, EventBridge and the ledger's DynamoDB) sends through one [`Gate`] that counts requests and can
//! *crash* the invocation right after its k-th request was served: the service has acted, the response never
//! arrives, and the caller drops the handler future, exactly as a Lambda sandbox that dies mid-invocation. It
//! can also *hold* the k-th response until released: an invocation paused at that point (a slow network, a
//! frozen sandbox) while another one runs.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;

/// Counts requests and withholds the response of the k-th one.
#[derive(Debug)]
pub struct Gate {
    requests: AtomicU64,
    /// 0: never crash.
    crash_at: AtomicU64,
    crashed: watch::Sender<bool>,
    /// 0: never hold.
    hold_at: AtomicU64,
    /// Whether a response is being held now.
    held: watch::Sender<bool>,
    release: tokio::sync::Notify,
    /// Requests by `X-Amz-Target` (the JSON protocols' operation, e.g. `DynamoDB_20120810.PutItem`).
    targets: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    /// Requests in flight now and at most, by endpoint (`host:port`).
    in_flight: std::sync::Mutex<std::collections::BTreeMap<String, (u64, u64)>>,
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            requests: AtomicU64::new(0),
            crash_at: AtomicU64::new(0),
            crashed: watch::Sender::new(false),
            hold_at: AtomicU64::new(0),
            held: watch::Sender::new(false),
            release: tokio::sync::Notify::new(),
            targets: std::sync::Mutex::default(),
            in_flight: std::sync::Mutex::default(),
        }
    }
}

impl Gate {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Requests sent so far (every attempt, SDK retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Requests so far by `X-Amz-Target` operation (requests without one are not counted here).
    pub fn targets(&self) -> std::collections::BTreeMap<String, u64> {
        self.targets.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The most requests that were in flight at once, by endpoint (`host:port`): the connections a client
    /// that keeps them alive needs.
    pub fn peak_in_flight(&self) -> std::collections::BTreeMap<String, u64> {
        let in_flight = self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        in_flight.iter().map(|(endpoint, (_, peak))| (endpoint.clone(), *peak)).collect()
    }

    fn started(&self, endpoint: &str) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (now, peak) = in_flight.entry(endpoint.to_owned()).or_default();
        *now += 1;
        *peak = (*peak).max(*now);
    }

    fn ended(&self, endpoint: &str) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((now, _)) = in_flight.get_mut(endpoint) {
            *now = now.saturating_sub(1);
        }
    }

    /// Crash after the `k`-th request from now is served (`None`: never).
    pub fn crash_after(&self, k: Option<u64>) {
        let at = k.map_or(0, |k| self.requests() + k);
        self.crash_at.store(at, Ordering::SeqCst);
        self.crashed.send_replace(false);
    }

    /// Hold the response of the `k`-th request from now until [`Gate::release`] (`None`: never).
    pub fn hold_after(&self, k: Option<u64>) {
        let at = k.map_or(0, |k| self.requests() + k);
        self.hold_at.store(at, Ordering::SeqCst);
    }

    /// Resolves once a response is being held.
    pub async fn holding(&self) {
        let mut held = self.held.subscribe();
        let _ = held.wait_for(|h| *h).await;
    }

    /// Lets the held response through.
    pub fn release(&self) {
        self.hold_at.store(0, Ordering::SeqCst);
        self.release.notify_one();
    }

    /// Runs `work` until it ends or the gate crashes it; `None` when it was crashed (and dropped).
    pub async fn run<F: Future>(&self, work: F) -> Option<F::Output> {
        let mut crashed = self.crashed.subscribe();
        tokio::select! {
            biased;
            seen = crashed.wait_for(|c| *c) => {
                drop(seen); // releases the channel's read lock before writing it
                self.crashed.send_replace(false); // the next invocation starts afresh
                None
            }
            output = work => Some(output),
        }
    }

    fn connector(self: &Arc<Self>, inner: SharedHttpConnector) -> SharedHttpConnector {
        SharedHttpConnector::new(Gated { inner, gate: Arc::clone(self) })
    }

    /// A plain-HTTP client (loopback endpoints) whose requests pass this gate.
    pub fn http_client(self: &Arc<Self>) -> SharedHttpClient {
        let inner = autopilot_shared::clients::loopback_http_client();
        let gate = Arc::clone(self);
        http_client_fn(move |settings, components| gate.connector(inner.http_connector(settings, components)))
    }
}

#[derive(Debug)]
struct Gated {
    inner: SharedHttpConnector,
    gate: Arc<Gate>,
}

impl HttpConnector for Gated {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let n = self.gate.requests.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(target) = request.headers().get("x-amz-target") {
            let mut targets = self.gate.targets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *targets.entry(target.to_owned()).or_default() += 1;
        }
        let endpoint = request.uri().split('/').nth(2).unwrap_or_default().to_owned();
        self.gate.started(&endpoint);
        let crash = n == self.gate.crash_at.load(Ordering::SeqCst);
        let hold = n == self.gate.hold_at.load(Ordering::SeqCst);
        let served = self.inner.call(request);
        let gate = Arc::clone(&self.gate);
        HttpConnectorFuture::new(async move {
            let response = served.await;
            gate.ended(&endpoint);
            if hold {
                let released = gate.release.notified();
                gate.held.send_replace(true);
                released.await;
                gate.held.send_replace(false);
            }
            if crash {
                // The service has answered; the caller never learns it.
                gate.crashed.send_replace(true);
                std::future::pending::<()>().await;
            }
            response
        })
    }
}

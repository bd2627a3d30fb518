//! Test support: an embedded DynamoDB (`dynoxide-rs`) served over HTTP on an ephemeral loopback port, reached
//! through the real `aws-sdk-dynamodb` client, with the ledger table created by `ledger::table::create_table`.

#![allow(dead_code)] // each test crate uses part of this module

use autopilot_shared::ledger::{Ledger, table};
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use chrono::{DateTime, TimeZone, Utc};

pub const TABLE: &str = "euc-autopilot-ledger";

/// A running embedded DynamoDB; the server stops when this is dropped.
pub struct EmbeddedDynamo {
    pub endpoint: String,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

pub async fn start_dynamo() -> EmbeddedDynamo {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let endpoint = format!("http://{}", listener.local_addr().expect("local addr"));
    let database = dynoxide::Database::memory().expect("in-memory database");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = dynoxide::server::serve_with_shutdown(listener, database, async move {
            let _ = stopped.await;
        })
        .await;
    });
    EmbeddedDynamo { endpoint, _shutdown: stop }
}

pub fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-central-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .http_client(autopilot_shared::clients::loopback_http_client())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Counts the requests a client sends (each attempt of each operation).
#[derive(Debug, Clone, Default)]
pub struct RequestCount(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl RequestCount {
    pub fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl aws_sdk_dynamodb::config::Intercept for RequestCount {
    fn name(&self) -> &'static str {
        "RequestCount"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

/// A ledger on a fresh embedded DynamoDB with the table created, and the count of the requests it sends.
pub async fn counted_ledger() -> (Ledger, EmbeddedDynamo, RequestCount) {
    let dynamo = start_dynamo().await;
    let count = RequestCount::default();
    let config = dynamodb_client(&dynamo.endpoint).config().to_builder().interceptor(count.clone()).build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    table::create_table(&client, TABLE).await.expect("create ledger table");
    (Ledger::new(client, TABLE), dynamo, count)
}

/// A ledger on a fresh embedded DynamoDB with the table created.
pub async fn ledger() -> (Ledger, EmbeddedDynamo) {
    let dynamo = start_dynamo().await;
    let client = dynamodb_client(&dynamo.endpoint);
    table::create_table(&client, TABLE).await.expect("create ledger table");
    (Ledger::new(client, TABLE), dynamo)
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 6, 0, 0).single().expect("valid instant")
}

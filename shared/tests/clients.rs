//! The clients module against loopback servers: the Thin Client `api.` host prefix is removed for a custom
//! endpoint, so a Thin Client call really reaches a server on 127.0.0.1; DynamoDB goes through the same
//! configuration to embedded DynamoDB.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test crate: a failed expectation is a failed test

mod common;

use autopilot_shared::clients::{AwsClients, retry_config};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use axum::Router;
use axum::extract::{Request, State};
use axum::response::IntoResponse;
use std::sync::{Arc, Mutex};

type Seen = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

async fn record(State(seen): State<Seen>, request: Request) -> impl IntoResponse {
    let host = request.headers().get("host").and_then(|h| h.to_str().ok()).map(str::to_owned);
    seen.lock().expect("lock").push((request.method().to_string(), request.uri().to_string(), host));
    (
        [("content-type", "application/json")],
        r#"{"environments":[{"id":"env-1","name":"lobby","desiredSoftwareSetId":"42"}]}"#,
    )
}

fn sdk_config(endpoint: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-central-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new("test", "test", None, None, "test")))
        .endpoint_url(endpoint)
        .retry_config(retry_config())
        .http_client(autopilot_shared::clients::loopback_http_client())
        .build()
}

#[tokio::test]
async fn a_thin_client_call_reaches_a_loopback_server_despite_the_api_host_prefix() {
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let app = Router::new().fallback(record).with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let clients = AwsClients::from_sdk_config(&sdk_config(&endpoint));
    let output = clients.thinclient.list_environments().send().await.expect("ListEnvironments over loopback");
    let environments = output.environments();
    assert_eq!(environments.len(), 1);
    assert_eq!(environments[0].desired_software_set_id(), Some("42"));
    let seen_now = seen.lock().expect("lock").clone();
    assert_eq!(seen_now.len(), 1);
    let (method, uri, host) = &seen_now[0];
    assert_eq!((method.as_str(), uri.as_str()), ("GET", "/environments"));
    assert_eq!(host.as_deref(), endpoint.strip_prefix("http://"), "the Host header must not carry api.");

    // without the fix the SDK sends the request to api.127.0.0.1, which does not resolve
    let unfixed = aws_sdk_workspacesthinclient::Client::new(&sdk_config(&endpoint));
    let failed = unfixed.list_environments().customize().config_override(
        aws_sdk_workspacesthinclient::config::Builder::default()
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
            .timeout_config(autopilot_shared::clients::timeouts_for(std::time::Duration::from_secs(5))),
    );
    assert!(failed.send().await.is_err(), "the api. prefix should break an unfixed client");
    assert_eq!(seen.lock().expect("lock").len(), 1, "the unfixed client must not have reached the server");

    // the deadline-derived clients keep the fix
    let short = clients.with_deadline(std::time::Duration::from_secs(10));
    assert!(short.thinclient.list_environments().send().await.is_ok());
}

#[tokio::test]
async fn dynamodb_uses_the_same_configuration() {
    let dynamo = common::start_dynamo().await;
    let clients = AwsClients::from_sdk_config(&sdk_config(&dynamo.endpoint));
    autopilot_shared::ledger::table::create_table(&clients.dynamodb, common::TABLE).await.expect("create table");
    // creating it again is harmless
    autopilot_shared::ledger::table::create_table(&clients.dynamodb, common::TABLE).await.expect("create again");
    let tables = clients.dynamodb.list_tables().send().await.expect("list tables");
    assert_eq!(tables.table_names(), [common::TABLE]);
    let description = clients.dynamodb.describe_table().table_name(common::TABLE).send().await.expect("describe");
    let gsi = description.table().map(|t| t.global_secondary_indexes().len());
    assert_eq!(gsi, Some(1));
}

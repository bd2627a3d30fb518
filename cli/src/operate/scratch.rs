//! Where `autopilot plan` lets the functions write: a scratch ledger (the embedded DynamoDB in process, holding a
//! copy of the deployed ledger's memory) and a scratch event bus that keeps every event it is sent and sends
//! nothing on. Neither needs a server, so the operator commands build without the simulated estate.

use crate::error::CliError;
use autopilot_shared::ledger::embedded::EmbeddedDynamo;
use autopilot_shared::ledger::{Ledger, table};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, PoisonError};

/// The scratch ledger's table.
pub const TABLE: &str = "euc-autopilot-plan";

/// The scratch ledger and event bus of one plan.
#[derive(Debug)]
pub struct Scratch {
    pub ledger: Ledger,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    events: Arc<Mutex<Vec<Value>>>,
}

impl Scratch {
    /// An empty scratch ledger (the table created) and an empty bus, in `region`.
    pub async fn new(region: &str) -> Result<Self, CliError> {
        let database = EmbeddedDynamo::memory().map_err(|e| CliError::Scratch(e.to_string()))?;
        let dynamodb = database.client(region, "plan");
        table::create_table(&dynamodb, TABLE).await.map_err(|e| CliError::Scratch(e.to_string()))?;
        let events = Arc::new(Mutex::new(Vec::new()));
        let config = aws_sdk_eventbridge::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .credentials_provider(aws_sdk_eventbridge::config::Credentials::new("plan", "plan", None, None, "plan"))
            .endpoint_url("http://scratch.events")
            .http_client(SharedHttpClient::new(Keep(events.clone())))
            .build();
        Ok(Self {
            ledger: Ledger::new(dynamodb.clone(), TABLE),
            dynamodb,
            eventbridge: aws_sdk_eventbridge::Client::from_conf(config),
            events,
        })
    }

    /// How many events were sent so far.
    pub fn event_count(&self) -> usize {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// The events sent after the first `from`, as `{"detail-type", "detail"}`.
    pub fn events_since(&self, from: usize) -> Vec<Value> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(from..)
            .map(<[Value]>::to_vec)
            .unwrap_or_default()
    }
}

/// The scratch bus: keeps each `PutEvents` entry and answers that all were put.
#[derive(Debug, Clone)]
struct Keep(Arc<Mutex<Vec<Value>>>);

impl HttpClient for Keep {
    fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for Keep {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let input: Value = serde_json::from_slice(request.body().bytes().unwrap_or_default()).unwrap_or_default();
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut ids = Vec::new();
        for entry in input["Entries"].as_array().into_iter().flatten() {
            let detail = entry["Detail"].as_str().and_then(|d| serde_json::from_str(d).ok()).unwrap_or(Value::Null);
            kept.push(json!({ "detail-type": entry["DetailType"], "detail": detail }));
            ids.push(json!({ "EventId": format!("plan-{}", kept.len()) }));
        }
        let body = json!({ "FailedEntryCount": 0, "Entries": ids }).to_string();
        let other = |e: Box<dyn std::error::Error + Send + Sync>| ConnectorError::other(e, None);
        let response = http::Response::builder()
            .status(200)
            .header("content-type", "application/x-amz-json-1.1")
            .body(SdkBody::from(body))
            .map_err(|e| other(e.into()))
            .and_then(|response| HttpResponse::try_from(response).map_err(|e| other(e.into())));
        HttpConnectorFuture::ready(response)
    }
}

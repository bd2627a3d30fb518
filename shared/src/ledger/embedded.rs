//! The ledger table in process (feature `embedded`, never in a Lambda binary): dynoxide — SQLite-backed, the real
//! DynamoDB JSON protocol — answering DynamoDB requests without a server. [`EmbeddedDynamo::client`] is an
//! `aws-sdk-dynamodb` client whose HTTP connector hands each request to it in process (`autopilot plan` keeps its
//! scratch copy of the ledger so); the local estate's DynamoDB front answers its HTTP requests with
//! [`EmbeddedDynamo::answer`], after authorising them.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// The prefix of DynamoDB's `X-Amz-Target` header.
pub const TARGET_PREFIX: &str = "DynamoDB_20120810.";
/// The content type DynamoDB answers with.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// A DynamoDB answer: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    /// An error answer (`__type` with the coral namespace, as DynamoDB sends it).
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        let body = serde_json::json!({ "__type": format!("com.amazon.coral.service#{code}"), "Message": message });
        Self { status, body: body.to_string() }
    }
}

/// Why the embedded database cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("the embedded DynamoDB cannot be opened: {0}")]
pub struct OpenError(String);

/// An in-memory DynamoDB. Cheap to clone; clones share the data.
#[derive(Clone)]
pub struct EmbeddedDynamo {
    database: dynoxide::Database,
}

impl std::fmt::Debug for EmbeddedDynamo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedDynamo").finish_non_exhaustive()
    }
}

/// One operation: the request read from `body`, run, the response written.
fn run<Req: DeserializeOwned, Resp: Serialize>(
    body: &[u8],
    operation: impl FnOnce(Req) -> dynoxide::Result<Resp>,
) -> Answer {
    let request = match serde_json::from_slice::<Req>(body) {
        Ok(request) => request,
        Err(error) => return Answer::error(400, "SerializationException", &error.to_string()),
    };
    match operation(request) {
        Ok(response) => match serde_json::to_string(&response) {
            Ok(body) => Answer { status: 200, body },
            Err(error) => Answer::error(500, "InternalServerError", &error.to_string()),
        },
        Err(error) => Answer { status: error.status_code(), body: error.to_json() },
    }
}

impl EmbeddedDynamo {
    /// A new, empty database in memory.
    pub fn memory() -> Result<Self, OpenError> {
        dynoxide::Database::memory().map(|database| Self { database }).map_err(|e| OpenError(e.to_string()))
    }

    /// Answers one DynamoDB request: its operation (the `X-Amz-Target` after [`TARGET_PREFIX`]) and JSON body.
    pub fn answer(&self, operation: &str, body: &[u8]) -> Answer {
        let db = &self.database;
        match operation {
            "CreateTable" => run(body, |r| db.create_table(r)),
            "DescribeTable" => run(body, |r| db.describe_table(r)),
            "ListTables" => run(body, |r| db.list_tables(r)),
            "UpdateTimeToLive" => run(body, |r| db.update_time_to_live(r)),
            "DescribeTimeToLive" => run(body, |r| db.describe_time_to_live(r)),
            "PutItem" => run(body, |r| db.put_item(r)),
            "GetItem" => run(body, |r| db.get_item(r)),
            "DeleteItem" => run(body, |r| db.delete_item(r)),
            "UpdateItem" => run(body, |r| db.update_item(r)),
            "Query" => run(body, |r| db.query(r)),
            "Scan" => run(body, |r| db.scan(r)),
            "BatchGetItem" => run(body, |r| db.batch_get_item(r)),
            "BatchWriteItem" => run(body, |r| db.batch_write_item(r)),
            "TransactWriteItems" => run(body, |r| db.transact_write_items(r)),
            "TransactGetItems" => run(body, |r| db.transact_get_items(r)),
            other => Answer::error(400, "UnknownOperationException", &format!("{other} is not served here")),
        }
    }

    /// An SDK client for this database in process, in `region`, signed as `access_key` (requests are answered by
    /// [`Self::answer`], unauthorised).
    pub fn client(&self, region: &str, access_key: &str) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                access_key, "local", None, None, "embedded",
            ))
            .endpoint_url("http://embedded.dynamodb")
            .http_client(self.http_client())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    /// The HTTP client of [`Self::client`]: every request answered in process.
    pub fn http_client(&self) -> SharedHttpClient {
        SharedHttpClient::new(InProcess(Arc::new(self.clone())))
    }
}

/// The SDK's HTTP client and connector for an [`EmbeddedDynamo`].
#[derive(Debug, Clone)]
struct InProcess(Arc<EmbeddedDynamo>);

impl HttpClient for InProcess {
    fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for InProcess {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let operation =
            request.headers().get("x-amz-target").and_then(|t| t.strip_prefix(TARGET_PREFIX)).unwrap_or_default();
        let answer = self.0.answer(operation, request.body().bytes().unwrap_or_default());
        let other = |e: Box<dyn std::error::Error + Send + Sync>| ConnectorError::other(e, None);
        let response = http::Response::builder()
            .status(answer.status)
            .header("content-type", CONTENT_TYPE)
            .body(SdkBody::from(answer.body))
            .map_err(|e| other(e.into()))
            .and_then(|response| HttpResponse::try_from(response).map_err(|e| other(e.into())));
        HttpConnectorFuture::ready(response)
    }
}

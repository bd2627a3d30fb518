//! Where the CPU of one AWS request goes, one layer at a time: the bare SDK over a canned response in
//! process; with our pacer's HTTP wrapper; with our interceptors, retry classifiers and timeouts (the clients
//! the functions build, [`AwsClients`]); then over a kept-alive loopback connection to the simulator and the
//! embedded DynamoDB — the bare SDK there is **the floor F** every other figure is judged against — and our
//! clients there, on a current-thread and on a multi-thread runtime.
//!
//! Each layer runs on a runtime of its own on a thread of its own, sends [`WARM_UP`] requests and then
//! `requests` PutItem (DynamoDB) and `requests` UpdateFleet (AppStream) one after another; its CPU is the CPU
//! of that runtime's threads (the servers answer on other threads), per request. The connections the servers
//! accepted during each layer are counted too: with keep-alive working, one.

use super::BenchError;
use autopilot_shared::clients::{self, AwsClients};
use autopilot_shared::pacing::Pacer;
use autopilot_sim::LocalEstate;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use serde::Serialize;
use std::time::Duration;

/// Requests sent before measuring, per operation (connections opened, caches filled).
pub const WARM_UP: u32 = 50;

/// One layer's figures for one operation.
#[derive(Debug, Clone, Serialize)]
pub struct LayerFigures {
    pub layer: &'static str,
    pub operation: &'static str,
    pub requests: u32,
    /// CPU of the layer's runtime threads per request, microseconds.
    pub cpu_us: f64,
    /// TCP connections the servers accepted while the layer ran (warm-up included; 0 for the canned layers).
    pub connections: u64,
}

/// The clients of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clients {
    /// `Client::new` on a plain configuration: the SDK's defaults.
    Bare,
    /// The same, sending through our pacer's HTTP wrapper.
    Paced,
    /// [`AwsClients::from_sdk_config`]: the pacer, our interceptors and retry classifiers, our retry and timeout
    /// configuration.
    Ours,
}

/// Where a layer's requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// A connector in process that answers at once with the operation's empty answer.
    Canned,
    /// The simulator and the embedded DynamoDB over loopback HTTP/1.1, connections kept alive.
    Loopback,
}

/// The runtime a layer runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    CurrentThread,
    /// Two worker threads: what `#[tokio::main]` gives on a 2-vCPU Lambda.
    MultiThread,
}

/// One layer: its name in the table, its clients, transport and runtime.
#[derive(Debug, Clone, Copy)]
struct Layer {
    name: &'static str,
    clients: Clients,
    transport: Transport,
    flavour: Flavour,
}

/// The layers, in the order the table prints them; [`FLOOR`] is the floor's name.
const LAYERS: [Layer; 6] = [
    Layer {
        name: "1 bare SDK, canned answer",
        clients: Clients::Bare,
        transport: Transport::Canned,
        flavour: Flavour::CurrentThread,
    },
    Layer {
        name: "2 + pacer's HTTP wrapper",
        clients: Clients::Paced,
        transport: Transport::Canned,
        flavour: Flavour::CurrentThread,
    },
    Layer {
        name: "3 + our interceptors, classifiers, timeouts",
        clients: Clients::Ours,
        transport: Transport::Canned,
        flavour: Flavour::CurrentThread,
    },
    Layer { name: FLOOR, clients: Clients::Bare, transport: Transport::Loopback, flavour: Flavour::CurrentThread },
    Layer {
        name: "5 our clients, loopback, current-thread",
        clients: Clients::Ours,
        transport: Transport::Loopback,
        flavour: Flavour::CurrentThread,
    },
    Layer {
        name: "6 our clients, loopback, multi-thread",
        clients: Clients::Ours,
        transport: Transport::Loopback,
        flavour: Flavour::MultiThread,
    },
];

/// The floor F: the bare SDK over a kept-alive loopback connection, current-thread runtime.
pub const FLOOR: &str = "4 bare SDK, loopback kept alive (F)";

/// Every layer, `requests` of each operation. Needs a started estate with at least one fleet.
pub async fn layers(local: &LocalEstate, requests: u32) -> Result<Vec<LayerFigures>, BenchError> {
    let fleet = local
        .simulator
        .with_world(|w| w.fleets.keys().next().cloned())
        .ok_or_else(|| BenchError::Layer { layer: "setup", message: "the estate has no fleet".into() })?;
    let mut figures = Vec::new();
    for layer in LAYERS {
        let before = local.connections();
        let target = Target {
            ledger: local.dynamo.endpoint.clone(),
            services: local.endpoint.clone(),
            region: local.region().to_owned(),
            table: autopilot_sim::dynamo::DEFAULT_TABLE.to_owned(),
            fleet: fleet.clone(),
        };
        let (sender, receiver) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("bench-layer".into())
            .spawn(move || {
                let _ = sender.send(run_layer(layer, &target, requests));
            })
            .map_err(BenchError::TickThread)?;
        let measured = receiver.await.map_err(|_| BenchError::TickThreadFailed)??;
        let after = local.connections();
        let connections = (after.0 - before.0) + (after.1 - before.1);
        for (operation, cpu) in measured {
            let cpu_us = cpu.as_secs_f64() * 1e6 / f64::from(requests.max(1));
            figures.push(LayerFigures { layer: layer.name, operation, requests, cpu_us, connections });
        }
    }
    Ok(figures)
}

/// Where the requests go.
#[derive(Debug, Clone)]
struct Target {
    ledger: String,
    services: String,
    region: String,
    table: String,
    fleet: String,
}

/// Runs one layer on this thread: CPU of `requests` PutItem, then of `requests` UpdateFleet.
fn run_layer(layer: Layer, target: &Target, requests: u32) -> Result<Vec<(&'static str, Duration)>, BenchError> {
    let workers = Workers::default();
    let runtime = match layer.flavour {
        Flavour::CurrentThread => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        Flavour::MultiThread => {
            let registry = workers.clone();
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .on_thread_start(move || registry.register())
                .enable_all()
                .build()
        }
    }
    .map_err(BenchError::Runtime)?;
    let fail = |operation: &'static str| {
        move |error: String| BenchError::Layer { layer: layer.name, message: format!("{operation}: {error}") }
    };
    runtime.block_on(async {
        let (dynamodb, appstream) = clients_of(layer, target);
        let put = async |i: u32| {
            dynamodb
                .put_item()
                .table_name(&target.table)
                .item("pk", AttributeValue::S("BENCH#layers".into()))
                .item("sk", AttributeValue::S(format!("{i:08}")))
                .send()
                .await
                .map(drop)
                .map_err(|e| clients_error(&e))
        };
        let update = async |i: u32| {
            appstream
                .update_fleet()
                .name(&target.fleet)
                .compute_capacity(
                    aws_sdk_appstream::types::ComputeCapacity::builder().desired_instances(2 + (i % 2) as i32).build(),
                )
                .send()
                .await
                .map(drop)
                .map_err(|e| clients_error(&e))
        };
        for i in 0..WARM_UP {
            put(i).await.map_err(fail("PutItem"))?;
            update(i).await.map_err(fail("UpdateFleet"))?;
        }
        let mut measured = Vec::new();
        let started = workers.cpu_now() + thread_cpu()?;
        for i in 0..requests {
            put(WARM_UP + i).await.map_err(fail("PutItem"))?;
        }
        let middle = workers.cpu_now() + thread_cpu()?;
        measured.push(("PutItem", middle.saturating_sub(started)));
        for i in 0..requests {
            update(WARM_UP + i).await.map_err(fail("UpdateFleet"))?;
        }
        let end = workers.cpu_now() + thread_cpu()?;
        measured.push(("UpdateFleet", end.saturating_sub(middle)));
        Ok(measured)
    })
}

fn thread_cpu() -> Result<Duration, BenchError> {
    super::tick::thread_cpu()
}

fn clients_error<E, R>(error: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> String
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    autopilot_shared::error::sdk_error_message(error)
}

/// The layer's DynamoDB and AppStream clients.
fn clients_of(layer: Layer, target: &Target) -> (aws_sdk_dynamodb::Client, aws_sdk_appstream::Client) {
    let http = match layer.transport {
        Transport::Canned => http_client_fn(|_, _| SharedHttpConnector::new(Canned)),
        Transport::Loopback => autopilot_shared::clients::loopback_http_client(),
    };
    let http: SharedHttpClient = match layer.clients {
        Clients::Paced => Pacer::new().http_client(http),
        Clients::Bare | Clients::Ours => http,
    };
    let config = |endpoint: &str| {
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(target.region.clone()))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                autopilot_sim::Identity::Admin.access_key(),
                "local",
                None,
                None,
                "autopilot-bench",
            )))
            .endpoint_url(endpoint)
            .http_client(http.clone());
        match layer.clients {
            Clients::Ours => config
                .retry_config(clients::retry_config())
                .timeout_config(clients::timeouts_for(clients::MAX_OPERATION_TIMEOUT + clients::DEADLINE_RESERVE))
                .build(),
            Clients::Bare | Clients::Paced => config.build(),
        }
    };
    match layer.clients {
        Clients::Ours => (
            AwsClients::from_sdk_config(&config(&target.ledger)).dynamodb,
            AwsClients::from_sdk_config(&config(&target.services)).appstream,
        ),
        Clients::Bare | Clients::Paced => (
            aws_sdk_dynamodb::Client::new(&config(&target.ledger)),
            aws_sdk_appstream::Client::new(&config(&target.services)),
        ),
    }
}

/// Answers every request at once with the operation's empty answer: `{}` for DynamoDB (JSON 1.0, named by
/// `X-Amz-Target`), an empty CBOR map for AppStream (Smithy RPC v2 CBOR).
#[derive(Debug, Clone, Copy)]
struct Canned;

impl HttpConnector for Canned {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let json = request.headers().contains_key("x-amz-target");
        let (body, content_type): (&'static [u8], _) =
            if json { (b"{}", "application/x-amz-json-1.0") } else { (&[0xa0], "application/cbor") };
        let Ok(ok) = StatusCode::try_from(200_u16) else {
            return HttpConnectorFuture::ready(Err(ConnectorError::other("no status 200".into(), None)));
        };
        let mut response = HttpResponse::new(ok, SdkBody::from(body));
        response.headers_mut().insert("content-type", content_type);
        response.headers_mut().insert("x-amzn-requestid", "00000000-0000-4000-8000-000000000000");
        if !json {
            response.headers_mut().insert("smithy-protocol", "rpc-v2-cbor");
        }
        HttpConnectorFuture::ready(Ok(response))
    }
}

/// The worker threads of a multi-thread runtime, by thread id, so that their CPU time can be read from
/// `/proc/self/task/<tid>/schedstat` (time on CPU in nanoseconds) while they are parked.
#[derive(Debug, Clone, Default)]
struct Workers(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Workers {
    /// Called on each worker thread as it starts.
    fn register(&self) {
        if let Some(tid) = std::fs::read_link("/proc/thread-self")
            .ok()
            .and_then(|link| link.file_name().map(|n| n.to_string_lossy().into_owned()))
        {
            self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(tid);
        }
    }

    /// CPU time of every registered worker so far.
    fn cpu_now(&self) -> Duration {
        let tids = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let nanos: u64 = tids
            .iter()
            .filter_map(|tid| std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok())
            .filter_map(|stat| stat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
            .sum();
        Duration::from_nanos(nanos)
    }
}

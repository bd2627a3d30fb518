//! EUC Autopilot's simulated estate, for running without an AWS account: WorkSpaces (personal and Pools),
//! AppStream (WorkSpaces Applications) and WorkSpaces Thin Client on a virtual clock, over the wire protocols the
//! SDKs speak, with EventBridge `PutEvents` and Application Auto Scaling; IAM as `template.yaml` grants it; an
//! embedded DynamoDB; a local Lambda Runtime API. See `docs/local-estate.md`.
//!
//! - [`estate`]: the estate file format; [`generate`]: large estates; [`world`]: resources, state machines, demand;
//! - [`services`]: the operations; [`server`]: protocols, IAM, faults, admin API; [`wire`]: encodings;
//! - [`iam`]: identities and policies from `template.yaml`; [`dynamo`]: the embedded DynamoDB's HTTP front;
//! - [`calllog`]: the record of every call; [`rng`]: the one seeded random generator;
//! - [`runtime_api`]: a local Lambda Runtime API that runs the functions' release binaries as Lambda does.

pub mod calllog;
pub mod dynamo;
pub mod error;
pub mod estate;
pub mod generate;
pub mod iam;
pub mod organization;
pub mod rng;
pub mod runtime_api;
pub mod server;
pub mod services;
pub mod wire;
pub mod world;

pub use autopilot_shared::resource::Place;
pub use server::Simulator;

/// The simulator's virtual clock is the functions' clock in local runs.
impl autopilot_shared::clock::Clock for Simulator {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        Simulator::now(self)
    }
}

/// The account and region the sample events and the tests' estates use (the estate file's defaults).
pub fn default_place() -> Place {
    Place { account: estate::default_account(), region: estate::default_region() }
}

/// A schedule tick as EventBridge Scheduler delivers it, for `at`, in the default place.
pub fn tick_event(schedule: &str, at: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    tick_event_in(&default_place(), schedule, at)
}

/// A schedule tick as EventBridge Scheduler delivers it in `place` (the estate's account and region), for `at`.
pub fn tick_event_in(place: &Place, schedule: &str, at: chrono::DateTime<chrono::Utc>) -> serde_json::Value {
    let Place { account, region } = place;
    serde_json::json!({
        "version": "0",
        "id": format!("tick-{}-{}", schedule, at.timestamp()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": account,
        "time": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": region,
        "resources": [format!("arn:aws:scheduler:{region}:{account}:schedule/default/{schedule}")],
        "detail": {}
    })
}

/// [`cloudtrail_event_in`] in the default place.
pub fn cloudtrail_event(
    event_name: &str,
    request_parameters: serde_json::Value,
    at: chrono::DateTime<chrono::Utc>,
    actor: &str,
) -> serde_json::Value {
    cloudtrail_event_in(&default_place(), event_name, request_parameters, at, actor)
}

/// A CloudTrail `AWS API Call via CloudTrail` event for an AppStream, WorkSpaces or Thin Client call made in
/// `place` by `actor` (an assumed-role ARN) at `at`, as EventBridge delivers it. The service is the call's (by
/// its name; a `TagResource` / `UntagResource` by the service its `resourceArn` names).
pub fn cloudtrail_event_in(
    place: &Place,
    event_name: &str,
    request_parameters: serde_json::Value,
    at: chrono::DateTime<chrono::Utc>,
    actor: &str,
) -> serde_json::Value {
    let Place { account, region } = place;
    let time = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let id = format!("ct-{event_name}-{}-{}", at.timestamp(), request_parameters);
    let id = autopilot_shared::ledger::keys::sha256_hex(id.as_bytes())[..32].to_owned();
    let arn_service = request_parameters.get("resourceArn").and_then(serde_json::Value::as_str).and_then(|arn| {
        arn.split(':').nth(2).filter(|service| ["appstream", "thinclient", "workspaces"].contains(service))
    });
    let service = match (event_name, arn_service) {
        ("TagResource" | "UntagResource", Some(service)) => service,
        ("CreateTags" | "DeleteTags", _) => "workspaces",
        (name, _) if name.contains("Workspace") => "workspaces",
        _ => "appstream",
    };
    serde_json::json!({
        "version": "0",
        "id": id,
        "detail-type": autopilot_shared::events::CLOUDTRAIL_DETAIL_TYPE,
        "source": format!("aws.{service}"),
        "account": account,
        "time": time,
        "region": region,
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": { "type": "AssumedRole", "arn": actor, "accountId": account },
            "eventTime": time,
            "eventSource": format!("{service}.amazonaws.com"),
            "eventName": event_name,
            "awsRegion": region,
            "requestParameters": request_parameters,
            "responseElements": null,
            "eventID": id,
            "eventType": "AwsApiCall"
        }
    })
}

/// The identity simulated people act as, in the default place.
pub const PERSON: &str = "arn:aws:sts::123456789012:assumed-role/EUCAdmin/alice";

/// The identity the person `name` acts as in `place`: an administrator's assumed role (`EUCAdmin/<name>`).
pub fn person(place: &Place, name: &str) -> String {
    format!("arn:aws:sts::{}:assumed-role/EUCAdmin/{name}", place.account)
}

use std::net::SocketAddr;

/// The last line `autopilot serve` prints once it serves: a shell comment, so its whole output can be `eval`ed
/// or `source`d.
pub const READY: &str = "# ready: serving until interrupted";

/// The region of the sample and demo estates (an estate file may name another: [`LocalEstate::region`]).
pub const LOCAL_REGION: &str = "eu-central-1";

/// Every service the simulator answers, with the variable suffix `AWS_ENDPOINT_URL_<SERVICE>` uses.
pub const SIMULATED_SERVICES: [&str; 7] = [
    "WORKSPACES",
    "APPSTREAM",
    "WORKSPACES_THIN_CLIENT",
    "EVENTBRIDGE",
    "APPLICATION_AUTO_SCALING",
    "STS",
    "ORGANIZATIONS",
];

/// Who a set of local clients signs its requests as (the access key of their credentials; see [`iam`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// A function's execution role, as `template.yaml` defines it (by the function's name: `pool-scaler`, …).
    Function(&'static str),
    /// The `OperatorPolicy` of `template.yaml` (`autopilot plan | audit | config`).
    Operator,
    /// An administrator: anything is allowed (test set-up, the simulated people).
    Admin,
}

impl Identity {
    /// The access key id that names this identity to the local estate.
    pub fn access_key(self) -> &'static str {
        match self {
            Identity::Function(name) => name,
            Identity::Operator => iam::OPERATOR,
            Identity::Admin => iam::ADMIN,
        }
    }
}

/// Why a local estate cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LocalEstateError {
    #[error(transparent)]
    Simulator(#[from] server::SimulatorError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Dynamo(#[from] dynamo::StartError),
    #[error("port {0} leaves none for DynamoDB, which takes the next one: choose a lower port, or 0 for free ones")]
    NoNextPort(u16),
}

/// A simulator and an embedded DynamoDB listening on loopback.
#[derive(Debug)]
pub struct LocalEstate {
    pub simulator: Simulator,
    pub endpoint: String,
    pub dynamo: dynamo::LocalDynamo,
    /// The estate's region: the functions' and the operator's clients sign for it, as they would on AWS.
    region: String,
    /// TCP connections the simulated services' endpoint has accepted so far.
    connections: Connections,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A count of the TCP connections a local server has accepted (keep-alive working: about one per client lane,
/// not one per request).
#[derive(Debug, Clone, Default)]
pub struct Connections(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl Connections {
    pub fn accepted(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `listener`, counting each connection it accepts here.
    pub fn counting(
        &self,
        listener: tokio::net::TcpListener,
    ) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = SocketAddr> {
        use axum::serve::ListenerExt;
        let count = self.0.clone();
        listener.tap_io(move |_| {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
    }
}

impl LocalEstate {
    /// Starts both servers. `port` 0 picks free ports; otherwise the simulator takes `port` and DynamoDB
    /// `port + 1`.
    pub async fn start(estate: &estate::Estate, seed: u64, port: u16) -> Result<Self, LocalEstateError> {
        let simulator = Simulator::new(estate, seed)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listen = |source| LocalEstateError::Listen { addr, source };
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(listen)?;
        let endpoint = format!("http://{}", listener.local_addr().map_err(listen)?);
        let dynamo_port = if port == 0 { 0 } else { port.checked_add(1).ok_or(LocalEstateError::NoNextPort(port))? };
        let dynamo = dynamo::start(
            SocketAddr::from(([127, 0, 0, 1], dynamo_port)),
            dynamo::DEFAULT_TABLE,
            simulator.authorizer(),
        )
        .await?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = simulator.router();
        let connections = Connections::default();
        let listener = connections.counting(listener);
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self { simulator, endpoint, dynamo, region: estate.region.clone(), connections, _stop: stop })
    }

    /// TCP connections accepted so far: (the simulated services, the ledger's DynamoDB).
    pub fn connections(&self) -> (u64, u64) {
        (self.connections.accepted(), self.dynamo.connections.accepted())
    }

    /// The estate's region (what `AWS_REGION` says to the functions and the operator).
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The names of the local stack's resources (table, project bus, role prefix).
    pub fn names(&self) -> iam::StackNames {
        self.simulator.authorizer().names.clone()
    }

    /// The product's SDK clients pointed at this estate, signed as an administrator: the simulator for the EUC
    /// services, EventBridge and Application Auto Scaling; the embedded DynamoDB for the ledger.
    pub fn clients(&self) -> autopilot_shared::clients::AwsClients {
        self.clients_as(Identity::Admin)
    }

    /// [`Self::clients`] signed as `identity`.
    pub fn clients_as(&self, identity: Identity) -> autopilot_shared::clients::AwsClients {
        self.clients_through(None, identity)
    }

    /// The SDK configuration of a client of `endpoint` signing as `identity`, sending through `http` when given.
    fn sdk_config(
        &self,
        endpoint: &str,
        http: Option<&aws_smithy_runtime_api::client::http::SharedHttpClient>,
        identity: Identity,
    ) -> aws_config::SdkConfig {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(self.region.clone()))
            .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
                aws_sdk_dynamodb::config::Credentials::new(
                    identity.access_key(),
                    "local",
                    None,
                    None,
                    "autopilot-local",
                ),
            ))
            .endpoint_url(endpoint)
            .retry_config(autopilot_shared::clients::retry_config())
            .timeout_config(autopilot_shared::clients::timeouts_for(std::time::Duration::from_secs(62)));
        config.http_client(http.cloned().unwrap_or_else(autopilot_shared::clients::loopback_http_client)).build()
    }

    /// [`Self::clients_as`], every request sent through `http` (e.g. a [`chaos::gate::Gate`]) when given.
    pub fn clients_through(
        &self,
        http: Option<aws_smithy_runtime_api::client::http::SharedHttpClient>,
        identity: Identity,
    ) -> autopilot_shared::clients::AwsClients {
        let mut clients = autopilot_shared::clients::AwsClients::from_sdk_config(&self.sdk_config(
            &self.endpoint,
            http.as_ref(),
            identity,
        ));
        clients.dynamodb =
            aws_sdk_dynamodb::Client::new(&self.sdk_config(&self.dynamo.endpoint, http.as_ref(), identity));
        clients
    }

    /// The clients of the accounts and regions a policy targets, for `identity`: it assumes the spoke roles
    /// through the simulator's STS, every request sent through `http` when given.
    pub fn shards_through(
        &self,
        http: Option<aws_smithy_runtime_api::client::http::SharedHttpClient>,
        identity: Identity,
    ) -> autopilot_shared::shard::Shards {
        let config = self.sdk_config(&self.endpoint, http.as_ref(), identity);
        autopilot_shared::shard::Shards::new(&config, autopilot_shared::clients::base_http_client(&config))
    }

    /// A function's dependencies wired to this estate, signed as its role (`function`: its name), with the
    /// simulator's virtual clock (every function takes the same [`autopilot_shared::runtime::Deps`]).
    pub fn deps_for(&self, function: &'static str) -> autopilot_shared::runtime::Deps {
        self.deps_through(None, Identity::Function(function))
    }

    /// The dependencies signed as `identity`, every request (ledger included) sent through `http` when given.
    pub fn deps_through(
        &self,
        http: Option<aws_smithy_runtime_api::client::http::SharedHttpClient>,
        identity: Identity,
    ) -> autopilot_shared::runtime::Deps {
        let aws = self.clients_through(http.clone(), identity);
        let shards = self.shards_through(http, identity);
        let names = self.names();
        autopilot_shared::runtime::Deps {
            shards,
            ledger: autopilot_shared::ledger::Ledger::new(aws.dynamodb.clone(), names.table.clone()),
            aws,
            clock: std::sync::Arc::new(self.simulator.clone()),
            config: autopilot_shared::runtime::Config {
                table: names.table,
                tag_prefix: autopilot_shared::policy::tags::DEFAULT_TAG_PREFIX.into(),
                force_dry_run: false,
                event_bus: Some(names.event_bus),
                own_role_name: names.role_prefix,
                region: self.region.clone(),
                account: Some(self.simulator.place().account),
            },
        }
    }

    /// The events of `detail_type` put on the estate's buses since the `from`-th event, as EventBridge delivers
    /// them to a rule's target (the estate's account and region in the envelope): how shard ticks a hub tick
    /// published reach the functions in simulations, benchmarks and tests.
    pub fn bus_events_since(&self, from: usize, detail_type: &str) -> Vec<serde_json::Value> {
        let place = self.simulator.place();
        self.simulator.with_world(|w| {
            w.events
                .get(from..)
                .unwrap_or_default()
                .iter()
                .filter(|e| e.detail_type == detail_type)
                .map(|e| {
                    serde_json::json!({
                        "version": "0", "id": e.event_id, "detail-type": e.detail_type, "source": e.source,
                        "account": place.account, "time": e.at, "region": place.region, "resources": [],
                        "detail": e.detail,
                    })
                })
                .collect()
        })
    }

    /// How many events the estate's buses have taken so far.
    pub fn bus_event_count(&self) -> usize {
        self.simulator.with_world(|w| w.events.len())
    }

    /// The ledger on the embedded DynamoDB, as an administrator.
    pub fn ledger(&self) -> autopilot_shared::ledger::Ledger {
        autopilot_shared::ledger::Ledger::new(self.clients().dynamodb, dynamo::DEFAULT_TABLE)
    }

    /// The `export NAME=value` lines `autopilot serve` prints: [`Self::env`] in shell form.
    pub fn env_lines(&self) -> Vec<String> {
        self.env().into_iter().map(|(name, value)| format!("export {name}={value}")).collect()
    }

    /// The environment an operator command or any AWS client (the AWS CLI, boto3, the SDKs) needs to use this
    /// estate instead of AWS, signed as the operator: [`Self::env_as`] with [`Identity::Operator`].
    pub fn env(&self) -> Vec<(String, String)> {
        self.env_as(Identity::Operator)
    }

    /// The environment of a process that uses this estate as `identity`: `AWS_ENDPOINT_URL_<SERVICE>` for
    /// every simulated service and DynamoDB, the region (`AWS_REGION` for the SDKs, `AWS_DEFAULT_REGION` for
    /// the AWS CLI), no Thin Client host prefix (`AWS_DISABLE_HOST_PREFIX_INJECTION`: the CLI and boto3 would
    /// send to `api.127.0.0.1`), credentials naming the identity, the stack's table, bus and role prefix, and
    /// the estate's clock (`AUTOPILOT_CLOCK_URL`: the functions and operator commands take "now" from it).
    pub fn env_as(&self, identity: Identity) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> =
            SIMULATED_SERVICES.iter().map(|s| (format!("AWS_ENDPOINT_URL_{s}"), self.endpoint.clone())).collect();
        vars.insert(3, ("AWS_ENDPOINT_URL_DYNAMODB".into(), self.dynamo.endpoint.clone()));
        let names = self.names();
        for (name, value) in [
            ("AWS_REGION", self.region.as_str()),
            ("AWS_DEFAULT_REGION", self.region.as_str()),
            ("AWS_DISABLE_HOST_PREFIX_INJECTION", "true"),
            ("AWS_ACCESS_KEY_ID", identity.access_key()),
            ("AWS_SECRET_ACCESS_KEY", "local"),
            ("AUTOPILOT_TABLE", names.table.as_str()),
            ("AUTOPILOT_EVENT_BUS", names.event_bus.as_str()),
            ("AUTOPILOT_ROLE_NAME", names.role_prefix.as_str()),
        ] {
            vars.push((name.into(), value.into()));
        }
        vars.push((autopilot_shared::clock::CLOCK_URL_VAR.into(), format!("{}/_sim/clock", self.endpoint)));
        vars
    }
}

//! The simulator's HTTP front: one listener for WorkSpaces (awsJson1_1), AppStream (Smithy RPC v2 CBOR and
//! awsJson1_1), Thin Client (restJson1) and EventBridge (awsJson1_1), plus an admin API under `/_sim/` for
//! clock control, the call log and captured events. Every request is authorised first, as AWS does, against
//! the policy of the identity its SigV4 credential names ([`crate::iam`]; signatures themselves are not
//! verified). Faults from the estate (throttling per operation, 5xx rates, latency) are applied next, before
//! the operation runs.

use crate::calllog::{self, CallRecord};
use crate::error::ApiError;
use crate::estate::Estate;
use crate::iam::{self, Authorizer, Refusal, request::ServiceRequest};
use crate::services;
use crate::wire;
use crate::world::World;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// Which wire protocol a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    AwsJson,
    Cbor,
    RestJson,
}

/// A token bucket in wall-clock time.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug)]
struct SimState {
    world: World,
    log: Vec<CallRecord>,
    buckets: HashMap<String, Bucket>,
    started: Instant,
    /// When set, the virtual clock follows the wall clock from this pair (wall instant, virtual instant).
    realtime: Option<(Instant, DateTime<Utc>)>,
}

/// Why a simulator cannot be made from an estate.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error(transparent)]
    World(#[from] crate::world::WorldError),
    #[error("the local identities cannot be built from template.yaml: {0}")]
    Identities(#[source] crate::iam::IamError),
}

/// A running simulated estate. Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct Simulator {
    state: Arc<Mutex<SimState>>,
    authorizer: Arc<Authorizer>,
}

impl Simulator {
    pub fn new(estate: &Estate, seed: u64) -> Result<Self, SimulatorError> {
        let world = World::from_estate(estate, seed)?;
        let authorizer = Authorizer::local(
            &estate.account,
            &estate.region,
            crate::dynamo::DEFAULT_TABLE,
            &estate.export_role_arns(),
            estate.organization.as_ref().map(|o| o.id.as_str()),
        )
        .and_then(|authorizer| {
            // The spoke roles serve every region the estate places resources in (spoke.yaml's `Regions`).
            authorizer.with_spokes(&estate.spokes, &world.regions(), &estate.export_role_arns())
        })
        .map_err(SimulatorError::Identities)?;
        Ok(Self {
            state: Arc::new(Mutex::new(SimState {
                world,
                log: Vec::new(),
                buckets: HashMap::new(),
                started: Instant::now(),
                realtime: None,
            })),
            authorizer: Arc::new(authorizer),
        })
    }

    /// The identities requests are authorised as, and every authorisation decided (shared with the embedded
    /// DynamoDB of the same estate).
    pub fn authorizer(&self) -> Arc<Authorizer> {
        self.authorizer.clone()
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((wall, virtual_start)) = state.realtime {
            let to = virtual_start + Duration::from_std(wall.elapsed()).unwrap_or_default();
            state.world.advance_to(to);
        }
        state
    }

    /// From now on the virtual clock moves with the wall clock (one second a second) from where it stands
    /// (`autopilot serve --realtime`); `/_sim/advance` still jumps ahead.
    pub fn follow_wall_clock(&self) {
        let mut state = self.lock();
        let now = state.world.now;
        state.realtime = Some((Instant::now(), now));
    }

    /// The virtual time.
    pub fn now(&self) -> DateTime<Utc> {
        self.lock().world.now
    }

    /// Moves virtual time forward by `by` (state machines and demand advance minute by minute).
    pub fn advance(&self, by: Duration) -> DateTime<Utc> {
        let mut state = self.lock();
        let to = state.world.now + by;
        state.world.advance_to(to);
        reanchor(&mut state);
        state.world.now
    }

    /// Moves virtual time to `to` (never backwards).
    pub fn advance_to(&self, to: DateTime<Utc>) -> DateTime<Utc> {
        let mut state = self.lock();
        state.world.advance_to(to);
        reanchor(&mut state);
        state.world.now
    }

    /// Reads the world.
    pub fn with_world<R>(&self, f: impl FnOnce(&World) -> R) -> R {
        f(&self.lock().world)
    }

    /// Changes the world directly (test set-up).
    pub fn with_world_mut<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        f(&mut self.lock().world)
    }

    /// Every call answered so far.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.lock().log.clone()
    }

    /// How many calls have been answered so far.
    pub fn call_count(&self) -> usize {
        self.lock().log.len()
    }

    /// The calls answered after the first `from`.
    pub fn calls_since(&self, from: usize) -> Vec<CallRecord> {
        self.lock().log.get(from..).map(<[CallRecord]>::to_vec).unwrap_or_default()
    }

    /// The HTTP router serving every simulated service and the admin API.
    pub fn router(&self) -> Router {
        Router::new().fallback(dispatch).with_state(self.clone())
    }

    /// Calls a body-protocol operation in process (`workspaces`, `appstream`, `eventbridge`), exactly as a
    /// request over HTTP would be answered and logged, minus the added latency.
    /// In-process calls are made as an administrator (the simulated people): they are not authorised. The call
    /// log names their caller [`SIMULATED_PEOPLE`].
    pub fn invoke(&self, service: &str, operation: &str, input: &Value) -> Result<Value, ApiError> {
        self.invoke_as(SIMULATED_PEOPLE, service, operation, input)
    }

    /// [`Simulator::invoke`] made by `caller` (as the call log names it: `person:alice`, …).
    pub fn invoke_as(&self, caller: &str, service: &str, operation: &str, input: &Value) -> Result<Value, ApiError> {
        let caller = Caller::InProcess { who: caller.to_owned() };
        self.call(service, operation, Protocol::AwsJson, Request::Body(input), &caller).0
    }

    /// The account and region of the estate.
    pub fn place(&self) -> autopilot_shared::resource::Place {
        let state = self.lock();
        autopilot_shared::resource::Place { account: state.world.account.clone(), region: state.world.region.clone() }
    }

    /// Answers one request as the real service would (used by the router and by in-process callers).
    fn call(
        &self,
        service: &str,
        operation: &str,
        protocol: Protocol,
        request: Request<'_>,
        caller: &Caller,
    ) -> (Result<Value, ApiError>, u64) {
        let refused = match caller {
            Caller::Refused { error, .. } => Some(error.clone()),
            _ => None,
        };
        let mut state = self.lock();
        let wall_ms = u64::try_from(state.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let throttle_code = match (service, protocol) {
            ("appstream", _) => "RequestLimitExceededException",
            _ => "ThrottlingException",
        };
        let result = (|| {
            if let Some(error) = refused {
                return Err(error);
            }
            let place = match caller {
                Caller::Allowed { place: Some((account, region)), .. } => Some(format!("{account}/{region}")),
                _ => None,
            };
            let throttled = || {
                let mut error = ApiError::new(
                    throttle_code,
                    if protocol == Protocol::RestJson { 429 } else { 400 },
                    "Rate exceeded",
                );
                error.retry_after_seconds = Some(1);
                Err(error)
            };
            if let Some(rate) = state.world.faults.throttle_per_second.get(operation).copied() {
                // AWS throttles per account, region and operation.
                let key = place.as_ref().map_or_else(|| operation.to_owned(), |p| format!("{p}#{operation}"));
                if !take_token(&mut state.buckets, key, rate) {
                    return throttled();
                }
            }
            let here = place.as_ref().and_then(|p| state.world.faults.places.get(p)).cloned().unwrap_or_default();
            if let (Some(rate), Some(place)) = (here.throttle_per_second, &place)
                && !take_token(&mut state.buckets, format!("{place}#*"), rate)
            {
                return throttled();
            }
            if here.error_rate > 0.0 && state.world.fault_rng.chance(here.error_rate) {
                return Err(ApiError::new(
                    "InternalServerException",
                    500,
                    "The service encountered an internal error; try again.",
                ));
            }
            let error_rate = state.world.faults.error_rate.get(operation).copied().unwrap_or(0.0);
            if state.world.rng.chance(error_rate) {
                return Err(ApiError::new(
                    "InternalServerException",
                    500,
                    "The service encountered an internal error; try again.",
                ));
            }
            let world = &mut state.world;
            world.caller = match caller {
                Caller::Allowed { place, .. } => place.clone(),
                _ => None,
            };
            match (service, request) {
                ("workspaces", Request::Body(input)) => services::workspaces::handle(world, operation, input),
                ("appstream", Request::Body(input)) => services::appstream::handle(world, operation, input),
                ("eventbridge", Request::Body(input)) => services::eventbridge::handle(world, operation, input),
                ("autoscaling", Request::Body(input)) => services::autoscaling::handle(world, operation, input),
                ("organizations", Request::Body(input)) => services::organizations::handle(world, operation, input),
                ("thinclient", Request::Rest { method, path, query, body }) => {
                    services::thinclient::handle(world, method, path, query, body)
                }
                _ => Err(ApiError::invalid("UnknownOperationException", format!("no such service {service}"))),
            }
        })();
        let (parameters, path_id) = match request {
            Request::Body(input) => (input.clone(), None),
            Request::Rest { path, body, query, .. } => {
                let mut parameters = body.clone();
                if let Some(map) = parameters.as_object_mut() {
                    for (k, v) in query {
                        map.insert(k.clone(), json!(v));
                    }
                }
                (parameters, path.trim_matches('/').split('/').nth(1).map(str::to_owned))
            }
        };
        let region = match caller {
            Caller::Allowed { place: Some((_, region)), .. } => Some(region.clone()),
            _ => None,
        };
        let record = Logged { path_id: path_id.as_deref(), caller: caller.key(), region };
        log_call(&mut state, wall_ms, (service, operation), parameters, &result, record);
        let latency = state.world.faults.latency_ms.get(operation).copied().unwrap_or(0);
        (result, latency)
    }
}

impl Simulator {
    /// Logs a call the services do not answer themselves (STS), with its outcome.
    fn record(
        &self,
        service: &str,
        operation: &str,
        parameters: Value,
        result: &Result<Value, ApiError>,
        caller: &str,
    ) {
        let mut state = self.lock();
        let wall_ms = u64::try_from(state.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let record = Logged { path_id: None, caller: Some(caller), region: None };
        log_call(&mut state, wall_ms, (service, operation), parameters, result, record);
    }
}

/// Appends a call to the call log: what was asked, of which resource, by whom, and how it ended.
/// Who made a logged call and what it named beside its parameters.
struct Logged<'a> {
    /// A REST path's resource id.
    path_id: Option<&'a str>,
    caller: Option<&'a str>,
    /// The region it was answered in (its SigV4 scope), when signed.
    region: Option<String>,
}

fn log_call(
    state: &mut SimState,
    wall_ms: u64,
    (service, operation): (&str, &str),
    parameters: Value,
    result: &Result<Value, ApiError>,
    Logged { path_id, caller, region }: Logged<'_>,
) {
    let record = CallRecord {
        seq: state.log.len() as u64 + 1,
        at: state.world.now,
        wall_ms,
        service: service.to_owned(),
        operation: operation.to_owned(),
        resource: calllog::resource_of(&parameters, path_id),
        parameters,
        outcome: result.as_ref().map_or_else(|e| e.code.to_owned(), |_| "ok".to_owned()),
        status: result.as_ref().map_or_else(|e| e.status, |_| 200),
        caller: caller.map(str::to_owned),
        region,
        failed_items: result.as_ref().map(calllog::failed_items).unwrap_or_default(),
    };
    state.log.push(record);
}

/// Takes a token from the bucket `key` refilled at `rate` per second (wall clock; a second's burst); false when
/// it is empty: the request is throttled.
fn take_token(buckets: &mut HashMap<String, Bucket>, key: String, rate: f64) -> bool {
    let bucket = buckets.entry(key).or_insert(Bucket { tokens: rate.max(1.0), last: Instant::now() });
    let elapsed = bucket.last.elapsed().as_secs_f64();
    bucket.tokens = (bucket.tokens + elapsed * rate).min(rate.max(1.0));
    bucket.last = Instant::now();
    if bucket.tokens < 1.0 {
        return false;
    }
    bucket.tokens -= 1.0;
    true
}

/// After a jump of a clock that follows the wall clock, it follows on from where the jump left it.
fn reanchor(state: &mut SimState) {
    if state.realtime.is_some() {
        state.realtime = Some((Instant::now(), state.world.now));
    }
}

/// The caller the call log names for the simulator's own people (builder work sessions, the tests' direct calls).
pub const SIMULATED_PEOPLE: &str = "people";

/// Who made a request, as far as the simulator has decided.
#[derive(Debug, Clone)]
enum Caller {
    /// An in-process call ([`Simulator::invoke_as`]): people, as administrators; `who` is what the log names.
    InProcess { who: String },
    /// A request signed by the identity `key`, authorised; `place`: the account and region it is answered in
    /// (the identity's account, the SigV4 region; `None` for an administrator, who sees everything).
    Allowed { key: String, place: Option<(String, String)> },
    /// A request refused before it ran (unknown credential, not authorised).
    Refused { key: Option<String>, error: ApiError },
}

impl Caller {
    fn key(&self) -> Option<&str> {
        match self {
            Caller::InProcess { who } => Some(who),
            Caller::Allowed { key, .. } => Some(key),
            Caller::Refused { key, .. } => key.as_deref(),
        }
    }
}

/// The IAM service prefix of a simulated service.
fn iam_service(service: &str) -> &str {
    match service {
        "eventbridge" => "events",
        "autoscaling" => "application-autoscaling",
        other => other,
    }
}

/// Authenticates and authorises a request as AWS would, before it runs.
fn authorize(sim: &Simulator, headers: &HeaderMap, protocol: Protocol, request: &ServiceRequest<'_>) -> Caller {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    // restJson1 answers authentication and authorisation failures with 403, the JSON protocols with 400.
    let status = if protocol == Protocol::RestJson { 403 } else { 400 };
    let authorizer = &sim.authorizer;
    let (principal, region) = match authorizer.authenticate(authorization) {
        Ok(found) => found,
        Err(refusal) => return Caller::Refused { key: None, error: refusal_error(refusal, status) },
    };
    let key = principal.key.clone();
    let place = (key != crate::iam::ADMIN).then(|| (principal.account.clone(), region.clone()));
    match authorizer.authorize(&principal, request, Some(&region)) {
        Ok(()) => Caller::Allowed { key, place },
        Err(refusal) => Caller::Refused { key: Some(key), error: refusal_error(refusal, status) },
    }
}

fn refusal_error(refusal: Refusal, status: u16) -> ApiError {
    match refusal {
        Refusal::Unauthenticated { code, message } => ApiError::new(code, status, message),
        Refusal::Denied { message } => ApiError::new("AccessDeniedException", status, message),
        Refusal::Unmapped(gap) => ApiError::new("InternalFailure", 500, gap.to_string()),
    }
}

#[derive(Debug, Clone, Copy)]
enum Request<'a> {
    Body(&'a Value),
    Rest { method: &'a str, path: &'a str, query: &'a BTreeMap<String, String>, body: &'a Value },
}

fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, strip_nulls(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

fn request_id() -> HeaderValue {
    HeaderValue::from_static("00000000-0000-4000-8000-000000000000")
}

fn respond(protocol: Protocol, service: &str, result: Result<Value, ApiError>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("x-amzn-requestid", request_id());
    let (status, body, content_type) = match (&result, protocol) {
        (Ok(value), Protocol::Cbor) => (200, wire::json_to_cbor(&strip_nulls(value.clone())), "application/cbor"),
        (Ok(value), Protocol::AwsJson) => {
            (200, strip_nulls(value.clone()).to_string().into_bytes(), "application/x-amz-json-1.1")
        }
        (Ok(value), Protocol::RestJson) => {
            (200, strip_nulls(value.clone()).to_string().into_bytes(), "application/json")
        }
        (Err(error), Protocol::Cbor) => {
            let namespace = match service {
                "appstream" => "com.amazonaws.appstream",
                other => other,
            };
            let body = json!({ "__type": format!("{namespace}#{}", error.code), "message": error.message });
            (error.status, wire::json_to_cbor(&body), "application/cbor")
        }
        (Err(error), Protocol::AwsJson) => {
            if let Ok(value) = HeaderValue::from_str(error.code) {
                headers.insert("x-amzn-errortype", value);
            }
            (
                error.status,
                json!({ "__type": error.code, "message": error.message }).to_string().into_bytes(),
                "application/x-amz-json-1.1",
            )
        }
        (Err(error), Protocol::RestJson) => {
            if let Ok(value) = HeaderValue::from_str(error.code) {
                headers.insert("x-amzn-errortype", value);
            }
            let mut body = json!({ "message": error.message });
            if let Some(seconds) = error.retry_after_seconds {
                if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                    headers.insert("retry-after", value);
                }
                body["retryAfterSeconds"] = json!(seconds);
            }
            (error.status, body.to_string().into_bytes(), "application/json")
        }
    };
    headers.insert("content-type", HeaderValue::from_static(content_type));
    if protocol == Protocol::Cbor {
        headers.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    }
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), headers, body).into_response()
}

fn parse_query(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k.to_owned(), v.replace('+', " "))
        })
        .collect()
}

fn bad_request(protocol: Protocol, service: &str, message: String) -> Response {
    let code = if service == "thinclient" { "ValidationException" } else { "SerializationException" };
    respond(protocol, service, Err(ApiError::new(code, 400, message)))
}

async fn dispatch(State(sim): State<Simulator>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    if let Some(admin) = path.strip_prefix("/_sim/") {
        return admin_api(&sim, &method, admin, &parse_query(&uri));
    }
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if form {
        return sts(&sim, &headers, &body);
    }
    let (service, operation, protocol, input) = if let Some(rest) = path.strip_prefix("/service/") {
        let mut parts = rest.split('/');
        let (Some(service_name), Some("operation"), Some(operation)) = (parts.next(), parts.next(), parts.next())
        else {
            return bad_request(Protocol::Cbor, "appstream", format!("unknown RPC v2 path {path}"));
        };
        if service_name != "PhotonAdminProxyService" {
            return bad_request(Protocol::Cbor, "appstream", format!("unknown service {service_name}"));
        }
        match wire::cbor_to_json(&body) {
            Ok(input) => ("appstream", operation.to_owned(), Protocol::Cbor, input),
            Err(error) => return bad_request(Protocol::Cbor, "appstream", error.to_string()),
        }
    } else if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let (prefix, operation) = target.split_once('.').unwrap_or((target, ""));
        let service = match prefix {
            "WorkspacesService" => "workspaces",
            "PhotonAdminProxyService" => "appstream",
            "AWSEvents" => "eventbridge",
            "AnyScaleFrontendService" => "autoscaling",
            "AWSOrganizationsV20161128" => "organizations",
            other => return bad_request(Protocol::AwsJson, other, format!("unknown target {target}")),
        };
        let input = if body.is_empty() { Ok(json!({})) } else { serde_json::from_slice(&body) };
        match input {
            Ok(input) => (service, operation.to_owned(), Protocol::AwsJson, input),
            Err(error) => return bad_request(Protocol::AwsJson, service, format!("body is not JSON: {error}")),
        }
    } else {
        let input = if body.is_empty() { Ok(json!({})) } else { serde_json::from_slice(&body) };
        let operation = services::thinclient::operation_name(method.as_str(), &path);
        match input {
            Ok(input) => ("thinclient", operation.to_owned(), Protocol::RestJson, input),
            Err(error) => return bad_request(Protocol::RestJson, "thinclient", format!("body is not JSON: {error}")),
        }
    };
    let query = parse_query(&uri);
    let request = match protocol {
        Protocol::RestJson => Request::Rest { method: method.as_str(), path: &path, query: &query, body: &input },
        _ => Request::Body(&input),
    };
    let caller = authorize(
        &sim,
        &headers,
        protocol,
        &ServiceRequest {
            service: iam_service(service),
            operation: &operation,
            input: &input,
            path: (protocol == Protocol::RestJson).then_some(path.as_str()),
        },
    );
    let (result, latency_ms) = sim.call(service, &operation, protocol, request, &caller);
    if latency_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency_ms)).await;
    }
    respond(protocol, service, result)
}

/// AWS STS over the awsQuery protocol (a form body, an XML answer): `AssumeRole` of the estate's spoke roles.
fn sts(sim: &Simulator, headers: &HeaderMap, body: &[u8]) -> Response {
    let xml = |status: u16, text: String| {
        (StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), [("content-type", "text/xml")], text)
            .into_response()
    };
    let input: BTreeMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let action = input.get("Action").cloned().unwrap_or_default();
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    let (principal, region) = match sim.authorizer.authenticate(authorization) {
        Ok(found) => found,
        Err(refusal) => {
            let (code, message) = match refusal {
                Refusal::Unauthenticated { message, .. } => ("InvalidClientTokenId", message),
                other => ("AccessDenied", other.to_string()),
            };
            return xml(403, iam::sts::error_response(code, &message));
        }
    };
    let parameters = serde_json::to_value(&input).unwrap_or_default();
    if action == "GetCallerIdentity" {
        // Allowed to every authenticated caller, as on AWS (no IAM action is checked).
        sim.record("sts", &action, parameters, &Ok(Value::Null), &principal.key);
        return xml(200, iam::sts::caller_identity_response(&principal.arn, &principal.account));
    }
    let result = match action.as_str() {
        "AssumeRole" => sim.authorizer.assume_role(&principal, &input, &region),
        other => {
            let message = format!("the simulator does not implement STS {other}");
            return xml(400, iam::sts::error_response("InvalidAction", &message));
        }
    };
    let logged = match &result {
        Ok(_) => Ok(Value::Null),
        Err(refusal) => Err(ApiError::new("AccessDenied", 403, refusal.to_string())),
    };
    sim.record("sts", &action, parameters, &logged, &principal.key);
    match result {
        Ok(issued) => xml(200, iam::sts::assume_role_response(&issued)),
        Err(Refusal::Denied { message }) => xml(403, iam::sts::error_response("AccessDenied", &message)),
        Err(other) => xml(500, iam::sts::error_response("InternalFailure", &other.to_string())),
    }
}

fn admin_api(sim: &Simulator, method: &Method, path: &str, query: &BTreeMap<String, String>) -> Response {
    let json_response = |value: Value| ([("content-type", "application/json")], value.to_string()).into_response();
    match (method.as_str(), path) {
        ("GET", "clock") => json_response(json!({ "now": sim.now() })),
        ("POST", "advance") => {
            if let Some(minutes) = query.get("minutes").and_then(|m| m.parse::<i64>().ok()) {
                return json_response(json!({ "now": sim.advance(Duration::minutes(minutes)) }));
            }
            if let Some(to) = query.get("to").and_then(|t| DateTime::parse_from_rfc3339(&t.replace(' ', "+")).ok()) {
                return json_response(json!({ "now": sim.advance_to(to.with_timezone(&Utc)) }));
            }
            (StatusCode::BAD_REQUEST, "use /_sim/advance?minutes=N or ?to=<RFC 3339>").into_response()
        }
        ("GET", "calls") => ([("content-type", "application/x-ndjson")], calllog::to_jsonl(&sim.calls())).into_response(),
        ("GET", "events") => json_response(sim.with_world(|w| json!(w.events))),
        ("GET", "totals") => json_response(sim.with_world(|w| {
            json!({
                "pools": w.pools.values().map(|p| (p.id.clone(), json!(p.totals))).collect::<serde_json::Map<_, _>>(),
                "fleets": w.fleets.values().map(|f| (f.name.clone(), json!(f.totals))).collect::<serde_json::Map<_, _>>(),
            })
        })),
        ("GET", "authorizations") => json_response(json!(
            sim.authorizer
                .decisions()
                .into_iter()
                .map(|(a, decision)| json!({ "principal": a.principal, "action": a.action, "resource": a.resource, "context": a.context, "decision": decision }))
                .collect::<Vec<_>>()
        )),
        _ => (StatusCode::NOT_FOUND, "admin paths: GET clock, POST advance?minutes=N|to=T, GET calls, GET events, GET totals, GET authorizations").into_response(),
    }
}

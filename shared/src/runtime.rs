//! What every function shares around its observe → decide → act core: configuration from the environment,
//! the dependencies built once per cold start, loading the current policy, the function lease, recognising
//! our own CloudTrail calls, and the Lambda entry point ([`serve`]).

use crate::clients::AwsClients;
use crate::clock::{Clock, EstateClock, SystemClock};
use crate::error::{AutopilotError, Classify};
use crate::events::CloudTrailCall;
use crate::ledger::lease::Lease;
use crate::ledger::{Ledger, LedgerError};
use crate::policy::Policy;
use crate::policy::tags::DEFAULT_TAG_PREFIX;
pub use crate::report::{LISTED_ITEMS, Report, ReportItem};
use crate::telemetry::{self, InvocationContext};
use chrono::{DateTime, Duration, Utc};
use lambda_runtime::{LambdaEvent, service_fn};
use std::sync::Arc;

/// Configuration read once at cold start (environment variables, see docs/deploy.md, "Configuration").
#[derive(Debug, Clone)]
pub struct Config {
    /// `AUTOPILOT_TABLE`: the ledger table.
    pub table: String,
    /// `AUTOPILOT_TAG_PREFIX` (default `autopilot/`).
    pub tag_prefix: String,
    /// `AUTOPILOT_DRY_RUN=true` forces dry-run whatever the policy says.
    pub force_dry_run: bool,
    /// `AUTOPILOT_EVENT_BUS`: where outcome events go (default: the account's default bus).
    pub event_bus: Option<String>,
    /// `AUTOPILOT_ROLE_NAME`: CloudTrail calls made by roles whose name starts with this are ours, not manual
    /// changes.
    pub own_role_name: String,
    /// `AWS_REGION`.
    pub region: String,
    /// `AUTOPILOT_ACCOUNT`: the hub's account (template.yaml sets it); an event from another account came from a
    /// spoke and is worked there.
    pub account: Option<String>,
}

/// The role-name prefix of the functions when `AUTOPILOT_ROLE_NAME` is not set: the default stack's
/// (`euc-autopilot`, its roles named `<stack>-<function>`), as the stack and `autopilot serve` set it.
pub const DEFAULT_ROLE_NAME: &str = "euc-autopilot-";

impl Config {
    /// Reads the environment; fails naming the missing variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Ok(Self {
            table: var("AUTOPILOT_TABLE").ok_or(ConfigError::Missing("AUTOPILOT_TABLE", "the ledger table name"))?,
            tag_prefix: var("AUTOPILOT_TAG_PREFIX").unwrap_or_else(|| DEFAULT_TAG_PREFIX.to_owned()),
            force_dry_run: var("AUTOPILOT_DRY_RUN").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            event_bus: var("AUTOPILOT_EVENT_BUS"),
            own_role_name: var("AUTOPILOT_ROLE_NAME").unwrap_or_else(|| DEFAULT_ROLE_NAME.to_owned()),
            region: var("AWS_REGION").unwrap_or_else(|| "us-east-1".to_owned()),
            account: var("AUTOPILOT_ACCOUNT"),
        })
    }
}

/// The function's environment is incomplete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is not set: its name and what it holds.
    #[error("{0} is not set ({1})")]
    Missing(&'static str, &'static str),
}

/// Clients, ledger, clock and configuration, built once per cold start.
#[derive(Debug, Clone)]
pub struct Deps {
    pub aws: AwsClients,
    /// The clients of each account × region a policy targets, through the spoke role.
    pub shards: crate::shard::Shards,
    pub ledger: Ledger,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
}

/// Any classified error as the error a handler returns.
pub fn classified<E: Classify + std::error::Error>(error: E) -> AutopilotError {
    AutopilotError::from_classified(&error)
}

/// The current policy, its version and whether this invocation runs dry.
#[derive(Debug, Clone)]
pub struct ActivePolicy {
    pub policy: Policy,
    pub version: u32,
    pub dry_run: bool,
}

/// Loads the current policy from the ledger. No stored policy is a non-retryable error naming the fix.
pub async fn load_policy(deps: &Deps) -> Result<ActivePolicy, AutopilotError> {
    let stored = deps.ledger.current_policy().await.map_err(classified)?.ok_or_else(|| {
        AutopilotError::non_retryable(format!(
            "no policy document is stored in {}; store one with `autopilot config push --table {} <policy>`",
            deps.config.table, deps.config.table
        ))
    })?;
    let dry_run = deps.config.force_dry_run || stored.policy.dry_run();
    Ok(ActivePolicy { policy: stored.policy, version: stored.version, dry_run })
}

/// The lease a function holds while it reconciles `scope` (`<function>#<region>` in the hub's own account,
/// `<function>#<account>#<region>` in a shard): `None` when another invocation holds it (this one yields). Its
/// duration is the invocation's remaining time, at least 30 s.
async fn acquire_function_lease(
    deps: &Deps,
    scope: &str,
    holder: &str,
    now: DateTime<Utc>,
    remaining: std::time::Duration,
) -> Result<Option<Lease>, AutopilotError> {
    let duration = Duration::from_std(remaining).unwrap_or(Duration::minutes(5)).max(Duration::seconds(30));
    match deps.ledger.acquire_lease(scope, holder, duration, now).await {
        Ok(lease) => Ok(Some(lease)),
        Err(LedgerError::LeaseHeld { holder, .. }) => {
            tracing::info!(%holder, scope, "another invocation is reconciling; this one yields");
            Ok(None)
        }
        Err(error) => Err(classified(error)),
    }
}

/// The function lease on `scope` for an event: `Ok(None)` when another invocation holds it and the event may
/// simply yield (a tick: the next one comes), a retryable error when it must not be lost (a command or an alarm:
/// EventBridge delivers it again).
pub async fn lease_or_yield(
    deps: &Deps,
    function: &str,
    scope: &str,
    correlation_id: &str,
    now: DateTime<Utc>,
    remaining: std::time::Duration,
    must_not_be_lost: bool,
) -> Result<Option<Lease>, AutopilotError> {
    let lease = acquire_function_lease(deps, scope, correlation_id, now, remaining).await?;
    if lease.is_none() && must_not_be_lost {
        return Err(AutopilotError::retryable(format!("{function} is busy; event {correlation_id} will be retried")));
    }
    Ok(lease)
}

/// The end of an invocation that held the function lease: the function's claims left in progress past their
/// expiry (by invocations that crashed or timed out) are released, each with an audit record, then the lease
/// is given up. Neither step can fail the invocation: both only tidy (a stale claim is taken over by the next
/// acquisition anyway, and an unreleased lease expires).
pub async fn finish_under_lease(deps: &Deps, function: &str, lease: &Lease, correlation_id: &str) {
    let now = deps.clock.now();
    match deps.ledger.release_stale_claims(function, now).await {
        Ok(released) => {
            for business_key in released {
                tracing::warn!(%business_key, "released a claim left in progress past its expiry");
                metrics::counter!("stale_claims_released").increment(1);
                let record = crate::ledger::audit::AuditRecord {
                    at: now,
                    function: function.to_owned(),
                    resource: format!("ledger#claim#{function}"),
                    action: "ReleaseStaleClaim".into(),
                    outcome: crate::ledger::audit::Outcome::Applied,
                    reason: format!(
                        "the claim for {business_key} was left in progress past its expiry (the invocation that took it ended without settling it); released"
                    ),
                    correlation_id: correlation_id.to_owned(),
                    details: serde_json::json!({ "business_key": business_key }),
                };
                if let Err(error) = deps.ledger.append_audit(&record).await {
                    tracing::warn!(%error, "could not audit a released claim");
                }
            }
        }
        Err(error) => tracing::warn!(%error, "could not look for stale claims"),
    }
    let _ = deps.ledger.release_lease(lease).await;
}

/// Whether a CloudTrail call was made by one of this deployment's roles (our own action echoed back): the
/// caller's assumed-role name starts with `own_role_name` (the functions' roles share that prefix), or, in a
/// spoke account, its session name does (the hub names its spoke-role sessions `<own_role_name><function>`).
pub fn is_own_call(call: &CloudTrailCall, own_role_name: &str) -> bool {
    let actor = call.user_identity.get("arn").and_then(serde_json::Value::as_str).unwrap_or_default();
    let Some((_, assumed)) = actor.split_once(":assumed-role/") else { return false };
    let (role, session) = assumed.split_once('/').unwrap_or((assumed, ""));
    role.starts_with(own_role_name) || (!own_role_name.is_empty() && session.starts_with(own_role_name))
}

/// The Lambda entry point every function's `main` calls: logging, metrics and dependencies are built once
/// (no network in init), then each event is handled inside its invocation context, metrics are flushed, and
/// a failure is logged with its error type.
pub async fn serve<R, H>(function: &'static str, handler: H) -> Result<(), lambda_runtime::Error>
where
    R: serde::Serialize,
    H: AsyncFn(&Deps, serde_json::Value, std::time::Duration) -> Result<R, AutopilotError>,
{
    telemetry::init_logging(function);
    let metrics = telemetry::init_metrics(function)?;
    let config = Config::from_env()?;
    let sdk_config = crate::clients::load_sdk_config().await;
    let http = crate::clients::base_http_client(&sdk_config);
    let aws = AwsClients::over(&sdk_config, http.clone());
    let shards = crate::shard::Shards::new(&sdk_config, http);
    // A local estate's clock when `AUTOPILOT_CLOCK_URL` is set (never on AWS), read at each invocation.
    let estate_clock = EstateClock::from_env().map(Arc::new);
    let clock: Arc<dyn Clock> = match &estate_clock {
        Some(clock) => clock.clone(),
        None => Arc::new(SystemClock),
    };
    let deps = Deps { ledger: Ledger::new(aws.dynamodb.clone(), config.table.clone()), aws, shards, clock, config };
    let (deps, handler, estate_clock) = (&deps, &handler, &estate_clock);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        if let Some(clock) = estate_clock {
            clock.sync().await.map_err(|e| AutopilotError::retryable(e.to_string()))?;
        }
        let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or_default();
        let remaining = std::time::Duration::from_millis(event.context.deadline.saturating_sub(now_ms));
        let correlation_id = event.payload.get("id").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
        let shard = InvocationContext::shard_of(&event.payload);
        let context = InvocationContext { request_id: event.context.request_id.clone(), correlation_id, shard };
        // Boxed: handler futures are large and deeply nested.
        let result = telemetry::in_invocation(context.clone(), Box::pin(handler(deps, event.payload, remaining))).await;
        let _ = telemetry::flush_metrics(metrics, &context, std::io::stdout());
        result.inspect_err(|error: &AutopilotError| {
            tracing::error!(error_type = error.class.as_str(), message = %error.message, "invocation failed");
        })
    }))
    .await
}

//! The invocation, written once: parse the input, route it, read the policy, take the function lease (or yield),
//! do the work under it with one [`ActContext`], sweep claims left in progress, give the lease back, and answer
//! with a bounded [`Report`]. A function supplies only its steps ([`Steps`]): how it routes an input, and the work.

use crate::clients::AwsClients;
use crate::effect::ActContext;
use crate::error::AutopilotError;
use crate::events::{CommandEvent, Input};
use crate::report::{Report, ReportItem, Status};
use crate::resource::Place;
use crate::runtime::{ActivePolicy, Deps, classified, finish_under_lease, lease_or_yield, load_policy};
use crate::shard::SpokeRole;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// An invocation before its work: the dependencies, the event's id, "now", the time left and the clients with
/// timeouts derived from it.
#[derive(Debug)]
pub struct Call<'a> {
    pub deps: &'a Deps,
    /// The EventBridge event id.
    pub correlation_id: &'a str,
    pub now: DateTime<Utc>,
    pub remaining: std::time::Duration,
    pub aws: AwsClients,
    /// The ledger, with the work items of the account and region worked (see [`crate::ledger::keys::WorkScope`]).
    pub ledger: crate::ledger::Ledger,
}

/// Where an input goes.
#[derive(Debug)]
pub enum Route<W> {
    /// Handled already, without the function lease: the answer's status.
    Done(Status),
    /// Work to do under the function lease. `must_not_be_lost`: when another invocation holds the lease, fail
    /// retryably (EventBridge delivers the event again) instead of yielding as a tick does.
    Work { work: W, must_not_be_lost: bool },
}

/// What the work did: the answer's status, the AWS calls it made and a report on every item it decided on.
#[derive(Debug)]
pub struct Worked<I> {
    pub status: Status,
    pub api_calls: u32,
    pub items: Vec<I>,
}

/// The active policy, read from the ledger when first asked for (a route that needs none — a CloudTrail call
/// recorded — never reads it).
#[derive(Debug)]
pub struct PolicyCell<'a> {
    deps: &'a Deps,
    read: Option<ActivePolicy>,
}

impl PolicyCell<'_> {
    /// The active policy; the first call reads it (no stored policy is a non-retryable error naming the fix).
    pub async fn get(&mut self) -> Result<&ActivePolicy, AutopilotError> {
        if self.read.is_none() {
            self.read = Some(load_policy(self.deps).await?);
        }
        self.read.as_ref().ok_or_else(|| AutopilotError::non_retryable("the policy could not be kept"))
    }
}

/// A function's own steps around the shared invocation.
pub trait Steps {
    /// The function's name: its service name in logs, metrics and ledger keys.
    const FUNCTION: &'static str;
    /// What an input asks the function to do under the lease.
    type Work;
    /// The report on one decided item.
    type Item: ReportItem + Serialize;

    /// Routes an input: done at once (with its status), work under the lease, or an error (an input the function
    /// does not take is `InvalidInput`). A route that reads `policy` has its version and dry-run flag in the
    /// answer; work always runs with the policy.
    fn route(
        &self,
        call: &Call<'_>,
        input: Input,
        policy: &mut PolicyCell<'_>,
    ) -> impl Future<Output = Result<Route<Self::Work>, AutopilotError>>;

    /// The work, under the lease.
    fn work(
        &self,
        ctx: &ActContext<'_>,
        policy: &ActivePolicy,
        work: Self::Work,
    ) -> impl Future<Output = Result<Worked<Self::Item>, AutopilotError>>;
}

/// Runs one invocation of `steps` (see the module documentation). `remaining` is the invocation's time left.
///
/// With `targets` in the policy, the hub's scheduled tick is fanned out instead of worked ([`dispatch`]), and a
/// `Shard Tick` is the function's own tick in that account and region: the spoke role's clients, a lease of the
/// shard's own, the target's dry-run setting ([`crate::shard`]).
pub async fn invoke<S: Steps>(
    steps: &S,
    deps: &Deps,
    payload: serde_json::Value,
    remaining: std::time::Duration,
) -> Result<Report<S::Item>, AutopilotError> {
    let input = crate::events::parse(payload).map_err(classified)?;
    let correlation_id = input.id().to_owned();
    let (input, shard) = match input {
        Input::ShardTick(event) if event.detail.function == S::FUNCTION => {
            (Input::Tick(crate::shard::as_tick(event.id.clone(), &event.detail)), Some(event.detail))
        }
        Input::ShardTick(_) => return Err(not_ours(S::FUNCTION, &correlation_id)),
        other => (other, None),
    };
    let mut report = Report::new(correlation_id.clone());
    let mut policy = PolicyCell { deps, read: None };
    let now = deps.clock.now();
    let site = match &shard {
        Some(tick) => Some(Site {
            place: Place { account: tick.account.clone(), region: tick.region.clone() },
            dry_run: tick.dry_run,
        }),
        None => match event_site(deps, &input, &mut policy).await? {
            EventSite::Hub => None,
            EventSite::Shard(site) => Some(site),
            EventSite::Excluded => {
                report.status = Status::Ignored;
                return Ok(report);
            }
        },
    };
    let aws = match &site {
        Some(site) => {
            let targets = policy.get().await?.policy.targets.clone().ok_or_else(|| {
                AutopilotError::non_retryable(format!(
                    "a Shard Tick for {} in {} arrived, but the policy names no targets any more; dropped",
                    site.place.account, site.place.region
                ))
            })?;
            let role = SpokeRole::in_account(
                partition_of(&site.place.region),
                &site.place.account,
                &targets.role_name,
                targets.external_id.clone(),
            );
            let session = format!("{}{}", deps.config.own_role_name, S::FUNCTION);
            match deps.shards.clients(&site.place, &role, &session).await {
                Ok(mut clients) => {
                    // The estate's services in the shard; the ledger and the project bus stay the hub's.
                    clients.dynamodb = deps.aws.dynamodb.clone();
                    clients.eventbridge = deps.aws.eventbridge.clone();
                    clients.with_deadline(remaining)
                }
                Err(error) => {
                    let error = AutopilotError::non_retryable(error);
                    if let Some(tick) = &shard {
                        record_shard(deps, S::FUNCTION, tick, now, Err(&error.message), std::time::Duration::ZERO)
                            .await;
                    }
                    return Err(error);
                }
            }
        }
        None => deps.aws.with_deadline(remaining),
    };
    let ledger = match &site {
        Some(site) => {
            let home = Place {
                account: deps.config.account.clone().unwrap_or_else(|| Place::UNKNOWN_ACCOUNT.to_owned()),
                region: deps.config.region.clone(),
            };
            deps.ledger.for_place(&site.place, &home)
        }
        None => deps.ledger.clone(),
    };
    let call = Call { deps, correlation_id: &correlation_id, now, remaining, aws, ledger };
    if shard.is_none()
        && let Input::Tick(tick) = &input
        && policy.get().await?.policy.targets.is_some()
    {
        return dispatch::<S>(&call, tick, &mut policy, report).await;
    }
    let route = steps.route(&call, input, &mut policy).await;
    if let Some(active) = &policy.read {
        report.policy_version = active.version;
        report.dry_run = active.dry_run;
    }
    let (work, must_not_be_lost) = match route? {
        Route::Done(status) => {
            report.status = status;
            return Ok(report);
        }
        Route::Work { work, must_not_be_lost } => (work, must_not_be_lost),
    };
    let mut active = match policy.read {
        Some(active) => active,
        None => load_policy(deps).await?,
    };
    if let Some(dry_run) = site.as_ref().and_then(|s| s.dry_run) {
        // The target's own setting; the stack's AUTOPILOT_DRY_RUN still wins.
        active.dry_run = deps.config.force_dry_run || dry_run;
    }
    report.policy_version = active.version;
    report.dry_run = active.dry_run;
    let region = site.as_ref().map_or(deps.config.region.as_str(), |s| s.place.region.as_str());
    let scope = match &site {
        Some(site) => format!("{}#{}#{}", S::FUNCTION, site.place.account, site.place.region),
        None => format!("{}#{}", S::FUNCTION, deps.config.region),
    };
    let Some(lease) =
        lease_or_yield(deps, S::FUNCTION, &scope, &correlation_id, now, remaining, must_not_be_lost).await?
    else {
        if let Some(shard) = &shard {
            record_shard(deps, S::FUNCTION, shard, now, Ok(None), std::time::Duration::ZERO).await;
        }
        report.status = Status::Busy;
        return Ok(report);
    };
    let fence = lease.fence_on(deps.clock.clone());
    let ctx = ActContext {
        aws: &call.aws,
        ledger: &call.ledger,
        function: S::FUNCTION,
        correlation_id: &correlation_id,
        dry_run: active.dry_run,
        fence: Some(&fence),
        now,
        remaining,
        event_bus: deps.config.event_bus.as_deref(),
        tag_prefix: &deps.config.tag_prefix,
        region,
        own_role_name: &deps.config.own_role_name,
    };
    let started = std::time::Instant::now();
    let result = steps.work(&ctx, &active, work).await;
    // The lease is given back whatever happened; losing it now only matters to the next holder's token.
    finish_under_lease(deps, S::FUNCTION, &lease, &correlation_id).await;
    if let Some(shard) = &shard {
        let outcome = result.as_ref().map(|worked| worked.api_calls).map_err(|error| error.message.as_str());
        record_shard(deps, S::FUNCTION, shard, now, outcome.map(Some), started.elapsed()).await;
    }
    let worked = result?;
    metrics::counter!("api_calls").increment(u64::from(worked.api_calls));
    metrics::histogram!("reconcile_duration_ms").record(started.elapsed().as_secs_f64() * 1000.0);
    report.status = worked.status;
    report.api_calls = worked.api_calls;
    report.set_actions(worked.items);
    Ok(report)
}

/// Where an invocation works when it is not the hub's own account and region: a shard, and its target's
/// dry-run setting.
#[derive(Debug, Clone)]
struct Site {
    place: Place,
    dry_run: Option<bool>,
}

/// Where an event (not a tick, not a command) is worked.
enum EventSite {
    /// In the hub's own account and region (or the policy has no targets).
    Hub,
    /// In its account and region, through the spoke role: it came from a spoke.
    Shard(Site),
    /// From an account × region the policy excludes: ignored.
    Excluded,
}

/// An event forwarded from a spoke (its envelope names another account than the hub's) is worked in its own
/// account and region, when the policy has `targets`; excluded places are ignored. Ticks and our commands are
/// the hub's.
async fn event_site(deps: &Deps, input: &Input, policy: &mut PolicyCell<'_>) -> Result<EventSite, AutopilotError> {
    let command = matches!(input, Input::Command(_));
    if matches!(input, Input::Tick(_) | Input::ShardTick(_) | Input::Command(CommandEvent { target: None, .. })) {
        return Ok(EventSite::Hub);
    }
    let origin = input.origin(&deps.config.region);
    let Some(hub) = deps.config.account.as_deref() else { return Ok(EventSite::Hub) };
    if origin.account == Place::UNKNOWN_ACCOUNT || (origin.account == hub && origin.region == deps.config.region) {
        return Ok(EventSite::Hub);
    }
    let targets = policy.get().await?.policy.targets.clone();
    let site = match &targets {
        None if !command => return Ok(EventSite::Hub),
        None => crate::policy::targets::SiteOf::Excluded,
        Some(targets) => {
            let discovered = if targets.needs_units_for(&origin) {
                let units = targets.units().map(str::to_owned).collect();
                let mut calls = 0;
                deps.shards.unit_accounts(&deps.aws.organizations, units, deps.clock.now(), &mut calls).await?
            } else {
                Default::default()
            };
            targets.site_of(&origin, &discovered)
        }
    };
    Ok(match site {
        // An operator's command for a place the policy does not work in is refused, with the reason.
        crate::policy::targets::SiteOf::Excluded if command => {
            return Err(AutopilotError::invalid_input(format!(
                "the command names account {} in {}, which the policy's targets do not include",
                origin.account, origin.region
            )));
        }
        crate::policy::targets::SiteOf::Excluded => EventSite::Excluded,
        crate::policy::targets::SiteOf::Target { dry_run } => EventSite::Shard(Site { place: origin, dry_run }),
    })
}

/// The hub's tick with `targets`: the accounts of the targeted units discovered, one `Shard Tick` per account ×
/// region published, once per hub tick (an idempotency claim on the tick: a redelivered tick publishes nothing
/// again once every shard tick was accepted). Any rejected shard tick fails the hub tick retryably.
async fn dispatch<S: Steps>(
    call: &Call<'_>,
    tick: &aws_lambda_events::eventbridge::EventBridgeEvent<crate::events::ScheduledTick>,
    policy: &mut PolicyCell<'_>,
    mut report: Report<S::Item>,
) -> Result<Report<S::Item>, AutopilotError> {
    use crate::ledger::idempotency::{Acquired, IdempotencyKey};
    let active = policy.get().await?;
    report.policy_version = active.version;
    report.dry_run = active.dry_run;
    let Some(targets) = &active.policy.targets else { return Ok(report) };
    let deps = call.deps;
    let tick_key = Input::tick_key(tick);
    let key = IdempotencyKey::new(S::FUNCTION, format!("dispatch#{tick_key}"));
    let claim = match deps.ledger.acquire_idempotency(&key, "dispatch", call.now, call.remaining, None).await {
        Ok(Acquired::Proceed(claim)) => claim,
        Ok(Acquired::AlreadyCompleted { .. }) => {
            report.status = Status::Duplicate;
            return Ok(report);
        }
        Err(crate::ledger::LedgerError::InProgress { .. }) => {
            return Err(AutopilotError::retryable(format!("the dispatch of {tick_key} is in progress elsewhere")));
        }
        Err(error) => return Err(classified(error)),
    };
    let mut calls = 0;
    let discovered = match crate::shard::discover(&call.aws.organizations, targets.units(), &mut calls).await {
        Ok(discovered) => discovered,
        Err(error) => {
            let _ = deps.ledger.release_idempotency(&claim).await;
            return Err(error);
        }
    };
    let schedule = tick.resources.as_ref().and_then(|r| r.first()).map_or("unknown-schedule", String::as_str);
    let scheduled_at = tick.time.unwrap_or(call.now);
    let ticks = crate::shard::shard_ticks(S::FUNCTION, schedule, scheduled_at, targets, &discovered);
    let dispatched = crate::shard::publish(&call.aws.eventbridge, deps.config.event_bus.as_deref(), ticks).await;
    metrics::counter!("shard_ticks_dispatched").increment(u64::from(dispatched.accepted));
    report.api_calls = calls + dispatched.calls;
    report.status = Status::Dispatched;
    report.results.insert("dispatched".into(), dispatched.accepted);
    if dispatched.rejected > 0 {
        let _ = deps.ledger.release_idempotency(&claim).await;
        return Err(AutopilotError::retryable(format!(
            "{} of {} shard ticks of {tick_key} were not accepted by EventBridge; the tick will be retried",
            dispatched.rejected,
            dispatched.accepted + dispatched.rejected
        )));
    }
    deps.ledger.complete_idempotency(&claim, &dispatched.accepted, call.now).await.map_err(classified)?;
    Ok(report)
}

/// Records how a shard's tick ended (`Ok(Some(calls))`: worked; `Ok(None)`: busy; `Err`: failed) in the ledger,
/// in the log and in the metrics (dimensioned by function only, the shard in the log line and the EMF document's
/// properties: one metric per shard would be thousands of billed custom metrics). Recording cannot fail the tick.
async fn record_shard(
    deps: &Deps,
    function: &str,
    shard: &crate::events::ShardTick,
    at: chrono::DateTime<chrono::Utc>,
    outcome: Result<Option<u32>, &str>,
    took: std::time::Duration,
) {
    use crate::ledger::shards::{ShardOutcome, ShardStatus};
    let (outcome, api_calls, error) = match outcome {
        Ok(Some(calls)) => (ShardOutcome::Ok, calls, None),
        Ok(None) => (ShardOutcome::Busy, 0, None),
        Err(message) => (ShardOutcome::Failed, 0, Some(message.chars().take(1000).collect::<String>())),
    };
    let duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    tracing::info!(
        account = %shard.account,
        region = %shard.region,
        outcome = ?outcome,
        duration_ms,
        error = error.as_deref().unwrap_or_default(),
        "shard tick"
    );
    metrics::histogram!("shard_duration_ms").record(duration_ms as f64);
    if outcome == ShardOutcome::Failed {
        metrics::counter!("shard_failures").increment(1);
    }
    let status = ShardStatus {
        function: function.to_owned(),
        account: shard.account.clone(),
        region: shard.region.clone(),
        at,
        outcome,
        error,
        duration_ms,
        api_calls,
    };
    if let Err(error) = deps.ledger.put_shard_status(&status).await {
        tracing::warn!(%error, "could not record the shard's tick");
    }
}

/// The partition a region is in.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The error for an input a function's EventBridge rules should never have delivered to it.
pub fn not_ours(function: &str, correlation_id: &str) -> AutopilotError {
    AutopilotError::invalid_input(format!(
        "{function} does not handle this input (event {correlation_id}); check the EventBridge rules"
    ))
}

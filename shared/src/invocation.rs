//! The invocation, written once: parse the input, route it, read the policy, take the function lease (or yield),
//! do the work under it with one [`ActContext`], sweep claims left in progress, give the lease back, and answer
//! with a bounded [`Report`]. A function supplies only its steps ([`Steps`]): how it routes an input, and the work.

use crate::clients::AwsClients;
use crate::effect::ActContext;
use crate::error::AutopilotError;
use crate::events::Input;
use crate::report::{Report, ReportItem, Status};
use crate::runtime::{ActivePolicy, Deps, classified, finish_under_lease, lease_or_yield, load_policy};
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
pub async fn invoke<S: Steps>(
    steps: &S,
    deps: &Deps,
    payload: serde_json::Value,
    remaining: std::time::Duration,
) -> Result<Report<S::Item>, AutopilotError> {
    let input = crate::events::parse(payload).map_err(classified)?;
    let correlation_id = input.id().to_owned();
    let call = Call {
        deps,
        correlation_id: &correlation_id,
        now: deps.clock.now(),
        remaining,
        aws: deps.aws.with_deadline(remaining),
    };
    let mut report = Report::new(correlation_id.clone());
    let mut policy = PolicyCell { deps, read: None };
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
    let active = match policy.read {
        Some(active) => active,
        None => load_policy(deps).await?,
    };
    report.policy_version = active.version;
    report.dry_run = active.dry_run;
    let now = call.now;
    let Some(lease) = lease_or_yield(deps, S::FUNCTION, &correlation_id, now, remaining, must_not_be_lost).await?
    else {
        report.status = Status::Busy;
        return Ok(report);
    };
    let fence = lease.fence_on(deps.clock.clone());
    let ctx = ActContext {
        aws: &call.aws,
        ledger: &deps.ledger,
        function: S::FUNCTION,
        correlation_id: &correlation_id,
        dry_run: active.dry_run,
        fence: Some(&fence),
        now,
        remaining,
        event_bus: deps.config.event_bus.as_deref(),
        tag_prefix: &deps.config.tag_prefix,
        region: &deps.config.region,
        own_role_name: &deps.config.own_role_name,
    };
    let started = std::time::Instant::now();
    let result = steps.work(&ctx, &active, work).await;
    // The lease is given back whatever happened; losing it now only matters to the next holder's token.
    finish_under_lease(deps, S::FUNCTION, &lease, &correlation_id).await;
    let worked = result?;
    metrics::counter!("api_calls").increment(u64::from(worked.api_calls));
    metrics::histogram!("reconcile_duration_ms").record(started.elapsed().as_secs_f64() * 1000.0);
    report.status = worked.status;
    report.api_calls = worked.api_calls;
    report.set_actions(worked.items);
    Ok(report)
}

/// The error for an input a function's EventBridge rules should never have delivered to it.
pub fn not_ours(function: &str, correlation_id: &str) -> AutopilotError {
    AutopilotError::invalid_input(format!(
        "{function} does not handle this input (event {correlation_id}); check the EventBridge rules"
    ))
}

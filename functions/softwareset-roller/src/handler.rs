//! The handler, wiring only: `Rollout Requested` goes to [`crate::request`], `Rollout Paused` / `Resumed` /
//! `Aborted` to [`crate::control`], a tick to [`crate::tick`]; a tag change of an environment (CloudTrail) marks
//! its cached tags stale. Everything that changes a rollout runs under the function lease, so two requests
//! cannot both claim an environment.

use crate::act::{ActContext, StepReport};
pub use crate::control::Control;
use crate::control::control;
use crate::observe::{CACHED_TAGS, estate};
use crate::request::{self, Start};
use crate::tick::tick;
use autopilot_shared::error::AutopilotError;
use autopilot_shared::events::{ApiCall, CloudTrailCall, Command, Input, RolloutControl};
use autopilot_shared::invocation::{self, Call, PolicyCell, Route, Steps, Worked, not_ours};
use autopilot_shared::lookups::tags_changed;
use autopilot_shared::report::Status as Answer;
use autopilot_shared::resource::Place;
use autopilot_shared::runtime::{ActivePolicy, classified};
pub use autopilot_shared::runtime::{Config, Deps};

/// The function's name: its service name in logs, metrics and ledger keys.
pub const FUNCTION: &str = "softwareset-roller";

/// What one invocation did; `status` is `requested`, `duplicate`, `dry-run`, `paused`, `resumed`, `aborted`,
/// `already-rolling` (the set is already rolling to those environments), `stepped`, `busy`, `no-rollouts`
/// (the policy has no `rollouts` section), `tags-changed` (an environment's cached tags marked stale) or
/// `ignored` (a tag change of something else).
pub type Report = autopilot_shared::report::Report<StepReport>;

/// Handles one event. `remaining` is the invocation's remaining time.
pub async fn handle(
    deps: &Deps,
    payload: serde_json::Value,
    remaining: std::time::Duration,
) -> Result<Report, AutopilotError> {
    invocation::invoke(&SoftwareSetRoller, deps, payload, remaining).await
}

/// What an input asks the roller to do (under the lease: two requests cannot both claim an environment).
#[derive(Debug)]
pub enum Work {
    Request { software_set_id: String, reason: Option<String> },
    Control(RolloutControl, Control),
    Tick,
}

struct SoftwareSetRoller;

impl Steps for SoftwareSetRoller {
    const FUNCTION: &'static str = FUNCTION;
    type Work = (Work, Place);
    type Item = StepReport;

    async fn route(
        &self,
        call: &Call<'_>,
        input: Input,
        policy: &mut PolicyCell<'_>,
    ) -> Result<Route<Self::Work>, AutopilotError> {
        // Every answer carries the policy's version, and nothing is handled without a stored policy.
        let active = policy.get().await?;
        let origin = input.origin(&call.deps.config.region);
        let work = match input {
            Input::Command(command) => match command.command {
                Command::RolloutRequested(request) => {
                    Work::Request { software_set_id: request.software_set_id, reason: request.reason }
                }
                Command::RolloutPaused(control) => Work::Control(control, Control::Pause),
                Command::RolloutResumed(control) => Work::Control(control, Control::Resume),
                Command::RolloutAborted(control) => Work::Control(control, Control::Abort),
                _ => {
                    return Err(AutopilotError::invalid_input(format!(
                        "{FUNCTION} does not handle this command ({})",
                        call.correlation_id
                    )));
                }
            },
            Input::Tick(_) => Work::Tick,
            Input::CloudTrail(event) => return tags_changed_call(call, &event.detail).await.map(Route::Done),
            Input::AppStreamSession(_) | Input::WorkSpacesAccess(_) | Input::Alarm(_) | Input::ShardTick(_) => {
                return Err(not_ours(FUNCTION, call.correlation_id));
            }
        };
        let command = !matches!(work, Work::Tick);
        if active.policy.rollouts.is_none() {
            if command {
                return Err(AutopilotError::invalid_input(
                    "the policy has no `rollouts` section: nothing can be rolled out",
                ));
            }
            return Ok(Route::Done(Answer::NoRollouts));
        }
        Ok(Route::Work { work: (work, origin), must_not_be_lost: command })
    }

    async fn work(
        &self,
        ctx: &ActContext<'_>,
        active: &ActivePolicy,
        (work, origin): Self::Work,
    ) -> Result<Worked<StepReport>, AutopilotError> {
        let mut report = Worked { status: Answer::Pending, api_calls: 0, items: Vec::new() };
        let Some(policy) = active.policy.rollouts.as_ref() else {
            report.status = Answer::NoRollouts;
            return Ok(report);
        };
        match work {
            Work::Control(command, what) => control(ctx, &command, what, &mut report).await?,
            Work::Request { software_set_id, reason } => {
                let (seen, calls) = estate(ctx.aws, ctx.ledger, ctx.now, origin).await?;
                report.api_calls += calls;
                let why = format!("Rollout Requested{}", reason.map(|r| format!(": {r}")).unwrap_or_default());
                let start = Start { id: ctx.correlation_id, target: &software_set_id, why: &why };
                Box::pin(request::start(ctx, policy, start, &seen, &mut report)).await?;
            }
            Work::Tick => {
                let (seen, calls) = estate(ctx.aws, ctx.ledger, ctx.now, origin).await?;
                report.api_calls += calls;
                Box::pin(tick(ctx, policy, &seen, &mut report)).await?;
            }
        }
        Ok(report)
    }
}

/// A CloudTrail call: an environment's tags changed (its cached tags are marked stale); no other call reaches
/// the roller.
async fn tags_changed_call(invocation: &Call<'_>, call: &CloudTrailCall) -> Result<Answer, AutopilotError> {
    let ApiCall::TagsChanged { resource, .. } = call.api_call().map_err(classified)? else {
        return Err(AutopilotError::invalid_input(format!(
            "{FUNCTION} does not handle this input ({}, event {}); check the EventBridge rules",
            call.event_name, invocation.correlation_id
        )));
    };
    tags_changed(&invocation.ledger, call, resource.as_ref(), invocation.now, &CACHED_TAGS).await.map_err(classified)
}

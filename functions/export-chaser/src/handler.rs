//! The handler, wiring only: an `Export Requested` command goes to [`crate::request`], a CloudTrail call to
//! [`crate::adopt`], a tick to [`crate::chase`]; every input runs under the function lease.

use crate::act::{ActContext, StepReport};
use crate::adopt::{self, filed_under};
use crate::chase::{chase_all, chase_imports};
use crate::request::{self, Request};
use autopilot_shared::error::AutopilotError;
use autopilot_shared::events::{CloudTrailCall, Command, ExportRequested, Input};
use autopilot_shared::invocation::{self, Call, PolicyCell, Route, Steps, Worked, not_ours};
use autopilot_shared::report::Status;
use autopilot_shared::resource::{Place, ResourceKind};
use autopilot_shared::runtime::ActivePolicy;
pub use autopilot_shared::runtime::{Config, Deps};

/// The function's name: its service name in logs, metrics and ledger keys.
pub const FUNCTION: &str = "export-chaser";

/// What one invocation did; `status` is `requested`, `adopted`, `chased`, `ours`, `ignored`, `busy`, or `dry-run`.
pub type Report = autopilot_shared::report::Report<StepReport>;

/// Handles one event. `remaining` is the invocation's remaining time.
pub async fn handle(
    deps: &Deps,
    payload: serde_json::Value,
    remaining: std::time::Duration,
) -> Result<Report, AutopilotError> {
    invocation::invoke(&ExportChaser, deps, payload, remaining).await
}

/// What an input asks the export-chaser to do; every input runs under the function lease (a job is created,
/// adopted or stepped by one invocation at a time, and a holder paused past its lease cannot act).
#[derive(Debug)]
pub enum Work {
    Request(ExportRequested),
    Adopt(CloudTrailCall),
    Chase,
}

struct ExportChaser;

impl Steps for ExportChaser {
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
        policy.get().await?;
        let origin = input.origin(&call.deps.config.region);
        let (work, must_not_be_lost) = match input {
            Input::Command(command) => match command.command {
                Command::ExportRequested(request) => (Work::Request(request), true),
                _ => return Err(not_ours(FUNCTION, call.correlation_id)),
            },
            // A command or a CloudTrail call is retried when the lease is busy; a tick yields.
            Input::CloudTrail(event) => (Work::Adopt(event.detail), true),
            Input::Tick(_) => (Work::Chase, false),
            Input::AppStreamSession(_) | Input::WorkSpacesAccess(_) | Input::Alarm(_) | Input::ShardTick(_) => {
                return Err(not_ours(FUNCTION, call.correlation_id));
            }
        };
        Ok(Route::Work { work: (work, origin), must_not_be_lost })
    }

    async fn work(
        &self,
        ctx: &ActContext<'_>,
        active: &ActivePolicy,
        (work, origin): Self::Work,
    ) -> Result<Worked<StepReport>, AutopilotError> {
        let mut worked = Worked { status: Status::Pending, api_calls: 0, items: Vec::new() };
        let exports = &active.policy.exports;
        match work {
            Work::Request(detail) => {
                let id = ctx.correlation_id;
                let resource = filed_under(&origin, ResourceKind::ExportTask, id)?;
                let request =
                    Request { id, resource: &resource, detail: &detail, exports, now: ctx.now, dry_run: ctx.dry_run };
                let (seen, calls) = request::observe(ctx, &request).await?;
                worked.api_calls += calls;
                let decision = request::decide(&request, &seen);
                request::act(ctx, &request, seen, decision, &mut worked).await?;
            }
            Work::Adopt(call) => adopt::from_cloudtrail(ctx, exports, &call, &mut worked).await?,
            Work::Chase => {
                // Imports are chased whatever became of the exports (a region without export support, a role
                // without ListExportImageTasks); the first error still fails the tick, so that it is seen.
                let exported = chase_all(ctx, exports, &origin, &mut worked).await;
                let imported = chase_imports(ctx, &mut worked).await;
                exported.and(imported)?;
                worked.status = Status::Chased;
            }
        }
        Ok(worked)
    }
}

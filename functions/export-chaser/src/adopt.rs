//! Adoption: a task someone else started is chased like our own. A CloudTrail `CreateExportImageTask` or
//! `CreateImportedImage` by another identity is noticed (pure), the export task looked up, and a job kept for it
//! unless one of ours already has it; the tick adopts tasks in flight that no job knows (CloudTrail is best
//! effort).

use crate::act::{self, ActContext, StepReport};
use crate::decide::{Attempt, Job, Origin, TaskView};
use crate::imports::{self, ImportJob};
use crate::observe::get_task;
use autopilot_shared::error::AutopilotError;
use autopilot_shared::events::{ApiCall, CloudTrailCall};
use autopilot_shared::invocation::Worked;
use autopilot_shared::ledger::state::{WorkItemListing, WorkItemWrite};
use autopilot_shared::ledger::{Ledger, LedgerError};
use autopilot_shared::policy::ExportPolicy;
use autopilot_shared::report::Status;
use autopilot_shared::resource::{Place, ResourceKind};
use autopilot_shared::runtime::{classified, is_own_call};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// What a CloudTrail call asks of the export-chaser.
#[derive(Debug, PartialEq)]
pub enum Notice {
    /// A call of no interest (or an export whose response carried no task id).
    Ignore,
    /// A call this deployment's own role made: the job exists.
    Ours,
    /// An image import to chase.
    Import(Box<ImportJob>),
    /// An export task to look up and adopt unless a job has it.
    Export { task_id: String },
}

/// What a CloudTrail call asks for (pure).
pub fn notice(
    call: &CloudTrailCall,
    own_role_name: &str,
    exports: &ExportPolicy,
    now: DateTime<Utc>,
) -> Result<Notice, AutopilotError> {
    let task_id = match call.api_call().map_err(classified)? {
        ApiCall::CreateExportImageTask { task_id, .. } => task_id,
        ApiCall::CreateImportedImage { name, source_ami_id } => {
            return Ok(Notice::Import(Box::new(ImportJob {
                resource: filed_under(&call.place(), ResourceKind::Image, &name)?,
                image_name: name,
                source_ami_id,
                requested_at: call.event_time.min(now),
                max_duration: exports.max_duration,
                state: None,
                next_check_at: now,
                escalated_at: None,
                reported_state: None,
                ending: None,
            })));
        }
        _ => return Ok(Notice::Ignore),
    };
    if is_own_call(call, own_role_name) {
        return Ok(Notice::Ours);
    }
    Ok(task_id.map_or(Notice::Ignore, |task_id| Notice::Export { task_id }))
}

/// Carries out what a CloudTrail call asks for.
pub async fn from_cloudtrail(
    ctx: &ActContext<'_>,
    exports: &ExportPolicy,
    call: &CloudTrailCall,
    worked: &mut Worked<StepReport>,
) -> Result<(), AutopilotError> {
    worked.status = match notice(call, ctx.own_role_name, exports, ctx.now)? {
        Notice::Ignore => Status::Ignored,
        Notice::Ours => Status::Ours,
        Notice::Import(job) => adopt_import(ctx, &job).await?,
        Notice::Export { task_id } => {
            worked.api_calls += 1;
            let Some(task) = get_task(ctx.aws, &task_id).await.map_err(classified)? else {
                return Err(AutopilotError::retryable(format!("export task {task_id} is not visible yet")));
            };
            if claimed_by(&open_jobs(ctx.ledger).await?, &task) {
                Status::Ours
            } else {
                let job = adopted_job(&task, exports, &call.place(), ctx.now)?;
                if keep(ctx, &job).await? { Status::Adopted } else { Status::Ours }
            }
        }
    };
    Ok(())
}

/// Keeps an import to chase. The image's name is the job's id: a finished import of the same name imported
/// earlier (failed, deleted and imported again) gives way to the new one; an import of it in flight, or this
/// same call delivered again, is already chased.
async fn adopt_import(ctx: &ActContext<'_>, job: &ImportJob) -> Result<Status, AutopilotError> {
    let existing = ctx.ledger.get_work_item::<ImportJob>(imports::KIND, &job.image_name).await.map_err(classified)?;
    let expected = match existing {
        None => None,
        Some(earlier) if earlier.state.ending.is_some() && earlier.state.requested_at < job.requested_at => {
            Some(earlier.version)
        }
        Some(_) => return Ok(Status::Ours),
    };
    let write = WorkItemWrite {
        kind: imports::KIND,
        id: &job.image_name,
        state: job,
        expected,
        listing: WorkItemListing::Open,
    };
    match ctx.ledger.put_work_item(write, ctx.fence, ctx.now).await {
        Ok(_) => Ok(Status::Adopted),
        Err(LedgerError::VersionConflict { .. }) => Ok(Status::Ours),
        Err(error) => Err(classified(error)),
    }
}

/// The job kept for a task someone else created (pure): one attempt, never re-created.
pub fn adopted_job(
    task: &TaskView,
    exports: &ExportPolicy,
    place: &Place,
    now: DateTime<Utc>,
) -> Result<Job, AutopilotError> {
    let id = format!("task-{}", task.task_id);
    Ok(Job {
        resource: filed_under(place, ResourceKind::ExportTask, &id)?,
        id,
        origin: Origin::Adopted,
        image_name: task.image_name.clone(),
        ami_name: task.ami_name.clone(),
        iam_role_arn: None,
        ami_description: None,
        tags: BTreeMap::new(),
        max_attempts: 1,
        backoff: exports.backoff,
        max_duration: exports.max_duration,
        requested_at: if task.created_at.timestamp() > 0 { task.created_at.min(now) } else { now },
        attempts: vec![Attempt {
            number: 1,
            intent_at: task.created_at.min(now),
            task_id: Some(task.task_id.clone()),
            state: Some(task.state.clone()),
            ended_at: None,
            error: task.error.clone(),
            ami_id: task.ami_id.clone(),
            create_failures: 0,
        }],
        next_check_at: now,
        escalated_at: None,
        reported_state: None,
        ending: None,
    })
}

/// Saves an adopted job unless one exists; true when it was new.
pub async fn keep(ctx: &ActContext<'_>, job: &Job) -> Result<bool, AutopilotError> {
    match act::save(ctx, job, None).await {
        Ok(_) => {
            tracing::info!(job = %job.id, image = %job.image_name, "export task adopted");
            Ok(true)
        }
        Err(LedgerError::VersionConflict { .. }) => Ok(false),
        Err(error) => Err(classified(error)),
    }
}

/// Every open export job.
pub async fn open_jobs(ledger: &Ledger) -> Result<Vec<Job>, AutopilotError> {
    let jobs = ledger.open_work_items::<Job>(act::KIND).await.map_err(classified)?;
    Ok(jobs.into_iter().map(|(_, job)| job.state).collect())
}

/// Whether one of `jobs` has `task` (pure): one of its attempts has the task id, or its creation is still being
/// recorded (an intent without a task id, same image and AMI name, task created after the intent). Such a task
/// is chased or recovered by that job, never adopted separately.
pub fn claimed_by(jobs: &[Job], task: &TaskView) -> bool {
    jobs.iter().any(|job| {
        job.attempts.iter().any(|a| a.task_id.as_deref() == Some(task.task_id.as_str()))
            || job.image_name == task.image_name
                && job.ami_name == task.ami_name
                && job
                    .current()
                    .is_some_and(|a| a.task_id.is_none() && task.created_at.timestamp() >= a.intent_at.timestamp())
    })
}

/// The resource key audit records about `id` of `kind` in `place` are filed under.
pub fn filed_under(place: &Place, kind: ResourceKind, id: &str) -> Result<String, AutopilotError> {
    place.resource(kind, id).map(|r| r.key()).map_err(AutopilotError::invalid_input)
}

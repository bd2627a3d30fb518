//! The act step: carry out one job's next step. Every side effect goes through
//! [`autopilot_shared::effect::perform_once`] with a business key of the job (`<job>#attempt-<n>`,
//! `<job>#completed`, `<job>#failed`, `<job>#stuck`, `<job>#state-<state>`), so a redelivery or a crash and retry
//! never repeats it; the job is saved with its version after each step (a concurrent writer loses and retries).
//!
//! Creating a task: the attempt's intent is saved first; then the claim; then the call; then the task id is
//! saved. A crash between the call and the save leaves an intent without a task id, which the next step
//! recovers by finding the task instead of creating another.

use crate::decide::{Attempt, Ending, Job, Step, TaskError, TaskView};
use crate::observe::find_created;
use autopilot_shared::effect::{CallError, Effect, Performed, announce, perform_once};
use autopilot_shared::error::ObserveError;
use autopilot_shared::error::{AutopilotError, ErrorClass, sdk_error_class};
use autopilot_shared::ledger::audit::{AuditRecord, Outcome as AuditOutcome};
use autopilot_shared::ledger::idempotency::IdempotencyKey;
use autopilot_shared::ledger::state::Versioned;
use autopilot_shared::ledger::state::{WorkItemListing, WorkItemWrite};
use autopilot_shared::ledger::{Ledger, LedgerError};
use autopilot_shared::resource::ResourceRef;
use autopilot_shared::runtime::classified;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// The work item kind of export jobs.
pub const KIND: &str = "EXPORT";
/// How long a finished job stays in the ledger.
pub const KEEP_FINISHED: Duration = Duration::days(90);

pub use autopilot_shared::effect::ActContext;
use autopilot_shared::report::{ActionResult, ReportItem};

impl ReportItem for StepReport {
    fn result(&self) -> &str {
        self.result.as_str()
    }
}

/// What one step did to one job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    pub job: String,
    pub step: String,
    pub result: ActionResult,
    pub detail: Option<String>,
    pub api_calls: u32,
}

/// The resource key a job's audit records are filed under.
pub fn audit_resource(job: &Job) -> String {
    job.resource.clone()
}

/// Saves a job (open ones stay listed; finished ones age out) and returns the new version.
pub async fn save(ctx: &ActContext<'_>, job: &Job, version: Option<u64>) -> Result<u64, LedgerError> {
    let expires = (!job.is_open()).then_some(ctx.now + KEEP_FINISHED);
    ctx.ledger
        .put_work_item(
            WorkItemWrite {
                kind: KIND,
                id: &job.id,
                state: job,
                expected: version,
                listing: WorkItemListing::of(job.is_open(), expires),
            },
            ctx.fence,
            ctx.now,
        )
        .await
}

fn audit(ctx: &ActContext<'_>, job: &Job, action: &str, reason: String) -> AuditRecord {
    AuditRecord {
        at: ctx.now,
        function: ctx.function.to_owned(),
        resource: audit_resource(job),
        action: action.to_owned(),
        outcome: AuditOutcome::Applied,
        reason,
        correlation_id: ctx.correlation_id.to_owned(),
        details: serde_json::json!({ "job": job.id, "image": job.image_name, "ami": job.ami_name }),
    }
}

fn effect<'a, P: Serialize>(
    ctx: &ActContext<'a>,
    key: String,
    payload: &'a P,
    audit: AuditRecord,
    dry_run: bool,
) -> Effect<'a, P> {
    Effect {
        ledger: ctx.ledger,
        key: IdempotencyKey::new(ctx.function, key),
        payload,
        audit,
        dry_run,
        now: ctx.now,
        remaining: ctx.remaining,
        fence: ctx.fence,
        recorded_failure: None,
    }
}

/// Publishes an outcome event about a job once per key.
async fn notify(
    ctx: &ActContext<'_>,
    job: &Job,
    key: &str,
    detail_type: &str,
    detail: serde_json::Value,
    reason: String,
) -> Result<Performed, LedgerError> {
    let record = audit(ctx, job, detail_type, reason);
    notify_once(ctx, format!("{}#{key}", job.id), record, detail_type, detail).await
}

/// Publishes `detail_type` once per `key`, audited with `record` (notifications describe what happened, so
/// dry-run does not stop them). The detail names the resource it is about, and its account and region: image
/// and AMI names repeat from one account to the next.
pub async fn notify_once(
    ctx: &ActContext<'_>,
    key: String,
    record: AuditRecord,
    detail_type: &str,
    mut detail: serde_json::Value,
) -> Result<Performed, LedgerError> {
    if let (Some(fields), Ok(resource)) = (detail.as_object_mut(), ResourceRef::from_key(&record.resource)) {
        fields.insert("resource".into(), serde_json::json!(record.resource));
        fields.insert("account".into(), serde_json::json!(resource.account()));
        fields.insert("region".into(), serde_json::json!(resource.region()));
    }
    perform_once(
        effect(ctx, key, &detail, record, false),
        async || announce(&ctx.aws.eventbridge, ctx.event_bus, detail_type, &detail).await.map_err(CallError::from),
        async || Ok(()),
    )
    .await
}

fn history(job: &Job) -> serde_json::Value {
    serde_json::json!(
        job.attempts
            .iter()
            .map(|a| serde_json::json!({
                "attempt": a.number,
                "taskId": a.task_id,
                "state": a.state,
                "intentAt": a.intent_at,
                "endedAt": a.ended_at,
                "errorCode": a.error.as_ref().map(|e| &e.code),
                "errorMessage": a.error.as_ref().map(|e| &e.message),
            }))
            .collect::<Vec<_>>()
    )
}

fn ledger_error(error: LedgerError) -> AutopilotError {
    classified(error)
}

fn observe_error(error: ObserveError) -> AutopilotError {
    classified(error)
}

/// Folds what the service says into the current attempt.
fn record_task(job: &mut Job, task: &TaskView, now: DateTime<Utc>) {
    if let Some(current) = job.attempts.last_mut() {
        if current.state.as_deref() != Some(task.state.as_str())
            && matches!(task.state.as_str(), "COMPLETED" | "FAILED" | "TIMED_OUT")
        {
            current.ended_at = Some(now);
        }
        current.state = Some(task.state.clone());
        current.error = task.error.clone();
        current.ami_id = task.ami_id.clone();
    }
}

/// Whether `step` would only move the job's next check: the task is where the job last saw it and there is
/// nothing to announce. For a task the tick's listing shows (read every tick at no extra cost) such a step
/// writes nothing; the next tick looks again.
pub fn changes_nothing(job: &Job, task: &TaskView, step: &Step, now: DateTime<Utc>) -> bool {
    let Step::Chase { escalate: false, report: None, .. } = step else { return false };
    let mut seen = job.clone();
    record_task(&mut seen, task, now);
    seen == *job
}

/// The report of a step that [`changes_nothing`]: nothing done, nothing written.
pub fn unchanged(job: &Job, step: &Step) -> StepReport {
    StepReport {
        job: job.id.clone(),
        step: step.to_string(),
        result: ActionResult::Unchanged,
        detail: None,
        api_calls: 0,
    }
}

/// Carries out `step` for `job` (read at `version`); returns what it did. `task` is what the service said.
pub async fn step(
    ctx: &ActContext<'_>,
    mut job: Job,
    version: u64,
    task: Option<&TaskView>,
    step: Step,
) -> Result<StepReport, AutopilotError> {
    let mut report = StepReport {
        job: job.id.clone(),
        step: step.to_string(),
        result: ActionResult::None,
        detail: None,
        api_calls: 0,
    };
    if let Some(task) = task {
        record_task(&mut job, task, ctx.now);
    }
    match step {
        Step::Sleep => return Ok(report),
        Step::Recover => {
            let Some(intent_at) = job.current().map(|a| a.intent_at) else { return Ok(report) };
            let (found, calls) =
                find_created(ctx.aws, &job.image_name, &job.ami_name, intent_at).await.map_err(observe_error)?;
            report.api_calls += calls;
            match found {
                Some(task) => {
                    if let Some(current) = job.attempts.last_mut() {
                        current.task_id = Some(task.task_id.clone());
                    }
                    record_task(&mut job, &task, ctx.now);
                    save(ctx, &job, Some(version)).await.map_err(ledger_error)?;
                    tracing::info!(job = %job.id, task = %task.task_id, "interrupted creation recovered: task adopted");
                    report.result = ActionResult::Adopted;
                    report.detail = Some(task.task_id);
                }
                None => {
                    let attempt = job.current().map_or(1, |a| a.number);
                    return Box::pin(create(ctx, job, version, attempt, report)).await;
                }
            }
        }
        Step::Create { attempt } => {
            job.attempts.push(Attempt {
                number: attempt,
                intent_at: ctx.now,
                task_id: None,
                state: None,
                ended_at: None,
                error: None,
                ami_id: None,
                create_failures: 0,
            });
            let version = save(ctx, &job, Some(version)).await.map_err(ledger_error)?;
            return Box::pin(create(ctx, job, version, attempt, report)).await;
        }
        Step::Chase { next, escalate, report: unknown } => {
            job.next_check_at = next;
            if escalate {
                let detail = serde_json::json!({
                    "job": job.id, "image": job.image_name, "amiName": job.ami_name,
                    "taskId": job.current().and_then(|a| a.task_id.clone()),
                    "requestedAt": job.requested_at, "maxDuration": job.max_duration.num_seconds(),
                    "attempts": history(&job),
                });
                let reason = format!("export running longer than {} s", job.max_duration.num_seconds());
                let sent = notify(ctx, &job, "stuck", "Export Stuck", detail, reason).await.map_err(ledger_error)?;
                // Not sent (EventBridge failed): sent again at the next look.
                job.escalated_at = sent.done().then_some(ctx.now);
            }
            if let Some(state) = unknown {
                let detail = serde_json::json!({ "job": job.id, "image": job.image_name, "state": state,
                    "taskId": job.current().and_then(|a| a.task_id.clone()) });
                let reason = format!("export task in state {state}, which this version does not know: still chased");
                let sent = notify(ctx, &job, &format!("state-{state}"), "Export Unknown State", detail, reason)
                    .await
                    .map_err(ledger_error)?;
                if sent.done() {
                    job.reported_state = Some(state);
                }
            }
            save(ctx, &job, Some(version)).await.map_err(ledger_error)?;
            report.result = ActionResult::Recorded;
        }
        Step::RetryAt { at, attempt, reason } => {
            job.next_check_at = at;
            save(ctx, &job, Some(version)).await.map_err(ledger_error)?;
            report.result = ActionResult::Recorded;
            report.detail = Some(format!("{reason}; attempt {attempt} at {at}"));
        }
        Step::Complete { ami_id } => {
            let started = job.current().map_or(job.requested_at, |a| a.intent_at.min(job.requested_at));
            let detail = serde_json::json!({
                "job": job.id, "image": job.image_name, "amiName": job.ami_name, "amiId": ami_id,
                "taskId": job.current().and_then(|a| a.task_id.clone()),
                "attempts": job.attempts.len(), "durationSeconds": (ctx.now - started).num_seconds(),
            });
            let reason = format!("export completed: {ami_id}");
            let performed =
                notify(ctx, &job, "completed", "Export Completed", detail, reason).await.map_err(ledger_error)?;
            // The job closes once its outcome is announced: a failed announcement is made again at the next tick.
            if performed.done() {
                job.ending = Some(Ending::Completed { ami_id: ami_id.clone(), at: ctx.now });
                save(ctx, &job, Some(version)).await.map_err(ledger_error)?;
            }
            report.result = performed.result();
            report.detail = Some(ami_id);
        }
        Step::Fail { reason } => {
            let detail = serde_json::json!({
                "job": job.id, "image": job.image_name, "amiName": job.ami_name, "reason": reason,
                "attempts": history(&job),
            });
            let performed =
                notify(ctx, &job, "failed", "Export Failed", detail, reason.clone()).await.map_err(ledger_error)?;
            if performed.done() {
                job.ending = Some(Ending::Failed { at: ctx.now, reason: reason.clone() });
                save(ctx, &job, Some(version)).await.map_err(ledger_error)?;
            }
            report.result = performed.result();
            report.detail = Some(reason);
        }
    }
    Ok(report)
}

/// Creates attempt `attempt`'s task (its intent is saved at `version`) and records the task id.
async fn create(
    ctx: &ActContext<'_>,
    mut job: Job,
    version: u64,
    attempt: u32,
    mut report: StepReport,
) -> Result<StepReport, AutopilotError> {
    let Some(role) = job.iam_role_arn.clone() else {
        return Err(AutopilotError::non_retryable(format!("job {} has no IAM role to create a task with", job.id)));
    };
    let created = std::cell::OnceCell::new();
    let failure_class = std::cell::OnceCell::new();
    let payload = serde_json::json!({ "image": job.image_name, "ami": job.ami_name, "attempt": attempt });
    let record = audit(ctx, &job, "CreateExportImageTask", format!("attempt {attempt} of {}", job.max_attempts));
    let performed = perform_once(
        effect(ctx, format!("{}#attempt-{attempt}", job.id), &payload, record, ctx.dry_run),
        async || {
            let output = ctx
                .aws
                .appstream
                .create_export_image_task()
                .image_name(&job.image_name)
                .ami_name(&job.ami_name)
                .iam_role_arn(&role)
                .set_ami_description(job.ami_description.clone())
                .set_tag_specifications((!job.tags.is_empty()).then(|| job.tags.clone().into_iter().collect()))
                .send()
                .await
                .map_err(|e| {
                    // A conflict with another change is worth another try (its words: "wait a few minutes").
                    let conflict = e.as_service_error().is_some_and(|s| s.is_concurrent_modification_exception());
                    let _ = failure_class.set(if conflict { ErrorClass::Retryable } else { sdk_error_class(&e) });
                    // Throttling is audited as deferred, anything else as failed.
                    CallError::from_sdk(&e, &[])
                })?;
            let task = output.export_image_task().and_then(crate::observe::task_view);
            let _ = created.set(task);
            Ok(())
        },
        async || {
            let mut job = job.clone();
            if let (Some(current), Some(Some(task))) = (job.attempts.last_mut(), created.get()) {
                current.task_id = Some(task.task_id.clone());
                current.state = Some(task.state.clone());
            }
            save(ctx, &job, Some(version)).await.map(drop)
        },
    )
    .await
    .map_err(ledger_error)?;
    report.api_calls += u32::from(performed.called());
    if let Some(Some(task)) = created.get() {
        if let Some(current) = job.attempts.last_mut() {
            current.task_id = Some(task.task_id.clone());
        }
        report.detail = Some(task.task_id.clone());
    }
    report.result = performed.result();
    if let Performed::Failed(refused) | Performed::Deferred(refused) = &performed {
        // The image must be AVAILABLE: one still being built (CreateImage on a builder, then the export asked for
        // at once) is waited for like a failed call, not a refusal.
        let building = match failure_class.get() {
            Some(ErrorClass::NonRetryable) => image_in_the_making(ctx, &job.image_name, &mut report).await,
            _ => None,
        };
        let error = match &building {
            Some(state) => format!("image {} is {state}, not AVAILABLE yet: {refused}", job.image_name),
            None => refused.clone(),
        };
        let throttled = matches!(performed, Performed::Deferred(_));
        if throttled || failure_class.get() != Some(&ErrorClass::NonRetryable) || building.is_some() {
            // Throttled or unavailable after the SDK's own retries: the intent stays (the next step looks for a
            // task the call may have made after all, then creates again) after a backoff that doubles, and the
            // job fails once it has failed as often as it may attempt. The tick goes on with the other jobs.
            let current = load(ctx.ledger, &job.id).await?.map(|v| v.version);
            let failures = job.current().map_or(0, |a| a.create_failures) + 1;
            if let Some(attempt) = job.attempts.last_mut() {
                attempt.create_failures = failures;
                attempt.error = Some(TaskError { code: "CreateExportImageTask".into(), message: error.clone() });
            }
            job.next_check_at = ctx.now + job.backoff * (1i32 << failures.saturating_sub(1).min(10));
            save(ctx, &job, current).await.map_err(ledger_error)?;
            report.detail = Some(format!(
                "creating the export task failed ({failures} of {}), again at {}: {error}",
                job.max_attempts, job.next_check_at
            ));
            return Ok(report);
        }
        let reason = format!("CreateExportImageTask refused: {error}");
        if let Some(attempt) = job.attempts.last_mut() {
            attempt.error = Some(TaskError { code: "CreateExportImageTask".into(), message: error.clone() });
        }
        let detail = serde_json::json!({
            "job": job.id, "image": job.image_name, "amiName": job.ami_name, "reason": reason,
            "attempts": history(&job),
        });
        let sent = notify(ctx, &job, "failed", "Export Failed", detail, reason.clone()).await.map_err(ledger_error)?;
        // Closed once announced. Not announced (EventBridge failed): the job stays as its intent left it, so the
        // next tick tries the creation again (a refused call changes nothing) and announces its outcome.
        if sent.done() {
            job.ending = Some(Ending::Failed { at: ctx.now, reason: reason.clone() });
            let current = load(ctx.ledger, &job.id).await?.map(|v| v.version);
            save(ctx, &job, current).await.map_err(ledger_error)?;
        }
        report.detail = Some(reason);
    }
    Ok(report)
}

/// The state of `image` when it is still being made (PENDING, CREATING, COPYING, IMPORTING): worth waiting for.
async fn image_in_the_making(ctx: &ActContext<'_>, image: &str, report: &mut StepReport) -> Option<String> {
    report.api_calls += 1;
    let output = ctx.aws.appstream.describe_images().names(image).send().await.ok()?;
    let state = output.images().iter().find(|i| i.name() == Some(image))?.state()?.as_str().to_owned();
    ["PENDING", "CREATING", "COPYING", "IMPORTING"].contains(&state.as_str()).then_some(state)
}

/// Reads one job.
pub async fn load(ledger: &Ledger, id: &str) -> Result<Option<Versioned<Job>>, AutopilotError> {
    ledger.get_work_item::<Job>(KIND, id).await.map_err(ledger_error)
}

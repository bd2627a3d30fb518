//! The handler: an `Export Requested` command creates a job (after validating it and checking the image
//! exists) and takes its first step; a CloudTrail `CreateExportImageTask` by someone else adopts the task; a
//! tick chases every open job under the function lease and adopts tasks in flight that no job knows (the
//! CloudTrail event is best effort).

use crate::act::{self, ActContext, StepReport};
use crate::decide::{Job, Origin, TaskView, decide};
use crate::imports::{self, ImportJob, decide_import};
use crate::observe::{get_task, list_tasks};
use autopilot_shared::cpu::{self, Step};
use autopilot_shared::error::{AutopilotError, sdk_error_class, sdk_error_message};
use autopilot_shared::events::{ApiCall, CloudTrailCall, Command, ExportRequested, Input};
use autopilot_shared::ledger::audit::{AuditRecord, Outcome as AuditOutcome};
use autopilot_shared::ledger::{Ledger, LedgerError};
use autopilot_shared::policy::values::parse_duration;
use autopilot_shared::resource::{ResourceKind, ResourceRef};
use autopilot_shared::runtime::{
    ActivePolicy, begin, call_account, classified, finish_under_lease, is_own_call, lease_or_yield,
};
pub use autopilot_shared::runtime::{Config, Deps};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// The function's name: its service name in logs, metrics and ledger keys.
pub const FUNCTION: &str = "export-chaser";

/// What one invocation did; `status` is `requested`, `adopted`, `chased`, `ours`, `ignored`, `busy`, or `dry-run`.
pub type Report = autopilot_shared::runtime::Report<StepReport>;

/// Handles one event. `remaining` is the invocation's remaining time.
pub async fn handle(
    deps: &Deps,
    payload: serde_json::Value,
    remaining: std::time::Duration,
) -> Result<Report, AutopilotError> {
    let (input, now, active, mut report) = begin(deps, payload).await?;
    let correlation_id = report.correlation_id.clone();
    let origin = input.origin(&deps.config.region);
    let aws = deps.aws.with_deadline(remaining);
    if matches!(input, Input::AppStreamSession(_) | Input::WorkSpacesAccess(_) | Input::Alarm(_))
        || matches!(&input, Input::Command(command) if !matches!(command.command, Command::ExportRequested(_)))
    {
        return Err(not_ours(&correlation_id));
    }
    // Every input runs under the function lease (a job is created, adopted or stepped by one invocation at a
    // time, and a holder paused past its lease cannot act): a tick yields to the holder, a command or a
    // CloudTrail call is retried.
    let must_not_be_lost = !matches!(input, Input::Tick(_));
    let Some(lease) = lease_or_yield(deps, FUNCTION, &correlation_id, now, remaining, must_not_be_lost).await? else {
        report.status = "busy".into();
        return Ok(report);
    };
    let fence = lease.fence_on(deps.clock.clone());
    let ctx = ActContext {
        aws: &aws,
        ledger: &deps.ledger,
        function: FUNCTION,
        correlation_id: &correlation_id,
        dry_run: active.dry_run,
        fence: Some(&fence),
        now,
        remaining,
        event_bus: deps.config.event_bus.as_deref(),
    };
    let result = match &input {
        Input::Command(command) => match &command.command {
            Command::ExportRequested(request) => requested(&ctx, &active, request, &origin, report).await,
            _ => Err(not_ours(&correlation_id)),
        },
        Input::CloudTrail(event) => adopt_from_cloudtrail(deps, &ctx, &active, &event.detail, report).await,
        Input::Tick(_) => {
            let mut result = chase_all(&ctx, &active, &origin, &mut report).await;
            if result.is_ok() {
                result = chase_imports(&ctx, &mut report).await;
            }
            result.map(|()| {
                report.status = "chased".into();
                report
            })
        }
        Input::AppStreamSession(_) | Input::WorkSpacesAccess(_) | Input::Alarm(_) => Err(not_ours(&correlation_id)),
    };
    finish_under_lease(deps, FUNCTION, &lease, &correlation_id).await;
    result
}

fn not_ours(correlation_id: &str) -> AutopilotError {
    AutopilotError::invalid_input(format!(
        "{FUNCTION} does not handle this input (event {correlation_id}); check the EventBridge rules"
    ))
}

/// Checks a command's fields; every problem is named.
fn validate(request: &ExportRequested) -> Result<(), String> {
    let mut problems = Vec::new();
    let image_ok = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    if request.image_name.is_empty() || request.image_name.len() > 100 || !request.image_name.chars().all(image_ok) {
        problems.push(format!("detail.imageName: {:?} is not an image name", request.image_name));
    }
    let ami_ok = |c: char| c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c);
    if !(3..=128).contains(&request.ami_name.len()) || !request.ami_name.chars().all(ami_ok) {
        problems.push(format!(
            "detail.amiName: {:?} is not an AMI name (3 to 128 letters, digits and ( ) [ ] . / - ' @ _ or space)",
            request.ami_name
        ));
    }
    if !is_role_arn(&request.iam_role_arn) {
        problems.push(format!(
            "detail.iamRoleArn: {:?} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
            request.iam_role_arn
        ));
    }
    if let Some(retry) = &request.retry {
        if !(1..=10).contains(&retry.max_attempts) {
            problems.push(format!("detail.retry.maxAttempts: {} is not between 1 and 10", retry.max_attempts));
        }
        if let Some(Err(error)) = retry.backoff.as_deref().map(parse_duration) {
            problems.push(format!("detail.retry.backoff: {error}"));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
}

fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
            && account.len() == 12
            && account.chars().all(|c| c.is_ascii_digit())
            && resource.strip_prefix("role/").is_some_and(|name| !name.is_empty()))
}

/// `Export Requested`: validate, check the image, create the job once, take its first step.
/// The resource key audit records about `id` of `kind` are filed under, in the account and region `origin`.
fn filed_under(origin: &(String, String), kind: ResourceKind, id: &str) -> Result<String, AutopilotError> {
    ResourceRef::new(&origin.0, &origin.1, kind, id).map(|r| r.key()).map_err(AutopilotError::invalid_input)
}

async fn requested(
    ctx: &ActContext<'_>,
    active: &ActivePolicy,
    request: &ExportRequested,
    origin: &(String, String),
    mut report: Report,
) -> Result<Report, AutopilotError> {
    let id = ctx.correlation_id.to_owned();
    let resource = filed_under(origin, ResourceKind::ExportTask, &id)?;
    if let Some(existing) = act::load(ctx.ledger, &id).await? {
        // A redelivery: the job exists; take its next step (a no-op unless it is due).
        report.status = "requested".into();
        let step = decide(&existing.state, None, ctx.now);
        if matches!(step, crate::decide::Step::Recover | crate::decide::Step::Create { .. }) {
            report.actions.push(act::step(ctx, existing.state, existing.version, None, step).await?);
        }
        return Ok(report);
    }
    let refuse = async |reason: String| -> Result<Report, AutopilotError> {
        let record = AuditRecord {
            at: ctx.now,
            function: FUNCTION.into(),
            resource: resource.clone(),
            action: "Export Requested".into(),
            outcome: AuditOutcome::Failed,
            reason: reason.clone(),
            correlation_id: id.clone(),
            details: serde_json::to_value(request).unwrap_or_default(),
        };
        ctx.ledger.append_audit(&record).await.map_err(classified)?;
        Err(AutopilotError::invalid_input(format!("Export Requested {id} refused: {reason}")))
    };
    if let Err(reason) = validate(request) {
        return refuse(reason).await;
    }
    report.api_calls += 1;
    match ctx.aws.appstream.describe_images().names(&request.image_name).send().await {
        Ok(output) if output.images().iter().any(|i| i.name() == Some(request.image_name.as_str())) => {}
        Ok(_) => return refuse(format!("the image {} does not exist", request.image_name)).await,
        Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
            return refuse(format!("the image {} does not exist", request.image_name)).await;
        }
        Err(error) => {
            return Err(AutopilotError::new(
                sdk_error_class(&error),
                format!("DescribeImages: {}", sdk_error_message(&error)),
            ));
        }
    }
    let exports = &active.policy.exports;
    let retry = request.retry.as_ref();
    let job = Job {
        id: id.clone(),
        resource,
        origin: Origin::Requested,
        image_name: request.image_name.clone(),
        ami_name: request.ami_name.clone(),
        iam_role_arn: Some(request.iam_role_arn.clone()),
        ami_description: request.ami_description.clone(),
        tags: request.tag_specifications.clone(),
        max_attempts: retry.map_or(exports.max_attempts, |r| r.max_attempts),
        backoff: retry
            .and_then(|r| r.backoff.as_deref())
            .and_then(|b| parse_duration(b).ok())
            .unwrap_or(exports.backoff),
        max_duration: exports.max_duration,
        requested_at: ctx.now,
        attempts: Vec::new(),
        next_check_at: ctx.now,
        escalated_at: None,
        reported_state: None,
        ending: None,
    };
    if ctx.dry_run {
        let record = AuditRecord {
            at: ctx.now,
            function: FUNCTION.into(),
            resource: act::audit_resource(&job),
            action: "CreateExportImageTask".into(),
            outcome: AuditOutcome::DryRun,
            reason: "Export Requested (dry-run: no task created, no job kept)".into(),
            correlation_id: id.clone(),
            details: serde_json::to_value(request).unwrap_or_default(),
        };
        ctx.ledger.append_audit(&record).await.map_err(classified)?;
        report.status = "dry-run".into();
        return Ok(report);
    }
    let version = match act::save(ctx, &job, None).await {
        Ok(version) => version,
        // Another delivery created it first: it takes the first step.
        Err(LedgerError::VersionConflict { .. }) => {
            report.status = "requested".into();
            return Ok(report);
        }
        Err(error) => return Err(classified(error)),
    };
    let step = decide(&job, None, ctx.now);
    report.actions.push(act::step(ctx, job, version, None, step).await?);
    report.status = "requested".into();
    Ok(report)
}

/// An adopted job for a task someone else created.
fn adopted_job(
    task: &TaskView,
    active: &ActivePolicy,
    origin: &(String, String),
    now: DateTime<Utc>,
) -> Result<Job, AutopilotError> {
    let id = format!("task-{}", task.task_id);
    Ok(Job {
        resource: filed_under(origin, ResourceKind::ExportTask, &id)?,
        id,
        origin: Origin::Adopted,
        image_name: task.image_name.clone(),
        ami_name: task.ami_name.clone(),
        iam_role_arn: None,
        ami_description: None,
        tags: BTreeMap::new(),
        max_attempts: 1,
        backoff: active.policy.exports.backoff,
        max_duration: active.policy.exports.max_duration,
        requested_at: if task.created_at.timestamp() > 0 { task.created_at.min(now) } else { now },
        attempts: vec![crate::decide::Attempt {
            number: 1,
            intent_at: task.created_at.min(now),
            task_id: Some(task.task_id.clone()),
            state: Some(task.state.clone()),
            ended_at: None,
            error: task.error.clone(),
            ami_id: task.ami_id.clone(),
        }],
        next_check_at: now,
        escalated_at: None,
        reported_state: None,
        ending: None,
    })
}

/// Saves an adopted job unless one exists; true when it was new.
async fn adopt(ctx: &ActContext<'_>, job: &Job) -> Result<bool, AutopilotError> {
    match act::save(ctx, job, None).await {
        Ok(_) => {
            tracing::info!(job = %job.id, image = %job.image_name, "export task adopted");
            Ok(true)
        }
        Err(LedgerError::VersionConflict { .. }) => Ok(false),
        Err(error) => Err(classified(error)),
    }
}

async fn adopt_from_cloudtrail(
    deps: &Deps,
    ctx: &ActContext<'_>,
    active: &ActivePolicy,
    call: &CloudTrailCall,
    mut report: Report,
) -> Result<Report, AutopilotError> {
    let task_id = match call.api_call().map_err(classified)? {
        ApiCall::CreateExportImageTask { task_id, .. } => task_id,
        ApiCall::CreateImportedImage { name, source_ami_id } => {
            let place = (call_account(call).to_owned(), call.aws_region.clone());
            let job = ImportJob {
                resource: filed_under(&place, ResourceKind::Image, &name)?,
                image_name: name,
                source_ami_id,
                requested_at: call.event_time.min(ctx.now),
                max_duration: active.policy.exports.max_duration,
                state: None,
                next_check_at: ctx.now,
                escalated_at: None,
                reported_state: None,
                ending: None,
            };
            let adopted =
                ctx.ledger.put_work_item(imports::KIND, &job.image_name, &job, None, None, ctx.now, true, None).await;
            report.status = match adopted {
                Ok(_) => "adopted".into(),
                Err(LedgerError::VersionConflict { .. }) => "ours".into(),
                Err(error) => return Err(classified(error)),
            };
            return Ok(report);
        }
        _ => {
            report.status = "ignored".into();
            return Ok(report);
        }
    };
    if is_own_call(call, &deps.config.own_role_name) {
        report.status = "ours".into();
        return Ok(report);
    }
    let Some(task_id) = task_id else {
        report.status = "ignored".into();
        return Ok(report);
    };
    report.api_calls += 1;
    let Some(task) = get_task(ctx.aws, &task_id).await.map_err(classified)? else {
        return Err(AutopilotError::retryable(format!("export task {task_id} is not visible yet")));
    };
    if belongs_to_a_job(ctx.ledger, &task).await? {
        report.status = "ours".into();
        return Ok(report);
    }
    let place = (call_account(call).to_owned(), call.aws_region.clone());
    let job = adopted_job(&task, active, &place, ctx.now)?;
    report.status = if adopt(ctx, &job).await? { "adopted" } else { "ours" }.into();
    Ok(report)
}

/// The tick: every open job's next step, then adoption of tasks in flight that no job knows.
async fn chase_all(
    ctx: &ActContext<'_>,
    active: &ActivePolicy,
    origin: &(String, String),
    report: &mut Report,
) -> Result<(), AutopilotError> {
    let (listed, calls) = list_tasks(ctx.aws, Vec::new()).await.map_err(classified)?;
    report.api_calls += calls;
    let by_id: BTreeMap<&str, &TaskView> = listed.iter().map(|t| (t.task_id.as_str(), t)).collect();
    // The open jobs from the index (eventually consistent), then each read fresh: one BatchGetItem per 100.
    let ids: Vec<String> =
        ctx.ledger.open_work_items::<Job>(act::KIND).await.map_err(classified)?.into_iter().map(|(id, _)| id).collect();
    let mut fresh = ctx.ledger.get_work_items::<Job>(act::KIND, &ids).await.map_err(classified)?;
    let mut known: BTreeSet<String> = BTreeSet::new();
    for id in &ids {
        let Some(fresh) = fresh.remove(id) else { continue };
        let (job, version) = (fresh.state, fresh.version);
        if !job.is_open() || job.next_check_at > ctx.now && job.current().is_some_and(|a| a.task_id.is_some()) {
            known.extend(job.attempts.iter().filter_map(|a| a.task_id.clone()));
            continue;
        }
        let task_id = job.current().and_then(|a| a.task_id.clone());
        let (task, listed) = match task_id.as_deref() {
            Some(id) => match by_id.get(id) {
                Some(task) => (Some((*task).clone()), true),
                None => {
                    report.api_calls += 1;
                    (get_task(ctx.aws, id).await.map_err(classified)?, false)
                }
            },
            None => (None, false),
        };
        let step = cpu::measure(Step::Decide, || decide(&job, task.as_ref(), ctx.now));
        let done = match task.as_ref().filter(|task| listed && act::changes_nothing(&job, task, &step, ctx.now)) {
            // The listing is read every tick: a task it shows where the job last saw it needs no write.
            Some(_) => act::unchanged(&job, &step),
            None => cpu::metered(Step::Act, act::step(ctx, job, version, task.as_ref(), step)).await?,
        };
        report.api_calls += done.api_calls;
        if let Some(id) = done.detail.as_ref().filter(|_| done.result == "adopted" || done.result == "applied") {
            known.insert(id.clone());
        }
        report.actions.push(done);
        if let Some(id) = task_id {
            known.insert(id);
        }
    }
    let unknown: Vec<&TaskView> =
        listed.iter().filter(|t| t.state == "EXPORTING" && !known.contains(&t.task_id)).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    // The open jobs as they are now (the steps above may have recovered tasks), read once for every candidate.
    let open: Vec<Job> = ctx
        .ledger
        .open_work_items::<Job>(act::KIND)
        .await
        .map_err(classified)?
        .into_iter()
        .map(|(_, j)| j.state)
        .collect();
    for task in unknown {
        let job = adopted_job(task, active, origin, ctx.now)?;
        if !claimed_by(&open, task) && act::load(ctx.ledger, &job.id).await?.is_none() {
            cpu::metered(Step::Act, adopt(ctx, &job)).await?;
            report.actions.push(StepReport {
                job: job.id.clone(),
                step: "Adopt".into(),
                result: "adopted".into(),
                detail: Some(task.task_id.clone()),
                api_calls: 0,
            });
        }
    }
    Ok(())
}

/// The tick's imports: every open import that is due, with one `DescribeImages` per 25 names.
async fn chase_imports(ctx: &ActContext<'_>, report: &mut Report) -> Result<(), AutopilotError> {
    let open = ctx.ledger.open_work_items::<ImportJob>(imports::KIND).await.map_err(classified)?;
    let due: Vec<_> = open.into_iter().filter(|(_, job)| job.state.next_check_at <= ctx.now).collect();
    if due.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = due.iter().map(|(_, job)| job.state.image_name.clone()).collect();
    let (images, calls) = imports::describe(ctx.aws, &names).await.map_err(classified)?;
    report.api_calls += calls;
    for (_, job) in due {
        let image = images.get(&job.state.image_name);
        let step = cpu::measure(Step::Decide, || decide_import(&job.state, image, ctx.now));
        let name = job.state.image_name.clone();
        let acted = imports::act(ctx, job.state, job.version, image, step.clone());
        let result = cpu::metered(Step::Act, acted).await.map_err(classified)?;
        report.actions.push(StepReport {
            job: format!("import-{name}"),
            step: format!("{step:?}"),
            result: result.into(),
            detail: None,
            api_calls: 0,
        });
    }
    Ok(())
}

/// Whether a task belongs to one of our open jobs: one of its attempts has the task id, or its creation is
/// still being recorded (an intent without a task id, same image and AMI name, task created after the intent).
/// Such a task is chased or recovered by that job, never adopted separately.
async fn belongs_to_a_job(ledger: &Ledger, task: &TaskView) -> Result<bool, AutopilotError> {
    let jobs = ledger.open_work_items::<Job>(act::KIND).await.map_err(classified)?;
    let jobs: Vec<Job> = jobs.into_iter().map(|(_, job)| job.state).collect();
    Ok(claimed_by(&jobs, task))
}

/// Whether one of `jobs` has `task` (see [`belongs_to_a_job`]).
fn claimed_by(jobs: &[Job], task: &TaskView) -> bool {
    jobs.iter().any(|job| {
        job.attempts.iter().any(|a| a.task_id.as_deref() == Some(task.task_id.as_str()))
            || job.image_name == task.image_name
                && job.ami_name == task.ami_name
                && job
                    .current()
                    .is_some_and(|a| a.task_id.is_none() && task.created_at.timestamp() >= a.intent_at.timestamp())
    })
}

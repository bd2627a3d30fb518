//! An `Export Requested` command. Observe: the job a delivery of the same command created, and — for a valid
//! command without one — whether the image exists. Decide (pure): take the redelivered job's step, refuse (every
//! problem named), record a dry run, or create the job. Act: audit the refusal or the dry run, or save the job
//! and take its first step.

use crate::act::{self, ActContext, StepReport};
use crate::decide::{self, Job, Origin, Step};
use autopilot_shared::error::{AutopilotError, sdk_error_class, sdk_error_message};
use autopilot_shared::events::ExportRequested;
use autopilot_shared::invocation::Worked;
use autopilot_shared::ledger::LedgerError;
use autopilot_shared::ledger::audit::{AuditRecord, Outcome as AuditOutcome};
use autopilot_shared::ledger::state::Versioned;
use autopilot_shared::policy::ExportPolicy;
use autopilot_shared::policy::values::parse_duration;
use autopilot_shared::report::Status;
use autopilot_shared::runtime::classified;
use chrono::{DateTime, Utc};

/// What the command's decision needs to know.
#[derive(Debug)]
pub struct Seen {
    /// The job an earlier delivery of the command created.
    pub existing: Option<Versioned<Job>>,
    /// Whether the image exists; not looked up for a redelivery or an invalid command.
    pub image: Option<ImageFound>,
    /// The open job (its id) already exporting the same image to the same AMI name, if any (looked up with the
    /// image).
    pub same_export: Option<String>,
}

/// Whether `DescribeImages` knows the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFound {
    Exists,
    Missing,
}

/// The command, where its audit records are filed, and what the decision weighs it against.
#[derive(Debug)]
pub struct Request<'a> {
    /// The command's event id: the job's id.
    pub id: &'a str,
    /// The resource key its audit records are filed under.
    pub resource: &'a str,
    pub detail: &'a ExportRequested,
    pub exports: &'a ExportPolicy,
    pub now: DateTime<Utc>,
    pub dry_run: bool,
}

/// What to do with the command.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// A redelivery: the job exists. Its step is taken when it is to create or recover a task (a no-op
    /// otherwise: the tick chases it).
    Redelivered(Option<Step>),
    /// Not carried out; the reason names every problem.
    Refuse(String),
    /// Dry-run: the job it would have created, recorded, not kept.
    DryRun(Box<Job>),
    /// Create the job and take its first step.
    Create(Box<Job>),
}

/// Reads what the decision needs: the job, and the image only when the command is new and valid.
pub async fn observe(ctx: &ActContext<'_>, request: &Request<'_>) -> Result<(Seen, u32), AutopilotError> {
    let existing = act::load(ctx.ledger, request.id).await?;
    if existing.is_some() || !problems(request.detail).is_empty() {
        return Ok((Seen { existing, image: None, same_export: None }, 0));
    }
    let name = &request.detail.image_name;
    let image = match ctx.aws.appstream.describe_images().names(name).send().await {
        Ok(output) if output.images().iter().any(|i| i.name() == Some(name.as_str())) => ImageFound::Exists,
        Ok(_) => ImageFound::Missing,
        Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
            ImageFound::Missing
        }
        Err(error) => {
            let message = format!("DescribeImages: {}", sdk_error_message(&error));
            return Err(AutopilotError::new(sdk_error_class(&error), message));
        }
    };
    let same_export = crate::adopt::open_jobs(ctx.ledger)
        .await?
        .into_iter()
        // Another request's job (another event id). An adopted job may be this very request's task, created by
        // a first delivery that crashed before recording it and found by a tick since: the request recovers it.
        .find(|job| {
            job.origin == Origin::Requested
                && job.image_name == request.detail.image_name
                && job.ami_name == request.detail.ami_name
        })
        .map(|job| job.id);
    Ok((Seen { existing, image: Some(image), same_export }, 1))
}

/// Decides what to do with the command (pure).
pub fn decide(request: &Request<'_>, seen: &Seen) -> Decision {
    if let Some(existing) = &seen.existing {
        let step = decide::decide(&existing.state, None, request.now);
        return Decision::Redelivered(matches!(step, Step::Recover | Step::Create { .. }).then_some(step));
    }
    let problems = problems(request.detail);
    if !problems.is_empty() {
        return Decision::Refuse(problems.join("; "));
    }
    if seen.image != Some(ImageFound::Exists) {
        return Decision::Refuse(format!("the image {} does not exist", request.detail.image_name));
    }
    if let Some(other) = &seen.same_export {
        return Decision::Refuse(format!(
            "job {other} is already exporting image {} to AMI {} (an AMI name is unique in its account and region)",
            request.detail.image_name, request.detail.ami_name
        ));
    }
    let job = Box::new(job(request));
    if request.dry_run { Decision::DryRun(job) } else { Decision::Create(job) }
}

/// Carries out the decision.
pub async fn act(
    ctx: &ActContext<'_>,
    request: &Request<'_>,
    seen: Seen,
    decision: Decision,
    worked: &mut Worked<StepReport>,
) -> Result<(), AutopilotError> {
    let details = serde_json::to_value(request.detail).unwrap_or_default();
    let record = |resource: &str, action: &str, outcome, reason: &str| AuditRecord {
        at: ctx.now,
        function: ctx.function.to_owned(),
        resource: resource.to_owned(),
        action: action.into(),
        outcome,
        reason: reason.to_owned(),
        correlation_id: request.id.to_owned(),
        details: details.clone(),
    };
    match decision {
        Decision::Redelivered(step) => {
            worked.status = Status::Duplicate;
            if let (Some(step), Some(existing)) = (step, seen.existing) {
                worked.items.push(act::step(ctx, existing.state, existing.version, None, step).await?);
            }
            Ok(())
        }
        Decision::Refuse(reason) => {
            // Recorded once however often Lambda delivers the command again (its two retries of a failed
            // invocation): the command's records are filed under its own id.
            let known = ctx.ledger.audit_by_resource(request.resource).await.map_err(classified)?;
            if !known.iter().any(|r| r.action == "Export Requested" && r.outcome == AuditOutcome::Failed) {
                let refusal = record(request.resource, "Export Requested", AuditOutcome::Failed, &reason);
                ctx.ledger.append_audit(&refusal).await.map_err(classified)?;
            }
            Err(AutopilotError::invalid_input(format!("Export Requested {} refused: {reason}", request.id)))
        }
        Decision::DryRun(job) => {
            let reason = "Export Requested (dry-run: no task created, no job kept)";
            let dry = record(&act::audit_resource(&job), "CreateExportImageTask", AuditOutcome::DryRun, reason);
            ctx.ledger.append_audit(&dry).await.map_err(classified)?;
            worked.status = Status::DryRun;
            Ok(())
        }
        Decision::Create(job) => {
            worked.status = Status::Requested;
            let version = match act::save(ctx, &job, None).await {
                Ok(version) => version,
                // Another delivery created it first: it takes the first step.
                Err(LedgerError::VersionConflict { .. }) => return Ok(()),
                Err(error) => return Err(classified(error)),
            };
            let step = decide::decide(&job, None, ctx.now);
            worked.items.push(act::step(ctx, *job, version, None, step).await?);
            Ok(())
        }
    }
}

/// The job a valid command creates: the command's retry settings over the policy's.
fn job(request: &Request<'_>) -> Job {
    let (detail, exports) = (request.detail, request.exports);
    let retry = detail.retry.as_ref();
    Job {
        id: request.id.to_owned(),
        resource: request.resource.to_owned(),
        origin: Origin::Requested,
        image_name: detail.image_name.clone(),
        ami_name: detail.ami_name.clone(),
        iam_role_arn: Some(detail.iam_role_arn.clone()),
        ami_description: detail.ami_description.clone(),
        tags: detail.tag_specifications.clone(),
        max_attempts: retry.map_or(exports.max_attempts, |r| r.max_attempts),
        backoff: retry
            .and_then(|r| r.backoff.as_deref())
            .and_then(|b| parse_duration(b).ok())
            .unwrap_or(exports.backoff),
        max_duration: exports.max_duration,
        requested_at: request.now,
        attempts: Vec::new(),
        next_check_at: request.now,
        escalated_at: None,
        reported_state: None,
        ending: None,
    }
}

/// Every problem with a command's fields, named (empty when it is valid).
pub fn problems(request: &ExportRequested) -> Vec<String> {
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
    problems
}

fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if partition.starts_with("aws")
            && account.len() == 12
            && account.chars().all(|c| c.is_ascii_digit())
            && resource.strip_prefix("role/").is_some_and(|name| !name.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn command(image: &str) -> ExportRequested {
        serde_json::from_value(serde_json::json!({
            "imageName": image,
            "amiName": "golden-ami",
            "iamRoleArn": "arn:aws:iam::123456789012:role/export",
        }))
        .unwrap()
    }

    fn exports() -> ExportPolicy {
        ExportPolicy { max_attempts: 3, backoff: Duration::minutes(30), max_duration: Duration::hours(6) }
    }

    fn request<'a>(detail: &'a ExportRequested, exports: &'a ExportPolicy, dry_run: bool) -> Request<'a> {
        Request { id: "evt-1", resource: "r", detail, exports, now: DateTime::UNIX_EPOCH, dry_run }
    }

    #[test]
    fn a_valid_command_for_an_existing_image_creates_the_job_or_records_a_dry_run() {
        let (detail, exports) = (command("golden"), exports());
        let seen = Seen { existing: None, image: Some(ImageFound::Exists), same_export: None };
        let Decision::Create(job) = decide(&request(&detail, &exports, false), &seen) else { panic!("not created") };
        assert_eq!((job.id.as_str(), job.max_attempts, job.origin), ("evt-1", 3, Origin::Requested));
        assert!(matches!(decide(&request(&detail, &exports, true), &seen), Decision::DryRun(_)));
        // the same image to the same AMI name while another job exports it: refused, naming the job
        let busy = Seen { same_export: Some("evt-0".into()), ..seen };
        let Decision::Refuse(reason) = decide(&request(&detail, &exports, false), &busy) else { panic!("created") };
        assert!(reason.starts_with("job evt-0 is already exporting image golden to AMI"), "{reason}");
    }

    #[test]
    fn a_missing_image_or_a_bad_field_is_refused_with_every_problem_named() {
        let (detail, exports) = (command("golden"), exports());
        let missing = Seen { existing: None, image: Some(ImageFound::Missing), same_export: None };
        assert_eq!(
            decide(&request(&detail, &exports, false), &missing),
            Decision::Refuse("the image golden does not exist".into())
        );
        let mut bad = command("no spaces allowed");
        bad.iam_role_arn = "role".into();
        let unseen = Seen { existing: None, image: None, same_export: None };
        let Decision::Refuse(reason) = decide(&request(&bad, &exports, false), &unseen) else { panic!("accepted") };
        assert!(reason.contains("detail.imageName") && reason.contains("detail.iamRoleArn"), "{reason}");
    }

    #[test]
    fn a_redelivery_takes_only_a_creation_or_recovery_step() {
        let (detail, exports) = (command("golden"), exports());
        let fresh = job(&request(&detail, &exports, false));
        let seen = Seen {
            existing: Some(Versioned { state: fresh, version: 1, updated_at: None }),
            image: None,
            same_export: None,
        };
        assert_eq!(
            decide(&request(&detail, &exports, false), &seen),
            Decision::Redelivered(Some(Step::Create { attempt: 1 }))
        );
    }
}

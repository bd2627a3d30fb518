//! Imported images (`CreateImportedImage`): adopted from CloudTrail, chased with batched `DescribeImages` until
//! AVAILABLE (`Image Import Completed`) or FAILED (`Image Import Failed` with the image's errors); escalated
//! once past `max_duration` (`Image Import Stuck`); unknown states reported once.

use crate::decide::poll_interval;
use autopilot_shared::effect::Performed;
use autopilot_shared::ledger::state::{WorkItemListing, WorkItemWrite};
use autopilot_shared::report::ActionResult;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The work item kind of imported images.
pub const KIND: &str = "IMPORT";

/// One image being imported: the work item `IMPORT#<image name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportJob {
    pub image_name: String,
    /// The resource key its audit records are filed under (the image's).
    pub resource: String,
    pub source_ami_id: String,
    pub requested_at: DateTime<Utc>,
    pub max_duration: Duration,
    /// The state last seen.
    pub state: Option<String>,
    pub next_check_at: DateTime<Utc>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub reported_state: Option<String>,
    /// `AVAILABLE` or `FAILED` once finished.
    pub ending: Option<String>,
}

/// What `DescribeImages` says about the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageView {
    pub name: String,
    pub state: String,
    /// `ImageErrors` as `CODE: message`.
    pub errors: Vec<String>,
}

/// The next step for an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportStep {
    Sleep,
    Chase {
        next: DateTime<Utc>,
        escalate: bool,
        report: Option<String>,
    },
    Completed,
    Failed {
        errors: Vec<String>,
    },
    /// The image is gone (deleted, or the import was refused before the image existed).
    Vanished,
}

/// Decides an import's next step. `image` is `None` when `DescribeImages` did not return it.
impl std::fmt::Display for ImportStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportStep::Sleep => f.write_str("sleep"),
            ImportStep::Chase { next, escalate, report } => {
                crate::decide::chase_words(f, *next, *escalate, report.as_deref())
            }
            ImportStep::Completed => f.write_str("completed"),
            ImportStep::Failed { errors } => write!(f, "failed: {}", errors.join("; ")),
            ImportStep::Vanished => f.write_str("vanished (the image is gone)"),
        }
    }
}

/// How long an imported image that was never seen may take to be described before it counts as gone.
const VISIBLE_WITHIN: Duration = Duration::minutes(15);

pub fn decide_import(job: &ImportJob, image: Option<&ImageView>, now: DateTime<Utc>) -> ImportStep {
    if job.ending.is_some() || now < job.next_check_at {
        return ImportStep::Sleep;
    }
    let age = now - job.requested_at;
    let Some(image) = image else {
        // An image CloudTrail has just told of may not be described yet (the service is eventually consistent):
        // looked for again a little later before it counts as gone.
        if job.state.is_none() && age < VISIBLE_WITHIN {
            return ImportStep::Chase { next: now + Duration::minutes(5), escalate: false, report: None };
        }
        return ImportStep::Vanished;
    };
    let chase = |unknown: Option<String>| ImportStep::Chase {
        next: now + poll_interval(age),
        escalate: age > job.max_duration && job.escalated_at.is_none(),
        report: unknown.filter(|state| job.reported_state.as_deref() != Some(state.as_str())),
    };
    match image.state.as_str() {
        "AVAILABLE" => ImportStep::Completed,
        "FAILED" => ImportStep::Failed { errors: image.errors.clone() },
        // DELETING: someone is deleting it; the next look finds it gone (`Image Import Failed`: it no longer exists).
        "IMPORTING" | "VALIDATING" | "PENDING" | "CREATING" | "COPYING" | "DELETING" => chase(None),
        other => chase(Some(other.to_owned())),
    }
}

/// Names per `DescribeImages` call.
const BATCH: usize = 25;

fn image_view(image: &aws_sdk_appstream::types::Image) -> ImageView {
    let mut errors = autopilot_shared::error::appstream_resource_errors(image.image_errors());
    // Why the state changed (IMAGE_IMPORT_FAILURE, …): the reason AWS gives when it lists no image errors.
    if errors.is_empty()
        && let Some(reason) = image.state_change_reason()
    {
        let code = reason.code().map_or("Unknown", |c| c.as_str());
        errors.push(format!("{code}: {}", reason.message().unwrap_or_default()));
    }
    ImageView {
        name: image.name().unwrap_or_default().to_owned(),
        state: image.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        errors,
    }
}

/// The images named, in batches of 25; a batch with a missing name (the service refuses it whole) is looked
/// up one name at a time. Returns the images found and the calls made.
pub async fn describe(
    aws: &autopilot_shared::clients::AwsClients,
    names: &[String],
) -> Result<(std::collections::BTreeMap<String, ImageView>, u32), autopilot_shared::error::ObserveError> {
    let (mut found, mut calls) = (std::collections::BTreeMap::new(), 0);
    for batch in names.chunks(BATCH) {
        calls += 1;
        match aws.appstream.describe_images().set_names(Some(batch.to_vec())).send().await {
            Ok(output) => found.extend(output.images().iter().map(image_view).map(|v| (v.name.clone(), v))),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
                for name in batch {
                    calls += 1;
                    match aws.appstream.describe_images().names(name).send().await {
                        Ok(output) => found.extend(output.images().iter().map(image_view).map(|v| (v.name.clone(), v))),
                        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {}
                        Err(e) => return Err(autopilot_shared::error::ObserveError::sdk("images", &e)),
                    }
                }
            }
            Err(error) => return Err(autopilot_shared::error::ObserveError::sdk("images", &error)),
        }
    }
    Ok((found, calls))
}

/// Carries out one import step; returns its result for the report.
pub async fn act(
    ctx: &crate::act::ActContext<'_>,
    mut job: ImportJob,
    version: u64,
    image: Option<&ImageView>,
    step: ImportStep,
) -> Result<ActionResult, autopilot_shared::ledger::LedgerError> {
    use autopilot_shared::ledger::audit::{AuditRecord, Outcome};
    if let Some(image) = image {
        job.state = Some(image.state.clone());
    }
    let record = |action: &str, reason: String| AuditRecord {
        at: ctx.now,
        function: ctx.function.to_owned(),
        resource: job.resource.clone(),
        action: action.to_owned(),
        outcome: Outcome::Applied,
        reason,
        correlation_id: ctx.correlation_id.to_owned(),
        details: serde_json::json!({ "image": job.image_name, "sourceAmiId": job.source_ami_id }),
    };
    let detail = |extra: serde_json::Value| {
        let mut detail = serde_json::json!({
            "image": job.image_name,
            "sourceAmiId": job.source_ami_id,
            "requestedAt": job.requested_at,
            "durationSeconds": (ctx.now - job.requested_at).num_seconds(),
        });
        if let (Some(target), Some(extra)) = (detail.as_object_mut(), extra.as_object()) {
            target.extend(extra.clone());
        }
        detail
    };
    let key = |what: &str| format!("import#{}#{}#{what}", job.image_name, job.requested_at.timestamp());
    let result = match step {
        ImportStep::Sleep => return Ok(ActionResult::None),
        ImportStep::Chase { next, escalate, report } => {
            job.next_check_at = next;
            if escalate {
                let reason = format!("import running longer than {} s", job.max_duration.num_seconds());
                let d = detail(serde_json::json!({ "state": job.state }));
                let sent = crate::act::notify_once(
                    ctx,
                    key("stuck"),
                    record("Image Import Stuck", reason),
                    "Image Import Stuck",
                    d,
                )
                .await?;
                // Not sent (EventBridge failed): sent again at the next look.
                job.escalated_at = sent.done().then_some(ctx.now);
            }
            if let Some(state) = report {
                let reason = format!("imported image in state {state}, which this version does not know: still chased");
                let d = detail(serde_json::json!({ "state": state }));
                let event = "Image Import Unknown State";
                let sent =
                    crate::act::notify_once(ctx, key(&format!("state-{state}")), record(event, reason), event, d)
                        .await?;
                if sent.done() {
                    job.reported_state = Some(state);
                }
            }
            ActionResult::Recorded
        }
        ImportStep::Completed => {
            let event = "Image Import Completed";
            let d = detail(serde_json::json!({ "state": "AVAILABLE" }));
            let sent =
                crate::act::notify_once(ctx, key("completed"), record(event, "image AVAILABLE".into()), event, d)
                    .await?;
            closed(&mut job, &sent, "AVAILABLE", ctx.now)
        }
        ImportStep::Failed { errors } => {
            let event = "Image Import Failed";
            let reason = format!("image FAILED: {}", errors.join("; "));
            let d = detail(serde_json::json!({ "state": "FAILED", "errors": errors }));
            let sent = crate::act::notify_once(ctx, key("failed"), record(event, reason), event, d).await?;
            closed(&mut job, &sent, "FAILED", ctx.now)
        }
        ImportStep::Vanished => {
            let event = "Image Import Failed";
            let reason = "the image no longer exists".to_owned();
            let d = detail(serde_json::json!({ "state": "DELETED", "errors": [reason.clone()] }));
            let sent = crate::act::notify_once(ctx, key("failed"), record(event, reason), event, d).await?;
            closed(&mut job, &sent, "DELETED", ctx.now)
        }
    };
    let open = job.ending.is_none();
    let expires = (!open).then_some(ctx.now + crate::act::KEEP_FINISHED);
    ctx.ledger
        .put_work_item(
            WorkItemWrite {
                kind: KIND,
                id: &job.image_name,
                state: &job,
                expected: Some(version),
                listing: WorkItemListing::of(open, expires),
            },
            ctx.fence,
            ctx.now,
        )
        .await?;
    Ok(result)
}

/// Closes `job` with `ending` once its outcome is announced; a failed announcement leaves it open, looked at
/// again (and announced again) at the next tick.
fn closed(job: &mut ImportJob, sent: &Performed, ending: &str, now: DateTime<Utc>) -> ActionResult {
    if sent.done() {
        job.ending = Some(ending.to_owned());
    } else {
        job.next_check_at = now;
    }
    sent.result()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn job() -> ImportJob {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap();
        ImportJob {
            image_name: "imported".into(),
            resource: "appstream#123456789012#eu-central-1#image#imported".into(),
            source_ami_id: "ami-1".into(),
            requested_at: at,
            max_duration: Duration::hours(2),
            state: None,
            next_check_at: at,
            escalated_at: None,
            reported_state: None,
            ending: None,
        }
    }

    fn image(state: &str) -> ImageView {
        ImageView { name: "imported".into(), state: state.into(), errors: vec!["VALIDATION_ERROR: bad".into()] }
    }

    #[test]
    fn imports_are_chased_to_available_or_failed() {
        let j = job();
        let t = |minutes| j.requested_at + Duration::minutes(minutes);
        assert!(matches!(
            decide_import(&j, Some(&image("IMPORTING")), t(5)),
            ImportStep::Chase { escalate: false, report: None, .. }
        ));
        assert!(matches!(
            decide_import(&j, Some(&image("VALIDATING")), t(150)),
            ImportStep::Chase { escalate: true, .. }
        ));
        assert_eq!(decide_import(&j, Some(&image("AVAILABLE")), t(60)), ImportStep::Completed);
        assert_eq!(
            decide_import(&j, Some(&image("FAILED")), t(60)),
            ImportStep::Failed { errors: vec!["VALIDATION_ERROR: bad".into()] }
        );
        assert_eq!(decide_import(&j, None, t(60)), ImportStep::Vanished);
        // not described yet, just after the CloudTrail event: looked for again, not failed
        assert!(matches!(decide_import(&j, None, t(0)), ImportStep::Chase { escalate: false, report: None, .. }));
        assert_eq!(decide_import(&j, None, t(15)), ImportStep::Vanished, "never seen within 15 minutes");
        let seen = ImportJob { state: Some("IMPORTING".into()), ..j.clone() };
        assert_eq!(decide_import(&seen, None, t(5)), ImportStep::Vanished, "seen, then gone: deleted");
        // being deleted: a known state, looked at again (gone at the next look: Vanished)
        let ImportStep::Chase { report, .. } = decide_import(&j, Some(&image("DELETING")), t(60)) else { panic!() };
        assert_eq!(report, None);
        let ImportStep::Chase { report, .. } = decide_import(&j, Some(&image("QUARANTINED")), t(60)) else { panic!() };
        assert_eq!(report.as_deref(), Some("QUARANTINED"));
        let mut later = j.clone();
        later.next_check_at = t(30);
        assert_eq!(decide_import(&later, Some(&image("IMPORTING")), t(10)), ImportStep::Sleep);
    }
}

//! Table tests of the export-chaser's decide step.

use super::*;
use chrono::TimeZone;

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap() + Duration::minutes(minutes)
}

fn job(origin: Origin, attempts: Vec<Attempt>) -> Job {
    Job {
        id: "evt-1".into(),
        resource: "appstream#123456789012#eu-central-1#export-task#evt-1".into(),
        origin,
        image_name: "golden".into(),
        ami_name: "golden-ami".into(),
        iam_role_arn: Some("arn:aws:iam::123456789012:role/export".into()),
        ami_description: None,
        tags: Default::default(),
        max_attempts: 3,
        backoff: Duration::minutes(30),
        max_duration: Duration::hours(6),
        requested_at: t(0),
        attempts,
        next_check_at: t(0),
        escalated_at: None,
        reported_state: None,
        ending: None,
    }
}

fn attempt(number: u32, task_id: Option<&str>) -> Attempt {
    Attempt {
        number,
        intent_at: t(0),
        task_id: task_id.map(str::to_owned),
        state: None,
        ended_at: None,
        error: None,
        ami_id: None,
        create_failures: 0,
    }
}

fn task(state: &str, code: Option<&str>) -> TaskView {
    TaskView {
        task_id: "task-1".into(),
        image_name: "golden".into(),
        ami_name: "golden-ami".into(),
        state: state.into(),
        created_at: t(0),
        ami_id: (state == "COMPLETED").then(|| "ami-0123".into()),
        error: code.map(|c| TaskError { code: c.into(), message: "m".into() }),
    }
}

#[test]
fn a_new_request_creates_and_an_intent_without_a_task_id_recovers_first() {
    assert_eq!(decide(&job(Origin::Requested, vec![]), None, t(0)), Step::Create { attempt: 1 });
    assert_eq!(decide(&job(Origin::Adopted, vec![]), None, t(0)), Step::Sleep);
    assert_eq!(decide(&job(Origin::Requested, vec![attempt(1, None)]), None, t(1)), Step::Recover);
}

#[test]
fn a_task_the_service_no_longer_knows_is_looked_for_a_while_then_fails_its_job() {
    let j = job(Origin::Requested, vec![attempt(1, Some("task-1"))]);
    // just created: not visible yet, looked for again at the next tick
    assert_eq!(decide(&j, None, t(2)), Step::Chase { next: t(7), escalate: false, report: None });
    // later: gone, and the job ends saying so instead of being looked for at every tick for ever
    let Step::Fail { reason } = decide(&j, None, t(120)) else { panic!("{:?}", decide(&j, None, t(120))) };
    assert!(reason.contains("task-1 no longer exists"), "{reason}");
}

#[test]
fn completed_finishes_with_the_ami() {
    let j = job(Origin::Requested, vec![attempt(1, Some("task-1"))]);
    assert_eq!(decide(&j, Some(&task("COMPLETED", None)), t(90)), Step::Complete { ami_id: "ami-0123".into() });
}

#[test]
fn exporting_is_polled_less_often_as_it_ages_and_escalated_once_past_max_duration() {
    let j = job(Origin::Requested, vec![attempt(1, Some("task-1"))]);
    let next = |now| match decide(&j, Some(&task("EXPORTING", None)), now) {
        Step::Chase { next, escalate: false, report: None } => next - now,
        other => panic!("{other:?}"),
    };
    assert_eq!(next(t(5)), Duration::minutes(5));
    assert_eq!(next(t(30)), Duration::minutes(10));
    assert_eq!(next(t(120)), Duration::minutes(30));
    assert_eq!(next(t(360)), Duration::hours(1));
    assert!(matches!(decide(&j, Some(&task("EXPORTING", None)), t(361)), Step::Chase { escalate: true, .. }));
    let mut escalated = j.clone();
    escalated.escalated_at = Some(t(361));
    assert!(matches!(decide(&escalated, Some(&task("EXPORTING", None)), t(420)), Step::Chase { escalate: false, .. }));
}

#[test]
fn unknown_states_are_reported_once_and_chased() {
    let mut j = job(Origin::Requested, vec![attempt(1, Some("task-1"))]);
    let Step::Chase { report, .. } = decide(&j, Some(&task("PAUSED", None)), t(10)) else { panic!() };
    assert_eq!(report.as_deref(), Some("PAUSED"));
    j.reported_state = Some("PAUSED".into());
    let Step::Chase { report, .. } = decide(&j, Some(&task("PAUSED", None)), t(20)) else { panic!() };
    assert_eq!(report, None);
}

#[test]
fn retryable_failures_are_retried_after_backoff_up_to_max_attempts() {
    let mut first = attempt(1, Some("task-1"));
    first.ended_at = Some(t(60));
    let j = job(Origin::Requested, vec![first]);
    let failed = task("FAILED", Some("INTERNAL_SERVICE_ERROR"));
    assert!(matches!(decide(&j, Some(&failed), t(61)), Step::RetryAt { attempt: 2, at, .. } if at == t(90)));
    assert_eq!(decide(&j, Some(&failed), t(90)), Step::Create { attempt: 2 });
    // backoff doubles
    let mut second = attempt(2, Some("task-2"));
    second.ended_at = Some(t(200));
    let j2 = job(Origin::Requested, vec![attempt(1, Some("task-1")), second]);
    assert!(
        matches!(decide(&j2, Some(&task("TIMED_OUT", None)), t(201)), Step::RetryAt { attempt: 3, at, .. } if at == t(260))
    );
    // the last attempt fails for good, naming how many were used
    let j3 = job(Origin::Requested, vec![attempt(1, Some("a")), attempt(2, Some("b")), attempt(3, Some("c"))]);
    let Step::Fail { reason } = decide(&j3, Some(&task("TIMED_OUT", None)), t(500)) else { panic!() };
    assert!(reason.contains("3 of 3 attempts"), "{reason}");
}

#[test]
fn permanent_and_unknown_error_codes_are_not_retried() {
    let j = job(Origin::Requested, vec![attempt(1, Some("task-1"))]);
    for code in ["IAM_SERVICE_ROLE_IS_MISSING", "IMAGE_NOT_FOUND", "INVALID_AMI_NAME", "SOMETHING_NEW"] {
        let Step::Fail { reason } = decide(&j, Some(&task("FAILED", Some(code))), t(60)) else { panic!("{code}") };
        assert!(reason.contains(code) && reason.contains("not retryable"), "{reason}");
    }
    // an adopted task is chased, never re-created
    let adopted = job(Origin::Adopted, vec![attempt(1, Some("task-1"))]);
    assert!(matches!(decide(&adopted, Some(&task("TIMED_OUT", None)), t(60)), Step::Fail { .. }));
}

#[test]
fn the_retry_classification_is_documented_by_examples() {
    let error = |code: &str| TaskError { code: code.into(), message: String::new() };
    assert!(is_retryable("TIMED_OUT", None));
    assert!(is_retryable("FAILED", Some(&error("INTERNAL_SERVICE_ERROR"))));
    assert!(is_retryable("FAILED", Some(&error("ThrottlingException"))));
    assert!(is_retryable("FAILED", Some(&error("INSUFFICIENT_CAPACITY"))));
    assert!(!is_retryable("FAILED", Some(&error("IAM_SERVICE_ROLE_IS_MISSING"))));
    assert!(!is_retryable("FAILED", Some(&error("DOMAIN_JOIN_INTERNAL_SERVICE_ERROR_ACCESS_DENIED"))));
    assert!(!is_retryable("FAILED", Some(&error("EXPORT_IMAGE_FAILED"))));
    assert!(!is_retryable("FAILED", None));
}

#[test]
fn a_task_that_could_not_be_created_is_tried_again_after_a_backoff_and_the_job_fails_after_max_attempts() {
    let failed = |failures: u32| {
        let mut attempt = attempt(1, None);
        attempt.create_failures = failures;
        attempt.error =
            Some(TaskError { code: "CreateExportImageTask".into(), message: "InternalServerException".into() });
        let mut job = job(Origin::Requested, vec![attempt]);
        job.next_check_at = t(30);
        job
    };
    // never tried, or interrupted: find the task first
    assert_eq!(decide(&job(Origin::Requested, vec![attempt(1, None)]), None, t(0)), Step::Recover);
    // failed once: nothing before the backoff, then find it (the call may have made it after all) or create again
    assert_eq!(decide(&failed(1), None, t(29)), Step::Sleep);
    assert_eq!(decide(&failed(2), None, t(30)), Step::Recover);
    // as many failures as attempts: the job fails, with the last error
    let Step::Fail { reason } = decide(&failed(3), None, t(30)) else { panic!("fails") };
    assert_eq!(reason, "CreateExportImageTask failed 3 times: InternalServerException");
}

//! The decide step of the export-chaser: a pure function from one export job (the ledger's work item), what
//! the service says about its current task, and `now`, to the next step. No IO, no clock.
//!
//! A job is one requested (or adopted) export of an image to an AMI; each attempt is one export image task.
//! Creation is exactly-once although the API has no client token: an attempt's *intent* is recorded before
//! `CreateExportImageTask`; an attempt with an intent and no task id means the function may have died between
//! the call and the record, so the next step is to look for the task (`ListExportImageTasks` by image and AMI
//! name, created at or after the intent) and adopt it, and only when none exists to create it.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Where a job came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// Our `Export Requested` command: we create the tasks (and retry them).
    Requested,
    /// A task someone else created (CloudTrail event or found in the list): we chase it, never re-create it.
    Adopted,
}

/// An export task's error as the service reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskError {
    pub code: String,
    pub message: String,
}

/// One attempt: one export image task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub number: u32,
    /// When the intent to create was recorded (before the call).
    pub intent_at: DateTime<Utc>,
    pub task_id: Option<String>,
    /// The task's state as last seen (EXPORTING, COMPLETED, FAILED, TIMED_OUT, or a state this build does not
    /// know).
    pub state: Option<String>,
    pub ended_at: Option<DateTime<Utc>>,
    pub error: Option<TaskError>,
    pub ami_id: Option<String>,
    /// `CreateExportImageTask` calls for this attempt that failed after the SDK's own retries (throttled, the
    /// service unavailable): the next is made after a backoff, and the job fails after `max_attempts` of them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub create_failures: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Ending {
    Completed { ami_id: String, at: DateTime<Utc> },
    Failed { at: DateTime<Utc>, reason: String },
}

/// One export job: the work item `EXPORT#<job id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    /// The resource key its audit records are filed under (`appstream#<account>#<region>#export-task#<id>`).
    pub resource: String,
    pub origin: Origin,
    pub image_name: String,
    pub ami_name: String,
    /// Needed to create a task; unknown for adopted tasks.
    pub iam_role_arn: Option<String>,
    pub ami_description: Option<String>,
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    pub max_attempts: u32,
    pub backoff: Duration,
    pub max_duration: Duration,
    pub requested_at: DateTime<Utc>,
    pub attempts: Vec<Attempt>,
    /// Do not look at the job before this.
    pub next_check_at: DateTime<Utc>,
    /// `Export Stuck` was sent (once per job).
    pub escalated_at: Option<DateTime<Utc>>,
    /// The unknown state last reported, so each is reported once.
    pub reported_state: Option<String>,
    pub ending: Option<Ending>,
}

impl Job {
    /// The current attempt (the last one).
    pub fn current(&self) -> Option<&Attempt> {
        self.attempts.last()
    }

    /// Whether the job still needs work.
    pub fn is_open(&self) -> bool {
        self.ending.is_none()
    }
}

/// What the service says about the current attempt's task now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    pub task_id: String,
    /// The exported image's name (the last part of its ARN).
    pub image_name: String,
    pub ami_name: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub ami_id: Option<String>,
    pub error: Option<TaskError>,
}

/// The next step for a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do before `next_check_at`.
    Sleep,
    /// The current attempt has an intent but no task id: find the task before anything else.
    Recover,
    /// Record a new attempt's intent, then create its task.
    Create {
        attempt: u32,
    },
    /// Look at the task again at `next`; `escalate` sends `Export Stuck` now (once); `report` sends
    /// `Export Unknown State` for a state this build does not know (once per state).
    Chase {
        next: DateTime<Utc>,
        escalate: bool,
        report: Option<String>,
    },
    /// Wait for the retry backoff before creating attempt `attempt`.
    RetryAt {
        at: DateTime<Utc>,
        attempt: u32,
        reason: String,
    },
    Complete {
        ami_id: String,
    },
    Fail {
        reason: String,
    },
}

/// A chase step in words: what it asks for (`escalate` and `report` as what they announce).
pub(crate) fn chase_words(
    f: &mut std::fmt::Formatter<'_>,
    next: DateTime<Utc>,
    escalate: bool,
    report: Option<&str>,
) -> std::fmt::Result {
    write!(f, "chase (next look at {})", next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))?;
    if escalate {
        f.write_str(", report stuck")?;
    }
    if let Some(state) = report {
        write!(f, ", report unknown state {state}")?;
    }
    Ok(())
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match self {
            Step::Sleep => f.write_str("sleep"),
            Step::Recover => f.write_str("recover the task of an interrupted attempt"),
            Step::Create { attempt } => write!(f, "create attempt {attempt}"),
            Step::Chase { next, escalate, report } => chase_words(f, *next, *escalate, report.as_deref()),
            Step::RetryAt { at: when, attempt, reason } => {
                write!(f, "retry as attempt {attempt} at {}: {reason}", at(when))
            }
            Step::Complete { ami_id } => write!(f, "complete ({ami_id})"),
            Step::Fail { reason } => write!(f, "fail: {reason}"),
        }
    }
}

/// How long after its creation a task the service does not know is taken to be gone, not yet visible.
pub const VANISHED_AFTER: Duration = Duration::minutes(15);

/// How often a task of this age is asked for when the tick's listing misses it (`GetExportImageTask`): every
/// tick at first, rarer as it ages (exports take hours). A listed task is looked at every tick, for free.
pub fn poll_interval(age: Duration) -> Duration {
    if age < Duration::minutes(15) {
        Duration::minutes(5)
    } else if age < Duration::hours(1) {
        Duration::minutes(10)
    } else if age < Duration::hours(6) {
        Duration::minutes(30)
    } else {
        Duration::hours(1)
    }
}

/// Whether a failed task is worth creating again. TIMED_OUT always is; a FAILED task only when its error code
/// names something transient (internal or service errors, throttling, capacity, a time-out). Codes that name a
/// configuration problem (IAM role or permission, image or AMI not found, invalid or unsupported input,
/// quotas) are not, and neither are codes this build does not recognise: no blind retries.
pub fn is_retryable(state: &str, error: Option<&TaskError>) -> bool {
    if state == "TIMED_OUT" {
        return true;
    }
    let Some(error) = error else { return false };
    let code = error.code.to_ascii_uppercase();
    const PERMANENT: [&str; 9] =
        ["IAM", "ROLE", "PERMISSION", "ACCESS_DENIED", "NOT_FOUND", "INVALID", "VALIDATION", "UNSUPPORTED", "QUOTA"];
    const TRANSIENT: [&str; 7] =
        ["INTERNAL", "SERVICE_ERROR", "UNAVAILABLE", "THROTTL", "CAPACITY", "TIMED_OUT", "TIMEOUT"];
    !PERMANENT.iter().any(|p| code.contains(p)) && TRANSIENT.iter().any(|t| code.contains(t))
}

/// Decides the next step of an open job. `task` is what the service says about the current attempt's task
/// (`None` when it was not looked up).
pub fn decide(job: &Job, task: Option<&TaskView>, now: DateTime<Utc>) -> Step {
    if job.ending.is_some() {
        return Step::Sleep;
    }
    let Some(current) = job.current() else {
        // A requested job with no attempt yet: create the first one.
        return if job.origin == Origin::Requested { Step::Create { attempt: 1 } } else { Step::Sleep };
    };
    if current.task_id.is_none() {
        // The task was never created (or its creation was interrupted): find it, else create it again, after
        // the backoff when creating failed; failing as often as a job may attempt, the job fails.
        if current.create_failures >= job.max_attempts {
            let last = current.error.as_ref().map_or_else(String::new, |e| format!(": {}", e.message));
            return Step::Fail {
                reason: format!("CreateExportImageTask failed {} times{last}", current.create_failures),
            };
        }
        if current.create_failures > 0 && now < job.next_check_at {
            return Step::Sleep;
        }
        return Step::Recover;
    }
    let Some(task) = task else {
        // Neither listed nor found by GetExportImageTask: just after its creation, not visible yet; later, gone
        // (its record expired, or it was never this account's), and its outcome cannot be known.
        if now < job.next_check_at {
            return Step::Sleep;
        }
        let since = current.intent_at;
        if now - since < VANISHED_AFTER {
            return Step::Chase { next: now + poll_interval(now - since), escalate: false, report: None };
        }
        let id = current.task_id.as_deref().unwrap_or_default();
        return Step::Fail {
            reason: format!(
                "export task {id} no longer exists (neither listed nor found by GetExportImageTask): its outcome is \
                 unknown"
            ),
        };
    };
    let age = now - job.requested_at;
    match task.state.as_str() {
        "COMPLETED" => match &task.ami_id {
            Some(ami_id) => Step::Complete { ami_id: ami_id.clone() },
            // Completed without an AMI id is not a state we can finish on: keep looking, report it.
            None => chase(job, now, age, Some("COMPLETED without an AMI id".into())),
        },
        "FAILED" | "TIMED_OUT" => {
            let error = task.error.as_ref();
            let what =
                error.map_or_else(|| task.state.clone(), |e| format!("{} ({}: {})", task.state, e.code, e.message));
            let retryable = is_retryable(&task.state, error);
            if job.origin == Origin::Requested && retryable && current.number < job.max_attempts {
                let ended = current.ended_at.unwrap_or(now);
                let factor = 1i32 << (current.number.saturating_sub(1)).min(10);
                let at = ended + job.backoff * factor;
                if now >= at {
                    Step::Create { attempt: current.number + 1 }
                } else {
                    let reason = format!("attempt {} {what}: retryable", current.number);
                    Step::RetryAt { at, attempt: current.number + 1, reason }
                }
            } else if job.origin == Origin::Adopted && retryable {
                Step::Fail { reason: format!("{what}; the task was not created by us, so it is not re-created") }
            } else if retryable {
                Step::Fail { reason: format!("{what}; {} of {} attempts used", current.number, job.max_attempts) }
            } else {
                Step::Fail { reason: format!("{what}: not retryable") }
            }
        }
        "EXPORTING" => chase(job, now, age, None),
        other => chase(job, now, age, Some(other.to_owned())),
    }
}

fn chase(job: &Job, now: DateTime<Utc>, age: Duration, unknown: Option<String>) -> Step {
    let escalate = age > job.max_duration && job.escalated_at.is_none();
    let report = unknown.filter(|state| job.reported_state.as_deref() != Some(state.as_str()));
    Step::Chase { next: now + poll_interval(age), escalate, report }
}

#[cfg(test)]
mod tests;

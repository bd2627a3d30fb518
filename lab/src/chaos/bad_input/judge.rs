//! Judging one outcome: what a parser or handler did with an input ([`Outcome`]), what it had to do
//! ([`Expect`]), and the counting of both into [`Figures`] — a rejection must be a clear `InvalidInput`.

use super::{Figures, MAX_MESSAGE};
use autopilot_shared::error::{AutopilotError, Classify, ErrorClass};
use autopilot_shared::events::EventError;
use autopilot_shared::ledger::LedgerError;
use autopilot_shared::policy::PolicyError;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What a parser or handler did with one input.
pub(super) enum Outcome<E> {
    Panicked(String),
    Accepted,
    Rejected(E),
}

/// Runs `parse`, turning a panic into [`Outcome::Panicked`].
pub(super) fn guarded<T, E>(parse: impl FnOnce() -> Result<T, E>) -> Outcome<E> {
    match catch_unwind(AssertUnwindSafe(|| parse().map(drop))) {
        Ok(Ok(())) => Outcome::Accepted,
        Ok(Err(error)) => Outcome::Rejected(error),
        Err(payload) => Outcome::Panicked(panic_text(payload.as_ref())),
    }
}

pub(super) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".into())
}

/// What an input must come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect<'a> {
    /// Rejected as `InvalidInput`, with a message containing the text, if given.
    Reject(Option<&'a str>),
    /// Accepted.
    Accept,
    /// Either, but a rejection must be a clear `InvalidInput`.
    Either,
}

/// Whether an outcome counts into the accepted/rejected totals (the second route of the same case does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tally {
    Events,
    Policies,
    Handlers,
    Nothing,
}

/// A rejection, reduced to what is judged: its classes along the way to Lambda, its message, and whether it
/// says where the problem is.
pub(super) struct Rejection {
    classes: Vec<ErrorClass>,
    message: String,
    names_where: bool,
    /// At most [`MAX_MESSAGE`] characters (for a policy: each problem; every problem is listed).
    bounded: bool,
}

impl Rejection {
    fn event(error: &EventError) -> Self {
        let wrapped = AutopilotError::from_classified(error);
        Rejection {
            classes: vec![error.class(), wrapped.class],
            names_where: !error.path.is_empty()
                || error.reason.contains('`')
                || error.reason.starts_with("not JSON")
                || error.reason.starts_with("missing or not"),
            bounded: wrapped.message.chars().count() <= MAX_MESSAGE,
            message: wrapped.message,
        }
    }

    fn policy(error: PolicyError) -> Self {
        let problems = error.0.clone();
        // Where a policy error reaches a function: the ledger validates a stored document again on read.
        let stored = LedgerError::from(error);
        let wrapped = AutopilotError::from_classified(&stored);
        // A problem without a path is about the document as a whole: its type, or its syntax (serde_yaml_ng
        // adds "at line L column C" except at the very start). Where a path is due, `expected.yaml` and the
        // single-mutation cases check it.
        Rejection {
            classes: vec![stored.class(), wrapped.class],
            names_where: !problems.is_empty() && problems.iter().all(|problem| !problem.reason.trim().is_empty()),
            bounded: problems.iter().all(|problem| problem.to_string().chars().count() <= MAX_MESSAGE),
            message: wrapped.message,
        }
    }

    pub(super) fn handler(error: &AutopilotError) -> Self {
        Rejection {
            classes: vec![error.class],
            message: error.message.clone(),
            names_where: true,
            bounded: error.message.chars().count() <= MAX_MESSAGE,
        }
    }
}

pub(super) fn judge<E>(
    figures: &mut Figures,
    label: &str,
    outcome: Outcome<E>,
    expect: Expect<'_>,
    tally: Tally,
    reject: impl FnOnce(E) -> Rejection,
) {
    match outcome {
        Outcome::Panicked(message) => {
            figures.panics += 1;
            figures.note(format!("{label}: panicked: {message}"));
        }
        Outcome::Accepted => {
            match tally {
                Tally::Events => figures.accepted += 1,
                Tally::Policies => figures.policy_accepted += 1,
                Tally::Handlers | Tally::Nothing => {}
            }
            if let Expect::Reject(_) = expect {
                figures.wrongly_accepted += 1;
                figures.note(format!("{label}: accepted, but must be rejected"));
            }
        }
        Outcome::Rejected(error) => {
            let rejection = reject(error);
            let (message, bounded) = (rejection.message, rejection.bounded);
            if rejection.classes.iter().any(|class| *class != ErrorClass::InvalidInput) {
                figures.misclassified += 1;
                figures.note(format!("{label}: rejected as {:?}, not InvalidInput: {message}", rejection.classes));
                return;
            }
            match tally {
                Tally::Events => figures.rejected_invalid_input += 1,
                Tally::Policies => figures.policy_rejected += 1,
                Tally::Handlers => figures.handler_rejected += 1,
                Tally::Nothing => {}
            }
            if message.trim().is_empty() || !bounded || !rejection.names_where {
                figures.unclear += 1;
                let length = message.chars().count();
                figures.note(format!("{label}: unclear message ({length} characters): {message}"));
            } else if let Expect::Reject(Some(wanted)) = expect
                && !message.contains(wanted)
            {
                figures.unclear += 1;
                figures.note(format!("{label}: message {message:?} does not contain {wanted:?}"));
            }
            if expect == Expect::Accept {
                figures.wrongly_rejected += 1;
                figures.note(format!("{label}: rejected, but must be accepted: {message}"));
            }
        }
    }
}

pub(super) fn judge_event(
    figures: &mut Figures,
    label: &str,
    outcome: Outcome<EventError>,
    expect: Expect<'_>,
    tally: Tally,
) {
    judge(figures, label, outcome, expect, tally, |error| Rejection::event(&error));
}

pub(super) fn judge_policy(figures: &mut Figures, label: &str, outcome: Outcome<PolicyError>, expect: Expect<'_>) {
    figures.policy_cases += 1;
    judge(figures, label, outcome, expect, Tally::Policies, Rejection::policy);
}

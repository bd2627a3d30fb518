//! The functions' real entry points (`handle`) against a local estate: the handler corpus, every event of the
//! corpus, and generated cases of sizes EventBridge can deliver, to every function.

use super::corpus::{corpus_files, expectations, handler_folders};
use super::events::{build, samples};
use super::generators::{Reach, event_case, generate, runner};
use super::json_tree::depth;
use super::judge::{Expect, Outcome, Rejection, Tally, guarded, judge, panic_text};
use super::{BadInputError, Figures, HUGE_DELIVERABLE, MAX_MESSAGE, REFUSED_DEPTH, corpus_dir};
use autopilot_functions::Function;
use autopilot_shared::error::{AutopilotError, ErrorClass};
use autopilot_shared::events;
use futures::FutureExt;
use serde_json::Value;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, Instant};

/// The remaining time each in-process invocation is given.
const REMAINING: Duration = Duration::from_secs(60);

/// The functions' real entry points (`handle`, as [`Function::invoke`] calls it) against a local estate
/// (`sim/estates/samples.yaml` with `sim/estates/samples-policy.yaml` stored as the policy):
/// - every `handlers/<function>/*.json` file to that function: each parses, and each must be refused as
///   `InvalidInput` with the text `expected.yaml` gives (bad ARNs, account ids, resource ids, inputs the
///   function does not handle);
/// - every JSON file of `events/` to every function: `InvalidInput`, whatever the function;
/// - `cases` generated events (mutated samples, strings up to what EventBridge delivers, nesting
///   `serde_json` lets through) to every function: one the parser refuses must be `InvalidInput`, one it
///   accepts must not come back `Retryable` (the estate is healthy: nothing but the input can be at fault),
///   nothing may panic.
pub async fn run_handlers(root: &Path, cases: u32, seed: u64) -> Result<Figures, BadInputError> {
    let started = Instant::now();
    let estate = autopilot_sim::estate::Estate::from_yaml(crate::samples::ESTATE).map_err(BadInputError::Estate)?;
    let local = autopilot_sim::LocalEstate::start(&estate, seed, 0).await?;
    local
        .ledger()
        .put_policy(crate::samples::POLICY, local.simulator.now())
        .await
        .map_err(BadInputError::StorePolicy)?;
    let crew = crate::crew(&local);
    let dir = corpus_dir(root);
    let expected = expectations(&dir)?;
    let mut figures = Figures::default();

    for (folder, function) in handler_folders(&dir)? {
        let Some(function) = function else {
            figures.corpus_problem(format!("handlers/{folder}: no function has this name"));
            continue;
        };
        for (name, path) in corpus_files(&dir.join("handlers"), &folder, &["json"])? {
            figures.corpus_files += 1;
            let name = format!("handlers/{name}");
            let event = events::read_sample(&path);
            if let Err(error) = events::parse(event.clone()) {
                figures.corpus_problem(format!("{name}: must parse (the event parser's cases go in events/): {error}"));
            }
            let outcome = invoke(function, crew.of(function), event).await;
            let wanted = expected.get(&name).map(String::as_str);
            judge(&mut figures, &name, outcome, Expect::Reject(wanted), Tally::Handlers, |e| Rejection::handler(&e));
            figures.handler_cases += 1;
        }
    }

    for (name, path) in corpus_files(&dir, "events", &["json"])? {
        // Bytes that are not JSON never reach a handler: lambda_runtime refuses them.
        let Ok(event) =
            std::fs::read(&path).map_err(|_| ()).and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|_| ()))
        else {
            continue;
        };
        for function in Function::ALL {
            let outcome = invoke(function, crew.of(function), event.clone()).await;
            let label = format!("{name} → {}", function.name());
            judge(&mut figures, &label, outcome, Expect::Reject(None), Tally::Handlers, |e| Rejection::handler(&e));
            figures.handler_cases += 1;
        }
    }

    let samples = samples(root)?;
    // What each sample itself comes to: a Retryable there is about the world, not the input (an export task
    // CloudTrail reports before the service lists it), so a mutation of that sample may be Retryable too.
    let mut retryable_anyway = std::collections::BTreeSet::new();
    for (index, sample) in samples.iter().enumerate() {
        let mut event = sample.event.clone();
        renumber(&mut event, format!("bad-input-{seed}-sample-{index}"));
        for function in Function::ALL {
            if let Outcome::Rejected(error) = invoke(function, crew.of(function), event.clone()).await
                && error.class == ErrorClass::Retryable
            {
                retryable_anyway.insert((index, function.name()));
            }
        }
    }
    let mut runner = runner(cases, seed ^ 0x6861_6e64_6c65);
    let generated = generate(&event_case(Reach::Deliverable), cases, &mut runner, &mut figures);
    for (number, case) in generated.into_iter().enumerate() {
        let Some(mut built) = build(case, &samples, HUGE_DELIVERABLE) else { continue };
        renumber(&mut built.event, format!("bad-input-{seed}-{number}"));
        if depth(&built.event) >= REFUSED_DEPTH {
            continue;
        }
        figures.generated_cases += 1;
        let parsed = guarded(|| events::parse(built.event.clone()));
        let refused = matches!(parsed, Outcome::Rejected(_));
        for function in Function::ALL {
            let outcome = invoke(function, crew.of(function), built.event.clone()).await;
            let label = format!("{} → {}", built.label, function.name());
            figures.handler_cases += 1;
            if refused {
                judge(&mut figures, &label, outcome, Expect::Reject(None), Tally::Handlers, |e| Rejection::handler(&e));
                continue;
            }
            match outcome {
                Outcome::Panicked(message) => {
                    figures.panics += 1;
                    figures.note(format!("{label}: panicked: {message}"));
                }
                Outcome::Rejected(error)
                    if error.class == ErrorClass::Retryable
                        && !built.sample.is_some_and(|index| retryable_anyway.contains(&(index, function.name()))) =>
                {
                    figures.misclassified += 1;
                    figures.note(format!("{label}: Retryable on a healthy estate: {}", error.message));
                }
                Outcome::Rejected(error) if error.message.chars().count() > MAX_MESSAGE => {
                    figures.unclear += 1;
                    figures.note(format!("{label}: a {} character message", error.message.chars().count()));
                }
                Outcome::Rejected(_) | Outcome::Accepted => {}
            }
        }
    }
    figures.elapsed = started.elapsed();
    Ok(figures)
}

/// Gives an event a new id (and its CloudTrail record a new `eventID`), where it has one: each case is a new
/// event, and no case finds another's idempotency record.
fn renumber(event: &mut Value, id: String) {
    if let Some(envelope) = event.as_object_mut()
        && envelope.get("id").is_some_and(Value::is_string)
    {
        envelope.insert("id".into(), Value::String(id.clone()));
    }
    if let Some(detail) = event.get_mut("detail").and_then(Value::as_object_mut)
        && detail.get("eventID").is_some_and(Value::is_string)
    {
        detail.insert("eventID".into(), Value::String(id));
    }
}

/// One invocation, a panic caught and reported.
async fn invoke(function: Function, deps: &autopilot_shared::runtime::Deps, event: Value) -> Outcome<AutopilotError> {
    match AssertUnwindSafe(function.invoke(deps, event, REMAINING)).catch_unwind().await {
        Ok(Ok(_)) => Outcome::Accepted,
        Ok(Err(error)) => Outcome::Rejected(error),
        Err(payload) => Outcome::Panicked(panic_text(payload.as_ref())),
    }
}

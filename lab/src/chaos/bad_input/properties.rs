//! The property run: generated event cases and policy cases from one seed, each side on a thread of its own.

use super::events::{build, check_event, samples};
use super::generators::{Reach, event_case, runner};
use super::judge::panic_text;
use super::policies::{check_policy, policy_case};
use super::{BIG_STACK, Figures, HUGE, LAMBDA_STACK, workspace_root};
use proptest::strategy::{Strategy, ValueTree};
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

/// Property-based generation over the event parser and the policy parser: `cases` event cases (mutated
/// samples from `events/`, arbitrary JSON, EventBridge-shaped events with arbitrary details) and `cases` policy
/// cases (mutations of `examples/autopilot.yaml`, YAML text edits, arbitrary documents and text). The same
/// `seed` gives the same cases. Properties: nothing panics; a rejection is a clear `InvalidInput`; an input
/// that breaks a rule the parser promises is rejected; a new field in an AWS-authored detail is accepted; the
/// `Value` and its JSON bytes agree; bytes that are not UTF-8 or nest too deep are refused.
pub fn run_properties(cases: u32, seed: u64) -> Figures {
    let started = Instant::now();
    let root = workspace_root();
    let mut figures = Figures::default();
    let events_root = root.clone();
    // Both at once, on their own stacks: events on a big one (deep values), policies on Lambda's.
    let spawn = |name: &str, size: usize| std::thread::Builder::new().name(name.to_owned()).stack_size(size);
    let events =
        spawn("bad-input-event-properties", BIG_STACK).spawn(move || event_properties(&events_root, cases, seed));
    let policies =
        spawn("bad-input-policy-properties", LAMBDA_STACK).spawn(move || policy_properties(&root, cases, seed));
    for run in [events, policies] {
        match run.map_err(|e| e.to_string()).and_then(|thread| thread.join().map_err(|p| panic_text(p.as_ref()))) {
            Ok(run) => figures.absorb(run),
            Err(error) => {
                figures.panics += 1;
                figures.note(format!("a property thread failed: {error}"));
            }
        }
    }
    figures.elapsed = started.elapsed();
    figures
}

fn event_properties(root: &Path, cases: u32, seed: u64) -> Figures {
    let mut figures = Figures::default();
    let samples = match samples(root) {
        Ok(samples) => samples,
        Err(error) => {
            figures.corpus_problem(error.to_string());
            return figures;
        }
    };
    let mut runner = runner(cases, seed);
    let strategy = event_case(Reach::Anything);
    for _ in 0..cases {
        let case = match strategy.new_tree(&mut runner) {
            Ok(tree) => tree.current(),
            Err(reason) => {
                figures.corpus_problem(format!("the event generator gave up: {reason}"));
                break;
            }
        };
        if let Some(built) = build(case, &samples, HUGE) {
            check_event(&mut figures, built);
        }
    }
    figures
}

fn policy_properties(root: &Path, cases: u32, seed: u64) -> Figures {
    let mut figures = Figures::default();
    let example = root.join("examples").join("autopilot.yaml");
    let base = std::fs::read_to_string(&example)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_yaml_ng::from_str::<Value>(&text).map_err(|e| e.to_string()));
    let base = match base {
        Ok(base) => base,
        Err(error) => {
            figures.corpus_problem(format!("{}: {error}", example.display()));
            return figures;
        }
    };
    let mut runner = runner(cases, seed ^ 0x706f_6c69_6379);
    let strategy = policy_case();
    for _ in 0..cases {
        match strategy.new_tree(&mut runner) {
            Ok(tree) => check_policy(&mut figures, &base, tree.current()),
            Err(reason) => {
                figures.corpus_problem(format!("the policy generator gave up: {reason}"));
                break;
            }
        }
    }
    figures
}

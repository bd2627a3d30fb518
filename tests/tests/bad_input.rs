//! Bad input: the corpus in `tests/corpus/bad-input/` and property-based cases through the event
//! parser, the policy parser and the five functions' entry points. GIVEN malformed events (wrong types,
//! missing fields, unknown detail types, huge and deeply nested payloads, invalid ARNs and ids, bytes that are
//! not UTF-8) and invalid policy documents, WHEN they are parsed or delivered, THEN nothing panics and every
//! rejection is an `InvalidInput` error whose message says what is wrong and where.
//!
//! A CI-sized run; `autopilot chaos` runs the same code with many more cases.

use autopilot_lab::chaos::bad_input::{self, Figures};

/// Generated cases per parser (events, policies) in CI; the handler run takes a fraction (each case is five
/// invocations against the local estate). `AUTOPILOT_BAD_INPUT_CASES` and `AUTOPILOT_BAD_INPUT_SEED` override
/// the size and the seed (a failure names its input; the seed replays the run).
const CASES: u32 = 300;
const HANDLER_CASES: u32 = 40;
const SEED: u64 = 20_261_123;

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

fn cases() -> u32 {
    u32::try_from(knob("AUTOPILOT_BAD_INPUT_CASES", CASES.into())).unwrap_or(CASES)
}

fn seed() -> u64 {
    knob("AUTOPILOT_BAD_INPUT_SEED", SEED)
}

fn report(run: &str, figures: &Figures) {
    eprintln!("bad input, {run}: {figures}");
    for failure in &figures.failures {
        eprintln!("  - {failure}");
    }
}

#[test]
fn every_corpus_file_is_rejected_as_invalid_input_with_a_clear_message() {
    let figures = bad_input::run_corpus(&bad_input::workspace_root()).expect("the corpus is readable");
    report("corpus", &figures);
    assert!(figures.is_clean(), "{figures}");
    assert_eq!(figures.panics, 0);
    assert_eq!(figures.misclassified, 0);
    assert_eq!(figures.wrongly_accepted, 0, "every corpus event and policy must be rejected");
    assert_eq!(figures.accepted + figures.policy_accepted, 0);
    assert!(figures.corpus_files >= 100, "only {} corpus files", figures.corpus_files);
    // With no panic, misclassification or acceptance, every entry was rejected as InvalidInput.
    assert!(
        figures.rejected_invalid_input > figures.generated_cases && figures.policy_rejected == figures.policy_cases
    );
}

#[test]
fn generated_events_and_policies_never_panic_and_are_rejected_as_invalid_input() {
    let figures = bad_input::run_properties(cases(), seed());
    report("properties", &figures);
    assert!(figures.is_clean(), "{figures}");
    assert_eq!(figures.panics, 0);
    assert_eq!(figures.misclassified, 0);
    assert_eq!(figures.generated_cases, u64::from(cases()));
    assert_eq!(figures.policy_cases, u64::from(cases()));
    // The generators reach both sides of each parser.
    assert!(figures.rejected_invalid_input > 0 && figures.accepted > 0, "{figures}");
    assert!(figures.policy_rejected > 0 && figures.policy_accepted > 0, "{figures}");
}

#[tokio::test]
async fn the_functions_refuse_bad_input_as_invalid_input_and_never_as_retryable() {
    let handler_cases = (cases().saturating_mul(HANDLER_CASES) / CASES).max(1);
    let figures = bad_input::run_handlers(&bad_input::workspace_root(), handler_cases, seed())
        .await
        .expect("the local estate starts and the corpus is readable");
    report("functions", &figures);
    assert!(figures.is_clean(), "{figures}");
    assert_eq!(figures.panics, 0);
    assert_eq!(figures.misclassified, 0);
    assert!(figures.corpus_files >= 40, "only {} handler corpus files", figures.corpus_files);
    assert!(figures.handler_rejected >= figures.corpus_files as u64, "{figures}");
}

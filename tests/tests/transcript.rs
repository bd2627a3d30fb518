//! Every function's sample scenario — each invocation's answer, the audit trail, the outcome events — matches the
//! transcript in `tests/golden/<function>.json`: a change to the code that changes what a function answers,
//! records or announces shows here. After an intended change, write the transcripts again with
//! `AUTOPILOT_BLESS=1 cargo test -p autopilot-tests --test e2e transcript::` and review their diff.

use autopilot_lab::Function;
use std::path::PathBuf;

fn golden(function: Function) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden").join(format!("{}.json", function.name()))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_functions_sample_scenario_matches_its_transcript() {
    let bless = std::env::var("AUTOPILOT_BLESS").is_ok_and(|v| v == "1");
    let mut differences = Vec::new();
    for function in Function::ALL {
        let transcript = autopilot_lab::transcript::transcript(function).await.unwrap();
        let text = serde_json::to_string_pretty(&transcript).unwrap() + "\n";
        let path = golden(function);
        if bless {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != text {
            let first = expected.lines().zip(text.lines()).position(|(a, b)| a != b).unwrap_or(0);
            differences.push(format!(
                "{}: line {}: expected {:?}, got {:?}",
                path.display(),
                first + 1,
                expected.lines().nth(first).unwrap_or("(end)"),
                text.lines().nth(first).unwrap_or("(end)")
            ));
        }
    }
    assert!(differences.is_empty(), "transcripts differ:\n{}", differences.join("\n"));
}

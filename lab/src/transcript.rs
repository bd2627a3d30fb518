//! A function's sample scenario written down: every invocation's answer (or error), the audit trail and the
//! outcome events, in order. `tests/golden/<function>.json` holds one per function; `tests/tests/transcript.rs`
//! compares a fresh run with it, so a refactoring that changes what a function answers, records or announces
//! cannot go unnoticed.

use crate::Function;
use crate::chaos::ChaosError;
use crate::chaos::scenario::{Run, SETTLE_TICKS};
use crate::samples;
use autopilot_shared::ledger::audit::AuditRecord;
use serde_json::{Value, json};

/// Runs `function`'s samples (the invalid ones too) each in its slot, then the settling ticks, and writes down
/// what came out.
pub async fn transcript(function: Function) -> Result<Value, ChaosError> {
    let mut run = Run::start(function, None).await?;
    let mut answers = Vec::new();
    let expectations = samples::expectations(function.name());
    for (i, (name, _)) in expectations.iter().enumerate() {
        let event = samples::read(function.name(), name)?;
        let answer = run.deliver(i, &event).await;
        answers.push(
            json!({ "delivery": name, "answer": answer.unwrap_or_else(|error| json!({ "error": error.to_string() })) }),
        );
    }
    for t in 0..SETTLE_TICKS {
        let slot = expectations.len() + t;
        run.advance_to(run.slot(slot));
        let tick = run.tick();
        let answer = run.deliver(slot, &tick).await;
        let answer = answer.unwrap_or_else(|error| json!({ "error": error.to_string() }));
        answers.push(json!({ "delivery": format!("tick {t}"), "answer": answer }));
    }
    let start = run.slot(0).date_naive();
    let mut audit: Vec<AuditRecord> = Vec::new();
    let mut day = start;
    while day <= run.local.simulator.now().date_naive() {
        audit.extend(run.local.ledger().audit_by_day(day).await?);
        day = day.succ_opt().ok_or(ChaosError::NoNextDay(day))?;
    }
    let events: Vec<Value> = run
        .local
        .simulator
        .with_world(|world| world.events.iter().map(|e| serde_json::to_value(e).unwrap_or_default()).collect());
    Ok(json!({ "function": function.name(), "answers": answers, "audit": audit, "events": events }))
}

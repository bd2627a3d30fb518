//! Batched bookkeeping (`effect::Bookkeeping`) against embedded DynamoDB over HTTP: claims a batch at a time,
//! completions a transaction at a time, and every refusal falling back to what one effect would write.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test crate: a failed expectation is a failed test

mod common;

use autopilot_shared::effect::{Bookkeeping, CallError, Effect, Performed};
use autopilot_shared::ledger::audit::{AuditRecord, Outcome};
use autopilot_shared::ledger::idempotency::IdempotencyKey;
use autopilot_shared::ledger::state::StateWrite;
use autopilot_shared::ledger::{Ledger, LedgerError};
use autopilot_shared::resource::{ResourceKind, ResourceRef};
use common::t0;
use futures::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const REMAINING: Duration = Duration::from_secs(300);

fn fleet(i: usize) -> ResourceRef {
    ResourceRef::new("123456789012", "eu-central-1", ResourceKind::Fleet, format!("fleet-{i:03}")).expect("valid")
}

fn key(resource: &ResourceRef) -> IdempotencyKey {
    IdempotencyKey::new("pool-scaler", format!("{}#epoch-1", resource.key()))
}

fn effect<'a>(ledger: &'a Ledger, resource: &ResourceRef) -> Effect<'a, &'static str> {
    Effect {
        ledger,
        key: key(resource),
        payload: &"UpdateFleet",
        audit: AuditRecord {
            at: t0(),
            function: "pool-scaler".into(),
            resource: resource.key(),
            action: "UpdateFleet".into(),
            outcome: Outcome::DryRun,
            reason: "in-hours".into(),
            correlation_id: "evt-1".into(),
            details: serde_json::json!({}),
        },
        dry_run: false,
        now: t0(),
        remaining: REMAINING,
        fence: None,
        recorded_failure: None,
    }
}

/// Decides `resources` through `book` (every one an effect to claim) and performs each: one call, its state.
async fn act(
    ledger: &Ledger,
    book: &Bookkeeping<'_>,
    resources: &[ResourceRef],
    expected: Option<u64>,
    calls: &AtomicUsize,
) -> Vec<Result<Performed, LedgerError>> {
    let decided: Vec<&ResourceRef> = book
        .decided(futures::stream::iter(resources), |r: &&ResourceRef| Some((key(r), "UpdateFleet")))
        .collect()
        .await;
    let mut performed = Vec::new();
    for resource in decided {
        let call = async || {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<(), CallError>(())
        };
        let state = serde_json::json!({ "desired": 4 });
        let write = StateWrite { resource, state: &state, expected };
        performed.push(book.perform_with_state(effect(ledger, resource), call, write).await);
    }
    performed
}

#[tokio::test]
async fn forty_effects_cost_one_claim_transaction_and_two_completion_transactions() {
    let (ledger, _db, requests) = common::counted_ledger().await;
    let resources: Vec<ResourceRef> = (0..40).map(fleet).collect();
    let calls = AtomicUsize::new(0);
    // GIVEN forty fleets decided together, WHEN each is acted on and the step finishes
    let before = requests.get();
    let book = Bookkeeping::new(&ledger, None, t0(), REMAINING);
    let performed = act(&ledger, &book, &resources, None, &calls).await;
    book.finish().await.expect("finished");
    // THEN one claim transaction and two completion transactions (33 + 7), every effect applied once
    assert!(performed.iter().all(|p| matches!(p, Ok(Performed::Applied))), "{performed:?}");
    assert_eq!(requests.get() - before, 3);
    assert_eq!(calls.load(Ordering::SeqCst), 40);
    for resource in &resources {
        let state = ledger.get_state::<serde_json::Value>(resource).await.expect("read").expect("written");
        assert_eq!((state.version, state.state), (1, serde_json::json!({ "desired": 4 })));
        let audit: Vec<Outcome> =
            ledger.audit_by_resource(&resource.key()).await.expect("audit").into_iter().map(|r| r.outcome).collect();
        assert_eq!(audit, [Outcome::Applied]);
    }
    // AND a redelivery is a duplicate of every one: no second call
    let book = Bookkeeping::new(&ledger, None, t0(), REMAINING);
    let again = act(&ledger, &book, &resources, Some(1), &calls).await;
    book.finish().await.expect("finished");
    assert!(again.iter().all(|p| matches!(p, Ok(Performed::Duplicate))), "{again:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 40);
}

#[tokio::test]
async fn a_batch_with_one_effect_already_done_claims_one_by_one_and_repeats_nothing() {
    let (ledger, _db) = common::ledger().await;
    let resources: Vec<ResourceRef> = (0..5).map(fleet).collect();
    let calls = AtomicUsize::new(0);
    // GIVEN fleet 2's effect already performed by an earlier delivery
    let book = Bookkeeping::new(&ledger, None, t0(), REMAINING);
    act(&ledger, &book, &resources[2..3], None, &calls).await;
    book.finish().await.expect("finished");
    // WHEN all five are decided together (the batch of claims is refused for fleet 2)
    let book = Bookkeeping::new(&ledger, None, t0(), REMAINING);
    let performed = act(&ledger, &book, &resources, None, &calls).await;
    book.finish().await.expect("finished");
    // THEN the other four are applied, fleet 2 is a duplicate, and five calls were made in all
    let results: Vec<&Performed> = performed.iter().map(|p| p.as_ref().expect("performed")).collect();
    assert_eq!(
        results,
        [&Performed::Applied, &Performed::Applied, &Performed::Duplicate, &Performed::Applied, &Performed::Applied]
    );
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_refused_completion_transaction_is_written_one_by_one_and_its_conflict_is_the_answer() {
    let (ledger, _db) = common::ledger().await;
    let resources: Vec<ResourceRef> = (0..3).map(fleet).collect();
    let calls = AtomicUsize::new(0);
    // GIVEN three fleets read at version 1, and fleet 1's state moved on to version 2 meanwhile
    for resource in &resources {
        ledger.put_state(resource, &serde_json::json!({ "desired": 1 }), None, None, t0()).await.expect("v1");
    }
    ledger.put_state(&resources[1], &serde_json::json!({ "desired": 9 }), Some(1), None, t0()).await.expect("v2");
    // WHEN all three are acted on
    let book = Bookkeeping::new(&ledger, None, t0(), REMAINING);
    let performed = act(&ledger, &book, &resources, Some(1), &calls).await;
    let finished = book.finish().await;
    // THEN the calls were made and answered applied; the completions' transaction was refused and written one
    // by one: every audit record and completion is there, fleets 0 and 2 at version 2, fleet 1's conflict is
    // the step's error
    assert!(performed.iter().all(|p| matches!(p, Ok(Performed::Applied))), "{performed:?}");
    assert!(
        matches!(finished, Err(LedgerError::VersionConflict { expected: Some(1), found: Some(2), .. })),
        "{finished:?}"
    );
    for (i, resource) in resources.iter().enumerate() {
        let audit: Vec<Outcome> =
            ledger.audit_by_resource(&resource.key()).await.expect("audit").into_iter().map(|r| r.outcome).collect();
        assert_eq!(audit, [Outcome::Applied], "fleet {i}");
        let state = ledger.get_state::<serde_json::Value>(resource).await.expect("read").expect("there");
        let expected = if i == 1 { serde_json::json!({ "desired": 9 }) } else { serde_json::json!({ "desired": 4 }) };
        assert_eq!((state.version, state.state), (2, expected), "fleet {i}");
    }
    let book = Bookkeeping::new(&ledger, None, t0(), REMAINING);
    let again = act(&ledger, &book, &resources, Some(2), &calls).await;
    book.finish().await.expect("finished");
    assert!(again.iter().all(|p| matches!(p, Ok(Performed::Duplicate))), "{again:?}");
}

#[tokio::test]
async fn claims_taken_for_effects_never_performed_are_released_at_the_finish() {
    let (ledger, _db) = common::ledger().await;
    let resources: Vec<ResourceRef> = (0..10).map(fleet).collect();
    let calls = AtomicUsize::new(0);
    // GIVEN ten fleets decided together, of which only the first is acted on (its lane stopped after it)
    let book = Bookkeeping::new(&ledger, None, t0(), REMAINING);
    let decided: Vec<&ResourceRef> = book
        .decided(futures::stream::iter(&resources), |r: &&ResourceRef| Some((key(r), "UpdateFleet")))
        .collect()
        .await;
    let call = async || {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok::<(), CallError>(())
    };
    let state = serde_json::json!({ "desired": 4 });
    let write = StateWrite { resource: decided[0], state: &state, expected: None };
    book.perform_with_state(effect(&ledger, decided[0]), call, write).await.expect("performed");
    // WHEN the step finishes
    book.finish().await.expect("finished");
    // THEN the nine claims taken with the first are released: nothing is left in progress, and a later delivery
    // acts on them at once
    let later = t0() + chrono::Duration::hours(1);
    assert_eq!(ledger.release_stale_claims("pool-scaler", later).await.expect("query"), Vec::<String>::new());
    let book = Bookkeeping::new(&ledger, None, t0(), REMAINING);
    let performed = act(&ledger, &book, &resources[1..], None, &calls).await;
    book.finish().await.expect("finished");
    assert!(performed.iter().all(|p| matches!(p, Ok(Performed::Applied))), "{performed:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 10);
}

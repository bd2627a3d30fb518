//! Ledger tests against embedded DynamoDB over HTTP, through the real SDK client (no fakes).

#![allow(clippy::expect_used, clippy::unwrap_used)] // test crate: a failed expectation is a failed test

mod common;

use autopilot_shared::effect::{CallError, Effect, Performed, perform_once_with_state};
use autopilot_shared::error::{Classify, ErrorClass};
use autopilot_shared::ledger::LedgerError;
use autopilot_shared::ledger::audit::{Appended, AuditRecord, Outcome};
use autopilot_shared::ledger::idempotency::{Acquired, IdempotencyKey, payload_hash};
use autopilot_shared::ledger::state::StateWrite;
use autopilot_shared::ledger::state::{WorkItemListing, WorkItemWrite};
use autopilot_shared::resource::{ResourceKind, ResourceRef};
use chrono::Duration;
use common::{ledger, t0};
use serde::{Deserialize, Serialize};
use std::time::Duration as StdDuration;

const MINUTES_5: StdDuration = StdDuration::from_secs(300);

// ---- idempotency ------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_acquirers_exactly_one_proceeds() {
    let (ledger, _db) = ledger().await;
    let key = IdempotencyKey::new(
        "pool-scaler",
        "arn:aws:scheduler:eu-central-1:123456789012:schedule/default/tick@2026-11-23T06:00:00Z",
    );
    let hash = payload_hash(&serde_json::json!({ "tick": 1 }));
    let attempts = (0..20).map(|_| {
        let (ledger, key, hash) = (ledger.clone(), key.clone(), hash.clone());
        tokio::spawn(async move { ledger.acquire_idempotency(&key, &hash, t0(), MINUTES_5, None).await })
    });
    let mut proceeded = 0;
    let mut in_progress = 0;
    for attempt in attempts {
        match attempt.await.expect("task") {
            Ok(Acquired::Proceed(_)) => proceeded += 1,
            Err(LedgerError::InProgress { .. }) => in_progress += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!((proceeded, in_progress), (1, 19));
}

#[tokio::test]
async fn completed_records_return_the_stored_result_and_failed_ones_can_be_retried() {
    let (ledger, _db) = ledger().await;
    let key = IdempotencyKey::new("export-chaser", "evt-1/golden-2026-11");
    let hash = payload_hash(&"export golden");
    let Acquired::Proceed(claim) = ledger.acquire_idempotency(&key, &hash, t0(), MINUTES_5, None).await.expect("first")
    else {
        panic!("first acquisition must proceed")
    };
    ledger.complete_idempotency(&claim, &serde_json::json!({ "taskId": "t-1" }), t0()).await.expect("complete");
    let again =
        ledger.acquire_idempotency(&key, &hash, t0() + Duration::minutes(1), MINUTES_5, None).await.expect("again");
    assert_eq!(again, Acquired::AlreadyCompleted { response: Some(serde_json::json!({ "taskId": "t-1" })) });
    // still completed just before the 30 h expiry; retakeable after it
    let late = ledger
        .acquire_idempotency(&key, &hash, t0() + Duration::hours(30) - Duration::seconds(1), MINUTES_5, None)
        .await;
    assert!(matches!(late, Ok(Acquired::AlreadyCompleted { .. })), "{late:?}");
    let expired = ledger
        .acquire_idempotency(&key, &hash, t0() + Duration::hours(30) + Duration::seconds(1), MINUTES_5, None)
        .await;
    assert!(matches!(expired, Ok(Acquired::Proceed(_))), "{expired:?}");

    // a failed action releases its record so the retry runs
    let other = IdempotencyKey::new("export-chaser", "evt-2/golden-2026-12");
    let Ok(Acquired::Proceed(claim)) = ledger.acquire_idempotency(&other, &hash, t0(), MINUTES_5, None).await else {
        panic!("proceed")
    };
    ledger.release_idempotency(&claim).await.expect("release");
    assert!(matches!(ledger.acquire_idempotency(&other, &hash, t0(), MINUTES_5, None).await, Ok(Acquired::Proceed(_))));
}

#[tokio::test]
async fn a_stuck_in_progress_record_is_retaken_only_after_its_in_progress_expiry() {
    let (ledger, _db) = ledger().await;
    let key = IdempotencyKey::new("remediator", "evt-3/ws-1");
    let hash = payload_hash(&"reboot ws-1");
    let first = ledger.acquire_idempotency(&key, &hash, t0(), StdDuration::from_secs(60), None).await.expect("first");
    assert!(matches!(first, Acquired::Proceed(_)));
    // the holder dies without completing; before its in-progress expiry, others are told to wait
    let during = ledger.acquire_idempotency(&key, &hash, t0() + Duration::seconds(59), MINUTES_5, None).await;
    assert!(matches!(during, Err(LedgerError::InProgress { .. })), "{during:?}");
    assert_eq!(during.err().map(|e| e.class()), Some(ErrorClass::Retryable));
    let after = ledger.acquire_idempotency(&key, &hash, t0() + Duration::seconds(61), MINUTES_5, None).await;
    assert!(matches!(after, Ok(Acquired::Proceed(_))), "{after:?}");
}

#[tokio::test]
async fn a_remaining_time_of_zero_still_sets_an_in_progress_expiry() {
    let (ledger, _db) = ledger().await;
    let key = IdempotencyKey::new("pool-scaler", "evt-4");
    let hash = payload_hash(&"x");
    let Ok(Acquired::Proceed(claim)) = ledger.acquire_idempotency(&key, &hash, t0(), StdDuration::ZERO, None).await
    else {
        panic!("proceed")
    };
    assert!(claim.in_progress_until_ms() > t0().timestamp_millis(), "expiry must lie in the future");
    let during = ledger.acquire_idempotency(&key, &hash, t0() + Duration::milliseconds(500), MINUTES_5, None).await;
    assert!(matches!(during, Err(LedgerError::InProgress { .. })), "{during:?}");
    // not stuck forever: retaken after the minimum in-progress time
    let after = ledger.acquire_idempotency(&key, &hash, t0() + Duration::seconds(2), MINUTES_5, None).await;
    assert!(matches!(after, Ok(Acquired::Proceed(_))), "{after:?}");
    // and the original holder can no longer complete: the record is someone else's now
    let lost = ledger.complete_idempotency(&claim, &"done", t0() + Duration::seconds(3)).await;
    assert!(matches!(lost, Err(LedgerError::IdempotencyLost { .. })), "{lost:?}");
}

#[tokio::test]
async fn same_key_with_a_different_payload_is_a_mismatch() {
    let (ledger, _db) = ledger().await;
    let key = IdempotencyKey::new("export-chaser", "evt-5");
    let first = payload_hash(&serde_json::json!({ "imageName": "a", "amiName": "x" }));
    let same_reordered = payload_hash(&serde_json::json!({ "amiName": "x", "imageName": "a" }));
    assert_eq!(first, same_reordered, "hash is over canonical JSON");
    let Ok(Acquired::Proceed(claim)) = ledger.acquire_idempotency(&key, &first, t0(), MINUTES_5, None).await else {
        panic!("proceed")
    };
    ledger.complete_idempotency(&claim, &"ok", t0()).await.expect("complete");
    let other = payload_hash(&serde_json::json!({ "imageName": "b", "amiName": "x" }));
    let mismatch = ledger.acquire_idempotency(&key, &other, t0(), MINUTES_5, None).await;
    assert!(matches!(mismatch, Err(LedgerError::PayloadMismatch { .. })), "{mismatch:?}");
    assert_eq!(mismatch.err().map(|e| e.class()), Some(ErrorClass::InvalidInput));
}

// ---- leases and fencing -----------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PoolState {
    desired: u32,
    last_action: String,
}

fn pool() -> ResourceRef {
    ResourceRef::new("123456789012", "eu-central-1", ResourceKind::WorkspacesPool, "wspool-1a2b3c4d5").expect("valid")
}

#[tokio::test]
async fn a_holder_whose_lease_was_taken_over_cannot_write_with_its_old_token() {
    let (ledger, _db) = ledger().await;
    let scope = pool().key();
    let a = ledger.acquire_lease(&scope, "invocation-a", Duration::seconds(30), t0()).await.expect("a acquires");
    assert_eq!(a.token, 1);
    // while A holds it, B is refused
    let refused =
        ledger.acquire_lease(&scope, "invocation-b", Duration::seconds(30), t0() + Duration::seconds(10)).await;
    assert!(
        matches!(refused, Err(LedgerError::LeaseHeld { ref holder, .. }) if holder == "invocation-a"),
        "{refused:?}"
    );
    // A writes under its fence
    let v1 = ledger
        .put_state(
            &pool(),
            &PoolState { desired: 10, last_action: "a".into() },
            None,
            Some(&a.fence()),
            t0() + Duration::seconds(5),
        )
        .await;
    assert_eq!(v1.expect("fenced write"), 1);
    // A pauses past its lease; B takes over with a larger token and writes
    let b = ledger
        .acquire_lease(&scope, "invocation-b", Duration::seconds(30), t0() + Duration::seconds(31))
        .await
        .expect("b takes over");
    assert_eq!(b.token, 2);
    let v2 = ledger
        .put_state(
            &pool(),
            &PoolState { desired: 20, last_action: "b".into() },
            Some(1),
            Some(&b.fence()),
            t0() + Duration::seconds(32),
        )
        .await;
    assert_eq!(v2.expect("b writes"), 2);
    // A wakes up and tries to write with its stale token: rejected, even with the current version
    let stale = ledger
        .put_state(
            &pool(),
            &PoolState { desired: 99, last_action: "a".into() },
            Some(2),
            Some(&a.fence()),
            t0() + Duration::seconds(33),
        )
        .await;
    assert!(matches!(stale, Err(LedgerError::FencingRejected { token: 1, .. })), "{stale:?}");
    assert!(matches!(
        ledger.renew_lease(&a, Duration::seconds(30), t0() + Duration::seconds(33)).await,
        Err(LedgerError::LeaseLost { .. })
    ));
    let stored = ledger.get_state::<PoolState>(&pool()).await.expect("read").expect("exists");
    assert_eq!((stored.version, stored.state.desired), (2, 20));
    // renew and release; the token counter survives release
    let b = ledger.renew_lease(&b, Duration::seconds(60), t0() + Duration::seconds(40)).await.expect("renew");
    ledger.release_lease(&b).await.expect("release");
    let c = ledger
        .acquire_lease(&scope, "invocation-c", Duration::seconds(30), t0() + Duration::seconds(41))
        .await
        .expect("c");
    assert_eq!(c.token, 3);
}

#[tokio::test]
async fn a_paused_holder_cannot_write_after_its_lease_expired_even_if_nobody_took_over() {
    let (ledger, _db) = ledger().await;
    let a = ledger.acquire_lease("tick#pool-scaler", "a", Duration::seconds(30), t0()).await.expect("a");
    let late = ledger
        .put_state(
            &pool(),
            &PoolState { desired: 1, last_action: "a".into() },
            None,
            Some(&a.fence()),
            t0() + Duration::seconds(31),
        )
        .await;
    assert!(matches!(late, Err(LedgerError::FencingRejected { .. })), "{late:?}");
}

// ---- versioned state --------------------------------------------------------------------------------------

#[tokio::test]
async fn optimistic_version_conflicts_are_detected_and_reported() {
    let (ledger, _db) = ledger().await;
    let state = PoolState { desired: 5, last_action: "init".into() };
    assert_eq!(ledger.put_state(&pool(), &state, None, None, t0()).await.expect("create"), 1);
    let twice = ledger.put_state(&pool(), &state, None, None, t0()).await;
    assert!(matches!(twice, Err(LedgerError::VersionConflict { expected: None, found: Some(1), .. })), "{twice:?}");
    assert_eq!(ledger.put_state(&pool(), &state, Some(1), None, t0()).await.expect("update"), 2);
    // a writer that read version 1 loses against the one that wrote version 2
    let stale = ledger.put_state(&pool(), &state, Some(1), None, t0()).await;
    match stale {
        Err(error @ LedgerError::VersionConflict { expected: Some(1), found: Some(2), .. }) => {
            assert_eq!(error.class(), ErrorClass::Retryable);
            assert!(error.to_string().contains("expected version Some(1), found Some(2)"), "{error}");
        }
        other => panic!("expected a version conflict, got {other:?}"),
    }
    // work items use the same mechanism; open ones are listed by kind, closed ones drop out of the list
    let v = ledger
        .put_work_item(
            WorkItemWrite {
                kind: "EXPORT",
                id: "task-1",
                state: &state,
                expected: None,
                listing: WorkItemListing::Open,
            },
            None,
            t0(),
        )
        .await
        .expect("work item");
    assert_eq!(v, 1);
    ledger
        .put_work_item(
            WorkItemWrite {
                kind: "EXPORT",
                id: "task-2",
                state: &state,
                expected: None,
                listing: WorkItemListing::Open,
            },
            None,
            t0(),
        )
        .await
        .expect("work item");
    ledger
        .put_work_item(
            WorkItemWrite {
                kind: "IMPORT",
                id: "image-1",
                state: &state,
                expected: None,
                listing: WorkItemListing::Open,
            },
            None,
            t0(),
        )
        .await
        .expect("work item");
    let item = ledger.get_work_item::<PoolState>("EXPORT", "task-1").await.expect("read").expect("exists");
    assert_eq!(item.state, state);
    let open = ledger.open_work_items::<PoolState>("EXPORT").await.expect("list");
    assert_eq!(open.iter().map(|(id, v)| (id.as_str(), v.version)).collect::<Vec<_>>(), [("task-1", 1), ("task-2", 1)]);
    ledger
        .put_work_item(
            WorkItemWrite {
                kind: "EXPORT",
                id: "task-1",
                state: &state,
                expected: Some(1),
                listing: WorkItemListing::Closed { expires_at: Some(t0() + Duration::days(30)) },
            },
            None,
            t0(),
        )
        .await
        .expect("close");
    let open = ledger.open_work_items::<PoolState>("EXPORT").await.expect("list");
    assert_eq!(open.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["task-2"]);
    assert_eq!(ledger.get_work_item::<PoolState>("EXPORT", "task-1").await.expect("read").expect("kept").version, 2);
    assert!(
        ledger
            .get_state::<PoolState>(
                &ResourceRef::new("123456789012", "eu-central-1", ResourceKind::Fleet, "none").expect("valid")
            )
            .await
            .expect("read")
            .is_none()
    );
}

#[tokio::test]
async fn many_states_are_written_in_transactions_and_a_stale_version_or_fence_fails_as_one_write_would() {
    let (ledger, _db, requests) = common::counted_ledger().await;
    let fleet = |i: usize| {
        ResourceRef::new("123456789012", "eu-central-1", ResourceKind::Fleet, format!("fleet-{i}")).expect("valid")
    };
    let fleets: Vec<ResourceRef> = (0..250).map(fleet).collect();
    let states: Vec<PoolState> = (0..250).map(|i| PoolState { desired: i, last_action: "init".into() }).collect();
    let lease = ledger.acquire_lease("tick#builder-scheduler", "a", Duration::seconds(30), t0()).await.expect("lease");
    let fence = lease.fence();
    let writes = |expected: &dyn Fn(usize) -> Option<u64>| -> Vec<StateWrite<'_, PoolState>> {
        (0..250).map(|i| StateWrite { resource: &fleets[i], state: &states[i], expected: expected(i) }).collect()
    };

    // 250 new states under a fence: three transactions of at most 99 puts (the fence's check is the 100th)
    let before = requests.get();
    ledger.put_states(&writes(&|_| None), Some(&fence), t0()).await.expect("batched write");
    assert_eq!(requests.get() - before, 3);
    let found = ledger.get_states::<PoolState>(&fleets).await.expect("read");
    assert!(found.values().all(|v| v.version == 1) && found.len() == 250);
    assert_eq!(found[&fleet(249).key()].state.desired, 249);

    // unfenced, a single write, and nothing to write
    let before = requests.get();
    ledger.put_states(&writes(&|_| Some(1))[..1], None, t0()).await.expect("one write");
    ledger.put_states::<PoolState>(&[], Some(&fence), t0()).await.expect("no write");
    assert_eq!(requests.get() - before, 1);

    // fleet-120 moves on after it was read: the batch that holds it (fleets 99..198) is refused as a whole and
    // written one by one, so fleets 99..120 land and the conflict is the error; the first batch landed, the
    // third was never tried
    let moved = ledger.put_state(&fleet(120), &states[120], Some(1), None, t0()).await.expect("moved on");
    assert_eq!(moved, 2);
    let before = requests.get();
    let conflict = ledger.put_states(&writes(&|i| Some(if i == 0 { 2 } else { 1 })), Some(&fence), t0()).await;
    match conflict {
        Err(LedgerError::VersionConflict { expected: Some(1), found: Some(2), ref key }) => {
            assert!(key.contains("fleet-120"), "{key}");
        }
        other => panic!("expected a version conflict on fleet-120, got {other:?}"),
    }
    // one transaction, one refused, 21 single writes and the one that conflicts
    assert_eq!(requests.get() - before, 1 + 1 + 21 + 1);
    let found = ledger.get_states::<PoolState>(&fleets).await.expect("read");
    let versions = |range: std::ops::Range<usize>| range.map(|i| found[&fleet(i).key()].version).collect::<Vec<_>>();
    assert_eq!(versions(0..1), [3]);
    assert!(versions(1..120).iter().all(|&v| v == 2), "{:?}", versions(1..120));
    assert!(versions(121..250).iter().all(|&v| v == 1), "{:?}", versions(121..250));

    // a fence whose lease ran out: nothing is written
    let late = ledger
        .put_states(&writes(&|i| Some(found[&fleet(i).key()].version)), Some(&fence), t0() + Duration::seconds(31))
        .await;
    assert!(matches!(late, Err(LedgerError::FencingRejected { .. })), "{late:?}");
    let after = ledger.get_states::<PoolState>(&fleets).await.expect("read");
    assert_eq!(after, found);
}

/// An applied effect whose bookkeeping is a state: the audit record, the state and the claim's completion go in
/// one fenced transaction; when that is refused (the state moved on after it was read), nothing of it was
/// written and the three are written one by one as `perform_once` writes them: audit, state (its conflict is the
/// error), completion. Either way a redelivery is a duplicate and makes no second call.
#[tokio::test]
async fn an_applied_effect_is_audited_recorded_and_completed_in_one_transaction_or_one_by_one_when_refused() {
    let (ledger, _db, requests) = common::counted_ledger().await;
    let fleet =
        |name: &str| ResourceRef::new("123456789012", "eu-central-1", ResourceKind::Fleet, name).expect("valid");
    let lease = ledger.acquire_lease("tick#pool-scaler", "a", Duration::seconds(30), t0()).await.expect("lease");
    let fence = lease.fence();
    let state = PoolState { desired: 4, last_action: "UpdateFleet".into() };
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let call = async || {
        calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok::<(), CallError>(())
    };
    let effect = |resource: &ResourceRef| Effect {
        ledger: &ledger,
        key: IdempotencyKey::new("pool-scaler", format!("{}#epoch-1", resource.key())),
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
        remaining: MINUTES_5,
        fence: Some(&fence),
        recorded_failure: None,
    };
    let audited = async |resource: &ResourceRef| {
        ledger
            .audit_by_resource(&resource.key())
            .await
            .expect("audit")
            .into_iter()
            .map(|r| r.outcome)
            .collect::<Vec<_>>()
    };

    // GIVEN a fleet never recorded: WHEN the effect is performed, THEN two ledger requests (the claim, one
    // transaction) and the state, the audit and the completed claim are all there
    let a = fleet("a");
    let before = requests.get();
    let write = StateWrite { resource: &a, state: &state, expected: None };
    let performed = perform_once_with_state(effect(&a), &call, write.clone()).await.expect("performed");
    assert_eq!(performed, Performed::Applied);
    assert_eq!(requests.get() - before, 2);
    assert_eq!(
        ledger.get_state::<PoolState>(&a).await.expect("read").map(|v| (v.version, v.state)),
        Some((1, state.clone()))
    );
    assert_eq!(audited(&a).await, [Outcome::Applied]);
    let again = perform_once_with_state(effect(&a), &call, write).await.expect("redelivered");
    assert_eq!((again, calls.load(std::sync::atomic::Ordering::SeqCst)), (Performed::Duplicate, 1));

    // GIVEN a fleet whose state moved on (version 2) after it was read at version 1: the transaction is refused
    // and nothing of it written; one by one, the audit lands, the state conflicts (the error), the claim completes
    let b = fleet("b");
    ledger.put_state(&b, &state, None, None, t0()).await.expect("v1");
    ledger.put_state(&b, &state, Some(1), None, t0()).await.expect("v2");
    let before = requests.get();
    let write = StateWrite { resource: &b, state: &state, expected: Some(1) };
    let conflict = perform_once_with_state(effect(&b), &call, write.clone()).await;
    assert!(
        matches!(conflict, Err(LedgerError::VersionConflict { expected: Some(1), found: Some(2), .. })),
        "{conflict:?}"
    );
    assert_eq!(requests.get() - before, 1 + 1 + 3, "claim, refused transaction, audit, state, completion");
    assert_eq!(audited(&b).await, [Outcome::Applied]);
    assert_eq!(ledger.get_state::<PoolState>(&b).await.expect("read").map(|v| v.version), Some(2));
    let again = perform_once_with_state(effect(&b), &call, write).await.expect("redelivered");
    assert_eq!((again, calls.load(std::sync::atomic::Ordering::SeqCst)), (Performed::Duplicate, 2));
}

// ---- audit ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn audit_records_are_listed_by_day_and_by_resource_and_appended_once() {
    let (ledger, _db) = ledger().await;
    let fleet = ResourceRef::new("123456789012", "eu-central-1", ResourceKind::Fleet, "sales-fleet").expect("valid");
    let record = |minutes: i64, resource: &ResourceRef, action: &str| AuditRecord {
        at: t0() + Duration::minutes(minutes),
        function: "pool-scaler".into(),
        resource: resource.key(),
        action: action.into(),
        outcome: Outcome::Applied,
        reason: "in-hours utilization 0.9 > target 0.75".into(),
        correlation_id: format!("evt-{minutes}"),
        details: serde_json::json!({ "desired": { "from": 10, "to": 14 } }),
    };
    let first = record(0, &pool(), "UpdateWorkspacesPool");
    assert_eq!(ledger.append_audit(&first).await.expect("append"), Appended::New);
    assert_eq!(ledger.append_audit(&first).await.expect("append again"), Appended::AlreadyRecorded);
    ledger.append_audit(&record(5, &fleet, "UpdateFleet")).await.expect("append");
    ledger.append_audit(&record(10, &pool(), "StopWorkspacesPool")).await.expect("append");
    ledger.append_audit(&record(24 * 60, &pool(), "StartWorkspacesPool")).await.expect("next day");

    let today = ledger.audit_by_day(t0().date_naive()).await.expect("by day");
    assert_eq!(
        today.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(),
        ["UpdateWorkspacesPool", "UpdateFleet", "StopWorkspacesPool"]
    );
    assert_eq!(today[0], first);
    let for_pool = ledger.audit_by_resource(&pool().key()).await.expect("by resource");
    assert_eq!(
        for_pool.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(),
        ["UpdateWorkspacesPool", "StopWorkspacesPool", "StartWorkspacesPool"]
    );
}

#[tokio::test]
async fn a_failed_attempt_and_the_redelivery_that_applied_it_are_both_kept_in_order() {
    // A per-item failure of a batch call is audited `failed`; the redelivery of the same event at the same
    // instant retries it and succeeds. Both happened: the `applied` record must not collide with the `failed` one.
    let (ledger, _db) = ledger().await;
    let record = |outcome: Outcome| AuditRecord {
        at: t0(),
        function: "remediator".into(),
        resource: pool().key(),
        action: "RebootWorkspaces".into(),
        outcome,
        reason: "UNHEALTHY for 20m".into(),
        correlation_id: "evt-1".into(),
        details: serde_json::Value::Null,
    };
    assert_eq!(ledger.append_audit(&record(Outcome::Failed)).await.expect("append"), Appended::New);
    assert_eq!(ledger.append_audit(&record(Outcome::Applied)).await.expect("append"), Appended::New);
    assert_eq!(ledger.append_audit(&record(Outcome::Applied)).await.expect("again"), Appended::AlreadyRecorded);
    assert_eq!(ledger.append_audit(&record(Outcome::Deferred)).await.expect("append"), Appended::New);
    for records in [
        ledger.audit_by_day(t0().date_naive()).await.expect("by day"),
        ledger.audit_by_resource(&pool().key()).await.expect("by resource"),
    ] {
        assert_eq!(
            records.iter().map(|r| r.outcome).collect::<Vec<_>>(),
            [Outcome::Deferred, Outcome::Failed, Outcome::Applied],
            "one millisecond's records of an action in the order its stages happen"
        );
    }
}

// ---- config -----------------------------------------------------------------------------------------------

#[tokio::test]
async fn only_valid_policy_documents_are_stored_and_the_newest_is_current() {
    let (ledger, _db) = ledger().await;
    assert!(ledger.current_policy().await.expect("read").is_none());
    let example = include_str!("../../examples/autopilot.yaml");
    assert_eq!(ledger.put_policy(example, t0()).await.expect("store v1"), 1);
    let invalid = example.replace("end: \"19:00\"", "end: \"25:00\"");
    match ledger.put_policy(&invalid, t0()).await {
        Err(LedgerError::InvalidPolicy(error)) => assert!(
            error.to_string().contains("schedules.office.periods[0].end: 25:00 is not a time of day"),
            "{error}"
        ),
        other => panic!("invalid document accepted: {other:?}"),
    }
    let v2 = example.replace("dry_run: true ", "dry_run: false");
    assert_eq!(ledger.put_policy(&v2, t0()).await.expect("store v2"), 2);
    let current = ledger.current_policy().await.expect("read").expect("exists");
    assert_eq!(current.version, 2);
    assert!(!current.policy.dry_run());
    assert_eq!(current.document, v2);
}

#[tokio::test]
async fn a_stored_version_this_build_refuses_is_named_by_its_number() {
    // GIVEN version 1, then a version 2 written around `config push` (or by a newer build) that this build refuses
    let (ledger, db) = ledger().await;
    let example = include_str!("../../examples/autopilot.yaml");
    ledger.put_policy(example, t0()).await.expect("store v1");
    let s = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.to_owned());
    common::dynamodb_client(&db.endpoint)
        .put_item()
        .table_name(common::TABLE)
        .item("pk", s("CONFIG"))
        .item("sk", s("v000002"))
        .item("version", aws_sdk_dynamodb::types::AttributeValue::N("2".into()))
        .item("document", s(&example.replace("end: \"19:00\"", "end: \"25:00\"")))
        .item("sha256", s("-"))
        .item("created_at", s("2026-11-23T06:00:00.000Z"))
        .send()
        .await
        .expect("raw put");
    // WHEN it is read THEN the error names the version and what to do
    let error = ledger.current_policy().await.expect_err("refused");
    assert!(matches!(error, LedgerError::InvalidStoredPolicy { version: 2, .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.starts_with("stored policy version 2: invalid policy document: schedules.office.periods[0].end"),
        "{message}"
    );
    assert!(message.ends_with("push a corrected one (autopilot config push)"), "{message}");
    assert_eq!(error.class(), ErrorClass::InvalidInput);
}

#[tokio::test]
async fn a_fenced_claim_is_refused_to_a_holder_that_lost_its_lease_and_answers_duplicates_like_an_unfenced_one() {
    let (ledger, _db) = ledger().await;
    let hash = payload_hash(&"reboot");
    let a = ledger.acquire_lease("remediator#eu-central-1", "a", Duration::seconds(30), t0()).await.expect("a");
    let key = IdempotencyKey::new("remediator", "ws-1#reboot#1");
    let first = ledger.acquire_idempotency(&key, &hash, t0(), MINUTES_5, Some(&a.fence())).await;
    let Ok(Acquired::Proceed(claim)) = first else { panic!("a claims under its lease: {first:?}") };
    // the same key again under the same, valid fence: in progress (the transaction's put failed, not the fence)
    let again = ledger.acquire_idempotency(&key, &hash, t0() + Duration::seconds(1), MINUTES_5, Some(&a.fence())).await;
    assert!(matches!(again, Err(LedgerError::InProgress { .. })), "{again:?}");
    ledger.complete_idempotency(&claim, &"done", t0()).await.expect("complete");
    let done = ledger.acquire_idempotency(&key, &hash, t0() + Duration::seconds(2), MINUTES_5, Some(&a.fence())).await;
    assert!(matches!(done, Ok(Acquired::AlreadyCompleted { .. })), "{done:?}");
    // A pauses past its lease; B takes over; A can no longer claim anything, B can
    let b = ledger
        .acquire_lease("remediator#eu-central-1", "b", Duration::seconds(30), t0() + Duration::seconds(31))
        .await
        .expect("b");
    let other = IdempotencyKey::new("remediator", "ws-2#reboot#1");
    let late =
        ledger.acquire_idempotency(&other, &hash, t0() + Duration::seconds(32), MINUTES_5, Some(&a.fence())).await;
    assert!(matches!(late, Err(LedgerError::FencingRejected { token: 1, .. })), "{late:?}");
    assert!(a.fence().check(t0() + Duration::seconds(32)).is_err(), "A's own clock check says the lease ran out");
    assert!(b.fence().check(t0() + Duration::seconds(32)).is_ok());
    let current =
        ledger.acquire_idempotency(&other, &hash, t0() + Duration::seconds(32), MINUTES_5, Some(&b.fence())).await;
    assert!(matches!(current, Ok(Acquired::Proceed(_))), "{current:?}");
}

#[tokio::test]
async fn claims_left_in_progress_past_their_expiry_are_found_by_the_index_and_released() {
    let (ledger, _db) = ledger().await;
    let hash = payload_hash(&"x");
    let claim = |id: &str| IdempotencyKey::new("pool-scaler", id);
    // a: left in progress (its invocation died); b: completed; c: in progress and not expired yet;
    // d: another function's, left in progress
    for id in ["a", "b", "c"] {
        let remaining = if id == "c" { StdDuration::from_secs(3600) } else { StdDuration::from_secs(60) };
        let acquired = ledger.acquire_idempotency(&claim(id), &hash, t0(), remaining, None).await.expect("claim");
        if let (Acquired::Proceed(proof), "b") = (&acquired, id) {
            ledger.complete_idempotency(proof, &"done", t0()).await.expect("complete");
        }
    }
    let other = IdempotencyKey::new("remediator", "d");
    ledger.acquire_idempotency(&other, &hash, t0(), StdDuration::from_secs(60), None).await.expect("claim d");
    assert_eq!(
        ledger.release_stale_claims("pool-scaler", t0() + Duration::seconds(30)).await.expect("early"),
        Vec::<String>::new()
    );
    let released = ledger.release_stale_claims("pool-scaler", t0() + Duration::seconds(61)).await.expect("sweep");
    assert_eq!(released, vec!["a".to_owned()]);
    // a is free again, b is still completed, c still in progress, d untouched
    let now = t0() + Duration::seconds(62);
    assert!(matches!(
        ledger.acquire_idempotency(&claim("a"), &hash, now, MINUTES_5, None).await,
        Ok(Acquired::Proceed(_))
    ));
    assert!(matches!(
        ledger.acquire_idempotency(&claim("b"), &hash, now, MINUTES_5, None).await,
        Ok(Acquired::AlreadyCompleted { .. })
    ));
    assert!(matches!(
        ledger.acquire_idempotency(&claim("c"), &hash, now, MINUTES_5, None).await,
        Err(LedgerError::InProgress { .. })
    ));
    assert_eq!(ledger.release_stale_claims("remediator", now).await.expect("sweep d"), vec!["d".to_owned()]);
    assert_eq!(ledger.release_stale_claims("remediator", now).await.expect("again"), Vec::<String>::new());
}

// ---- tag cache --------------------------------------------------------------------------------------------

#[tokio::test]
async fn cached_tags_are_written_in_batches_loaded_by_kind_and_marked_stale_by_a_change() {
    let (ledger, _db) = ledger().await;
    let fleet = |i: usize| ResourceRef::new("123456789012", "eu-central-1", ResourceKind::Fleet, format!("fleet-{i}"));
    // 60 fleets (three BatchWriteItem calls), one with no tags at all, and a pool in another partition
    let read: Vec<_> = (0..60)
        .map(|i| {
            let tags = if i == 0 { Default::default() } else { [("team".to_owned(), format!("t{i}"))].into() };
            (fleet(i).unwrap(), tags)
        })
        .collect();
    ledger.put_cached_tags(&read, t0()).await.expect("batch write");
    let pool = ResourceRef::new("123456789012", "eu-central-1", ResourceKind::WorkspacesPool, "wspool-1").unwrap();
    ledger.put_cached_tags(&[(pool.clone(), [("k".to_owned(), "v".to_owned())].into())], t0()).await.expect("pool");

    let fleets = ledger.tag_cache(ResourceKind::Fleet).await.expect("load");
    assert_eq!(fleets.len(), 60);
    let one = &fleets[&fleet(1).unwrap().key()];
    assert_eq!(one.cached, Some(([("team".to_owned(), "t1".to_owned())].into(), t0())));
    assert_eq!(fleets[&fleet(0).unwrap().key()].cached, Some((Default::default(), t0())), "no tags is cached too");
    assert!(one.fresh(&fleet(1).unwrap(), t0() + Duration::hours(11)).is_some());
    assert!(one.fresh(&fleet(1).unwrap(), t0() + Duration::hours(24)).is_none(), "past its maximum age");
    assert_eq!(ledger.tag_cache(ResourceKind::WorkspacesPool).await.expect("pools").len(), 1);

    // one resource: its own items only (fleet-1 is a prefix of fleet-10 … fleet-19)
    assert_eq!(&ledger.tag_cache_of(&fleet(1).unwrap()).await.expect("one"), one);
    assert_eq!(ledger.tag_cache_of(&fleet(99).unwrap()).await.expect("none"), Default::default());

    // a change marks the entry stale, even when the tags read before it are written back after it
    let changed = t0() + Duration::minutes(2);
    ledger.mark_tags_changed(&fleet(1).unwrap(), changed).await.expect("mark");
    ledger.put_cached_tags(&read[1..2], t0() + Duration::minutes(1)).await.expect("a stale write-back");
    let entry = ledger.tag_cache_of(&fleet(1).unwrap()).await.expect("marked");
    assert_eq!(entry.changed_at, Some(changed));
    assert!(entry.fresh(&fleet(1).unwrap(), changed + Duration::minutes(1)).is_none());
    // an older or redelivered event keeps the latest change; a read after the change is fresh again
    ledger.mark_tags_changed(&fleet(1).unwrap(), t0()).await.expect("older");
    ledger.mark_tags_changed(&fleet(1).unwrap(), changed).await.expect("again");
    ledger.put_cached_tags(&read[1..2], changed + Duration::minutes(5)).await.expect("read after");
    let entry = ledger.tag_cache_of(&fleet(1).unwrap()).await.expect("read again");
    assert_eq!(entry.changed_at, Some(changed));
    assert!(entry.fresh(&fleet(1).unwrap(), changed + Duration::minutes(6)).is_some());
}

#[tokio::test]
async fn many_states_are_read_in_batches_with_their_versions_and_missing_ones_left_out() {
    let (ledger, _db) = ledger().await;
    let fleet = |i: usize| {
        ResourceRef::new("123456789012", "eu-central-1", ResourceKind::Fleet, format!("fleet-{i}")).expect("valid")
    };
    // 230 stored states (three batches of at most 100), some written twice, and 5 resources never stored
    for i in 0..230 {
        let state = PoolState { desired: i as u32, last_action: "init".into() };
        ledger.put_state(&fleet(i), &state, None, None, t0()).await.expect("create");
        if i % 50 == 0 {
            ledger.put_state(&fleet(i), &state, Some(1), None, t0()).await.expect("update");
        }
    }
    let wanted: Vec<ResourceRef> = (0..235).map(fleet).collect();
    let found = ledger.get_states::<PoolState>(&wanted).await.expect("batch read");
    assert_eq!(found.len(), 230);
    for i in 0..235 {
        let one = ledger.get_state::<PoolState>(&fleet(i)).await.expect("read");
        let batched = found.get(&fleet(i).key());
        assert_eq!(one.as_ref().map(|v| (v.version, &v.state)), batched.map(|v| (v.version, &v.state)), "fleet-{i}");
    }
    assert_eq!(found[&fleet(50).key()].version, 2);
    assert!(ledger.get_states::<PoolState>(&[]).await.expect("nothing to read").is_empty());
}

#[tokio::test]
async fn a_dry_run_does_not_make_the_real_action_a_duplicate_once_dry_run_is_off() {
    let (ledger, _db) = ledger().await;
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let effect = |dry_run: bool| Effect {
        ledger: &ledger,
        key: IdempotencyKey::new("remediator", "reboot#ws-1#episode-1#1"),
        payload: &"RebootWorkspaces",
        audit: AuditRecord {
            at: t0(),
            function: "remediator".into(),
            resource: "workspaces#123456789012#eu-central-1#workspace#ws-1".into(),
            action: "RebootWorkspaces".into(),
            outcome: Outcome::Applied,
            reason: "UNHEALTHY".into(),
            correlation_id: "evt-1".into(),
            details: serde_json::json!({}),
        },
        dry_run,
        now: t0(),
        remaining: MINUTES_5,
        fence: None,
        recorded_failure: None,
    };
    let perform = async |dry_run: bool| {
        let call = async || {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<(), CallError>(())
        };
        autopilot_shared::effect::perform_once(effect(dry_run), call, async || Ok(())).await.expect("performed")
    };
    // GIVEN the would-act recorded in dry-run (once, however often it is decided again)
    assert_eq!(perform(true).await, Performed::DryRun);
    assert_eq!(perform(true).await, Performed::Duplicate);
    // WHEN dry-run is switched off and the same action is decided
    // THEN it is made, once
    assert_eq!(perform(false).await, Performed::Applied);
    assert_eq!(perform(false).await, Performed::Duplicate);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

//! The bookkeeping of a tick's many effects in batches: what [`super::perform_once_with_state`] writes for one
//! effect — a claim before the call, and the audit record, the state and the completion after it — written
//! for many at once, so that a mutation costs its AWS call and a small share of two transactions instead of
//! two ledger requests of its own.
//!
//! - **Claims in batches.** Decisions are passed on a short window at a time ([`CLAIM_WINDOW`], or as soon
//!   as [`CLAIMS_PER_TRANSACTION`] have gathered), and each decided effect is noted as wanting a claim
//!   ([`Bookkeeping::decided`]). The first effect that needs its claim takes, in one fenced
//!   `TransactWriteItems`, the claims of every effect noted and not yet claimed (up to
//!   [`CLAIMS_PER_TRANSACTION`], its own first): the window gathers a batch when the calls keep up with the
//!   decisions, and the lanes' backlog does when the calls are paced by the services' rate limits. When that
//!   transaction is refused (one of them is a duplicate, in progress, or a conflicting transaction), nothing was
//!   written and each effect of it claims on its own, as without batching, and learns why.
//! - **Completions after.** A successful call's completion is queued, and written with the others a transaction
//!   of [`COMPLETIONS_PER_TRANSACTION`] at a time (all or none), the rest at the end of the act step
//!   ([`Bookkeeping::finish`]). A refused transaction is written one by one in the order of one effect (audit,
//!   state, completion).
//!
//! A crash between a call and its completion leaves the claim in progress, exactly as a crash right after the
//! call of a single effect does: a redelivery treats it as in flight, the next tick decides again from what it
//! observes, and the claim is released once its in-progress expiry has passed. A claim taken for an effect
//! whose call was never made (its lane stopped on an error) is released by [`Bookkeeping::finish`].

use super::{CallError, Effect, Performed, applied_response, count_applied, dry_run, settle, still_held};
use crate::ledger::audit::Outcome as AuditOutcome;
use crate::ledger::idempotency::{COMPLETIONS_PER_TRANSACTION, Claim, Completion, IdempotencyKey, payload_hash};
use crate::ledger::lease::{Fence, TRANSACT_MAX};
use crate::ledger::state::StateWrite;
use crate::ledger::{Ledger, LedgerError};
use crate::resource::ResourceRef;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;

/// Claims per transaction: the fence's check takes one place.
pub const CLAIMS_PER_TRANSACTION: usize = TRANSACT_MAX - 1;

/// How long decisions are gathered before they are passed on to be acted on: long enough for a batch of
/// claims to gather while the tags of a first tick arrive, short next to a tick and to the services' pace.
pub const CLAIM_WINDOW: std::time::Duration = std::time::Duration::from_millis(50);

/// One act step's claims taken ahead and completions not yet written.
#[derive(Debug)]
pub struct Bookkeeping<'a> {
    ledger: &'a Ledger,
    fence: Option<&'a Fence>,
    now: DateTime<Utc>,
    remaining: std::time::Duration,
    /// Effects decided whose claims are not taken yet (key, payload hash), in the order they were decided.
    wanted: Mutex<Vec<(IdempotencyKey, String)>>,
    /// Claims taken and not yet used by their effects, by business key.
    ahead: Mutex<HashMap<String, Claim>>,
    /// One batch of claims is taken at a time: an effect whose claim is in a batch being taken waits for it.
    claiming: tokio::sync::Mutex<()>,
    pending: Mutex<Vec<Completion>>,
    /// Resource states that changed without an action, not yet written: (resource, state, version read at).
    states: Mutex<Vec<(ResourceRef, serde_json::Value, Option<u64>)>>,
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<'a> Bookkeeping<'a> {
    /// Bookkeeping for effects made at `now` under `fence`, in an invocation with `remaining` time.
    pub fn new(
        ledger: &'a Ledger,
        fence: Option<&'a Fence>,
        now: DateTime<Utc>,
        remaining: std::time::Duration,
    ) -> Self {
        Self {
            ledger,
            fence,
            now,
            remaining,
            wanted: Mutex::default(),
            ahead: Mutex::default(),
            claiming: tokio::sync::Mutex::new(()),
            pending: Mutex::default(),
            states: Mutex::default(),
        }
    }

    /// `decisions` as they arrive, passed on a window at a time ([`CLAIM_WINDOW`], or
    /// [`CLAIMS_PER_TRANSACTION`] decisions), each decision's effect noted as wanting a claim. `effect_of` names
    /// a decision's effect (its key and payload), `None` when it has none to claim.
    pub fn decided<'s, D: 's, P: Serialize>(
        &'s self,
        decisions: impl Stream<Item = D> + 's,
        effect_of: impl Fn(&D) -> Option<(IdempotencyKey, P)> + 's,
    ) -> impl Stream<Item = D> + 's {
        windows(decisions.boxed_local(), CLAIM_WINDOW, CLAIMS_PER_TRANSACTION)
            .map(move |window| {
                let mut wanted = locked(&self.wanted);
                for (key, payload) in window.iter().filter_map(&effect_of) {
                    wanted.push((key, payload_hash(&payload)));
                }
                futures::stream::iter(window)
            })
            .flatten()
    }

    /// The effect's claim: taken with the batch it was in, else now with every other effect still wanting one;
    /// `None` when another delivery already acted (or is acting).
    async fn claim<P: Serialize>(&self, effect: &Effect<'_, P>) -> Result<Option<Claim>, LedgerError> {
        let _turn = self.claiming.lock().await;
        // Claims name their key as the ledger's scope claims it (a shard's are qualified by its place).
        if let Some(claim) = locked(&self.ahead).remove(&self.ledger.in_scope(&effect.key).business_key) {
            return Ok(Some(claim));
        }
        let others: Vec<(IdempotencyKey, String)> = {
            let mut wanted = locked(&self.wanted);
            wanted.retain(|(key, _)| key != &effect.key);
            let take = wanted.len().min(CLAIMS_PER_TRANSACTION - 1);
            wanted.drain(..take).collect()
        };
        if !others.is_empty() {
            let mut keys = vec![(effect.key.clone(), payload_hash(effect.payload))];
            keys.extend(others);
            match self.ledger.acquire_idempotency_all(&keys, self.now, self.remaining, self.fence).await {
                Ok(Some(mut claims)) => {
                    let mine = claims.remove(0);
                    locked(&self.ahead).extend(claims.into_iter().map(|c| (c.key().business_key.clone(), c)));
                    return Ok(Some(mine));
                }
                Err(lost @ LedgerError::FencingRejected { .. }) => return Err(lost),
                // Refused or failed together: each claims on its own and meets the refusal or outage itself.
                Ok(None) => tracing::debug!(claims = keys.len(), "claims refused together; each claims on its own"),
                Err(error) => tracing::debug!(claims = keys.len(), %error, "claims not taken together"),
            }
        }
        super::claim(effect).await
    }

    /// [`super::perform_once_with_state`] with this step's batched bookkeeping: the claim taken ahead when
    /// there is one (else claimed now), and after a successful call the audit record, the state and the
    /// completion queued to be written with others. A deferral or a failure is settled at once, as before.
    pub async fn perform_with_state<P: Serialize, S: Serialize>(
        &self,
        effect: Effect<'_, P>,
        call: impl AsyncFnOnce() -> Result<(), CallError>,
        state: StateWrite<'_, S>,
    ) -> Result<Performed, LedgerError> {
        let Some(claim) = self.claim(&effect).await? else { return Ok(Performed::Duplicate) };
        if effect.dry_run {
            return dry_run(&effect, &claim).await;
        }
        still_held(&effect, &[&claim]).await?;
        let result = call().await;
        if result.is_err() {
            return settle(effect, &claim, result, async || Ok(())).await;
        }
        let mut audit = effect.audit;
        audit.outcome = AuditOutcome::Applied;
        let performed = count_applied(&audit);
        let completion = Completion::new(claim, applied_response(&audit), audit, &state)?;
        let full = {
            let mut pending = locked(&self.pending);
            pending.push(completion);
            (pending.len() >= COMPLETIONS_PER_TRANSACTION).then(|| std::mem::take(&mut *pending))
        };
        if let Some(full) = full {
            self.ledger.complete_all(&full, self.fence, self.now).await?;
        }
        Ok(performed)
    }

    /// Queues a resource's state that changed without an action (a memory that moved on), to be written with
    /// others, [`CLAIMS_PER_TRANSACTION`] to a fenced transaction (`Ledger::put_states`: a transaction refused
    /// for one item's version is written one by one, so the writes before the conflict land and the conflict is
    /// the error).
    pub async fn save_state<S: Serialize>(&self, write: StateWrite<'_, S>) -> Result<(), LedgerError> {
        let state = serde_json::to_value(write.state).map_err(|e| LedgerError::Unavailable {
            operation: "serialise state",
            message: format!("{}: {e}", write.resource.key()),
        })?;
        let full = {
            let mut states = locked(&self.states);
            states.push((write.resource.clone(), state, write.expected));
            (states.len() >= CLAIMS_PER_TRANSACTION).then(|| std::mem::take(&mut *states))
        };
        match full {
            Some(full) => self.write_states(&full).await,
            None => Ok(()),
        }
    }

    async fn write_states(&self, states: &[(ResourceRef, serde_json::Value, Option<u64>)]) -> Result<(), LedgerError> {
        let writes: Vec<StateWrite<'_, serde_json::Value>> = states
            .iter()
            .map(|(resource, state, expected)| StateWrite { resource, state, expected: *expected })
            .collect();
        self.ledger.put_states(&writes, self.fence, self.now).await
    }

    /// Writes the states and completions still queued, and releases the claims taken ahead that no effect used (their
    /// lane stopped on an error). Call it once the act step's lanes have all finished, also when one failed.
    pub async fn finish(&self) -> Result<(), LedgerError> {
        let states = std::mem::take(&mut *locked(&self.states));
        let saved = self.write_states(&states).await;
        let pending = std::mem::take(&mut *locked(&self.pending));
        let completed = self.ledger.complete_all(&pending, self.fence, self.now).await;
        let unused: Vec<Claim> = locked(&self.ahead).drain().map(|(_, claim)| claim).collect();
        let mut released = Ok(());
        for claim in &unused {
            match self.ledger.release_idempotency(claim).await {
                Ok(()) | Err(LedgerError::IdempotencyLost { .. }) => {}
                Err(error) => released = Err(error),
            }
        }
        saved.and(completed).and(released)
    }
}

/// `items` in windows: a window opens with the next item and closes `window` later, when `max` items have
/// gathered, or when `items` ends.
fn windows<'s, T: 's>(
    items: futures::stream::LocalBoxStream<'s, T>,
    window: std::time::Duration,
    max: usize,
) -> impl Stream<Item = Vec<T>> + 's {
    futures::stream::unfold(Some(items), move |items| async move {
        let mut items = items?;
        let mut gathered = vec![items.next().await?];
        let closes = tokio::time::sleep(window);
        let mut closes = std::pin::pin!(closes);
        while gathered.len() < max {
            tokio::select! {
                biased;
                item = items.next() => match item {
                    Some(item) => gathered.push(item),
                    None => return Some((gathered, None)),
                },
                () = &mut closes => break,
            }
        }
        Some((gathered, Some(items)))
    })
}

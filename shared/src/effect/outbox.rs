//! Outcome events EventBridge did not take, kept in the ledger and sent again by the next invocation: for
//! events that follow an action already made (its claim completed), which no later step would announce again.
//! One work item per detail type (`OUTBOX#<detail type>` in the shard's scope), read once per invocation that
//! announces, written only when what is kept changes, fenced by the function lease. An event EventBridge keeps
//! refusing for [`KEEP`] is given up, and at most [`MAX_KEPT`] are kept (the oldest go first), each with a
//! warning: a bus that is gone for good must not grow the item past DynamoDB's item size.

use super::ActContext;
use crate::ledger::LedgerError;
use crate::ledger::state::{WorkItemListing, WorkItemWrite};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The work-item kind of kept outcome events.
pub const KIND: &str = "OUTBOX";

/// How long an event EventBridge keeps refusing is kept.
pub const KEEP: Duration = Duration::days(7);

/// How many events of one detail type are kept at most (a few hundred bytes each: far below DynamoDB's 400 KB).
pub const MAX_KEPT: usize = 250;

/// One event not taken yet, and since when it waits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeptEvent {
    pub since: DateTime<Utc>,
    pub detail: serde_json::Value,
}

/// Publishes `details` as `detail_type` events after those earlier invocations kept, and keeps what EventBridge
/// does not take for the next invocation. Returns the `PutEvents` calls made (ten events to a call). When the
/// kept events cannot be read, this invocation's are still sent (only a refused one is then lost) before the
/// ledger's error is returned.
pub async fn announce_kept(
    ctx: &ActContext<'_>,
    detail_type: &str,
    details: Vec<serde_json::Value>,
) -> Result<usize, LedgerError> {
    let stored = match ctx.ledger.get_work_item::<Vec<KeptEvent>>(KIND, detail_type).await {
        Ok(stored) => stored,
        Err(error) => {
            let refused = super::announce_each(&ctx.aws.eventbridge, ctx.event_bus, detail_type, &details).await;
            if !refused.is_empty() {
                tracing::warn!(detail_type, lost = refused.len(), %error, "outcome events neither taken nor kept");
            }
            return Err(error);
        }
    };
    let before = stored.as_ref().map(|s| s.state.clone()).unwrap_or_default();
    if before.is_empty() && details.is_empty() {
        return Ok(0);
    }
    let all: Vec<KeptEvent> =
        before.iter().cloned().chain(details.into_iter().map(|detail| KeptEvent { since: ctx.now, detail })).collect();
    let payloads: Vec<serde_json::Value> = all.iter().map(|e| e.detail.clone()).collect();
    let refused = super::announce_each(&ctx.aws.eventbridge, ctx.event_bus, detail_type, &payloads).await;
    let mut after = kept(refused.into_iter().map(|i| all[i].clone()).collect(), ctx.now);
    if after.len() > MAX_KEPT {
        let dropped = after.len() - MAX_KEPT;
        tracing::warn!(detail_type, dropped, "more outcome events refused than are kept: the oldest given up");
        after.drain(..dropped);
    }
    if after != before {
        let write = WorkItemWrite {
            kind: KIND,
            id: detail_type,
            state: &after,
            expected: stored.as_ref().map(|s| s.version),
            listing: WorkItemListing::Closed { expires_at: Some(ctx.now + KEEP) },
        };
        ctx.ledger.put_work_item(write, ctx.fence, ctx.now).await?;
    }
    if !after.is_empty() {
        tracing::warn!(
            detail_type,
            kept = after.len(),
            "outcome events EventBridge did not take: sent again next time"
        );
    }
    Ok(payloads.len().div_ceil(10))
}

/// The refused events still worth keeping at `now`: those refused for less than [`KEEP`].
fn kept(refused: Vec<KeptEvent>, now: DateTime<Utc>) -> Vec<KeptEvent> {
    let (keep, give_up): (Vec<KeptEvent>, Vec<KeptEvent>) =
        refused.into_iter().partition(|event| now - event.since < KEEP);
    if !give_up.is_empty() {
        tracing::warn!(given_up = give_up.len(), "outcome events EventBridge refused for a week: given up");
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_is_given_up_a_week_after_it_was_first_refused_not_after_the_oldest() {
        let day = |d: i64| DateTime::UNIX_EPOCH + Duration::days(d);
        let event = |d: i64| KeptEvent { since: day(d), detail: serde_json::json!({ "day": d }) };
        let left = kept(vec![event(0), event(6)], day(7));
        assert_eq!(left, vec![event(6)]);
        assert_eq!(kept(vec![event(6)], day(12)), vec![event(6)]);
        assert!(kept(vec![event(6)], day(13)).is_empty());
    }
}

//! Outcome events EventBridge did not take, kept in the ledger and sent again by the next invocation: for
//! events that follow an action already made (its claim completed), which no later step would announce again.
//! One work item per detail type (`OUTBOX#<detail type>` in the shard's scope), read once per invocation that
//! announces, written only when what is kept changes, fenced by the function lease. An event EventBridge keeps
//! refusing for [`KEEP`] is given up, with a warning.

use super::ActContext;
use crate::ledger::LedgerError;
use crate::ledger::state::{WorkItemListing, WorkItemWrite};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The work-item kind of kept outcome events.
pub const KIND: &str = "OUTBOX";

/// How long events EventBridge keeps refusing are kept.
pub const KEEP: Duration = Duration::days(7);

/// The events of one detail type not taken yet, and since when the oldest of them waits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Kept {
    pub since: Option<DateTime<Utc>>,
    pub details: Vec<serde_json::Value>,
}

/// Publishes `details` as `detail_type` events after those earlier invocations kept, and keeps what EventBridge
/// does not take for the next invocation. Returns the `PutEvents` calls made (ten events to a call).
pub async fn announce_kept(
    ctx: &ActContext<'_>,
    detail_type: &str,
    details: Vec<serde_json::Value>,
) -> Result<usize, LedgerError> {
    let stored = ctx.ledger.get_work_item::<Kept>(KIND, detail_type).await?;
    let before = stored.as_ref().map(|s| s.state.clone()).unwrap_or_default();
    if before.details.is_empty() && details.is_empty() {
        return Ok(0);
    }
    let all: Vec<serde_json::Value> = before.details.iter().cloned().chain(details).collect();
    let calls = all.len().div_ceil(10);
    let refused = super::announce_each(&ctx.aws.eventbridge, ctx.event_bus, detail_type, &all).await;
    let mut after = Kept { since: None, details: refused.into_iter().map(|i| all[i].clone()).collect() };
    if !after.details.is_empty() {
        after.since = Some(before.since.unwrap_or(ctx.now));
    }
    if after.since.is_some_and(|since| ctx.now - since >= KEEP) {
        tracing::warn!(
            detail_type,
            given_up = after.details.len(),
            "outcome events EventBridge refused for a week: given up"
        );
        after = Kept::default();
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
    if !after.details.is_empty() {
        tracing::warn!(
            detail_type,
            kept = after.details.len(),
            "outcome events EventBridge did not take: sent again next time"
        );
    }
    Ok(calls)
}

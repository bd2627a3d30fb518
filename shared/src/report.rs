//! What an invocation answers: its status, the policy it ran with, its API calls, and a bounded list of the items
//! it decided on with every item's result counted. Statuses and results are enums, written as the words the docs
//! use (`reconciled`, `busy`, `applied`, `not-acted`, …).

use serde::Serialize;
use std::collections::BTreeMap;

/// What an invocation did, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Nothing decided yet (never in an answer).
    #[default]
    Pending,
    /// Another invocation holds the function lease: this one yielded (a tick), the next tick does the work.
    Busy,
    /// Every resource in scope reconciled (pool-scaler, builder-scheduler).
    Reconciled,
    /// Everything in scope swept (remediator).
    Swept,
    /// Every open job chased (export-chaser).
    Chased,
    /// Every open rollout stepped (softwareset-roller).
    Stepped,
    /// A CloudTrail call noted in a resource's memory.
    Recorded,
    /// A CloudTrail call made by this deployment's own roles: nothing to note.
    Ours,
    /// An input that asks for nothing (a call of no interest, an alarm not mapped or not in ALARM).
    Ignored,
    /// A resource's cached tags marked stale (a tag-change call).
    TagsChanged,
    /// A burst of session events for a resource already reconciled this minute.
    Debounced,
    /// A command carried out: an export or a rollout started.
    Requested,
    /// A task someone else started, adopted and chased.
    Adopted,
    /// A command that would have acted, recorded in dry-run.
    DryRun,
    /// A command already carried out (a redelivery).
    Duplicate,
    /// The set is already rolling to those environments: the request is answered by that rollout.
    AlreadyRolling,
    Paused,
    Resumed,
    Aborted,
    /// The policy has no `rollouts` section.
    NoRollouts,
    /// The policy has no `remediation` section.
    NoRemediation,
    /// A tick fanned out: one `Shard Tick` per account × region the policy targets.
    Dispatched,
}

/// What became of one decided item, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionResult {
    /// The AWS call was made and succeeded.
    Applied,
    /// Dry-run: the call that would have been made, recorded.
    DryRun,
    /// Another delivery of the same business event already acted (or is acting).
    Duplicate,
    /// Not now: the resource changed state first, or a budget, cooldown or the circuit breaker holds it.
    Deferred,
    /// The call failed (after the SDK's retries).
    Failed,
    /// Decided to leave it as it is.
    NotActed,
    /// Left alone on purpose (a skip tag, an override, another owner, a safety rule).
    Skipped,
    /// Something noted in the ledger, no AWS call (a job's state, a memory).
    Recorded,
    /// A task someone else started, taken on.
    Adopted,
    /// A job that did not move.
    Unchanged,
    /// Nothing to do for it this time.
    None,
    /// Its episode is over (the resource recovered).
    Closed,
}

impl ActionResult {
    /// The word, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionResult::Applied => "applied",
            ActionResult::DryRun => "dry-run",
            ActionResult::Duplicate => "duplicate",
            ActionResult::Deferred => "deferred",
            ActionResult::Failed => "failed",
            ActionResult::NotActed => "not-acted",
            ActionResult::Skipped => "skipped",
            ActionResult::Recorded => "recorded",
            ActionResult::Adopted => "adopted",
            ActionResult::Unchanged => "unchanged",
            ActionResult::None => "none",
            ActionResult::Closed => "closed",
        }
    }

    /// Whether an AWS call was made for it (successful, refused or failed).
    pub fn called(self) -> bool {
        matches!(self, ActionResult::Applied | ActionResult::Failed | ActionResult::Deferred)
    }
}

impl std::fmt::Display for ActionResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one invocation did (every function's handler returns one; `A` is its per-item report).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report<A> {
    /// The EventBridge event id.
    pub correlation_id: String,
    pub status: Status,
    pub dry_run: bool,
    pub policy_version: u32,
    pub api_calls: u32,
    /// The items, at most [`LISTED_ITEMS`] of them: failures first, then what was done, then what was left
    /// alone (`not-acted`), each group in decision order.
    pub actions: Vec<A>,
    /// Every item's result counted, the listed and the omitted alike (`applied`: 653, `not-acted`: 347, …).
    pub results: BTreeMap<String, u32>,
    /// Items beyond [`LISTED_ITEMS`] counted in `results` but not listed; the audit trail holds every action.
    pub omitted: u32,
}

/// The most items a report lists. Lambda's response is at most 6 MB; a tick of a 10,000-resource estate would
/// otherwise answer with more than 2 MB, and one of 30,000 would fail.
pub const LISTED_ITEMS: usize = 1_000;

/// An item of a report: the word its result is counted under.
pub trait ReportItem {
    fn result(&self) -> &str;
}

impl<A> Report<A> {
    /// An empty report for the event `correlation_id`.
    pub fn new(correlation_id: impl Into<String>) -> Self {
        Self {
            correlation_id: correlation_id.into(),
            status: Status::Pending,
            dry_run: false,
            policy_version: 0,
            api_calls: 0,
            actions: Vec::new(),
            results: BTreeMap::new(),
            omitted: 0,
        }
    }
}

impl<A: ReportItem> Report<A> {
    /// Records every item: all are counted in `results`, at most [`LISTED_ITEMS`] are listed — failures
    /// first, then the ones acted on, then the ones left alone, each group in its original order.
    pub fn set_actions(&mut self, mut items: Vec<A>) {
        self.results.clear();
        for item in &items {
            *self.results.entry(item.result().to_owned()).or_insert(0) += 1;
        }
        if items.len() > LISTED_ITEMS {
            let rank = |item: &A| match item.result() {
                "failed" => 0,
                "not-acted" => 2,
                _ => 1,
            };
            items.sort_by_key(rank); // stable: decision order within a group
            self.omitted = u32::try_from(items.len() - LISTED_ITEMS).unwrap_or(u32::MAX);
            items.truncate(LISTED_ITEMS);
        } else {
            self.omitted = 0;
        }
        self.actions = items;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone, PartialEq, serde::Serialize)]
    struct Item(u32, &'static str);

    impl ReportItem for Item {
        fn result(&self) -> &str {
            self.1
        }
    }

    #[test]
    fn a_small_report_lists_every_item_in_order() {
        let items = vec![Item(0, "not-acted"), Item(1, "applied"), Item(2, "failed")];
        let mut report = Report::new("e");
        report.set_actions(items.clone());
        assert_eq!(report.actions, items);
        assert_eq!(report.omitted, 0);
        assert_eq!(
            report.results,
            BTreeMap::from([("applied".into(), 1), ("failed".into(), 1), ("not-acted".into(), 1)])
        );
    }

    #[test]
    fn a_large_report_lists_failures_then_actions_and_counts_everything() {
        let total = LISTED_ITEMS as u32 + 500;
        let items: Vec<Item> = (0..total)
            .map(|i| {
                Item(
                    i,
                    if i % 2 == 0 {
                        "not-acted"
                    } else if i % 301 == 0 {
                        "failed"
                    } else {
                        "applied"
                    },
                )
            })
            .collect();
        let failed = items.iter().filter(|i| i.1 == "failed").count();
        let applied = items.iter().filter(|i| i.1 == "applied").count();
        let mut report = Report::new("e");
        report.set_actions(items);
        assert_eq!(report.actions.len(), LISTED_ITEMS);
        assert_eq!(report.omitted, 500);
        assert_eq!(report.results.values().sum::<u32>(), total);
        assert_eq!(report.results["failed"] as usize, failed);
        assert!(report.actions[..failed].iter().all(|i| i.1 == "failed"));
        assert!(report.actions[failed..failed + applied].iter().all(|i| i.1 == "applied"));
        assert!(report.actions[failed + applied..].iter().all(|i| i.1 == "not-acted"));
        let applied_ids: Vec<u32> = report.actions.iter().filter(|i| i.1 == "applied").map(|i| i.0).collect();
        assert!(applied_ids.windows(2).all(|w| w[0] < w[1]), "decision order kept within a group");
        // Bounded: a report of 30,000 items serialises to no more than one of LISTED_ITEMS.
        let mut huge = Report::new("e");
        huge.set_actions((0..30_000).map(|i| Item(i, "applied")).collect());
        assert!(serde_json::to_vec(&huge).unwrap().len() < 64 * 1024);
    }
}

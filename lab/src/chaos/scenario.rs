//! One function, its sample events (`autopilot_lab::samples`), the estate they name and the policy they
//! share, run in process on the virtual clock with every request through a [`Gate`]: the unit every
//! reliability experiment repeats with duplicates, crashes, overlap, faults or a ledger outage, and compares
//! with an undisturbed baseline.
//!
//! Time is slotted so that runs stay comparable: sample `i` is delivered at `start + i × SLOT`, then the
//! function ticks [`SETTLE_TICKS`] times, [`SLOT`] apart. A redelivery after a failure happens [`RETRY_AFTER`]
//! into the slot (past the claim's in-progress expiry, as EventBridge's retry would be), so the baseline's
//! clock and the disturbed run's clock agree at every slot.

use super::ChaosError;
use super::gate::Gate;
use crate::samples::{self, Expect, SampleError};
use autopilot_functions::Function;
use autopilot_shared::error::{AutopilotError, ErrorClass};
use autopilot_shared::runtime::Deps;
use autopilot_sim::LocalEstate;
use autopilot_sim::estate::Estate;
use chrono::Duration;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The policy the samples are written for.
pub const POLICY: &str = samples::POLICY;

/// Time between two deliveries of the scenario.
pub const SLOT: Duration = Duration::minutes(5);
/// When a failed or crashed delivery is delivered again, into its slot.
pub const RETRY_AFTER: Duration = Duration::minutes(2);
/// Ticks after the last sample, for what the samples started to finish.
pub const SETTLE_TICKS: usize = 3;
/// The invocation's remaining time (the template's function timeout): the claim's in-progress expiry.
pub const REMAINING: std::time::Duration = std::time::Duration::from_secs(60);
/// How often one delivery is retried after a retryable error or a crash before the run gives up on it
/// (EventBridge retries for hours; a converging run needs far fewer).
pub const MAX_RETRIES: usize = 20;

/// How the copies of each delivery arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// One after another, each retried as EventBridge would before the next.
    OneByOne,
    /// All at once (the failed ones then retried as one).
    Together,
}

/// The deliveries of a scenario: how many copies of each event, arriving how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deliveries {
    pub copies: usize,
    pub arrival: Arrival,
}

impl Deliveries {
    /// Every event delivered once: the undisturbed scenario.
    pub const ONCE: Deliveries = Deliveries { copies: 1, arrival: Arrival::OneByOne };
}

/// Why a delivery ended for good (it goes to the dead-letter queue).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// An `InvalidInput` or `NonRetryable` error.
    #[error(transparent)]
    Refused(AutopilotError),
    /// Still crashing or failing retryably after [`MAX_RETRIES`] retries; the last error (`None`: a crash).
    #[error("still failing after {retries} retries: {}", last.as_ref().map_or("crashed".to_owned(), ToString::to_string))]
    GaveUp { retries: usize, last: Option<AutopilotError> },
}

/// What a run did to the world: the side effects that must not repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// Successful mutating calls to the EUC services, as `operation resource`, with how often each was made.
    pub mutations: BTreeMap<String, usize>,
    /// Outcome events published, by detail-type.
    pub events: BTreeMap<String, usize>,
    /// Audit records in the ledger.
    pub audit_records: usize,
}

impl Effects {
    pub fn mutation_count(&self) -> usize {
        self.mutations.values().sum()
    }

    /// What `self` has beyond `baseline` and lacks from it, one line per difference (empty: the same).
    pub fn differences(&self, baseline: &Effects) -> Vec<String> {
        let mut lines = Vec::new();
        let mut compare = |what: &str, mine: &BTreeMap<String, usize>, theirs: &BTreeMap<String, usize>| {
            let keys: std::collections::BTreeSet<&String> = mine.keys().chain(theirs.keys()).collect();
            for key in keys {
                let (a, b) = (mine.get(key).copied().unwrap_or(0), theirs.get(key).copied().unwrap_or(0));
                if a != b {
                    lines.push(format!("{what} {key}: {a} (baseline {b})"));
                }
            }
        };
        compare("call", &self.mutations, &baseline.mutations);
        compare("event", &self.events, &baseline.events);
        lines
    }
}

/// A function with its estate, ledger and gate, ready to deliver its samples.
pub struct Run {
    pub function: Function,
    pub local: LocalEstate,
    pub deps: Deps,
    pub gate: Arc<Gate>,
    start: chrono::DateTime<chrono::Utc>,
    /// Invocations that ended in an error, by class (`Retryable`, …), and crashes.
    pub errors: BTreeMap<String, usize>,
    /// Deliveries made (first deliveries, duplicates and retries).
    pub deliveries: usize,
    /// Stop the ledger before this slot for one delivery ([`Run::scenario`]).
    pub outage_at: Option<usize>,
    /// What that delivery did.
    pub outage: Option<OutageSeen>,
    /// Stop the ledger in the middle of the delivery that makes this request (counted from the start of the
    /// run), once, and start it again when that delivery has ended ([`Run::deliver_once`]).
    pub outage_after_request: Option<u64>,
}

/// One delivery made while the ledger was down.
#[derive(Debug, Clone, Default)]
pub struct OutageSeen {
    /// `Retryable`, another error class, `ok` or `crashed`.
    pub outcome: String,
    /// Mutating AWS calls made meanwhile (every one would lack its idempotency record).
    pub calls_during: usize,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run").field("function", &self.function).field("errors", &self.errors).finish()
    }
}

/// The sample events of `function` that must succeed, in delivery order.
pub fn sample_events(function: Function) -> Result<Vec<(&'static str, Value)>, SampleError> {
    samples::expectations(function.name())
        .iter()
        .filter(|(_, expect)| matches!(expect, Expect::Status(_)))
        .map(|(name, _)| samples::read(function.name(), name).map(|event| (*name, event)))
        .collect()
}

impl Run {
    /// A fresh estate (the samples' estate with `faults_yaml` merged into its `faults`) and ledger holding the
    /// samples' policy.
    pub async fn start(function: Function, faults_yaml: Option<&str>) -> Result<Run, ChaosError> {
        let mut estate = Estate::from_yaml(samples::ESTATE)?;
        if let Some(faults) = faults_yaml {
            estate.faults = serde_yaml_ng::from_str(faults).map_err(ChaosError::ParseFaults)?;
        }
        let local = LocalEstate::start(&estate, 1, 0).await?;
        local.ledger().put_policy(POLICY, local.simulator.now()).await?;
        samples::prepare(function.name(), &local);
        let gate = Gate::new();
        let deps = local.deps_through(Some(gate.http_client()), autopilot_sim::Identity::Function(function.name()));
        let start = local.simulator.now();
        Ok(Run {
            function,
            local,
            deps,
            gate,
            start,
            errors: BTreeMap::new(),
            deliveries: 0,
            outage_at: None,
            outage: None,
            outage_after_request: None,
        })
    }

    /// The start of slot `i`.
    pub fn slot(&self, i: usize) -> chrono::DateTime<chrono::Utc> {
        self.start + SLOT * i32::try_from(i).unwrap_or(i32::MAX)
    }

    /// Moves the virtual clock to `at` (never back).
    pub fn advance_to(&self, at: chrono::DateTime<chrono::Utc>) {
        if at > self.local.simulator.now() {
            self.local.simulator.advance_to(at);
        }
    }

    /// Delivers `event` once: `Some(result)`, or `None` when the gate crashed the invocation. When the delivery
    /// makes the request [`Run::outage_after_request`] names, the ledger is stopped right after it was served and
    /// started again when the delivery has ended.
    pub async fn deliver_once(&mut self, event: &Value) -> Option<Result<Value, AutopilotError>> {
        self.deliveries += 1;
        if let Some(k) = self.outage_after_request {
            let made = self.gate.requests();
            if k > made {
                self.gate.hold_after(Some(k - made));
            }
        }
        let mut seen = None;
        let outcome = {
            let mut work = std::pin::pin!(self.gate.run(self.function.invoke(&self.deps, event.clone(), REMAINING)));
            tokio::select! {
                biased;
                outcome = &mut work => outcome,
                () = self.gate.holding() => {
                    self.local.dynamo.stop().await;
                    let before = self.mutating_calls();
                    self.gate.release();
                    let outcome = work.await;
                    let calls_during = self.mutating_calls() - before;
                    if let Err(error) = self.local.dynamo.restart().await {
                        tracing::error!(%error, "could not restart the ledger");
                    }
                    seen = Some(OutageSeen { outcome: outcome_kind(&outcome).to_owned(), calls_during });
                    outcome
                }
            }
        };
        self.gate.hold_after(None);
        if seen.is_some() {
            self.outage = seen;
            self.outage_after_request = None;
        }
        let kind = outcome_kind(&outcome);
        if kind != "ok" {
            *self.errors.entry(kind.to_owned()).or_default() += 1;
        }
        outcome
    }

    /// Delivers `event` in slot `i` as EventBridge would: again [`RETRY_AFTER`] later (and then every
    /// minute) while it crashes or fails retryably, up to [`MAX_RETRIES`] times. An `InvalidInput` or
    /// `NonRetryable` error ends the delivery (it goes to the dead-letter queue). Returns the last outcome.
    pub async fn deliver(&mut self, i: usize, event: &Value) -> Result<Value, DeliveryError> {
        self.advance_to(self.slot(i));
        let mut retries = 0;
        loop {
            match self.deliver_once(event).await {
                Some(Ok(report)) => return Ok(report),
                Some(Err(error)) if error.class != ErrorClass::Retryable => return Err(DeliveryError::Refused(error)),
                outcome if retries >= MAX_RETRIES => {
                    return Err(DeliveryError::GaveUp { retries, last: outcome.and_then(Result::err) });
                }
                _ => {
                    retries += 1;
                    let wait = if retries == 1 { RETRY_AFTER } else { Duration::minutes(1) };
                    let at = self.local.simulator.now() + wait;
                    self.advance_to(at);
                }
            }
        }
    }

    /// Mutating AWS calls (successful or not) in the simulator's log.
    pub fn mutating_calls(&self) -> usize {
        let calls = self.local.simulator.calls();
        calls.iter().filter(|c| c.is_estate_mutation()).count()
    }

    /// When slot `i` is the outage's: stops the ledger, delivers `event` once, starts the ledger again.
    async fn outage(&mut self, i: usize, event: &Value) -> Result<(), ChaosError> {
        if self.outage_at != Some(i) {
            return Ok(());
        }
        self.advance_to(self.slot(i));
        self.local.dynamo.stop().await;
        let before = self.mutating_calls();
        let outcome = outcome_kind(&self.deliver_once(event).await).to_owned();
        let calls_during = self.mutating_calls() - before;
        self.local.dynamo.restart().await.map_err(ChaosError::RestartLedger)?;
        self.outage = Some(OutageSeen { outcome, calls_during });
        Ok(())
    }

    /// A schedule tick of this function at the current virtual time.
    pub fn tick(&self) -> Value {
        autopilot_sim::tick_event_in(
            &self.local.simulator.place(),
            &format!("euc-autopilot-{}", self.function.name()),
            self.local.simulator.now(),
        )
    }

    /// Delivers the samples, each as `deliveries` says in its slot (each copy retried as EventBridge would when
    /// it failed retryably), then the settling ticks. Returns the first failure, if any.
    pub async fn scenario(&mut self, deliveries: Deliveries) -> Result<(), ChaosError> {
        self.samples(deliveries).await?;
        self.settle(0, deliveries.copies).await
    }

    /// The samples part of [`Run::scenario`] (slots `0..n`).
    pub async fn samples(&mut self, deliveries: Deliveries) -> Result<(), ChaosError> {
        let Deliveries { copies, arrival } = deliveries;
        let events = sample_events(self.function)?;
        for (i, (name, event)) in events.iter().enumerate() {
            self.outage(i, event).await?;
            if arrival == Arrival::Together && copies > 1 {
                self.advance_to(self.slot(i));
                let results = {
                    let invocations = (0..copies).map(|_| self.function.invoke(&self.deps, event.clone(), REMAINING));
                    futures::future::join_all(invocations).await
                };
                self.deliveries += copies;
                let failed = results.iter().filter(|r| r.is_err()).count();
                if failed > 0 {
                    *self.errors.entry("concurrent-copy-failed".into()).or_default() += failed;
                }
                // The failed copies are retried (each on its own; one retry stands for them all, as the
                // idempotency key makes them one).
                if failed > 0 {
                    self.deliver(i, event).await.map_err(|source| delivery(*name, source))?;
                }
            } else {
                for _ in 0..copies.max(1) {
                    self.deliver(i, event).await.map_err(|source| delivery(*name, source))?;
                }
            }
        }
        Ok(())
    }

    /// The settling ticks of [`Run::scenario`] from tick `from` on (slots `n + from..`).
    pub async fn settle(&mut self, from: usize, copies: usize) -> Result<(), ChaosError> {
        let n = sample_events(self.function)?.len();
        for t in from..SETTLE_TICKS {
            self.advance_to(self.slot(n + t));
            let tick = self.tick();
            self.outage(n + t, &tick).await?;
            for _ in 0..copies.max(1) {
                self.deliver(n + t, &tick).await.map_err(|source| delivery(format!("settling tick {t}"), source))?;
            }
        }
        Ok(())
    }

    /// Slots of the scenario: the samples, then the settling ticks.
    pub fn slots(&self) -> Result<usize, SampleError> {
        Ok(sample_events(self.function)?.len() + SETTLE_TICKS)
    }

    /// The event of slot `j` (a sample, or a settling tick at the slot's time), with its name.
    pub fn slot_event(&self, j: usize) -> Result<(String, Value), SampleError> {
        let events = sample_events(self.function)?;
        Ok(match events.into_iter().nth(j) {
            Some((name, event)) => (name.to_owned(), event),
            None => (
                format!("settling tick {}", (j + SETTLE_TICKS).saturating_sub(self.slots()?)),
                autopilot_sim::tick_event_in(
                    &self.local.simulator.place(),
                    &format!("euc-autopilot-{}", self.function.name()),
                    self.slot(j),
                ),
            ),
        })
    }

    /// Delivers slots `range` of the scenario once each, in order (EventBridge's retries included); returns
    /// the mutating AWS calls each slot made.
    pub async fn deliver_slots(&mut self, range: std::ops::Range<usize>) -> Result<Vec<usize>, ChaosError> {
        let mut made = Vec::new();
        for j in range {
            self.advance_to(self.slot(j));
            let (name, event) = self.slot_event(j)?;
            let before = self.mutating_calls();
            self.outage(j, &event).await?;
            self.deliver(j, &event).await.map_err(|source| delivery(name, source))?;
            made.push(self.mutating_calls() - before);
        }
        Ok(made)
    }

    /// The side effects so far, read from the simulator's call log, its captured events and the ledger.
    pub async fn effects(&self) -> Result<Effects, ChaosError> {
        let mut effects = Effects::default();
        for call in self.local.simulator.calls() {
            if call.ok() && call.is_estate_mutation() {
                let key = format!("{} {}", call.operation, call.resource.unwrap_or_default());
                *effects.mutations.entry(key).or_default() += 1;
            }
        }
        self.local.simulator.with_world(|world| {
            for event in &world.events {
                *effects.events.entry(event.detail_type.clone()).or_default() += 1;
            }
        });
        let items = self.ledger_items().await?;
        effects.audit_records = items.iter().filter(|item| pk(item).starts_with("AUDIT#")).count();
        Ok(effects)
    }

    /// Idempotency records still INPROGRESS whose in-progress expiry has passed on the virtual clock.
    pub async fn stale_claims(&self) -> Result<usize, ChaosError> {
        let now = self.local.simulator.now();
        let items = self.ledger_items().await?;
        Ok(items.iter().filter(|item| autopilot_shared::ledger::idempotency::is_stale_claim(item, now)).count())
    }

    /// The ledger's versioned items (resource state, work items), `pk/sk → version`: what a fenced write
    /// changes.
    pub async fn versions(&self) -> Result<BTreeMap<String, String>, ChaosError> {
        let items = self.ledger_items().await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let version = item.get("version")?.as_n().ok()?;
                let sk = item.get(autopilot_shared::ledger::keys::SK)?.as_s().ok()?;
                Some((format!("{}/{sk}", pk(item)), version.clone()))
            })
            .collect())
    }

    /// The audit records in the ledger, oldest first (by their table key: time, resource, action, stage).
    pub async fn audit_records(&self) -> Result<Vec<autopilot_shared::ledger::Item>, ChaosError> {
        let mut records: Vec<_> =
            self.ledger_items().await?.into_iter().filter(|item| pk(item).starts_with("AUDIT#")).collect();
        let sk = |item: &autopilot_shared::ledger::Item| {
            item.get(autopilot_shared::ledger::keys::SK).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
        };
        records.sort_by_key(sk);
        Ok(records)
    }

    /// Every ledger item (outside the gate: bookkeeping of the experiment, not of the function).
    async fn ledger_items(&self) -> Result<Vec<autopilot_shared::ledger::Item>, ChaosError> {
        self.local
            .clients()
            .dynamodb
            .scan()
            .table_name(autopilot_sim::dynamo::DEFAULT_TABLE)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|error| ChaosError::ScanLedger(Box::new(error)))
    }
}

/// A delivery of the scenario, named, that ended for good.
fn delivery(name: impl Into<String>, source: DeliveryError) -> ChaosError {
    ChaosError::Delivery { name: name.into(), source }
}

/// `ok`, `crashed`, or the error class of one delivery's outcome.
fn outcome_kind(outcome: &Option<Result<Value, AutopilotError>>) -> &'static str {
    match outcome {
        None => "crashed",
        Some(Ok(_)) => "ok",
        Some(Err(error)) => error.class.as_str(),
    }
}

fn pk(item: &autopilot_shared::ledger::Item) -> &str {
    match item.get(autopilot_shared::ledger::keys::PK) {
        Some(aws_sdk_dynamodb::types::AttributeValue::S(pk)) => pk,
        _ => "",
    }
}

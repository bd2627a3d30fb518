//! The reconcile of a listed population (the pool-scaler's pools and fleets, the builder-scheduler's builders),
//! written once and pipelined: the population is listed first; every listed resource's memory is read (one
//! batched pass); then the observations stream in as their tags become known, each batch is decided at once
//! (pure) and handed to the act step, which acts while the rest are still read — so the reads and the (slower)
//! mutations overlap. A failed tag read stops the stream: what was already decided is carried out, then the
//! reconcile fails.

use crate::cpu::{self, Step};
use crate::error::{AutopilotError, ObserveError};
use crate::ledger::Ledger;
use crate::ledger::state::Versioned;
use crate::resource::ResourceRef;
use crate::runtime::classified;
use futures::stream::LocalBoxStream;
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// Every resource's memory as stored (with its version), by resource key.
pub type Stored<M> = BTreeMap<String, Versioned<M>>;

/// Reads the memories of `resources`, then decides each batch of `observed` with `decide` (given the memories by
/// key; it logs what it decided) as it arrives, and hands the decisions to `act` as a stream (with the stored memories). Returns what
/// `act` reports.
pub async fn streamed<O, M, D, R>(
    ledger: &Ledger,
    resources: &[ResourceRef],
    observed: impl Stream<Item = Result<Vec<O>, ObserveError>>,
    decide: impl Fn(&[O], &BTreeMap<String, M>) -> Vec<D>,
    act: impl AsyncFnOnce(LocalBoxStream<'_, D>, &Stored<M>) -> Result<Vec<R>, AutopilotError>,
) -> Result<Vec<R>, AutopilotError>
where
    M: DeserializeOwned + Serialize + Clone,
{
    let stored: Stored<M> = ledger.get_states(resources).await.map_err(classified)?;
    let memories: BTreeMap<String, M> = stored.iter().map(|(k, v)| (k.clone(), v.state.clone())).collect();
    let mut failure = None;
    let decisions = observed
        .scan(&mut failure, |failure, batch| std::future::ready(batch.map_err(|error| **failure = Some(error)).ok()))
        .flat_map(|batch| futures::stream::iter(cpu::measure(Step::Decide, || decide(&batch, &memories))));
    let reports = act(decisions.boxed_local(), &stored).await?;
    if let Some(error) = failure {
        return Err(classified(error));
    }
    Ok(reports)
}

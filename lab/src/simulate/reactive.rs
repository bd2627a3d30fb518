//! *pool-scaler, reactive*: what the predictor adds, side by side. The same policy with every capacity rule's
//! `predictive` block removed, run by the pool-scaler alone (its ticks, the shard ticks they publish, and the
//! users' session events; no other function changes capacity) on the same estate, seed and demand. Injected
//! events and people's calls are not replayed. Measured over the same period as the run.
//!
//! It shares nothing with the run but its inputs, so it runs beside it on a thread of its own ([`spawn`]): on a
//! machine with two cores the demo takes as long as its main run.

use super::figures::Measured;
use super::{Figures, INVOCATION_TIME, Options, SimulateError};
use autopilot_functions::Function;
use autopilot_shared::events::SHARD_TICK_DETAIL_TYPE;
use autopilot_sim::LocalEstate;
use autopilot_sim::estate::Estate;
use chrono::Duration;
use serde_yaml_ng::Value;

/// The reactive run, started on a thread of its own with its own runtime; `None` when no capacity rule is
/// predictive (the run itself is reactive). [`Twin::figures`] waits for it.
pub(super) fn spawn(estate: &Estate, policy_text: &str, options: &Options) -> Result<Option<Twin>, SimulateError> {
    let Some(reactive) = without_predictive(policy_text)? else { return Ok(None) };
    let (estate, options) = (estate.clone(), options.clone());
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(SimulateError::TwinRuntime)?;
    let thread = std::thread::Builder::new()
        .name("reactive-twin".into())
        .spawn(move || runtime.block_on(reactive_baseline(&estate, &reactive, &options)))
        .map_err(SimulateError::TwinRuntime)?;
    Ok(Some(Twin(thread)))
}

/// The reactive run, under way.
pub(super) struct Twin(std::thread::JoinHandle<Result<Figures, SimulateError>>);

impl Twin {
    /// Its figures, once it has finished.
    pub(super) fn figures(self) -> Result<Figures, SimulateError> {
        self.0.join().map_err(|_| SimulateError::TwinPanicked)?
    }
}

/// The pool-scaler alone under `reactive` (a policy document without predictive blocks).
async fn reactive_baseline(estate: &Estate, reactive: &str, options: &Options) -> Result<Figures, SimulateError> {
    let local = LocalEstate::start(estate, options.seed, 0).await?;
    local.ledger().put_policy(reactive, options.from).await?;
    let crew = crate::crew(&local);
    let place = local.simulator.place();
    local.simulator.with_world_mut(|w| w.session_events = Some(Vec::new()));
    let invoke = async |event: serde_json::Value| {
        if let Err(error) = crew.invoke(Function::PoolScaler, event, INVOCATION_TIME).await {
            tracing::warn!(%error, "reactive baseline: invocation failed");
        }
    };
    let mut measured = Measured::from(options.measure_from());
    let (mut now, mut minute) = (options.from, options.from);
    while now < options.to {
        while minute <= now {
            local.simulator.advance_to(minute);
            let sessions = local.simulator.with_world_mut(|w| w.session_events.as_mut().map(std::mem::take));
            for event in sessions.unwrap_or_default().into_iter().filter(|e| Function::PoolScaler.routes(e)) {
                invoke(event).await;
            }
            minute += Duration::minutes(1);
        }
        measured.reach(now, &local.simulator);
        let published = local.bus_event_count();
        invoke(autopilot_sim::tick_event_in(&place, &format!("euc-autopilot-{}", Function::PoolScaler.name()), now))
            .await;
        for shard_tick in local.bus_events_since(published, SHARD_TICK_DETAIL_TYPE) {
            invoke(shard_tick).await;
        }
        now += options.tick;
    }
    local.simulator.advance_to(options.to);
    Ok(measured.finish(&local.simulator).0)
}

/// The policy document without its capacity rules' `predictive` blocks; `None` when none has one.
fn without_predictive(policy_text: &str) -> Result<Option<String>, SimulateError> {
    let mut document: Value = serde_yaml_ng::from_str(policy_text).map_err(SimulateError::ReactivePolicy)?;
    let mut removed = false;
    if let Some(rules) = document.get_mut("capacity").and_then(Value::as_sequence_mut) {
        for rule in rules.iter_mut().filter_map(Value::as_mapping_mut) {
            removed |= rule.remove("predictive").is_some();
        }
    }
    if !removed {
        return Ok(None);
    }
    serde_yaml_ng::to_string(&document).map(Some).map_err(SimulateError::ReactivePolicy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reactive_policy_is_the_same_without_predictive_blocks() {
        let policy = "version: 1\ncapacity:\n  - select: { names: [a] }\n    in_hours: { min: 1, max: 9 }\n    predictive: {}\n  - select: { names: [b] }\n    in_hours: { min: 2, max: 9 }\n";
        let reactive = without_predictive(policy).unwrap().unwrap();
        assert!(!reactive.contains("predictive"), "{reactive}");
        let parsed = autopilot_shared::policy::Policy::from_yaml(&reactive).unwrap();
        assert_eq!(parsed.capacity.len(), 2);
        assert!(parsed.capacity.iter().all(|rule| rule.predictive.is_none()));
        assert_eq!(without_predictive(&reactive).unwrap(), None, "nothing predictive: no second run");
    }
}

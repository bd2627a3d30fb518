//! The input files of a simulation (estate, policy, injected events), read and checked before anything runs:
//! errors name the file, the path inside it and the reason.

use super::{EventLineError, Options, SimulateError};
use crate::people::PersonCall;
use autopilot_shared::policy::Policy;
use autopilot_sim::Simulator;
use autopilot_sim::estate::Estate;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::path::Path;

fn read(path: &Path) -> Result<String, SimulateError> {
    std::fs::read_to_string(path).map_err(|source| SimulateError::Read { path: path.to_path_buf(), source })
}

/// What happens at an instant of a simulation besides the ticks.
#[derive(Debug, Clone, PartialEq)]
pub enum Injection {
    /// An EventBridge event delivered to every function whose rules match it.
    Event(Value),
    /// A person's API call: applied to the estate, then delivered as the CloudTrail event AWS sends for it.
    Call(PersonCall),
}

/// Injections in delivery order: when, and what.
pub type Injected = Vec<(DateTime<Utc>, Injection)>;

/// One injection per line: `{"at": "<RFC 3339>", "event": {<EventBridge envelope>}}` or `{"at": "<RFC 3339>",
/// "call": {<a person's API call>}}`.
fn read_events(path: &Path) -> Result<Injected, SimulateError> {
    let mut events = Vec::new();
    for (number, line) in read(path)?.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let injected = injected_event(line).map_err(|source| SimulateError::Events {
            path: path.to_path_buf(),
            line: number + 1,
            source,
        })?;
        events.push(injected);
    }
    events.sort_by_key(|(at, _)| *at);
    Ok(events)
}

/// One line of an injected-events file: when, and the event (which must parse) or the call.
fn injected_event(line: &str) -> Result<(DateTime<Utc>, Injection), EventLineError> {
    let value: Value = serde_json::from_str(line).map_err(EventLineError::NotJson)?;
    let at = value
        .get("at")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .ok_or(EventLineError::At)?
        .with_timezone(&Utc);
    if let Some(call) = value.get("call") {
        let call: PersonCall = serde_json::from_value(call.clone()).map_err(|e| EventLineError::Call(e.to_string()))?;
        if !["workspaces", "appstream"].contains(&call.service.as_str()) {
            return Err(EventLineError::Call(format!(
                "service {:?}: a person's calls are made to workspaces or appstream",
                call.service
            )));
        }
        return Ok((at, Injection::Call(call)));
    }
    let event = value.get("event").cloned().ok_or(EventLineError::NoEvent)?;
    autopilot_shared::events::parse(event.clone())?;
    Ok((at, Injection::Event(event)))
}

/// Loads and checks every input file; errors name the file, the path inside it and the reason.
pub fn load(options: &Options) -> Result<(Estate, String, Injected), SimulateError> {
    let in_estate = |source| SimulateError::Estate { path: options.estate.clone(), source };
    let mut estate = Estate::from_yaml(&read(&options.estate)?).map_err(in_estate)?;
    let policy = read(&options.policy)?;
    Policy::from_yaml(&policy).map_err(|source| SimulateError::Policy { path: options.policy.clone(), source })?;
    let events = match &options.events {
        Some(path) => read_events(path)?,
        None => Vec::new(),
    };
    if options.to <= options.from {
        return Err(SimulateError::Period { from: options.from, to: options.to });
    }
    if options.tick < Duration::minutes(1) {
        return Err(SimulateError::Tick);
    }
    estate.start = options.from.to_rfc3339();
    Simulator::new(&estate, options.seed)
        .map_err(|source| SimulateError::World { path: options.estate.clone(), source })?;
    crate::people::builder_activity(&estate, options.from, options.to)
        .map_err(|source| SimulateError::People { path: options.estate.clone(), source })?;
    Ok((estate, policy, events))
}

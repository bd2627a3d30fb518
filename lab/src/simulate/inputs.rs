//! The input files of a simulation (estate, policy, injected events), read and checked before anything runs:
//! errors name the file, the path inside it and the reason.

use super::{EventLineError, Options, SimulateError};
use autopilot_shared::policy::Policy;
use autopilot_sim::Simulator;
use autopilot_sim::estate::Estate;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::path::Path;

fn read(path: &Path) -> Result<String, SimulateError> {
    std::fs::read_to_string(path).map_err(|source| SimulateError::Read { path: path.to_path_buf(), source })
}

/// Injected events in delivery order: when, and the EventBridge envelope.
pub type Injected = Vec<(DateTime<Utc>, Value)>;

/// An injected event: `{"at": "<RFC 3339>", "event": {<EventBridge envelope>}}` per line.
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

/// One line of an injected-events file: when, and the event (which must parse).
fn injected_event(line: &str) -> Result<(DateTime<Utc>, Value), EventLineError> {
    let value: Value = serde_json::from_str(line).map_err(EventLineError::NotJson)?;
    let at = value
        .get("at")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .ok_or(EventLineError::At)?
        .with_timezone(&Utc);
    let event = value.get("event").cloned().ok_or(EventLineError::NoEvent)?;
    autopilot_shared::events::parse(event.clone())?;
    Ok((at, event))
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

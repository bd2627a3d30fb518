//! Amazon EventBridge `PutEvents` (awsJson1_1, `AWSEvents.PutEvents`): outcome events are captured so tests and
//! the demo can read what the functions announced.

use crate::error::{ApiError, ApiResult};
use crate::world::{CapturedEvent, World};
use serde_json::{Value, json};

pub fn handle(world: &mut World, operation: &str, input: &Value) -> ApiResult {
    if operation != "PutEvents" {
        return Err(ApiError::invalid(
            "UnknownOperationException",
            format!("the simulator does not implement EventBridge {operation}"),
        ));
    }
    let entries = input.get("Entries").and_then(Value::as_array).cloned().unwrap_or_default();
    if entries.is_empty() || entries.len() > 10 {
        return Err(ApiError::invalid(
            "ValidationException",
            format!("Entries must have between 1 and 10 items, it has {}", entries.len()),
        ));
    }
    let mut results = Vec::new();
    let mut failed = 0;
    for entry in entries {
        let source = entry.get("Source").and_then(Value::as_str);
        let detail_type = entry.get("DetailType").and_then(Value::as_str);
        let detail = entry.get("Detail").and_then(Value::as_str).map(serde_json::from_str::<Value>);
        match (source, detail_type, detail) {
            (Some(source), Some(detail_type), Some(Ok(detail))) => {
                let event_id = {
                    let hex = world.id_rng.hex(32);
                    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
                };
                world.events.push(CapturedEvent {
                    at: world.now,
                    event_id: event_id.clone(),
                    source: source.into(),
                    detail_type: detail_type.into(),
                    detail,
                    event_bus_name: entry.get("EventBusName").and_then(Value::as_str).map(str::to_owned),
                });
                results.push(json!({ "EventId": event_id }));
            }
            _ => {
                failed += 1;
                results.push(json!({ "ErrorCode": "MalformedDetail", "ErrorMessage": "Source, DetailType and a JSON Detail are required." }));
            }
        }
    }
    Ok(json!({ "FailedEntryCount": failed, "Entries": results }))
}

//! Operation handlers of the simulated services. Each takes the decoded request body (a JSON value, whatever
//! the wire protocol) and the world, and returns the response body or a service error. Input validation
//! follows the service documentation: required members, batch limits and state guards.

pub mod appstream;
pub mod autoscaling;
pub mod eventbridge;
pub mod organizations;
pub mod thinclient;
pub mod workspaces;

use crate::error::ApiError;
use serde_json::Value;

/// The validation error code of each service.
#[derive(Debug, Clone, Copy)]
pub struct Codes {
    pub validation: &'static str,
    pub invalid_state: &'static str,
}

pub(crate) fn required_str<'a>(input: &'a Value, member: &str, codes: Codes) -> Result<&'a str, ApiError> {
    match input.get(member).and_then(Value::as_str) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(ApiError::invalid(
            codes.validation,
            format!(
                "1 validation error detected: Value at '{member}' failed to satisfy constraint: Member must not be null"
            ),
        )),
    }
}

pub(crate) fn optional_str<'a>(input: &'a Value, member: &str) -> Option<&'a str> {
    input.get(member).and_then(Value::as_str)
}

pub(crate) fn string_list(input: &Value, member: &str) -> Option<Vec<String>> {
    input
        .get(member)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
}

/// Opaque pagination: the token is the offset of the next item, prefixed so it does not look like a number.
pub(crate) fn page<T: Clone>(
    items: &[T],
    token: Option<&str>,
    limit: usize,
    codes: Codes,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let start = match token {
        None | Some("") => 0,
        Some(token) => token
            .strip_prefix("sim-page-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| {
                ApiError::invalid(codes.validation, format!("the pagination token {token:?} is not valid"))
            })?,
    };
    let end = (start + limit.max(1)).min(items.len());
    let next = (end < items.len()).then(|| format!("sim-page-{end}"));
    Ok((items[start..end].to_vec(), next))
}

/// A requested page size: `default` when absent, an error outside 1..=max.
pub(crate) fn limit(input: &Value, member: &str, default: usize, max: usize, codes: Codes) -> Result<usize, ApiError> {
    match input.get(member).and_then(Value::as_u64) {
        None => Ok(default),
        Some(n) if (1..=max as u64).contains(&n) => Ok(n as usize),
        Some(n) => Err(ApiError::invalid(codes.validation, format!("{member} {n} is out of range (1 to {max})"))),
    }
}

pub(crate) fn epoch(t: chrono::DateTime<chrono::Utc>) -> Value {
    Value::from(t.timestamp_millis() as f64 / 1000.0)
}

/// The `TagKeys` of an untag request (required, at least one).
pub(crate) fn tag_keys(input: &Value, codes: Codes) -> Result<Vec<String>, ApiError> {
    string_list(input, "TagKeys")
        .filter(|keys| !keys.is_empty())
        .ok_or_else(|| ApiError::invalid(codes.validation, "TagKeys must name at least one key"))
}

/// Removes `keys` from a resource's tags; keys it does not carry are ignored.
pub(crate) fn remove_tags(
    tags: &mut std::collections::BTreeMap<String, String>,
    keys: Vec<String>,
) -> Result<Value, ApiError> {
    for key in keys {
        tags.remove(&key);
    }
    Ok(serde_json::json!({}))
}

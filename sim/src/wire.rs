//! Wire encodings shared by the protocols: JSON bodies are `serde_json::Value`; Smithy RPC v2 CBOR bodies are
//! converted to and from the same values. CBOR timestamps are tag 1 (epoch seconds), which JSON cannot mark,
//! so the encoder tags the members that the service models declare as timestamps ([`TIMESTAMP_MEMBERS`]).

use ciborium::value::{Integer, Value as Cbor};
use serde_json::{Map, Number, Value};

/// Member names that are timestamps in the AppStream model (taken from the SDK's schemas).
pub const TIMESTAMP_MEMBERS: &[&str] = &[
    "CreatedDate",
    "CreatedTime",
    "ErrorTimestamp",
    "Expires",
    "LastGeneratedReportDate",
    "LastModifiedTime",
    "MaxExpirationTime",
    "PublicBaseImageReleasedDate",
    "StartTime",
    "SubscriptionFirstUsedDate",
    "SubscriptionLastUsedDate",
];

/// A URI path segment or query value with its `%XX` escapes decoded (restJson1 puts ARNs in paths); an escape
/// that is not two hex digits is kept as it is.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request body that is not CBOR.
#[derive(Debug, thiserror::Error)]
#[error("body is not CBOR: {0}")]
pub struct NotCbor(#[from] ciborium::de::Error<std::io::Error>);

/// Decodes a CBOR request body. An empty body is an empty object.
pub fn cbor_to_json(bytes: &[u8]) -> Result<Value, NotCbor> {
    if bytes.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let value: Cbor = ciborium::de::from_reader(bytes)?;
    Ok(from_cbor(value))
}

fn from_cbor(value: Cbor) -> Value {
    match value {
        Cbor::Null => Value::Null,
        Cbor::Bool(b) => Value::Bool(b),
        Cbor::Integer(i) => {
            let i: i128 = i.into();
            i64::try_from(i).map(Value::from).unwrap_or_else(|_| Value::from(i as f64))
        }
        Cbor::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        Cbor::Text(t) => Value::String(t),
        Cbor::Bytes(b) => Value::String(String::from_utf8_lossy(&b).into_owned()),
        Cbor::Array(items) => Value::Array(items.into_iter().map(from_cbor).collect()),
        Cbor::Map(entries) => Value::Object(
            entries
                .into_iter()
                .filter_map(|(k, v)| match k {
                    Cbor::Text(key) => Some((key, from_cbor(v))),
                    _ => None,
                })
                .collect(),
        ),
        Cbor::Tag(_, inner) => from_cbor(*inner),
        _ => Value::Null,
    }
}

/// Encodes a response body as CBOR, tagging timestamp members.
pub fn json_to_cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = ciborium::ser::into_writer(&to_cbor(value, false), &mut out);
    out
}

fn number(n: &Number) -> Cbor {
    if let Some(i) = n.as_i64() {
        Cbor::Integer(Integer::from(i))
    } else if let Some(u) = n.as_u64() {
        Cbor::Integer(Integer::from(u))
    } else {
        Cbor::Float(n.as_f64().unwrap_or_default())
    }
}

fn to_cbor(value: &Value, timestamp: bool) -> Cbor {
    match value {
        Value::Null => Cbor::Null,
        Value::Bool(b) => Cbor::Bool(*b),
        Value::Number(n) if timestamp => Cbor::Tag(1, Box::new(Cbor::Float(n.as_f64().unwrap_or_default()))),
        Value::Number(n) => number(n),
        Value::String(s) => Cbor::Text(s.clone()),
        Value::Array(items) => Cbor::Array(items.iter().map(|v| to_cbor(v, false)).collect()),
        Value::Object(map) => Cbor::Map(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (Cbor::Text(k.clone()), to_cbor(v, TIMESTAMP_MEMBERS.contains(&k.as_str()))))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_are_decoded_and_broken_ones_kept() {
        assert_eq!(percent_decode("arn%3Aaws%3Athinclient%2Fenv"), "arn:aws:thinclient/env");
        assert_eq!(percent_decode("50%"), "50%");
        assert_eq!(percent_decode("%é1"), "%é1");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn round_trip_keeps_values_and_tags_timestamps() {
        let value = serde_json::json!({ "Name": "f", "CreatedTime": 1_764_000_000.5, "ComputeCapacity": { "DesiredInstances": 3 }, "Names": ["a"] });
        let bytes = json_to_cbor(&value);
        let decoded: Cbor = ciborium::de::from_reader(bytes.as_slice()).unwrap_or(Cbor::Null);
        let tagged = decoded
            .as_map()
            .into_iter()
            .flatten()
            .any(|(k, v)| k.as_text() == Some("CreatedTime") && matches!(v, Cbor::Tag(1, _)));
        assert!(tagged, "{decoded:?}");
        assert_eq!(cbor_to_json(&bytes).ok(), Some(value));
        assert_eq!(cbor_to_json(&[]).ok(), Some(serde_json::json!({})));
        assert!(cbor_to_json(&[0xff, 0x00]).is_err());
    }
}

//! Strict shapes: a JSON value read as a Rust type with no positional guessing. serde's derived structs accept
//! a JSON array as their fields in order (`["sales-fleet"]` would read as `{"name": "sales-fleet"}`), and
//! `serde_json::Value` lets them; an event is authored by AWS or by us with objects where a struct is, so
//! [`Strict`] refuses anything but an object for a struct, at every depth, and otherwise reads the value as
//! `serde_json` would (the same error messages, for `serde_path_to_error` to give their path).

use serde::de::value::{Error, MapAccessDeserializer, MapDeserializer, SeqDeserializer};
use serde::de::{self, Deserializer, Error as _, IntoDeserializer, Unexpected, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::Value;

/// A borrowed JSON value as a strict deserializer.
#[derive(Debug, Clone, Copy)]
pub struct Strict<'a>(pub &'a Value);

/// Reads `value` as a `T` with strict shapes; the error carries the path of the offending field.
pub fn deserialize<'a, T: de::Deserialize<'a>>(value: &'a Value) -> Result<T, serde_path_to_error::Error<Error>> {
    serde_path_to_error::deserialize(Strict(value))
}

fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Other("null"),
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Unexpected::Unsigned(u),
            (None, Some(i)) => Unexpected::Signed(i),
            _ => Unexpected::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

impl<'de> Strict<'de> {
    /// Reads the value when it is of the kind the visitor asked for; otherwise the error `serde_json` gives.
    fn expect<V: Visitor<'de>>(self, kind_matches: bool, visitor: V) -> Result<V::Value, Error> {
        if kind_matches {
            self.deserialize_any(visitor)
        } else {
            Err(Error::invalid_type(unexpected(self.0), &visitor))
        }
    }

    fn number<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.expect(self.0.is_number(), visitor)
    }
}

impl<'de> IntoDeserializer<'de, Error> for Strict<'de> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Deserializer<'de> for Strict<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => visitor.visit_u64(u),
                (None, Some(i), _) => visitor.visit_i64(i),
                (None, None, Some(f)) => visitor.visit_f64(f),
                (None, None, None) => Err(Error::custom(format!("{n} is not a number this reader supports"))),
            },
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => {
                let mut seq = SeqDeserializer::new(items.iter().map(Strict));
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            Value::Object(map) => {
                let mut access = MapDeserializer::new(map.iter().map(|(k, v)| (k.as_str(), Strict(v))));
                let value = visitor.visit_map(&mut access)?;
                access.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(_) => self.deserialize_any(visitor),
            other => Err(Error::invalid_type(unexpected(other), &"an object")),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(_) => self.deserialize_any(visitor),
            other => Err(Error::invalid_type(unexpected(other), &"a map")),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            Value::Object(map) if map.len() == 1 => visitor.visit_enum(MapAccessDeserializer::new(
                MapDeserializer::new(map.iter().map(|(k, v)| (k.as_str(), Strict(v)))),
            )),
            other => Err(Error::invalid_type(unexpected(other), &"a string or an object with one key")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! { char bytes byte_buf unit_struct tuple tuple_struct ignored_any }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.expect(matches!(self.0, Value::Bool(_)), visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.expect(self.0.is_string(), visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.expect(self.0.is_null(), visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.expect(self.0.is_array(), visitor)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.number(visitor)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.number(visitor)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.number(visitor)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.number(visitor)
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.number(visitor)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.number(visitor)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.number(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.number(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.number(visitor)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.number(visitor)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.number(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.number(visitor)
    }
}

/// Parses JSON text, refusing an object with the same key twice (which `serde_json` would read as the last one):
/// the answers and events the functions write are checked with it, as a strict consumer would read them.
pub fn parse_unique_keys(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str::<UniqueKeys>(text).map(|u| u.0)
}

struct UniqueKeys(Value);

impl<'de> de::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor).map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueKeys(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            let UniqueKeys(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Fleet {
        name: String,
        #[serde(default)]
        compute_capacity: Option<Capacity>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Capacity {
        desired_instances: Option<i64>,
    }

    #[test]
    fn objects_read_as_serde_json_reads_them() {
        let value = serde_json::json!({ "name": "sales", "computeCapacity": { "desiredInstances": 12 }, "x": [1] });
        let fleet: Fleet = deserialize(&value).unwrap();
        assert_eq!(
            fleet,
            Fleet { name: "sales".into(), compute_capacity: Some(Capacity { desired_instances: Some(12) }) }
        );
        let plain: Fleet = serde_json::from_value(value).unwrap();
        assert_eq!(plain, fleet);
    }

    #[test]
    fn an_array_or_a_scalar_where_a_struct_is_is_refused_with_its_path() {
        // serde_json would read these positionally: the bug this reader exists for.
        let positional = serde_json::json!(["sales-fleet"]);
        assert!(serde_json::from_value::<Fleet>(positional.clone()).is_ok());
        let error = deserialize::<Fleet>(&positional).unwrap_err();
        assert_eq!(error.inner().to_string(), "invalid type: sequence, expected an object");
        let nested = serde_json::json!({ "name": "sales", "computeCapacity": [12] });
        let error = deserialize::<Fleet>(&nested).unwrap_err();
        assert_eq!(error.path().to_string(), "computeCapacity");
        for scalar in [serde_json::json!("sales"), serde_json::json!(7), serde_json::json!(true)] {
            assert!(deserialize::<Fleet>(&scalar).is_err(), "{scalar}");
        }
    }

    #[test]
    fn a_key_written_twice_is_refused() {
        assert_eq!(
            parse_unique_keys(r#"{"a":[1,{"b":null}],"c":"d"}"#).unwrap(),
            serde_json::json!({"a":[1,{"b":null}],"c":"d"})
        );
        let error = parse_unique_keys(r#"{"outcome":{"kind":"act","kind":"set-desired"}}"#).unwrap_err();
        assert!(error.to_string().contains("duplicate key `kind`"), "{error}");
    }

    #[test]
    fn errors_read_as_serde_json_writes_them() {
        for value in [
            serde_json::json!({ "name": 7 }),
            serde_json::json!({ "name": null }),
            serde_json::json!({ "name": true }),
            serde_json::json!({ "name": "a", "computeCapacity": { "desiredInstances": "many" } }),
            serde_json::json!({ "name": "a", "computeCapacity": { "desiredInstances": 1.5 } }),
            serde_json::json!({ "name": "a", "computeCapacity": { "desiredInstances": -3, "x": null } }),
            serde_json::json!({}),
        ] {
            let strict = deserialize::<Fleet>(&value).map_err(|e| e.inner().to_string());
            let plain = serde_json::from_value::<Fleet>(value.clone()).map_err(|e| e.to_string());
            assert_eq!(strict, plain, "{value}");
        }
    }
}

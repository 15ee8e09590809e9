//! Typed configs from untyped values, in the YAML dialect every binary
//! speaks: a field that wants a string takes a number or a boolean as its
//! text (`namespace: 2024`, `role: true`), at any depth, as serde-saphyr
//! does for a plain scalar in a single-store binary's `--config`.
//!
//! `secret-backend` holds each backend's config as a `serde_json::Value`
//! (read by [`crate::yaml`], or sent by the caller) and deserializes it into
//! the store's own config type with [`from_value`]; without this the same
//! YAML would be accepted by `secret-backend-vault` and refused by
//! `secret-backend`. Everything else is `serde_json::Value`'s own
//! deserializer, so errors read the same (and quote no value: see
//! [`crate::config::describe_error`]).
//!
//! Hand-written because no crate offers "serde_json::Value, strings from
//! scalars": serde_json's deserializer is strict, and the
//! `serde_with`/`serde_aux` helpers work per field, which would mean an
//! attribute on every string field of every store.

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

/// Deserializes `T` from `value`, strings taking scalars as their text.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, serde_json::Error> {
    T::deserialize(Lenient(value))
}

/// A value whose strings take scalars.
struct Lenient(Value);

/// The text a scalar stands for where a string is wanted.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl<'de> de::Deserializer<'de> for Lenient {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Seq(items.into_iter())),
            Value::Object(map) => visitor.visit_map(Entries::new(map)),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match scalar_text(&self.0) {
            Some(text) => visitor.visit_string(text),
            None => self.0.deserialize_str(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Lenient(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        // A unit variant written as a scalar (`method: 2024` is no variant
        // either way): its text, as for strings.
        match scalar_text(&self.0) {
            Some(text) => Value::String(text).deserialize_enum(name, variants, visitor),
            None => self.0.deserialize_enum(name, variants, visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

impl<'de> IntoDeserializer<'de, serde_json::Error> for Lenient {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

/// A sequence's items, each lenient.
struct Seq(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Seq {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0
            .next()
            .map(|v| seed.deserialize(Lenient(v)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// A mapping's entries: keys as they are, values lenient.
struct Entries {
    iter: serde_json::map::IntoIter,
    value: Option<Value>,
}

impl Entries {
    fn new(map: Map<String, Value>) -> Self {
        Self {
            iter: map.into_iter(),
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for Entries {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(Value::String(k)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let v = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a value without its key"))?;
        seed.deserialize(Lenient(v))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        role: Option<String>,
        port: Option<u16>,
        on: Option<bool>,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "lowercase")]
    enum Kind {
        A,
        B,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        inner: Inner,
        kind: Kind,
        map: BTreeMap<String, String>,
    }

    #[test]
    fn strings_take_scalars_at_any_depth_and_the_rest_stays_strict() {
        let v = json!({
            "name": 2024,
            "inner": {"role": true, "port": 8200, "on": false, "tags": [1, "x", 2.5]},
            "kind": "b",
            "map": {"k": 7},
        });
        let o: Outer = from_value(v).unwrap();
        assert_eq!(o.name, "2024");
        assert_eq!(o.inner.role.as_deref(), Some("true"));
        assert_eq!(o.inner.port, Some(8200));
        assert_eq!(o.inner.on, Some(false));
        assert_eq!(o.inner.tags, ["1", "x", "2.5"]);
        assert_eq!(o.kind, Kind::B);
        assert_eq!(o.map.get("k").map(String::as_str), Some("7"));
        // Numbers do not take strings, unknown keys stay errors, a string
        // field refuses a map.
        let bad = |v| from_value::<Inner>(v).is_err();
        assert!(bad(json!({"port": "8200"})));
        assert!(bad(json!({"nope": 1})));
        assert!(bad(json!({"role": {"a": 1}})));
        assert!(
            from_value::<Outer>(json!({"name": "n", "inner": {}, "kind": "c", "map": {}})).is_err()
        );
    }
}

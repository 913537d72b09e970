//! Request bodies are read from a parsed [`Value`] through [`Strict`], which is
//! `Value`'s own deserializer with one rule more: a struct is read from a JSON
//! object only. serde's derived structs also take an array and fill their fields in
//! order (`"ipRateLimits": [7, 99, "x"]` would be the limit, the timeframe and the
//! message), which no client means and the contract does not allow.

use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Unexpected,
    Visitor,
};
use serde_json::{Map, Value};

/// A JSON value to deserialize from, structs from objects only (at any depth).
pub struct Strict(pub Value);

type Error = serde_json::Error;

impl<'de> Deserializer<'de> for Strict {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Seq(items.into_iter())),
            Value::Object(map) => visitor.visit_map(Fields::new(map)),
            scalar => scalar.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(_) => Err(de::Error::invalid_type(Unexpected::Seq, &visitor)),
            other => Strict(other).deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Strict(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    /// Enums as `Value` reads them (a variant's fields are not checked further).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

/// An array's items, each read strictly.
struct Seq(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Seq {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0
            .next()
            .map(|v| seed.deserialize(Strict(v)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// An object's fields, each value read strictly.
struct Fields {
    entries: serde_json::map::IntoIter,
    value: Option<Value>,
}

impl Fields {
    fn new(map: Map<String, Value>) -> Self {
        Fields {
            entries: map.into_iter(),
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for Fields {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a value was asked for before its key"))?;
        seed.deserialize(Strict(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Limits {
        limit: u32,
        message: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Body {
        name: String,
        ip_rate_limits: Option<Limits>,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        items: Vec<Limits>,
        kind: Option<Kind>,
        extra: Option<Value>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Text,
        Link,
    }

    fn read(v: Value) -> Result<Body, String> {
        Body::deserialize(Strict(v)).map_err(|e| e.to_string())
    }

    #[test]
    fn objects_read_as_value_reads_them() {
        let v = json!({"name": "a", "ipRateLimits": {"limit": 7, "message": null},
                       "tags": ["x", "y"], "items": [{"limit": 1}], "kind": "link",
                       "extra": [1, {"a": [2]}]});
        let strict = read(v.clone()).unwrap();
        assert_eq!(strict, Body::deserialize(v).unwrap());
        assert_eq!(strict.ip_rate_limits.unwrap().limit, 7);
    }

    #[test]
    fn a_struct_from_an_array_is_refused_at_any_depth() {
        for v in [
            json!(["a"]),
            json!({"name": "a", "ipRateLimits": [7, "x"]}),
            json!({"name": "a", "items": [{"limit": 1}, [2, "m"]]}),
        ] {
            let e = read(v.clone()).unwrap_err();
            assert!(e.contains("invalid type: sequence"), "{v}: {e}");
        }
        // What serde alone does with one.
        let positional = Body::deserialize(json!({"name": "a", "ipRateLimits": [7, "x"]}));
        assert_eq!(positional.unwrap().ip_rate_limits.unwrap().limit, 7);
    }

    #[test]
    fn errors_still_name_the_field() {
        let v = json!({"name": "a", "ipRateLimits": {"limit": "many"}});
        let e = serde_path_to_error::deserialize::<_, Body>(Strict(v)).unwrap_err();
        assert_eq!(e.path().to_string(), "ipRateLimits.limit");
    }
}

//! Ordered JSON: response bodies are rendered with their keys in the order the
//! providers' API references show them (serde_json's `Value` sorts keys, and
//! its `preserve_order` feature would change every other crate's output).

use std::fmt;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// A JSON value whose objects keep insertion order.
#[derive(Clone, Debug, PartialEq)]
pub enum J {
    /// Any plain value (objects inside it are rendered with sorted keys).
    Raw(Value),
    /// Object, in order.
    Obj(Vec<(&'static str, J)>),
    /// Array.
    Arr(Vec<J>),
}

/// Ordered object literal: `obj! { "a": 1, "b": "x" }`.
macro_rules! obj {
    ($($k:literal : $v:expr),* $(,)?) => {
        $crate::ojson::J::Obj(vec![$(($k, $crate::ojson::J::from($v))),*])
    };
}
pub(crate) use obj;

impl J {
    /// Appends `key` (or replaces its value when already present) on an object.
    pub fn set(&mut self, key: &'static str, value: impl Into<J>) {
        if let J::Obj(fields) = self {
            let value = value.into();
            match fields.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => fields.push((key, value)),
            }
        }
    }

    /// Removes `key` from an object.
    pub fn remove(&mut self, key: &str) {
        if let J::Obj(fields) = self {
            fields.retain(|(k, _)| *k != key);
        }
    }
}

impl Serialize for J {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            J::Raw(v) => v.serialize(serializer),
            J::Obj(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            J::Arr(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

impl fmt::Display for J {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl From<Value> for J {
    fn from(v: Value) -> Self {
        J::Raw(v)
    }
}

impl From<&Value> for J {
    fn from(v: &Value) -> Self {
        J::Raw(v.clone())
    }
}

impl From<Vec<J>> for J {
    fn from(v: Vec<J>) -> Self {
        J::Arr(v)
    }
}

impl<T: Into<J>> From<Option<T>> for J {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(J::Raw(Value::Null))
    }
}

macro_rules! from_scalar {
    ($($t:ty),*) => {$(
        impl From<$t> for J {
            fn from(v: $t) -> Self {
                J::Raw(Value::from(v))
            }
        }
    )*};
}
from_scalar!(&str, String, u64, usize, u16, bool);

impl From<&String> for J {
    fn from(v: &String) -> Self {
        J::Raw(Value::String(v.clone()))
    }
}

/// `null`.
pub const NULL: J = J::Raw(Value::Null);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn keeps_order() {
        let mut o = obj! {"type": "message_start", "index": 0usize, "a": NULL};
        o.set("z", obj! {"y": 1u64, "b": vec![J::from("x")]});
        o.set("index", 2usize);
        assert_eq!(
            o.to_string(),
            r#"{"type":"message_start","index":2,"a":null,"z":{"y":1,"b":["x"]}}"#
        );
    }
}

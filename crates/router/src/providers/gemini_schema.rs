//! JSON Schema to the OpenAPI-3.0 subset Gemini accepts in `functionDeclarations.parameters`
//! and `responseSchema`. Gemini rejects unknown keywords (`additionalProperties`, `$schema`,
//! `strict`, ...), so the schema is rebuilt from an allow-list rather than patched:
//! - `type: [T, "null"]` becomes `type: T, nullable: true`; several non-null types `anyOf`;
//! - `const` becomes a one-value `enum` (strings only: Gemini enums are string-typed);
//! - local `$ref`s (`#/$defs/..`, `#/definitions/..`) are inlined, 16 levels deep at most;
//! - `required` keeps only names that are in `properties`;
//! - `format` is kept only where Gemini supports it (date-time, enum, float, double, int32, int64).

use serde_json::{json, Map, Value};

const KEEP: &[&str] = &[
    "type",
    "title",
    "description",
    "nullable",
    "maxItems",
    "minItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "propertyOrdering",
    "default",
    "minimum",
    "maximum",
];
const FORMATS: &[&str] = &["date-time", "enum", "float", "double", "int32", "int64"];
const MAX_DEPTH: usize = 16;

/// The Gemini form of `schema`; `root` resolves local `$ref`s.
pub fn sanitize(schema: &Value) -> Value {
    convert(schema, schema, 0)
}

fn convert(schema: &Value, root: &Value, depth: usize) -> Value {
    let Some(obj) = schema.as_object() else {
        return json!({});
    };
    if depth > MAX_DEPTH {
        return json!({});
    }
    if let Some(target) = obj.get("$ref").and_then(Value::as_str).and_then(|r| {
        let path = r.strip_prefix('#')?;
        root.pointer(path)
    }) {
        let mut resolved = convert(target, root, depth + 1);
        if let (Some(desc), Value::Object(o)) = (obj.get("description"), &mut resolved) {
            o.insert("description".into(), desc.clone());
        }
        return resolved;
    }
    let mut out = Map::new();
    for key in KEEP {
        if let Some(v) = obj.get(*key) {
            out.insert((*key).to_string(), v.clone());
        }
    }
    if let Some(Value::Array(types)) = obj.get("type") {
        let non_null: Vec<&Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .collect();
        if non_null.len() < types.len() {
            out.insert("nullable".into(), json!(true));
        }
        match non_null.as_slice() {
            [] => {
                out.remove("type");
            }
            [one] => {
                out.insert("type".into(), (*one).clone());
            }
            many => {
                out.remove("type");
                let alts: Vec<Value> = many.iter().map(|t| json!({"type": t})).collect();
                out.insert("anyOf".into(), Value::Array(alts));
            }
        }
    }
    if let Some(f) = obj.get("format").and_then(Value::as_str) {
        if FORMATS.contains(&f) {
            out.insert("format".into(), json!(f));
        }
    }
    let strings = |values: &[Value]| -> Option<Vec<Value>> {
        values.iter().all(Value::is_string).then(|| values.to_vec())
    };
    if let Some(e) = obj
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|v| strings(v))
    {
        out.insert("enum".into(), Value::Array(e));
    } else if let Some(c) = obj.get("const").filter(|c| c.is_string()) {
        out.insert("enum".into(), json!([c]));
        out.entry("type").or_insert(json!("string"));
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        let mut converted = Map::new();
        for (name, p) in props {
            converted.insert(name.clone(), convert(p, root, depth + 1));
        }
        if let Some(req) = obj.get("required").and_then(Value::as_array) {
            let kept: Vec<Value> = req
                .iter()
                .filter(|r| r.as_str().is_some_and(|n| converted.contains_key(n)))
                .cloned()
                .collect();
            if !kept.is_empty() {
                out.insert("required".into(), Value::Array(kept));
            }
        }
        out.insert("properties".into(), Value::Object(converted));
    }
    if let Some(items) = obj.get("items") {
        out.insert("items".into(), convert(items, root, depth + 1));
    }
    if let Some(any) = obj
        .get("anyOf")
        .or_else(|| obj.get("oneOf"))
        .and_then(Value::as_array)
    {
        let alts: Vec<Value> = any.iter().map(|a| convert(a, root, depth + 1)).collect();
        out.insert("anyOf".into(), Value::Array(alts));
    }
    Value::Object(out)
}

/// Whether a function's parameters declare anything: Gemini rejects an OBJECT with no
/// properties, so such declarations are sent without `parameters`.
pub fn has_properties(schema: &Value) -> bool {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| !p.is_empty())
        || schema.get("anyOf").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_unsupported_keywords_and_resolves_refs() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "city": {"type": "string", "format": "hostname"},
                "when": {"type": ["string", "null"], "format": "date-time"},
                "unit": {"$ref": "#/$defs/Unit"},
                "kind": {"const": "weather"}
            },
            "required": ["city", "ghost"],
            "$defs": {"Unit": {"type": "string", "enum": ["c", "f"], "additionalProperties": false}}
        });
        let out = sanitize(&schema);
        assert_eq!(
            out,
            json!({
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "when": {"type": "string", "nullable": true, "format": "date-time"},
                    "unit": {"type": "string", "enum": ["c", "f"]},
                    "kind": {"type": "string", "enum": ["weather"]}
                },
                "required": ["city"]
            })
        );
    }

    #[test]
    fn self_reference_is_bounded() {
        let schema = json!({"type": "object", "properties": {"next": {"$ref": "#"}}});
        let out = sanitize(&schema);
        assert!(out.to_string().len() < 10_000);
    }
}

//! `GET /docs/api`: the API reference, rendered from the same OpenAPI document that
//! `GET /openapi.json` serves, in the dashboard's layout (no sign-in needed; signed-in users get
//! their navigation). Endpoints are grouped by tag, each with its method, path, summary,
//! authentication, parameters, request body and answers.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde_json::{Map, Value};

use crate::dashboard::{render, Layout, Nav, PageError};
use crate::principal::page_user;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "api_reference.html")]
pub struct ReferencePage {
    pub layout: Layout,
    pub version: String,
    pub intro: String,
    pub groups: Vec<Group>,
}

pub struct Group {
    pub name: String,
    pub anchor: String,
    pub description: String,
    pub operations: Vec<Operation>,
}

pub struct Operation {
    pub anchor: String,
    pub method: String,
    pub path: String,
    pub summary: String,
    pub description: String,
    pub auth: String,
    pub parameters: Vec<Parameter>,
    pub body: Option<Body>,
    pub responses: Vec<Answer>,
}

pub struct Parameter {
    pub name: String,
    pub location: String,
    pub required: bool,
    pub kind: String,
    pub description: String,
}

pub struct Body {
    pub content_types: String,
    pub schema: String,
    pub fields: Vec<Field>,
}

pub struct Field {
    pub name: String,
    pub kind: String,
    pub required: bool,
    pub description: String,
}

pub struct Answer {
    pub status: String,
    pub description: String,
    pub content: String,
    pub fields: Vec<Field>,
}

pub async fn page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let layout = match page_user(&req, &state, None).await {
        Ok(Some(user)) => match Nav::load(&state, &user, "/docs/api").await {
            Ok(nav) => Layout::with_nav("API reference", nav),
            Err(_) => Layout::bare("API reference"),
        },
        _ => Layout::bare("API reference"),
    };
    let doc = super::localized(&state);
    render(&build(layout, &doc))
}

/// The page's content from the document.
pub fn build(layout: Layout, doc: &Value) -> ReferencePage {
    let schemas = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut groups: Vec<Group> = doc["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let name = text(&t["name"]);
            Group {
                anchor: anchor(&name),
                description: text(&t["description"]),
                name,
                operations: Vec::new(),
            }
        })
        .collect();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(op) = item.get(method) else {
                continue;
            };
            let tag = op["tags"][0].as_str().unwrap_or("Other").to_string();
            let operation = operation(method, path, op, &schemas);
            match groups.iter_mut().find(|g| g.name == tag) {
                Some(g) => g.operations.push(operation),
                None => groups.push(Group {
                    anchor: anchor(&tag),
                    description: String::new(),
                    name: tag,
                    operations: vec![operation],
                }),
            }
        }
    }
    groups.retain(|g| !g.operations.is_empty());
    ReferencePage {
        layout,
        version: text(&doc["openapi"]),
        intro: text(&doc["info"]["description"]),
        groups,
    }
}

fn operation(method: &str, path: &str, op: &Value, schemas: &Map<String, Value>) -> Operation {
    let auth = match op.get("security").and_then(Value::as_array) {
        None => "none".to_string(),
        Some(reqs) if reqs.is_empty() => "none".to_string(),
        Some(reqs) => reqs
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|r| r.keys())
            .map(|k| match k.as_str() {
                "bearer" => "Authorization: Bearer key",
                "x_api_key" => "x-api-key",
                "session" => "session cookie",
                other => other,
            })
            .collect::<Vec<_>>()
            .join(" or "),
    };
    let parameters = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| Parameter {
            name: text(&p["name"]),
            location: text(&p["in"]),
            required: p["required"].as_bool().unwrap_or(false),
            kind: kind(&p["schema"]),
            description: text(&p["description"]),
        })
        .collect();
    let body = op["requestBody"]["content"].as_object().map(|content| {
        let schema = content
            .values()
            .next()
            .map(|c| c["schema"].clone())
            .unwrap_or(Value::Null);
        Body {
            content_types: content.keys().cloned().collect::<Vec<_>>().join(", "),
            schema: kind(&schema),
            fields: fields(&schema, schemas, 0),
        }
    });
    let responses = op["responses"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(status, r)| {
            let content = r["content"].as_object();
            let describe = content
                .into_iter()
                .flatten()
                .map(|(ct, c)| format!("{ct}: {}", kind(&c["schema"])))
                .collect::<Vec<_>>()
                .join("; ");
            let success = status.starts_with('2');
            let json = content
                .and_then(|c| c.get("application/json"))
                .map(|c| c["schema"].clone());
            Answer {
                status: status.clone(),
                description: text(&r["description"]),
                content: describe,
                fields: match (success, json) {
                    (true, Some(s)) => fields(&s, schemas, 0),
                    _ => Vec::new(),
                },
            }
        })
        .collect();
    Operation {
        anchor: anchor(&format!("{method}-{path}")),
        method: method.to_ascii_uppercase(),
        path: path.to_string(),
        summary: text(&op["summary"]),
        description: text(&op["description"]),
        auth,
        parameters,
        body,
        responses,
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn anchor(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn ref_name(r: &str) -> &str {
    r.rsplit('/').next().unwrap_or(r)
}

/// A schema in a few words: `string`, `integer ≥ 1`, `array of Message`, `"auto" | "none"`.
pub fn kind(schema: &Value) -> String {
    if let Some(r) = schema["$ref"].as_str() {
        return ref_name(r).to_string();
    }
    if let Some(values) = schema["enum"].as_array() {
        return values
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(" | ");
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = schema[key].as_array() {
            return alts.iter().map(kind).collect::<Vec<_>>().join(" | ");
        }
    }
    if let Some(all) = schema["allOf"].as_array() {
        return all.iter().map(kind).collect::<Vec<_>>().join(" & ");
    }
    let mut types: Vec<String> = match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts.iter().map(text).collect(),
        _ => Vec::new(),
    };
    for t in types.iter_mut() {
        if t == "array" {
            *t = format!("array of {}", kind(&schema["items"]));
        }
    }
    let mut out = if types.is_empty() {
        "any".to_string()
    } else {
        types.join(" | ")
    };
    if let Some(f) = schema["format"].as_str() {
        out.push_str(&format!(" ({f})"));
    }
    if let Some(min) = schema.get("minimum") {
        out.push_str(&format!(" ≥ {min}"));
    }
    if let Some(max) = schema.get("maximum") {
        out.push_str(&format!(" ≤ {max}"));
    }
    if let Some(min) = schema.get("minItems") {
        out.push_str(&format!(", at least {min}"));
    }
    if let (Some(min), Some(max)) = (schema.get("minLength"), schema.get("maxLength")) {
        out.push_str(&format!(", {min} to {max} characters"));
    }
    out
}

/// The top-level fields of a schema (its `$ref` resolved, `allOf` merged).
fn fields(schema: &Value, schemas: &Map<String, Value>, depth: usize) -> Vec<Field> {
    if depth > 8 {
        return Vec::new();
    }
    if let Some(r) = schema["$ref"].as_str() {
        return schemas
            .get(ref_name(r))
            .map(|s| fields(s, schemas, depth + 1))
            .unwrap_or_default();
    }
    let mut out: Vec<Field> = schema["allOf"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| fields(s, schemas, depth + 1))
        .collect();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (name, s) in schema["properties"].as_object().into_iter().flatten() {
        out.push(Field {
            name: name.clone(),
            kind: kind(s),
            required: required.contains(&name.as_str()),
            description: text(&s["description"]),
        });
    }
    out
}

//! Translation rules shared by the non-OpenAI wires: the `reasoning` request object and its
//! thinking budgets, OpenAI parameters another wire cannot honour, tool definitions, and the
//! OpenAI-shaped chunks the stream translators emit.
//!
//! Documented rules:
//! - Effort budgets: `budget = clamp(max_tokens x ratio, 1024, cap)` with ratios minimal 0.1,
//!   low 0.2, medium 0.5, high 0.8 (OpenRouter's rule); cap 32000 on Anthropic, 24576 on
//!   Gemini. `reasoning.max_tokens` is used as the budget as given (raised to 1024 on Anthropic,
//!   its minimum). `effort: "none"` or `enabled: false` turns thinking off.
//! - Rejected with a 400 naming the parameter: `logprobs`/`top_logprobs`, `n` > 1, audio output
//!   (`modalities` with "audio", `audio`), `web_search_options`: the answer would silently lack
//!   what was asked for.
//! - Dropped: `logit_bias`, `store`, `metadata`, `service_tier`, `prediction`, `stream_options`
//!   (usage is always reported), and fields no wire knows. `seed`, `frequency_penalty` and
//!   `presence_penalty` are dropped on Anthropic (no equivalent) and translated on Gemini.

use serde_json::{json, Map, Value};

use crate::types::{ChatChunk, ChatRequest, ChunkChoice, Delta};

/// The provider-side shape of the client's `reasoning` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thinking {
    /// Not asked for: the provider's default applies.
    Default,
    /// Explicitly off.
    Off,
    /// On, with a budget rule.
    Effort(Effort),
    /// On, with this many thinking tokens.
    Budget(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    Minimal,
    Low,
    Medium,
    High,
}

impl Effort {
    /// The thinking budget for an output limit: `max_tokens x ratio`, clamped to `[min, cap]`.
    pub fn budget(self, max_tokens: u64, min: u64, cap: u64) -> u64 {
        let tenths = match self {
            Effort::Minimal => 1,
            Effort::Low => 2,
            Effort::Medium => 5,
            Effort::High => 8,
        };
        (max_tokens.saturating_mul(tenths) / 10).clamp(min, cap)
    }
}

/// The client's reasoning request: from `reasoning` {effort, max_tokens, exclude, enabled}, or
/// OpenAI's top-level `reasoning_effort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReasoningRequest {
    pub thinking: Thinking,
    /// Think, but do not return the thinking to the client.
    pub exclude: bool,
}

pub fn reasoning(request: &ChatRequest) -> Result<ReasoningRequest, String> {
    let obj = request.reasoning.as_ref().filter(|v| !v.is_null());
    let effort = obj
        .and_then(|r| r.get("effort"))
        .or_else(|| request.extra.get("reasoning_effort"))
        .filter(|v| !v.is_null());
    let max_tokens = obj
        .and_then(|r| r.get("max_tokens"))
        .filter(|v| !v.is_null());
    let enabled = obj.and_then(|r| r.get("enabled")).and_then(Value::as_bool);
    let exclude = obj
        .and_then(|r| r.get("exclude"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if obj.is_some_and(|r| !r.is_object()) {
        return Err("reasoning: must be an object".into());
    }
    let thinking = if enabled == Some(false) {
        Thinking::Off
    } else if let Some(m) = max_tokens {
        let n = m
            .as_u64()
            .filter(|n| *n > 0)
            .ok_or("reasoning.max_tokens: must be a positive integer")?;
        Thinking::Budget(n)
    } else if let Some(e) = effort {
        match e.as_str() {
            Some("none") => Thinking::Off,
            Some("minimal") => Thinking::Effort(Effort::Minimal),
            Some("low") => Thinking::Effort(Effort::Low),
            Some("medium") => Thinking::Effort(Effort::Medium),
            Some("high") => Thinking::Effort(Effort::High),
            _ => {
                return Err(
                    "reasoning.effort: must be one of none, minimal, low, medium, high".into(),
                )
            }
        }
    } else if enabled == Some(true) || obj.is_some() {
        // `{"reasoning": {}}` or `{"enabled": true}` means "think", at a middle budget.
        Thinking::Effort(Effort::Medium)
    } else {
        Thinking::Default
    };
    Ok(ReasoningRequest { thinking, exclude })
}

/// Which wire a parameter check is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Anthropic,
    Gemini,
    Bedrock,
}

/// Rejects parameters whose absence from the answer would be silently wrong.
pub fn check_unsupported(request: &ChatRequest, target: Target) -> Result<(), String> {
    let name = match target {
        Target::Anthropic => "Anthropic",
        Target::Gemini => "Gemini",
        Target::Bedrock => "Bedrock",
    };
    let x = &request.extra;
    if x.get("logprobs").and_then(Value::as_bool) == Some(true)
        || x.get("top_logprobs")
            .and_then(Value::as_u64)
            .is_some_and(|n| n > 0)
    {
        return Err(format!("logprobs: not available from {name} models"));
    }
    if x.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(format!("n: only n = 1 is supported by {name} models"));
    }
    let audio_out = x.get("audio").is_some_and(|a| !a.is_null())
        || x.get("modalities")
            .and_then(Value::as_array)
            .is_some_and(|m| m.iter().any(|v| v.as_str() == Some("audio")));
    if audio_out {
        return Err(format!(
            "modalities: audio output is not available from {name} models"
        ));
    }
    if x.get("web_search_options").is_some_and(|v| !v.is_null()) {
        return Err(format!(
            "web_search_options: not available through the {name} adapter"
        ));
    }
    Ok(())
}

/// One OpenAI function tool, as the other wires need it.
#[derive(Debug, Clone)]
pub struct FunctionTool {
    pub name: String,
    pub description: Option<String>,
    pub parameters: Option<Value>,
    /// Fields on the tool besides `type` and `function` (e.g. Anthropic's `cache_control`).
    pub extra: Map<String, Value>,
}

pub fn function_tools(request: &ChatRequest) -> Result<Vec<FunctionTool>, String> {
    let mut out = Vec::new();
    for (i, tool) in request.tools.iter().flatten().enumerate() {
        let kind = tool
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("function");
        if kind != "function" {
            return Err(format!(
                "tools[{i}].type: only function tools can be translated, not '{kind}'"
            ));
        }
        let f = tool
            .get("function")
            .ok_or_else(|| format!("tools[{i}].function: missing"))?;
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("tools[{i}].function.name: missing"))?;
        let mut extra = tool.as_object().cloned().unwrap_or_default();
        extra.remove("type");
        extra.remove("function");
        out.push(FunctionTool {
            name: name.to_string(),
            description: f
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string),
            parameters: f.get("parameters").filter(|p| !p.is_null()).cloned(),
            extra,
        });
    }
    Ok(out)
}

/// What `tool_choice` asks for, wire-independently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    Named(String),
}

pub fn tool_choice(request: &ChatRequest) -> Result<Option<ToolChoice>, String> {
    let Some(choice) = request.tool_choice.as_ref().filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let parsed = match choice {
        Value::String(s) => match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" | "any" => ToolChoice::Required,
            other => return Err(format!("tool_choice: unknown value '{other}'")),
        },
        Value::Object(o) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .or_else(|| o.get("name"))
                .and_then(Value::as_str)
                .ok_or("tool_choice.function.name: missing")?;
            ToolChoice::Named(name.to_string())
        }
        _ => return Err("tool_choice: must be a string or an object".into()),
    };
    Ok(Some(parsed))
}

/// Tool-call arguments (a JSON string in OpenAI's shape) as the JSON object other wires want.
pub fn call_arguments(call: &Value, path: &str) -> Result<Value, String> {
    let raw = call.pointer("/function/arguments");
    let value = match raw {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(s)) if s.trim().is_empty() => json!({}),
        Some(Value::String(s)) => serde_json::from_str(s)
            .map_err(|_| format!("{path}.function.arguments: not valid JSON"))?,
        Some(other) => other.clone(),
    };
    if value.is_object() {
        Ok(value)
    } else {
        Err(format!("{path}.function.arguments: must be a JSON object"))
    }
}

/// `reasoning_details` entries as sent back by a client, with stream fragments of the same
/// `index` merged (text concatenated, signature and data kept) so each block is whole again.
pub fn merged_reasoning_details(details: Option<&Value>) -> Vec<Map<String, Value>> {
    let mut out: Vec<Map<String, Value>> = Vec::new();
    let mut by_index: Vec<(u64, usize)> = Vec::new();
    for entry in details.and_then(Value::as_array).into_iter().flatten() {
        let Some(obj) = entry.as_object() else {
            continue;
        };
        let index = obj.get("index").and_then(Value::as_u64);
        let slot = index.and_then(|i| by_index.iter().find(|(k, _)| *k == i).map(|(_, s)| *s));
        match slot {
            Some(s) => {
                let target = &mut out[s];
                for (k, v) in obj {
                    match (k.as_str(), target.get_mut(k)) {
                        ("text", Some(Value::String(t))) => {
                            t.push_str(v.as_str().unwrap_or_default())
                        }
                        (_, Some(existing)) if !v.is_null() && existing.is_null() => {
                            *existing = v.clone()
                        }
                        (_, None) => {
                            target.insert(k.clone(), v.clone());
                        }
                        _ => {}
                    }
                }
            }
            None => {
                if let Some(i) = index {
                    by_index.push((i, out.len()));
                }
                out.push(obj.clone());
            }
        }
    }
    out
}

/// An OpenAI chunk with one choice.
pub fn chunk(id: &str, model: &str, delta: Delta, finish_reason: Option<String>) -> ChatChunk {
    ChatChunk {
        id: id.to_string(),
        object: "chat.completion.chunk".into(),
        created: 0,
        model: model.to_string(),
        provider: None,
        choices: vec![ChunkChoice {
            index: 0,
            delta,
            finish_reason,
            extra: Map::new(),
        }],
        usage: None,
        extra: Map::new(),
    }
}

/// The JSON schema of a `response_format` of type `json_schema`, with its name.
pub fn json_schema(format: &Value) -> Result<(String, Value), String> {
    let spec = format
        .get("json_schema")
        .ok_or("response_format.json_schema: missing")?;
    let name = spec
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("json_response")
        .to_string();
    let schema = spec
        .get("schema")
        .cloned()
        .unwrap_or_else(|| json!({"type": "object"}));
    Ok((name, schema))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req(v: Value) -> ChatRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn reasoning_forms() {
        let base = json!({"messages": []});
        let mut v = base.clone();
        v["reasoning"] = json!({"effort": "high", "exclude": true});
        let r = reasoning(&req(v)).unwrap();
        assert_eq!(r.thinking, Thinking::Effort(Effort::High));
        assert!(r.exclude);
        let mut v = base.clone();
        v["reasoning_effort"] = json!("low");
        assert_eq!(
            reasoning(&req(v)).unwrap().thinking,
            Thinking::Effort(Effort::Low)
        );
        let mut v = base.clone();
        v["reasoning"] = json!({"max_tokens": 2000});
        assert_eq!(reasoning(&req(v)).unwrap().thinking, Thinking::Budget(2000));
        let mut v = base.clone();
        v["reasoning"] = json!({"effort": "extreme"});
        assert!(reasoning(&req(v)).is_err());
        assert_eq!(reasoning(&req(base)).unwrap().thinking, Thinking::Default);
        assert_eq!(Effort::High.budget(10_000, 1024, 32_000), 8_000);
        assert_eq!(Effort::Low.budget(2_000, 1024, 32_000), 1_024);
        assert_eq!(Effort::High.budget(100_000, 1024, 32_000), 32_000);
    }

    #[test]
    fn stream_fragments_of_reasoning_merge_by_index() {
        let d = json!([
            {"type": "reasoning.text", "text": "a", "index": 0},
            {"type": "reasoning.text", "text": "b", "index": 0},
            {"type": "reasoning.text", "signature": "sig", "index": 0},
            {"type": "reasoning.encrypted", "data": "xyz", "index": 1}
        ]);
        let m = merged_reasoning_details(Some(&d));
        assert_eq!(m.len(), 2);
        assert_eq!(m[0]["text"], "ab");
        assert_eq!(m[0]["signature"], "sig");
        assert_eq!(m[1]["data"], "xyz");
    }

    #[test]
    fn unsupported_parameters_are_named() {
        let r = req(json!({"messages": [], "logprobs": true}));
        assert!(check_unsupported(&r, Target::Gemini)
            .unwrap_err()
            .starts_with("logprobs"));
        let r = req(json!({"messages": [], "logit_bias": {"1": 2}, "seed": 3}));
        assert!(check_unsupported(&r, Target::Anthropic).is_ok());
    }
}

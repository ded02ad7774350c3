//! What a request asks of routing: OpenRouter's `provider` object, the `:floor` / `:nitro` model
//! variants, and the capabilities the request needs from an endpoint (tools, images, JSON
//! schema, reasoning, and under `require_parameters` every parameter it sets).

use std::collections::BTreeSet;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::catalog::{Catalog, Endpoint, Model};
use crate::types::{ChatRequest, Content, ContentPart};

/// A request's `provider` object that cannot be used, with the field at fault
/// (`provider.max_price.prompt`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PreferenceError {
    pub field: String,
    pub message: String,
}

impl PreferenceError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Sort {
    Price,
    Throughput,
    Latency,
}

impl std::str::FromStr for Sort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "price" => Ok(Sort::Price),
            "throughput" => Ok(Sort::Throughput),
            "latency" => Ok(Sort::Latency),
            other => Err(format!(
                "'{other}' is not one of price, throughput, latency"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DataCollection {
    #[default]
    Allow,
    Deny,
}

/// Highest prices a request accepts. `prompt` and `completion` are USD per million tokens (as on
/// OpenRouter); `request` is USD per request and `image` USD per input image. Compared with the
/// price charged (list x (1 - discount)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MaxPrice {
    pub prompt: Option<Decimal>,
    pub completion: Option<Decimal>,
    pub request: Option<Decimal>,
    pub image: Option<Decimal>,
}

const PER_MILLION: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

impl MaxPrice {
    pub fn is_set(&self) -> bool {
        self.prompt.is_some()
            || self.completion.is_some()
            || self.request.is_some()
            || self.image.is_some()
    }

    /// Whether an endpoint's charged prices are all within the limits.
    pub fn admits(&self, endpoint: &Endpoint) -> bool {
        let p = &endpoint.prices;
        let keep = Decimal::ONE - p.discount;
        let within = |limit: Option<Decimal>, price: Decimal, scale: Decimal| {
            limit.is_none_or(|l| price * keep * scale <= l)
        };
        within(self.prompt, p.prompt.decimal(), PER_MILLION)
            && within(self.completion, p.completion.decimal(), PER_MILLION)
            && within(self.request, p.request.decimal(), Decimal::ONE)
            && within(self.image, p.image.decimal(), Decimal::ONE)
    }
}

/// The request's `provider` object, validated against the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPreferences {
    /// Provider names (catalog `name`s) to try first, in this order.
    pub order: Vec<String>,
    pub allow_fallbacks: bool,
    /// When not empty, only these providers may serve the request.
    pub only: Vec<String>,
    pub ignore: Vec<String>,
    pub sort: Option<Sort>,
    pub require_parameters: bool,
    pub data_collection: DataCollection,
    /// Zero data retention: only providers that neither train on nor retain prompts.
    pub zdr: bool,
    pub max_price: MaxPrice,
}

impl Default for ProviderPreferences {
    fn default() -> Self {
        Self {
            order: Vec::new(),
            allow_fallbacks: true,
            only: Vec::new(),
            ignore: Vec::new(),
            sort: None,
            require_parameters: false,
            data_collection: DataCollection::Allow,
            zdr: false,
            max_price: MaxPrice::default(),
        }
    }
}

const FIELDS: &[&str] = &[
    "order",
    "allow_fallbacks",
    "only",
    "ignore",
    "sort",
    "require_parameters",
    "data_collection",
    "zdr",
    "max_price",
];
const PRICE_FIELDS: &[&str] = &["prompt", "completion", "request", "image"];

/// The `provider` object as sent (OpenRouter's routing preferences); also its schema in the
/// API description. Unknown fields are refused (the keys are checked against `FIELDS` first).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ProviderPreferences)]
pub struct Raw {
    /// Provider names to try first, in this order (catalog names or display names).
    #[serde(default)]
    order: Option<Vec<String>>,
    /// `false`: only the providers in `order` are tried. Default `true`.
    #[serde(default)]
    allow_fallbacks: Option<bool>,
    /// Only these providers may serve the request.
    #[serde(default)]
    only: Option<Vec<String>>,
    /// These providers may not serve the request.
    #[serde(default)]
    ignore: Option<Vec<String>>,
    /// A strict order instead of the weighted random choice.
    #[serde(default)]
    sort: Option<Sort>,
    /// Only endpoints that support every parameter the request sets.
    #[serde(default)]
    require_parameters: Option<bool>,
    /// `deny`: leave out providers that train on or retain prompts.
    #[serde(default)]
    data_collection: Option<DataCollection>,
    /// Zero data retention: the same as `data_collection: "deny"`.
    #[serde(default)]
    zdr: Option<bool>,
    /// Highest prices accepted.
    #[serde(default)]
    #[schema(value_type = Option<MaxPriceSchema>)]
    max_price: Option<Map<String, Value>>,
}

/// Highest prices accepted: USD per million tokens for `prompt` and `completion`, USD per
/// request and per image for the others.
#[derive(utoipa::ToSchema)]
#[schema(as = MaxPrice)]
#[allow(dead_code)]
pub struct MaxPriceSchema {
    prompt: Option<PriceLimit>,
    completion: Option<PriceLimit>,
    request: Option<PriceLimit>,
    image: Option<PriceLimit>,
}

/// A non-negative USD amount, as a JSON number or a decimal string (`"0.5"`).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum PriceLimit {
    Number(f64),
    Decimal(String),
}

impl ProviderPreferences {
    /// Parses and validates the `provider` object. Provider names match a catalog provider's
    /// `name` or display name, case-insensitively, and are returned as catalog names.
    pub fn parse(value: Option<&Value>, catalog: &Catalog) -> Result<Self, PreferenceError> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(Self::default());
        };
        let Some(object) = value.as_object() else {
            return Err(PreferenceError::new("provider", "must be an object"));
        };
        for key in object.keys() {
            if !FIELDS.contains(&key.as_str()) {
                return Err(PreferenceError::new(
                    format!("provider.{key}"),
                    format!("unknown field; supported fields are {}", FIELDS.join(", ")),
                ));
            }
        }
        let raw: Raw = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            PreferenceError::new(format!("provider.{path}"), e.into_inner().to_string())
        })?;
        let names =
            |field: &str, list: Option<Vec<String>>| -> Result<Vec<String>, PreferenceError> {
                let mut out = Vec::new();
                for (i, name) in list.unwrap_or_default().into_iter().enumerate() {
                    let found = catalog.providers.iter().find(|p| {
                        p.name.eq_ignore_ascii_case(name.trim())
                            || p.display_name.eq_ignore_ascii_case(name.trim())
                    });
                    match found {
                        Some(p) => {
                            if !out.contains(&p.name) {
                                out.push(p.name.clone());
                            }
                        }
                        None => {
                            return Err(PreferenceError::new(
                                format!("provider.{field}[{i}]"),
                                format!("unknown provider '{name}'"),
                            ))
                        }
                    }
                }
                Ok(out)
            };
        let max_price = match raw.max_price {
            None => MaxPrice::default(),
            Some(map) => {
                let mut m = MaxPrice::default();
                for (key, v) in &map {
                    let field = format!("provider.max_price.{key}");
                    let slot = match key.as_str() {
                        "prompt" => &mut m.prompt,
                        "completion" => &mut m.completion,
                        "request" => &mut m.request,
                        "image" => &mut m.image,
                        _ => {
                            return Err(PreferenceError::new(
                                field,
                                format!("unknown field; use {}", PRICE_FIELDS.join(", ")),
                            ))
                        }
                    };
                    *slot = Some(price_limit(v).map_err(|msg| PreferenceError::new(field, msg))?);
                }
                m
            }
        };
        Ok(Self {
            order: names("order", raw.order)?,
            allow_fallbacks: raw.allow_fallbacks.unwrap_or(true),
            only: names("only", raw.only)?,
            ignore: names("ignore", raw.ignore)?,
            sort: raw.sort,
            require_parameters: raw.require_parameters.unwrap_or(false),
            data_collection: raw.data_collection.unwrap_or_default(),
            zdr: raw.zdr.unwrap_or(false),
            max_price,
        })
    }
}

/// A USD amount given as a JSON number or a decimal string; never negative.
fn price_limit(v: &Value) -> Result<Decimal, String> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return Err("must be a number (USD)".into()),
    };
    let d = text
        .parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| format!("'{text}' is not a decimal number"))?;
    if d.is_sign_negative() {
        return Err("must not be negative".into());
    }
    Ok(d)
}

/// Model variants: a `:suffix` on the model name that changes how endpoints are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Cheapest first (`sort: price`).
    Floor,
    /// Fastest first (`sort: throughput`).
    Nitro,
}

impl Variant {
    pub fn sort(self) -> Sort {
        match self {
            Variant::Floor => Sort::Price,
            Variant::Nitro => Sort::Throughput,
        }
    }
}

/// Why a model name does not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelNameError {
    Unknown,
    UnknownVariant(String),
}

/// Resolves a model id or alias with an optional `:floor` / `:nitro` suffix. A name that is
/// itself an id or alias wins over reading its suffix as a variant.
pub fn resolve_model(
    catalog: &Catalog,
    name: &str,
) -> Result<(Arc<Model>, Option<Variant>), ModelNameError> {
    if let Some(m) = catalog.model(name) {
        return Ok((m.clone(), None));
    }
    let Some((base, suffix)) = name.rsplit_once(':') else {
        return Err(ModelNameError::Unknown);
    };
    let model = catalog.model(base).ok_or(ModelNameError::Unknown)?;
    let variant = match suffix {
        "floor" => Variant::Floor,
        "nitro" => Variant::Nitro,
        other => return Err(ModelNameError::UnknownVariant(other.to_string())),
    };
    Ok((model.clone(), Some(variant)))
}

/// OpenRouter's parameter names, as listed in a catalog's `supported_parameters`.
const PARAMETERS: &[&str] = &[
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "top_a",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "seed",
    "stop",
    "max_tokens",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "response_format",
    "structured_outputs",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning",
    "include_reasoning",
    "web_search_options",
    "verbosity",
];

/// What an endpoint must support to serve a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Hard requirements, whatever `require_parameters` says: `tools`, `structured_outputs`
    /// (a JSON-schema `response_format`), `reasoning`.
    pub capabilities: BTreeSet<&'static str>,
    /// Input modalities beyond text: `image`, `file`, `audio`.
    pub modalities: BTreeSet<&'static str>,
    /// Every parameter the request sets (checked only under `require_parameters`).
    pub parameters: BTreeSet<String>,
}

impl Needs {
    pub fn of(r: &ChatRequest) -> Self {
        let mut n = Needs::default();
        let mut set = |p: &str| {
            n.parameters.insert(p.to_string());
        };
        if r.temperature.is_some() {
            set("temperature");
        }
        if r.top_p.is_some() {
            set("top_p");
        }
        if r.stop.is_some() {
            set("stop");
        }
        if r.seed.is_some() {
            set("seed");
        }
        if r.max_output().is_some() {
            set("max_tokens");
        }
        if r.tool_choice.is_some() {
            set("tool_choice");
        }
        if r.response_format.is_some() {
            set("response_format");
        }
        for key in r.extra.keys() {
            if PARAMETERS.contains(&key.as_str()) {
                set(key);
            }
        }
        if r.extra.contains_key("reasoning_effort") {
            set("reasoning");
        }
        let uses_tools = r.tools.as_ref().is_some_and(|t| !t.is_empty());
        if uses_tools {
            n.parameters.insert("tools".into());
            n.capabilities.insert("tools");
        }
        let schema = r
            .response_format
            .as_ref()
            .and_then(|f| f.get("type"))
            .and_then(Value::as_str)
            == Some("json_schema");
        if schema {
            n.parameters.insert("structured_outputs".into());
            n.capabilities.insert("structured_outputs");
        }
        if wants_reasoning(r) {
            n.parameters.insert("reasoning".into());
            n.capabilities.insert("reasoning");
        }
        for m in &r.messages {
            if let Some(Content::Parts(parts)) = &m.content {
                for p in parts {
                    match p {
                        ContentPart::ImageUrl { .. } => n.modalities.insert("image"),
                        ContentPart::File { .. } => n.modalities.insert("file"),
                        ContentPart::InputAudio { .. } => n.modalities.insert("audio"),
                        ContentPart::Text { .. } => false,
                    };
                }
            }
        }
        n
    }

    /// The first capability or modality the endpoint lacks.
    pub fn missing_capability(&self, e: &Endpoint) -> Option<&'static str> {
        self.capabilities
            .iter()
            .find(|c| !e.supports_parameter(c))
            .or_else(|| self.modalities.iter().find(|m| !e.accepts_modality(m)))
            .copied()
    }

    pub fn all_parameters_supported(&self, e: &Endpoint) -> bool {
        self.parameters.iter().all(|p| e.supports_parameter(p))
    }
}

/// Reasoning is wanted when `reasoning` is set and not switched off, or with OpenAI's
/// `reasoning_effort` or OpenRouter's `include_reasoning: true`.
fn wants_reasoning(r: &ChatRequest) -> bool {
    let off = |v: &Value| {
        v.get("enabled").and_then(Value::as_bool) == Some(false)
            || v.get("effort").and_then(Value::as_str) == Some("none")
    };
    let explicit = r
        .reasoning
        .as_ref()
        .is_some_and(|v| !v.is_null() && !off(v));
    let effort = r
        .extra
        .get("reasoning_effort")
        .and_then(Value::as_str)
        .is_some_and(|e| e != "none");
    let include = r.extra.get("include_reasoning").and_then(Value::as_bool) == Some(true);
    explicit || effort || include
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    const CATALOG: &str = r#"
[[providers]]
name = "alpha"
display_name = "Alpha AI"
wire = "openai"
base_url = "http://localhost:1/v1"
api_key_env = "K"
[[providers]]
name = "beta"
wire = "openai"
base_url = "http://localhost:1/v1"
api_key_env = "K"
[[models]]
id = "a/m"
name = "M"
aliases = ["m"]
context_length = 1000
max_output_tokens = 100
supported_parameters = ["tools", "temperature", "max_tokens"]
input_modalities = ["text", "image"]
[[models.endpoints]]
provider = "alpha"
upstream_model = "m1"
pricing = { prompt = "0.000001", completion = "0.000002", discount = "0.5" }
[[models.endpoints]]
provider = "beta"
upstream_model = "m2"
supported_parameters = ["temperature", "max_tokens"]
input_modalities = ["text"]
pricing = { prompt = "0.000003", completion = "0.000004", request = "0.01" }
"#;

    fn catalog() -> Catalog {
        Catalog::parse(CATALOG, "t.toml", &|_| Some("k".into())).unwrap()
    }

    fn parse(v: Value) -> Result<ProviderPreferences, PreferenceError> {
        ProviderPreferences::parse(Some(&v), &catalog())
    }

    #[test]
    fn absent_object_means_defaults() {
        let p = ProviderPreferences::parse(None, &catalog()).unwrap();
        assert!(p.allow_fallbacks);
        assert_eq!(p, ProviderPreferences::default());
        assert_eq!(parse(Value::Null).unwrap(), ProviderPreferences::default());
    }

    #[test]
    fn names_resolve_to_catalog_providers() {
        let p =
            parse(json!({"order": ["Alpha AI", "BETA"], "only": ["alpha"], "ignore": []})).unwrap();
        assert_eq!(p.order, vec!["alpha", "beta"]);
        assert_eq!(p.only, vec!["alpha"]);
    }

    #[test]
    fn errors_name_the_field() {
        let field = |v: Value| parse(v).unwrap_err().field;
        assert_eq!(field(json!("cheap")), "provider");
        assert_eq!(
            field(json!({"quantizations": ["fp8"]})),
            "provider.quantizations"
        );
        assert_eq!(
            field(json!({"order": ["alpha", "nope"]})),
            "provider.order[1]"
        );
        assert_eq!(field(json!({"sort": "cheapest"})), "provider.sort");
        assert_eq!(
            field(json!({"allow_fallbacks": "yes"})),
            "provider.allow_fallbacks"
        );
        assert_eq!(
            field(json!({"data_collection": "maybe"})),
            "provider.data_collection"
        );
        assert_eq!(
            field(json!({"max_price": {"prompt": -1}})),
            "provider.max_price.prompt"
        );
        assert_eq!(
            field(json!({"max_price": {"prompt": "x"}})),
            "provider.max_price.prompt"
        );
        assert_eq!(
            field(json!({"max_price": {"tokens": 1}})),
            "provider.max_price.tokens"
        );
        assert_eq!(field(json!({"max_price": 3})), "provider.max_price");
        assert_eq!(field(json!({"only": "alpha"})), "provider.only");
    }

    #[test]
    fn max_price_is_per_million_tokens_after_discount() {
        let c = catalog();
        let m = c.model("a/m").unwrap();
        let (alpha, beta) = (&m.endpoints[0], &m.endpoints[1]);
        // alpha charges 0.5 and 1.0 $/M after its 50% discount.
        let p = parse(json!({"max_price": {"prompt": 0.5, "completion": "1"}})).unwrap();
        assert!(p.max_price.admits(alpha));
        assert!(!p.max_price.admits(beta));
        let p = parse(json!({"max_price": {"prompt": 0.4}})).unwrap();
        assert!(!p.max_price.admits(alpha));
        let p = parse(json!({"max_price": {"request": 0.001}})).unwrap();
        assert!(p.max_price.admits(alpha) && !p.max_price.admits(beta));
    }

    #[test]
    fn variants_resolve_and_unknown_ones_are_errors() {
        let c = catalog();
        let (m, v) = resolve_model(&c, "m:floor").unwrap();
        assert_eq!((m.id.as_str(), v), ("a/m", Some(Variant::Floor)));
        assert_eq!(
            resolve_model(&c, "a/m:nitro").unwrap().1,
            Some(Variant::Nitro)
        );
        assert_eq!(resolve_model(&c, "a/m").unwrap().1, None);
        assert_eq!(
            resolve_model(&c, "a/m:free").unwrap_err(),
            ModelNameError::UnknownVariant("free".into())
        );
        assert_eq!(
            resolve_model(&c, "x/y:floor").unwrap_err(),
            ModelNameError::Unknown
        );
    }

    fn request(v: Value) -> ChatRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn needs_follow_the_request() {
        let c = catalog();
        let m = c.model("a/m").unwrap();
        let (alpha, beta) = (&m.endpoints[0], &m.endpoints[1]);
        let plain = Needs::of(&request(
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        ));
        assert_eq!(plain, Needs::default());

        let tools = Needs::of(&request(json!({
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f"}}], "temperature": 0.2
        })));
        assert_eq!(tools.missing_capability(alpha), None);
        assert_eq!(tools.missing_capability(beta), Some("tools"));

        let image = Needs::of(&request(json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]})));
        assert_eq!(image.missing_capability(alpha), None);
        assert_eq!(image.missing_capability(beta), Some("image"));

        let schema = Needs::of(&request(
            json!({"messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}),
        ));
        assert_eq!(schema.missing_capability(alpha), Some("structured_outputs"));
        let object = Needs::of(&request(
            json!({"messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_object"}}),
        ));
        assert_eq!(
            object.missing_capability(alpha),
            None,
            "json_object is not a hard need"
        );
        assert!(!object.all_parameters_supported(alpha));

        let reasoning = Needs::of(&request(
            json!({"messages": [{"role": "user", "content": "hi"}],
            "reasoning": {"effort": "high"}}),
        ));
        assert_eq!(reasoning.missing_capability(alpha), Some("reasoning"));
        let off = Needs::of(&request(
            json!({"messages": [{"role": "user", "content": "hi"}],
            "reasoning": {"enabled": false}}),
        ));
        assert_eq!(off.missing_capability(alpha), None);

        let params = Needs::of(&request(
            json!({"messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.1, "max_tokens": 5, "frequency_penalty": 0.5}),
        ));
        assert_eq!(
            params
                .parameters
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            vec!["frequency_penalty", "max_tokens", "temperature"]
        );
        assert!(!params.all_parameters_supported(alpha));
    }
}

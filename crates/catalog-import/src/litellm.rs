//! LiteLLM's model price map (`model_prices_and_context_window_backup.json` in the `litellm`
//! package): one JSON object per provider model with per-token prices, limits and capability
//! flags. Each entry whose `litellm_provider` feeds a catalog provider becomes an [`Offer`].

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::decimal;
use crate::naming::{self, ModelName};
use crate::overrides::{Overrides, ProviderSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Chat,
    Embedding,
}

/// Capabilities the price map declares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    pub tools: bool,
    pub tool_choice: bool,
    pub response_schema: bool,
    pub reasoning: bool,
    pub vision: bool,
    pub pdf: bool,
    pub audio: bool,
}

impl Caps {
    pub fn supported_parameters(&self, kind: Kind) -> Vec<String> {
        if kind == Kind::Embedding {
            return Vec::new();
        }
        let mut p = vec!["max_tokens", "temperature", "top_p", "stop"];
        if self.tools {
            p.push("tools");
        }
        if self.tools || self.tool_choice {
            p.push("tool_choice");
        }
        if self.response_schema {
            p.extend(["response_format", "structured_outputs"]);
        }
        if self.reasoning {
            p.push("reasoning");
        }
        p.sort_unstable();
        p.into_iter().map(str::to_string).collect()
    }

    pub fn input_modalities(&self) -> Vec<String> {
        let mut m = vec!["text"];
        if self.vision {
            m.push("image");
        }
        if self.pdf {
            m.push("file");
        }
        if self.audio {
            m.push("audio");
        }
        m.into_iter().map(str::to_string).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferPrices {
    pub prompt: Decimal,
    pub completion: Decimal,
    pub input_cache_read: Option<Decimal>,
    pub input_cache_write: Option<Decimal>,
}

/// One provider's offer of one model, from one price-map entry.
#[derive(Debug, Clone)]
pub struct Offer {
    pub provider: String,
    pub upstream: String,
    /// The price-map key it came from, for the report and comments.
    pub source_key: String,
    pub kind: Kind,
    pub prices: OfferPrices,
    pub context: u64,
    pub max_output: u64,
    pub caps: Caps,
    pub name: ModelName,
}

/// An entry that was meant for a catalog provider but could not be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub key: String,
    pub reason: String,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    litellm_provider: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    input_cost_per_token: Option<Box<RawValue>>,
    #[serde(default)]
    output_cost_per_token: Option<Box<RawValue>>,
    #[serde(default)]
    cache_read_input_token_cost: Option<Box<RawValue>>,
    #[serde(default)]
    cache_creation_input_token_cost: Option<Box<RawValue>>,
    #[serde(default)]
    max_input_tokens: Option<Box<RawValue>>,
    #[serde(default)]
    max_output_tokens: Option<Box<RawValue>>,
    #[serde(default)]
    max_tokens: Option<Box<RawValue>>,
    #[serde(default)]
    supports_function_calling: Option<bool>,
    #[serde(default)]
    supports_tool_choice: Option<bool>,
    #[serde(default)]
    supports_response_schema: Option<bool>,
    #[serde(default)]
    supports_reasoning: Option<bool>,
    #[serde(default)]
    supports_vision: Option<bool>,
    #[serde(default)]
    supports_pdf_input: Option<bool>,
    #[serde(default)]
    supports_audio_input: Option<bool>,
}

/// Reads the price map. Entries of providers the catalog does not ship are ignored; entries of
/// shipped providers that cannot be imported are returned with the reason.
pub fn offers(json: &str, overrides: &Overrides) -> Result<(Vec<Offer>, Vec<Rejected>), String> {
    let map: HashMap<String, Box<RawValue>> =
        serde_json::from_str(json).map_err(|e| format!("not a LiteLLM price map: {e}"))?;
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let skip: Vec<String> = overrides
        .import
        .skip
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let mut offers = Vec::new();
    let mut rejected = Vec::new();
    for key in keys {
        if key == "sample_spec" {
            continue;
        }
        let Ok(entry) = serde_json::from_str::<Entry>(map[key].get()) else {
            continue; // not an entry of the documented shape
        };
        let Some(source) = entry.litellm_provider.as_deref() else {
            continue;
        };
        let Some(spec) = overrides.provider_for_source(source) else {
            continue;
        };
        let kind = match entry.mode.as_deref() {
            Some("chat") => Kind::Chat,
            Some("embedding") => Kind::Embedding,
            _ => continue,
        };
        let Some(upstream) = upstream_id(key, source, spec) else {
            continue; // another region, a commitment tier, a deployment path
        };
        let lower = upstream.to_ascii_lowercase();
        if skip.iter().any(|s| lower.contains(s.as_str()))
            || overrides
                .import
                .skip_ids
                .contains(&format!("{}:{upstream}", spec.name))
        {
            continue;
        }
        if kind == Kind::Embedding && !["openai", "azure", "gemini"].contains(&spec.wire.as_str()) {
            continue; // no embeddings adapter for this wire
        }
        let reject = |reason: String| Rejected {
            key: key.clone(),
            reason,
        };
        match offer(key, &entry, spec, kind, upstream) {
            Ok(Some(o)) => offers.push(o),
            Ok(None) => {}
            Err(reason) => rejected.push(reject(reason)),
        }
    }
    Ok((offers, rejected))
}

fn offer(
    key: &str,
    entry: &Entry,
    spec: &ProviderSpec,
    kind: Kind,
    upstream: String,
) -> Result<Option<Offer>, String> {
    let price = |v: &Option<Box<RawValue>>| -> Result<Option<Decimal>, String> {
        match v.as_deref().map(RawValue::get) {
            None | Some("null") => Ok(None),
            Some(text) => decimal::price(text).map(Some),
        }
    };
    let count = |v: &Option<Box<RawValue>>| -> Result<Option<u64>, String> {
        match v.as_deref().map(RawValue::get) {
            None | Some("null") => Ok(None),
            Some(text) => decimal::count(text).map(Some),
        }
    };
    let Some(prompt) = price(&entry.input_cost_per_token)? else {
        return Err("no input price".into());
    };
    let completion = match (price(&entry.output_cost_per_token)?, kind) {
        (Some(c), _) => c,
        (None, Kind::Embedding) => Decimal::ZERO,
        (None, Kind::Chat) => return Err("no output price".into()),
    };
    if kind == Kind::Chat && prompt.is_zero() && completion.is_zero() {
        return Err("listed at zero (a free or experimental tier, not a published price)".into());
    }
    let context = count(&entry.max_input_tokens)?
        .or(count(&entry.max_tokens)?)
        .filter(|c| *c > 0)
        .ok_or("no context length")?;
    let max_output = match kind {
        Kind::Embedding => 0,
        Kind::Chat => count(&entry.max_output_tokens)?
            .or(count(&entry.max_tokens)?)
            .filter(|m| *m > 0)
            .unwrap_or(context)
            .min(context),
    };
    let Some(name) = naming::parse(&upstream, spec.wire == "bedrock") else {
        return Err(format!("cannot tell which model '{upstream}' is"));
    };
    let flag = |f: Option<bool>| f.unwrap_or(false);
    Ok(Some(Offer {
        provider: spec.name.clone(),
        source_key: key.to_string(),
        kind,
        prices: OfferPrices {
            prompt,
            completion,
            input_cache_read: price(&entry.cache_read_input_token_cost)?,
            input_cache_write: price(&entry.cache_creation_input_token_cost)?,
        },
        context,
        max_output,
        caps: Caps {
            tools: flag(entry.supports_function_calling),
            tool_choice: flag(entry.supports_tool_choice),
            response_schema: flag(entry.supports_response_schema),
            reasoning: flag(entry.supports_reasoning),
            vision: flag(entry.supports_vision),
            pdf: flag(entry.supports_pdf_input),
            audio: flag(entry.supports_audio_input) && spec.wire != "anthropic",
        },
        name,
        upstream,
    }))
}

/// The id the provider's API takes, from a price-map key: `together_ai/meta-llama/X` →
/// `meta-llama/X`; `bedrock/us-east-1/deepseek.v3.2` → `deepseek.v3.2` when the provider signs
/// for us-east-1 (other regions and commitment tiers are other offers); `azure/gpt-4o` →
/// `gpt-4o` (not `azure/eu/...` data-zone deployments).
fn upstream_id(key: &str, source: &str, spec: &ProviderSpec) -> Option<String> {
    let family = source.split('-').next().unwrap_or(source);
    let family = family.strip_suffix("_converse").unwrap_or(family);
    let mut id = key;
    for prefix in [source, family] {
        if let Some(rest) = id.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) {
            id = rest;
            break;
        }
    }
    match spec.wire.as_str() {
        "bedrock" => match id.split_once('/') {
            None => Some(id.to_string()),
            Some((region, rest)) => (Some(region) == spec.region.as_deref() && !rest.contains('/'))
                .then(|| rest.to_string()),
        },
        "azure" => (!id.contains('/')).then(|| id.to_string()),
        "vertex" => (!id.contains('/')).then(|| id.to_string()),
        _ => Some(match &spec.upstream_prefix {
            Some(prefix) if !id.starts_with(prefix.as_str()) => format!("{prefix}{id}"),
            _ => id.to_string(),
        }),
    }
    .filter(|s| !s.is_empty())
}

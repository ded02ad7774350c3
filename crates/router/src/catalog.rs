//! The catalog: providers (wire format, base URL, key, data policy) and models with their
//! provider endpoints and prices. Loaded from TOML, validated as a whole; an invalid file is
//! rejected with the file, the entry and the reason.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use infron_billing::Prices;
use secrecy::SecretString;
use serde::Deserialize;
use thiserror::Error;

#[derive(Debug, Error)]
#[error("catalog {file}: {entry}: {reason}")]
pub struct CatalogError {
    pub file: String,
    pub entry: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Wire {
    Openai,
    Anthropic,
    Gemini,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    #[default]
    Chat,
    Embedding,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DataPolicy {
    #[serde(default)]
    pub training: bool,
    #[serde(default)]
    pub retains_prompts: bool,
    #[serde(default)]
    pub retention_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    providers: Vec<ProviderEntry>,
    #[serde(default)]
    models: Vec<ModelEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderEntry {
    name: String,
    #[serde(default)]
    display_name: Option<String>,
    wire: Wire,
    base_url: String,
    api_key_env: String,
    #[serde(default)]
    max_tokens_field: Option<String>,
    #[serde(default)]
    unsupported_parameters: Vec<String>,
    #[serde(default)]
    data_policy: DataPolicy,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelEntry {
    id: String,
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
    context_length: u64,
    max_output_tokens: u64,
    #[serde(default)]
    input_modalities: Vec<String>,
    #[serde(default)]
    supported_parameters: Vec<String>,
    #[serde(default)]
    kind: ModelKind,
    endpoints: Vec<EndpointEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointEntry {
    provider: String,
    upstream_model: String,
    #[serde(default)]
    context_length: Option<u64>,
    #[serde(default)]
    max_output_tokens: Option<u64>,
    pricing: Prices,
}

/// Which field carries the output-token limit on an OpenAI-compatible provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxTokensField {
    MaxTokens,
    MaxCompletionTokens,
}

pub struct Provider {
    pub name: String,
    pub display_name: String,
    pub wire: Wire,
    pub base_url: String,
    pub api_key_env: String,
    /// None when the environment variable is unset; such a provider's endpoints fail with a
    /// configuration error that operators see in the logs and clients see as a 502.
    pub api_key: Option<SecretString>,
    pub max_tokens_field: MaxTokensField,
    pub unsupported_parameters: HashSet<String>,
    pub data_policy: DataPolicy,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("wire", &self.wire)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct Endpoint {
    pub provider: Arc<Provider>,
    pub upstream_model: String,
    pub context_length: u64,
    pub max_output_tokens: u64,
    pub prices: Prices,
}

#[derive(Debug)]
pub struct Model {
    pub id: String,
    pub name: String,
    pub aliases: Vec<String>,
    pub context_length: u64,
    pub max_output_tokens: u64,
    pub input_modalities: Vec<String>,
    pub supported_parameters: Vec<String>,
    pub kind: ModelKind,
    pub endpoints: Vec<Arc<Endpoint>>,
}

#[derive(Debug, Default)]
pub struct Catalog {
    pub providers: Vec<Arc<Provider>>,
    pub models: Vec<Arc<Model>>,
    by_name: HashMap<String, usize>,
}

impl Catalog {
    /// Loads and validates a catalog file. `${VAR}` in base URLs is expanded from `env`.
    pub fn load(
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Catalog, CatalogError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| CatalogError {
            file: file.clone(),
            entry: "file".into(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, &file, env)
    }

    pub fn parse(
        text: &str,
        file: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Catalog, CatalogError> {
        let err = |entry: String, reason: String| CatalogError {
            file: file.to_string(),
            entry,
            reason,
        };
        let raw: CatalogFile = toml::from_str(text).map_err(|e| {
            err(
                "syntax".into(),
                e.message().to_string() + &span_note(text, e.span()),
            )
        })?;

        let mut providers: HashMap<String, Arc<Provider>> = HashMap::new();
        let mut provider_list = Vec::new();
        for p in raw.providers {
            let entry = format!("provider '{}'", p.name);
            if !is_slug(&p.name) {
                return Err(err(
                    entry,
                    "name must be lowercase letters, digits and '-'".into(),
                ));
            }
            let base_url = expand_vars(&p.base_url, env).map_err(|r| err(entry.clone(), r))?;
            let base_url = base_url.trim_end_matches('/').to_string();
            if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                return Err(err(
                    entry,
                    format!("base_url '{base_url}' must start with http:// or https://"),
                ));
            }
            let max_tokens_field =
                match p.max_tokens_field.as_deref() {
                    None | Some("max_tokens") => MaxTokensField::MaxTokens,
                    Some("max_completion_tokens") => MaxTokensField::MaxCompletionTokens,
                    Some(other) => return Err(err(
                        entry,
                        format!(
                            "max_tokens_field '{other}' is not max_tokens or max_completion_tokens"
                        ),
                    )),
                };
            if p.wire != Wire::Openai
                && (p.max_tokens_field.is_some() || !p.unsupported_parameters.is_empty())
            {
                return Err(err(
                    entry,
                    "max_tokens_field and unsupported_parameters apply to the openai wire only"
                        .into(),
                ));
            }
            let api_key = env(&p.api_key_env)
                .filter(|v| !v.is_empty())
                .map(SecretString::from);
            let provider = Arc::new(Provider {
                display_name: p.display_name.unwrap_or_else(|| p.name.clone()),
                name: p.name.clone(),
                wire: p.wire,
                base_url,
                api_key_env: p.api_key_env,
                api_key,
                max_tokens_field,
                unsupported_parameters: p.unsupported_parameters.into_iter().collect(),
                data_policy: p.data_policy,
            });
            if providers.insert(p.name.clone(), provider.clone()).is_some() {
                return Err(err(entry, "defined twice".into()));
            }
            provider_list.push(provider);
        }

        let mut catalog = Catalog {
            providers: provider_list,
            ..Default::default()
        };
        for m in raw.models {
            let entry = format!("model '{}'", m.id);
            let valid_id =
                m.id.split_once('/')
                    .is_some_and(|(a, s)| is_slug_ish(a) && is_slug_ish(s));
            if !valid_id {
                return Err(err(entry, "id must have the form author/slug".into()));
            }
            if m.endpoints.is_empty() {
                return Err(err(entry, "has no endpoints".into()));
            }
            if m.context_length == 0 || (m.kind == ModelKind::Chat && m.max_output_tokens == 0) {
                return Err(err(
                    entry,
                    "context_length and (for chat models) max_output_tokens must be positive"
                        .into(),
                ));
            }
            for modality in &m.input_modalities {
                if !["text", "image", "file", "audio"].contains(&modality.as_str()) {
                    return Err(err(entry, format!("unknown input modality '{modality}'")));
                }
            }
            let mut endpoints = Vec::new();
            for (i, e) in m.endpoints.into_iter().enumerate() {
                let entry = format!("model '{}' endpoint {} ({})", m.id, i + 1, e.provider);
                let provider = providers.get(&e.provider).ok_or_else(|| {
                    err(entry.clone(), format!("unknown provider '{}'", e.provider))
                })?;
                e.pricing
                    .validate()
                    .map_err(|r| err(entry.clone(), r.to_string()))?;
                if e.upstream_model.trim().is_empty() {
                    return Err(err(entry, "upstream_model is empty".into()));
                }
                endpoints.push(Arc::new(Endpoint {
                    provider: provider.clone(),
                    upstream_model: e.upstream_model,
                    context_length: e.context_length.unwrap_or(m.context_length),
                    max_output_tokens: e.max_output_tokens.unwrap_or(m.max_output_tokens),
                    prices: e.pricing,
                }));
            }
            let model = Arc::new(Model {
                id: m.id.clone(),
                name: m.name,
                aliases: m.aliases,
                context_length: m.context_length,
                max_output_tokens: m.max_output_tokens,
                input_modalities: if m.input_modalities.is_empty() {
                    vec!["text".into()]
                } else {
                    m.input_modalities
                },
                supported_parameters: m.supported_parameters,
                kind: m.kind,
                endpoints,
            });
            let index = catalog.models.len();
            for name in std::iter::once(&model.id).chain(model.aliases.iter()) {
                if catalog.by_name.insert(name.clone(), index).is_some() {
                    return Err(err(
                        entry.clone(),
                        format!("id or alias '{name}' is used twice"),
                    ));
                }
            }
            catalog.models.push(model);
        }
        Ok(catalog)
    }

    /// Resolves a model id or alias; a `:variant` suffix is not part of the id.
    pub fn model(&self, name: &str) -> Option<&Arc<Model>> {
        self.by_name.get(name).map(|&i| &self.models[i])
    }
}

fn span_note(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(r) => {
            let line = text[..r.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_slug_ish(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

fn expand_vars(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed ${{ in '{s}'"))?;
        let var = &after[..end];
        let value = env(var)
            .ok_or_else(|| format!("environment variable {var} (used in base_url) is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const GOOD: &str = r#"
[[providers]]
name = "p1"
wire = "openai"
base_url = "${BASE}/v1/"
api_key_env = "P1_KEY"
[[models]]
id = "a/m"
name = "M"
aliases = ["m"]
context_length = 1000
max_output_tokens = 100
[[models.endpoints]]
provider = "p1"
upstream_model = "m-up"
pricing = { prompt = "0.000001", completion = "0.000002" }
"#;

    fn env(k: &str) -> Option<String> {
        match k {
            "BASE" => Some("http://localhost:9".into()),
            "P1_KEY" => Some("secret".into()),
            _ => None,
        }
    }

    #[test]
    fn loads_and_resolves_aliases() {
        let c = Catalog::parse(GOOD, "t.toml", &env).unwrap();
        assert_eq!(c.model("m").unwrap().id, "a/m");
        let e = &c.model("a/m").unwrap().endpoints[0];
        assert_eq!(e.provider.base_url, "http://localhost:9/v1");
        assert!(e.provider.api_key.is_some());
    }

    #[test]
    fn errors_name_file_entry_and_reason() {
        let bad = GOOD.replace(
            "provider = \"p1\"\nupstream",
            "provider = \"nope\"\nupstream",
        );
        let e = Catalog::parse(&bad, "t.toml", &env).unwrap_err();
        assert_eq!(e.file, "t.toml");
        assert!(e.entry.contains("a/m"), "{e}");
        assert!(e.reason.contains("unknown provider 'nope'"), "{e}");

        let float_price = GOOD.replace("\"0.000001\"", "0.000001");
        assert!(Catalog::parse(&float_price, "t.toml", &env).is_err());
        let too_fine = GOOD.replace("\"0.000001\"", "\"0.0000000000001\"");
        assert!(Catalog::parse(&too_fine, "t.toml", &env)
            .unwrap_err()
            .reason
            .contains("decimal places"));
        let unknown_field = GOOD.replace("aliases", "alias");
        assert!(Catalog::parse(&unknown_field, "t.toml", &env).is_err());
        let missing_var = GOOD.replace("${BASE}", "${NOPE}");
        assert!(Catalog::parse(&missing_var, "t.toml", &env)
            .unwrap_err()
            .reason
            .contains("NOPE"));
    }
}

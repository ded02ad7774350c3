//! The catalog: providers (wire format, base URL, key, data policy) and models with their
//! provider endpoints and prices. Loaded from TOML, validated as a whole; an invalid file is
//! rejected with the file, the entry and the reason.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use infron_billing::Prices;
use secrecy::{ExposeSecret, SecretString};
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
    /// AWS Bedrock Converse / ConverseStream, signed with SigV4.
    Bedrock,
    /// Google Vertex AI: Gemini (`generateContent`) and Anthropic (`rawPredict`) publishers,
    /// with a service-account key exchanged for an OAuth token.
    Vertex,
    /// Azure OpenAI: deployment URLs, `api-version`, the `api-key` header.
    Azure,
}

impl Wire {
    pub fn as_str(self) -> &'static str {
        match self {
            Wire::Openai => "openai",
            Wire::Anthropic => "anthropic",
            Wire::Gemini => "gemini",
            Wire::Bedrock => "bedrock",
            Wire::Vertex => "vertex",
            Wire::Azure => "azure",
        }
    }

    /// Wires whose request body is OpenAI's own, so the OpenAI quirks apply.
    fn is_openai_shaped(self) -> bool {
        matches!(self, Wire::Openai | Wire::Azure)
    }
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
    /// Bedrock: the AWS region requests are signed for. Vertex: the location in the path.
    #[serde(default)]
    region: Option<String>,
    /// Azure: the `api-version` query parameter.
    #[serde(default)]
    api_version: Option<String>,
    /// Bedrock: the variable holding the access key id (`api_key_env` holds the secret key).
    #[serde(default)]
    access_key_id_env: Option<String>,
    /// Bedrock: the variable holding a session token, for temporary credentials.
    #[serde(default)]
    session_token_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelEntry {
    id: String,
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    context_length: u64,
    max_output_tokens: u64,
    #[serde(default)]
    input_modalities: Option<Vec<String>>,
    #[serde(default)]
    supported_parameters: Option<Vec<String>>,
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
    /// Overrides the model's list for this endpoint (a provider may lack tools or JSON schema).
    #[serde(default)]
    supported_parameters: Option<Vec<String>>,
    #[serde(default)]
    input_modalities: Option<Vec<String>>,
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
    /// configuration error that operators see in the logs and clients see as a 502. For Bedrock
    /// it is the AWS secret access key; for Vertex a service-account key (its JSON, or the path
    /// of a file holding it).
    pub api_key: Option<SecretString>,
    pub max_tokens_field: MaxTokensField,
    pub unsupported_parameters: HashSet<String>,
    pub data_policy: DataPolicy,
    /// Bedrock's signing region, Vertex's location.
    pub region: Option<String>,
    /// Azure's `api-version`.
    pub api_version: Option<String>,
    /// The OpenAI wire's chat URL and `Authorization` header, made once at load (per request
    /// they cost a URL parse and a header validation).
    pub chat_url: Option<reqwest::Url>,
    pub bearer: Option<reqwest::header::HeaderValue>,
    /// Bedrock: the access key id and, for temporary credentials, the session token.
    pub access_key_id: Option<String>,
    pub access_key_id_env: Option<String>,
    pub session_token: Option<SecretString>,
}

impl Provider {
    /// Whether every credential the wire needs is present in the environment.
    pub fn is_configured(&self) -> bool {
        self.api_key.is_some() && (self.wire != Wire::Bedrock || self.access_key_id.is_some())
    }

    /// The variables an operator must set for this provider, for log lines.
    pub fn credential_vars(&self) -> String {
        match &self.access_key_id_env {
            Some(id) => format!("{id} and {}", self.api_key_env),
            None => self.api_key_env.clone(),
        }
    }
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("wire", &self.wire)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
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
    /// Request parameters this endpoint honours (the endpoint's list, else the model's). `None`
    /// when neither declares one: such an endpoint is not filtered by parameters.
    pub supported_parameters: Option<HashSet<String>>,
    /// Input modalities (`text`, `image`, `file`, `audio`), declared the same way.
    pub input_modalities: Option<HashSet<String>>,
    /// `provider/upstream_model`: the name health is kept under, shared by every model that
    /// routes to the same upstream deployment.
    pub key: String,
}

impl Endpoint {
    pub fn supports_parameter(&self, name: &str) -> bool {
        self.supported_parameters
            .as_ref()
            .is_none_or(|p| p.contains(name))
    }

    pub fn accepts_modality(&self, modality: &str) -> bool {
        modality == "text"
            || self
                .input_modalities
                .as_ref()
                .is_none_or(|m| m.contains(modality))
    }
}

#[derive(Debug)]
pub struct Model {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
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
            let max_tokens_field = match p.max_tokens_field.as_deref() {
                None | Some("max_tokens") => MaxTokensField::MaxTokens,
                Some("max_completion_tokens") => MaxTokensField::MaxCompletionTokens,
                Some(other) => {
                    return Err(err(
                        entry,
                        format!(
                            "max_tokens_field '{other}' is not max_tokens or max_completion_tokens"
                        ),
                    ))
                }
            };
            if !p.wire.is_openai_shaped()
                && (p.max_tokens_field.is_some() || !p.unsupported_parameters.is_empty())
            {
                return Err(err(
                    entry,
                    "max_tokens_field and unsupported_parameters apply to the openai and azure wires only"
                        .into(),
                ));
            }
            check_wire_settings(&p).map_err(|r| err(entry.clone(), r))?;
            let var = |name: &str| env(name).filter(|v| !v.is_empty());
            let api_key = var(&p.api_key_env).map(SecretString::from);
            let access_key_id_env = (p.wire == Wire::Bedrock).then(|| {
                p.access_key_id_env
                    .clone()
                    .unwrap_or_else(|| "AWS_ACCESS_KEY_ID".into())
            });
            let access_key_id = access_key_id_env.as_deref().and_then(var);
            let session_token = p
                .session_token_env
                .as_deref()
                .and_then(var)
                .map(SecretString::from);
            let chat_url = reqwest::Url::parse(&format!("{base_url}/chat/completions")).ok();
            let bearer = api_key.as_ref().and_then(|k| {
                let mut v = reqwest::header::HeaderValue::from_str(&format!(
                    "Bearer {}",
                    k.expose_secret()
                ))
                .ok()?;
                v.set_sensitive(true);
                Some(v)
            });
            let provider = Arc::new(Provider {
                chat_url,
                bearer,
                display_name: p.display_name.unwrap_or_else(|| p.name.clone()),
                name: p.name.clone(),
                wire: p.wire,
                base_url,
                api_key_env: p.api_key_env,
                api_key,
                max_tokens_field,
                unsupported_parameters: p.unsupported_parameters.into_iter().collect(),
                data_policy: p.data_policy,
                region: p.region,
                api_version: p.api_version,
                access_key_id,
                access_key_id_env,
                session_token,
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
            check_modalities(m.input_modalities.as_deref()).map_err(|r| err(entry.clone(), r))?;
            check_parameters(m.supported_parameters.as_deref())
                .map_err(|r| err(entry.clone(), r))?;
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
                check_modalities(e.input_modalities.as_deref())
                    .map_err(|r| err(entry.clone(), r))?;
                check_parameters(e.supported_parameters.as_deref())
                    .map_err(|r| err(entry.clone(), r))?;
                if e.context_length == Some(0) || e.max_output_tokens == Some(0) {
                    return Err(err(
                        entry,
                        "context_length and max_output_tokens overrides must be positive".into(),
                    ));
                }
                let key = format!("{}/{}", provider.name, e.upstream_model);
                if endpoints.iter().any(|x: &Arc<Endpoint>| x.key == key) {
                    return Err(err(entry, format!("endpoint '{key}' is listed twice")));
                }
                endpoints.push(Arc::new(Endpoint {
                    provider: provider.clone(),
                    context_length: e.context_length.unwrap_or(m.context_length),
                    max_output_tokens: e.max_output_tokens.unwrap_or(m.max_output_tokens),
                    prices: e.pricing,
                    supported_parameters: e
                        .supported_parameters
                        .or_else(|| m.supported_parameters.clone())
                        .map(|p| p.into_iter().collect()),
                    input_modalities: e
                        .input_modalities
                        .or_else(|| m.input_modalities.clone())
                        .map(|p| p.into_iter().collect()),
                    upstream_model: e.upstream_model,
                    key,
                }));
            }
            let model = Arc::new(Model {
                id: m.id.clone(),
                name: m.name,
                description: m.description.filter(|d| !d.trim().is_empty()),
                aliases: m.aliases,
                context_length: m.context_length,
                max_output_tokens: m.max_output_tokens,
                input_modalities: match m.input_modalities {
                    Some(list) if !list.is_empty() => list,
                    _ => vec!["text".into()],
                },
                supported_parameters: m.supported_parameters.unwrap_or_default(),
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

    /// The health key of every endpoint, each once, in catalog order.
    pub fn endpoint_keys(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        self.models
            .iter()
            .flat_map(|m| m.endpoints.iter())
            .filter(|e| seen.insert(e.key.as_str()))
            .map(|e| e.key.clone())
            .collect()
    }
}

/// The settings each wire needs, and only those.
fn check_wire_settings(p: &ProviderEntry) -> Result<(), String> {
    let region_ok = p.region.as_deref().is_some_and(|r| {
        !r.is_empty()
            && r.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    });
    match p.wire {
        Wire::Bedrock | Wire::Vertex if !region_ok => {
            return Err(format!(
                "the {} wire needs region = \"...\" (lowercase letters, digits, '-')",
                p.wire.as_str()
            ))
        }
        Wire::Azure if p.api_version.as_deref().is_none_or(str::is_empty) => {
            return Err("the azure wire needs api_version = \"...\"".into())
        }
        _ => {}
    }
    if p.region.is_some() && !matches!(p.wire, Wire::Bedrock | Wire::Vertex) {
        return Err("region applies to the bedrock and vertex wires only".into());
    }
    if p.api_version.is_some() && p.wire != Wire::Azure {
        return Err("api_version applies to the azure wire only".into());
    }
    if (p.access_key_id_env.is_some() || p.session_token_env.is_some()) && p.wire != Wire::Bedrock {
        return Err(
            "access_key_id_env and session_token_env apply to the bedrock wire only".into(),
        );
    }
    Ok(())
}

fn check_modalities(list: Option<&[String]>) -> Result<(), String> {
    for modality in list.unwrap_or_default() {
        if !["text", "image", "file", "audio"].contains(&modality.as_str()) {
            return Err(format!("unknown input modality '{modality}'"));
        }
    }
    Ok(())
}

fn check_parameters(list: Option<&[String]>) -> Result<(), String> {
    for p in list.unwrap_or_default() {
        let ok = !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(format!(
                "supported parameter '{p}' must be a lowercase parameter name"
            ));
        }
    }
    Ok(())
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
        // `${VAR:-default}`: the default when VAR is unset or empty, as in a POSIX shell.
        let (var, default) = match after[..end].split_once(":-") {
            Some((v, d)) => (v, Some(d)),
            None => (&after[..end], None),
        };
        let value = match (env(var).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => v,
            (None, Some(d)) => d.to_string(),
            (None, None) => {
                return Err(format!(
                    "environment variable {var} (used in base_url) is not set"
                ))
            }
        };
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
    fn endpoints_inherit_or_override_capabilities() {
        let with_lists = GOOD.replace(
            "max_output_tokens = 100\n",
            "max_output_tokens = 100\nsupported_parameters = [\"tools\", \"max_tokens\"]\ninput_modalities = [\"text\", \"image\"]\n",
        ) + r#"
[[models.endpoints]]
provider = "p1"
upstream_model = "m-other"
supported_parameters = ["max_tokens"]
input_modalities = ["text"]
context_length = 500
pricing = { prompt = "0.000001", completion = "0.000002", discount = "0.1" }
"#;
        let c = Catalog::parse(&with_lists, "t.toml", &env).unwrap();
        let m = c.model("a/m").unwrap();
        let (inherits, overrides) = (&m.endpoints[0], &m.endpoints[1]);
        assert!(inherits.supports_parameter("tools") && inherits.accepts_modality("image"));
        assert!(!overrides.supports_parameter("tools") && !overrides.accepts_modality("image"));
        assert!(overrides.accepts_modality("text"));
        assert_eq!(
            (overrides.context_length, inherits.context_length),
            (500, 1000)
        );
        assert_eq!(overrides.key, "p1/m-other");

        // Nothing declared: nothing is filtered.
        let plain = Catalog::parse(GOOD, "t.toml", &env).unwrap();
        let e = &plain.model("a/m").unwrap().endpoints[0];
        assert!(e.supports_parameter("tools") && e.accepts_modality("audio"));

        let bad = with_lists.replace(
            "input_modalities = [\"text\"]\ncontext",
            "input_modalities = [\"smell\"]\ncontext",
        );
        let err = Catalog::parse(&bad, "t.toml", &env).unwrap_err();
        assert!(
            err.entry.contains("endpoint 2") && err.reason.contains("smell"),
            "{err}"
        );
        let twice = with_lists.replace("m-other", "m-up");
        assert!(Catalog::parse(&twice, "t.toml", &env)
            .unwrap_err()
            .reason
            .contains("listed twice"));
    }

    #[test]
    fn wires_take_their_own_settings_only() {
        let provider = |wire: &str, extra: &str| {
            format!(
                "[[providers]]\nname = \"p\"\nwire = \"{wire}\"\nbase_url = \"https://x\"\napi_key_env = \"K\"\n{extra}\n"
            )
        };
        let env = |k: &str| match k {
            "K" => Some("secret".to_string()),
            "AWS_ACCESS_KEY_ID" => Some("AKID".to_string()),
            _ => None,
        };
        let ok = |text: String| Catalog::parse(&text, "t.toml", &env);
        let c = ok(provider("bedrock", "region = \"us-east-1\"")).unwrap();
        let p = &c.providers[0];
        assert_eq!(p.access_key_id.as_deref(), Some("AKID"));
        assert!(p.is_configured() && p.session_token.is_none());
        assert!(ok(provider("bedrock", ""))
            .unwrap_err()
            .reason
            .contains("region"));
        assert!(ok(provider("vertex", "region = \"us-east5\"")).is_ok());
        assert!(ok(provider("azure", ""))
            .unwrap_err()
            .reason
            .contains("api_version"));
        let azure = ok(provider(
            "azure",
            "api_version = \"2024-10-21\"\nmax_tokens_field = \"max_completion_tokens\"",
        ))
        .unwrap();
        assert_eq!(
            azure.providers[0].max_tokens_field,
            MaxTokensField::MaxCompletionTokens
        );
        assert!(ok(provider("openai", "region = \"us-east-1\"")).is_err());
        assert!(ok(provider(
            "vertex",
            "region = \"us-east5\"\napi_version = \"1\""
        ))
        .is_err());
        assert!(ok(provider("anthropic", "access_key_id_env = \"X\"")).is_err());
        // Without the access key id, a Bedrock provider is present but not configured.
        let no_id = Catalog::parse(&provider("bedrock", "region = \"us-east-1\""), "t", &|k| {
            (k == "K").then(|| "secret".to_string())
        })
        .unwrap();
        assert!(!no_id.providers[0].is_configured());
        assert_eq!(
            no_id.providers[0].credential_vars(),
            "AWS_ACCESS_KEY_ID and K"
        );
    }

    #[test]
    fn base_url_variables_may_have_defaults() {
        let with_default = GOOD.replace("${BASE}/v1/", "${UNSET:-https://fallback.invalid}/v1");
        let c = Catalog::parse(&with_default, "t.toml", &env).unwrap();
        assert_eq!(c.providers[0].base_url, "https://fallback.invalid/v1");
        let set = GOOD.replace("${BASE}", "${BASE:-https://unused.invalid}");
        let c = Catalog::parse(&set, "t.toml", &env).unwrap();
        assert_eq!(c.providers[0].base_url, "http://localhost:9/v1");
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

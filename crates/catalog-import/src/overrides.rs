//! The manual overrides file (`config/catalog-overrides.toml`): the providers the catalog
//! ships (wire, base URL, credentials variables, data policy, and which price-list entries feed
//! them), nicknames the name rules cannot guess, renames, and per-model patches. What it says
//! always wins over the imported price lists.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    #[serde(default)]
    pub import: ImportSettings,
    #[serde(default)]
    pub providers: Vec<ProviderSpec>,
    /// `"provider:upstream_model" = "author/slug"`: ids the name rules would get wrong
    /// (provider nicknames such as Groq's `llama-3.3-70b-versatile`).
    #[serde(default)]
    pub canonical: BTreeMap<String, String>,
    /// `"computed id" = "catalog id"`: spellings the catalog keeps for compatibility.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    #[serde(default)]
    pub models: Vec<ModelPatch>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportSettings {
    /// Price-list entries whose provider id contains any of these (case-insensitive) are not
    /// imported: fine-tunes, audio and realtime variants, search and computer-use tools.
    #[serde(default)]
    pub skip: Vec<String>,
    /// `"provider:upstream_model"` entries not imported: ids a provider's API does not take, or
    /// mislabelled in the price list.
    #[serde(default)]
    pub skip_ids: Vec<String>,
    /// Display names of authors, for models without an OpenRouter name.
    #[serde(default)]
    pub authors: BTreeMap<String, String>,
}

/// A provider as written to the catalog, plus where its prices come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    pub name: String,
    pub display_name: String,
    pub wire: String,
    pub base_url: String,
    pub api_key_env: String,
    #[serde(default)]
    pub max_tokens_field: Option<String>,
    #[serde(default)]
    pub unsupported_parameters: Vec<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub access_key_id_env: Option<String>,
    #[serde(default)]
    pub session_token_env: Option<String>,
    pub data_policy: DataPolicySpec,
    /// Why the data policy is what it is (written as a comment).
    #[serde(default)]
    pub data_policy_note: Option<String>,
    /// LiteLLM `litellm_provider` values whose entries are this provider's endpoints.
    #[serde(default)]
    pub litellm: Vec<String>,
    /// Prepended to price-map ids that lack it (Fireworks' `accounts/fireworks/models/`).
    #[serde(default)]
    pub upstream_prefix: Option<String>,
    /// Authors whose models this provider makes (its endpoint is the model's reference for
    /// context length and capabilities).
    #[serde(default)]
    pub first_party: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataPolicySpec {
    pub training: bool,
    pub retains_prompts: bool,
    #[serde(default)]
    pub retention_days: Option<u32>,
}

/// Changes to one model after import. A patch naming a model the import did not produce
/// creates it (it then needs `name`, limits and endpoints).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPatch {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Added to the imported aliases.
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub context_length: Option<u64>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    #[serde(default)]
    pub input_modalities: Option<Vec<String>>,
    #[serde(default)]
    pub supported_parameters: Option<Vec<String>>,
    #[serde(default)]
    pub kind: Option<String>,
    /// Drop the model from the catalog.
    #[serde(default)]
    pub remove: bool,
    /// Providers whose endpoints are dropped from this model.
    #[serde(default)]
    pub remove_endpoints: Vec<String>,
    /// Endpoints replacing the imported one of the same provider, or added.
    #[serde(default)]
    pub endpoints: Vec<EndpointPatch>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    pub provider: String,
    pub upstream_model: String,
    #[serde(default)]
    pub context_length: Option<u64>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    #[serde(default)]
    pub input_modalities: Option<Vec<String>>,
    #[serde(default)]
    pub supported_parameters: Option<Vec<String>>,
    /// USD per token as decimal strings, the catalog's own keys.
    pub pricing: BTreeMap<String, String>,
    /// Where the prices come from (written as a comment).
    #[serde(default)]
    pub source: Option<String>,
}

impl Overrides {
    pub fn parse(text: &str) -> Result<Overrides, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    pub fn provider_for_source(&self, litellm_provider: &str) -> Option<&ProviderSpec> {
        self.providers
            .iter()
            .find(|p| p.litellm.iter().any(|s| s == litellm_provider))
    }

    pub fn provider(&self, name: &str) -> Option<&ProviderSpec> {
        self.providers.iter().find(|p| p.name == name)
    }
}

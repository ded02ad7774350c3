//! Embeddings: OpenAI's `/embeddings` request and response shape, served by OpenAI-compatible
//! providers (`POST {base}/embeddings`, passed through) and by Gemini
//! (`POST {base}/v1beta/models/{model}:batchEmbedContents`, translated).
//!
//! Token counting: OpenAI-compatible providers report `usage.prompt_tokens`. Gemini reports
//! `usageMetadata.promptTokenCount` in some versions and nothing in others; when it is absent
//! each input counts as ceil(UTF-8 bytes / 4) tokens (at least 1), the same typical-case rule
//! the gateway uses for chat prompts whose usage never came. Token-array inputs cannot be sent
//! to Gemini (it takes text only) and are answered with a 400.

use std::sync::Arc;

use base64::Engine;
use infron_billing::Usage;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::http::{self, untranslatable};
use super::{gemini, FailureKind, ProviderClient, ProviderError};
use crate::catalog::{Endpoint, Wire};

/// OpenAI's embeddings request.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmbeddingRequest {
    #[schema(example = "openai/text-embedding-3-small")]
    pub model: String,
    /// Not empty, without empty items.
    pub input: EmbeddingInput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<EncodingFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Provider-specific fields, forwarded to OpenAI-compatible providers only.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

/// A string, an array of strings, a token array or an array of token arrays.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum EmbeddingInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenBatches(Vec<Vec<u32>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    Float,
    Base64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbeddingResponse {
    #[serde(default = "list")]
    pub object: String,
    pub data: Vec<Embedding>,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub usage: EmbeddingUsage,
}

fn list() -> String {
    "list".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Embedding {
    #[serde(default = "embedding")]
    #[schema(required = true, example = "embedding")]
    pub object: String,
    #[serde(default)]
    #[schema(required = true)]
    pub index: u32,
    pub embedding: Vector,
}

fn embedding() -> String {
    "embedding".into()
}

/// A vector as floats, or (with `encoding_format: base64`) as base64 of little-endian f32s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Vector {
    Float(Vec<f64>),
    Base64(String),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
}

impl EmbeddingRequest {
    /// Checks what the types cannot: `Err((param, message))` for a 400.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let empty = match &self.input {
            EmbeddingInput::Text(t) => t.is_empty(),
            EmbeddingInput::Texts(v) => v.is_empty() || v.iter().any(String::is_empty),
            EmbeddingInput::Tokens(v) => v.is_empty(),
            EmbeddingInput::TokenBatches(v) => v.is_empty() || v.iter().any(Vec::is_empty),
        };
        if empty {
            return Err((
                "input",
                "'input' must be a non-empty string or array, without empty items".into(),
            ));
        }
        if self.dimensions == Some(0) {
            return Err(("dimensions", "'dimensions' must be at least 1".into()));
        }
        if self.model.trim().is_empty() {
            return Err(("model", "'model' is required".into()));
        }
        Ok(())
    }

    /// The inputs as text, or None for token arrays.
    pub fn texts(&self) -> Option<Vec<&str>> {
        match &self.input {
            EmbeddingInput::Text(t) => Some(vec![t.as_str()]),
            EmbeddingInput::Texts(v) => Some(v.iter().map(String::as_str).collect()),
            _ => None,
        }
    }

    /// An upper bound on input tokens (a byte-level tokenizer never emits more tokens than
    /// bytes; token arrays are counted as given), for the reservation.
    pub fn prompt_token_bound(&self) -> u64 {
        match &self.input {
            EmbeddingInput::Text(t) => t.len() as u64 + 1,
            EmbeddingInput::Texts(v) => v.iter().map(|t| t.len() as u64 + 1).sum(),
            EmbeddingInput::Tokens(v) => v.len() as u64,
            EmbeddingInput::TokenBatches(v) => v.iter().map(|b| b.len() as u64).sum(),
        }
    }

    /// Typical-case input tokens: ceil(bytes / 4), at least one per input.
    pub fn prompt_token_estimate(&self) -> u64 {
        match self.texts() {
            Some(texts) => texts
                .iter()
                .map(|t| (t.len() as u64).div_ceil(4).max(1))
                .sum(),
            None => self.prompt_token_bound(),
        }
    }
}

/// Base64 of little-endian f32s, as OpenAI encodes vectors.
pub fn encode_base64(values: &[f64]) -> String {
    let bytes: Vec<u8> = values
        .iter()
        .flat_map(|v| (*v as f32).to_le_bytes())
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The `batchEmbedContents` body for a text request.
pub fn gemini_body(endpoint: &Endpoint, request: &EmbeddingRequest) -> Result<Value, String> {
    let texts = request.texts().ok_or(
        "input: token arrays cannot be sent to Gemini embedding models; send text instead",
    )?;
    let model = endpoint
        .upstream_model
        .strip_prefix("models/")
        .unwrap_or(&endpoint.upstream_model);
    let requests: Vec<Value> = texts
        .iter()
        .map(|t| {
            let mut r =
                json!({"model": format!("models/{model}"), "content": {"parts": [{"text": t}]}});
            if let Some(d) = request.dimensions {
                r["outputDimensionality"] = json!(d);
            }
            r
        })
        .collect();
    Ok(json!({ "requests": requests }))
}

/// A `batchEmbedContents` response in OpenAI's shape, with its usage.
pub fn parse_gemini(
    body: &Value,
    request: &EmbeddingRequest,
    model: &str,
) -> Result<(EmbeddingResponse, Usage), String> {
    let embeddings = body
        .get("embeddings")
        .and_then(Value::as_array)
        .ok_or("no embeddings array")?;
    let base64 = request.encoding_format == Some(EncodingFormat::Base64);
    let mut data = Vec::with_capacity(embeddings.len());
    for (i, e) in embeddings.iter().enumerate() {
        let values: Vec<f64> = e
            .get("values")
            .and_then(Value::as_array)
            .ok_or("an embedding has no values")?
            .iter()
            .map(|v| v.as_f64().ok_or("a value is not a number"))
            .collect::<Result<_, _>>()?;
        data.push(Embedding {
            object: "embedding".into(),
            index: u32::try_from(i).unwrap_or(u32::MAX),
            embedding: if base64 {
                Vector::Base64(encode_base64(&values))
            } else {
                Vector::Float(values)
            },
        });
    }
    let tokens = body
        .pointer("/usageMetadata/promptTokenCount")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| request.prompt_token_estimate());
    let response = EmbeddingResponse {
        object: "list".into(),
        data,
        model: model.to_string(),
        usage: EmbeddingUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    };
    Ok((response, prompt_usage(tokens)))
}

fn prompt_usage(tokens: u64) -> Usage {
    Usage {
        prompt_tokens: tokens,
        ..Default::default()
    }
}

impl ProviderClient {
    /// Embeds the request's inputs at one endpoint; the usage is what billing prices.
    pub async fn embed(
        &self,
        endpoint: &Arc<Endpoint>,
        request: &EmbeddingRequest,
    ) -> Result<(EmbeddingResponse, Usage), ProviderError> {
        let provider = endpoint.provider.name.as_str();
        let not_configured = |message: &str| ProviderError {
            provider: provider.to_string(),
            kind: FailureKind::NotConfigured,
            status: None,
            message: message.to_string(),
            retry_after: None,
        };
        let Some(key) = endpoint.provider.api_key.as_ref() else {
            tracing::error!(provider, env = %endpoint.provider.credential_vars(), "provider has no API key configured");
            return Err(not_configured("provider is not configured on this gateway"));
        };
        match endpoint.provider.wire {
            Wire::Openai => {
                let mut body = serde_json::to_value(request).unwrap_or(Value::Null);
                body["model"] = json!(endpoint.upstream_model);
                let builder = self
                    .http()
                    .post(format!("{}/embeddings", endpoint.provider.base_url))
                    .bearer_auth(key.expose_secret())
                    .json(&body);
                let response = http::send(self, endpoint, builder, |s, _| s).await?;
                let body = http::json_body(self, provider, response).await?;
                let mut parsed: EmbeddingResponse = serde_json::from_value(body)
                    .map_err(|e| http::bad_response(provider, &e.to_string()))?;
                if parsed.usage.prompt_tokens == 0 {
                    parsed.usage.prompt_tokens = request.prompt_token_estimate();
                    parsed.usage.total_tokens = parsed.usage.prompt_tokens;
                }
                let usage = prompt_usage(parsed.usage.prompt_tokens);
                Ok((parsed, usage))
            }
            Wire::Gemini => {
                let body =
                    gemini_body(endpoint, request).map_err(|m| untranslatable(endpoint, m))?;
                let builder = self
                    .http()
                    .post(gemini::url(
                        &endpoint.provider.base_url,
                        &endpoint.upstream_model,
                        "batchEmbedContents",
                    ))
                    .header("x-goog-api-key", gemini::api_key(endpoint))
                    .json(&body);
                let response = http::send(self, endpoint, builder, gemini::error_status).await?;
                let body = http::json_body(self, provider, response).await?;
                parse_gemini(&body, request, &endpoint.upstream_model)
                    .map_err(|e| http::bad_response(provider, &e))
            }
            Wire::Azure => {
                let mut body = serde_json::to_value(request).unwrap_or(Value::Null);
                body["model"] = json!(endpoint.upstream_model);
                let builder = self
                    .http()
                    .post(super::azure::url(endpoint, "embeddings"))
                    .header("api-key", key.expose_secret())
                    .json(&body);
                let response = http::send(self, endpoint, builder, |s, _| s).await?;
                let body = http::json_body(self, provider, response).await?;
                let mut parsed: EmbeddingResponse = serde_json::from_value(body)
                    .map_err(|e| http::bad_response(provider, &e.to_string()))?;
                if parsed.usage.prompt_tokens == 0 {
                    parsed.usage.prompt_tokens = request.prompt_token_estimate();
                    parsed.usage.total_tokens = parsed.usage.prompt_tokens;
                }
                let usage = prompt_usage(parsed.usage.prompt_tokens);
                Ok((parsed, usage))
            }
            Wire::Anthropic | Wire::Bedrock | Wire::Vertex => Err(not_configured(
                "this provider's wire format has no embeddings API",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn inputs_parse_in_all_openai_forms() {
        for (input, texts) in [
            (json!("a"), Some(1)),
            (json!(["a", "b"]), Some(2)),
            (json!([1, 2, 3]), None),
            (json!([[1, 2], [3]]), None),
        ] {
            let r: EmbeddingRequest =
                serde_json::from_value(json!({"model": "m", "input": input})).unwrap();
            assert_eq!(r.texts().map(|t| t.len()), texts);
            assert!(r.validate().is_ok());
        }
        let r: EmbeddingRequest =
            serde_json::from_value(json!({"model": "m", "input": []})).unwrap();
        assert_eq!(r.validate().unwrap_err().0, "input");
    }

    #[test]
    fn base64_is_little_endian_f32() {
        // 1.0f32 = 0x3f800000
        assert_eq!(encode_base64(&[1.0]), "AACAPw==");
    }
}

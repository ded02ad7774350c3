//! The settlement record: what the gateway knows of a finished request, queued in the journal
//! and turned into its request-log row and its part of a usage transaction by the writer.
//! Metadata only, never prompt or completion text.

use std::sync::{LazyLock, RwLock};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{BillingError, Prices, Usd};

/// One provider attempt that did not answer, as stored: no provider message (they quote the
/// prompt), only what failed and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedAttempt {
    pub provider: String,
    pub model: String,
    pub upstream_model: String,
    /// HTTP status from the provider, if it answered at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// A fixed vocabulary (`timeout`, `rate_limited`, `bad_request`, ...).
    pub class: String,
    pub latency_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettlementRecord {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    pub account_id: Uuid,
    pub api_key_id: Option<Uuid>,
    /// Start (Unix seconds) of the key's limit period this request counts against, for a key
    /// with a spending limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_period: Option<i64>,
    pub requested_model: String,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub upstream_model: Option<String>,
    pub endpoint_kind: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub cache_write_tokens: i64,
    pub reasoning_tokens: i64,
    /// The usage at the endpoint's prices, before any cap at the hold.
    pub list_cost: Usd,
    pub prices: Option<Prices>,
    pub usage_source: Option<String>,
    pub status: i16,
    pub error_class: Option<String>,
    pub finish_reason: Option<String>,
    pub streamed: bool,
    pub cancelled: bool,
    pub cache_hit: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_attempts: Vec<FailedAttempt>,
    pub latency_ms: Option<i32>,
    pub first_token_ms: Option<i32>,
}

impl SettlementRecord {
    pub fn encode(&self) -> Result<String, BillingError> {
        Ok(serde_json::to_string(self)?)
    }

    pub fn decode(payload: &str) -> Result<SettlementRecord, BillingError> {
        Ok(serde_json::from_str(payload)?)
    }

    /// The request-log row for this record when `charged` was taken from the tenant.
    pub fn to_row(
        &self,
        charged: Usd,
        usage_txn_id: Option<Uuid>,
    ) -> Result<infron_store::request_logs::RequestLogRow, BillingError> {
        let overage = self.list_cost.checked_sub(charged)?;
        Ok(infron_store::request_logs::RequestLogRow {
            id: self.id,
            created_at: self.created_at,
            account_id: self.account_id,
            api_key_id: self.api_key_id,
            requested_model: self.requested_model.clone(),
            model: self.model.clone(),
            provider: self.provider.clone(),
            upstream_model: self.upstream_model.clone(),
            endpoint_kind: self.endpoint_kind.clone(),
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            cached_tokens: self.cached_tokens,
            cache_write_tokens: self.cache_write_tokens,
            reasoning_tokens: self.reasoning_tokens,
            cost: charged.decimal(),
            overage: overage.decimal().max(Decimal::ZERO),
            price_id: self.prices.as_ref().map(price_id),
            usage_source: self.usage_source.clone(),
            status: self.status,
            error_class: self.error_class.clone(),
            finish_reason: self.finish_reason.clone(),
            streamed: self.streamed,
            cancelled: self.cancelled,
            cache_hit: self.cache_hit,
            attempts: if self.failed_attempts.is_empty() {
                None
            } else {
                serde_json::to_value(&self.failed_attempts).ok()
            },
            latency_ms: self.latency_ms,
            first_token_ms: self.first_token_ms,
            completed_at: self.completed_at,
            usage_txn_id,
        })
    }
}

/// The id of a price set: derived from its content (SHA-256 of its JSON), so every instance
/// names the same prices alike without asking Postgres. Remembered per process: a catalog has
/// few distinct price sets and every settlement needs one.
pub fn price_id(prices: &Prices) -> Uuid {
    static KNOWN: LazyLock<RwLock<FxHashMap<Prices, Uuid>>> = LazyLock::new(Default::default);
    if let Some(id) = KNOWN.read().ok().and_then(|m| m.get(prices).copied()) {
        return id;
    }
    let json = serde_json::to_vec(prices).unwrap_or_default();
    let digest = Sha256::digest(&json);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    let id = uuid::Builder::from_custom_bytes(bytes).into_uuid();
    if let Ok(mut m) = KNOWN.write() {
        if m.len() > 100_000 {
            m.clear();
        }
        m.insert(*prices, id);
    }
    id
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn price_ids_depend_on_the_prices_only() {
        let a: Prices =
            serde_json::from_str(r#"{"prompt":"0.000001","completion":"0.000002"}"#).unwrap();
        let b: Prices =
            serde_json::from_str(r#"{"prompt":"0.000001","completion":"0.000002"}"#).unwrap();
        let c: Prices =
            serde_json::from_str(r#"{"prompt":"0.000001","completion":"0.000003"}"#).unwrap();
        assert_eq!(price_id(&a), price_id(&b));
        assert_ne!(price_id(&a), price_id(&c));
    }
}

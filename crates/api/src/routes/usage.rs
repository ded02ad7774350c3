//! The `usage` object returned to clients, with exact cost numbers.

use infron_billing::{CostBreakdown, Usage, Usd};
use serde::Serialize;
use serde_json::value::RawValue;

/// A USD amount serialized as an exact JSON number (never through f64).
pub struct UsdNumber(pub Usd);

impl Serialize for UsdNumber {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = RawValue::from_string(self.0.to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

/// Tokens of a request; with `usage: {"include": true}` also its exact cost in USD.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Usage)]
pub struct UsageOut {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub prompt_tokens_details: PromptDetails,
    pub completion_tokens_details: CompletionDetails,
    /// USD charged (only with `usage: {"include": true}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub cost: Option<UsdNumber>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_details: Option<CostDetailsOut>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PromptDetails {
    pub cached_tokens: u64,
    pub cache_write_tokens: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CompletionDetails {
    pub reasoning_tokens: u64,
}

/// The cost by part, in USD.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CostDetails)]
pub struct CostDetailsOut {
    #[schema(value_type = f64)]
    pub prompt: UsdNumber,
    #[schema(value_type = f64)]
    pub completion: UsdNumber,
    #[schema(value_type = f64)]
    pub cache_read: UsdNumber,
    #[schema(value_type = f64)]
    pub cache_write: UsdNumber,
    #[schema(value_type = f64)]
    pub reasoning: UsdNumber,
    #[schema(value_type = f64)]
    pub request: UsdNumber,
    #[schema(value_type = f64)]
    pub image: UsdNumber,
    #[schema(value_type = f64)]
    pub discount: UsdNumber,
}

impl UsageOut {
    pub fn new(usage: &Usage, cost: &CostBreakdown, include_cost: bool) -> Self {
        UsageOut {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens(),
            prompt_tokens_details: PromptDetails {
                cached_tokens: usage.cached_tokens,
                cache_write_tokens: usage.cache_write_tokens,
            },
            completion_tokens_details: CompletionDetails {
                reasoning_tokens: usage.reasoning_tokens,
            },
            cost: include_cost.then_some(UsdNumber(cost.total)),
            cost_details: include_cost.then_some(CostDetailsOut {
                prompt: UsdNumber(cost.prompt),
                completion: UsdNumber(cost.completion),
                cache_read: UsdNumber(cost.cache_read),
                cache_write: UsdNumber(cost.cache_write),
                reasoning: UsdNumber(cost.reasoning),
                request: UsdNumber(cost.request),
                image: UsdNumber(cost.image),
                discount: UsdNumber(cost.discount),
            }),
        }
    }
}

/// A response or chunk with our usage object attached at the top level.
#[derive(Serialize)]
pub struct WithUsage<'a, T: Serialize> {
    #[serde(flatten)]
    pub inner: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageOut>,
}

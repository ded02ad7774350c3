//! Which endpoints may serve a request, and in what order.

use std::sync::Arc;

use infron_billing::{BillingError, Usd};

use crate::catalog::{Endpoint, Model};

/// Why no endpoint of a model may serve a request (`metadata.availability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    NoEndpoints,
    PrivacyRestricted,
}

impl Unavailable {
    pub fn as_str(self) -> &'static str {
        match self {
            Unavailable::NoEndpoints => "no_endpoints",
            Unavailable::PrivacyRestricted => "privacy_restricted",
        }
    }
}

/// Eligible endpoints of `model`, cheapest first. Endpoints of providers that train on prompts
/// are left out unless the account allows them.
pub fn candidates(model: &Model, allow_training: bool) -> Result<Vec<Arc<Endpoint>>, Unavailable> {
    if model.endpoints.is_empty() {
        return Err(Unavailable::NoEndpoints);
    }
    let mut eligible: Vec<Arc<Endpoint>> = model
        .endpoints
        .iter()
        .filter(|e| allow_training || !e.provider.data_policy.training)
        .cloned()
        .collect();
    if eligible.is_empty() {
        return Err(Unavailable::PrivacyRestricted);
    }
    eligible.sort_by_key(|e| e.prices.prompt.decimal() + e.prices.completion.decimal());
    Ok(eligible)
}

/// The hold for a request: the largest maximum cost among the endpoints that may serve it.
pub fn max_cost(
    endpoints: &[Arc<Endpoint>],
    prompt_tokens: u64,
    max_output: Option<u64>,
    images: u64,
) -> Result<Usd, BillingError> {
    let mut worst = Usd::ZERO;
    for e in endpoints {
        let out = max_output
            .unwrap_or(e.max_output_tokens)
            .min(e.max_output_tokens.max(1));
        let c = e.prices.max_cost(prompt_tokens, out, images)?;
        worst = worst.max(c);
    }
    Ok(worst)
}

use thiserror::Error;

use crate::Usd;

#[derive(Debug, Error)]
pub enum BillingError {
    #[error("insufficient credits: this request may cost up to ${needed}, and ${available} is available")]
    InsufficientCredits { needed: Usd, available: Usd },
    #[error("this key's spending limit is reached: this request may cost up to ${needed}, and ${remaining} of the limit remains")]
    KeyLimitReached { needed: Usd, remaining: Usd },
    /// A per-minute rate limit refused the request; nothing was taken.
    #[error("rate limit reached")]
    RateLimited {
        /// None: this request alone is more than the limit allows in a minute.
        retry_after_ms: Option<i64>,
        states: Vec<infron_store::hot::RateState>,
    },
    /// A dependency is too far behind to take more money safely (503).
    #[error("the gateway cannot take more requests right now: {0}")]
    Busy(String),
    #[error("amount out of range: {0}")]
    AmountOutOfRange(String),
    #[error("unknown account {0}")]
    UnknownAccount(uuid::Uuid),
    #[error(transparent)]
    Store(#[from] infron_store::StoreError),
    #[error("settlement record could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

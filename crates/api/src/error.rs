//! The one place errors become HTTP: OpenAI's error envelope
//! `{"error": {"code", "message", "type", "param", "metadata"}}` with the right status.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use infron_billing::{BillingError, Usd};
use infron_router::{Attempt, ProviderError};
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    InvalidRequest {
        message: String,
        param: Option<String>,
    },
    #[error("{0}")]
    Unauthorized(String),
    #[error("insufficient credits: this request may cost up to ${needed}, and ${available} is available")]
    InsufficientCredits { needed: Usd, available: Usd },
    #[error("this key's spending limit is reached: this request may cost up to ${needed}, and ${remaining} of the limit remains")]
    KeyLimitReached { needed: Usd, remaining: Usd },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// No route has this path and method (no `param`: it is not about a model).
    #[error("no such route; see docs/api.md")]
    NoSuchRoute,
    /// A missing or foreign id of something other than a model (keys, members, generations).
    #[error("{0}")]
    UnknownId(String),
    #[error("{0}")]
    Conflict(String),
    #[error("too many attempts; try again in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    /// A key's or account's per-minute rate limit refused the request.
    #[error("{message}")]
    RateLimited {
        message: String,
        /// None: the request alone is over the limit; retrying will not help.
        retry_after_secs: Option<u64>,
        headers: Vec<(&'static str, String)>,
    },
    #[error("no endpoint of model '{model}' can serve this request ({availability})")]
    NoEligibleEndpoint {
        model: String,
        availability: &'static str,
    },
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{}", .0.message)]
    ProviderRejected(ProviderError),
    #[error("the request timed out")]
    Timeout,
    #[error("all providers failed for this request")]
    AllProvidersFailed(Vec<Attempt>),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::InvalidRequest {
            message: message.into(),
            param: Some(param.into()),
        }
    }

    /// Low-cardinality class for logs and the request log's `error_class`.
    pub fn class(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest { .. } => "invalid_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::InsufficientCredits { .. } => "insufficient_credits",
            ApiError::KeyLimitReached { .. } => "key_limit_reached",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) | ApiError::UnknownId(_) | ApiError::NoSuchRoute => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooManyRequests { .. } | ApiError::RateLimited { .. } => "rate_limited",
            ApiError::NoEligibleEndpoint { .. } => "no_eligible_endpoint",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::ProviderRejected(_) => "provider_rejected",
            ApiError::Timeout => "timeout",
            ApiError::AllProvidersFailed(_) => "all_providers_failed",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest { .. }
            | ApiError::ProviderRejected(_)
            | ApiError::PayloadTooLarge { .. } => "invalid_request_error",
            ApiError::Unauthorized(_) => "authentication_error",
            ApiError::InsufficientCredits { .. } | ApiError::KeyLimitReached { .. } => {
                "insufficient_quota"
            }
            ApiError::Forbidden(_) => "permission_error",
            ApiError::NotFound(_)
            | ApiError::UnknownId(_)
            | ApiError::NoSuchRoute
            | ApiError::NoEligibleEndpoint { .. } => "not_found_error",
            ApiError::Conflict(_) => "conflict_error",
            ApiError::TooManyRequests { .. } | ApiError::RateLimited { .. } => "rate_limit_error",
            ApiError::AllProvidersFailed(a) if providers_rate_limited(a).is_some() => {
                "rate_limit_error"
            }
            ApiError::Timeout => "timeout_error",
            ApiError::AllProvidersFailed(_) => "upstream_error",
            ApiError::Unavailable(_) => "service_unavailable",
            ApiError::Internal(_) => "server_error",
        }
    }

    fn param(&self) -> Value {
        match self {
            ApiError::InvalidRequest { param: Some(p), .. } => json!(p),
            ApiError::NotFound(_) | ApiError::NoEligibleEndpoint { .. } => json!("model"),
            _ => Value::Null,
        }
    }

    fn metadata(&self) -> Value {
        match self {
            ApiError::InsufficientCredits { needed, available } => json!({
                "required": needed.to_string(), "available": available.to_string(),
            }),
            ApiError::KeyLimitReached { needed, remaining } => json!({
                "required": needed.to_string(), "limit_remaining": remaining.to_string(),
            }),
            ApiError::NoEligibleEndpoint { availability, .. } => {
                json!({ "availability": availability })
            }
            ApiError::ProviderRejected(e) => json!({ "provider_name": e.provider }),
            ApiError::TooManyRequests { retry_after_secs } => {
                json!({ "retry_after_seconds": retry_after_secs })
            }
            ApiError::RateLimited {
                retry_after_secs, ..
            } => json!({ "retry_after_seconds": retry_after_secs }),
            ApiError::AllProvidersFailed(attempts) => json!({
                "provider_errors": attempts.iter().filter_map(|a| a.error.as_ref()).collect::<Vec<_>>(),
            }),
            _ => Value::Null,
        }
    }

    pub fn body(&self) -> Value {
        json!({ "error": {
            "code": self.status_code().as_u16(),
            "message": self.to_string(),
            "type": self.kind(),
            "param": self.param(),
            "metadata": self.metadata(),
        }})
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest { .. } | ApiError::ProviderRejected(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::InsufficientCredits { .. } | ApiError::KeyLimitReached { .. } => {
                StatusCode::PAYMENT_REQUIRED
            }
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_)
            | ApiError::UnknownId(_)
            | ApiError::NoSuchRoute
            | ApiError::NoEligibleEndpoint { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyRequests { .. } | ApiError::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::AllProvidersFailed(a) if providers_rate_limited(a).is_some() => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::AllProvidersFailed(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(detail) = self {
            tracing::error!(detail = %detail, "internal error");
        }
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::TooManyRequests { retry_after_secs } => {
                response.insert_header(("Retry-After", retry_after_secs.to_string()));
            }
            ApiError::RateLimited {
                retry_after_secs,
                headers,
                ..
            } => {
                if let Some(s) = retry_after_secs {
                    response.insert_header(("Retry-After", s.to_string()));
                }
                for (name, value) in headers {
                    response.insert_header((*name, value.as_str()));
                }
            }
            ApiError::AllProvidersFailed(a) => {
                if let Some(Some(s)) = providers_rate_limited(a) {
                    response.insert_header(("Retry-After", s.to_string()));
                }
            }
            _ => {}
        }
        response.json(self.body())
    }
}

/// When every provider attempt failed because the provider rate-limited: the shortest
/// `Retry-After` any of them gave (None if none gave one). The client then gets 429, not 502.
pub fn providers_rate_limited(attempts: &[Attempt]) -> Option<Option<u64>> {
    let errors: Vec<&ProviderError> = attempts.iter().filter_map(|a| a.error.as_ref()).collect();
    if errors.is_empty()
        || errors
            .iter()
            .any(|e| e.kind != infron_router::FailureKind::RateLimited)
    {
        return None;
    }
    Some(errors.iter().filter_map(|e| e.retry_after).min())
}

impl From<BillingError> for ApiError {
    fn from(e: BillingError) -> Self {
        match e {
            BillingError::RateLimited {
                retry_after_ms,
                states,
            } => {
                let retry_after_secs = retry_after_ms
                    .map(|ms| u64::try_from(ms.max(0)).unwrap_or(0).div_ceil(1000).max(1));
                let what = states
                    .iter()
                    // The limit that refused: one with too little left, or, when no wait
                    // helps, one this request alone exceeds.
                    .filter(|s| match retry_after_ms {
                        Some(_) => s.remaining < s.limit.cost,
                        None => s.limit.cost > s.limit.per_minute,
                    })
                    .map(|s| {
                        let unit = match s.limit.unit {
                            infron_store::hot::RateUnit::Requests => "requests",
                            infron_store::hot::RateUnit::Tokens => "tokens",
                        };
                        let whose = match s.limit.subject {
                            infron_store::hot::RateSubject::Key(_) => "this key's",
                            infron_store::hot::RateSubject::Account => "the account's",
                        };
                        format!("{whose} limit of {} {unit} per minute", s.limit.per_minute)
                    })
                    .next()
                    .unwrap_or_else(|| "a rate limit".into());
                let message = match retry_after_secs {
                    Some(s) => format!("rate limit reached: {what}; retry in {s} s"),
                    None => format!(
                        "this request alone is over {what}; send fewer tokens (lower max_tokens or the prompt)"
                    ),
                };
                ApiError::RateLimited {
                    message,
                    retry_after_secs,
                    headers: crate::rate_limit::headers(&states),
                }
            }
            BillingError::InsufficientCredits { needed, available } => {
                ApiError::InsufficientCredits { needed, available }
            }
            BillingError::KeyLimitReached { needed, remaining } => {
                ApiError::KeyLimitReached { needed, remaining }
            }
            BillingError::AmountOutOfRange(m) => {
                ApiError::invalid("max_tokens", format!("request cost out of range: {m}"))
            }
            BillingError::Store(s) if s.is_unavailable() => {
                ApiError::Unavailable("a storage dependency is unavailable".into())
            }
            BillingError::Busy(m) => ApiError::Unavailable(format!(
                "the gateway is not taking new requests right now ({m}); retry shortly"
            )),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<infron_store::StoreError> for ApiError {
    fn from(e: infron_store::StoreError) -> Self {
        if e.is_unavailable() {
            ApiError::Unavailable("a storage dependency is unavailable".into())
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}

impl From<infron_accounts::AccountsError> for ApiError {
    fn from(e: infron_accounts::AccountsError) -> Self {
        use infron_accounts::AccountsError as E;
        match e {
            E::Invalid { field, message } => ApiError::invalid(field, message),
            E::Unauthenticated(m) => ApiError::Unauthorized(m),
            E::Forbidden(m) => ApiError::Forbidden(m),
            E::NotFound(what) => ApiError::UnknownId(format!("{what} not found")),
            E::Conflict(m) => ApiError::Conflict(m),
            E::Throttled { retry_after_secs } => ApiError::TooManyRequests { retry_after_secs },
            E::Mail(m) => {
                tracing::error!(error = %m, "email not sent");
                ApiError::Unavailable("the email could not be sent; try again later".into())
            }
            E::Store(s) => s.into(),
            E::Internal(m) => ApiError::Internal(m),
        }
    }
}

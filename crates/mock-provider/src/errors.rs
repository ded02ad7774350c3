//! Error bodies in each provider's own shape.

use crate::ojson::{obj, J, NULL};

use crate::router::Provider;

/// Default message for a status when the behaviour sets none.
pub fn default_message(provider: Provider, status: u16) -> String {
    match (provider, status) {
        (Provider::Anthropic, 529) => "Overloaded".into(),
        (_, 400) => "Invalid request (mock).".into(),
        (_, 401) => "Invalid API key (mock).".into(),
        (_, 403) => "Permission denied (mock).".into(),
        (_, 404) => "Not found (mock).".into(),
        (_, 429) => "Rate limit exceeded (mock).".into(),
        (_, 503) => "The service is temporarily unavailable (mock).".into(),
        (_, 529) => "Overloaded (mock).".into(),
        _ => format!("Mock provider error {status}."),
    }
}

/// OpenAI `error.type` and `error.code` for a status.
fn openai_type_code(status: u16) -> (&'static str, Option<&'static str>) {
    match status {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        404 => ("invalid_request_error", Some("model_not_found")),
        429 => ("requests", Some("rate_limit_exceeded")),
        s if s >= 500 => ("server_error", None),
        _ => ("invalid_request_error", None),
    }
}

/// Anthropic `error.type` for a status.
pub fn anthropic_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

/// Gemini (google.rpc) `error.status` for a status.
fn gemini_status(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "NOT_IMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        s if s >= 500 => "INTERNAL",
        _ => "FAILED_PRECONDITION",
    }
}

/// OpenAI error body: `{"error":{"message","type","param","code"}}`.
pub fn openai(status: u16, message: &str) -> J {
    let (kind, code) = openai_type_code(status);
    obj! {
        "error": obj! {
            "message": message,
            "type": kind,
            "param": NULL,
            "code": code,
        }
    }
}

/// Anthropic error body: `{"type":"error","error":{"type","message"},"request_id"}`.
pub fn anthropic(status: u16, message: &str, request_id: &str) -> J {
    obj! {
        "type": "error",
        "error": obj! {
            "type": anthropic_type(status),
            "message": message,
        },
        "request_id": request_id,
    }
}

/// Gemini error body: `{"error":{"code","message","status"[,"details"]}}`.
pub fn gemini(status: u16, message: &str, retry_after: Option<u64>) -> J {
    let mut error = obj! {
        "code": status,
        "message": message,
        "status": gemini_status(status),
    };
    let mut details = Vec::new();
    if status == 401 {
        details.push(obj! {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": obj! {"service": "generativelanguage.googleapis.com"},
        });
    }
    if let Some(secs) = retry_after {
        details.push(obj! {
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": format!("{secs}s"),
        });
    }
    if !details.is_empty() {
        error.set("details", details);
    }
    obj! { "error": error }
}

/// Bedrock's exception name for a status (sent in `x-amzn-ErrorType`).
pub fn bedrock_exception(status: u16) -> &'static str {
    match status {
        400 => "ValidationException",
        401 | 403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    }
}

/// Bedrock error body: `{"message": ...}` (the exception name is in a header).
pub fn bedrock(message: &str) -> J {
    obj! { "message": message }
}

/// Error body for `provider`.
pub fn body(
    provider: Provider,
    status: u16,
    message: &str,
    retry_after: Option<u64>,
    request_id: &str,
) -> J {
    match provider {
        Provider::OpenAi => openai(status, message),
        Provider::Anthropic => anthropic(status, message, request_id),
        Provider::Gemini => gemini(status, message, retry_after),
        Provider::Bedrock => bedrock(message),
    }
}

/// Status used by `fault: error_after_chunks` (in-stream errors) and for the
/// same fault on non-streaming requests.
pub fn in_stream_status(provider: Provider) -> u16 {
    match provider {
        Provider::OpenAi => 500,
        Provider::Anthropic => 529,
        Provider::Gemini => 503,
        Provider::Bedrock => 503,
    }
}

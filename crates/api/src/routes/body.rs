//! Reading and parsing request bodies: a size limit that answers 413, and JSON errors that
//! name the field.

use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub async fn read(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::invalid("body", format!("could not read the request body: {e}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Refuses a body that does not declare itself JSON. A request without `Content-Type` is read as
/// JSON (some clients omit it); one that names another type (`text/plain`, a form) is refused
/// rather than guessed at. Parameters such as `charset=utf-8` are allowed.
pub fn require_json(req: &HttpRequest) -> Result<(), ApiError> {
    let Some(value) = req.headers().get(actix_web::http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/json") => Ok(()),
        Some(other) if other.starts_with("application/") && other.ends_with("+json") => Ok(()),
        _ => Err(ApiError::invalid(
            "content-type",
            "the request body must be sent as 'Content-Type: application/json'",
        )),
    }
}

/// Parses a JSON body into `T`: exactly one JSON value, nothing but whitespace after it.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::invalid(
            "body",
            "request body is empty; expected a JSON object",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::invalid("body", format!("request body is not valid JSON: {inner}"))
        } else if path == "." {
            ApiError::invalid("body", format!("invalid request: {inner}"))
        } else {
            ApiError::invalid(path.clone(), format!("invalid value for '{path}': {inner}"))
        }
    })?;
    de.end().map_err(|e| {
        ApiError::invalid(
            "body",
            format!("request body has data after the JSON value: {e}"),
        )
    })?;
    Ok(value)
}

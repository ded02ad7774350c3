//! Operator routes under `/api/v1/admin`, behind `Authorization: Bearer <INFRON_ADMIN_TOKEN>`.
//! Without that setting they do not exist (404), so an unconfigured gateway exposes nothing.
//!
//! `POST /api/v1/admin/catalog/reload` re-reads the catalog file; an invalid file is refused
//! with its error and the catalog in effect keeps serving.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use infron_router::CatalogError;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no such route; see docs/api.md")]
    NotEnabled,
    #[error("send the admin token as 'Authorization: Bearer <INFRON_ADMIN_TOKEN>'")]
    MissingToken,
    #[error("the admin token is not valid")]
    WrongToken,
    #[error("the new catalog is invalid; the catalog in effect is unchanged: {0}")]
    InvalidCatalog(CatalogError),
    #[error("the catalog file cannot be read; the catalog in effect is unchanged: {0}")]
    UnreadableCatalog(CatalogError),
}

impl AdminError {
    fn kind(&self) -> &'static str {
        match self {
            AdminError::NotEnabled => "not_found_error",
            AdminError::MissingToken => "authentication_error",
            AdminError::WrongToken => "permission_error",
            AdminError::InvalidCatalog(_) => "invalid_request_error",
            AdminError::UnreadableCatalog(_) => "server_error",
        }
    }

    fn metadata(&self) -> Value {
        match self {
            AdminError::InvalidCatalog(e) | AdminError::UnreadableCatalog(e) => json!({
                "file": e.file, "entry": e.entry, "reason": e.reason,
            }),
            _ => Value::Null,
        }
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            AdminError::NotEnabled => StatusCode::NOT_FOUND,
            AdminError::MissingToken => StatusCode::UNAUTHORIZED,
            AdminError::WrongToken => StatusCode::FORBIDDEN,
            AdminError::InvalidCatalog(_) => StatusCode::BAD_REQUEST,
            AdminError::UnreadableCatalog(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(json!({ "error": {
            "code": self.status_code().as_u16(),
            "message": self.to_string(),
            "type": self.kind(),
            "param": Value::Null,
            "metadata": self.metadata(),
        }}))
    }
}

/// Checks the bearer token in constant time.
fn authorize(req: &HttpRequest, state: &AppState) -> Result<(), AdminError> {
    let Some(expected) = &state.settings.admin_token else {
        return Err(AdminError::NotEnabled);
    };
    let presented = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(AdminError::MissingToken)?;
    let expected = expected.expose_secret().as_bytes();
    if presented.len() == expected.len() && bool::from(presented.as_bytes().ct_eq(expected)) {
        Ok(())
    } else {
        Err(AdminError::WrongToken)
    }
}

#[utoipa::path(
    post, path = "/api/v1/admin/catalog/reload", tag = "Operator",
    summary = "Reload the catalog file (as SIGHUP does)",
    description = "Reads the catalog again and swaps it in when it is valid; an invalid file changes nothing (400). 404 while `INFRON_ADMIN_TOKEN` is not set.",
    responses((status = 200, description = "Reloaded", body = crate::openapi::schemas::CatalogReloaded)),
    security(("admin_token" = [])),
)]
pub async fn reload_catalog(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    let state = state.into_inner();
    let reloading = state.clone();
    let result = web::block(move || reloading.reload_catalog())
        .await
        .map_err(|e| {
            AdminError::UnreadableCatalog(CatalogError {
                file: state.settings.catalog_path.display().to_string(),
                entry: "reload".into(),
                reason: e.to_string(),
            })
        })?;
    match result {
        Ok(catalog) => {
            let endpoints: usize = catalog.models.iter().map(|m| m.endpoints.len()).sum();
            tracing::info!(models = catalog.models.len(), endpoints, "catalog reloaded");
            Ok(HttpResponse::Ok().json(json!({ "data": {
                "reloaded": true,
                "file": state.settings.catalog_path.display().to_string(),
                "providers": catalog.providers.len(),
                "models": catalog.models.len(),
                "endpoints": endpoints,
            }})))
        }
        // The file itself could not be read: an operator problem on this host, not the file's.
        Err(e) if e.entry == "file" => {
            tracing::error!(error = %e, "catalog reload failed");
            Err(AdminError::UnreadableCatalog(e))
        }
        Err(e) => {
            tracing::error!(error = %e, "catalog reload refused");
            Err(AdminError::InvalidCatalog(e))
        }
    }
}

//! Google's OAuth token endpoint for service accounts (`POST /token`, the JWT-bearer grant of
//! RFC 7523) and the bearer-token check of Vertex routes. The assertion must be an RS256 JWT
//! signed by the configured account's key, issued to it (`iss`), for the token endpoint
//! (`aud` ending in `/token`), with the cloud-platform scope and at most an hour of validity.
//! Faults: queue a behaviour for the model name `oauth2-token` (an HTTP status answers in
//! OAuth's error shape), or call `MockProvider::expire_tokens`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use serde_json::Value;
use sha2::Sha256;

use crate::ojson::{obj, J};
use crate::router::{percent_decode, Ctx, Provider};
use crate::server::Outcome;
use crate::util;

/// Behaviours for the token endpoint are keyed by this name.
pub const TOKEN_MODEL: &str = "oauth2-token";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const LIFETIME_SECS: u64 = 3599;

fn oauth_error(ctx: &Ctx, status: u16, error: &str, description: &str) -> Outcome {
    let body = obj! {"error": error, "error_description": description};
    ctx.json(
        Provider::Gemini,
        status,
        &body,
        None,
        &util::random_id("req_"),
    )
}

fn form(raw: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(raw)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Why an assertion is refused, if it is.
fn verify(ctx: &Ctx, assertion: &str) -> Result<(), &'static str> {
    let Some(account) = ctx.shared.config.google.as_ref() else {
        return Ok(());
    };
    let mut parts = assertion.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(
            "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe.",
        );
    };
    let decode = |p: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()
    };
    let (Some(header), Some(claims)) = (decode(h), decode(c)) else {
        return Err("Invalid JWT: malformed.");
    };
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err("Invalid JWT: unsupported algorithm.");
    }
    let key = RsaPublicKey::from_public_key_pem(&account.public_key_pem)
        .map_err(|_| "mock misconfigured: bad public key")?;
    let signature = URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| Signature::try_from(b.as_slice()).ok())
        .ok_or("Invalid JWT Signature.")?;
    VerifyingKey::<Sha256>::new(key)
        .verify(format!("{h}.{c}").as_bytes(), &signature)
        .map_err(|_| "Invalid JWT Signature.")?;
    let str_of = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default();
    if str_of("iss") != account.client_email {
        return Err("Invalid JWT: the issuer is not the service account.");
    }
    if !str_of("aud").ends_with("/token") {
        return Err("Invalid JWT: the audience is not the token endpoint.");
    }
    if !str_of("scope").split(' ').any(|s| s == SCOPE) {
        return Err("Invalid OAuth scope or ID token audience provided.");
    }
    let n = |k: &str| claims.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (iat, exp, now) = (n("iat"), n("exp"), util::now_secs());
    if exp <= now || exp < iat || exp - iat > 3600 || iat > now + 300 {
        return Err("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.");
    }
    Ok(())
}

/// `POST /token`.
pub(crate) fn token(ctx: &Ctx) -> Outcome {
    let b = ctx.shared.resolve(TOKEN_MODEL, None);
    if let Some(status) = b.error_status() {
        let message = b.error_message.as_deref().unwrap_or("token endpoint fault");
        return oauth_error(ctx, status, "internal_failure", message);
    }
    let form = form(&ctx.raw);
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("grant_type") != Some(GRANT_TYPE) {
        return oauth_error(ctx, 400, "unsupported_grant_type", "Invalid grant_type.");
    }
    let Some(assertion) = get("assertion") else {
        return oauth_error(
            ctx,
            400,
            "invalid_request",
            "Missing required parameter: assertion",
        );
    };
    if let Err(why) = verify(ctx, assertion) {
        return oauth_error(ctx, 400, "invalid_grant", why);
    }
    let token = util::random_id("ya29.mock-");
    ctx.shared
        .issue_token(&token, util::now_secs() + LIFETIME_SECS);
    let body: J = obj! {
        "access_token": token,
        "expires_in": LIFETIME_SECS,
        "token_type": "Bearer",
    };
    ctx.json(Provider::Gemini, 200, &body, None, &util::random_id("req_"))
}

/// `None` when a Vertex request carries a live token issued here (or no account is
/// configured), else Google's 401.
pub(crate) fn check_bearer(ctx: &Ctx, _provider: Provider) -> Option<Outcome> {
    ctx.shared.config.google.as_ref()?;
    let token = ctx
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "));
    if token.is_some_and(|t| ctx.shared.token_valid(t, util::now_secs())) {
        return None;
    }
    Some(ctx.error(
        Provider::Gemini,
        401,
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
    ))
}

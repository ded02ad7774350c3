//! Google service-account keys exchanged for OAuth access tokens, for Vertex AI.
//!
//! The provider's credential variable holds a service-account key (the JSON Google issues, or
//! the path of a file holding it). The gateway signs a JWT assertion with the key (RS256;
//! `iss` = the account's email, `scope` = cloud-platform, `aud` = the key's `token_uri`, one
//! hour), posts it to `token_uri` (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`,
//! RFC 7523) and uses the access token it gets back as a bearer token until a minute before it
//! expires. One refresh runs at a time per provider; concurrent requests wait for it. A token
//! Vertex rejects (401) is dropped, so the next attempt fetches a fresh one. Neither the key nor
//! the token ever reaches a log line, an error message or a `Debug` output.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::http;
use super::{FailureKind, ProviderClient, ProviderError};
use crate::catalog::Endpoint;

pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Assertions are valid for the longest time Google accepts.
const ASSERTION_LIFETIME_SECS: i64 = 3600;
/// A token is refreshed this long before Google says it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// A parsed service-account key.
pub struct ServiceAccount {
    pub client_email: String,
    pub project_id: String,
    pub token_uri: String,
    key_id: Option<String>,
    key: SigningKey<Sha256>,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("project_id", &self.project_id)
            .field("token_uri", &self.token_uri)
            .field("key", &"<redacted>")
            .finish()
    }
}

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: String,
    project_id: String,
    #[serde(default)]
    private_key_id: Option<String>,
    private_key: String,
    client_email: String,
    #[serde(default)]
    token_uri: Option<String>,
}

impl ServiceAccount {
    /// Parses Google's JSON key. Errors say what is wrong, never what the key holds.
    pub fn parse(json: &str) -> Result<ServiceAccount, String> {
        let file: KeyFile = serde_json::from_str(json)
            .map_err(|e| format!("not a service-account key file ({})", e.classify_name()))?;
        if file.kind != "service_account" {
            return Err(format!(
                "key type is '{}', not 'service_account'",
                file.kind
            ));
        }
        let key = RsaPrivateKey::from_pkcs8_pem(&file.private_key)
            .map_err(|_| "private_key is not a PKCS#8 PEM RSA key".to_string())?;
        Ok(ServiceAccount {
            client_email: file.client_email,
            project_id: file.project_id,
            token_uri: file
                .token_uri
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| DEFAULT_TOKEN_URI.into()),
            key_id: file.private_key_id,
            key: SigningKey::<Sha256>::new(key),
        })
    }

    /// The signed JWT assertion for the token exchange, issued at `now` (Unix seconds).
    pub fn assertion(&self, now: i64) -> String {
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = json!(kid);
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.key.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "invalid JSON"
            }
            serde_json::error::Category::Data => "missing or mistyped fields",
        }
    }
}

struct Token {
    value: SecretString,
    refresh_at: Instant,
}

/// One provider's key and current token.
struct Slot {
    /// SHA-256 of the credential variable's value: a reloaded catalog with another key starts
    /// over.
    fingerprint: [u8; 32],
    account: Option<Arc<ServiceAccount>>,
    token: Option<Token>,
}

/// An access token and the account it belongs to (for the project id).
pub struct Authorized {
    pub token: SecretString,
    pub account: Arc<ServiceAccount>,
}

/// Access tokens per provider, shared by every request of a gateway instance.
#[derive(Default)]
pub struct GoogleTokens {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
}

impl GoogleTokens {
    fn slot(&self, provider: &str, fingerprint: [u8; 32]) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slots
            .entry(provider.to_string())
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(Slot {
                    fingerprint,
                    account: None,
                    token: None,
                }))
            })
            .clone()
    }

    /// A valid access token for `endpoint`'s provider, fetching one if needed.
    pub async fn authorize(
        &self,
        client: &ProviderClient,
        endpoint: &Endpoint,
    ) -> Result<Authorized, ProviderError> {
        let provider = &endpoint.provider;
        let credential = provider
            .api_key
            .as_ref()
            .ok_or_else(|| auth_failure(endpoint, "no service-account key configured"))?;
        let fingerprint: [u8; 32] = Sha256::digest(credential.expose_secret().as_bytes()).into();
        let slot = self.slot(&provider.name, fingerprint);
        let mut slot = slot.lock().await;
        if slot.fingerprint != fingerprint {
            *slot = Slot {
                fingerprint,
                account: None,
                token: None,
            };
        }
        let account = match &slot.account {
            Some(a) => a.clone(),
            None => {
                let a = Arc::new(load(endpoint, credential).await?);
                slot.account = Some(a.clone());
                a
            }
        };
        if let Some(t) = slot
            .token
            .as_ref()
            .filter(|t| Instant::now() < t.refresh_at)
        {
            return Ok(Authorized {
                token: t.value.clone(),
                account,
            });
        }
        let token = exchange(client, endpoint, &account).await?;
        let value = token.value.clone();
        slot.token = Some(token);
        Ok(Authorized {
            token: value,
            account,
        })
    }

    /// Forgets the provider's token (Vertex rejected it), so the next request fetches one.
    pub async fn invalidate(&self, provider: &str) {
        let slot = {
            let slots = self
                .slots
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            slots.get(provider).cloned()
        };
        if let Some(slot) = slot {
            slot.lock().await.token = None;
        }
    }
}

fn auth_failure(endpoint: &Endpoint, why: &str) -> ProviderError {
    tracing::error!(provider = %endpoint.provider.name, env = %endpoint.provider.api_key_env,
        "Vertex credentials unusable: {why}");
    ProviderError {
        provider: endpoint.provider.name.clone(),
        kind: FailureKind::ProviderAuth,
        status: None,
        message: "provider rejected the gateway's credentials".into(),
        retry_after: None,
    }
}

/// The key from the variable: its JSON, or the path of a file holding it.
async fn load(
    endpoint: &Endpoint,
    credential: &SecretString,
) -> Result<ServiceAccount, ProviderError> {
    let value = credential.expose_secret().trim();
    let json = if value.starts_with('{') {
        value.to_string()
    } else {
        tokio::fs::read_to_string(value).await.map_err(|e| {
            auth_failure(
                endpoint,
                &format!("cannot read the key file ({})", e.kind()),
            )
        })?
    };
    ServiceAccount::parse(&json).map_err(|why| auth_failure(endpoint, &why))
}

/// Posts the assertion to the token endpoint.
async fn exchange(
    client: &ProviderClient,
    endpoint: &Endpoint,
    account: &ServiceAccount,
) -> Result<Token, ProviderError> {
    let provider = endpoint.provider.name.as_str();
    let assertion = account.assertion(chrono::Utc::now().timestamp());
    // Both values are URL-safe already (base64url and a fixed string, pre-encoded).
    let body = format!(
        "grant_type={}&assertion={assertion}",
        GRANT_TYPE.replace(':', "%3A")
    );
    let builder = client
        .http()
        .post(&account.token_uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    let response = http::send_raw(client, endpoint, builder).await?;
    if !response.status().is_success() {
        let reply = http::read_error(client, response).await;
        let code = reply
            .body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string();
        tracing::error!(provider, status = reply.status, error = %code,
            "Google token exchange failed; check {}", endpoint.provider.api_key_env);
        // OAuth reports a bad assertion as 400 invalid_grant: the operator's key, not the client.
        return Err(reply.into_failure(
            endpoint,
            |status, _| {
                if status == 400 {
                    401
                } else {
                    status
                }
            },
        ));
    }
    let body = http::json_body(client, provider, response).await?;
    let value = body
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| http::bad_response(provider, "token response without access_token"))?;
    let lifetime = Duration::from_secs(
        body.get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(3600),
    );
    let refresh_in = lifetime.checked_sub(REFRESH_MARGIN).unwrap_or(lifetime / 2);
    Ok(Token {
        value: SecretString::from(value.to_string()),
        refresh_at: Instant::now() + refresh_in,
    })
}

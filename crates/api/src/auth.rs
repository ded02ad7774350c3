//! Bearer-key authentication with an in-process cache, so a warm request never touches the
//! database. Any change to keys or accounts in Postgres bumps the auth revision
//! (`auth_revision`, by trigger) and notifies every instance, which drops its cache
//! (`app::follow_auth_changes`): a disabled key is refused everywhere within a second. The
//! cache TTL only bounds staleness if that watcher cannot reach Postgres.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix_web::{HttpMessage, HttpRequest};
use secrecy::SecretString;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::api_keys::ApiKey;
use crate::error::ApiError;
use infron_accounts::KeyKind;
use infron_billing::limits::{KeyLimit, LimitReset};
use infron_billing::Usd;
use infron_store::PgPool;

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: Uuid,
    pub account_id: Uuid,
    pub key_name: String,
    pub allow_training: bool,
    /// The key's spending limit, if it has one.
    pub limit: Option<KeyLimit>,
    /// When the key stops working; checked on every request, cached or not.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Inference keys call models; management keys administer and are refused on model routes.
    pub kind: KeyKind,
    /// The user who created the key (None for keys made with the CLI).
    pub created_by: Option<Uuid>,
    /// Per-minute rate limits of the key and its account.
    pub rate: crate::rate_limit::CallerLimits,
}

#[derive(Clone)]
enum Cached {
    Valid(Caller),
    /// Unknown or disabled: cached too, so a flood of bad keys cannot hammer Postgres.
    Refused(&'static str),
    /// The key is fine but its account is frozen by an operator: 403.
    Frozen,
}

pub struct KeyCache {
    ttl: Duration,
    entries: RwLock<HashMap<[u8; 32], (Cached, Instant)>>,
    /// Bumped by every `clear`: a lookup that started before a clear must not cache what it
    /// read, or a key disabled while it was reading would stay cached until the TTL.
    generation: AtomicU64,
}

const MAX_ENTRIES: usize = 100_000;

/// How long a key whose cache entry expired may still be trusted while Postgres cannot be
/// reached. No key can be disabled while Postgres is down (the change is made there), and every
/// change made before is in the entry or was announced; so during an outage the gateway keeps
/// serving known keys instead of refusing everyone.
const STALE_FOR: Duration = Duration::from_secs(3600);

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn get(&self, hash: &[u8; 32]) -> Option<Cached> {
        self.get_within(hash, self.ttl)
    }

    fn get_within(&self, hash: &[u8; 32], age: Duration) -> Option<Cached> {
        let map = self.entries.read().ok()?;
        let (c, at) = map.get(hash)?;
        (at.elapsed() < age).then(|| c.clone())
    }

    /// Caches `c` unless the cache was cleared since `generation` was read.
    fn put(&self, hash: [u8; 32], c: Cached, generation: u64) {
        if let Ok(mut map) = self.entries.write() {
            if self.generation() != generation {
                return;
            }
            if map.len() >= MAX_ENTRIES {
                let ttl = self.ttl;
                map.retain(|_, (_, at)| at.elapsed() < ttl.max(STALE_FOR));
                if map.len() >= MAX_ENTRIES {
                    map.clear();
                }
            }
            map.insert(hash, (c, Instant::now()));
        }
    }

    pub fn clear(&self) {
        if let Ok(mut map) = self.entries.write() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            map.clear();
        }
    }
}

pub struct Authenticator {
    pub pg: PgPool,
    pub secret: SecretString,
    pub cache: Arc<KeyCache>,
}

impl Authenticator {
    /// The caller of a model route: an inference key of an account that is not frozen.
    /// Management keys administer; they cannot call models (403).
    pub async fn authenticate(&self, req: &HttpRequest) -> Result<Caller, ApiError> {
        let caller = self.authenticate_any(req).await?;
        if caller.kind.is_management() {
            return Err(ApiError::Forbidden(
                "management keys cannot call models; use an inference key".into(),
            ));
        }
        Ok(caller)
    }

    /// Whether the request carries a bearer token at all (else a session may be used).
    pub fn has_bearer(req: &HttpRequest) -> bool {
        req.headers()
            .contains_key(actix_web::http::header::AUTHORIZATION)
    }

    /// Any valid key, inference or management, of an account that is not frozen.
    pub async fn authenticate_any(&self, req: &HttpRequest) -> Result<Caller, ApiError> {
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        // Anthropic's SDKs send the key as `x-api-key`.
        let api_key = req
            .headers()
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        let token = match (header, api_key) {
            (Some(header), _) => header
                .strip_prefix("Bearer ")
                .or_else(|| header.strip_prefix("bearer "))
                .map(str::trim)
                .ok_or_else(|| {
                    ApiError::Unauthorized("Authorization header must use the Bearer scheme".into())
                })?,
            (None, Some(key)) => key,
            (None, None) => {
                return Err(ApiError::Unauthorized(
                    "missing Authorization header; send 'Authorization: Bearer <key>'".into(),
                ))
            }
        };
        let key = ApiKey::parse(token)
            .ok_or_else(|| ApiError::Unauthorized("malformed API key".into()))?;
        let hash = key.hash(&self.secret);
        let cached = match self.cache.get(&hash) {
            Some(c) => c,
            None => {
                let generation = self.cache.generation();
                match self.lookup(&hash).await {
                    Ok(c) => {
                        self.cache.put(hash, c.clone(), generation);
                        c
                    }
                    Err(ApiError::Unavailable(m)) => {
                        let stale = self
                            .cache
                            .get_within(&hash, STALE_FOR)
                            .ok_or(ApiError::Unavailable(m))?;
                        // Trusted again for a TTL, so the requests behind this one do not each
                        // wait for Postgres to time out.
                        self.cache.put(hash, stale.clone(), generation);
                        stale
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        match cached {
            Cached::Valid(caller) if caller.expires_at.is_some_and(|t| t <= chrono::Utc::now()) => {
                Err(ApiError::Unauthorized("this API key has expired".into()))
            }
            Cached::Valid(caller) => {
                req.extensions_mut()
                    .insert(crate::request_id::KeyHint(key.hint()));
                Ok(caller)
            }
            Cached::Refused(why) => Err(ApiError::Unauthorized(why.into())),
            Cached::Frozen => Err(ApiError::Forbidden(
                "this account is frozen; contact the operator".into(),
            )),
        }
    }

    async fn lookup(&self, hash: &[u8; 32]) -> Result<Cached, ApiError> {
        let Some((row, stored)) = infron_store::keys::find_by_hash(&self.pg, hash).await? else {
            return Ok(Cached::Refused("invalid API key"));
        };
        if !bool::from(stored.as_slice().ct_eq(hash.as_slice())) {
            return Ok(Cached::Refused("invalid API key"));
        }
        if row.disabled {
            return Ok(Cached::Refused("this API key is disabled"));
        }
        if row.expires_at.is_some_and(|t| t <= chrono::Utc::now()) {
            return Ok(Cached::Refused("this API key has expired"));
        }
        let account = infron_store::accounts::get(&self.pg, row.account_id)
            .await?
            .ok_or_else(|| ApiError::Internal(format!("key {} has no account", row.id)))?;
        if account.frozen_at.is_some() {
            return Ok(Cached::Frozen);
        }
        let kind: KeyKind = row
            .kind
            .parse()
            .map_err(|e: String| ApiError::Internal(format!("key {}: {e}", row.id)))?;
        let limit = match row.credit_limit {
            Some(l) => Some(KeyLimit {
                key_id: row.id,
                limit: Usd::new(l).map_err(|e| ApiError::Internal(e.to_string()))?,
                reset: row.limit_reset.as_deref().and_then(LimitReset::parse),
            }),
            None => None,
        };
        Ok(Cached::Valid(Caller {
            key_id: row.id,
            account_id: row.account_id,
            key_name: row.name,
            allow_training: account.allow_training,
            limit,
            expires_at: row.expires_at,
            kind,
            created_by: row.created_by,
            rate: crate::rate_limit::CallerLimits {
                key_rpm: row
                    .rate_limit_rpm
                    .or(account.default_key_rpm)
                    .map(i64::from),
                key_tpm: row.rate_limit_tpm.or(account.default_key_tpm),
                account_rpm: account.rate_limit_rpm.map(i64::from),
                account_tpm: account.rate_limit_tpm,
            },
        }))
    }
}

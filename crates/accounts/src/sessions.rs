//! Sessions of signed-in users and operators, kept in Redis so every instance shares them.
//! The cookie carries a random id; Redis keys it by the id's SHA-256, so neither Redis nor the
//! logs ever hold a usable session id. Each session has its own CSRF token.

use std::time::Duration;

use base64::Engine;
use infron_store::sessions::{SessionRecord, SessionStore};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::error::{AccountsError, Result};

/// Whose session it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    User(Uuid),
    Operator(Uuid),
}

impl Subject {
    fn encode(self) -> String {
        match self {
            Subject::User(id) => format!("user:{id}"),
            Subject::Operator(id) => format!("operator:{id}"),
        }
    }

    fn decode(s: &str) -> Option<Subject> {
        let (kind, id) = s.split_once(':')?;
        let id = Uuid::parse_str(id).ok()?;
        match kind {
            "user" => Some(Subject::User(id)),
            "operator" => Some(Subject::Operator(id)),
            _ => None,
        }
    }
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the cookie's id, hex: how the session is named everywhere but the cookie.
    pub id_hash: String,
    pub subject: Subject,
    /// The account a user acts in; switched with `switch_account`.
    pub account: Option<Uuid>,
    pub csrf: String,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub idle: Duration,
    pub absolute: Duration,
}

#[derive(Clone)]
pub struct Sessions {
    store: SessionStore,
    pub config: SessionConfig,
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// SHA-256 hex of a secret token (session ids, emailed tokens).
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new high-entropy token for a link or a cookie (256 bits).
pub fn new_token() -> String {
    random_token(32)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Sessions {
    pub fn new(store: SessionStore, config: SessionConfig) -> Self {
        Self { store, config }
    }

    /// Starts a new session (always a fresh id: signing in rotates it). Returns the cookie
    /// value and the session.
    pub async fn start(
        &self,
        subject: Subject,
        account: Option<Uuid>,
    ) -> Result<(String, Session)> {
        let id = new_token();
        let id_hash = hex::encode(token_hash(&id));
        let now = chrono::Utc::now().timestamp_millis();
        let record = SessionRecord {
            subject: subject.encode(),
            account: account.map(|a| a.to_string()).unwrap_or_default(),
            csrf: random_token(24),
            created_ms: now,
            absolute_ms: now + ms(self.config.absolute),
        };
        self.store
            .create(&id_hash, &record, ms(self.config.idle))
            .await?;
        Ok((
            id,
            Session {
                id_hash,
                subject,
                account,
                csrf: record.csrf,
            },
        ))
    }

    /// The session named by a cookie value, refreshed; None when unknown or expired.
    pub async fn resolve(&self, cookie: &str) -> Result<Option<Session>> {
        if cookie.is_empty() || cookie.len() > 128 {
            return Ok(None);
        }
        let id_hash = hex::encode(token_hash(cookie));
        let now = chrono::Utc::now().timestamp_millis();
        let Some(r) = self
            .store
            .touch(&id_hash, now, ms(self.config.idle))
            .await?
        else {
            return Ok(None);
        };
        let subject = Subject::decode(&r.subject)
            .ok_or_else(|| AccountsError::Internal(format!("session subject {}", r.subject)))?;
        Ok(Some(Session {
            id_hash,
            subject,
            account: Uuid::parse_str(&r.account).ok(),
            csrf: r.csrf,
        }))
    }

    pub async fn switch_account(&self, session: &Session, account: Uuid) -> Result<()> {
        Ok(self
            .store
            .set_account(&session.id_hash, &account.to_string())
            .await?)
    }

    pub async fn end(&self, session: &Session) -> Result<()> {
        Ok(self
            .store
            .delete(&session.id_hash, &session.subject.encode())
            .await?)
    }

    /// Ends every session of `subject`, except `keep` when given.
    pub async fn end_all(&self, subject: Subject, keep: Option<&Session>) -> Result<u64> {
        Ok(self
            .store
            .delete_all(&subject.encode(), keep.map(|s| s.id_hash.as_str()))
            .await?)
    }

    pub fn store(&self) -> &SessionStore {
        &self.store
    }
}

impl Session {
    /// Constant-time comparison with the token the client sent.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        presented.len() == self.csrf.len()
            && bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

/// Whether a state-changing request made with a session cookie comes from our own pages:
/// `Origin` must be ours when present; without it, `Sec-Fetch-Site` must say same-origin (or
/// none: typed by the user). A request with neither header is refused too, since browsers
/// send at least one of them on every cross-site POST.
pub fn same_origin(origin: Option<&str>, fetch_site: Option<&str>, allowed: &[String]) -> bool {
    match (origin, fetch_site) {
        (Some(o), _) if o != "null" => allowed.iter().any(|a| o.trim_end_matches('/') == a),
        (_, Some(site)) => matches!(site, "same-origin" | "none"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_rules() {
        let ours = &["https://gw.example".to_string()];
        assert!(same_origin(Some("https://gw.example"), None, ours));
        assert!(same_origin(
            Some("https://gw.example"),
            Some("same-origin"),
            ours
        ));
        assert!(!same_origin(
            Some("https://evil.example"),
            Some("same-origin"),
            ours
        ));
        assert!(same_origin(None, Some("same-origin"), ours));
        assert!(!same_origin(None, Some("cross-site"), ours));
        assert!(!same_origin(None, Some("same-site"), ours));
        assert!(!same_origin(Some("null"), None, ours));
        assert!(!same_origin(None, None, ours));
    }

    #[test]
    fn subjects_round_trip_and_tokens_are_long() {
        let s = Subject::User(Uuid::from_u128(7));
        assert_eq!(Subject::decode(&s.encode()), Some(s));
        assert_eq!(Subject::decode("root:1"), None);
        assert!(new_token().len() >= 43);
        assert_ne!(new_token(), new_token());
    }
}

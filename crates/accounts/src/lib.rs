//! Tenants serve themselves: users, accounts and memberships, roles and the rules of who may do
//! what (`policy`), sessions, invitations, email, and the audit log.
//!
//! `policy` is the one place that answers "may this caller do this?": every route, JSON or page,
//! builds an `Actor` and asks it.

pub mod audit;
pub mod error;
pub mod keys;
pub mod mail;
pub mod members;
pub mod password;
pub mod policy;
pub mod sessions;
pub mod types;
pub mod users;

use std::time::Duration;

pub use audit::{AuditCtx, Change};
pub use error::{AccountsError, Result};
pub use policy::{Actor, KeyFacts, MemberFacts, Visibility};
pub use sessions::{Session, SessionConfig, Sessions, Subject};
pub use types::{Email, KeyKind, Password, Role};

use infron_store::PgPool;

/// Attempt limits for sign-in and password reset, counted per client IP and per email in
/// Redis (so across every instance) in a fixed window.
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    pub window: Duration,
    pub per_ip: u32,
    pub per_email: u32,
}

#[derive(Debug, Clone)]
pub struct AccountsConfig {
    /// Where people reach the gateway (`https://gw.example`); email links start with it and
    /// session-authenticated changes must come from this origin.
    pub public_url: String,
    /// The public URL was not set and is a loopback address: `localhost`, `127.0.0.1` and
    /// `[::1]` on its port are the same site to a person at this machine.
    pub loopback_aliases: bool,
    pub throttle: ThrottleConfig,
}

impl AccountsConfig {
    /// The origin (scheme://host[:port]) of `public_url`.
    pub fn origin(&self) -> &str {
        let u = self.public_url.trim_end_matches('/');
        match u.find("://") {
            Some(i) => match u[i + 3..].find('/') {
                Some(j) => &u[..i + 3 + j],
                None => u,
            },
            None => u,
        }
    }

    /// Origins a session-authenticated change may come from.
    pub fn allowed_origins(&self) -> Vec<String> {
        let origin = self.origin().to_string();
        if !self.loopback_aliases {
            return vec![origin];
        }
        let port = origin
            .strip_prefix("http://")
            .and_then(|h| h.rsplit_once(':'))
            .map(|(_, p)| p.to_string());
        match port {
            Some(p) => ["localhost", "127.0.0.1", "[::1]"]
                .iter()
                .map(|h| format!("http://{h}:{p}"))
                .collect(),
            None => vec![origin],
        }
    }

    /// Cookies are `Secure` unless the gateway is served over plain HTTP on localhost.
    pub fn secure_cookies(&self) -> bool {
        let origin = self.origin();
        let Some(host) = origin.strip_prefix("http://") else {
            return true;
        };
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        !matches!(host, "localhost" | "127.0.0.1" | "[::1]")
    }

    pub fn link(&self, path: &str, token: &str) -> String {
        format!(
            "{}{path}?token={token}",
            self.public_url.trim_end_matches('/')
        )
    }
}

/// The tenant service: what the routes call.
#[derive(Clone)]
pub struct Accounts {
    pub pg: PgPool,
    pub sessions: Sessions,
    pub mailer: mail::Mailer,
    pub config: AccountsConfig,
}

impl Accounts {
    pub fn new(
        pg: PgPool,
        sessions: Sessions,
        mailer: mail::Mailer,
        config: AccountsConfig,
    ) -> Self {
        password::warm_up();
        Self {
            pg,
            sessions,
            mailer,
            config,
        }
    }

    /// Counts one attempt against each bucket; the first over its limit refuses with the time
    /// to wait.
    pub async fn throttle(&self, buckets: &[(String, u32)]) -> Result<()> {
        let window = i64::try_from(self.config.throttle.window.as_millis()).unwrap_or(i64::MAX);
        let mut wait: Option<i64> = None;
        for (bucket, limit) in buckets {
            if let Some(ms) = self
                .sessions
                .store()
                .count_attempt(bucket, window, *limit)
                .await?
            {
                wait = Some(wait.map_or(ms, |w| w.max(ms)));
            }
        }
        match wait {
            Some(ms) => Err(AccountsError::Throttled {
                retry_after_secs: u64::try_from(ms.max(0)).unwrap_or(0).div_ceil(1000).max(1),
            }),
            None => Ok(()),
        }
    }

    /// The buckets of an attempt of `kind` (`signin`, `reset`, `signup`) from `ip` for `email`.
    pub fn buckets(&self, kind: &str, ip: &str, email: Option<&Email>) -> Vec<(String, u32)> {
        let t = &self.config.throttle;
        let mut b = vec![(format!("{kind}:ip:{ip}"), t.per_ip)];
        if let Some(e) = email {
            // Hashed: Redis need not hold the address.
            b.push((
                format!(
                    "{kind}:email:{}",
                    hex::encode(sessions::token_hash(e.as_str()))
                ),
                t.per_email,
            ));
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> AccountsConfig {
        AccountsConfig {
            public_url: url.into(),
            loopback_aliases: false,
            throttle: ThrottleConfig {
                window: Duration::from_secs(1),
                per_ip: 1,
                per_email: 1,
            },
        }
    }

    #[test]
    fn origins_and_secure_cookies() {
        assert_eq!(
            cfg("https://gw.example/base/").origin(),
            "https://gw.example"
        );
        assert_eq!(
            cfg("http://127.0.0.1:8080").origin(),
            "http://127.0.0.1:8080"
        );
        assert!(!cfg("http://127.0.0.1:8080").secure_cookies());
        assert!(!cfg("http://localhost").secure_cookies());
        assert!(cfg("http://gw.example").secure_cookies());
        assert!(cfg("https://localhost").secure_cookies());
        let mut local = cfg("http://127.0.0.1:8080");
        assert_eq!(local.allowed_origins(), vec!["http://127.0.0.1:8080"]);
        local.loopback_aliases = true;
        assert!(local
            .allowed_origins()
            .contains(&"http://localhost:8080".to_string()));
        assert_eq!(
            cfg("https://gw.example/").link("/verify-email", "abc"),
            "https://gw.example/verify-email?token=abc"
        );
    }
}

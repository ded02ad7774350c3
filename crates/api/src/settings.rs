//! Settings from the environment (and a `.env` file). A bad or missing setting stops the
//! program with one line naming it.

use std::path::PathBuf;
use std::time::Duration;

use infron_billing::fees::FeeSchedule;
use infron_router::Timeouts;
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, thiserror::Error)]
#[error("setting {name}: {reason}")]
pub struct SettingError {
    pub name: &'static str,
    pub reason: String,
}

#[derive(Clone)]
pub struct Settings {
    pub database_url: SecretString,
    pub redis_url: SecretString,
    pub bind: String,
    pub catalog_path: PathBuf,
    /// Keys API keys are hashed with (HMAC-SHA-256). Changing it invalidates every key.
    pub key_secret: SecretString,
    pub redis_prefix: String,
    pub max_body_bytes: usize,
    pub workers: usize,
    pub db_max_connections: u32,
    pub timeouts: Timeouts,
    /// Overall deadline of one request, streaming included.
    pub request_timeout: Duration,
    /// How long a resolved API key is trusted from the in-process cache.
    pub key_cache_ttl: Duration,
    pub fees: FeeSchedule,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("bind", &self.bind)
            .field("catalog_path", &self.catalog_path)
            .field("redis_prefix", &self.redis_prefix)
            .finish_non_exhaustive()
    }
}

pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn required(env: Env, name: &'static str) -> Result<String, SettingError> {
    match env(name) {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(SettingError {
            name,
            reason: "is not set (see .env.example)".into(),
        }),
    }
}

fn parsed<T: std::str::FromStr>(env: Env, name: &'static str, default: T) -> Result<T, SettingError>
where
    T::Err: std::fmt::Display,
{
    match env(name) {
        None => Ok(default),
        Some(v) if v.trim().is_empty() => Ok(default),
        Some(v) => v.trim().parse().map_err(|e: T::Err| SettingError {
            name,
            reason: format!("'{v}' is not valid: {e}"),
        }),
    }
}

fn secs(env: Env, name: &'static str, default: u64) -> Result<Duration, SettingError> {
    let v: u64 = parsed(env, name, default)?;
    if v == 0 {
        return Err(SettingError {
            name,
            reason: "must be at least 1 second".into(),
        });
    }
    Ok(Duration::from_secs(v))
}

impl Settings {
    /// Reads the process environment, after loading `.env` from the working directory if present.
    pub fn from_process_env() -> Result<Settings, SettingError> {
        let _ = dotenvy::dotenv();
        Settings::from_env(&|k| std::env::var(k).ok())
    }

    pub fn from_env(env: Env) -> Result<Settings, SettingError> {
        let database_url = required(env, "DATABASE_URL")?;
        if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
            return Err(SettingError {
                name: "DATABASE_URL",
                reason: "must be a postgres:// URL".into(),
            });
        }
        let redis_url = required(env, "REDIS_URL")?;
        if !(redis_url.starts_with("redis://") || redis_url.starts_with("rediss://")) {
            return Err(SettingError {
                name: "REDIS_URL",
                reason: "must be a redis:// or rediss:// URL".into(),
            });
        }
        let key_secret = required(env, "INFRON_KEY_SECRET")?;
        if key_secret.len() < 32 {
            return Err(SettingError {
                name: "INFRON_KEY_SECRET",
                reason: "must be at least 32 characters (generate one with `openssl rand -hex 32`)"
                    .into(),
            });
        }
        let bind = env("INFRON_BIND")
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        if bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(SettingError {
                name: "INFRON_BIND",
                reason: format!("'{bind}' is not a host:port socket address"),
            });
        }
        let fee_fixed: String = parsed(env, "INFRON_TOPUP_FEE_FIXED", "0.35".to_string())?;
        let fee_rate: String = parsed(env, "INFRON_TOPUP_FEE_RATE", "0.05".to_string())?;
        let fees = FeeSchedule {
            fixed: fee_fixed.parse().map_err(|e| SettingError {
                name: "INFRON_TOPUP_FEE_FIXED",
                reason: format!("{e}"),
            })?,
            rate: fee_rate.parse().map_err(|e| SettingError {
                name: "INFRON_TOPUP_FEE_RATE",
                reason: format!("'{fee_rate}': {e}"),
            })?,
        };
        Ok(Settings {
            database_url: SecretString::from(database_url),
            redis_url: SecretString::from(redis_url),
            bind,
            catalog_path: PathBuf::from(
                env("INFRON_CATALOG")
                    .filter(|v| !v.trim().is_empty())
                    .unwrap_or_else(|| "config/catalog.toml".into()),
            ),
            key_secret: SecretString::from(key_secret),
            redis_prefix: env("INFRON_REDIS_PREFIX")
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| "infron".into()),
            max_body_bytes: parsed(env, "INFRON_MAX_BODY_BYTES", 20 * 1024 * 1024)?,
            workers: parsed(
                env,
                "INFRON_WORKERS",
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )?,
            db_max_connections: parsed(env, "INFRON_DB_MAX_CONNECTIONS", 20)?,
            timeouts: Timeouts {
                connect: secs(env, "INFRON_CONNECT_TIMEOUT_SECS", 10)?,
                first_byte: secs(env, "INFRON_FIRST_BYTE_TIMEOUT_SECS", 120)?,
                idle: secs(env, "INFRON_STREAM_IDLE_TIMEOUT_SECS", 60)?,
            },
            request_timeout: secs(env, "INFRON_REQUEST_TIMEOUT_SECS", 600)?,
            key_cache_ttl: secs(env, "INFRON_KEY_CACHE_TTL_SECS", 30)?,
            fees,
        })
    }

    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }

    pub fn redis_url(&self) -> &str {
        self.redis_url.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn base(k: &str) -> Option<String> {
        match k {
            "DATABASE_URL" => Some("postgres://postgres@127.0.0.1/x".into()),
            "REDIS_URL" => Some("redis://127.0.0.1:6379".into()),
            "INFRON_KEY_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
            _ => None,
        }
    }

    #[test]
    fn defaults_apply() {
        let s = Settings::from_env(&base).unwrap();
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert_eq!(s.catalog_path, PathBuf::from("config/catalog.toml"));
    }

    #[test]
    fn errors_name_the_setting() {
        let e =
            Settings::from_env(&|k| if k == "DATABASE_URL" { None } else { base(k) }).unwrap_err();
        assert_eq!(e.name, "DATABASE_URL");
        let e = Settings::from_env(&|k| {
            if k == "INFRON_BIND" {
                Some("nope".into())
            } else {
                base(k)
            }
        })
        .unwrap_err();
        assert_eq!(e.name, "INFRON_BIND");
        let e = Settings::from_env(&|k| {
            if k == "INFRON_KEY_SECRET" {
                Some("short".into())
            } else {
                base(k)
            }
        })
        .unwrap_err();
        assert_eq!(e.name, "INFRON_KEY_SECRET");
        let e = Settings::from_env(&|k| {
            if k == "INFRON_WORKERS" {
                Some("many".into())
            } else {
                base(k)
            }
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("setting INFRON_WORKERS:"), "{e}");
    }
}

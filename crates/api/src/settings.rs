//! Settings from the environment (and a `.env` file). A bad or missing setting stops the
//! program with one line naming it.

use std::path::PathBuf;
use std::time::Duration;

use infron_billing::fees::FeeSchedule;
use infron_billing::topups::{CheckoutConfig, TopupLimits};
use infron_billing::{HotLedgerConfig, Usd};
use infron_router::health::HealthConfig;
use infron_router::preferences::Sort;
use infron_router::Timeouts;
use secrecy::{ExposeSecret, SecretString};

/// INFRON_KEY_SECRET as .env.example ships it.
const EXAMPLE_KEY_SECRET: &str = "change-me-to-64-hex-characters-from-openssl-rand-hex-32";

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
    /// Bearer token of the admin routes (`/api/v1/admin/...`); unset: those routes do not exist.
    pub admin_token: Option<SecretString>,
    /// Endpoint selection, health and the response cache.
    pub routing: RoutingSettings,
    pub fees: FeeSchedule,
    /// Days until newly granted or bought credits expire; None: never.
    pub credit_expiry_days: Option<i32>,
    /// How often the expiry job runs.
    pub credit_expiry_interval: Duration,
    /// Stripe top-ups (docs/stripe.md); the endpoints answer 503 while unconfigured.
    pub stripe: StripeSettings,
    /// Shards of the hot state in Redis (hash tags `{s0}`…): spread over a Redis Cluster.
    pub redis_shards: u16,
    /// Holds, the settlement journal and their limits.
    pub ledger: HotLedgerConfig,
    /// On SIGTERM: how long running requests and streams may finish before streams are ended
    /// with an error chunk. Keep the orchestrator's stop grace period longer than this.
    pub drain: Duration,
    /// Users, sessions, email and sign-in throttling (docs/tenants.md).
    pub tenants: TenantSettings,
    /// Alerts and auto top-up (docs/alerts.md).
    pub alerts: AlertSettings,
}

/// Alerts and auto top-up: how often balances and keys are checked, webhook deliveries, and
/// where Stripe sends someone who saved a card.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// How often every instance checks balances and keys against the thresholds.
    pub check_interval: Duration,
    /// First retry of a failed delivery; doubles each attempt.
    pub retry_base: Duration,
    /// Attempts before a delivery is given up.
    pub max_attempts: i32,
    /// Per-attempt timeout of a webhook POST.
    pub webhook_timeout: Duration,
    /// Webhook URLs may name private, loopback and link-local addresses (tests, private
    /// networks). Off by default: a tenant must not make the gateway call its own network.
    pub allow_private_webhooks: bool,
    /// Where Stripe sends someone who saved a card (None: the Credits page).
    pub card_success_url: Option<String>,
    pub card_cancel_url: Option<String>,
}

impl AlertSettings {
    fn from_env(env: Env) -> Result<Self, SettingError> {
        let ms = |name: &'static str, default: u64| -> Result<Duration, SettingError> {
            let v: u64 = parsed(env, name, default)?;
            if v < 10 {
                return Err(SettingError {
                    name,
                    reason: "must be at least 10 milliseconds".into(),
                });
            }
            Ok(Duration::from_millis(v))
        };
        let allow_private_webhooks = match env("INFRON_ALERT_WEBHOOK_ALLOW_PRIVATE")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("" | "false" | "0" | "no") => false,
            Some("true" | "1" | "yes") => true,
            Some(other) => {
                return Err(SettingError {
                    name: "INFRON_ALERT_WEBHOOK_ALLOW_PRIVATE",
                    reason: format!("'{other}' is not true or false"),
                })
            }
        };
        let url = |name: &'static str| -> Result<Option<String>, SettingError> {
            match env(name).map(|v| v.trim().to_string()) {
                None => Ok(None),
                Some(v) if v.is_empty() => Ok(None),
                Some(v) if v.starts_with("https://") || v.starts_with("http://") => Ok(Some(v)),
                Some(v) => Err(SettingError {
                    name,
                    reason: format!("'{v}' is not an http(s) URL"),
                }),
            }
        };
        let max_attempts: i32 = parsed(env, "INFRON_ALERT_MAX_ATTEMPTS", 8)?;
        if max_attempts < 1 {
            return Err(SettingError {
                name: "INFRON_ALERT_MAX_ATTEMPTS",
                reason: "must be at least 1".into(),
            });
        }
        Ok(AlertSettings {
            check_interval: ms("INFRON_ALERT_CHECK_INTERVAL_MS", 5_000)?,
            retry_base: ms("INFRON_ALERT_RETRY_BASE_MS", 30_000)?,
            max_attempts,
            webhook_timeout: secs(env, "INFRON_ALERT_WEBHOOK_TIMEOUT_SECS", 10)?,
            allow_private_webhooks,
            card_success_url: url("INFRON_CARD_SETUP_SUCCESS_URL")?,
            card_cancel_url: url("INFRON_CARD_SETUP_CANCEL_URL")?,
        })
    }
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

/// Whether a response-cache hit is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheHitBilling {
    /// Like a miss: the cached usage at the answering endpoint's current prices.
    Full,
    /// Not charged (still logged and settled at zero).
    Free,
}

#[derive(Debug, Clone)]
pub struct RoutingSettings {
    /// Sort applied when a request asks for none (`None`: the 1/price² weighted draw).
    pub default_sort: Option<Sort>,
    pub health: HealthConfig,
    /// How often the in-process health snapshot is reloaded from Redis.
    pub health_refresh: Duration,
    pub response_cache: bool,
    pub response_cache_ttl: Duration,
    pub cache_hit_billing: CacheHitBilling,
}

impl RoutingSettings {
    fn from_env(env: Env) -> Result<Self, SettingError> {
        let default_sort = match env("INFRON_DEFAULT_PROVIDER_SORT")
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty())
            .as_deref()
        {
            None | Some("weighted") => None,
            Some(other) => Some(other.parse::<Sort>().map_err(|reason| SettingError {
                name: "INFRON_DEFAULT_PROVIDER_SORT",
                reason: format!("{reason} (or weighted, the default)"),
            })?),
        };
        let threshold: u32 = parsed(env, "INFRON_CIRCUIT_FAILURE_THRESHOLD", 5)?;
        if threshold == 0 {
            return Err(SettingError {
                name: "INFRON_CIRCUIT_FAILURE_THRESHOLD",
                reason: "must be at least 1".into(),
            });
        }
        let refresh_ms: u64 = parsed(env, "INFRON_HEALTH_REFRESH_MS", 1000)?;
        if refresh_ms < 50 {
            return Err(SettingError {
                name: "INFRON_HEALTH_REFRESH_MS",
                reason: "must be at least 50".into(),
            });
        }
        let response_cache = match env("INFRON_RESPONSE_CACHE")
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty())
            .as_deref()
        {
            None | Some("on" | "true" | "1") => true,
            Some("off" | "false" | "0") => false,
            Some(other) => {
                return Err(SettingError {
                    name: "INFRON_RESPONSE_CACHE",
                    reason: format!("'{other}' is not on or off"),
                })
            }
        };
        let cache_hit_billing = match env("INFRON_CACHE_HIT_BILLING")
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty())
            .as_deref()
        {
            None | Some("full") => CacheHitBilling::Full,
            Some("free") => CacheHitBilling::Free,
            Some(other) => {
                return Err(SettingError {
                    name: "INFRON_CACHE_HIT_BILLING",
                    reason: format!("'{other}' is not full or free"),
                })
            }
        };
        Ok(Self {
            default_sort,
            health: HealthConfig {
                failure_window: secs(env, "INFRON_HEALTH_FAILURE_WINDOW_SECS", 30)?,
                circuit_threshold: threshold,
                cooldown: secs(env, "INFRON_CIRCUIT_COOLDOWN_SECS", 30)?,
            },
            health_refresh: Duration::from_millis(refresh_ms),
            response_cache,
            response_cache_ttl: secs(env, "INFRON_RESPONSE_CACHE_TTL_SECS", 300)?,
            cache_hit_billing,
        })
    }
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
        if ![
            "redis://",
            "rediss://",
            "redis+cluster://",
            "rediss+cluster://",
        ]
        .iter()
        .any(|s| redis_url.starts_with(s))
        {
            return Err(SettingError {
                name: "REDIS_URL",
                reason: "must be a redis://, rediss:// or redis+cluster:// URL".into(),
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
        // The value .env.example ships with is public: keys hashed under it could be forged.
        if key_secret.trim() == EXAMPLE_KEY_SECRET || key_secret.contains("change-me") {
            return Err(SettingError {
                name: "INFRON_KEY_SECRET",
                reason: "is still the placeholder from .env.example; set your own (`openssl rand -hex 32`)"
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
        let tenants = TenantSettings::from_env(env)?;
        let alerts = AlertSettings::from_env(env)?;
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
                default_workers(std::thread::available_parallelism().map_or(2, |n| n.get())),
            )?,
            db_max_connections: parsed(env, "INFRON_DB_MAX_CONNECTIONS", 20)?,
            timeouts: Timeouts {
                connect: secs(env, "INFRON_CONNECT_TIMEOUT_SECS", 10)?,
                first_byte: secs(env, "INFRON_FIRST_BYTE_TIMEOUT_SECS", 120)?,
                idle: secs(env, "INFRON_STREAM_IDLE_TIMEOUT_SECS", 60)?,
            },
            request_timeout: secs(env, "INFRON_REQUEST_TIMEOUT_SECS", 600)?,
            key_cache_ttl: secs(env, "INFRON_KEY_CACHE_TTL_SECS", 30)?,
            admin_token: match env("INFRON_ADMIN_TOKEN").filter(|v| !v.trim().is_empty()) {
                None => None,
                Some(t) if t.trim().len() < 16 => {
                    return Err(SettingError {
                        name: "INFRON_ADMIN_TOKEN",
                        reason:
                            "must be at least 16 characters (or unset to disable the admin routes)"
                                .into(),
                    })
                }
                Some(t) => Some(SecretString::from(t.trim().to_string())),
            },
            routing: RoutingSettings::from_env(env)?,
            fees,
            credit_expiry_days: match parsed::<i32>(env, "INFRON_CREDIT_EXPIRY_DAYS", 365)? {
                0 => None,
                d if d > 0 => Some(d),
                _ => {
                    return Err(SettingError {
                        name: "INFRON_CREDIT_EXPIRY_DAYS",
                        reason: "must be 0 (never) or a positive number of days".into(),
                    })
                }
            },
            credit_expiry_interval: secs(env, "INFRON_CREDIT_EXPIRY_INTERVAL_SECS", 3600)?,
            stripe: StripeSettings::from_env(env)?,
            redis_shards: match parsed::<u16>(env, "INFRON_REDIS_SHARDS", 8)? {
                n @ 1..=1024 => n,
                _ => {
                    return Err(SettingError {
                        name: "INFRON_REDIS_SHARDS",
                        reason: "must be between 1 and 1024".into(),
                    })
                }
            },
            ledger: ledger_config(env)?,
            drain: secs(env, "INFRON_DRAIN_SECS", 25)?,
            tenants,
            alerts,
        })
    }

    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }

    pub fn redis_url(&self) -> &str {
        self.redis_url.expose_secret()
    }
}

fn ledger_config(env: Env) -> Result<HotLedgerConfig, SettingError> {
    let lease = secs(env, "INFRON_HOLD_LEASE_SECS", 20)?;
    if lease < Duration::from_secs(4) {
        return Err(SettingError {
            name: "INFRON_HOLD_LEASE_SECS",
            reason: "must be at least 4 seconds (leases are renewed every quarter of it)".into(),
        });
    }
    Ok(HotLedgerConfig {
        lease,
        renew_every: lease / 4,
        journal_limit: parsed(env, "INFRON_JOURNAL_MAX_ENTRIES", 2_000_000)?,
        retain_limit: parsed(env, "INFRON_UNPOSTED_MAX", 1_000_000)?,
        batches_in_flight: 2,
    })
}

/// The tenant-facing side: where the gateway is reached, email, sessions and throttling.
#[derive(Clone)]
pub struct TenantSettings {
    /// Scheme, host and port people use (email links, the allowed Origin, Secure cookies).
    /// None: `http://` and the address the server bound (127.0.0.1 for a wildcard bind).
    pub public_url: Option<String>,
    /// `smtp://user:pass@host:587` or `smtps://...`; None: emails are written to the log.
    pub smtp_url: Option<SecretString>,
    pub email_from: String,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    pub signin_window: Duration,
    pub signin_max_per_ip: u32,
    pub signin_max_per_email: u32,
    /// Take the client address from the last `X-Forwarded-For` entry (behind a proxy).
    pub trust_forwarded_for: bool,
}

impl TenantSettings {
    fn from_env(env: Env) -> Result<TenantSettings, SettingError> {
        let present = |name: &str| {
            env(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let public_url = match present("INFRON_PUBLIC_URL") {
            Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                Some(u.trim_end_matches('/').to_string())
            }
            Some(u) => {
                return Err(SettingError {
                    name: "INFRON_PUBLIC_URL",
                    reason: format!("'{u}' is not an http(s):// URL"),
                })
            }
            None => None,
        };
        let smtp_url = match present("INFRON_SMTP_URL") {
            Some(u) if u.starts_with("smtp://") || u.starts_with("smtps://") => {
                Some(SecretString::from(u))
            }
            Some(_) => {
                return Err(SettingError {
                    name: "INFRON_SMTP_URL",
                    reason: "must be an smtp:// or smtps:// URL".into(),
                })
            }
            None => None,
        };
        let count = |name: &'static str, default: u32| -> Result<u32, SettingError> {
            let v: u32 = parsed(env, name, default)?;
            if v == 0 {
                return Err(SettingError {
                    name,
                    reason: "must be at least 1".into(),
                });
            }
            Ok(v)
        };
        let trust_forwarded_for = match present("INFRON_TRUST_FORWARDED_FOR")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("false" | "0" | "no") => false,
            Some("true" | "1" | "yes") => true,
            Some(other) => {
                return Err(SettingError {
                    name: "INFRON_TRUST_FORWARDED_FOR",
                    reason: format!("'{other}' is not true or false"),
                })
            }
        };
        let session_idle = secs(env, "INFRON_SESSION_IDLE_SECS", 8 * 3600)?;
        let session_absolute = secs(env, "INFRON_SESSION_ABSOLUTE_SECS", 7 * 24 * 3600)?;
        if session_absolute < session_idle {
            return Err(SettingError {
                name: "INFRON_SESSION_ABSOLUTE_SECS",
                reason: "must not be shorter than INFRON_SESSION_IDLE_SECS".into(),
            });
        }
        Ok(TenantSettings {
            public_url,
            smtp_url,
            email_from: present("INFRON_EMAIL_FROM")
                .unwrap_or_else(|| "Infron <no-reply@localhost>".into()),
            session_idle,
            session_absolute,
            signin_window: secs(env, "INFRON_SIGNIN_WINDOW_SECS", 900)?,
            signin_max_per_ip: count("INFRON_SIGNIN_MAX_PER_IP", 50)?,
            signin_max_per_email: count("INFRON_SIGNIN_MAX_PER_EMAIL", 10)?,
            trust_forwarded_for,
        })
    }
}

/// Stripe top-ups. Everything is optional: without `STRIPE_SECRET_KEY` the checkout endpoint
/// answers 503, without `STRIPE_WEBHOOK_SECRETS` the webhook does.
#[derive(Clone)]
pub struct StripeSettings {
    pub secret_key: Option<SecretString>,
    /// Stripe's API root, ending in '/'; requests go to `{api_base}v1/...`.
    pub api_base: String,
    pub request_timeout: Duration,
    /// Endpoint signing secrets (`whsec_...`); several during a rotation.
    pub webhook_secrets: Vec<SecretString>,
    pub webhook_tolerance: Duration,
    pub topup_limits: TopupLimits,
    /// Set whenever `secret_key` is.
    pub checkout: Option<CheckoutConfig>,
}

impl StripeSettings {
    fn from_env(env: Env) -> Result<StripeSettings, SettingError> {
        let present = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let secret_key = present("STRIPE_SECRET_KEY").map(|v| v.trim().to_string());
        if let Some(k) = &secret_key {
            if !(k.starts_with("sk_") || k.starts_with("rk_")) {
                return Err(SettingError {
                    name: "STRIPE_SECRET_KEY",
                    reason: "must be a Stripe secret or restricted key (sk_... or rk_...)".into(),
                });
            }
        }
        let api_base = present("STRIPE_API_BASE")
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "https://api.stripe.com".into());
        if !(api_base.starts_with("https://") || api_base.starts_with("http://")) {
            return Err(SettingError {
                name: "STRIPE_API_BASE",
                reason: format!("'{api_base}' is not an http(s):// URL"),
            });
        }
        let api_base = format!("{}/", api_base.trim_end_matches('/'));
        let webhook_secrets: Vec<SecretString> = present("STRIPE_WEBHOOK_SECRETS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                if s.starts_with("whsec_") {
                    Ok(SecretString::from(s.to_string()))
                } else {
                    Err(SettingError {
                        name: "STRIPE_WEBHOOK_SECRETS",
                        reason: "each secret must be an endpoint signing secret (whsec_...)".into(),
                    })
                }
            })
            .collect::<Result<_, _>>()?;
        let usd = |name: &'static str, default: &str| -> Result<Usd, SettingError> {
            let v = present(name).unwrap_or_else(|| default.to_string());
            let amount: Usd = v.parse().map_err(|e| SettingError {
                name,
                reason: format!("'{v}': {e}"),
            })?;
            if amount.is_negative()
                || amount.is_zero()
                || infron_billing::topups::to_cents(amount).is_err()
            {
                return Err(SettingError {
                    name,
                    reason: format!("'{v}' must be a positive amount of whole cents"),
                });
            }
            Ok(amount)
        };
        let topup_limits = TopupLimits {
            min: usd("INFRON_TOPUP_MIN_USD", "5")?,
            max: usd("INFRON_TOPUP_MAX_USD", "10000")?,
        };
        if topup_limits.min > topup_limits.max {
            return Err(SettingError {
                name: "INFRON_TOPUP_MIN_USD",
                reason: "must not exceed INFRON_TOPUP_MAX_USD".into(),
            });
        }
        if infron_billing::topups::to_cents(topup_limits.max)
            .is_ok_and(|c| c > infron_billing::topups::STRIPE_MAX_CENTS)
        {
            return Err(SettingError {
                name: "INFRON_TOPUP_MAX_USD",
                reason: "must be below Stripe's limit of 999999.99 for one payment".into(),
            });
        }
        let payment_methods = infron_billing::topups::checkout::parse_payment_methods(
            &present("INFRON_TOPUP_PAYMENT_METHODS").unwrap_or_else(|| "card".into()),
        )
        .map_err(|reason| SettingError {
            name: "INFRON_TOPUP_PAYMENT_METHODS",
            reason,
        })?;
        let url = |name: &'static str| -> Result<String, SettingError> {
            match present(name) {
                Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                    Ok(u.trim().to_string())
                }
                Some(u) => Err(SettingError {
                    name,
                    reason: format!("'{u}' is not an http(s):// URL"),
                }),
                None => Err(SettingError {
                    name,
                    reason: "is required when STRIPE_SECRET_KEY is set".into(),
                }),
            }
        };
        let checkout = match secret_key {
            Some(_) => Some(CheckoutConfig {
                payment_methods,
                success_url: url("INFRON_CHECKOUT_SUCCESS_URL")?,
                cancel_url: url("INFRON_CHECKOUT_CANCEL_URL")?,
            }),
            None => None,
        };
        Ok(StripeSettings {
            secret_key: secret_key.map(SecretString::from),
            api_base,
            request_timeout: secs(env, "STRIPE_REQUEST_TIMEOUT_SECS", 30)?,
            webhook_secrets,
            webhook_tolerance: secs(env, "STRIPE_WEBHOOK_TOLERANCE_SECS", 300)?,
            topup_limits,
            checkout,
        })
    }
}

/// HTTP worker threads by default: half the cores (at least one). Each actix worker is a thread
/// of its own beside the tokio runtime that runs the money path's Redis batching, the ledger
/// writer and the background jobs (one thread per core); one HTTP worker per core oversubscribes
/// the machine, and the context switches cost more than the parallelism gains (docs/benchmarks.md:
/// on 2 cores, 1 worker serves 32% more requests per second than 2, with 22% less gateway CPU
/// per request).
pub fn default_workers(cores: usize) -> usize {
    (cores / 2).max(1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn http_workers_default_to_half_the_cores() {
        assert_eq!(default_workers(1), 1);
        assert_eq!(default_workers(2), 1);
        assert_eq!(default_workers(3), 1);
        assert_eq!(default_workers(8), 4);
    }

    fn base(k: &str) -> Option<String> {
        match k {
            "DATABASE_URL" => Some("postgres://postgres@127.0.0.1/x".into()),
            "REDIS_URL" => Some("redis://127.0.0.1:6379".into()),
            "INFRON_KEY_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
            _ => None,
        }
    }

    #[test]
    fn the_example_key_secret_is_refused() {
        let example = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.env.example"),
        )
        .unwrap_or_default();
        assert!(
            example.contains(&format!("INFRON_KEY_SECRET={EXAMPLE_KEY_SECRET}\n")),
            ".env.example ships the placeholder the gateway refuses"
        );
        let env = |k: &str| match k {
            "DATABASE_URL" => Some("postgres://x@127.0.0.1/db".to_string()),
            "REDIS_URL" => Some("redis://127.0.0.1".to_string()),
            "INFRON_KEY_SECRET" => Some(EXAMPLE_KEY_SECRET.to_string()),
            _ => None,
        };
        let err = Settings::from_env(&env).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("INFRON_KEY_SECRET") && e.contains("placeholder")),
            "{err:?}"
        );
    }

    #[test]
    fn defaults_apply() {
        let s = Settings::from_env(&base).unwrap();
        assert_eq!(s.bind, "127.0.0.1:8080");
        assert_eq!(s.catalog_path, PathBuf::from("config/catalog.toml"));
    }

    #[test]
    fn routing_defaults_and_errors() {
        let s = Settings::from_env(&base).unwrap();
        let r = &s.routing;
        assert!(r.response_cache, "the response cache is on by default");
        assert_eq!(r.response_cache_ttl, Duration::from_secs(300));
        assert_eq!(r.cache_hit_billing, CacheHitBilling::Full);
        assert_eq!(r.default_sort, None);
        assert_eq!(r.health.failure_window, Duration::from_secs(30));
        assert_eq!(r.health.circuit_threshold, 5);
        assert!(s.admin_token.is_none());
        let with = |name: &'static str, value: &'static str| {
            move |k: &str| {
                if k == name {
                    Some(value.to_string())
                } else {
                    base(k)
                }
            }
        };
        let s = Settings::from_env(&with("INFRON_RESPONSE_CACHE", "off")).unwrap();
        assert!(!s.routing.response_cache);
        let s = Settings::from_env(&with("INFRON_CACHE_HIT_BILLING", "free")).unwrap();
        assert_eq!(s.routing.cache_hit_billing, CacheHitBilling::Free);
        let s = Settings::from_env(&with("INFRON_DEFAULT_PROVIDER_SORT", "price")).unwrap();
        assert_eq!(s.routing.default_sort, Some(Sort::Price));
        for (name, value) in [
            ("INFRON_RESPONSE_CACHE", "sometimes"),
            ("INFRON_CACHE_HIT_BILLING", "double"),
            ("INFRON_DEFAULT_PROVIDER_SORT", "random"),
            ("INFRON_CIRCUIT_FAILURE_THRESHOLD", "0"),
            ("INFRON_ADMIN_TOKEN", "short"),
            ("INFRON_RESPONSE_CACHE_TTL_SECS", "0"),
        ] {
            assert_eq!(
                Settings::from_env(&with(name, value)).unwrap_err().name,
                name
            );
        }
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

    #[test]
    fn tenant_settings_default_and_are_checked() {
        let s = Settings::from_env(&base).unwrap();
        assert_eq!(s.tenants.public_url, None);
        assert!(s.tenants.smtp_url.is_none());
        assert_eq!(s.tenants.signin_max_per_email, 10);
        let with = |name: &'static str, value: &'static str| {
            move |k: &str| {
                if k == name {
                    Some(value.to_string())
                } else {
                    base(k)
                }
            }
        };
        let s = Settings::from_env(&with("INFRON_PUBLIC_URL", "https://gw.example/")).unwrap();
        assert_eq!(s.tenants.public_url.as_deref(), Some("https://gw.example"));
        for (name, value) in [
            ("INFRON_PUBLIC_URL", "gw.example"),
            ("INFRON_SMTP_URL", "mail.example:25"),
            ("INFRON_SIGNIN_MAX_PER_IP", "0"),
            ("INFRON_TRUST_FORWARDED_FOR", "maybe"),
            ("INFRON_SESSION_ABSOLUTE_SECS", "60"),
        ] {
            assert_eq!(
                Settings::from_env(&with(name, value)).unwrap_err().name,
                name
            );
        }
    }

    #[test]
    fn stripe_is_optional_and_its_settings_are_checked() {
        let s = Settings::from_env(&base).unwrap();
        assert!(s.stripe.secret_key.is_none() && s.stripe.checkout.is_none());
        assert!(s.stripe.webhook_secrets.is_empty());
        assert_eq!(s.stripe.api_base, "https://api.stripe.com/");
        assert_eq!(s.stripe.topup_limits, TopupLimits::default());

        let with = |pairs: &'static [(&'static str, &'static str)]| {
            Settings::from_env(&move |k| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
                    .or_else(|| base(k))
            })
        };
        let s = with(&[
            ("STRIPE_SECRET_KEY", "sk_test_x"),
            ("STRIPE_API_BASE", "http://127.0.0.1:9/"),
            ("STRIPE_WEBHOOK_SECRETS", "whsec_a, whsec_b"),
            ("INFRON_CHECKOUT_SUCCESS_URL", "https://x.example/ok"),
            ("INFRON_CHECKOUT_CANCEL_URL", "https://x.example/no"),
            ("INFRON_TOPUP_PAYMENT_METHODS", "card,wechat_pay"),
        ])
        .unwrap();
        assert_eq!(s.stripe.webhook_secrets.len(), 2);
        assert_eq!(s.stripe.api_base, "http://127.0.0.1:9/");
        let checkout = s.stripe.checkout.unwrap();
        assert_eq!(checkout.payment_methods, vec!["card", "wechat_pay"]);

        for (pairs, name) in [
            (
                &[("STRIPE_SECRET_KEY", "sk_test_x")][..],
                "INFRON_CHECKOUT_SUCCESS_URL",
            ),
            (
                &[("STRIPE_SECRET_KEY", "pk_test_x")][..],
                "STRIPE_SECRET_KEY",
            ),
            (
                &[("STRIPE_WEBHOOK_SECRETS", "sk_test_x")][..],
                "STRIPE_WEBHOOK_SECRETS",
            ),
            (
                &[("STRIPE_API_BASE", "api.stripe.com")][..],
                "STRIPE_API_BASE",
            ),
            (&[("INFRON_TOPUP_MIN_USD", "0")][..], "INFRON_TOPUP_MIN_USD"),
            (
                &[("INFRON_TOPUP_MIN_USD", "5.001")][..],
                "INFRON_TOPUP_MIN_USD",
            ),
            (
                &[
                    ("INFRON_TOPUP_MIN_USD", "50"),
                    ("INFRON_TOPUP_MAX_USD", "20"),
                ][..],
                "INFRON_TOPUP_MIN_USD",
            ),
            (
                &[("INFRON_TOPUP_MAX_USD", "1000000")][..],
                "INFRON_TOPUP_MAX_USD",
            ),
            (
                &[("INFRON_TOPUP_PAYMENT_METHODS", "card,cash")][..],
                "INFRON_TOPUP_PAYMENT_METHODS",
            ),
            (
                &[("STRIPE_WEBHOOK_TOLERANCE_SECS", "0")][..],
                "STRIPE_WEBHOOK_TOLERANCE_SECS",
            ),
        ] {
            assert_eq!(with(pairs).unwrap_err().name, name, "{pairs:?}");
        }
    }
}

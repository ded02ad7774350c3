//! The `infron` command line: serve, migrate, and the operator's admin commands.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use infron_billing::Usd;
use infron_store::hot::journal::Journal;
use infron_store::hot::{HotKeys, HotState};
use infron_store::redis_conn::{RedisConn, RedisTarget};
use uuid::Uuid;

use crate::api_keys::ApiKey;
use crate::settings::Settings;
use infron_billing::limits::LimitReset;

#[derive(Parser)]
#[command(
    name = "infron",
    version,
    about = "Infron: a multi-tenant LLM routing gateway"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Apply pending migrations, then serve the API on INFRON_BIND.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Probe `/ready` of a local server (INFRON_BIND): exit 0 when ready, 1 otherwise. For
    /// container health checks; needs no database settings.
    Healthcheck {
        /// Address to probe instead of INFRON_BIND (host:port).
        #[arg(long)]
        addr: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 5)]
        timeout_secs: u64,
    },
    /// Manage tenant accounts.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Grant credits.
    #[command(subcommand)]
    Credits(CreditsCommand),
    /// Ledger checks.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Manage operators (the people running the platform).
    #[command(subcommand)]
    Operators(OperatorsCommand),
    /// Manage users (the people who sign in to the dashboard).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Build the model catalog from public price lists.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Print the API's OpenAPI 3.1 document (what `GET /openapi.json` serves, with the
    /// examples' model ids as generated). Needs no database.
    Openapi,
}

#[derive(Subcommand)]
pub enum OperatorsCommand {
    /// Create an operator; prints a generated password once (or reads one from stdin).
    Create {
        #[arg(long)]
        email: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Make a user who can sign in at once (the address counts as verified) a member of an
    /// account. Creates the user when the address has none, with the password read from
    /// standard input; an existing user keeps their password and is only added to the account.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        account: Uuid,
        /// owner (only for an account without one), admin, member or billing.
        #[arg(long, default_value = "member")]
        role: String,
    },
}

#[derive(Subcommand)]
pub enum CatalogCommand {
    /// Build catalog entries from LiteLLM's price map (and optionally OpenRouter's model
    /// list), apply the overrides file, write the catalog and report what changed. Needs no
    /// database.
    Import {
        /// LiteLLM's model_prices_and_context_window_backup.json.
        #[arg(long)]
        litellm: Option<std::path::PathBuf>,
        /// A saved response of OpenRouter's GET /api/v1/models (ids, names, descriptions).
        #[arg(long)]
        openrouter: Option<std::path::PathBuf>,
        /// Manual overrides; they always win.
        #[arg(long, default_value = "config/catalog-overrides.toml")]
        overrides: std::path::PathBuf,
        /// The catalog to replace (read for the report) and write.
        #[arg(long, default_value = "config/catalog.toml")]
        catalog: std::path::PathBuf,
        /// Write the catalog here instead.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
        /// Print the report; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
pub enum AccountsCommand {
    /// Create an account; prints its id.
    Create {
        #[arg(long)]
        name: String,
        /// Allow routing to providers that train on prompts.
        #[arg(long)]
        allow_training: bool,
    },
    /// Show an account's balance and keys.
    Show { id: Uuid },
    /// Set the account's rate limits: its own (all keys together) and its keys' defaults.
    /// Each is a number per minute, or "none"; omitted ones keep their value.
    SetRateLimit {
        id: Uuid,
        /// Requests per minute over all of the account's keys.
        #[arg(long)]
        rpm: Option<String>,
        /// Tokens per minute over all of the account's keys.
        #[arg(long)]
        tpm: Option<String>,
        /// Requests per minute of a key that sets none of its own.
        #[arg(long)]
        default_key_rpm: Option<String>,
        /// Tokens per minute of a key that sets none of its own.
        #[arg(long)]
        default_key_tpm: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create an API key for an account; prints the secret once.
    Create {
        #[arg(long)]
        account: Uuid,
        #[arg(long, default_value = "")]
        name: String,
        /// Spending limit in USD (per period when --limit-reset is given).
        #[arg(long)]
        limit: Option<String>,
        /// daily, weekly or monthly (UTC calendar periods).
        #[arg(long)]
        limit_reset: Option<String>,
        /// RFC 3339 time after which the key stops working.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// Change a key's spending limit, reset period or expiry ("none" clears a value).
    SetLimit {
        id: Uuid,
        #[arg(long)]
        limit: String,
        #[arg(long)]
        limit_reset: Option<String>,
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// Set a key's own rate limits (a number per minute, or "none" for the account's
    /// default); omitted ones keep their value.
    SetRateLimit {
        id: Uuid,
        #[arg(long)]
        rpm: Option<String>,
        #[arg(long)]
        tpm: Option<String>,
    },
    /// Disable a key (takes effect everywhere within INFRON_KEY_CACHE_TTL_SECS).
    Disable { id: Uuid },
}

/// The most a per-minute limit may be, as the management API allows.
const MAX_PER_MINUTE: i64 = 1_000_000_000;

/// A per-minute limit from the command line: a whole number from 1 to 1,000,000,000, or "none".
fn per_minute<T>(value: Option<&str>, keep: Option<T>, what: &str) -> anyhow::Result<Option<T>>
where
    T: TryFrom<i64>,
{
    match value {
        None => Ok(keep),
        Some("none") => Ok(None),
        Some(v) => match v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PER_MINUTE).contains(n))
        {
            Some(n) => match T::try_from(n) {
                Ok(n) => Ok(Some(n)),
                Err(_) => bail!("--{what} is out of range: {v:?}"),
            },
            None => bail!(
                "--{what} must be a whole number from 1 to {MAX_PER_MINUTE} or \"none\", not {v:?}"
            ),
        },
    }
}

fn show_per_minute<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "none".into(), |n| n.to_string())
}

#[derive(Subcommand)]
pub enum CreditsCommand {
    /// Grant USD credits to an account (a balanced ledger transaction).
    Grant {
        #[arg(long)]
        account: Uuid,
        /// Amount in USD, e.g. 10 or 12.50
        #[arg(long)]
        amount: String,
        #[arg(long)]
        reason: String,
        /// Makes the grant idempotent: a second grant with the same key changes nothing.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum LedgerCommand {
    /// Check the ledger invariants and compare the hot state in Redis with Postgres; exits
    /// non-zero on any violation.
    Verify {
        /// How long a settlement may wait in the journal before it counts as not posted.
        #[arg(long, default_value_t = 60)]
        max_lag_secs: u64,
    },
}

pub async fn run(cli: Cli) -> ExitCode {
    match dispatch(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Catalog(c) = cli.command {
        return catalog(c);
    }
    if let Command::Openapi = cli.command {
        println!(
            "{}",
            serde_json::to_string_pretty(crate::openapi::document())?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Healthcheck { addr, timeout_secs } = cli.command {
        let addr = addr.unwrap_or_else(|| {
            probe_address(&std::env::var("INFRON_BIND").unwrap_or_else(|_| "127.0.0.1:8080".into()))
        });
        return Ok(
            match crate::healthcheck::probe(&addr, std::time::Duration::from_secs(timeout_secs))
                .await
            {
                Ok(()) => {
                    println!("ready");
                    ExitCode::SUCCESS
                }
                Err(why) => {
                    eprintln!("not ready: {why}");
                    ExitCode::FAILURE
                }
            },
        );
    }
    let settings = Settings::from_process_env()?;
    match cli.command {
        Command::Serve => {
            // Flushes the trace exporter when serving ends.
            let _telemetry = crate::telemetry::init();
            let app = crate::Application::build(settings).await?;
            tracing::info!(port = app.port(), "infron is serving");
            app.run_until_stopped(true).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let pg = pg(&settings).await?;
            infron_store::migrate(&pg)
                .await
                .context("migrations failed")?;
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Accounts(c) => accounts(&settings, c).await,
        Command::Operators(OperatorsCommand::Create {
            email,
            password_stdin,
        }) => create_operator(&settings, &email, password_stdin).await,
        Command::Users(UsersCommand::Add {
            email,
            account,
            role,
        }) => add_user(&settings, &email, account, &role).await,
        Command::Keys(c) => keys(&settings, c).await,
        Command::Credits(CreditsCommand::Grant {
            account,
            amount,
            reason,
            idempotency_key,
        }) => {
            let amount: Usd = amount
                .parse()
                .map_err(|e| anyhow::anyhow!("--amount: {e}"))?;
            if reason.trim().is_empty() {
                bail!("--reason must not be empty");
            }
            let pg = pg(&settings).await?;
            let hot = hot(&settings).await?;
            let external_id = format!(
                "grant:{}",
                idempotency_key.unwrap_or_else(|| Uuid::now_v7().to_string())
            );
            let r = infron_billing::grants::grant(&pg, &hot, account, amount, &reason, external_id)
                .await?;
            if r.newly_posted {
                audit(
                    &pg,
                    account,
                    "credits.grant",
                    "transaction",
                    r.transaction_external_id.clone(),
                    serde_json::json!({ "amount": amount.to_string(), "reason": reason }),
                )
                .await;
                println!("granted ${amount} to {account}; balance ${}", r.balance);
            } else {
                println!(
                    "grant {} was already posted; balance ${}",
                    r.transaction_external_id, r.balance
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Catalog(c) => catalog(c),
        Command::Healthcheck { .. } | Command::Openapi => Ok(ExitCode::FAILURE),
        Command::Ledger(LedgerCommand::Verify { max_lag_secs }) => {
            let pg = pg(&settings).await?;
            let check = infron_store::ledger::verify(&pg).await?;
            let mut rows = vec![
                (
                    "transactions that do not sum to zero",
                    check.unbalanced_transactions,
                ),
                (
                    "books whose balance differs from their entries",
                    check.books_not_matching_entries,
                ),
                (
                    "tenants below zero without a refund or dispute",
                    check.tenants_below_zero,
                ),
                (
                    "charged requests without a usage transaction",
                    check.charged_requests_without_transaction,
                ),
                (
                    "usage transactions not matching their requests",
                    check.usage_transactions_not_matching_requests,
                ),
                (
                    "paid Stripe sessions not credited exactly once",
                    check.paid_sessions_not_credited_once,
                ),
            ];
            let hot = match hot(&settings).await {
                Ok(hot) => {
                    let journal = Journal::new(hot.conn(), hot.keys().clone());
                    Some(
                        infron_billing::reconcile::check(
                            &pg,
                            &hot,
                            &journal,
                            std::time::Duration::from_secs(max_lag_secs),
                        )
                        .await?,
                    )
                }
                Err(e) => {
                    eprintln!("cannot check the hot state in Redis: {e:#}");
                    None
                }
            };
            if let Some(h) = &hot {
                rows.push((
                    "settlements not posted in time",
                    h.settlements_not_posted_in_time,
                ));
                rows.push((
                    "settlements left unposted by a writer",
                    h.settlements_stuck_with_a_writer,
                ));
                rows.push(("holds of dead instances", h.holds_of_dead_instances));
                rows.push((
                    "hot balances differing from Postgres",
                    h.hot_balances_differing.unwrap_or(0),
                ));
            }
            let mut bad = 0;
            for (what, n) in rows {
                println!(
                    "{:<50} {}",
                    what,
                    if n == 0 {
                        "ok".to_string()
                    } else {
                        format!("VIOLATION ({n})")
                    }
                );
                bad += n;
            }
            match &hot {
                Some(h) => {
                    println!(
                        "{:<50} {} queued, oldest {} s",
                        "settlement journal", h.journal_backlog, h.journal_lag_secs
                    );
                    if h.hot_balances_differing.is_none() {
                        println!("(hot balances not compared: the journal is not empty)");
                    }
                }
                None => {
                    println!("{:<50} NOT CHECKED (Redis unreachable)", "hot state");
                    bad += 1;
                }
            }
            Ok(if bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// Records a change made with the CLI in the audit log.
async fn audit(
    pg: &infron_store::PgPool,
    account: Uuid,
    action: &'static str,
    target_kind: &'static str,
    target_id: String,
    details: serde_json::Value,
) {
    infron_accounts::audit::record_with(
        pg,
        &infron_accounts::AuditCtx::cli(),
        infron_accounts::Change {
            account_id: Some(account),
            action,
            target_kind,
            target_id,
            details,
        },
    )
    .await;
}

async fn add_user(
    settings: &Settings,
    email: &str,
    account: Uuid,
    role: &str,
) -> anyhow::Result<ExitCode> {
    use std::io::Read;
    let email = infron_accounts::Email::parse("email", email)
        .map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let role: infron_accounts::Role = role.parse().map_err(|e| anyhow::anyhow!("--role: {e}"))?;
    let pg = pg(settings).await?;
    if infron_store::accounts::get(&pg, account).await?.is_none() {
        bail!("no account {account}");
    }
    if role == infron_accounts::Role::Owner
        && infron_store::members::list(&pg, account)
            .await?
            .iter()
            .any(|m| m.role == "owner" && !m.email.eq_ignore_ascii_case(email.as_str()))
    {
        bail!(
            "cannot make {email} owner of {account}: it has an owner (transfer ownership instead)"
        );
    }
    let user = match infron_store::users::user_by_email(&pg, email.as_str()).await? {
        Some(u) => u.id,
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the password from stdin")?;
            let password =
                infron_accounts::Password::parse("password", s.trim_end_matches(['\r', '\n']))
                    .map_err(|e| anyhow::anyhow!("password: {e}"))?;
            let hash = infron_accounts::password::hash(&password).await?;
            let mut tx = pg.begin().await.context("cannot start a transaction")?;
            let row =
                infron_store::users::insert_user(&mut tx, Uuid::now_v7(), email.as_str(), &hash)
                    .await?
                    .context("the user was created meanwhile; run again")?;
            tx.commit().await.context("cannot commit")?;
            eprintln!("user {} created ({email})", row.id);
            row.id
        }
    };
    infron_store::users::mark_verified(&pg, user).await?;
    if infron_store::members::role_of(&pg, account, user)
        .await?
        .is_none()
    {
        let mut tx = pg.begin().await.context("cannot start a transaction")?;
        let added = infron_store::members::insert(&mut tx, account, user, role.as_str())
            .await
            .with_context(|| format!("cannot make {email} {role} of {account}"))?;
        if !added {
            bail!("cannot make {email} {role} of {account}");
        }
        tx.commit().await.context("cannot commit")?;
        infron_accounts::audit::record_with(
            &pg,
            &infron_accounts::AuditCtx::cli(),
            infron_accounts::Change {
                account_id: Some(account),
                action: "member.add",
                target_kind: "user",
                target_id: user.to_string(),
                details: serde_json::json!({ "email": email.as_str(), "role": role.as_str() }),
            },
        )
        .await;
    }
    eprintln!("{email} is a member of {account}");
    Ok(ExitCode::SUCCESS)
}

async fn create_operator(
    settings: &Settings,
    email: &str,
    password_stdin: bool,
) -> anyhow::Result<ExitCode> {
    use std::io::Read;
    let email = infron_accounts::Email::parse("email", email)
        .map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let (password, generated) = if password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the password from stdin")?;
        (s.trim_end_matches(['\r', '\n']).to_string(), false)
    } else {
        (infron_accounts::sessions::new_token(), true)
    };
    let password = infron_accounts::Password::parse("password", &password)
        .map_err(|e| anyhow::anyhow!("password: {e}"))?;
    let pg = pg(settings).await?;
    let hash = infron_accounts::password::hash(&password).await?;
    let Some(row) =
        infron_store::users::insert_operator(&pg, Uuid::now_v7(), email.as_str(), &hash).await?
    else {
        bail!("an operator with the email {email} exists");
    };
    infron_accounts::audit::record_with(
        &pg,
        &infron_accounts::AuditCtx::cli(),
        infron_accounts::Change {
            account_id: None,
            action: "operator.create",
            target_kind: "operator",
            target_id: row.id.to_string(),
            details: serde_json::json!({ "email": email.as_str() }),
        },
    )
    .await;
    eprintln!("operator {} created ({email})", row.id);
    if generated {
        eprintln!(
            "the password below is shown only once; sign in at POST /api/v1/operator/auth/signin"
        );
        println!("{}", password.expose());
    }
    Ok(ExitCode::SUCCESS)
}

fn catalog(c: CatalogCommand) -> anyhow::Result<ExitCode> {
    let CatalogCommand::Import {
        litellm,
        openrouter,
        overrides,
        catalog,
        output,
        dry_run,
    } = c;
    if litellm.is_none() && openrouter.is_none() {
        bail!("give --litellm and/or --openrouter");
    }
    let report = infron_catalog_import::run(&infron_catalog_import::Options {
        litellm,
        openrouter,
        overrides,
        catalog,
        output,
        dry_run,
    })?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

async fn pg(settings: &Settings) -> anyhow::Result<infron_store::PgPool> {
    infron_store::connect_postgres(settings.database_url(), 2)
        .await
        .context("cannot connect to Postgres (DATABASE_URL)")
}

async fn hot(settings: &Settings) -> anyhow::Result<HotState> {
    let target = RedisTarget::parse(settings.redis_url()).context("REDIS_URL")?;
    let conn = RedisConn::connect(&target)
        .await
        .context("cannot connect to Redis (REDIS_URL)")?;
    Ok(HotState::new(
        conn,
        HotKeys::new(settings.redis_prefix.clone(), settings.redis_shards),
    ))
}

async fn accounts(settings: &Settings, c: AccountsCommand) -> anyhow::Result<ExitCode> {
    let pg = pg(settings).await?;
    match c {
        AccountsCommand::Create {
            name,
            allow_training,
        } => {
            let name = name.trim();
            if name.is_empty() || name.len() > 200 {
                bail!("--name must be 1 to 200 characters");
            }
            let row = infron_store::accounts::create(&pg, Uuid::now_v7(), name).await?;
            if allow_training {
                infron_store::accounts::set_allow_training(&pg, row.id, true).await?;
            }
            println!("{}", row.id);
        }
        AccountsCommand::SetRateLimit {
            id,
            rpm,
            tpm,
            default_key_rpm,
            default_key_tpm,
        } => {
            let Some(before) = infron_store::accounts::get(&pg, id).await? else {
                bail!("no account {id}");
            };
            let limits = infron_store::accounts::AccountRateLimits {
                rpm: per_minute(rpm.as_deref(), before.rate_limit_rpm, "rpm")?,
                tpm: per_minute(tpm.as_deref(), before.rate_limit_tpm, "tpm")?,
                default_key_rpm: per_minute(
                    default_key_rpm.as_deref(),
                    before.default_key_rpm,
                    "default-key-rpm",
                )?,
                default_key_tpm: per_minute(
                    default_key_tpm.as_deref(),
                    before.default_key_tpm,
                    "default-key-tpm",
                )?,
            };
            let after = infron_store::accounts::set_rate_limits(&pg, id, limits)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no account {id}"))?;
            audit(
                &pg,
                id,
                "account.settings",
                "account",
                id.to_string(),
                serde_json::json!({ "rate_limit_rpm": after.rate_limit_rpm,
                                    "rate_limit_tpm": after.rate_limit_tpm,
                                    "default_key_rpm": after.default_key_rpm,
                                    "default_key_tpm": after.default_key_tpm }),
            )
            .await;
            println!(
                "account {id} rpm {} tpm {} default key rpm {} default key tpm {}",
                show_per_minute(after.rate_limit_rpm),
                show_per_minute(after.rate_limit_tpm),
                show_per_minute(after.default_key_rpm),
                show_per_minute(after.default_key_tpm)
            );
        }
        AccountsCommand::Show { id } => {
            let Some(account) = infron_store::accounts::get(&pg, id).await? else {
                bail!("no account {id}");
            };
            let totals = infron_store::ledger::tenant_totals(&pg, id).await?;
            println!("account  {}", account.id);
            println!("name     {}", account.name);
            println!(
                "training {}",
                if account.allow_training {
                    "allowed"
                } else {
                    "excluded"
                }
            );
            if let Some(t) = totals {
                println!("credited ${}", Usd::rounded(t.credited));
                println!("used     ${}", Usd::rounded(t.debited));
                println!("balance  ${}", Usd::rounded(t.balance));
            }
            let keys = infron_store::keys::list_for_account(&pg, id).await?;
            println!("keys     {}", keys.len());
            for k in keys {
                println!(
                    "  {}  {}  {}  {}",
                    k.id,
                    k.key_hint,
                    if k.disabled { "disabled" } else { "active" },
                    if k.name.is_empty() { "-" } else { &k.name }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn keys(settings: &Settings, c: KeysCommand) -> anyhow::Result<ExitCode> {
    let pg = pg(settings).await?;
    match c {
        KeysCommand::Create {
            account,
            name,
            limit,
            limit_reset,
            expires_at,
        } => {
            if infron_store::accounts::get(&pg, account).await?.is_none() {
                bail!("no account {account}");
            }
            let limits = KeyLimitArgs::parse(
                limit.as_deref(),
                limit_reset.as_deref(),
                expires_at.as_deref(),
            )?;
            let key = ApiKey::generate();
            let hash = key.hash(&settings.key_secret);
            let row = infron_store::keys::insert(
                &pg,
                infron_store::keys::NewApiKey {
                    id: Uuid::now_v7(),
                    account_id: account,
                    name: &name,
                    key_hash: &hash,
                    key_hint: &key.hint(),
                },
            )
            .await?;
            if limits.is_set() {
                infron_store::keys::set_limit(
                    &pg,
                    row.id,
                    limits.limit,
                    limits.reset,
                    limits.expires_at,
                )
                .await?;
            }
            audit(
                &pg,
                account,
                "key.create",
                "key",
                crate::routes::keys::hex_of(&hash),
                serde_json::json!({ "name": name, "limit": limits.limit, "limit_reset": limits.reset,
                                    "expires_at": limits.expires_at }),
            )
            .await;
            eprintln!(
                "key id {} created; the secret below is shown only once",
                row.id
            );
            println!("{}", key.expose());
        }
        KeysCommand::SetLimit {
            id,
            limit,
            limit_reset,
            expires_at,
        } => {
            let Some(before) = infron_store::keys::get(&pg, id).await? else {
                bail!("no key {id}");
            };
            let limits =
                KeyLimitArgs::parse(Some(&limit), limit_reset.as_deref(), expires_at.as_deref())?;
            let after = infron_store::keys::set_limit(
                &pg,
                id,
                limits.limit,
                limits.reset,
                limits.expires_at,
            )
            .await?
            .ok_or_else(|| anyhow::anyhow!("no key {id}"))?;
            // Keep the hot copy of the current period in step with the new limit.
            infron_billing::limits::apply_limit_change(
                &hot(settings).await?,
                after.account_id,
                id,
                (before.credit_limit, before.limit_reset.as_deref()),
                (after.credit_limit, after.limit_reset.as_deref()),
            )
            .await?;
            audit(
                &pg,
                after.account_id,
                "key.update",
                "key",
                id.to_string(),
                serde_json::json!({ "limit": after.credit_limit, "limit_reset": after.limit_reset,
                                    "expires_at": after.expires_at }),
            )
            .await;
            println!(
                "key {} limit {} reset {} expires {}",
                after.id,
                after
                    .credit_limit
                    .map_or("none".to_string(), |l| format!("${}", Usd::rounded(l))),
                after.limit_reset.as_deref().unwrap_or("never"),
                after
                    .expires_at
                    .map_or("never".to_string(), |t| t.to_rfc3339())
            );
        }
        KeysCommand::SetRateLimit { id, rpm, tpm } => {
            let Some(before) = infron_store::keys::get(&pg, id).await? else {
                bail!("no key {id}");
            };
            let rpm = per_minute(rpm.as_deref(), before.rate_limit_rpm, "rpm")?;
            let tpm = per_minute(tpm.as_deref(), before.rate_limit_tpm, "tpm")?;
            let after = infron_store::keys::set_rate_limit(&pg, id, rpm, tpm)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no key {id}"))?;
            audit(
                &pg,
                after.account_id,
                "key.update",
                "key",
                id.to_string(),
                serde_json::json!({ "rate_limit_rpm": after.rate_limit_rpm,
                                    "rate_limit_tpm": after.rate_limit_tpm }),
            )
            .await;
            println!(
                "key {} rpm {} tpm {}",
                after.id,
                show_per_minute(after.rate_limit_rpm),
                show_per_minute(after.rate_limit_tpm)
            );
        }
        KeysCommand::Disable { id } => match infron_store::keys::set_disabled(&pg, id, true).await?
        {
            Some(k) => {
                audit(
                    &pg,
                    k.account_id,
                    "key.update",
                    "key",
                    id.to_string(),
                    serde_json::json!({ "disabled": true }),
                )
                .await;
                println!("key {} ({}) disabled", k.id, k.key_hint)
            }
            None => bail!("no key {id}"),
        },
    }
    Ok(ExitCode::SUCCESS)
}

struct KeyLimitArgs {
    limit: Option<rust_decimal::Decimal>,
    reset: Option<&'static str>,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl KeyLimitArgs {
    fn parse(
        limit: Option<&str>,
        reset: Option<&str>,
        expires_at: Option<&str>,
    ) -> anyhow::Result<KeyLimitArgs> {
        let limit = match limit {
            None | Some("none") => None,
            Some(l) => {
                let usd: Usd = l.parse().map_err(|e| anyhow::anyhow!("--limit: {e}"))?;
                if usd.is_negative() {
                    bail!("--limit must not be negative");
                }
                Some(usd.decimal())
            }
        };
        let reset = match reset {
            None | Some("none") => None,
            Some(r) => Some(
                LimitReset::parse(r)
                    .ok_or_else(|| {
                        anyhow::anyhow!("--limit-reset must be daily, weekly, monthly or none")
                    })?
                    .as_str(),
            ),
        };
        if reset.is_some() && limit.is_none() {
            bail!("--limit-reset needs --limit");
        }
        let expires_at = match expires_at {
            None | Some("none") => None,
            Some(t) => Some(
                chrono::DateTime::parse_from_rfc3339(t)
                    .map_err(|e| {
                        anyhow::anyhow!("--expires-at: '{t}' is not an RFC 3339 time: {e}")
                    })?
                    .with_timezone(&chrono::Utc),
            ),
        };
        Ok(KeyLimitArgs {
            limit,
            reset,
            expires_at,
        })
    }

    fn is_set(&self) -> bool {
        self.limit.is_some() || self.expires_at.is_some()
    }
}

/// Where a server bound to `bind` answers locally: a wildcard address is probed on loopback.
fn probe_address(bind: &str) -> String {
    match bind.rsplit_once(':') {
        Some(("0.0.0.0", port)) | Some(("", port)) => format!("127.0.0.1:{port}"),
        Some(("[::]", port)) => format!("[::1]:{port}"),
        _ => bind.to_string(),
    }
}

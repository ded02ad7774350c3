//! Building and running the server: pools, migrations, background tasks, the HTTP listener.

use std::net::TcpListener;
use std::sync::Arc;

use actix_http::error::DispatchError;
use actix_http::{HttpService, Protocol};
use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_web::dev::{AppConfig, Server};
use actix_web::{web, App};
use infron_billing::writer::LedgerWriter;
use infron_billing::HotLedger;
use infron_router::{Catalog, ProviderClient};
use infron_store::hot::journal::Journal;
use infron_store::hot::HotKeys;
use infron_store::redis_conn::{RedisConn, RedisTarget};
use tokio_util::sync::CancellationToken;

use crate::auth::{Authenticator, KeyCache};
use crate::settings::Settings;
use crate::shaped_errors::ShapedErrors;
use crate::state::{AppState, CatalogEnv};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Catalog(#[from] infron_router::CatalogError),
    #[error("cannot connect to Postgres (DATABASE_URL): {0}")]
    Postgres(infron_store::StoreError),
    #[error("cannot use Redis (REDIS_URL): {0}")]
    Redis(infron_store::StoreError),
    #[error("migrations failed: {0}")]
    Migrate(infron_store::StoreError),
    #[error("cannot bind INFRON_BIND {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    #[error("cannot set up Stripe: {0}")]
    Stripe(infron_billing::topups::TopupError),
    #[error("cannot use Redis (REDIS_URL): {0}")]
    Ledger(infron_billing::BillingError),
    #[error("cannot set up email: {0}")]
    Mail(String),
}

pub struct Application {
    port: u16,
    server: Server,
    pub state: Arc<AppState>,
    stop: CancellationToken,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Application {
    /// Loads the catalog, connects, migrates, binds (port 0 picks a free port) and prepares the
    /// server and its background tasks. Nothing is served until `run_until_stopped`.
    pub async fn build(settings: Settings) -> Result<Application, StartError> {
        let catalog = Catalog::load(&settings.catalog_path, &|k| std::env::var(k).ok())?;
        Self::build_with_catalog(settings, catalog).await
    }

    pub async fn build_with_catalog(
        settings: Settings,
        catalog: Catalog,
    ) -> Result<Application, StartError> {
        Self::build_with_catalog_env(settings, catalog, Arc::new(|k: &str| std::env::var(k).ok()))
            .await
    }

    /// As `build_with_catalog`, with the environment a reloaded catalog reads `${VAR}`s and
    /// provider keys from.
    pub async fn build_with_catalog_env(
        settings: Settings,
        catalog: Catalog,
        catalog_env: CatalogEnv,
    ) -> Result<Application, StartError> {
        let pg =
            infron_store::connect_postgres(settings.database_url(), settings.db_max_connections)
                .await
                .map_err(StartError::Postgres)?;
        infron_store::migrate(&pg)
            .await
            .map_err(StartError::Migrate)?;
        let redis = infron_store::connect_redis(settings.redis_url())
            .await
            .map_err(StartError::Redis)?;
        let target = RedisTarget::parse(settings.redis_url()).map_err(StartError::Redis)?;
        let keys = HotKeys::new(settings.redis_prefix.clone(), settings.redis_shards);
        let ledger = HotLedger::connect(pg.clone(), &target, keys.clone(), settings.ledger.clone())
            .await
            .map_err(StartError::Ledger)?;
        // The writer's reads block: a connection of its own.
        let journal = Journal::new(
            RedisConn::connect_blocking(&target, std::time::Duration::from_millis(250))
                .await
                .map_err(StartError::Redis)?,
            keys,
        );
        sqlx::query("UPDATE billing_settings SET credit_expiry_days = $1")
            .bind(settings.credit_expiry_days)
            .execute(&pg)
            .await
            .map_err(|e| StartError::Migrate(e.into()))?;
        let providers = ProviderClient::new(settings.timeouts.clone())
            .map_err(|e| StartError::Http(e.to_string()))?;
        let auth = Authenticator {
            pg: pg.clone(),
            secret: settings.key_secret.clone(),
            cache: Arc::new(KeyCache::new(settings.key_cache_ttl)),
        };
        let listener = TcpListener::bind(&settings.bind)
            .map_err(|e| StartError::Bind(settings.bind.clone(), e))?;
        let local = listener
            .local_addr()
            .map_err(|e| StartError::Bind(settings.bind.clone(), e))?;
        let port = local.port();
        let workers = settings.workers.max(1);
        let (checkout, webhook) =
            crate::routes::stripe::build(&settings.stripe).map_err(StartError::Stripe)?;
        let drain = settings.drain;
        let loopback_aliases = settings.tenants.public_url.is_none()
            && listener
                .local_addr()
                .is_ok_and(|a| a.ip().is_loopback() || a.ip().is_unspecified());
        let public_url = settings.tenants.public_url.clone().unwrap_or_else(|| {
            let host = match listener.local_addr() {
                Ok(a) if a.ip().is_ipv6() && !a.ip().is_unspecified() => format!("[{}]", a.ip()),
                Ok(a) if !a.ip().is_unspecified() => a.ip().to_string(),
                _ => "127.0.0.1".to_string(),
            };
            format!("http://{host}:{port}")
        });
        let accounts = build_accounts(
            &settings,
            pg.clone(),
            redis.clone(),
            public_url,
            loopback_aliases,
        )?;
        let state = Arc::new(
            AppState::new(
                settings,
                crate::state::Stores { pg, ledger, redis },
                auth,
                providers,
                catalog,
                accounts,
            )
            .with_stripe(checkout, webhook)
            .with_catalog_env(catalog_env),
        );

        let stop = CancellationToken::new();
        let consumer = format!("{}-{}", hostname(), uuid::Uuid::now_v7().simple());
        let writer = LedgerWriter::new(
            state.pg.clone(),
            state.ledger.state().clone(),
            journal,
            consumer,
            state.writer_stats.clone(),
        );
        let mut background = vec![tokio::spawn(writer.run(stop.clone()))];
        background.push(tokio::spawn(state.ledger.clone().run_upkeep(stop.clone())));
        background.push(tokio::spawn(infron_billing::expiry::run(
            state.pg.clone(),
            state.ledger.state().clone(),
            state.settings.credit_expiry_interval,
            stop.clone(),
        )));
        background.push(tokio::spawn(maintain_partitions(
            state.pg.clone(),
            stop.clone(),
        )));
        background.push(tokio::spawn(follow_auth_changes(
            state.clone(),
            stop.clone(),
        )));
        background.push(tokio::spawn(refresh_health(state.clone(), stop.clone())));
        background.push(tokio::spawn(crate::alerts::run_checks(
            state.clone(),
            stop.clone(),
        )));
        background.push(tokio::spawn(crate::alerts::run_deliveries(
            state.clone(),
            stop.clone(),
        )));

        let data = web::Data::from(state.clone());
        // Assembled from actix-server and actix-http rather than `HttpServer` so that each
        // connection passes through `ShapedErrors` (OpenAI-shaped errors for requests the HTTP
        // parser refuses); otherwise configured as `HttpServer` would be.
        let builder = actix_server::Server::build()
            .workers(workers)
            .disable_signals()
            // Streams end by themselves at the drain deadline; this only bounds a stuck
            // connection.
            .shutdown_timeout(drain.as_secs() + 10);
        let shutdown = builder.graceful_shutdown_signal();
        let server = builder
            .listen("infron", listener, move || {
                let data = data.clone();
                let app = App::new()
                    .wrap(actix_web::middleware::from_fn(
                        crate::rate_limit::headers_middleware,
                    ))
                    .wrap(actix_web::middleware::from_fn(crate::request_id::assign))
                    .app_data(data)
                    .app_data(crate::routes::query_config())
                    .app_data(crate::routes::path_config())
                    .configure(crate::routes::configure)
                    .configure(crate::openapi::configure)
                    .configure(crate::dashboard::configure)
                    .default_service(web::to(crate::routes::not_found))
                    .into_factory()
                    .map_err(|e| e.error_response());
                let shutdown = shutdown.clone();
                let http = HttpService::build()
                    .graceful_shutdown_signal(move || {
                        let shutdown = shutdown.clone();
                        async move { shutdown.notified().await }
                    })
                    .local_addr(local)
                    .finish(map_config(app, |_| AppConfig::default()));
                fn_service(|io: tokio::net::TcpStream| async move {
                    let peer = io.peer_addr().ok();
                    Ok::<_, DispatchError>((ShapedErrors::new(io), Protocol::Http1, peer))
                })
                .and_then(http)
            })
            .map_err(|e| StartError::Bind("listener".into(), e))?
            .run();
        Ok(Application {
            port,
            server,
            state,
            stop,
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the server stops (on Ctrl-C/SIGTERM when `handle_signals`, or `stop`),
    /// then waits until every settlement of this instance is posted (or, with Postgres away,
    /// safely in the journal) before returning.
    pub async fn run_until_stopped(self, handle_signals: bool) -> std::io::Result<()> {
        let handle = self.server.handle();
        if handle_signals {
            tokio::spawn(reload_on_hangup(self.state.clone()));
            let state = self.state.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                drain(&state, handle).await;
            });
        }
        let result = self.server.await;
        let state = self.state.clone();
        if !state.ledger.flush(std::time::Duration::from_secs(10)).await {
            tracing::warn!(
                unposted = state.ledger.unposted(),
                "stopping with settlements not yet in Postgres; they wait in the journal for another instance"
            );
        }
        self.stop.cancel();
        for task in self.background {
            let _ = task.await;
        }
        tracing::info!("stopped");
        result
    }

    /// A handle to stop the server as SIGTERM would (drain, then stop).
    pub fn stopper(&self) -> Stopper {
        Stopper {
            state: self.state.clone(),
            handle: self.server.handle(),
        }
    }
}

/// Stops a running `Application` gracefully.
#[derive(Clone)]
pub struct Stopper {
    state: Arc<AppState>,
    handle: actix_web::dev::ServerHandle,
}

impl Stopper {
    pub async fn stop(self) {
        drain(&self.state, self.handle).await;
    }
}

/// SIGTERM: stop accepting connections, give running requests and streams the drain period,
/// then end what is still open (streams get an error chunk and `[DONE]`, each charged for
/// what it delivered) and stop.
async fn drain(state: &AppState, handle: actix_web::dev::ServerHandle) {
    let period = state.settings.drain;
    tracing::info!(
        drain_secs = period.as_secs(),
        in_flight = state.ledger.in_flight(),
        "shutting down: no new connections; running requests may finish"
    );
    state.shutdown.draining.cancel();
    let deadline = state.shutdown.deadline.clone();
    tokio::spawn(async move {
        tokio::time::sleep(period).await;
        deadline.cancel();
    });
    let stopping = tokio::spawn(handle.stop(true));
    // Once every request has finished there is nothing left to wait for.
    loop {
        if state.ledger.in_flight() == 0 || state.shutdown.deadline.is_cancelled() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    if !state.shutdown.deadline.is_cancelled() {
        tracing::info!("every running request finished");
    } else {
        tracing::warn!(
            in_flight = state.ledger.in_flight(),
            "drain period over: ending the requests still running"
        );
    }
    let _ = stopping.await;
}

fn build_accounts(
    settings: &Settings,
    pg: infron_store::PgPool,
    redis: infron_store::RedisConn,
    public_url: String,
    loopback_aliases: bool,
) -> Result<infron_accounts::Accounts, StartError> {
    use secrecy::ExposeSecret;
    let t = &settings.tenants;
    let mailer = infron_accounts::mail::Mailer::new(
        t.smtp_url.as_ref().map(|u| u.expose_secret()),
        &t.email_from,
    )
    .map_err(StartError::Mail)?;
    let sessions = infron_accounts::Sessions::new(
        infron_store::sessions::SessionStore::new(redis, &settings.redis_prefix),
        infron_accounts::SessionConfig {
            idle: t.session_idle,
            absolute: t.session_absolute,
        },
    );
    Ok(infron_accounts::Accounts::new(
        pg,
        sessions,
        mailer,
        infron_accounts::AccountsConfig {
            public_url,
            loopback_aliases,
            throttle: infron_accounts::ThrottleConfig {
                window: t.signin_window,
                per_ip: t.signin_max_per_ip,
                per_email: t.signin_max_per_email,
            },
        },
    ))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// `kill -HUP` reloads the catalog; an invalid file is logged and the catalog in effect stays.
async fn reload_on_hangup(state: Arc<AppState>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hangup.recv().await.is_some() {
            match state.reload_catalog() {
                Ok(c) => tracing::info!(models = c.models.len(), "catalog reloaded (SIGHUP)"),
                Err(e) => {
                    tracing::error!(error = %e, "catalog reload failed; keeping the catalog in effect")
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = state;
}

/// Keeps the in-process health snapshot close to Redis, where every instance records outcomes.
async fn refresh_health(state: Arc<AppState>, stop: CancellationToken) {
    let every = state.settings.routing.health_refresh;
    loop {
        let keys = state.catalog().endpoint_keys();
        if let Err(e) = state.health.flush().await {
            tracing::warn!(error = %e, "could not record endpoint health");
        }
        if let Err(e) = state.health.refresh(&keys).await {
            tracing::warn!(error = %e, "could not refresh endpoint health");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "infron".into())
}

/// Creates request-log partitions ahead (every six hours) and compacts the finance rollups
/// (every minute; the views are exact without it, only slower to read).
async fn maintain_partitions(pg: infron_store::PgPool, stop: CancellationToken) {
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
        }
        ticks += 1;
        if ticks.is_multiple_of(360) {
            if let Err(e) = infron_store::db::ensure_partitions(&pg).await {
                tracing::warn!(error = %e, "could not create request-log partitions");
            }
        }
        if let Err(e) = sqlx::query("SELECT * FROM finance.compact_rollups()")
            .execute(&pg)
            .await
        {
            tracing::warn!(error = %e, "could not compact the finance rollups");
        }
    }
}

/// Drops cached keys on every instance whenever a key or an account changes in Postgres (the
/// `auth_revision` trigger notifies `infron_auth`). Notifications make it immediate; polling the
/// revision every 250 ms covers notifications missed while the listening connection was down.
/// If Postgres is unreachable, the cache TTL bounds staleness.
async fn follow_auth_changes(state: Arc<AppState>, stop: CancellationToken) {
    use infron_store::keys::{auth_revision, AUTH_CHANNEL};
    let mut seen = auth_revision(&state.pg).await.ok();
    let mut listener: Option<sqlx::postgres::PgListener> = None;
    let mut poll = tokio::time::interval(std::time::Duration::from_millis(250));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if listener.is_none() {
            match sqlx::postgres::PgListener::connect_with(&state.pg).await {
                Ok(mut l) => match l.listen(AUTH_CHANNEL).await {
                    Ok(()) => listener = Some(l),
                    Err(e) => tracing::warn!(error = %e, "cannot listen for key changes"),
                },
                Err(e) => tracing::warn!(error = %e, "cannot listen for key changes"),
            }
        }
        let notified = async {
            match listener.as_mut() {
                Some(l) => l.try_recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            n = notified => match n {
                Ok(Some(_)) => state.auth.cache.clear(),
                // The listening connection dropped and came back: a change made meanwhile
                // shows in the revision, which the poll compares. Clearing here would make
                // every request look its key up again, in Postgres, which may be the very thing
                // that is away.
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "key-change listener failed; reconnecting");
                    listener = None;
                }
            },
            _ = poll.tick() => match auth_revision(&state.pg).await {
                Ok(r) if seen != Some(r) => {
                    seen = Some(r);
                    state.auth.cache.clear();
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "cannot read the auth revision"),
            },
        }
    }
}

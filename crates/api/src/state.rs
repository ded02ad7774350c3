use std::sync::{Arc, RwLock};

use infron_billing::topups::{StripeCheckout, WebhookVerifier};
use infron_billing::writer::WriterStats;
use infron_billing::HotLedger;
use infron_router::cache::ResponseCache;
use infron_router::health::HealthBoard;
use infron_router::{Catalog, CatalogError, ProviderClient};
use infron_store::{PgPool, RedisConn};
use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::settings::Settings;

/// Everything a request handler needs, shared by all workers.
pub struct AppState {
    pub settings: Settings,
    pub pg: PgPool,
    /// Holds, settlements and the hot balances (the money path).
    pub ledger: Arc<HotLedger>,
    /// Pooled Redis connections for everything else (health, the response cache).
    pub redis: RedisConn,
    pub writer_stats: Arc<WriterStats>,
    /// What `GET /metrics` exposes.
    pub metrics: Arc<crate::metrics::Metrics>,
    pub shutdown: Shutdown,
    pub auth: Authenticator,
    pub providers: ProviderClient,
    /// Stripe top-ups; each part is None while unconfigured, and its endpoint answers 503.
    pub stripe_checkout: Option<StripeCheckout>,
    pub stripe_webhook: Option<WebhookVerifier>,
    /// Endpoint health shared with the other instances through Redis.
    pub health: Arc<HealthBoard>,
    /// Users, sessions, roles, invitations and the audit log.
    pub accounts: infron_accounts::Accounts,
    /// None when `INFRON_RESPONSE_CACHE=off`.
    pub response_cache: Option<Arc<ResponseCache>>,
    catalog: RwLock<Arc<Catalog>>,
    /// Where `${VAR}` in the catalog and provider keys are read from when it is reloaded.
    catalog_env: CatalogEnv,
}

/// Where state lives: Postgres, the hot ledger in Redis, and pooled Redis connections.
pub struct Stores {
    pub pg: PgPool,
    pub ledger: Arc<HotLedger>,
    pub redis: RedisConn,
}

/// The environment a catalog is loaded with.
pub type CatalogEnv = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

impl AppState {
    pub fn new(
        settings: Settings,
        stores: Stores,
        auth: Authenticator,
        providers: ProviderClient,
        catalog: Catalog,
        accounts: infron_accounts::Accounts,
    ) -> Self {
        let Stores { pg, ledger, redis } = stores;
        let health = Arc::new(HealthBoard::new(
            redis.clone(),
            &settings.redis_prefix,
            settings.routing.health.clone(),
        ));
        let response_cache = settings.routing.response_cache.then(|| {
            Arc::new(ResponseCache::new(
                redis.clone(),
                &settings.redis_prefix,
                settings.routing.response_cache_ttl,
            ))
        });
        Self {
            settings,
            pg,
            ledger,
            redis,
            writer_stats: Arc::new(WriterStats::default()),
            metrics: Arc::default(),
            shutdown: Shutdown::default(),
            auth,
            providers,
            stripe_checkout: None,
            stripe_webhook: None,
            health,
            accounts,
            response_cache,
            catalog: RwLock::new(Arc::new(catalog)),
            catalog_env: Arc::new(|k: &str| std::env::var(k).ok()),
        }
    }

    pub fn with_stripe(
        mut self,
        checkout: Option<StripeCheckout>,
        webhook: Option<WebhookVerifier>,
    ) -> Self {
        self.stripe_checkout = checkout;
        self.stripe_webhook = webhook;
        self
    }

    /// The catalog in effect; a request keeps the one it started with.
    pub fn catalog(&self) -> Arc<Catalog> {
        match self.catalog.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace_catalog(&self, catalog: Catalog) {
        match self.catalog.write() {
            Ok(mut c) => *c = Arc::new(catalog),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(catalog),
        }
    }

    /// Uses `env` instead of the process environment when the catalog is reloaded.
    pub fn with_catalog_env(mut self, env: CatalogEnv) -> Self {
        self.catalog_env = env;
        self
    }

    /// Reloads the catalog file (`INFRON_CATALOG`). An invalid file changes nothing: the
    /// catalog in effect stays, and the error says what is wrong.
    pub fn reload_catalog(&self) -> Result<Arc<Catalog>, CatalogError> {
        let env = self.catalog_env.clone();
        let fresh = Catalog::load(&self.settings.catalog_path, &move |k| env(k))?;
        self.replace_catalog(fresh);
        Ok(self.catalog())
    }
}

/// Graceful shutdown as request handlers see it: `draining` from SIGTERM on (readiness fails,
/// nothing new should start), `deadline` fired when the drain period is over (streams still
/// open are ended with an error chunk, waiting provider calls are abandoned).
#[derive(Default)]
pub struct Shutdown {
    pub draining: CancellationToken,
    pub deadline: CancellationToken,
}

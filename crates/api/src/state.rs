use std::sync::{Arc, RwLock};

use infron_billing::reservation::Reservations;
use infron_billing::settlement::Settler;
use infron_router::{Catalog, ProviderClient};
use infron_store::hot::HotBalance;
use infron_store::PgPool;

use crate::auth::Authenticator;
use crate::settings::Settings;

/// Everything a request handler needs, shared by all workers.
pub struct AppState {
    pub settings: Settings,
    pub pg: PgPool,
    pub hot: Arc<HotBalance>,
    pub reservations: Reservations,
    pub settler: Settler,
    pub auth: Authenticator,
    pub providers: ProviderClient,
    catalog: RwLock<Arc<Catalog>>,
}

impl AppState {
    pub fn new(
        settings: Settings,
        pg: PgPool,
        hot: Arc<HotBalance>,
        auth: Authenticator,
        providers: ProviderClient,
        catalog: Catalog,
    ) -> Self {
        Self {
            reservations: Reservations::new(pg.clone(), hot.clone()),
            settler: Settler::new(pg.clone(), hot.clone()),
            settings,
            pg,
            hot,
            auth,
            providers,
            catalog: RwLock::new(Arc::new(catalog)),
        }
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
}

//! The money path of the request: holds reserved against the hot balance in Redis before a
//! provider is called, settlements queued in the journal before the client gets its answer,
//! and the safety nets that make a single failure lose no charge (docs/architecture.md, "The
//! money path"):
//! - every hold is a lease that this instance renews while its request runs; when an instance
//!   dies its leases run out and any instance's sweeper releases them, or charges a stream the
//!   progress it last recorded;
//! - every settlement this instance queued stays in its memory until the journal's consumer
//!   group shows it posted, and is queued again if Redis lost it;
//! - when Redis cannot take a settlement it is posted straight to Postgres, and when neither
//!   can, kept and retried.

mod reserve;
mod settle;
mod upkeep;

use std::sync::Arc;
use std::time::Duration;

use infron_store::hot::journal::Journal;
use infron_store::hot::{HotKeys, HotState, KeyScope, OpBatcher, RateState};
use infron_store::redis_conn::{RedisConn, RedisTarget};
use infron_store::PgPool;
use uuid::Uuid;

use crate::{BillingError, Usd};

pub use reserve::InFlight;
pub use settle::{Retained, Settled};

/// Money set aside for one request until it settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub account: Uuid,
    pub request: Uuid,
    pub amount: Usd,
    /// The key's limit period the hold also counts against.
    pub key: Option<KeyScope>,
    /// The rate limits the reservation took from, as they stood after it (token limits are
    /// corrected by what the request used when it settles).
    pub rate: Vec<RateState>,
}

#[derive(Debug, Clone)]
pub struct HotLedgerConfig {
    /// How long a hold lives without renewal: an instance that dies releases its holds (or has
    /// its streams charged) this long after its last renewal.
    pub lease: Duration,
    /// How often running requests' leases are renewed.
    pub renew_every: Duration,
    /// Journal entries per shard past which new requests are refused (503): Postgres has been
    /// away so long that Redis memory is at stake.
    pub journal_limit: i64,
    /// Settlements this instance keeps in memory until they are posted; past it new requests
    /// are refused (503).
    pub retain_limit: usize,
    /// Script calls in flight at once on the request path.
    pub batches_in_flight: usize,
}

impl Default for HotLedgerConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(20),
            renew_every: Duration::from_secs(5),
            journal_limit: 2_000_000,
            retain_limit: 1_000_000,
            batches_in_flight: 2,
        }
    }
}

pub struct HotLedger {
    pg: PgPool,
    batcher: OpBatcher,
    state: HotState,
    journal: Journal,
    cfg: HotLedgerConfig,
    inflight: InFlight,
    retained: Retained,
}

impl HotLedger {
    pub async fn connect(
        pg: PgPool,
        target: &RedisTarget,
        keys: HotKeys,
        cfg: HotLedgerConfig,
    ) -> Result<Arc<HotLedger>, BillingError> {
        let conn = RedisConn::connect(target).await?;
        let batcher = OpBatcher::start(
            conn.clone(),
            keys.clone(),
            cfg.journal_limit,
            cfg.batches_in_flight,
        );
        let ledger = Arc::new(HotLedger {
            pg,
            batcher,
            state: HotState::new(conn.clone(), keys.clone()),
            journal: Journal::new(conn, keys.clone()),
            retained: Retained::new(keys.shards()),
            inflight: InFlight::default(),
            cfg,
        });
        ledger.journal.ensure_groups().await?;
        Ok(ledger)
    }

    pub fn state(&self) -> &HotState {
        &self.state
    }

    pub fn keys(&self) -> &HotKeys {
        self.state.keys()
    }

    pub fn pg(&self) -> &PgPool {
        &self.pg
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Settlements queued by this instance that are not known to be in Postgres yet.
    pub fn unposted(&self) -> usize {
        self.retained.len()
    }

    /// Requests of this instance holding money right now.
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    fn deadline_ms(&self) -> i64 {
        let lease = chrono::Duration::from_std(self.cfg.lease).unwrap_or(chrono::Duration::MAX);
        (chrono::Utc::now() + lease).timestamp_millis()
    }
}

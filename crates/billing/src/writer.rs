//! The ledger writer: moves settlement records from the Redis stream into Postgres in batches
//! (request log rows plus one usage transaction per charged request), then reconciles the hot
//! balances and acknowledges. Every step is idempotent, so a crash anywhere only means the
//! batch is written again and deduplicated by the ledger's unique external ids.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use infron_store::hot::{HotBalance, KeyScope, PostedItem, PostedTarget, SettlementStream};
use infron_store::ledger::{self, platform, NewTransaction};
use infron_store::request_logs::{self, RequestLogRow};
use infron_store::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{BillingError, Usd};

/// Ledger external id of a request's usage charge.
pub fn usage_external_id(request: Uuid) -> String {
    format!("request:{request}")
}

/// Writes records to Postgres in one transaction and reconciles the hot balances.
pub async fn write_records(
    pg: &PgPool,
    hot: &HotBalance,
    records: Vec<RequestLogRow>,
) -> Result<(), BillingError> {
    if records.is_empty() {
        return Ok(());
    }
    let accounts: Vec<Uuid> = records
        .iter()
        .filter(|r| !r.cost.is_zero())
        .map(|r| r.account_id)
        .collect();
    let books: HashMap<Uuid, Uuid> = sqlx::query_as::<_, (Uuid, Uuid)>(
        "SELECT account_id, id FROM ledger_accounts WHERE kind = 'credits' AND account_id = ANY($1)",
    )
    .bind(&accounts)
    .fetch_all(pg)
    .await
    .map_err(infron_store::StoreError::from)?
    .into_iter()
    .collect();

    let mut txns = Vec::new();
    for r in records.iter().filter(|r| !r.cost.is_zero()) {
        let Some(book) = books.get(&r.account_id) else {
            tracing::error!(request_id = %r.id, account = %r.account_id, "charged request for an account without a credits book");
            continue;
        };
        txns.push(NewTransaction {
            id: Uuid::now_v7(),
            external_id: usage_external_id(r.id),
            kind: "usage",
            account_id: Some(r.account_id),
            description: format!(
                "{} via {}",
                r.model.as_deref().unwrap_or("?"),
                r.provider.as_deref().unwrap_or("?")
            ),
            metadata: serde_json::json!({ "request_id": r.id, "api_key_id": r.api_key_id }),
            effective_at: r.completed_at,
            entries: vec![(*book, r.cost), (platform::USAGE_REVENUE, -r.cost)],
        });
    }

    // A fixed order keeps concurrent writers from locking the same lots in opposite orders.
    txns.sort_by_key(|t| t.account_id);

    let mut tx = pg.begin().await.map_err(infron_store::StoreError::from)?;
    request_logs::insert_batch(&mut tx, &records).await?;
    let posted = ledger::post_batch(&mut tx, &txns).await?;
    let key_versions = key_period_versions(&mut tx, &records).await?;
    tx.commit().await.map_err(infron_store::StoreError::from)?;

    let versions: HashMap<Uuid, i64> = posted
        .balances
        .iter()
        .filter_map(|b| b.account_id.map(|a| (a, b.version)))
        .collect();
    let newly: std::collections::HashSet<&String> = posted.posted.iter().collect();
    let mut items = Vec::new();
    for r in records.iter().filter(|r| !r.cost.is_zero()) {
        let marker = Some(r.id.to_string());
        let fresh = newly.contains(&usage_external_id(r.id));
        // A replayed record only drops its unposted markers (version 0, no delta).
        let delta = if fresh {
            Usd::new(-r.cost)?.to_pico()?
        } else {
            0
        };
        let version = if fresh {
            versions.get(&r.account_id).copied().unwrap_or(i64::MAX)
        } else {
            0
        };
        items.push(PostedItem {
            target: PostedTarget::Account(r.account_id),
            marker: marker.clone(),
            version,
            delta_pico: delta,
        });
        if let Some((scope, key_version)) = key_versions.get(&r.id) {
            items.push(PostedItem {
                target: PostedTarget::Key(scope.clone()),
                marker,
                version: if fresh { *key_version } else { 0 },
                delta_pico: delta,
            });
        }
    }
    if let Err(e) = hot.posted_many(&items).await {
        // The hot copies stay conservative (markers only flag); a later rebuild corrects them.
        tracing::warn!(error = %e, records = records.len(), "could not reconcile hot balances after posting");
    }
    Ok(())
}

/// For each charged request made with a limited key: the key's limit period its cost was
/// counted in (by the ledger trigger) and that period row's version after this batch.
async fn key_period_versions(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    records: &[RequestLogRow],
) -> Result<HashMap<Uuid, (KeyScope, i64)>, BillingError> {
    let charged: Vec<&RequestLogRow> = records
        .iter()
        .filter(|r| !r.cost.is_zero() && r.api_key_id.is_some())
        .collect();
    if charged.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<Uuid> = charged.iter().map(|r| r.id).collect();
    let keys: Vec<Uuid> = charged.iter().filter_map(|r| r.api_key_id).collect();
    let at: Vec<chrono::DateTime<chrono::Utc>> = charged.iter().map(|r| r.completed_at).collect();
    let rows: Vec<(Uuid, Uuid, i64, i64)> = sqlx::query_as(
        "SELECT r.req, u.api_key_id, extract(epoch FROM u.period_start)::bigint, u.version \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::timestamptz[]) AS r(req, key, at) \
         JOIN api_keys k ON k.id = r.key \
         JOIN api_key_usage u ON u.api_key_id = r.key AND u.period_start = infron_limit_period(k.limit_reset, r.at)",
    )
    .bind(&ids)
    .bind(&keys)
    .bind(&at)
    .fetch_all(&mut **tx)
    .await
    .map_err(infron_store::StoreError::from)?;
    Ok(rows
        .into_iter()
        .map(|(req, key_id, period_start, version)| {
            (
                req,
                (
                    KeyScope {
                        key_id,
                        period_start,
                    },
                    version,
                ),
            )
        })
        .collect())
}

pub struct LedgerWriter {
    pg: PgPool,
    hot: Arc<HotBalance>,
    stream: SettlementStream,
    consumer: String,
    batch_size: usize,
}

impl LedgerWriter {
    pub fn new(pg: PgPool, hot: Arc<HotBalance>, consumer: String) -> Self {
        let stream = SettlementStream::new(hot.pool().clone(), hot.keys());
        Self {
            pg,
            hot,
            stream,
            consumer,
            batch_size: 500,
        }
    }

    /// Runs until `stop` fires, then drains what is queued and returns.
    pub async fn run(self, stop: CancellationToken) {
        let mut last_claim = Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            if let Err(e) = self.stream.ensure_group().await {
                tracing::error!(error = %e, "ledger writer cannot reach Redis");
                if sleep_or_stop(&stop, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            break;
        }
        loop {
            let stopping = stop.is_cancelled();
            let result = self
                .step(last_claim.elapsed() > Duration::from_secs(2), stopping)
                .await;
            if last_claim.elapsed() > Duration::from_secs(2) {
                last_claim = Instant::now();
            }
            match result {
                Ok(0) if stopping => return,
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::error!(error = %e, "ledger writer batch failed; will retry");
                    if sleep_or_stop(&stop, backoff).await && stopping {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// One batch; returns how many records it handled.
    async fn step(&self, claim: bool, stopping: bool) -> Result<usize, BillingError> {
        let mut entries = if claim {
            self.stream
                .claim_stale(&self.consumer, 10_000, self.batch_size)
                .await?
        } else {
            Vec::new()
        };
        if entries.is_empty() {
            let block = if stopping { 1 } else { 200 };
            entries = self
                .stream
                .read(&self.consumer, self.batch_size, block)
                .await?;
        }
        if entries.is_empty() {
            return Ok(0);
        }
        let mut records = Vec::with_capacity(entries.len());
        for e in &entries {
            match serde_json::from_str::<RequestLogRow>(&e.payload) {
                Ok(r) => records.push(r),
                Err(err) => {
                    tracing::error!(entry = %e.id, error = %err, "unreadable settlement record dropped")
                }
            }
        }
        let n = entries.len();
        write_records(&self.pg, &self.hot, records).await?;
        let ids: Vec<String> = entries.into_iter().map(|e| e.id).collect();
        self.stream.ack(&ids).await?;
        Ok(n)
    }
}

/// Sleeps for `d` unless stopped first; true if stopped.
async fn sleep_or_stop(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(d) => stop.is_cancelled(),
    }
}

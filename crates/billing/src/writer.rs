//! The ledger writer: moves settlements from the journal into Postgres in batches. Per batch:
//! one COPY of request-log rows (the sub-ledger, exactly once by request id), one usage
//! transaction per account and UTC day, one upsert of the limited keys' period usage, then the
//! hot copies are reconciled and the entries acknowledged. Every step is idempotent, so a crash
//! anywhere only means the batch is posted again and deduplicated by request id.
//!
//! A charge never exceeds the hold (the gateway caps it), and Postgres never lets a tenant's
//! balance or a key's limit be overrun either: a batch that would (possible only after Redis
//! lost its data, or a refund landed under running requests) is re-posted in careful mode,
//! which caps each charge at what is left and books the rest to `provider_overage`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use infron_store::hot::journal::{Journal, JournalEntry, StreamId};
use infron_store::hot::{HotKeys, HotState, KeyScope, Reconcile, SettledMark};
use infron_store::ledger::{self, platform, NewTransaction};
use infron_store::request_logs::{self, RequestLogRow};
use infron_store::{PgPool, StoreError};
use rust_decimal::Decimal;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::record::{price_id, SettlementRecord};
use crate::{BillingError, Usd};

/// A limited key's period: (key, period start).
type Period = (Uuid, DateTime<Utc>);
/// What a key period used before the batch, and the key's limit.
type PeriodLimits = HashMap<Period, (Decimal, Option<Decimal>)>;

/// One settlement of a batch, decoded.
struct Item<'a> {
    entry: &'a JournalEntry,
    record: SettlementRecord,
    /// What the hot state charged, then what Postgres takes (lower only in careful mode).
    charged: Usd,
    /// Whether this batch inserted its row (false: posted before).
    posted: bool,
    txn: Option<Uuid>,
}

/// What a batch did.
#[derive(Debug, Default)]
pub struct PostOutcome {
    /// Requests this batch posted, with what each was charged.
    pub charged: HashMap<Uuid, Usd>,
    /// Requests that had been posted before (replays).
    pub replays: usize,
    /// Entries whose payload could not be read (logged; never expected).
    pub unreadable: usize,
    /// The hot copies to reconcile.
    pub reconcile: Vec<Reconcile>,
}

impl PostOutcome {
    pub fn charged_of(&self, request: Uuid) -> Option<Usd> {
        self.charged.get(&request).copied()
    }
}

/// Price snapshots known to exist (a process-wide cache, so a batch writes each set once).
static KNOWN_PRICES: LazyLock<Mutex<HashSet<Uuid>>> = LazyLock::new(Default::default);

/// Posts a batch of journal entries in one database transaction. `keys` names the hot copies
/// to reconcile (the caller runs the reconciliation).
pub async fn post(pg: &PgPool, entries: &[JournalEntry]) -> Result<PostOutcome, BillingError> {
    post_with_keys(pg, None, entries).await
}

pub async fn post_with_keys(
    pg: &PgPool,
    keys: Option<&HotKeys>,
    entries: &[JournalEntry],
) -> Result<PostOutcome, BillingError> {
    let mut outcome = PostOutcome::default();
    let mut seen = HashSet::new();
    let mut items: Vec<Item> = Vec::with_capacity(entries.len());
    for entry in entries {
        match SettlementRecord::decode(&entry.payload) {
            Ok(record) => {
                if !seen.insert(record.id) {
                    continue; // the same request twice in one batch (queued again): once is enough
                }
                let charged = Usd::from_pico(entry.charged_pico.max(0)).min(record.list_cost);
                items.push(Item {
                    entry,
                    record,
                    charged,
                    posted: false,
                    txn: None,
                });
            }
            Err(e) => {
                outcome.unreadable += 1;
                tracing::error!(entry = %entry.id, error = %e, "unreadable settlement record skipped");
            }
        }
    }
    if items.is_empty() {
        return Ok(outcome);
    }

    let mut tx = pg.begin().await.map_err(StoreError::from)?;
    let tenants: Vec<Uuid> = unique(items.iter().map(|i| i.record.account_id));
    let books = ledger::lock_books(
        &mut tx,
        &[platform::USAGE_REVENUE, platform::PROVIDER_OVERAGE],
        &tenants,
    )
    .await?;
    let credits: HashMap<Uuid, (Uuid, Decimal)> = books
        .iter()
        .filter_map(|b| b.account_id.map(|a| (a, (b.id, b.balance))))
        .collect();
    let periods: Vec<(Uuid, DateTime<Utc>)> = unique(items.iter().filter_map(key_period));
    let usage_before: PeriodLimits = infron_store::keys::lock_period_usage(&mut tx, &periods)
        .await?
        .into_iter()
        .map(|u| ((u.api_key_id, u.period_start), (u.used, u.credit_limit)))
        .collect();
    let limits = key_limits(&mut tx, &periods, &usage_before).await?;

    // Usage transactions: one per account and UTC day of completion.
    let mut txn_of: HashMap<(Uuid, NaiveDate), Uuid> = HashMap::new();
    for item in &mut items {
        if item.record.list_cost.is_zero() {
            continue;
        }
        let group = (
            item.record.account_id,
            item.record.completed_at.date_naive(),
        );
        item.txn = Some(*txn_of.entry(group).or_insert_with(Uuid::now_v7));
    }

    let fits = within_limits(&items, &credits, &limits);
    let mut inserted = false;
    if fits {
        sqlx::query("SAVEPOINT fast_path")
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        let rows = build_rows(&items)?;
        let refs: Vec<&RequestLogRow> = rows.iter().collect();
        match request_logs::copy_new(&mut tx, &refs).await {
            Ok(()) => {
                for item in &mut items {
                    item.posted = true;
                }
                inserted = true;
            }
            Err(e) if request_logs::is_duplicate(&e) => {
                sqlx::query("ROLLBACK TO SAVEPOINT fast_path")
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if !inserted {
        careful_insert(&mut tx, &mut items, &credits, &limits).await?;
    }

    let posted: Vec<&Item> = items.iter().filter(|i| i.posted).collect();
    ensure_prices(&mut tx, &posted).await?;

    // The ledger: per (account, day) the tenant pays what it was charged, usage revenue is the
    // usage at list price, the platform absorbs the overage.
    let mut groups: BTreeMap<Uuid, (Uuid, Decimal, Decimal, DateTime<Utc>, i64)> = BTreeMap::new();
    for item in posted.iter().filter(|i| i.txn.is_some()) {
        let Some(txn) = item.txn else { continue };
        let g = groups.entry(txn).or_insert((
            item.record.account_id,
            Decimal::ZERO,
            Decimal::ZERO,
            item.record.completed_at,
            0,
        ));
        g.1 += item.charged.decimal();
        g.2 += item.record.list_cost.checked_sub(item.charged)?.decimal();
        g.3 = g.3.max(item.record.completed_at);
        g.4 += 1;
    }
    let mut txns = Vec::with_capacity(groups.len());
    for (id, (account, charged, overage, at, requests)) in groups {
        let mut entries = Vec::with_capacity(3);
        if !charged.is_zero() {
            let Some((book, _)) = credits.get(&account) else {
                return Err(BillingError::UnknownAccount(account));
            };
            entries.push((*book, charged));
        }
        if !overage.is_zero() {
            entries.push((platform::PROVIDER_OVERAGE, overage));
        }
        entries.push((platform::USAGE_REVENUE, -(charged + overage)));
        txns.push(NewTransaction {
            id,
            external_id: format!("usage:{id}"),
            kind: "usage",
            account_id: Some(account),
            description: format!("usage of {requests} request(s)"),
            metadata: serde_json::json!({ "requests": requests }),
            effective_at: at,
            entries,
        });
    }
    let batch = ledger::post_batch(&mut tx, &txns).await?;

    let mut by_period: BTreeMap<(Uuid, DateTime<Utc>), Decimal> = BTreeMap::new();
    for item in &posted {
        if let Some(p) = key_period(item) {
            if !item.charged.is_zero() {
                *by_period.entry(p).or_default() += item.charged.decimal();
            }
        }
    }
    let period_items: Vec<(Uuid, DateTime<Utc>, Decimal)> =
        by_period.into_iter().map(|((k, p), a)| (k, p, a)).collect();
    let periods_after = infron_store::keys::add_period_usage(&mut tx, &period_items).await?;
    tx.commit().await.map_err(StoreError::from)?;

    for item in &items {
        if item.posted {
            outcome.charged.insert(item.record.id, item.charged);
        } else {
            outcome.replays += 1;
        }
    }
    if let Some(keys) = keys {
        outcome.reconcile = reconciliation(keys, &items, &batch.balances, &periods_after)?;
    }
    Ok(outcome)
}

fn unique<T: std::hash::Hash + Eq + Clone + Ord>(it: impl Iterator<Item = T>) -> Vec<T> {
    let mut v: Vec<T> = it.collect::<HashSet<T>>().into_iter().collect();
    v.sort();
    v
}

fn key_period(item: &Item) -> Option<(Uuid, DateTime<Utc>)> {
    let key = item.record.api_key_id?;
    let start = DateTime::from_timestamp(item.record.key_period?, 0)?;
    Some((key, start))
}

/// Each limited key period's limit and what it used before this batch.
async fn key_limits(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    periods: &[(Uuid, DateTime<Utc>)],
    usage_before: &PeriodLimits,
) -> Result<PeriodLimits, BillingError> {
    let missing: Vec<Uuid> = periods
        .iter()
        .filter(|p| !usage_before.contains_key(p))
        .map(|p| p.0)
        .collect();
    let limits: HashMap<Uuid, Option<Decimal>> = if missing.is_empty() {
        HashMap::new()
    } else {
        sqlx::query_as::<_, (Uuid, Option<Decimal>)>(
            "SELECT id, credit_limit FROM api_keys WHERE id = ANY($1)",
        )
        .bind(&missing)
        .fetch_all(&mut **tx)
        .await
        .map_err(StoreError::from)?
        .into_iter()
        .collect()
    };
    Ok(periods
        .iter()
        .map(|p| {
            let v = usage_before
                .get(p)
                .copied()
                .unwrap_or((Decimal::ZERO, limits.get(&p.0).copied().flatten()));
            (*p, v)
        })
        .collect())
}

/// Whether charging every item in full keeps each tenant at or above zero and each key within
/// its limit (assuming every item is new, the worst case).
fn within_limits(
    items: &[Item],
    credits: &HashMap<Uuid, (Uuid, Decimal)>,
    limits: &PeriodLimits,
) -> bool {
    let mut spent: HashMap<Uuid, Decimal> = HashMap::new();
    let mut used: HashMap<(Uuid, DateTime<Utc>), Decimal> = HashMap::new();
    for item in items.iter().filter(|i| !i.charged.is_zero()) {
        *spent.entry(item.record.account_id).or_default() += item.charged.decimal();
        if let Some(p) = key_period(item) {
            *used.entry(p).or_default() += item.charged.decimal();
        }
    }
    spent
        .iter()
        .all(|(a, s)| credits.get(a).is_some_and(|(_, b)| *s <= *b))
        && used.iter().all(|(p, u)| match limits.get(p) {
            Some((before, Some(limit))) => *before + *u <= *limit,
            _ => true,
        })
}

fn build_rows(items: &[Item]) -> Result<Vec<RequestLogRow>, BillingError> {
    items
        .iter()
        .map(|i| i.record.to_row(i.charged, i.txn))
        .collect()
}

/// The slow path: finds which requests were posted before, caps each new charge at what the
/// tenant and the key have left (in completion order), and inserts the rest.
async fn careful_insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    items: &mut [Item<'_>],
    credits: &HashMap<Uuid, (Uuid, Decimal)>,
    limits: &PeriodLimits,
) -> Result<(), BillingError> {
    let rows = build_rows(items)?;
    let refs: Vec<&RequestLogRow> = rows.iter().collect();
    let existing: HashSet<Uuid> = request_logs::existing(tx, &refs)
        .await?
        .into_iter()
        .collect();
    let mut left: HashMap<Uuid, Decimal> = credits
        .iter()
        .map(|(a, (_, b))| (*a, (*b).max(Decimal::ZERO)))
        .collect();
    let mut key_left: HashMap<(Uuid, DateTime<Utc>), Decimal> = limits
        .iter()
        .filter_map(|(p, (used, limit))| limit.map(|l| (*p, (l - *used).max(Decimal::ZERO))))
        .collect();
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| (items[i].record.completed_at, items[i].record.id));
    for i in order {
        let item = &mut items[i];
        if existing.contains(&item.record.id) {
            continue;
        }
        let mut c = item.charged.decimal();
        let account_left = left.entry(item.record.account_id).or_default();
        c = c.min(*account_left);
        let period = key_period(item);
        if let Some(k) = period.and_then(|p| key_left.get(&p)) {
            c = c.min(*k);
        }
        *account_left -= c;
        if let Some(k) = period.and_then(|p| key_left.get_mut(&p)) {
            *k -= c;
        }
        if c < item.charged.decimal() {
            tracing::warn!(request_id = %item.record.id, charged = %item.charged, capped = %c,
                "charge capped at what the tenant or key had left; the rest is booked to provider_overage");
            item.charged = Usd::new(c)?;
        }
    }
    let fresh_rows: Vec<RequestLogRow> = items
        .iter()
        .filter(|i| !existing.contains(&i.record.id))
        .map(|i| i.record.to_row(i.charged, i.txn))
        .collect::<Result<_, _>>()?;
    let refs: Vec<&RequestLogRow> = fresh_rows.iter().collect();
    let inserted: HashSet<Uuid> = request_logs::insert_new(tx, &refs)
        .await?
        .into_iter()
        .collect();
    for item in items.iter_mut() {
        item.posted = inserted.contains(&item.record.id);
    }
    Ok(())
}

async fn ensure_prices(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    posted: &[&Item<'_>],
) -> Result<(), BillingError> {
    let mut fresh: Vec<(Uuid, serde_json::Value)> = Vec::new();
    {
        let known = KNOWN_PRICES
            .lock()
            .map_err(|_| BillingError::Store(StoreError::Corrupt("price cache poisoned".into())))?;
        let mut seen = HashSet::new();
        for item in posted {
            if let Some(p) = &item.record.prices {
                let id = price_id(p);
                if !known.contains(&id) && seen.insert(id) {
                    fresh.push((id, serde_json::to_value(p)?));
                }
            }
        }
    }
    if fresh.is_empty() {
        return Ok(());
    }
    let refs: Vec<(Uuid, &serde_json::Value)> = fresh.iter().map(|(i, p)| (*i, p)).collect();
    request_logs::ensure_price_snapshots(tx, &refs).await?;
    if let Ok(mut known) = KNOWN_PRICES.lock() {
        if known.len() > 100_000 {
            known.clear();
        }
        known.extend(fresh.iter().map(|(i, _)| *i));
    }
    Ok(())
}

/// The hot copies touched by a batch and what to tell each.
fn reconciliation(
    keys: &HotKeys,
    items: &[Item],
    balances: &[ledger::BookBalance],
    periods: &[infron_store::keys::PeriodUsage],
) -> Result<Vec<Reconcile>, BillingError> {
    let mut accounts: BTreeMap<Uuid, Reconcile> = BTreeMap::new();
    let mut key_hashes: BTreeMap<(Uuid, i64), Reconcile> = BTreeMap::new();
    for b in balances {
        let Some(a) = b.account_id else { continue };
        accounts.insert(
            a,
            Reconcile {
                key: keys.account(a),
                version: b.version,
                balance_pico: Some(Usd::new(b.balance)?.to_pico()?),
                delta_pico: 0,
                settled: Vec::new(),
            },
        );
    }
    let period_after: HashMap<(Uuid, i64), &infron_store::keys::PeriodUsage> = periods
        .iter()
        .map(|p| ((p.api_key_id, p.period_start.timestamp()), p))
        .collect();
    for item in items {
        // Only settlements closed a hold (and left a tombstone); plain records did not.
        if item.entry.epoch.is_empty() && item.entry.charged_pico == 0 && !item.posted {
            continue;
        }
        let charged_hot = item.entry.charged_pico.max(0);
        let posted_pico = if item.posted {
            Some(item.charged.to_pico()?)
        } else {
            None
        };
        let refund = match posted_pico {
            Some(p) if p < charged_hot => charged_hot - p,
            _ => 0,
        };
        let account = item.record.account_id;
        accounts
            .entry(account)
            .or_insert_with(|| Reconcile {
                key: keys.account(account),
                version: 0,
                balance_pico: None,
                delta_pico: 0,
                settled: Vec::new(),
            })
            .settled
            .push(SettledMark {
                request: item.record.id.to_string(),
                epoch: item.entry.epoch.clone(),
                charged_pico: charged_hot,
                refund_pico: refund,
                posted_pico,
            });
        if let (Some(key), Some(period)) = (item.record.api_key_id, item.record.key_period) {
            let scope = KeyScope {
                key_id: key,
                period_start: period,
            };
            let after = period_after.get(&(key, period));
            let entry = key_hashes.entry((key, period)).or_insert(Reconcile {
                key: keys.key_limit(account, &scope),
                version: after.map_or(0, |p| p.version),
                balance_pico: after
                    .and_then(|p| p.credit_limit.map(|l| l - p.used))
                    .map(|d| Usd::new(d).and_then(Usd::to_pico))
                    .transpose()?,
                delta_pico: 0,
                settled: Vec::new(),
            });
            entry.settled.push(SettledMark {
                request: item.record.id.to_string(),
                epoch: item.entry.key_epoch.clone(),
                charged_pico: charged_hot,
                refund_pico: refund,
                posted_pico,
            });
        }
    }
    Ok(accounts
        .into_values()
        .chain(key_hashes.into_values())
        .collect())
}

/// Journal depth and lag, for logs, `ledger verify` and the metrics endpoint.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Entries waiting in the journal (all shards).
    pub backlog: AtomicI64,
    /// Age of the oldest waiting entry, ms.
    pub lag_ms: AtomicI64,
    /// Settlements posted by this instance's writer since start.
    pub posted: AtomicU64,
    /// Batches that failed and were retried.
    pub failed_batches: AtomicU64,
}

pub struct LedgerWriter {
    pg: PgPool,
    state: HotState,
    journal: Journal,
    consumer: String,
    batch_per_shard: usize,
    stats: Arc<WriterStats>,
}

/// Entries another writer took and left unacknowledged this long are taken over.
const CLAIM_IDLE: Duration = Duration::from_secs(10);
const CLAIM_EVERY: Duration = Duration::from_secs(2);

impl LedgerWriter {
    /// `journal` should have a connection of its own (its reads block).
    pub fn new(
        pg: PgPool,
        state: HotState,
        journal: Journal,
        consumer: String,
        stats: Arc<WriterStats>,
    ) -> Self {
        Self {
            pg,
            state,
            journal,
            consumer,
            batch_per_shard: 1000,
            stats,
        }
    }

    /// Runs until `stop` fires, then drains what is queued (while Postgres answers) and returns.
    pub async fn run(self, stop: CancellationToken) {
        let mut retry: Option<Vec<JournalEntry>> = None;
        let mut backoff = Duration::from_millis(100);
        let mut last_claim = Instant::now();
        let mut last_stats = Instant::now() - Duration::from_secs(60);
        let mut failures_logged = 0u32;
        loop {
            let stopping = stop.is_cancelled();
            if last_stats.elapsed() >= Duration::from_secs(5) {
                last_stats = Instant::now();
                self.report_depth().await;
            }
            let entries = match retry.take() {
                Some(batch) => {
                    // Reading our pending entries again keeps other writers from claiming them
                    // while we retry; the batch itself is posted from memory either way.
                    let _ = self.journal.read_own_pending(&self.consumer, 1).await;
                    Ok(batch)
                }
                None => self.next_batch(&mut last_claim, stopping).await,
            };
            let entries = match entries {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "ledger writer cannot read the journal; retrying");
                    if stopping {
                        return;
                    }
                    sleep_or_stop(&stop, backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if entries.is_empty() {
                if stopping {
                    return;
                }
                continue;
            }
            match post_with_keys(&self.pg, Some(self.state.keys()), &entries).await {
                Ok(outcome) => {
                    if failures_logged > 0 {
                        tracing::info!("ledger writer posting again");
                        failures_logged = 0;
                    }
                    backoff = Duration::from_millis(100);
                    self.stats
                        .posted
                        .fetch_add(outcome.charged.len() as u64, Ordering::Relaxed);
                    // Reconciled before acknowledged: an empty journal means settled all the
                    // way. A crash in between replays the batch, which changes nothing.
                    if let Err(e) = self.state.reconcile(&outcome.reconcile).await {
                        tracing::warn!(error = %e, "could not reconcile hot balances after posting; they heal later");
                    }
                    if let Err(e) = self.journal.ack(&entries).await {
                        // Posted but not acknowledged: another writer posts them again, as
                        // replays that change nothing.
                        tracing::warn!(error = %e, "could not acknowledge posted settlements");
                    }
                }
                Err(e) => {
                    self.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                    if failures_logged < 3 || failures_logged.is_multiple_of(50) {
                        tracing::error!(error = %e, entries = entries.len(),
                            "ledger writer batch failed; retrying it until it is posted");
                    }
                    failures_logged += 1;
                    retry = Some(entries);
                    if stopping {
                        // Shutting down with Postgres away: the entries stay pending in the
                        // journal, and another instance (or this one restarted) posts them.
                        return;
                    }
                    sleep_or_stop(&stop, backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn next_batch(
        &self,
        last_claim: &mut Instant,
        stopping: bool,
    ) -> Result<Vec<JournalEntry>, BillingError> {
        if last_claim.elapsed() >= CLAIM_EVERY {
            *last_claim = Instant::now();
            let claimed = self
                .journal
                .claim_stale(&self.consumer, CLAIM_IDLE, self.batch_per_shard)
                .await?;
            if !claimed.is_empty() {
                tracing::info!(
                    entries = claimed.len(),
                    "took over settlements another writer left unposted"
                );
                return Ok(claimed);
            }
        }
        let block = if stopping {
            Duration::from_millis(1)
        } else {
            Duration::from_millis(200)
        };
        Ok(self
            .journal
            .read_new(&self.consumer, self.batch_per_shard, block)
            .await?)
    }

    async fn report_depth(&self) {
        let mut backlog = 0;
        let mut oldest: Option<StreamId> = None;
        for shard in 0..self.journal.keys().shards() {
            if let Ok((len, first)) = self.journal.depth(shard).await {
                backlog += len;
                oldest = match (oldest, first) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        let now = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
        let lag = oldest.map_or(0, |id| now.saturating_sub(id.millis()));
        let lag = i64::try_from(lag).unwrap_or(i64::MAX);
        self.stats.backlog.store(backlog, Ordering::Relaxed);
        self.stats.lag_ms.store(lag, Ordering::Relaxed);
        if lag > 30_000 {
            tracing::warn!(backlog, lag_ms = lag, "settlement journal is behind");
        } else if backlog > 10_000 {
            tracing::info!(backlog, lag_ms = lag, "settlement journal backlog");
        }
    }
}

/// Sleeps for `d` unless stopped first; true if stopped.
async fn sleep_or_stop(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(d) => stop.is_cancelled(),
    }
}

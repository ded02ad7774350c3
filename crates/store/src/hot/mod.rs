//! The hot state in Redis, shared by every gateway instance: balances available to reserve,
//! open holds, and the settlement journal waiting for Postgres.
//!
//! Layout, under a prefix `P`, split into shards so that everything one operation touches
//! shares a Redis Cluster hash slot (`{sN}` is the hash tag; an account, its keys' limit
//! periods and its holds live in the account's shard):
//! - `P:{sN}:acct:{account}` hash: an account's balance (fields in `lua.rs`);
//! - `P:{sN}:key:{key}:{period}` hash: a key's spending limit for one period, same fields;
//! - `P:{sN}:holds` sorted set: open holds by lease deadline (ms);
//! - `P:{sN}:prog` hash: streams' latest progress records (charged if their instance dies);
//! - `P:{sN}:journal` stream: settlements waiting for the ledger writer;
//! - `P:{sN}:boot` string: a random marker; when it is gone Redis lost its data.
//!
//! Request-path operations go through [`batch::OpBatcher`], which packs whatever is waiting into
//! one script call (group commit): a request costs a fraction of a Redis round trip.

pub mod batch;
pub mod journal;
mod lua;

use std::sync::LazyLock;

use redis::Script;
use uuid::Uuid;

use crate::redis_conn::RedisConn;
use crate::StoreError;

pub use batch::{Op, OpBatcher, OpResult};

/// The window of every rate limit: limits are per minute.
pub const RATE_WINDOW_MS: i64 = 60_000;

/// A key's spending limit for one period, as it is named in Redis.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyScope {
    pub key_id: Uuid,
    /// Unix seconds of the period's start.
    pub period_start: i64,
}

/// Whose rate limit: one key's, or the whole account's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateSubject {
    Key(Uuid),
    Account,
}

/// What a rate limit counts per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateUnit {
    Requests,
    Tokens,
}

/// One per-minute rate limit and what this request costs against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub subject: RateSubject,
    pub unit: RateUnit,
    /// Units per minute.
    pub per_minute: i64,
    /// Units this request takes (1 for requests; the token estimate, or at settlement the
    /// correction, for tokens).
    pub cost: i64,
}

/// Where a rate limit stands after a reservation checked it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateState {
    pub limit: RateLimit,
    /// Units that could be taken right now.
    pub remaining: i64,
    /// Milliseconds until the limit is back to its full allowance.
    pub reset_ms: i64,
}

#[derive(Debug, Clone)]
pub struct HotKeys {
    prefix: String,
    shards: u16,
    /// The per-shard key names, formatted once.
    shard_keys: std::sync::Arc<Vec<ShardKeys>>,
}

#[derive(Debug)]
struct ShardKeys {
    base: String,
    holds: String,
    progress: String,
    journal: String,
    boot: String,
}

impl HotKeys {
    pub fn new(prefix: impl Into<String>, shards: u16) -> Self {
        let prefix = prefix.into();
        let shards = shards.max(1);
        let shard_keys = (0..shards)
            .map(|s| {
                let base = format!("{prefix}:{{s{s}}}");
                ShardKeys {
                    holds: format!("{base}:holds"),
                    progress: format!("{base}:prog"),
                    journal: format!("{base}:journal"),
                    boot: format!("{base}:boot"),
                    base,
                }
            })
            .collect();
        Self {
            prefix,
            shards,
            shard_keys: std::sync::Arc::new(shard_keys),
        }
    }
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    pub fn shards(&self) -> u16 {
        self.shards
    }
    /// The shard of an account: a hash of its id, so accounts spread evenly.
    pub fn shard_of(&self, account: Uuid) -> u16 {
        let h = crc32fast::hash(account.as_bytes());
        u16::try_from(h % u32::from(self.shards)).unwrap_or(0)
    }
    fn shard(&self, shard: u16) -> &ShardKeys {
        let i = usize::from(shard).min(self.shard_keys.len().saturating_sub(1));
        &self.shard_keys[i]
    }
    /// Common start of every key of a shard, hash tag included.
    pub fn base(&self, shard: u16) -> String {
        self.shard(shard).base.clone()
    }
    pub fn account(&self, account: Uuid) -> String {
        let base = &self.shard(self.shard_of(account)).base;
        let mut key = String::with_capacity(base.len() + 6 + 36);
        key.push_str(base);
        key.push_str(":acct:");
        key.push_str(
            account
                .hyphenated()
                .encode_lower(&mut Uuid::encode_buffer()),
        );
        key
    }
    pub fn key_limit(&self, account: Uuid, scope: &KeyScope) -> String {
        format!(
            "{}:key:{}:{}",
            self.shard(self.shard_of(account)).base,
            scope.key_id,
            scope.period_start
        )
    }
    pub fn holds(&self, shard: u16) -> String {
        self.shard(shard).holds.clone()
    }
    pub fn progress(&self, shard: u16) -> String {
        self.shard(shard).progress.clone()
    }
    pub fn journal(&self, shard: u16) -> String {
        self.shard(shard).journal.clone()
    }
    pub fn boot(&self, shard: u16) -> String {
        self.shard(shard).boot.clone()
    }
    /// The GCRA state (theoretical arrival time, µs) of one rate limit, in the account's shard
    /// so the reservation script that checks it touches one hash slot.
    pub fn rate(&self, account: Uuid, limit: &RateLimit) -> String {
        let base = &self.shard(self.shard_of(account)).base;
        let unit = match limit.unit {
            RateUnit::Requests => 'r',
            RateUnit::Tokens => 't',
        };
        match limit.subject {
            RateSubject::Key(k) => format!("{base}:rl:k:{k}:{unit}"),
            RateSubject::Account => format!("{base}:rl:a:{account}:{unit}"),
        }
    }
    /// The member of a hold in its shard's `holds` set; the sweeper finds the hashes from it.
    pub fn hold_member(account: Uuid, request: Uuid, scope: Option<&KeyScope>) -> String {
        match scope {
            Some(k) => format!("{account}:{request}:{}:{}", k.key_id, k.period_start),
            None => format!("{account}:{request}"),
        }
    }
}

static LOAD: LazyLock<Script> = LazyLock::new(|| Script::new(lua::load()));
static TAKE: LazyLock<Script> = LazyLock::new(|| Script::new(&lua::take()));
static SWEEP: LazyLock<Script> = LazyLock::new(|| Script::new(&lua::sweep()));
static RECONCILE: LazyLock<Script> = LazyLock::new(|| Script::new(lua::reconcile()));

/// What a balance hash holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HotSnapshot {
    pub avail_pico: i64,
    pub version: i64,
    pub epoch: String,
    pub unposted_pico: i64,
    pub open_holds: i64,
    pub held_pico: i64,
    /// Settled requests (and expiries) not yet reconciled by the ledger writer.
    pub tombstones: i64,
}

/// One balance hash to reconcile after a posting batch (see `lua::RECONCILE`).
#[derive(Debug, Clone)]
pub struct Reconcile {
    pub key: String,
    /// The version the posting gave the book (0 if it posted nothing to it).
    pub version: i64,
    /// The book's balance (for a key: its limit minus what it used) at `version`; None when
    /// unknown, which skips healing.
    pub balance_pico: Option<i64>,
    /// Change to apply if the hash was built from an older version (postings not taken from
    /// this copy).
    pub delta_pico: i64,
    pub settled: Vec<SettledMark>,
}

/// A settlement whose tombstone the writer removes, with what it took from which epoch.
#[derive(Debug, Clone)]
pub struct SettledMark {
    pub request: String,
    pub epoch: String,
    /// What the hot state charged.
    pub charged_pico: i64,
    /// Part of `charged_pico` the writer did not post (capped), given back to `avail`.
    pub refund_pico: i64,
    /// What Postgres took if this batch posted it; None for a replay posted before.
    pub posted_pico: Option<i64>,
}

/// Non-batched access to the hot state: loading and inspecting balance hashes, reconciling
/// after postings, sweeping expired holds, expiry takes, boot markers.
#[derive(Clone)]
pub struct HotState {
    conn: RedisConn,
    keys: HotKeys,
}

impl HotState {
    pub fn new(conn: RedisConn, keys: HotKeys) -> Self {
        Self { conn, keys }
    }

    pub fn keys(&self) -> &HotKeys {
        &self.keys
    }

    pub fn conn(&self) -> RedisConn {
        self.conn.clone()
    }

    /// Installs an account's hash from its Postgres balance unless one exists; true if it did.
    pub async fn load_account(
        &self,
        account: Uuid,
        avail_pico: i64,
        version: i64,
    ) -> Result<bool, StoreError> {
        self.load(self.keys.account(account), avail_pico, version, 0)
            .await
    }

    /// Installs a key's limit period (limit minus used); it expires after `ttl_ms` (0: never).
    pub async fn load_key(
        &self,
        account: Uuid,
        scope: &KeyScope,
        avail_pico: i64,
        version: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        self.load(
            self.keys.key_limit(account, scope),
            avail_pico,
            version,
            ttl_ms,
        )
        .await
    }

    async fn load(
        &self,
        key: String,
        avail_pico: i64,
        version: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let epoch = format!("{:016x}", rand_u64());
        let set: i64 = LOAD
            .key(key)
            .arg(avail_pico.to_string())
            .arg(version)
            .arg(epoch)
            .arg(ttl_ms)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(set == 1)
    }

    /// Changes a loaded key period's `avail` by `delta_pico` (its limit changed).
    pub async fn adjust_key(
        &self,
        account: Uuid,
        scope: &KeyScope,
        delta_pico: i64,
    ) -> Result<(), StoreError> {
        let key = self.keys.key_limit(account, scope);
        let script = Script::new(
            "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'avail', ARGV[1]) end return 0",
        );
        let _: i64 = script
            .key(key)
            .arg(delta_pico.to_string())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    /// Takes up to `amount_pico` for a credit expiry, never below zero, as a tombstone named
    /// `marker`. Returns what was taken and the epoch it was taken from; None without a hot copy.
    pub async fn take_for_expiry(
        &self,
        account: Uuid,
        marker: &str,
        amount_pico: i64,
    ) -> Result<Option<(i64, String)>, StoreError> {
        let (taken, epoch): (String, String) = TAKE
            .key(self.keys.account(account))
            .arg(marker)
            .arg(amount_pico.to_string())
            .invoke_async(&mut self.conn.clone())
            .await?;
        let taken: i64 = taken
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("expiry take of {account}")))?;
        Ok((taken >= 0).then_some((taken, epoch)))
    }

    /// Reconciles balance hashes after a posting; returns how many were healed. Items of
    /// different shards go in separate calls (one slot per call in a cluster).
    pub async fn reconcile(&self, items: &[Reconcile]) -> Result<i64, StoreError> {
        let mut by_shard: std::collections::BTreeMap<&str, Vec<&Reconcile>> = Default::default();
        for item in items {
            by_shard.entry(shard_tag(&item.key)).or_default().push(item);
        }
        let mut healed = 0;
        for (_, group) in by_shard {
            let mut invocation = RECONCILE.prepare_invoke();
            for (i, item) in group.iter().enumerate() {
                invocation
                    .key(&item.key)
                    .arg(i + 1)
                    .arg(item.version)
                    .arg(item.balance_pico.map(|b| b.to_string()).unwrap_or_default())
                    .arg(item.delta_pico.to_string())
                    .arg(item.settled.len());
                for m in &item.settled {
                    invocation
                        .arg(&m.request)
                        .arg(&m.epoch)
                        .arg(m.charged_pico.to_string())
                        .arg(m.refund_pico.to_string())
                        .arg(m.posted_pico.map(|p| p.to_string()).unwrap_or_default());
                }
            }
            let n: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
            healed += n;
        }
        Ok(healed)
    }

    /// Reconciles an account's hot copy after a posting that did not come from it (a grant, a
    /// top-up, a refund): `delta_pico` moves `avail` unless the copy already includes
    /// `version`; `balance_pico` is the book's balance after it, for healing.
    pub async fn posted_to_account(
        &self,
        account: Uuid,
        version: i64,
        balance_pico: Option<i64>,
        delta_pico: i64,
    ) -> Result<(), StoreError> {
        self.reconcile(&[Reconcile {
            key: self.keys.account(account),
            version,
            balance_pico,
            delta_pico,
            settled: Vec::new(),
        }])
        .await
        .map(|_| ())
    }

    /// Releases (or, with stream progress, charges) holds of one shard whose lease ran out.
    /// Returns (released, charged).
    pub async fn sweep(
        &self,
        shard: u16,
        now_ms: i64,
        limit: usize,
    ) -> Result<(i64, i64), StoreError> {
        Ok(SWEEP
            .key(self.keys.holds(shard))
            .key(self.keys.progress(shard))
            .key(self.keys.journal(shard))
            .arg(now_ms)
            .arg(limit)
            .arg(self.keys.base(shard))
            .invoke_async(&mut self.conn.clone())
            .await?)
    }

    /// Holds of one shard whose lease ran out before `now_ms`.
    pub async fn overdue_holds(&self, shard: u16, now_ms: i64) -> Result<i64, StoreError> {
        Ok(redis::cmd("ZCOUNT")
            .arg(self.keys.holds(shard))
            .arg("-inf")
            .arg(now_ms)
            .query_async(&mut self.conn.clone())
            .await?)
    }

    /// The boot marker of a shard, set to `fresh` if Redis has none (it lost its data, or this
    /// is the first start). Returns the marker in effect.
    pub async fn boot_marker(&self, shard: u16, fresh: &str) -> Result<String, StoreError> {
        let key = self.keys.boot(shard);
        let (current,): (String,) = redis::pipe()
            .cmd("SET")
            .arg(&key)
            .arg(fresh)
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(&key)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(current)
    }

    /// An account's balance hash, if loaded.
    pub async fn snapshot(&self, account: Uuid) -> Result<Option<HotSnapshot>, StoreError> {
        self.snapshot_of(self.keys.account(account)).await
    }

    /// A key period's hash, if loaded.
    pub async fn key_snapshot(
        &self,
        account: Uuid,
        scope: &KeyScope,
    ) -> Result<Option<HotSnapshot>, StoreError> {
        self.snapshot_of(self.keys.key_limit(account, scope)).await
    }

    pub async fn snapshot_of(&self, key: String) -> Result<Option<HotSnapshot>, StoreError> {
        let fields: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut self.conn.clone())
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let corrupt = |f: &str| StoreError::Corrupt(format!("field {f} of {key}"));
        let mut snap = HotSnapshot::default();
        for (f, v) in fields {
            match f.as_str() {
                "avail" => snap.avail_pico = v.parse().map_err(|_| corrupt(&f))?,
                "ver" => snap.version = v.parse().map_err(|_| corrupt(&f))?,
                "unp" => snap.unposted_pico = v.parse().map_err(|_| corrupt(&f))?,
                "ep" => snap.epoch = v,
                _ if f.starts_with("h:") => {
                    if v.starts_with('-') {
                        snap.tombstones += 1;
                    } else {
                        snap.open_holds += 1;
                        snap.held_pico += v.parse::<i64>().map_err(|_| corrupt(&f))?;
                    }
                }
                _ => {}
            }
        }
        Ok(Some(snap))
    }

    /// Every account hash of a shard, by account id (for reconciliation checks). SCAN-based:
    /// meant for `ledger verify`, not for the request path.
    pub async fn accounts_in_shard(&self, shard: u16) -> Result<Vec<Uuid>, StoreError> {
        let pattern = format!("{}:acct:*", self.keys.base(shard));
        let mut cursor: u64 = 0;
        let mut out = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut self.conn.clone())
                .await?;
            out.extend(
                batch
                    .iter()
                    .filter_map(|k| k.rsplit(':').next())
                    .filter_map(|id| Uuid::parse_str(id).ok()),
            );
            if next == 0 {
                return Ok(out);
            }
            cursor = next;
        }
    }
}

/// The hash tag of a key (`{sN}`), which decides its slot.
fn shard_tag(key: &str) -> &str {
    match (key.find('{'), key.find('}')) {
        (Some(a), Some(b)) if b > a => &key[a..=b],
        _ => key,
    }
}

/// A random 64-bit value, from the UUID v4 generator (no other RNG needed here).
fn rand_u64() -> u64 {
    let b = Uuid::new_v4().into_bytes();
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_of_an_account_share_its_shard_tag() {
        let keys = HotKeys::new("p", 8);
        let a = Uuid::now_v7();
        let scope = KeyScope {
            key_id: Uuid::now_v7(),
            period_start: 0,
        };
        let shard = keys.shard_of(a);
        let tag = format!("{{s{shard}}}");
        for k in [
            keys.account(a),
            keys.key_limit(a, &scope),
            keys.holds(shard),
            keys.progress(shard),
            keys.journal(shard),
        ] {
            assert_eq!(shard_tag(&k), tag, "{k}");
        }
    }

    #[test]
    fn accounts_spread_over_the_shards() {
        let keys = HotKeys::new("p", 8);
        let mut counts = [0u32; 8];
        for _ in 0..8000 {
            counts[usize::from(keys.shard_of(Uuid::now_v7()))] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }
}

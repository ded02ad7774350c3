//! The hot copy of available balances in Redis, shared by every gateway instance.
//!
//! Layout, under a configurable prefix `P`:
//! - `P:acct:{account}` hash: `avail` (integer pico-USD available to reserve), `ver` (the
//!   ledger version of the Postgres balance it was built from), `h:{request}` (open holds),
//!   `u:{request}` (costs already taken from `avail` but not yet posted to Postgres).
//! - `P:holds` sorted set of `{account}:{request}` scored by the hold's deadline (ms).
//! - `P:settlements` stream of settled requests waiting to be written to Postgres.
//!
//! All arithmetic is done by Redis on 64-bit integers (`HINCRBY` with string arguments); the
//! scripts only look at signs, so no amount ever passes through a Lua float.

use redis::Script;
use std::sync::LazyLock;
use uuid::Uuid;

use crate::{RedisPool, StoreError};

#[derive(Clone, Debug)]
pub struct HotKeys {
    prefix: String,
}

impl HotKeys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    pub fn account(&self, account: Uuid) -> String {
        format!("{}:acct:{account}", self.prefix)
    }
    pub fn holds(&self) -> String {
        format!("{}:holds", self.prefix)
    }
    pub fn settlements(&self) -> String {
        format!("{}:settlements", self.prefix)
    }
    pub fn key_limit(&self, scope: &KeyScope) -> String {
        format!(
            "{}:key:{}:{}",
            self.prefix, scope.key_id, scope.period_start
        )
    }
    pub fn hold_member(account: Uuid, request: Uuid, scope: Option<&KeyScope>) -> String {
        match scope {
            Some(k) => format!("{account}:{request}:{}:{}", k.key_id, k.period_start),
            None => format!("{account}:{request}"),
        }
    }
}

/// Outcome of a reservation attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    Reserved,
    /// Not enough available: carries the available amount in pico-USD.
    Insufficient {
        available_pico: i64,
    },
    /// The key's spending limit for its period is reached: what is left of it, in pico-USD.
    KeyLimitReached {
        remaining_pico: i64,
    },
    /// The account has no hot copy yet; load it from Postgres and retry.
    NotLoaded,
    /// The key's limit period has no hot copy yet; load it and retry.
    KeyNotLoaded,
}

/// A key's spending limit for one period, as it is named in Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyScope {
    pub key_id: Uuid,
    /// Unix seconds of the period's start.
    pub period_start: i64,
}

static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, '0'} end
local limited = #KEYS == 3
if limited and redis.call('EXISTS', KEYS[3]) == 0 then return {-2, '0'} end
-- A free request holds nothing, but an account in debt (or a spent key) is still refused.
local free = ARGV[2] == '0'
local function take(k)
  if free then return tonumber(redis.call('HGET', k, 'avail')) end
  return redis.call('HINCRBY', k, 'avail', '-' .. ARGV[2])
end
local function give(k)
  if not free then redis.call('HINCRBY', k, 'avail', ARGV[2]) end
end
if take(KEYS[1]) < 0 then
  give(KEYS[1])
  return {0, redis.call('HGET', KEYS[1], 'avail')}
end
if limited then
  if take(KEYS[3]) < 0 then
    give(KEYS[3])
    give(KEYS[1])
    return {2, redis.call('HGET', KEYS[3], 'avail')}
  end
  redis.call('HSET', KEYS[3], 'h:' .. ARGV[1], ARGV[2])
end
redis.call('HSET', KEYS[1], 'h:' .. ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return {1, '0'}
",
    )
});

/// Loads a hot copy from a Postgres balance unless one exists already; ARGV[3] > 0 sets a TTL (ms).
static LOAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HSETNX', KEYS[1], 'avail', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'ver', ARGV[2])
  if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
  return 1
end
return 0
",
    )
});

/// Closes a hold on the account (and the key's period, if limited): gives the hold back, takes
/// the actual cost, marks it unposted, and queues the settlement record. A hold that is gone
/// (swept after its deadline, or lost with the hot copy) is not given back twice.
static SETTLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local function close(k, req, cost)
  if redis.call('EXISTS', k) == 0 or redis.call('HEXISTS', k, 'u:' .. req) == 1 then return end
  local hold = redis.call('HGET', k, 'h:' .. req)
  if hold then
    redis.call('HDEL', k, 'h:' .. req)
    redis.call('HINCRBY', k, 'avail', hold)
  end
  if cost ~= '0' then
    redis.call('HINCRBY', k, 'avail', '-' .. cost)
    redis.call('HSET', k, 'u:' .. req, cost)
  end
end
close(KEYS[1], ARGV[1], ARGV[2])
if #KEYS == 4 then close(KEYS[4], ARGV[1], ARGV[2]) end
redis.call('ZREM', KEYS[2], ARGV[3])
return redis.call('XADD', KEYS[3], '*', 'p', ARGV[4])
",
    )
});

/// After Postgres posted a change at version `ver`: drop the unposted marker if this change was
/// already applied to the hot copy; otherwise apply the delta only if the hot copy was built
/// from an older version than this posting.
const POSTED_SRC: &str = r"
local k = KEYS[1]
if redis.call('EXISTS', k) == 0 then return 0 end
if ARGV[1] ~= '' and redis.call('HDEL', k, 'u:' .. ARGV[1]) == 1 then return 1 end
if ARGV[3] ~= '0' and tonumber(redis.call('HGET', k, 'ver') or '0') < tonumber(ARGV[2]) then
  redis.call('HINCRBY', k, 'avail', ARGV[3])
  return 2
end
return 0
";

static POSTED: LazyLock<Script> = LazyLock::new(|| Script::new(POSTED_SRC));

/// Takes up to ARGV[2] from the available balance for an expiry, never below zero, and marks
/// what it took as unposted. Returns what was taken, or -1 when there is no hot copy.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local k = KEYS[1]
if redis.call('EXISTS', k) == 0 then return '-1' end
local prev = redis.call('HGET', k, 'u:' .. ARGV[1])
if prev then return prev end
local left = redis.call('HINCRBY', k, 'avail', '-' .. ARGV[2])
if left >= 0 then
  redis.call('HSET', k, 'u:' .. ARGV[1], ARGV[2])
  return ARGV[2]
end
redis.call('HINCRBY', k, 'avail', ARGV[2])
local avail = redis.call('HGET', k, 'avail')
if tonumber(avail) <= 0 then return '0' end
redis.call('HSET', k, 'avail', '0')
redis.call('HSET', k, 'u:' .. ARGV[1], avail)
return avail
",
    )
});

/// Releases holds past their deadline (crashed instance, stuck request). Members are
/// `{account}:{request}` or `{account}:{request}:{key}:{period}`.
static SWEEP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local function release(k, req)
  local hold = redis.call('HGET', k, 'h:' .. req)
  if hold then
    redis.call('HDEL', k, 'h:' .. req)
    redis.call('HINCRBY', k, 'avail', hold)
    return 1
  end
  return 0
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local n = 0
for _, m in ipairs(expired) do
  local parts = {}
  for p in string.gmatch(m, '[^:]+') do table.insert(parts, p) end
  n = n + release(ARGV[2] .. ':acct:' .. parts[1], parts[2])
  if parts[4] then release(ARGV[2] .. ':key:' .. parts[3] .. ':' .. parts[4], parts[2]) end
  redis.call('ZREM', KEYS[1], m)
end
return n
",
    )
});

pub struct HotBalance {
    pool: RedisPool,
    keys: HotKeys,
}

impl HotBalance {
    pub fn new(pool: RedisPool, keys: HotKeys) -> Self {
        Self { pool, keys }
    }

    pub fn keys(&self) -> &HotKeys {
        &self.keys
    }

    pub fn pool(&self) -> &RedisPool {
        &self.pool
    }

    pub async fn reserve(
        &self,
        account: Uuid,
        request: Uuid,
        scope: Option<&KeyScope>,
        amount_pico: i64,
        deadline_ms: i64,
    ) -> Result<ReserveOutcome, StoreError> {
        let mut conn = self.pool.get().await?;
        let mut invocation = RESERVE.key(self.keys.account(account));
        invocation.key(self.keys.holds());
        if let Some(k) = scope {
            invocation.key(self.keys.key_limit(k));
        }
        let (code, amount): (i64, String) = invocation
            .arg(request.to_string())
            .arg(amount_pico.to_string())
            .arg(deadline_ms)
            .arg(HotKeys::hold_member(account, request, scope))
            .invoke_async(&mut *conn)
            .await?;
        let parse = |what: &str| -> Result<i64, StoreError> {
            amount
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("{what} of {account}")))
        };
        Ok(match code {
            1 => ReserveOutcome::Reserved,
            -1 => ReserveOutcome::NotLoaded,
            -2 => ReserveOutcome::KeyNotLoaded,
            2 => ReserveOutcome::KeyLimitReached {
                remaining_pico: parse("key limit")?,
            },
            _ => ReserveOutcome::Insufficient {
                available_pico: parse("avail")?,
            },
        })
    }

    /// Installs the hot copy from a Postgres balance; returns false if one already existed.
    pub async fn load(
        &self,
        account: Uuid,
        avail_pico: i64,
        version: i64,
    ) -> Result<bool, StoreError> {
        self.load_hash(self.keys.account(account), avail_pico, version, 0)
            .await
    }

    /// Installs a key's limit period from Postgres (limit minus used); it expires after `ttl_ms`.
    pub async fn load_key(
        &self,
        scope: &KeyScope,
        avail_pico: i64,
        version: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        self.load_hash(self.keys.key_limit(scope), avail_pico, version, ttl_ms)
            .await
    }

    async fn load_hash(
        &self,
        key: String,
        avail_pico: i64,
        version: i64,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.get().await?;
        let set: i64 = LOAD
            .key(key)
            .arg(avail_pico.to_string())
            .arg(version)
            .arg(ttl_ms)
            .invoke_async(&mut *conn)
            .await?;
        Ok(set == 1)
    }

    /// Changes a loaded hot copy of a key's period by `delta_pico` (its limit changed).
    pub async fn adjust_key(&self, scope: &KeyScope, delta_pico: i64) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await?;
        let key = self.keys.key_limit(scope);
        let exists: bool = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut *conn)
            .await?;
        if exists {
            let _: i64 = redis::cmd("HINCRBY")
                .arg(&key)
                .arg("avail")
                .arg(delta_pico)
                .query_async(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Takes up to `amount_pico` for an expiry (never below zero). None: no hot copy.
    pub async fn take_for_expiry(
        &self,
        account: Uuid,
        marker: &str,
        amount_pico: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut conn = self.pool.get().await?;
        let taken: String = TAKE
            .key(self.keys.account(account))
            .arg(marker)
            .arg(amount_pico.to_string())
            .invoke_async(&mut *conn)
            .await?;
        let taken: i64 = taken
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("expiry take of {account}")))?;
        Ok((taken >= 0).then_some(taken))
    }

    /// Returns the stream entry id of the queued settlement.
    pub async fn settle(
        &self,
        account: Uuid,
        request: Uuid,
        scope: Option<&KeyScope>,
        cost_pico: i64,
        payload: &str,
    ) -> Result<String, StoreError> {
        let mut conn = self.pool.get().await?;
        let mut invocation = SETTLE.key(self.keys.account(account));
        invocation
            .key(self.keys.holds())
            .key(self.keys.settlements());
        if let Some(k) = scope {
            invocation.key(self.keys.key_limit(k));
        }
        Ok(invocation
            .arg(request.to_string())
            .arg(cost_pico.to_string())
            .arg(HotKeys::hold_member(account, request, scope))
            .arg(payload)
            .invoke_async(&mut *conn)
            .await?)
    }

    /// Queues a settlement record for a request that never held anything (refused, invalid).
    pub async fn enqueue_record(&self, payload: &str) -> Result<String, StoreError> {
        let mut conn = self.pool.get().await?;
        Ok(redis::cmd("XADD")
            .arg(self.keys.settlements())
            .arg("*")
            .arg("p")
            .arg(payload)
            .query_async(&mut *conn)
            .await?)
    }

    /// Reconciles the hot copy after a posting. `marker` names a change already applied to
    /// the hot copy (a request id for usage, `exp-{lot}` for expiry; None for grants and
    /// top-ups); `delta_pico` is the change to the available balance.
    pub async fn posted(
        &self,
        account: Uuid,
        marker: Option<&str>,
        version: i64,
        delta_pico: i64,
    ) -> Result<(), StoreError> {
        self.posted_hash(self.keys.account(account), marker, version, delta_pico)
            .await
    }

    /// The same reconciliation for a key's limit period.
    pub async fn posted_key(
        &self,
        scope: &KeyScope,
        marker: Option<&str>,
        version: i64,
        delta_pico: i64,
    ) -> Result<(), StoreError> {
        self.posted_hash(self.keys.key_limit(scope), marker, version, delta_pico)
            .await
    }

    async fn posted_hash(
        &self,
        key: String,
        marker: Option<&str>,
        version: i64,
        delta_pico: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await?;
        let _: i64 = POSTED
            .key(key)
            .arg(marker.unwrap_or_default())
            .arg(version)
            .arg(delta_pico.to_string())
            .invoke_async(&mut *conn)
            .await?;
        Ok(())
    }

    pub async fn sweep_expired(&self, now_ms: i64, limit: usize) -> Result<i64, StoreError> {
        let mut conn = self.pool.get().await?;
        Ok(SWEEP
            .key(self.keys.holds())
            .arg(now_ms)
            .arg(self.keys.prefix())
            .arg(limit)
            .invoke_async(&mut *conn)
            .await?)
    }

    /// Reconciles many hot copies after a posting batch in one round trip (see `posted`).
    pub async fn posted_many(&self, items: &[PostedItem]) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut conn = self.pool.get().await?;
        let hash = POSTED.get_hash().to_string();
        let mut pipe = redis::pipe();
        for item in items {
            let key = match &item.target {
                PostedTarget::Account(a) => self.keys.account(*a),
                PostedTarget::Key(scope) => self.keys.key_limit(scope),
            };
            pipe.cmd("EVALSHA")
                .arg(&hash)
                .arg(1)
                .arg(key)
                .arg(item.marker.as_deref().unwrap_or_default())
                .arg(item.version)
                .arg(item.delta_pico.to_string())
                .ignore();
        }
        let first: Result<(), redis::RedisError> = pipe.query_async(&mut *conn).await;
        match first {
            Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                // Redis restarted and forgot the script: load it and run the batch again.
                let _: String = redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(POSTED_SRC)
                    .query_async(&mut *conn)
                    .await?;
                Ok(pipe.query_async(&mut *conn).await?)
            }
            other => Ok(other?),
        }
    }

    /// Available amount and number of open holds of an account's hot copy, if loaded.
    pub async fn snapshot(&self, account: Uuid) -> Result<Option<HotSnapshot>, StoreError> {
        self.snapshot_hash(self.keys.account(account), account)
            .await
    }

    /// The same for a key's limit period.
    pub async fn key_snapshot(&self, scope: &KeyScope) -> Result<Option<HotSnapshot>, StoreError> {
        self.snapshot_hash(self.keys.key_limit(scope), scope.key_id)
            .await
    }

    async fn snapshot_hash(
        &self,
        key: String,
        account: Uuid,
    ) -> Result<Option<HotSnapshot>, StoreError> {
        let mut conn = self.pool.get().await?;
        let fields: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(key)
            .query_async(&mut *conn)
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let mut snap = HotSnapshot::default();
        for (f, v) in fields {
            let n: i64 = v
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("field {f} of {account}")))?;
            match f.as_str() {
                "avail" => snap.avail_pico = n,
                "ver" => snap.version = n,
                _ if f.starts_with("h:") => {
                    snap.open_holds += 1;
                    snap.held_pico += n;
                }
                _ if f.starts_with("u:") => snap.unposted_pico += n,
                _ => {}
            }
        }
        Ok(Some(snap))
    }

    /// Number of holds, across all accounts, whose deadline is before `now_ms`.
    pub async fn overdue_holds(&self, now_ms: i64) -> Result<i64, StoreError> {
        let mut conn = self.pool.get().await?;
        Ok(redis::cmd("ZCOUNT")
            .arg(self.keys.holds())
            .arg("-inf")
            .arg(now_ms)
            .query_async(&mut *conn)
            .await?)
    }
}

/// Which hot copy a posting reconciles.
#[derive(Debug, Clone)]
pub enum PostedTarget {
    Account(Uuid),
    Key(KeyScope),
}

/// One reconciliation after a posting batch.
#[derive(Debug, Clone)]
pub struct PostedItem {
    pub target: PostedTarget,
    pub marker: Option<String>,
    pub version: i64,
    pub delta_pico: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HotSnapshot {
    pub avail_pico: i64,
    pub version: i64,
    pub open_holds: i64,
    pub held_pico: i64,
    pub unposted_pico: i64,
}

/// The settlement stream, read by the ledger writer through a consumer group.
pub struct SettlementStream {
    pool: RedisPool,
    key: String,
    group: String,
}

pub struct StreamEntry {
    pub id: String,
    pub payload: String,
}

impl SettlementStream {
    pub fn new(pool: RedisPool, keys: &HotKeys) -> Self {
        Self {
            pool,
            key: keys.settlements(),
            group: "ledger-writer".to_string(),
        }
    }

    pub async fn ensure_group(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await?;
        let res: Result<(), redis::RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.key)
            .arg(&self.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut *conn)
            .await;
        match res {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// New entries for this consumer, waiting up to `block_ms`.
    pub async fn read(
        &self,
        consumer: &str,
        count: usize,
        block_ms: usize,
    ) -> Result<Vec<StreamEntry>, StoreError> {
        let mut conn = self.pool.get().await?;
        let opts = redis::streams::StreamReadOptions::default()
            .group(&self.group, consumer)
            .count(count)
            .block(block_ms);
        let reply: Option<redis::streams::StreamReadReply> =
            redis::AsyncCommands::xread_options(&mut *conn, &[&self.key], &[">"], &opts).await?;
        Ok(reply
            .map(|r| collect_entries(r.keys.into_iter().flat_map(|k| k.ids)))
            .unwrap_or_default())
    }

    /// Claims entries another consumer took but did not acknowledge within `min_idle_ms`.
    pub async fn claim_stale(
        &self,
        consumer: &str,
        min_idle_ms: usize,
        count: usize,
    ) -> Result<Vec<StreamEntry>, StoreError> {
        let mut conn = self.pool.get().await?;
        let reply: redis::streams::StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&self.key)
            .arg(&self.group)
            .arg(consumer)
            .arg(min_idle_ms)
            .arg("0-0")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut *conn)
            .await?;
        Ok(collect_entries(reply.claimed.into_iter()))
    }

    pub async fn ack(&self, ids: &[String]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.pool.get().await?;
        let _: () = redis::pipe()
            .cmd("XACK")
            .arg(&self.key)
            .arg(&self.group)
            .arg(ids)
            .ignore()
            .cmd("XDEL")
            .arg(&self.key)
            .arg(ids)
            .ignore()
            .query_async(&mut *conn)
            .await?;
        Ok(())
    }

    /// Entries queued but not yet acknowledged by the ledger writer.
    pub async fn backlog(&self) -> Result<i64, StoreError> {
        let mut conn = self.pool.get().await?;
        Ok(redis::cmd("XLEN")
            .arg(&self.key)
            .query_async(&mut *conn)
            .await?)
    }
}

fn collect_entries(ids: impl Iterator<Item = redis::streams::StreamId>) -> Vec<StreamEntry> {
    ids.filter_map(|sid| {
        let payload = sid
            .map
            .get("p")
            .and_then(|v| redis::from_redis_value::<String>(v).ok())?;
        Some(StreamEntry {
            id: sid.id,
            payload,
        })
    })
    .collect()
}

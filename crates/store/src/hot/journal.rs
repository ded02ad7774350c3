//! The consumer side of the settlement journal: one Redis stream per shard, read by the ledger
//! writers of every instance through one consumer group, so each record is posted by one of
//! them; records a writer took and did not acknowledge (it died, or Postgres was away) are
//! retried by it or claimed by another.

use std::time::Duration;

use redis::Value;

use super::HotKeys;
use crate::redis_conn::RedisConn;
use crate::StoreError;

const GROUP: &str = "ledger-writer";

/// One journal record as the writer reads it.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    pub shard: u16,
    pub id: String,
    pub payload: String,
    /// What the hot state charged (capped at the hold, and at zero when the hold was gone).
    pub charged_pico: i64,
    /// Epochs of the account's and the key period's hashes the charge was taken from.
    pub epoch: String,
    pub key_epoch: String,
}

/// What of a shard's journal the writers have posted: every entry up to `last_delivered` that
/// is not pending (acknowledged only after its Postgres commit).
#[derive(Debug, Clone, Default)]
pub struct Watermark {
    pub last_delivered: Option<StreamId>,
    pub min_pending: Option<StreamId>,
}

impl Watermark {
    pub fn covers(&self, id: StreamId) -> bool {
        self.last_delivered.is_some_and(|d| id <= d) && self.min_pending.is_none_or(|p| id < p)
    }
}

/// A stream entry id (`ms-seq`), ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(pub u64, pub u64);

impl StreamId {
    pub fn parse(s: &str) -> Option<StreamId> {
        let (ms, seq) = s.split_once('-')?;
        Some(StreamId(ms.parse().ok()?, seq.parse().ok()?))
    }
    pub fn millis(self) -> u64 {
        self.0
    }
}

#[derive(Clone)]
pub struct Journal {
    conn: RedisConn,
    keys: HotKeys,
}

impl Journal {
    /// `conn` should be a connection of its own when `read` blocks (see `RedisConn`).
    pub fn new(conn: RedisConn, keys: HotKeys) -> Self {
        Self { conn, keys }
    }

    pub fn keys(&self) -> &HotKeys {
        &self.keys
    }

    /// Creates the consumer group on every shard's stream (and the streams) where missing.
    pub async fn ensure_groups(&self) -> Result<(), StoreError> {
        for shard in 0..self.keys.shards() {
            let res: Result<(), redis::RedisError> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(self.keys.journal(shard))
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut self.conn.clone())
                .await;
            match res {
                Ok(()) => {}
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// New entries for `consumer`, waiting up to `block` when there are none. Redis that lost
    /// its data (no group) gets its groups again.
    pub async fn read_new(
        &self,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        match self.read(consumer, ">", count, block).await {
            Err(StoreError::Redis(e)) if e.code() == Some("NOGROUP") => {
                self.ensure_groups().await?;
                Ok(Vec::new())
            }
            other => other,
        }
    }

    /// Entries this consumer took before and has not acknowledged (a failed batch).
    pub async fn read_own_pending(
        &self,
        consumer: &str,
        count: usize,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        match self.read(consumer, "0", count, Duration::ZERO).await {
            Err(StoreError::Redis(e)) if e.code() == Some("NOGROUP") => {
                self.ensure_groups().await?;
                Ok(Vec::new())
            }
            other => other,
        }
    }

    async fn read(
        &self,
        consumer: &str,
        from: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let shards: Vec<u16> = (0..self.keys.shards()).collect();
        if self.conn.is_cluster() {
            // Streams of different shards live in different slots: read them one by one,
            // without blocking, and wait here when all are empty.
            let mut out = Vec::new();
            for &shard in &shards {
                out.extend(
                    self.read_streams(consumer, from, count, None, &[shard])
                        .await?,
                );
            }
            if out.is_empty() && from == ">" && !block.is_zero() {
                tokio::time::sleep(block.min(Duration::from_millis(20))).await;
            }
            return Ok(out);
        }
        let block = (from == ">" && !block.is_zero()).then_some(block);
        self.read_streams(consumer, from, count, block, &shards)
            .await
    }

    async fn read_streams(
        &self,
        consumer: &str,
        from: &str,
        count: usize,
        block: Option<Duration>,
        shards: &[u16],
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(count);
        if let Some(b) = block {
            cmd.arg("BLOCK")
                .arg(u64::try_from(b.as_millis()).unwrap_or(u64::MAX).max(1));
        }
        cmd.arg("STREAMS");
        for &s in shards {
            cmd.arg(self.keys.journal(s));
        }
        for _ in shards {
            cmd.arg(from);
        }
        let reply: Option<redis::streams::StreamReadReply> =
            cmd.query_async(&mut self.conn.clone()).await?;
        let mut out = Vec::new();
        for stream in reply.map(|r| r.keys).unwrap_or_default() {
            let Some(shard) = shards
                .iter()
                .copied()
                .find(|&s| self.keys.journal(s) == stream.key)
            else {
                continue;
            };
            out.extend(stream.ids.into_iter().filter_map(|e| entry(shard, e)));
        }
        Ok(out)
    }

    /// Claims entries other consumers took and left unacknowledged for `min_idle` (their
    /// instance died or stalled).
    pub async fn claim_stale(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let mut out = Vec::new();
        for shard in 0..self.keys.shards() {
            let res: Result<redis::streams::StreamAutoClaimReply, redis::RedisError> =
                redis::cmd("XAUTOCLAIM")
                    .arg(self.keys.journal(shard))
                    .arg(GROUP)
                    .arg(consumer)
                    .arg(u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX))
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(count)
                    .query_async(&mut self.conn.clone())
                    .await;
            match res {
                Ok(reply) => out.extend(reply.claimed.into_iter().filter_map(|e| entry(shard, e))),
                Err(e) if e.code() == Some("NOGROUP") => self.ensure_groups().await?,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// Acknowledges and deletes posted entries.
    pub async fn ack(&self, entries: &[JournalEntry]) -> Result<(), StoreError> {
        for shard in 0..self.keys.shards() {
            let ids: Vec<&str> = entries
                .iter()
                .filter(|e| e.shard == shard)
                .map(|e| e.id.as_str())
                .collect();
            if ids.is_empty() {
                continue;
            }
            let key = self.keys.journal(shard);
            let _: () = redis::pipe()
                .cmd("XACK")
                .arg(&key)
                .arg(GROUP)
                .arg(&ids)
                .ignore()
                .cmd("XDEL")
                .arg(&key)
                .arg(&ids)
                .ignore()
                .query_async(&mut self.conn.clone())
                .await?;
        }
        Ok(())
    }

    /// Appends a record again (Redis lost it): `charged` and the epochs as first settled.
    pub async fn append(
        &self,
        shard: u16,
        payload: &str,
        charged_pico: i64,
        epoch: &str,
        key_epoch: &str,
    ) -> Result<String, StoreError> {
        Ok(redis::cmd("XADD")
            .arg(self.keys.journal(shard))
            .arg("*")
            .arg("s")
            .arg(format!("{charged_pico}|{epoch}|{key_epoch}|{payload}"))
            .query_async(&mut self.conn.clone())
            .await?)
    }

    /// What of one shard's journal has been posted.
    pub async fn watermark(&self, shard: u16) -> Result<Watermark, StoreError> {
        let key = self.keys.journal(shard);
        let (groups, pending): (Value, Value) = redis::pipe()
            .cmd("XINFO")
            .arg("GROUPS")
            .arg(&key)
            .cmd("XPENDING")
            .arg(&key)
            .arg(GROUP)
            .query_async(&mut self.conn.clone())
            .await?;
        let mut mark = Watermark::default();
        if let Value::Array(groups) = groups {
            for g in groups {
                let fields = flat_map(g);
                if fields.get("name").map(String::as_str) == Some(GROUP) {
                    mark.last_delivered = fields
                        .get("last-delivered-id")
                        .and_then(|s| StreamId::parse(s));
                }
            }
        }
        // XPENDING summary: [count, min id, max id, consumers].
        if let Value::Array(parts) = pending {
            let count: i64 = parts
                .first()
                .and_then(|v| redis::from_redis_value(v).ok())
                .unwrap_or(0);
            if count > 0 {
                mark.min_pending = parts
                    .get(1)
                    .and_then(|v| redis::from_redis_value::<String>(v).ok())
                    .and_then(|s| StreamId::parse(&s));
            }
        }
        Ok(mark)
    }

    /// Entries queued in one shard, and the id of the oldest.
    pub async fn depth(&self, shard: u16) -> Result<(i64, Option<StreamId>), StoreError> {
        let key = self.keys.journal(shard);
        let (len, first): (i64, Vec<(String, Value)>) = redis::pipe()
            .cmd("XLEN")
            .arg(&key)
            .cmd("XRANGE")
            .arg(&key)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok((len, first.first().and_then(|(id, _)| StreamId::parse(id))))
    }

    /// Entries queued in every shard.
    pub async fn backlog(&self) -> Result<i64, StoreError> {
        let mut total = 0;
        for shard in 0..self.keys.shards() {
            total += self.depth(shard).await?.0;
        }
        Ok(total)
    }

    /// Entries pending (taken, not acknowledged) for longer than `idle`, in every shard.
    pub async fn stale_pending(&self, idle: Duration) -> Result<i64, StoreError> {
        let mut total = 0;
        for shard in 0..self.keys.shards() {
            let res: Result<Vec<Value>, redis::RedisError> = redis::cmd("XPENDING")
                .arg(self.keys.journal(shard))
                .arg(GROUP)
                .arg("IDLE")
                .arg(u64::try_from(idle.as_millis()).unwrap_or(u64::MAX))
                .arg("-")
                .arg("+")
                .arg(10_000)
                .query_async(&mut self.conn.clone())
                .await;
            match res {
                Ok(list) => total += i64::try_from(list.len()).unwrap_or(i64::MAX),
                Err(e) if e.code() == Some("NOGROUP") => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(total)
    }
}

fn entry(shard: u16, e: redis::streams::StreamId) -> Option<JournalEntry> {
    let field = |name: &str| -> Option<String> {
        e.map
            .get(name)
            .and_then(|v| redis::from_redis_value::<String>(v).ok())
    };
    // `s`: `charged|epoch|key epoch|payload`. Entries written before that format carried the
    // parts as the fields p, c, e and f; both are read.
    if let Some(s) = field("s") {
        let mut parts = s.splitn(4, '|');
        let charged_pico = parts.next()?.parse().ok()?;
        let epoch = parts.next()?.to_string();
        let key_epoch = parts.next()?.to_string();
        let payload = parts.next()?.to_string();
        return Some(JournalEntry {
            shard,
            id: e.id,
            payload,
            charged_pico,
            epoch,
            key_epoch,
        });
    }
    Some(JournalEntry {
        shard,
        payload: field("p")?,
        charged_pico: field("c").and_then(|c| c.parse().ok()).unwrap_or(0),
        epoch: field("e").unwrap_or_default(),
        key_epoch: field("f").unwrap_or_default(),
        id: e.id,
    })
}

/// A RESP2 flat array of alternating names and values (or a RESP3 map), as strings.
fn flat_map(v: Value) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    match v {
        Value::Array(items) => {
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                if let (Ok(k), Ok(v)) = (
                    redis::from_redis_value::<String>(&k),
                    redis::from_redis_value::<String>(&v),
                ) {
                    out.insert(k, v);
                }
            }
        }
        Value::Map(pairs) => {
            for (k, v) in pairs {
                if let (Ok(k), Ok(v)) = (
                    redis::from_redis_value::<String>(&k),
                    redis::from_redis_value::<String>(&v),
                ) {
                    out.insert(k, v);
                }
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn watermark_covers_acknowledged_entries_only() {
        let id = |s: &str| StreamId::parse(s).unwrap();
        let mark = Watermark {
            last_delivered: Some(id("100-5")),
            min_pending: Some(id("90-0")),
        };
        assert!(mark.covers(id("89-9")));
        assert!(!mark.covers(id("90-0")), "pending");
        assert!(!mark.covers(id("100-6")), "not delivered yet");
        let idle = Watermark {
            last_delivered: Some(id("100-5")),
            min_pending: None,
        };
        assert!(idle.covers(id("100-5")));
        assert!(!Watermark::default().covers(id("1-0")), "no group yet");
    }
}

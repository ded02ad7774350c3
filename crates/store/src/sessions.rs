//! Sign-in sessions and attempt counters in Redis, shared by every instance.
//!
//! A session is the hash `prefix:{sessions}:sess:{id_hash}`, where `id_hash` is the hex SHA-256 of the
//! cookie's value: the session id itself is never stored. It expires after the idle time and
//! is refreshed on use, never past its absolute deadline. `prefix:{sessions}:user:{subject}` lists
//! a subject's sessions so that all of them can be ended at once. `{sessions}` is a Redis Cluster
//! hash tag: a session and its index change together in one atomic step on a cluster too.

use std::collections::HashMap;
use std::sync::LazyLock;

use redis::Script;

use crate::redis_conn::RedisConn;
use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// `user:{uuid}` or `operator:{uuid}`.
    pub subject: String,
    /// The account a user is acting in (empty for operators).
    pub account: String,
    pub csrf: String,
    pub created_ms: i64,
    pub absolute_ms: i64,
}

#[derive(Clone)]
pub struct SessionStore {
    conn: RedisConn,
    prefix: String,
}

/// Reads a session and extends its idle expiry (never past the absolute deadline) in one step.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('HGETALL', KEYS[1])
if #v == 0 then return v end
local abs = tonumber(redis.call('HGET', KEYS[1], 'absolute_ms'))
local now = tonumber(ARGV[1])
if abs == nil or abs <= now then
  redis.call('DEL', KEYS[1])
  return {}
end
local ttl = math.min(tonumber(ARGV[2]), abs - now)
redis.call('PEXPIRE', KEYS[1], ttl)
return v
",
    )
});

/// Counts an attempt in a fixed window; returns the milliseconds until the window ends when
/// the limit is exceeded, else -1.
static COUNT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    ttl = tonumber(ARGV[1])
  end
  return ttl
end
return -1
",
    )
});

impl SessionStore {
    pub fn new(conn: RedisConn, prefix: &str) -> Self {
        Self {
            conn,
            prefix: prefix.to_string(),
        }
    }

    // Sessions and their per-user indexes share one hash tag, `{sessions}`, so that creating
    // and ending them stays one atomic step on a Redis Cluster too.
    fn key(&self, id_hash: &str) -> String {
        format!("{}:{{sessions}}:sess:{id_hash}", self.prefix)
    }

    fn index(&self, subject: &str) -> String {
        format!("{}:{{sessions}}:user:{subject}", self.prefix)
    }

    pub async fn create(
        &self,
        id_hash: &str,
        r: &SessionRecord,
        idle_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let key = self.key(id_hash);
        let index = self.index(&r.subject);
        let ttl = idle_ms.min(r.absolute_ms - r.created_ms).max(1);
        // Drop index entries of sessions that expired on their own.
        let known: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&index)
            .query_async(&mut conn)
            .await?;
        let mut pipe = redis::pipe();
        for h in &known {
            pipe.cmd("EXISTS").arg(self.key(h));
        }
        let alive: Vec<bool> = if known.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut conn).await?
        };
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HSET")
            .arg(&key)
            .arg("subject")
            .arg(&r.subject)
            .arg("account")
            .arg(&r.account)
            .arg("csrf")
            .arg(&r.csrf)
            .arg("created_ms")
            .arg(r.created_ms)
            .arg("absolute_ms")
            .arg(r.absolute_ms)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(ttl)
            .ignore()
            .cmd("SADD")
            .arg(&index)
            .arg(id_hash)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&index)
            .arg(r.absolute_ms - r.created_ms)
            .ignore();
        for (h, alive) in known.iter().zip(alive) {
            if !alive {
                pipe.cmd("SREM").arg(&index).arg(h).ignore();
            }
        }
        let () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    /// The session, refreshed; None when unknown, idle too long or past its deadline.
    pub async fn touch(
        &self,
        id_hash: &str,
        now_ms: i64,
        idle_ms: i64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let mut conn = self.conn.clone();
        let v: HashMap<String, String> = TOUCH
            .key(self.key(id_hash))
            .arg(now_ms)
            .arg(idle_ms)
            .invoke_async(&mut conn)
            .await?;
        if v.is_empty() {
            return Ok(None);
        }
        let num = |k: &str| v.get(k).and_then(|s| s.parse::<i64>().ok());
        match (
            v.get("subject"),
            v.get("csrf"),
            num("created_ms"),
            num("absolute_ms"),
        ) {
            (Some(subject), Some(csrf), Some(created_ms), Some(absolute_ms)) => {
                Ok(Some(SessionRecord {
                    subject: subject.clone(),
                    account: v.get("account").cloned().unwrap_or_default(),
                    csrf: csrf.clone(),
                    created_ms,
                    absolute_ms,
                }))
            }
            _ => Err(StoreError::Corrupt(format!("session {id_hash}"))),
        }
    }

    pub async fn set_account(&self, id_hash: &str, account: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let key = self.key(id_hash);
        // HSET only if the session still exists, so a raced sign-out is not resurrected.
        let exists: bool = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut conn)
            .await?;
        if exists {
            let _: i64 = redis::cmd("HSET")
                .arg(&key)
                .arg("account")
                .arg(account)
                .query_async(&mut conn)
                .await?;
        }
        Ok(())
    }

    pub async fn delete(&self, id_hash: &str, subject: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let () = redis::pipe()
            .cmd("DEL")
            .arg(self.key(id_hash))
            .ignore()
            .cmd("SREM")
            .arg(self.index(subject))
            .arg(id_hash)
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Ends every session of `subject` except `keep` (the caller's own, when it stays).
    pub async fn delete_all(&self, subject: &str, keep: Option<&str>) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        let index = self.index(subject);
        let known: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&index)
            .query_async(&mut conn)
            .await?;
        let mut pipe = redis::pipe();
        let mut n = 0;
        for h in known.iter().filter(|h| Some(h.as_str()) != keep) {
            pipe.cmd("DEL").arg(self.key(h)).ignore();
            pipe.cmd("SREM").arg(&index).arg(h).ignore();
            n += 1;
        }
        if n > 0 {
            let () = pipe.query_async(&mut conn).await?;
        }
        Ok(n)
    }

    /// Counts one attempt against `bucket` (e.g. `signin:ip:1.2.3.4`); Some(ms to wait) when
    /// more than `limit` were made within the window.
    pub async fn count_attempt(
        &self,
        bucket: &str,
        window_ms: i64,
        limit: u32,
    ) -> Result<Option<i64>, StoreError> {
        let mut conn = self.conn.clone();
        let wait: i64 = COUNT
            .key(format!("{}:throttle:{bucket}", self.prefix))
            .arg(window_ms)
            .arg(limit)
            .invoke_async(&mut conn)
            .await?;
        Ok((wait >= 0).then_some(wait))
    }
}

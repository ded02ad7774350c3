//! Endpoint health shared by every gateway instance through Redis: consecutive failures and the
//! circuit they open, the last failure, moving averages of latency and throughput, and
//! per-minute counters for the endpoints page.
//!
//! The request path never waits on Redis for health: it reads an in-process snapshot that a
//! background task refreshes with one pipelined round trip (and that this instance's own
//! outcomes update at once). Failures are written at once by spawned tasks (they open
//! circuits); successes are added up in process and written once per refresh (they only move
//! averages and counters), so a busy endpoint costs Redis a few calls a second, not one per
//! request. The only synchronous call is claiming the probe of a half-open circuit, and only
//! when a candidate is half-open.
//!
//! Layout, under the Redis prefix `P`, for an endpoint `E` (`provider/upstream_model`). Every
//! key carries the hash tag `{health}`, so all of them share one Redis Cluster slot and the
//! refresh can read every endpoint in one pipeline:
//! - `P:health:{health}:E` hash: `fails` (consecutive failures), `last_fail` and `last_ok` (ms),
//!   `open_until` (ms; the circuit is open before it), `lat` (EWMA of latency, ms), `tput`
//!   (EWMA of throughput, tokens/s). Expires a day after the last outcome.
//! - `P:health:{health}:E:m:{minute}` hash: `ok`, `err`, latency histogram `l0`..`l14`, `tok` and
//!   `gen_ms` (tokens generated and the time spent generating them). Expires after 31 minutes.
//! - `P:health:{health}:E:probe`: the half-open probe lease, set with NX for one cool-down.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::Duration;

use infron_store::redis_conn::RedisConn;
use infron_store::StoreError;
use redis::Script;

use crate::catalog::Endpoint;
use crate::providers::FailureKind;

/// Upper bounds (ms) of the latency histogram buckets; the last bucket is unbounded.
const LATENCY_BOUNDS_MS: [u64; 14] = [
    100, 250, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 7_500, 10_000, 15_000, 30_000, 60_000,
];
/// Weight of a new sample in the moving averages.
const EWMA_ALPHA: &str = "0.2";
const WINDOW_MINUTES: i64 = 30;

#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// An endpoint that failed within this window is tried after those that did not.
    pub failure_window: Duration,
    /// Consecutive failures that open the circuit.
    pub circuit_threshold: u32,
    /// How long an open circuit stays open before one probe request is let through.
    pub cooldown: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            failure_window: Duration::from_secs(30),
            circuit_threshold: 5,
            cooldown: Duration::from_secs(30),
        }
    }
}

/// What is known of one endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointHealth {
    pub consecutive_failures: u32,
    pub last_failure_ms: i64,
    pub open_until_ms: i64,
    /// Moving average of the time to the answer's first content (streams) or to the whole
    /// answer (non-streaming), ms.
    pub latency_ms: Option<f64>,
    /// Moving average of output tokens per second while generating.
    pub throughput: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    Closed,
    Open,
    /// Cool-down over: one probe may go through; its outcome closes or re-opens the circuit.
    HalfOpen,
}

/// How an endpoint ranks for the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    Healthy,
    /// Failed within the failure window; tried after the healthy ones.
    RecentlyFailed,
    /// Circuit open (or half-open and another request holds the probe); tried last.
    Open,
}

impl EndpointHealth {
    pub fn circuit(&self, now_ms: i64, config: &HealthConfig) -> Circuit {
        if self.consecutive_failures < config.circuit_threshold.max(1) {
            Circuit::Closed
        } else if now_ms < self.open_until_ms {
            Circuit::Open
        } else {
            Circuit::HalfOpen
        }
    }

    pub fn recently_failed(&self, now_ms: i64, config: &HealthConfig) -> bool {
        self.last_failure_ms > 0 && now_ms - self.last_failure_ms < millis(config.failure_window)
    }

    /// `ok`, `degraded` (a failure within the window, or the last outcome was a failure) or
    /// `open` (circuit open or half-open).
    pub fn status(&self, now_ms: i64, config: &HealthConfig) -> &'static str {
        match self.circuit(now_ms, config) {
            Circuit::Open | Circuit::HalfOpen => "open",
            Circuit::Closed
                if self.consecutive_failures > 0 || self.recently_failed(now_ms, config) =>
            {
                "degraded"
            }
            Circuit::Closed => "ok",
        }
    }
}

/// The result of one attempt, as far as the endpoint's health is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success {
        latency_ms: u64,
        /// Output tokens and the time spent producing them, for throughput (0 when unknown).
        tokens: u64,
        generation_ms: u64,
    },
    Failure,
}

/// Whether a failure says something about the endpoint. A request the provider rejects (400,
/// context too long) is the request's fault and leaves the endpoint's health alone.
pub fn counts_against_endpoint(kind: FailureKind) -> bool {
    !matches!(
        kind,
        FailureKind::InvalidRequest | FailureKind::ContextLength
    )
}

/// Figures of the last 30 minutes for the endpoints page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowStats {
    pub requests: u64,
    pub failures: u64,
    /// Share of successful requests, 0 to 100; `None` without requests.
    pub uptime_percent: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p75_ms: Option<f64>,
    pub latency_p90_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// Output tokens per second while generating, over the window.
    pub throughput: Option<f64>,
}

/// Records outcomes of one endpoint. ARGV: successes (0 for one failure), now (ms), mean
/// latency (ms, -1 if none), latency samples, tokens, generation ms, circuit threshold,
/// cool-down (ms), EWMA weight, minute-bucket TTL, state TTL, then histogram bucket names and
/// counts in pairs. `n` successes move the averages as `n` samples of their mean would.
static RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local s = KEYS[1]
local b = KEYS[2]
local now = tonumber(ARGV[2])
local n = tonumber(ARGV[1])
local alpha = 1 - (1 - tonumber(ARGV[9])) ^ math.max(n, 1)
local function ewma(field, sample)
  local old = tonumber(redis.call('HGET', s, field) or '')
  local new = sample
  if old then new = old + alpha * (sample - old) end
  redis.call('HSET', s, field, tostring(new))
end
if n > 0 then
  redis.call('HSET', s, 'fails', '0', 'open_until', '0', 'last_ok', ARGV[2])
  redis.call('HINCRBY', b, 'ok', n)
  local lat = tonumber(ARGV[3])
  if lat >= 0 then ewma('lat', lat) end
  for i = 12, #ARGV, 2 do redis.call('HINCRBY', b, ARGV[i], ARGV[i + 1]) end
  local tok = tonumber(ARGV[5])
  local gen = tonumber(ARGV[6])
  if tok > 0 and gen > 0 then
    ewma('tput', tok * 1000 / gen)
    redis.call('HINCRBY', b, 'tok', tok)
    redis.call('HINCRBY', b, 'gen_ms', gen)
  end
else
  local fails = redis.call('HINCRBY', s, 'fails', 1)
  redis.call('HSET', s, 'last_fail', ARGV[2])
  redis.call('HINCRBY', b, 'err', 1)
  if fails >= tonumber(ARGV[7]) then
    redis.call('HSET', s, 'open_until', string.format('%d', now + tonumber(ARGV[8])))
  end
end
redis.call('EXPIRE', b, ARGV[10])
redis.call('EXPIRE', s, ARGV[11])
return redis.call('HMGET', s, 'fails', 'last_fail', 'open_until', 'lat', 'tput')
",
    )
});

const STATE_FIELDS: [&str; 5] = ["fails", "last_fail", "open_until", "lat", "tput"];

/// Successes of one endpoint since the last flush.
#[derive(Debug, Default, Clone)]
struct Successes {
    count: u64,
    latency_sum: u64,
    buckets: HashMap<usize, u64>,
    tokens: u64,
    generation_ms: u64,
}

/// Health of every endpoint: Redis as the shared truth, a snapshot for the request path.
pub struct HealthBoard {
    conn: RedisConn,
    prefix: String,
    pub config: HealthConfig,
    snapshot: RwLock<HashMap<String, EndpointHealth>>,
    pending: Mutex<HashMap<String, Successes>>,
}

impl HealthBoard {
    pub fn new(conn: RedisConn, redis_prefix: &str, config: HealthConfig) -> Self {
        Self {
            conn,
            prefix: format!("{redis_prefix}:health"),
            config,
            snapshot: RwLock::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
        }
    }

    // Every health key shares one hash tag, `{health}`: the refresh reads all endpoints in one
    // pipeline, which a Redis Cluster accepts only within one slot. (The data is small: a hash
    // and a few minute buckets per endpoint.)
    fn state_key(&self, endpoint: &str) -> String {
        format!("{}:{{health}}:{endpoint}", self.prefix)
    }

    fn minute_key(&self, endpoint: &str, minute: i64) -> String {
        format!("{}:{{health}}:{endpoint}:m:{minute}", self.prefix)
    }

    fn probe_key(&self, endpoint: &str) -> String {
        format!("{}:{{health}}:{endpoint}:probe", self.prefix)
    }

    /// The snapshot's view of one endpoint (unknown endpoints are healthy).
    pub fn get(&self, endpoint: &str) -> EndpointHealth {
        let map = match self.snapshot.read() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.get(endpoint).cloned().unwrap_or_default()
    }

    fn put(&self, endpoint: &str, health: EndpointHealth) {
        let mut map = match self.snapshot.write() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.insert(endpoint.to_string(), health);
    }

    /// Records an attempt's outcome without making the request wait. A failure (and the first
    /// success after failures, which closes the circuit) goes to Redis at once; other
    /// successes are added up and written by the next `flush`.
    pub fn record(self: &Arc<Self>, endpoint: &Endpoint, outcome: Outcome) {
        if let Outcome::Success {
            latency_ms,
            tokens,
            generation_ms,
        } = outcome
        {
            if self.get(&endpoint.key).consecutive_failures == 0 {
                if let Ok(mut pending) = self.pending.lock() {
                    let s = pending.entry(endpoint.key.clone()).or_default();
                    s.count += 1;
                    s.latency_sum = s.latency_sum.saturating_add(latency_ms);
                    *s.buckets.entry(latency_bucket(latency_ms)).or_default() += 1;
                    if tokens > 0 && generation_ms > 0 {
                        s.tokens += tokens;
                        s.generation_ms += generation_ms;
                    }
                    return;
                }
            }
        }
        let board = self.clone();
        let key = endpoint.key.clone();
        let batch = match outcome {
            Outcome::Failure => None,
            Outcome::Success {
                latency_ms,
                tokens,
                generation_ms,
            } => Some(Successes {
                count: 1,
                latency_sum: latency_ms,
                buckets: HashMap::from([(latency_bucket(latency_ms), 1)]),
                tokens,
                generation_ms,
            }),
        };
        tokio::spawn(async move {
            if let Err(e) = board.write(&key, batch.as_ref()).await {
                tracing::warn!(endpoint = %key, error = %e, "could not record endpoint health");
            }
        });
    }

    /// Records one outcome in Redis now (tests and tools).
    pub async fn record_now(&self, endpoint: &str, outcome: Outcome) -> Result<(), StoreError> {
        let batch = match outcome {
            Outcome::Failure => None,
            Outcome::Success {
                latency_ms,
                tokens,
                generation_ms,
            } => Some(Successes {
                count: 1,
                latency_sum: latency_ms,
                buckets: HashMap::from([(latency_bucket(latency_ms), 1)]),
                tokens,
                generation_ms,
            }),
        };
        self.write(endpoint, batch.as_ref()).await
    }

    /// Writes the successes added up since the last flush, one call per endpoint.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let pending = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return Ok(()),
        };
        for (endpoint, batch) in pending {
            self.write(&endpoint, Some(&batch)).await?;
        }
        Ok(())
    }

    /// `None`: one failure; `Some`: successes.
    async fn write(&self, endpoint: &str, successes: Option<&Successes>) -> Result<(), StoreError> {
        let now = now_ms();
        let mut conn = self.conn.clone();
        let mut invocation = RECORD.prepare_invoke();
        invocation
            .key(self.state_key(endpoint))
            .key(self.minute_key(endpoint, now.div_euclid(60_000)));
        match successes {
            Some(s) => {
                let mean = s.latency_sum / s.count.max(1);
                invocation
                    .arg(s.count)
                    .arg(now)
                    .arg(i64::try_from(mean).unwrap_or(i64::MAX))
                    .arg(s.count)
                    .arg(s.tokens)
                    .arg(s.generation_ms);
            }
            None => {
                invocation.arg(0).arg(now).arg(-1).arg(0).arg(0).arg(0);
            }
        }
        invocation
            .arg(self.config.circuit_threshold.max(1))
            .arg(millis(self.config.cooldown))
            .arg(EWMA_ALPHA)
            .arg((WINDOW_MINUTES + 1) * 60)
            .arg(86_400);
        if let Some(s) = successes {
            for (bucket, count) in &s.buckets {
                invocation.arg(format!("l{bucket}")).arg(*count);
            }
        }
        let fields: Vec<Option<String>> = invocation.invoke_async(&mut conn).await?;
        self.put(endpoint, parse_state(&fields));
        Ok(())
    }

    /// Reloads the snapshot of `endpoints` from Redis in one pipelined round trip.
    pub async fn refresh(&self, endpoints: &[String]) -> Result<(), StoreError> {
        if endpoints.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for e in endpoints {
            pipe.cmd("HMGET")
                .arg(self.state_key(e))
                .arg(&STATE_FIELDS[..]);
        }
        let mut conn = self.conn.clone();
        let rows: Vec<Vec<Option<String>>> = pipe.query_async(&mut conn).await?;
        let fresh: HashMap<String, EndpointHealth> = endpoints
            .iter()
            .cloned()
            .zip(rows.iter().map(|r| parse_state(r)))
            .collect();
        let mut map = match self.snapshot.write() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        *map = fresh;
        Ok(())
    }

    /// How each endpoint ranks now. A half-open endpoint is `Healthy` for the one request that
    /// wins its probe lease (one Redis round trip for all half-open candidates together, made
    /// only when there are any), and `Open` for every other request.
    pub async fn standings(&self, endpoints: &[Arc<Endpoint>]) -> HashMap<String, Standing> {
        let now = now_ms();
        let mut out = HashMap::new();
        let mut half_open = Vec::new();
        for e in endpoints {
            if out.contains_key(&e.key) {
                continue;
            }
            let h = self.get(&e.key);
            let standing = match h.circuit(now, &self.config) {
                Circuit::Open => Standing::Open,
                Circuit::HalfOpen => {
                    half_open.push(e.key.clone());
                    Standing::Open
                }
                Circuit::Closed if h.recently_failed(now, &self.config) => Standing::RecentlyFailed,
                Circuit::Closed => Standing::Healthy,
            };
            out.insert(e.key.clone(), standing);
        }
        if !half_open.is_empty() {
            match self.claim_probes(&half_open).await {
                Ok(won) => {
                    for key in won {
                        out.insert(key, Standing::Healthy);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not claim circuit probes"),
            }
        }
        out
    }

    async fn claim_probes(&self, endpoints: &[String]) -> Result<Vec<String>, StoreError> {
        let mut pipe = redis::pipe();
        for e in endpoints {
            pipe.cmd("SET")
                .arg(self.probe_key(e))
                .arg("1")
                .arg("NX")
                .arg("PX")
                .arg(millis(self.config.cooldown).max(1));
        }
        let mut conn = self.conn.clone();
        let replies: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
        Ok(endpoints
            .iter()
            .zip(replies)
            .filter(|(_, r)| r.is_some())
            .map(|(e, _)| e.clone())
            .collect())
    }

    /// Current state (from Redis, not the snapshot) and the last 30 minutes of one endpoint.
    pub async fn report(
        &self,
        endpoint: &str,
    ) -> Result<(EndpointHealth, WindowStats), StoreError> {
        let minute = now_ms().div_euclid(60_000);
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET")
            .arg(self.state_key(endpoint))
            .arg(&STATE_FIELDS[..]);
        for m in (minute - WINDOW_MINUTES + 1)..=minute {
            pipe.cmd("HGETALL").arg(self.minute_key(endpoint, m));
        }
        let mut conn = self.conn.clone();
        let (state, buckets): (Vec<Option<String>>, Vec<HashMap<String, u64>>) = {
            let mut replies: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
            if replies.is_empty() {
                return Ok(Default::default());
            }
            let state: Vec<Option<String>> = redis::from_redis_value(&replies.remove(0))?;
            let buckets = replies
                .iter()
                .map(redis::from_redis_value)
                .collect::<Result<Vec<HashMap<String, u64>>, _>>()?;
            (state, buckets)
        };
        Ok((parse_state(&state), window_stats(&buckets)))
    }
}

fn parse_state(fields: &[Option<String>]) -> EndpointHealth {
    let get = |i: usize| fields.get(i).and_then(|v| v.as_deref());
    let int = |i: usize| get(i).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let float = |i: usize| {
        get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite())
    };
    EndpointHealth {
        consecutive_failures: u32::try_from(int(0)).unwrap_or(u32::MAX),
        last_failure_ms: int(1),
        open_until_ms: int(2),
        latency_ms: float(3),
        throughput: float(4),
    }
}

fn latency_bucket(ms: u64) -> usize {
    LATENCY_BOUNDS_MS
        .iter()
        .position(|&b| ms <= b)
        .unwrap_or(LATENCY_BOUNDS_MS.len())
}

/// Sums minute buckets; percentiles are interpolated linearly inside the histogram bucket that
/// holds them (the open-ended last bucket reports its lower bound).
pub fn window_stats(buckets: &[HashMap<String, u64>]) -> WindowStats {
    let sum = |field: &str| buckets.iter().filter_map(|b| b.get(field)).sum::<u64>();
    let ok = sum("ok");
    let err = sum("err");
    let mut histogram = [0u64; LATENCY_BOUNDS_MS.len() + 1];
    for (i, slot) in histogram.iter_mut().enumerate() {
        *slot = sum(&format!("l{i}"));
    }
    let tokens = sum("tok");
    let generation_ms = sum("gen_ms");
    let total = ok + err;
    WindowStats {
        requests: total,
        failures: err,
        uptime_percent: (total > 0).then(|| ok as f64 * 100.0 / total as f64),
        latency_p50_ms: percentile(&histogram, 0.5),
        latency_p75_ms: percentile(&histogram, 0.75),
        latency_p90_ms: percentile(&histogram, 0.9),
        latency_p99_ms: percentile(&histogram, 0.99),
        throughput: (generation_ms > 0).then(|| tokens as f64 * 1000.0 / generation_ms as f64),
    }
}

fn percentile(histogram: &[u64], q: f64) -> Option<f64> {
    let n: u64 = histogram.iter().sum();
    if n == 0 {
        return None;
    }
    let rank = q * n as f64;
    let mut below = 0u64;
    for (i, &count) in histogram.iter().enumerate() {
        if count > 0 && (below + count) as f64 >= rank {
            let lower = if i == 0 { 0 } else { LATENCY_BOUNDS_MS[i - 1] } as f64;
            let Some(&upper) = LATENCY_BOUNDS_MS.get(i) else {
                return Some(lower);
            };
            let within = ((rank - below as f64) / count as f64).clamp(0.0, 1.0);
            return Some(lower + (upper as f64 - lower) * within);
        }
        below += count;
    }
    None
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(millis)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config() -> HealthConfig {
        HealthConfig {
            failure_window: Duration::from_secs(30),
            circuit_threshold: 3,
            cooldown: Duration::from_secs(10),
        }
    }

    #[test]
    fn circuit_opens_after_threshold_and_half_opens_after_cooldown() {
        let c = config();
        let mut h = EndpointHealth {
            consecutive_failures: 2,
            last_failure_ms: 1_000,
            ..Default::default()
        };
        assert_eq!(h.circuit(2_000, &c), Circuit::Closed);
        assert!(h.recently_failed(2_000, &c));
        assert!(!h.recently_failed(31_000, &c));
        assert_eq!(h.status(2_000, &c), "degraded");
        h.consecutive_failures = 3;
        h.open_until_ms = 11_000;
        assert_eq!(h.circuit(5_000, &c), Circuit::Open);
        assert_eq!(h.circuit(11_000, &c), Circuit::HalfOpen);
        assert_eq!(h.status(11_000, &c), "open");
        assert_eq!(EndpointHealth::default().status(0, &c), "ok");
    }

    #[test]
    fn window_stats_sum_minutes_and_interpolate_percentiles() {
        let minute = |pairs: &[(&str, u64)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<HashMap<_, _>>()
        };
        // 10 requests, 1 failure; 5 latencies in 0-100 ms, 4 in 250-500 ms.
        let stats = window_stats(&[
            minute(&[("ok", 5), ("l0", 5), ("tok", 100), ("gen_ms", 2_000)]),
            minute(&[
                ("ok", 4),
                ("err", 1),
                ("l2", 4),
                ("tok", 100),
                ("gen_ms", 2_000),
            ]),
        ]);
        assert_eq!((stats.requests, stats.failures), (10, 1));
        assert_eq!(stats.uptime_percent, Some(90.0));
        assert_eq!(stats.throughput, Some(50.0));
        // rank 4.5 of 9 falls in the first bucket: 4.5/5 of 100 ms.
        assert_eq!(stats.latency_p50_ms, Some(90.0));
        // rank 8.1: 3.1 of the 4 samples in 250..500.
        let p90 = stats.latency_p90_ms.unwrap();
        assert!((p90 - (250.0 + 250.0 * 3.1 / 4.0)).abs() < 1e-9, "{p90}");
        assert_eq!(window_stats(&[]), WindowStats::default());
        let slow = window_stats(&[minute(&[("ok", 1), ("l14", 1)])]);
        assert_eq!(slow.latency_p50_ms, Some(60_000.0));
    }

    #[test]
    fn latency_buckets_are_upper_bounds() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(100), 0);
        assert_eq!(latency_bucket(101), 1);
        assert_eq!(latency_bucket(60_001), 14);
    }

    #[test]
    fn state_parses_with_missing_fields() {
        let h = parse_state(&[
            Some("4".into()),
            Some("99".into()),
            None,
            Some("12.5".into()),
            None,
        ]);
        assert_eq!(h.consecutive_failures, 4);
        assert_eq!(h.last_failure_ms, 99);
        assert_eq!(h.latency_ms, Some(12.5));
        assert_eq!(h.throughput, None);
        assert_eq!(parse_state(&[]), EndpointHealth::default());
    }
}

//! Group commit for the request path: operations from every request in flight are queued, and
//! whatever is waiting when Redis is free goes in one script call. Under load a request's
//! reservation or settlement shares its round trip (and its script start-up) with many others;
//! idle, it goes alone at once, so the added latency is at most one round trip.

use std::collections::HashMap;
use std::sync::Arc;

use redis::{Script, Value};
use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

use super::{lua, HotKeys, KeyScope, RateLimit};
use crate::redis_conn::RedisConn;
use crate::StoreError;

/// One request-path operation on the hot state.
#[derive(Debug, Clone)]
pub enum Op {
    /// Hold `amount_pico` of the account (and the key's period) until `deadline_ms`.
    Reserve {
        account: Uuid,
        request: Uuid,
        scope: Option<KeyScope>,
        amount_pico: i64,
        deadline_ms: i64,
        /// Rate limits checked and taken in the same step (nothing is taken if any refuses).
        rate: Vec<RateLimit>,
    },
    /// Close the hold, charge `charge_pico` (already capped at the hold), queue `payload`.
    Settle {
        account: Uuid,
        request: Uuid,
        scope: Option<KeyScope>,
        charge_pico: i64,
        payload: String,
        /// Token rate limits to correct: `cost` is what the request used beyond (or, negative,
        /// below) its estimate.
        rate: Vec<RateLimit>,
    },
    /// Record what to charge if this instance dies now, and extend the hold.
    Progress {
        account: Uuid,
        request: Uuid,
        scope: Option<KeyScope>,
        deadline_ms: i64,
        charge_pico: i64,
        payload: String,
    },
    /// Extend a hold's lease.
    Extend {
        account: Uuid,
        request: Uuid,
        scope: Option<KeyScope>,
        deadline_ms: i64,
    },
    /// Queue a record that held nothing (a request refused before reserving).
    Record { account: Uuid, payload: String },
}

impl Op {
    fn account(&self) -> Uuid {
        match self {
            Op::Reserve { account, .. }
            | Op::Settle { account, .. }
            | Op::Progress { account, .. }
            | Op::Extend { account, .. }
            | Op::Record { account, .. } => *account,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// Reserved; `(remaining, reset ms)` of each rate limit checked, in order.
    Reserved {
        rate: Vec<(i64, i64)>,
    },
    /// A rate limit refused the request: retry after `retry_ms` (None: this request alone is
    /// more than the limit allows in a minute). Nothing was taken.
    RateLimited {
        retry_ms: Option<i64>,
        rate: Vec<(i64, i64)>,
    },
    /// The account has no hot copy: load it from Postgres and retry.
    AccountNotLoaded,
    /// The key's limit period has no hot copy: load it and retry.
    KeyNotLoaded,
    Insufficient {
        available_pico: i64,
    },
    KeyLimitReached {
        remaining_pico: i64,
    },
    /// The settlement journal is over its limit (Postgres has been away for long).
    Backlog {
        entries: i64,
    },
    Settled {
        charged_pico: i64,
        entry: String,
        /// Epochs of the account's and the key period's hashes the charge was taken from.
        epoch: String,
        key_epoch: String,
    },
    /// Settled before (a retried settle): what was charged then.
    AlreadySettled {
        charged_pico: i64,
    },
    Progressed,
    /// The hold is no longer open (settled, or swept after its lease ran out).
    HoldGone,
    Extended,
    Queued {
        entry: String,
    },
}

type Reply = oneshot::Sender<Result<OpResult, StoreError>>;

/// Handle on the batching task; cheap to clone.
#[derive(Clone)]
pub struct OpBatcher {
    tx: mpsc::Sender<(Op, Reply)>,
}

/// Most operations in one script call; a call this size takes Redis well under a millisecond.
const MAX_BATCH: usize = 512;

impl OpBatcher {
    /// Starts the batching task. `backlog_limit`: journal entries per shard past which new
    /// reservations are refused. `in_flight`: script calls outstanding at once (more spreads a
    /// burst over fewer round trips; one keeps batches largest).
    pub fn start(conn: RedisConn, keys: HotKeys, backlog_limit: i64, in_flight: usize) -> Self {
        let (tx, rx) = mpsc::channel(65_536);
        tokio::spawn(run(
            rx,
            conn,
            Arc::new(keys),
            backlog_limit,
            in_flight.max(1),
        ));
        OpBatcher { tx }
    }

    pub async fn submit(&self, op: Op) -> Result<OpResult, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((op, reply))
            .await
            .map_err(|_| StoreError::Config("the hot-state batcher has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Config("the hot-state batcher dropped an operation".into()))?
    }
}

static OPS: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| Script::new(&lua::ops()));

async fn run(
    mut rx: mpsc::Receiver<(Op, Reply)>,
    conn: RedisConn,
    keys: Arc<HotKeys>,
    backlog_limit: i64,
    in_flight: usize,
) {
    let permits = Arc::new(Semaphore::new(in_flight));
    let cluster = conn.is_cluster();
    while let Some(first) = rx.recv().await {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        // In a cluster each call must stay in one slot: one call per shard. A single server
        // takes the whole batch in one call.
        let groups: Vec<Vec<(Op, Reply)>> = if cluster {
            let mut by_shard: HashMap<u16, Vec<(Op, Reply)>> = HashMap::new();
            for item in batch {
                by_shard
                    .entry(keys.shard_of(item.0.account()))
                    .or_default()
                    .push(item);
            }
            by_shard.into_values().collect()
        } else {
            vec![batch]
        };
        let conn = conn.clone();
        let keys = keys.clone();
        tokio::spawn(async move {
            let calls = groups
                .into_iter()
                .map(|g| execute(conn.clone(), &keys, backlog_limit, g));
            futures_util::future::join_all(calls).await;
            drop(permit);
        });
    }
}

/// Builds one script call for a group of operations, runs it and answers each caller.
async fn execute(mut conn: RedisConn, keys: &HotKeys, backlog_limit: i64, group: Vec<(Op, Reply)>) {
    let mut key_index: rustc_hash::FxHashMap<String, usize> = Default::default();
    let mut key_list: Vec<String> = Vec::new();
    let mut idx = |k: String| -> String {
        let n = *key_index.entry(k.clone()).or_insert_with(|| {
            key_list.push(k);
            key_list.len()
        });
        n.to_string()
    };
    let mut args: Vec<String> = vec![backlog_limit.to_string()];
    for (op, _) in &group {
        match op {
            Op::Reserve {
                account,
                request,
                scope,
                amount_pico,
                deadline_ms,
                rate,
            } => {
                let shard = keys.shard_of(*account);
                args.push("R".into());
                args.push(idx(keys.journal(shard)));
                args.push(idx(keys.holds(shard)));
                args.push(idx(keys.account(*account)));
                args.push(
                    scope
                        .as_ref()
                        .map_or_else(|| "0".into(), |s| idx(keys.key_limit(*account, s))),
                );
                args.push(request.to_string());
                args.push(amount_pico.to_string());
                args.push(HotKeys::hold_member(*account, *request, scope.as_ref()));
                args.push(deadline_ms.to_string());
                args.push(rate.len().to_string());
                for l in rate {
                    args.push(idx(keys.rate(*account, l)));
                    args.push(l.per_minute.to_string());
                    args.push(l.cost.to_string());
                }
            }
            Op::Settle {
                account,
                request,
                scope,
                charge_pico,
                payload,
                rate,
            } => {
                let shard = keys.shard_of(*account);
                args.push("S".into());
                args.push(idx(keys.journal(shard)));
                args.push(idx(keys.holds(shard)));
                args.push(idx(keys.progress(shard)));
                args.push(idx(keys.account(*account)));
                args.push(
                    scope
                        .as_ref()
                        .map_or_else(|| "0".into(), |s| idx(keys.key_limit(*account, s))),
                );
                args.push(request.to_string());
                args.push(charge_pico.to_string());
                args.push(HotKeys::hold_member(*account, *request, scope.as_ref()));
                args.push(payload.clone());
                args.push(rate.len().to_string());
                for l in rate {
                    args.push(idx(keys.rate(*account, l)));
                    args.push(l.per_minute.to_string());
                    args.push(l.cost.to_string());
                }
            }
            Op::Progress {
                account,
                request,
                scope,
                deadline_ms,
                charge_pico,
                payload,
            } => {
                let shard = keys.shard_of(*account);
                args.push("P".into());
                args.push(idx(keys.holds(shard)));
                args.push(idx(keys.progress(shard)));
                args.push(idx(keys.account(*account)));
                args.push(request.to_string());
                args.push(HotKeys::hold_member(*account, *request, scope.as_ref()));
                args.push(deadline_ms.to_string());
                args.push(charge_pico.to_string());
                args.push(payload.clone());
            }
            Op::Extend {
                account,
                request,
                scope,
                deadline_ms,
            } => {
                let shard = keys.shard_of(*account);
                args.push("X".into());
                args.push(idx(keys.holds(shard)));
                args.push(HotKeys::hold_member(*account, *request, scope.as_ref()));
                args.push(deadline_ms.to_string());
            }
            Op::Record { account, payload } => {
                args.push("J".into());
                args.push(idx(keys.journal(keys.shard_of(*account))));
                args.push(payload.clone());
            }
        }
    }
    let mut invocation = OPS.prepare_invoke();
    for k in &key_list {
        invocation.key(k);
    }
    for a in &args {
        invocation.arg(a);
    }
    let reply: Result<Vec<Value>, redis::RedisError> = invocation.invoke_async(&mut conn).await;
    match reply {
        Ok(results) if results.len() == group.len() => {
            for ((_, tx), value) in group.into_iter().zip(results) {
                let _ = tx.send(parse(value));
            }
        }
        Ok(results) => {
            let msg = format!(
                "hot-state script answered {} results for {} operations",
                results.len(),
                group.len()
            );
            for (_, tx) in group {
                let _ = tx.send(Err(StoreError::Corrupt(msg.clone())));
            }
        }
        Err(e) => {
            let shared = Arc::new(e);
            for (_, tx) in group {
                let _ = tx.send(Err(StoreError::Shared(shared.clone())));
            }
        }
    }
}

fn parse(value: Value) -> Result<OpResult, StoreError> {
    let text: String = redis::from_redis_value(&value)?;
    let mut parts = text.split('|');
    let code = parts.next().unwrap_or_default();
    let mut rest = parts;
    let corrupt = || StoreError::Corrupt(format!("hot-state reply {text}"));
    let mut num = || -> Result<i64, StoreError> {
        rest.next().and_then(|s| s.parse().ok()).ok_or_else(corrupt)
    };
    let states = |from: usize| -> Result<Vec<(i64, i64)>, StoreError> {
        text.split('|')
            .skip(from)
            .map(|p| {
                p.split_once(',')
                    .and_then(|(r, s)| Some((r.parse().ok()?, s.parse().ok()?)))
                    .ok_or_else(corrupt)
            })
            .collect()
    };
    Ok(match code {
        "O" => OpResult::Reserved { rate: states(1)? },
        "T" => {
            let retry: i64 = num()?;
            OpResult::RateLimited {
                retry_ms: (retry >= 0).then_some(retry),
                rate: states(2)?,
            }
        }
        "L" => OpResult::AccountNotLoaded,
        "K" => OpResult::KeyNotLoaded,
        "I" => OpResult::Insufficient {
            available_pico: num()?,
        },
        "Q" => OpResult::KeyLimitReached {
            remaining_pico: num()?,
        },
        "B" => OpResult::Backlog { entries: num()? },
        "S" => {
            let charged_pico = num()?;
            let mut fields = text.splitn(5, '|').skip(2);
            let entry = fields.next().ok_or_else(corrupt)?.to_string();
            OpResult::Settled {
                charged_pico,
                entry,
                epoch: fields.next().unwrap_or_default().to_string(),
                key_epoch: fields.next().unwrap_or_default().to_string(),
            }
        }
        "D" => OpResult::AlreadySettled {
            charged_pico: num()?,
        },
        "P" => OpResult::Progressed,
        "G" => OpResult::HoldGone,
        "X" => OpResult::Extended,
        "J" => OpResult::Queued {
            entry: text.get(2..).ok_or_else(corrupt)?.to_string(),
        },
        _ => return Err(corrupt()),
    })
}

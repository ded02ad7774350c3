//! Closing a request exactly once: the hold is released, what it cost (never more than the
//! hold) taken, and the settlement queued in the journal, in one operation; the client gets its
//! answer only after that. The record stays in this instance's memory until the journal shows
//! it posted, so Redis losing its data loses no charge.

use std::collections::BTreeMap;
use std::sync::Mutex;

use infron_store::hot::journal::{JournalEntry, StreamId};
use infron_store::hot::{Op, OpResult, RateLimit, RateUnit};

use super::{Hold, HotLedger};
use crate::record::SettlementRecord;
use crate::writer;
use crate::{BillingError, Usd};

/// What a settlement charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// Taken from the tenant: the cost, capped at the hold.
    pub charged: Usd,
    /// The cost beyond the hold, absorbed by the platform.
    pub overage: Usd,
}

/// A settlement queued in the journal, kept until it is posted.
#[derive(Debug, Clone)]
pub(super) struct Kept {
    pub payload: String,
    pub charged_pico: i64,
    pub epoch: String,
    pub key_epoch: String,
}

/// Settlements this instance queued, per shard by journal entry id, until the journal's
/// consumer group shows them posted; plus those neither Redis nor Postgres could take.
pub struct Retained {
    shards: Vec<Mutex<BTreeMap<StreamId, Kept>>>,
    stranded: Mutex<Vec<(u16, Kept)>>,
}

impl Retained {
    pub(super) fn new(shards: u16) -> Self {
        Self {
            shards: (0..shards).map(|_| Mutex::new(BTreeMap::new())).collect(),
            stranded: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn keep(&self, shard: u16, entry: &str, kept: Kept) {
        let Some(id) = StreamId::parse(entry) else {
            return;
        };
        if let Some(Ok(mut m)) = self.shards.get(usize::from(shard)).map(Mutex::lock) {
            m.insert(id, kept);
        }
    }

    pub(super) fn strand(&self, shard: u16, kept: Kept) {
        if let Ok(mut v) = self.stranded.lock() {
            v.push((shard, kept));
        }
    }

    pub(super) fn take_stranded(&self) -> Vec<(u16, Kept)> {
        self.stranded
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }

    /// Drops what `posted` says is in Postgres; returns how many.
    pub(super) fn release(&self, shard: u16, posted: impl Fn(StreamId) -> bool) -> usize {
        let Some(Ok(mut m)) = self.shards.get(usize::from(shard)).map(Mutex::lock) else {
            return 0;
        };
        let before = m.len();
        // Ordered by id, and the posted ones form a prefix unless a writer is retrying.
        m.retain(|id, _| !posted(*id));
        before - m.len()
    }

    /// Takes everything kept for a shard (Redis lost it: it is queued again).
    pub(super) fn drain(&self, shard: u16) -> Vec<Kept> {
        self.shards
            .get(usize::from(shard))
            .and_then(|m| m.lock().ok())
            .map(|mut m| std::mem::take(&mut *m).into_values().collect())
            .unwrap_or_default()
    }

    pub(super) fn is_empty_shard(&self, shard: u16) -> bool {
        self.shards
            .get(usize::from(shard))
            .and_then(|m| m.lock().ok())
            .is_none_or(|m| m.is_empty())
    }

    pub fn len(&self) -> usize {
        let kept: usize = self
            .shards
            .iter()
            .filter_map(|m| m.lock().ok().map(|m| m.len()))
            .sum();
        kept + self.stranded.lock().map(|v| v.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Token rate limits took the request's estimate at reservation; settling moves them by what
/// it really used.
fn token_corrections(hold: Option<&Hold>, record: &SettlementRecord) -> Vec<RateLimit> {
    let used = record
        .prompt_tokens
        .saturating_add(record.completion_tokens);
    hold.map(|h| {
        h.rate
            .iter()
            .filter(|s| s.limit.unit == RateUnit::Tokens && s.limit.cost != used)
            .map(|s| RateLimit {
                cost: used.saturating_sub(s.limit.cost),
                ..s.limit
            })
            .collect()
    })
    .unwrap_or_default()
}

impl HotLedger {
    /// Settles a request: `record.list_cost` is what it cost; at most the hold is charged.
    pub async fn settle(
        &self,
        hold: Option<&Hold>,
        record: &SettlementRecord,
    ) -> Result<Settled, BillingError> {
        let result = self.settle_inner(hold, record).await;
        if let Some(h) = hold {
            self.inflight.remove(h.request);
        }
        result
    }

    async fn settle_inner(
        &self,
        hold: Option<&Hold>,
        record: &SettlementRecord,
    ) -> Result<Settled, BillingError> {
        let cost = record.list_cost;
        let charge = match hold {
            Some(h) => cost.min(h.amount),
            None => cost,
        };
        if charge < cost {
            tracing::warn!(request_id = %record.id, cost = %cost, hold = %charge,
                "provider reported more usage than the hold covered; the rest is booked to provider_overage");
        }
        let payload = record.encode()?;
        let account = record.account_id;
        let shard = self.keys().shard_of(account);
        let charge_pico = charge.to_pico()?;
        for _ in 0..3 {
            let op = if hold.is_some() || charge_pico > 0 {
                Op::Settle {
                    account,
                    request: record.id,
                    scope: hold.and_then(|h| h.key.clone()),
                    charge_pico,
                    payload: payload.clone(),
                    rate: token_corrections(hold, record),
                }
            } else {
                Op::Record {
                    account,
                    payload: payload.clone(),
                }
            };
            let result = match self.batcher.submit(op).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(request_id = %record.id, error = %e,
                        "settlement journal unavailable; posting straight to Postgres");
                    return self.post_direct(shard, record, payload, charge_pico).await;
                }
            };
            match result {
                OpResult::Settled {
                    charged_pico,
                    entry,
                    epoch,
                    key_epoch,
                } => {
                    self.retained.keep(
                        shard,
                        &entry,
                        Kept {
                            payload,
                            charged_pico,
                            epoch,
                            key_epoch,
                        },
                    );
                    return settled(cost, Usd::from_pico(charged_pico));
                }
                OpResult::Queued { entry } => {
                    self.retained.keep(
                        shard,
                        &entry,
                        Kept {
                            payload,
                            charged_pico: 0,
                            epoch: String::new(),
                            key_epoch: String::new(),
                        },
                    );
                    return settled(cost, Usd::ZERO);
                }
                OpResult::AlreadySettled { charged_pico } => {
                    return settled(cost, Usd::from_pico(charged_pico))
                }
                OpResult::AccountNotLoaded => self.load_account(account).await?,
                OpResult::KeyNotLoaded => self.load_key_of(record).await?,
                other => {
                    return Err(BillingError::Store(infron_store::StoreError::Corrupt(
                        format!("settle answered {other:?}"),
                    )))
                }
            }
        }
        Err(BillingError::UnknownAccount(account))
    }

    /// Posts one settlement to Postgres now (Redis cannot take it). If Postgres cannot either,
    /// it is kept in memory and retried: the one case where a second failure could lose it.
    async fn post_direct(
        &self,
        shard: u16,
        record: &SettlementRecord,
        payload: String,
        charge_pico: i64,
    ) -> Result<Settled, BillingError> {
        let entry = JournalEntry {
            shard,
            id: String::new(),
            payload: payload.clone(),
            charged_pico: charge_pico,
            epoch: String::new(),
            key_epoch: String::new(),
        };
        match writer::post(&self.pg, &[entry]).await {
            Ok(outcome) => {
                let charged = outcome
                    .charged_of(record.id)
                    .unwrap_or(Usd::from_pico(charge_pico));
                if let Err(e) = self.state.reconcile(&outcome.reconcile).await {
                    tracing::debug!(error = %e, "hot copy not reconciled after a direct posting; it heals later");
                }
                settled(record.list_cost, charged)
            }
            Err(e) => {
                tracing::error!(request_id = %record.id, error = %e,
                    "neither Redis nor Postgres can take a settlement; kept in memory and retried");
                self.retained.strand(
                    shard,
                    Kept {
                        payload,
                        charged_pico: charge_pico,
                        epoch: String::new(),
                        key_epoch: String::new(),
                    },
                );
                settled(record.list_cost, Usd::from_pico(charge_pico))
            }
        }
    }

    /// Records what a stream has delivered so far, as the settlement to post if this instance
    /// dies before the stream ends, and renews the hold's lease.
    pub async fn progress(
        &self,
        hold: &Hold,
        record: &SettlementRecord,
    ) -> Result<(), BillingError> {
        let charge = record.list_cost.min(hold.amount);
        let op = Op::Progress {
            account: hold.account,
            request: hold.request,
            scope: hold.key.clone(),
            deadline_ms: self.deadline_ms(),
            charge_pico: charge.to_pico()?,
            payload: record.encode()?,
        };
        match self.batcher.submit(op).await? {
            OpResult::Progressed => Ok(()),
            OpResult::HoldGone => {
                tracing::warn!(request_id = %hold.request, "stream progress after its hold was released");
                Ok(())
            }
            other => Err(BillingError::Store(infron_store::StoreError::Corrupt(
                format!("progress answered {other:?}"),
            ))),
        }
    }

    async fn load_key_of(&self, record: &SettlementRecord) -> Result<(), BillingError> {
        let (Some(key_id), Some(period)) = (record.api_key_id, record.key_period) else {
            return Ok(());
        };
        let Some(row) = infron_store::keys::get(&self.pg, key_id).await? else {
            return Ok(());
        };
        let Some(limit) = row.credit_limit else {
            return Ok(());
        };
        let limit = crate::limits::KeyLimit {
            key_id,
            limit: Usd::new(limit)?,
            reset: row
                .limit_reset
                .as_deref()
                .and_then(crate::limits::LimitReset::parse),
        };
        let scope = infron_store::hot::KeyScope {
            key_id,
            period_start: period,
        };
        self.load_key(record.account_id, &limit, &scope, chrono::Utc::now())
            .await
    }
}

fn settled(cost: Usd, charged: Usd) -> Result<Settled, BillingError> {
    Ok(Settled {
        charged,
        overage: cost.checked_sub(charged)?.max(Usd::ZERO),
    })
}

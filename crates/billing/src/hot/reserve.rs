//! Reserving a request's maximum cost against the account's hot balance (and the key's limit
//! for its current period) before a provider is called: no number of concurrent requests, on
//! any number of instances, can spend more than the account holds or the key may spend.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use infron_store::hot::{KeyScope, Op, OpResult, RateLimit, RateState};
use uuid::Uuid;

use super::{Hold, HotLedger};
use crate::limits::{period_end, KeyLimit};
use crate::{BillingError, Usd};

/// The holds of this instance's running requests, whose leases it renews.
#[derive(Default)]
pub struct InFlight {
    holds: Mutex<HashMap<Uuid, (Hold, Option<KeyLimit>)>>,
}

impl InFlight {
    pub(super) fn add(&self, hold: &Hold, limit: Option<&KeyLimit>) {
        if let Ok(mut m) = self.holds.lock() {
            m.insert(hold.request, (hold.clone(), limit.cloned()));
        }
    }

    pub(super) fn remove(&self, request: Uuid) {
        if let Ok(mut m) = self.holds.lock() {
            m.remove(&request);
        }
    }

    pub(super) fn all(&self) -> Vec<(Hold, Option<KeyLimit>)> {
        self.holds
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.holds.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Pairs each limit with what the script reported for it.
fn rate_states(limits: &[RateLimit], states: &[(i64, i64)]) -> Vec<RateState> {
    limits
        .iter()
        .zip(states)
        .map(|(limit, &(remaining, reset_ms))| RateState {
            limit: *limit,
            remaining: remaining.max(0),
            reset_ms: reset_ms.max(0),
        })
        .collect()
}

impl HotLedger {
    /// Reserves `amount` for `request`. Hot copies are loaded from Postgres on first use (one
    /// round trip per account, and per key and period, per Redis lifetime); every other
    /// reservation is one operation in a shared script call. Refused with 503 (`Busy`) while
    /// the journal or this instance's unposted settlements are over their limits. `rate` are
    /// the per-minute limits checked and taken in the same atomic step: a request refused by
    /// any of them, or by the balance, takes nothing from any.
    pub async fn reserve(
        &self,
        account: Uuid,
        request: Uuid,
        key: Option<&KeyLimit>,
        amount: Usd,
        rate: &[RateLimit],
    ) -> Result<Hold, BillingError> {
        if self.retained.len() >= self.cfg.retain_limit {
            return Err(BillingError::Busy(format!(
                "{} settlements are waiting for Postgres",
                self.retained.len()
            )));
        }
        let pico = amount.to_pico()?;
        let now = Utc::now();
        let scope = key.map(|k| k.scope(now));
        for _ in 0..3 {
            let op = Op::Reserve {
                account,
                request,
                scope: scope.clone(),
                amount_pico: pico,
                deadline_ms: self.deadline_ms(),
                rate: rate.to_vec(),
            };
            match self.batcher.submit(op).await? {
                OpResult::Reserved { rate: states } => {
                    let hold = Hold {
                        account,
                        request,
                        amount,
                        key: scope,
                        rate: rate_states(rate, &states),
                    };
                    self.inflight.add(&hold, key);
                    return Ok(hold);
                }
                OpResult::Insufficient { available_pico } => {
                    return Err(BillingError::InsufficientCredits {
                        needed: amount,
                        available: Usd::from_pico(available_pico.max(0)),
                    })
                }
                OpResult::KeyLimitReached { remaining_pico } => {
                    return Err(BillingError::KeyLimitReached {
                        needed: amount,
                        remaining: Usd::from_pico(remaining_pico.max(0)),
                    })
                }
                OpResult::RateLimited {
                    retry_ms,
                    rate: states,
                } => {
                    return Err(BillingError::RateLimited {
                        retry_after_ms: retry_ms,
                        states: rate_states(rate, &states),
                    })
                }
                OpResult::Backlog { entries } => {
                    return Err(BillingError::Busy(format!(
                        "{entries} settlements are waiting for Postgres"
                    )))
                }
                OpResult::AccountNotLoaded => self.load_account(account).await?,
                OpResult::KeyNotLoaded => {
                    if let (Some(k), Some(s)) = (key, scope.as_ref()) {
                        self.load_key(account, k, s, now).await?;
                    }
                }
                other => {
                    return Err(BillingError::Store(infron_store::StoreError::Corrupt(
                        format!("reserve answered {other:?}"),
                    )))
                }
            }
        }
        Err(BillingError::UnknownAccount(account))
    }

    /// Builds an account's hot copy from its Postgres balance if it has none.
    pub async fn load_account(&self, account: Uuid) -> Result<(), BillingError> {
        let (balance, version) = infron_store::ledger::tenant_balance(&self.pg, account)
            .await?
            .ok_or(BillingError::UnknownAccount(account))?;
        let avail = Usd::new(balance)?.to_pico()?;
        self.state.load_account(account, avail, version).await?;
        Ok(())
    }

    pub(super) async fn load_key(
        &self,
        account: Uuid,
        key: &KeyLimit,
        scope: &KeyScope,
        now: DateTime<Utc>,
    ) -> Result<(), BillingError> {
        let start = DateTime::from_timestamp(scope.period_start, 0).unwrap_or(DateTime::UNIX_EPOCH);
        let (used, version) = infron_store::keys::period_usage(&self.pg, key.key_id, start).await?;
        let remaining = key.limit.checked_sub(Usd::new(used)?)?;
        // Period copies expire two days after their period ends; unlimited periods never do.
        let ttl = period_end(key.reset, now)
            .map_or(0, |end| (end - now).num_milliseconds() + 2 * 86_400_000);
        self.state
            .load_key(account, scope, remaining.to_pico()?, version, ttl)
            .await?;
        Ok(())
    }

    /// Available balance as the hot copy sees it (loading it if needed).
    pub async fn available(&self, account: Uuid) -> Result<Usd, BillingError> {
        if self.state.snapshot(account).await?.is_none() {
            self.load_account(account).await?;
        }
        let snap = self.state.snapshot(account).await?;
        Ok(Usd::from_pico(
            snap.map(|s| s.avail_pico).unwrap_or_default(),
        ))
    }
}

//! Reserving a request's maximum cost against the hot available balance (and the key's limit
//! for its current period) before a provider is called, so no number of concurrent requests
//! can spend more than the account holds or the key may spend.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use infron_store::hot::{HotBalance, KeyScope, ReserveOutcome};
use infron_store::PgPool;
use uuid::Uuid;

use crate::limits::{period_end, KeyLimit};
use crate::{BillingError, Usd};

/// Money set aside for one request until it settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub account: Uuid,
    pub request: Uuid,
    pub amount: Usd,
    /// The key's limit period the hold also counts against.
    pub key: Option<KeyScope>,
}

#[derive(Clone)]
pub struct Reservations {
    pg: PgPool,
    hot: Arc<HotBalance>,
}

impl Reservations {
    pub fn new(pg: PgPool, hot: Arc<HotBalance>) -> Self {
        Self { pg, hot }
    }

    /// Reserves `amount` until `deadline`, after which the sweeper gives it back if the request
    /// never settled. Hot copies are loaded from Postgres on first use (one round trip per
    /// account, and per key and period, per Redis lifetime); every other reservation is a single
    /// Redis script call.
    pub async fn reserve(
        &self,
        account: Uuid,
        request: Uuid,
        key: Option<&KeyLimit>,
        amount: Usd,
        deadline: DateTime<Utc>,
    ) -> Result<Hold, BillingError> {
        let pico = amount.to_pico()?;
        let now = Utc::now();
        let scope = key.map(|k| k.scope(now));
        for _ in 0..3 {
            match self
                .hot
                .reserve(
                    account,
                    request,
                    scope.as_ref(),
                    pico,
                    deadline.timestamp_millis(),
                )
                .await?
            {
                ReserveOutcome::Reserved => {
                    return Ok(Hold {
                        account,
                        request,
                        amount,
                        key: scope,
                    })
                }
                ReserveOutcome::Insufficient { available_pico } => {
                    return Err(BillingError::InsufficientCredits {
                        needed: amount,
                        available: Usd::from_pico(available_pico.max(0)),
                    })
                }
                ReserveOutcome::KeyLimitReached { remaining_pico } => {
                    return Err(BillingError::KeyLimitReached {
                        needed: amount,
                        remaining: Usd::from_pico(remaining_pico.max(0)),
                    })
                }
                ReserveOutcome::NotLoaded => self.load(account).await?,
                ReserveOutcome::KeyNotLoaded => {
                    if let (Some(k), Some(s)) = (key, scope.as_ref()) {
                        self.load_key(k, s, now).await?;
                    }
                }
            }
        }
        Err(BillingError::UnknownAccount(account))
    }

    /// Builds the hot copy from the Postgres balance if it does not exist.
    pub async fn load(&self, account: Uuid) -> Result<(), BillingError> {
        let (balance, version) = infron_store::ledger::tenant_balance(&self.pg, account)
            .await?
            .ok_or(BillingError::UnknownAccount(account))?;
        let avail = Usd::new(balance)?.to_pico()?;
        self.hot.load(account, avail, version).await?;
        Ok(())
    }

    async fn load_key(
        &self,
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
        self.hot
            .load_key(scope, remaining.to_pico()?, version, ttl)
            .await?;
        Ok(())
    }

    /// Available balance as the hot copy sees it (loading it if needed).
    pub async fn available(&self, account: Uuid) -> Result<Usd, BillingError> {
        if self.hot.snapshot(account).await?.is_none() {
            self.load(account).await?;
        }
        let snap = self.hot.snapshot(account).await?;
        Ok(Usd::from_pico(
            snap.map(|s| s.avail_pico).unwrap_or_default(),
        ))
    }
}

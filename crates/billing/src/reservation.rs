//! Reserving a request's maximum cost against the hot available balance before a provider is
//! called, so no number of concurrent requests can spend more than the account holds.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use infron_store::hot::{HotBalance, ReserveOutcome};
use infron_store::PgPool;
use uuid::Uuid;

use crate::{BillingError, Usd};

/// Money set aside for one request until it settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub account: Uuid,
    pub request: Uuid,
    pub amount: Usd,
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
    /// never settled. The hot copy is loaded from Postgres on first use (one round trip per
    /// account per Redis lifetime); every other reservation is a single Redis script call.
    pub async fn reserve(
        &self,
        account: Uuid,
        request: Uuid,
        amount: Usd,
        deadline: DateTime<Utc>,
    ) -> Result<Hold, BillingError> {
        let pico = amount.to_pico()?;
        for _ in 0..2 {
            match self
                .hot
                .reserve(account, request, pico, deadline.timestamp_millis())
                .await?
            {
                ReserveOutcome::Reserved => {
                    return Ok(Hold {
                        account,
                        request,
                        amount,
                    })
                }
                ReserveOutcome::Insufficient { available_pico } => {
                    return Err(BillingError::InsufficientCredits {
                        needed: amount,
                        available: Usd::from_pico(available_pico.max(0)),
                    })
                }
                ReserveOutcome::NotLoaded => self.load(account).await?,
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

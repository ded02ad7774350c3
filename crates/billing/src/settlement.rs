//! Closing a request exactly once: the hold is released, the actual cost taken, and a
//! settlement record queued for the ledger writer, in one Redis script call. If Redis cannot
//! take it, the record is posted straight to Postgres so no charge is ever lost.

use std::sync::Arc;

use infron_store::hot::HotBalance;
use infron_store::request_logs::RequestLogRow;
use infron_store::PgPool;

use crate::reservation::Hold;
use crate::writer::write_records;
use crate::{BillingError, Usd};

#[derive(Clone)]
pub struct Settler {
    pg: PgPool,
    hot: Arc<HotBalance>,
}

impl Settler {
    pub fn new(pg: PgPool, hot: Arc<HotBalance>) -> Self {
        Self { pg, hot }
    }

    /// Settles a request. `log.cost` is what is charged; the hold (if any) is released.
    pub async fn settle(
        &self,
        hold: Option<&Hold>,
        log: RequestLogRow,
    ) -> Result<(), BillingError> {
        let cost = Usd::new(log.cost)?;
        let cost_pico = cost.to_pico()?;
        let payload = serde_json::to_string(&log)?;
        let queued = if hold.is_some() || cost_pico > 0 {
            self.hot
                .settle(
                    log.account_id,
                    log.id,
                    hold.and_then(|h| h.key.as_ref()),
                    cost_pico,
                    &payload,
                )
                .await
        } else {
            self.hot.enqueue_record(&payload).await
        };
        match queued {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(request_id = %log.id, error = %e,
                    "settlement queue unavailable; posting directly to Postgres");
                write_records(&self.pg, &self.hot, vec![log]).await?;
                Ok(())
            }
        }
    }
}

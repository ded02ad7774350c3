//! Compares the hot state in Redis with Postgres, for `infron ledger verify`: settlements
//! accepted but not posted, settlements a writer took and left, holds whose instance died and
//! nobody released, and hot balances that differ from the ledger. Each is something a single
//! failure could leave behind; each makes verify fail until it is resolved.

use std::time::Duration;

use infron_store::hot::journal::Journal;
use infron_store::hot::HotState;
use infron_store::PgPool;
use serde::Serialize;

use crate::{BillingError, Usd};

#[derive(Debug, Clone, Default, Serialize)]
pub struct HotCheck {
    /// Settlements waiting in the journal.
    pub journal_backlog: i64,
    /// Age of the oldest of them (seconds).
    pub journal_lag_secs: i64,
    /// Settlements waiting longer than the allowed lag.
    pub settlements_not_posted_in_time: i64,
    /// Settlements a writer took and has not acknowledged for longer than the allowed lag.
    pub settlements_stuck_with_a_writer: i64,
    /// Holds whose lease ran out longer ago than a sweep takes (an instance died and nobody
    /// released them).
    pub holds_of_dead_instances: i64,
    /// Accounts whose hot balance (available + held + unposted) differs from Postgres, checked
    /// only when the journal is empty; `None` when it was not.
    pub hot_balances_differing: Option<i64>,
}

impl HotCheck {
    pub fn violations(&self) -> i64 {
        self.settlements_not_posted_in_time
            + self.settlements_stuck_with_a_writer
            + self.holds_of_dead_instances
            + self.hot_balances_differing.unwrap_or(0)
    }
}

/// Runs the hot-state checks. `max_lag`: how long a settlement may wait before it counts.
pub async fn check(
    pg: &PgPool,
    state: &HotState,
    journal: &Journal,
    max_lag: Duration,
) -> Result<HotCheck, BillingError> {
    let mut out = HotCheck::default();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let max_lag_ms = i64::try_from(max_lag.as_millis()).unwrap_or(i64::MAX);
    let keys = state.keys();
    for shard in 0..keys.shards() {
        let (len, oldest) = journal.depth(shard).await?;
        out.journal_backlog += len;
        if let Some(id) = oldest {
            let age = now_ms - i64::try_from(id.millis()).unwrap_or(0);
            out.journal_lag_secs = out.journal_lag_secs.max(age / 1000);
            if age > max_lag_ms {
                out.settlements_not_posted_in_time += len;
            }
        }
        // A sweep runs every 2 s on every instance: 10 s past the lease is well past it.
        out.holds_of_dead_instances += state.overdue_holds(shard, now_ms - 10_000).await?;
    }
    out.settlements_stuck_with_a_writer = journal.stale_pending(max_lag).await?;
    if out.journal_backlog == 0 {
        let mut differing = 0;
        for shard in 0..keys.shards() {
            for account in state.accounts_in_shard(shard).await? {
                let Some(snap) = state.snapshot(account).await? else {
                    continue;
                };
                let Some((balance, _)) = infron_store::ledger::tenant_balance(pg, account).await?
                else {
                    continue;
                };
                let hot = snap.avail_pico + snap.held_pico + snap.unposted_pico;
                let pg_pico = Usd::new(balance)?.to_pico()?;
                if hot != pg_pico {
                    tracing::warn!(%account, hot_pico = hot, postgres_pico = pg_pico,
                        "hot balance differs from the ledger");
                    differing += 1;
                }
            }
        }
        out.hot_balances_differing = Some(differing);
    }
    Ok(out)
}

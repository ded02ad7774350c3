//! What keeps the money path safe between requests: renewing the leases of running requests,
//! sweeping the holds of dead instances, releasing settlements once they are posted, and
//! noticing that Redis lost its data (then queueing again what it lost, and holding again what
//! running requests had reserved).

use std::sync::Arc;
use std::time::Duration;

use infron_store::hot::{Op, OpResult};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::settle::Kept;
use super::HotLedger;

const RETAIN_CHECK: Duration = Duration::from_millis(500);
const SWEEP_EVERY: Duration = Duration::from_secs(2);

impl HotLedger {
    /// Runs the upkeep loops until `stop`.
    pub async fn run_upkeep(self: Arc<Self>, stop: CancellationToken) {
        tokio::join!(
            self.clone().renew_leases(stop.clone()),
            self.clone().watch_journal(stop.clone()),
            self.sweep_expired(stop),
        );
    }

    async fn renew_leases(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.cfg.renew_every) => {}
            }
            self.renew_once().await;
        }
    }

    /// Extends the lease of every hold this instance has open.
    pub async fn renew_once(&self) {
        let deadline_ms = self.deadline_ms();
        let ops = self.inflight.all().into_iter().map(|(h, _)| {
            self.batcher.submit(Op::Extend {
                account: h.account,
                request: h.request,
                scope: h.key,
                deadline_ms,
            })
        });
        let failed = futures_util::future::join_all(ops)
            .await
            .into_iter()
            .filter(Result::is_err)
            .count();
        if failed > 0 {
            tracing::warn!(failed, "could not renew the leases of running requests");
        }
    }

    async fn sweep_expired(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(SWEEP_EVERY) => {}
            }
            self.sweep_once().await;
        }
    }

    /// Releases the holds whose lease ran out (charging a stream's recorded progress).
    pub async fn sweep_once(&self) {
        let now = chrono::Utc::now().timestamp_millis();
        for shard in 0..self.keys().shards() {
            match self.state.sweep(shard, now, 1000).await {
                Ok((0, 0)) => {}
                Ok((released, charged)) => tracing::warn!(
                    shard,
                    released,
                    charged,
                    "holds whose instance stopped renewing them: released, or charged their stream progress"
                ),
                Err(e) => tracing::warn!(shard, error = %e, "hold sweep failed"),
            }
        }
    }

    async fn watch_journal(self: Arc<Self>, stop: CancellationToken) {
        let shards = self.keys().shards();
        let mut known: Vec<Option<String>> = vec![None; usize::from(shards)];
        let mut last_backlog_log = std::time::Instant::now();
        loop {
            for shard in 0..shards {
                let fresh = Uuid::new_v4().simple().to_string();
                match self.state.boot_marker(shard, &fresh).await {
                    Ok(current) => {
                        let slot = &mut known[usize::from(shard)];
                        if slot.as_ref().is_some_and(|k| *k != current) {
                            tracing::error!(shard, "Redis lost its data; queueing this instance's unposted settlements again and holding its running requests again");
                            self.requeue(shard).await;
                            self.rehold(shard).await;
                        }
                        *slot = Some(current);
                    }
                    Err(e) => {
                        tracing::debug!(shard, error = %e, "cannot read the boot marker");
                        continue;
                    }
                }
                if !self.retained.is_empty_shard(shard) {
                    match self.journal.watermark(shard).await {
                        Ok(mark) => {
                            self.retained.release(shard, |id| mark.covers(id));
                        }
                        Err(e) => {
                            tracing::debug!(shard, error = %e, "cannot read the journal watermark")
                        }
                    }
                }
            }
            self.retry_stranded().await;
            let unposted = self.retained.len();
            if unposted > 10_000 && last_backlog_log.elapsed() > Duration::from_secs(10) {
                last_backlog_log = std::time::Instant::now();
                tracing::warn!(unposted, "settlements of this instance not yet in Postgres");
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(RETAIN_CHECK) => {}
            }
        }
    }

    /// Queues again everything this instance settled in `shard` that Postgres may not have.
    async fn requeue(&self, shard: u16) {
        if let Err(e) = self.journal.ensure_groups().await {
            tracing::warn!(error = %e, "cannot recreate the journal groups");
        }
        for kept in self.retained.drain(shard) {
            self.append_kept(shard, kept).await;
        }
    }

    async fn append_kept(&self, shard: u16, kept: Kept) {
        match self
            .journal
            .append(
                shard,
                &kept.payload,
                kept.charged_pico,
                &kept.epoch,
                &kept.key_epoch,
            )
            .await
        {
            Ok(id) => self.retained.keep(shard, &id, kept),
            Err(_) => self.retained.strand(shard, kept),
        }
    }

    /// Settlements neither Redis nor Postgres took: into the journal, or else Postgres.
    async fn retry_stranded(&self) {
        for (shard, kept) in self.retained.take_stranded() {
            match self
                .journal
                .append(shard, &kept.payload, kept.charged_pico, "", "")
                .await
            {
                Ok(id) => self.retained.keep(shard, &id, kept),
                Err(_) => {
                    let entry = infron_store::hot::journal::JournalEntry {
                        shard,
                        id: String::new(),
                        payload: kept.payload.clone(),
                        charged_pico: kept.charged_pico,
                        epoch: String::new(),
                        key_epoch: String::new(),
                    };
                    if crate::writer::post(&self.pg, &[entry]).await.is_err() {
                        self.retained.strand(shard, kept);
                    }
                }
            }
        }
    }

    /// Reserves again, on the rebuilt hot copies, what this instance's running requests of
    /// `shard` hold, so new requests cannot take money they will spend.
    async fn rehold(&self, shard: u16) {
        for (hold, limit) in self.inflight.all() {
            if self.keys().shard_of(hold.account) != shard {
                continue;
            }
            let Ok(pico) = hold.amount.to_pico() else {
                continue;
            };
            for _ in 0..3 {
                let op = Op::Reserve {
                    account: hold.account,
                    request: hold.request,
                    scope: hold.key.clone(),
                    amount_pico: pico,
                    deadline_ms: self.deadline_ms(),
                    // Re-taking a hold after Redis lost its data: the request was admitted.
                    rate: Vec::new(),
                };
                match self.batcher.submit(op).await {
                    Ok(OpResult::AccountNotLoaded) => {
                        if self.load_account(hold.account).await.is_err() {
                            break;
                        }
                    }
                    Ok(OpResult::KeyNotLoaded) => {
                        let (Some(l), Some(s)) = (limit.as_ref(), hold.key.as_ref()) else {
                            break;
                        };
                        if self
                            .load_key(hold.account, l, s, chrono::Utc::now())
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                    Ok(OpResult::Reserved { .. }) => break,
                    Ok(other) => {
                        tracing::warn!(request_id = %hold.request, outcome = ?other,
                            "a running request's hold could not be taken again after Redis lost its data");
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
    }

    /// Waits (up to `patience`) until every settlement of this instance is in Postgres.
    pub async fn flush(&self, patience: Duration) -> bool {
        let until = tokio::time::Instant::now() + patience;
        loop {
            for shard in 0..self.keys().shards() {
                if let Ok(mark) = self.journal.watermark(shard).await {
                    self.retained.release(shard, |id| mark.covers(id));
                }
            }
            self.retry_stranded().await;
            if self.retained.is_empty() {
                return true;
            }
            if tokio::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

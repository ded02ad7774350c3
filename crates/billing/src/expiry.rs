//! Credit expiry: lots past their expiry date give up what they still hold, through an
//! `expiry` ledger transaction (debit the tenant's credits, credit `expired_credits`). The
//! amount is first taken from the hot balance, never below zero, so credits that in-flight
//! requests have reserved are left to those requests; what remains expires on a later run.

use std::time::Duration;

use chrono::{DateTime, Utc};
use infron_store::hot::{HotState, Reconcile, SettledMark};
use infron_store::ledger::{self, platform, NewTransaction};
use infron_store::lots::LotRow;
use infron_store::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{BillingError, Usd};

/// Advisory lock id held while an expiry run works ("infron expiry").
const EXPIRY_LOCK: i64 = 0x696e_6672_6f6e_0001;

/// Expires what is due at `now`; returns the total expired. One run at a time across all
/// instances (a Postgres advisory lock): a second concurrent run returns zero at once, so a
/// lot is never read stale and taken twice.
pub async fn expire_due(
    pg: &PgPool,
    hot: &HotState,
    now: DateTime<Utc>,
) -> Result<Usd, BillingError> {
    let mut guard = pg.begin().await.map_err(infron_store::StoreError::from)?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(EXPIRY_LOCK)
        .fetch_one(&mut *guard)
        .await
        .map_err(infron_store::StoreError::from)?;
    if !locked {
        return Ok(Usd::ZERO);
    }
    let result = expire_all(pg, hot, now).await;
    guard
        .commit()
        .await
        .map_err(infron_store::StoreError::from)?;
    result
}

async fn expire_all(pg: &PgPool, hot: &HotState, now: DateTime<Utc>) -> Result<Usd, BillingError> {
    let mut total = Usd::ZERO;
    loop {
        let lots = infron_store::lots::expired_with_remaining(pg, now, 200).await?;
        if lots.is_empty() {
            return Ok(total);
        }
        let mut progressed = false;
        for lot in lots {
            let taken = expire_lot(pg, hot, &lot, now).await?;
            if !taken.is_zero() {
                progressed = true;
                total = total.checked_add(taken)?;
            }
        }
        if !progressed {
            // Everything left is reserved by in-flight requests; try again on the next run.
            return Ok(total);
        }
    }
}

async fn expire_lot(
    pg: &PgPool,
    hot: &HotState,
    lot: &LotRow,
    now: DateTime<Utc>,
) -> Result<Usd, BillingError> {
    let remaining = Usd::new(lot.remaining)?;
    let marker = format!("exp-{}-{}", lot.id, remaining.to_pico()?);
    let took = hot
        .take_for_expiry(lot.account_id, &marker, remaining.to_pico()?)
        .await?;
    let taken = match &took {
        Some((pico, _)) => Usd::from_pico(*pico),
        None => {
            // No hot copy, so nothing is reserved: bounded only by the balance itself.
            let (balance, _) = ledger::tenant_balance(pg, lot.account_id)
                .await?
                .ok_or(BillingError::UnknownAccount(lot.account_id))?;
            remaining.min(Usd::new(balance.max(rust_decimal::Decimal::ZERO))?)
        }
    };
    if taken.is_zero() {
        return Ok(Usd::ZERO);
    }
    let book = ledger::credits_book(pg, lot.account_id)
        .await?
        .ok_or(BillingError::UnknownAccount(lot.account_id))?;
    let posted = ledger::post_one(
        pg,
        NewTransaction {
            id: Uuid::now_v7(),
            external_id: format!("expiry:{}:{}", lot.id, remaining),
            kind: "expiry",
            account_id: Some(lot.account_id),
            description: format!(
                "credits from {} of {} expired",
                lot.source_kind,
                lot.created_at.date_naive()
            ),
            metadata: serde_json::json!({ "lot_id": lot.id, "expires_at": lot.expires_at }),
            effective_at: now,
            entries: vec![
                (book, taken.decimal()),
                (platform::EXPIRED_CREDITS, -taken.decimal()),
            ],
        },
    )
    .await?;
    let book_after = posted
        .balances
        .iter()
        .find(|b| b.account_id == Some(lot.account_id));
    let fresh = !posted.posted.is_empty();
    let taken_pico = taken.to_pico()?;
    let item = Reconcile {
        key: hot.keys().account(lot.account_id),
        version: book_after.map_or(0, |b| b.version),
        balance_pico: book_after
            .map(|b| Usd::new(b.balance).and_then(Usd::to_pico))
            .transpose()?,
        // Without a hot copy nothing was taken from one: the posting applies by version.
        delta_pico: if took.is_none() && fresh {
            -taken_pico
        } else {
            0
        },
        settled: match &took {
            Some((_, epoch)) => vec![SettledMark {
                request: marker.clone(),
                epoch: epoch.clone(),
                charged_pico: taken_pico,
                refund_pico: 0,
                posted_pico: fresh.then_some(taken_pico),
            }],
            None => Vec::new(),
        },
    };
    hot.reconcile(&[item]).await?;
    Ok(if posted.posted.is_empty() {
        Usd::ZERO
    } else {
        taken
    })
}

/// Runs `expire_due` every `every` until stopped.
pub async fn run(pg: PgPool, hot: HotState, every: Duration, stop: CancellationToken) {
    loop {
        match expire_due(&pg, &hot, Utc::now()).await {
            Ok(t) if !t.is_zero() => tracing::info!(expired = %t, "credits expired"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "credit expiry run failed"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

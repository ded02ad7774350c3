//! Credit lots: one per grant or top-up, consumed oldest first, expiring. Maintained by the
//! `infron_project_entry` trigger; this module reads them and stores the expiry setting.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::StoreError;

#[derive(Debug, Clone, FromRow)]
pub struct LotRow {
    pub id: Uuid,
    pub account_id: Uuid,
    pub source_kind: String,
    pub amount: Decimal,
    pub remaining: Decimal,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, account_id, source_kind, amount, remaining, expires_at, created_at";

/// Days until new lots expire (None: never). Applies to lots created from now on.
pub async fn set_expiry_days(pool: &PgPool, days: Option<i32>) -> Result<(), StoreError> {
    sqlx::query("UPDATE billing_settings SET credit_expiry_days = $1")
        .bind(days)
        .execute(pool)
        .await?;
    Ok(())
}

/// Lots past their expiry that still hold credits.
pub async fn expired_with_remaining(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<LotRow>, StoreError> {
    Ok(sqlx::query_as::<_, LotRow>(&format!(
        "SELECT {COLUMNS} FROM credit_lots WHERE remaining > 0 AND expires_at <= $1 ORDER BY expires_at LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// An account's lots that still hold credits, oldest first.
pub async fn open_lots(pool: &PgPool, account: Uuid) -> Result<Vec<LotRow>, StoreError> {
    Ok(sqlx::query_as::<_, LotRow>(&format!(
        "SELECT {COLUMNS} FROM credit_lots WHERE account_id = $1 AND remaining > 0 ORDER BY created_at, id"
    ))
    .bind(account)
    .fetch_all(pool)
    .await?)
}

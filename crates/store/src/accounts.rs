use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::StoreError;

#[derive(Debug, Clone, FromRow)]
pub struct AccountRow {
    pub id: Uuid,
    pub name: String,
    pub allow_training: bool,
    pub created_at: DateTime<Utc>,
}

/// Creates the account and its credits book in one transaction.
pub async fn create(pool: &PgPool, id: Uuid, name: &str) -> Result<AccountRow, StoreError> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query_as::<_, AccountRow>(
        "INSERT INTO accounts (id, name) VALUES ($1, $2) RETURNING id, name, allow_training, created_at",
    )
    .bind(id)
    .bind(name)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO ledger_accounts (id, code, kind, account_id, normal_side) \
         VALUES ($1, $2, 'credits', $3, 'credit')",
    )
    .bind(Uuid::now_v7())
    .bind(format!("tenant:{id}:credits"))
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<AccountRow>, StoreError> {
    Ok(sqlx::query_as::<_, AccountRow>(
        "SELECT id, name, allow_training, created_at FROM accounts WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

pub async fn set_allow_training(pool: &PgPool, id: Uuid, allow: bool) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE accounts SET allow_training = $2 WHERE id = $1")
        .bind(id)
        .bind(allow)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

//! Users (tenants' people), operators (the platform's) and the single-use tokens sent to them
//! by email. Passwords arrive here already hashed; tokens as their SHA-256.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::StoreError;

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub password_changed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

const USER_COLUMNS: &str =
    "id, email, password_hash, email_verified_at, password_changed_at, created_at";

/// Inserts a user; None when the email is taken.
pub async fn insert_user(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    email: &str,
    password_hash: &str,
) -> Result<Option<UserRow>, StoreError> {
    Ok(sqlx::query_as::<_, UserRow>(&format!(
        "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, $3) \
         ON CONFLICT (email) DO NOTHING RETURNING {USER_COLUMNS}"
    ))
    .bind(id)
    .bind(email)
    .bind(password_hash)
    .fetch_optional(&mut **tx)
    .await?)
}

pub async fn user_by_email(pool: &PgPool, email: &str) -> Result<Option<UserRow>, StoreError> {
    Ok(sqlx::query_as::<_, UserRow>(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
    ))
    .bind(email)
    .fetch_optional(pool)
    .await?)
}

pub async fn user(pool: &PgPool, id: Uuid) -> Result<Option<UserRow>, StoreError> {
    Ok(
        sqlx::query_as::<_, UserRow>(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn set_password(pool: &PgPool, id: Uuid, password_hash: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET password_hash = $2, password_changed_at = now() WHERE id = $1")
        .bind(id)
        .bind(password_hash)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn mark_verified(pool: &PgPool, id: Uuid) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = $1",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Stores a single-use token (its hash) for `purpose`, replacing unused ones of the same
/// purpose so only the latest link works.
pub async fn insert_token(
    pool: &PgPool,
    token_hash: &[u8],
    user_id: Uuid,
    purpose: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE user_tokens SET used_at = now() WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
    )
    .bind(user_id)
    .bind(purpose)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO user_tokens (token_hash, user_id, purpose, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(purpose)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Uses a token: marks it used and returns its user, if it exists, has this purpose, is unused
/// and has not expired. Atomic, so a token works once even when raced.
pub async fn consume_token(
    pool: &PgPool,
    token_hash: &[u8],
    purpose: &str,
) -> Result<Option<Uuid>, StoreError> {
    Ok(sqlx::query_scalar(
        "UPDATE user_tokens SET used_at = now() \
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now() \
         RETURNING user_id",
    )
    .bind(token_hash)
    .bind(purpose)
    .fetch_optional(pool)
    .await?)
}

#[derive(Debug, Clone, FromRow)]
pub struct OperatorRow {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

/// Inserts an operator; None when the email is taken.
pub async fn insert_operator(
    pool: &PgPool,
    id: Uuid,
    email: &str,
    password_hash: &str,
) -> Result<Option<OperatorRow>, StoreError> {
    Ok(sqlx::query_as::<_, OperatorRow>(
        "INSERT INTO operators (id, email, password_hash) VALUES ($1, $2, $3) \
         ON CONFLICT (email) DO NOTHING RETURNING id, email, password_hash, disabled, created_at",
    )
    .bind(id)
    .bind(email)
    .bind(password_hash)
    .fetch_optional(pool)
    .await?)
}

pub async fn operator_by_email(
    pool: &PgPool,
    email: &str,
) -> Result<Option<OperatorRow>, StoreError> {
    Ok(sqlx::query_as::<_, OperatorRow>(
        "SELECT id, email, password_hash, disabled, created_at FROM operators WHERE email = $1",
    )
    .bind(email)
    .fetch_optional(pool)
    .await?)
}

pub async fn operator(pool: &PgPool, id: Uuid) -> Result<Option<OperatorRow>, StoreError> {
    Ok(sqlx::query_as::<_, OperatorRow>(
        "SELECT id, email, password_hash, disabled, created_at FROM operators WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

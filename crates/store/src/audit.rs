//! The audit log: who changed what, when, from where. Append-only.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool};
use uuid::Uuid;

use crate::StoreError;

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct AuditRow {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub account_id: Option<Uuid>,
    pub actor_kind: String,
    pub actor_user_id: Option<Uuid>,
    pub actor_key_id: Option<Uuid>,
    pub actor_label: String,
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    pub details: serde_json::Value,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

const COLUMNS: &str = "id, at, account_id, actor_kind, actor_user_id, actor_key_id, actor_label, \
    action, target_kind, target_id, details, ip, user_agent";

pub async fn insert(pool: &PgPool, r: &AuditRow) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO audit_log ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ))
    .bind(r.id)
    .bind(r.at)
    .bind(r.account_id)
    .bind(&r.actor_kind)
    .bind(r.actor_user_id)
    .bind(r.actor_key_id)
    .bind(&r.actor_label)
    .bind(&r.action)
    .bind(&r.target_kind)
    .bind(&r.target_id)
    .bind(&r.details)
    .bind(&r.ip)
    .bind(&r.user_agent)
    .execute(pool)
    .await?;
    Ok(())
}

/// Entries newest first, before the keyset cursor `(at, id)` if given. `account_id` None
/// reads every account's (operators only).
pub async fn page(
    pool: &PgPool,
    account_id: Option<Uuid>,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    let (at, id) = before.unzip();
    Ok(sqlx::query_as::<_, AuditRow>(&format!(
        "SELECT {COLUMNS} FROM audit_log \
         WHERE ($1::uuid IS NULL OR account_id = $1) \
           AND ($2::timestamptz IS NULL OR (at, id) < ($2, $3)) \
         ORDER BY at DESC, id DESC LIMIT $4"
    ))
    .bind(account_id)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

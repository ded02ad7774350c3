//! Memberships (who belongs to which account, with which role) and invitations.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::StoreError;

#[derive(Debug, Clone, FromRow)]
pub struct MemberRow {
    pub account_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    account_id: Uuid,
    user_id: Uuid,
    role: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO memberships (account_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(account_id)
    .bind(user_id)
    .bind(role)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The user's role in the account and whether the account is frozen; None if not a member.
pub async fn role_of(
    pool: &PgPool,
    account_id: Uuid,
    user_id: Uuid,
) -> Result<Option<(String, bool)>, StoreError> {
    Ok(sqlx::query_as::<_, (String, bool)>(
        "SELECT m.role, a.frozen_at IS NOT NULL FROM memberships m JOIN accounts a ON a.id = m.account_id \
         WHERE m.account_id = $1 AND m.user_id = $2",
    )
    .bind(account_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?)
}

pub async fn get(
    pool: &PgPool,
    account_id: Uuid,
    user_id: Uuid,
) -> Result<Option<MemberRow>, StoreError> {
    Ok(sqlx::query_as::<_, MemberRow>(
        "SELECT m.account_id, m.user_id, u.email, m.role, m.created_at \
         FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.account_id = $1 AND m.user_id = $2",
    )
    .bind(account_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?)
}

pub async fn list(pool: &PgPool, account_id: Uuid) -> Result<Vec<MemberRow>, StoreError> {
    Ok(sqlx::query_as::<_, MemberRow>(
        "SELECT m.account_id, m.user_id, u.email, m.role, m.created_at \
         FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.account_id = $1 \
         ORDER BY m.created_at, m.user_id",
    )
    .bind(account_id)
    .fetch_all(pool)
    .await?)
}

/// The accounts a user belongs to, with the role and the account's name.
#[derive(Debug, Clone, FromRow)]
pub struct MembershipOfUser {
    pub account_id: Uuid,
    pub name: String,
    pub role: String,
    pub personal: bool,
    pub frozen: bool,
}

pub async fn of_user(pool: &PgPool, user_id: Uuid) -> Result<Vec<MembershipOfUser>, StoreError> {
    Ok(sqlx::query_as::<_, MembershipOfUser>(
        "SELECT a.id AS account_id, a.name, m.role, a.personal_of IS NOT DISTINCT FROM m.user_id AS personal, \
                a.frozen_at IS NOT NULL AS frozen \
         FROM memberships m JOIN accounts a ON a.id = m.account_id WHERE m.user_id = $1 \
         ORDER BY (a.personal_of IS NOT DISTINCT FROM m.user_id) DESC, m.created_at",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?)
}

pub async fn set_role(
    tx: &mut Transaction<'_, Postgres>,
    account_id: Uuid,
    user_id: Uuid,
    role: &str,
) -> Result<bool, StoreError> {
    let done =
        sqlx::query("UPDATE memberships SET role = $3 WHERE account_id = $1 AND user_id = $2")
            .bind(account_id)
            .bind(user_id)
            .bind(role)
            .execute(&mut **tx)
            .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn remove(pool: &PgPool, account_id: Uuid, user_id: Uuid) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM memberships WHERE account_id = $1 AND user_id = $2")
        .bind(account_id)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Locks the account's memberships for a change of roles (ownership transfer), so two
/// concurrent changes cannot both pass their checks.
pub async fn lock_account(
    tx: &mut Transaction<'_, Postgres>,
    account_id: Uuid,
) -> Result<(), StoreError> {
    sqlx::query("SELECT 1 FROM memberships WHERE account_id = $1 FOR UPDATE")
        .bind(account_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct InvitationRow {
    pub id: Uuid,
    pub account_id: Uuid,
    pub email: String,
    pub role: String,
    pub invited_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const INVITATION_COLUMNS: &str =
    "id, account_id, email, role, invited_by, created_at, expires_at, accepted_at, revoked_at";

pub struct NewInvitation<'a> {
    pub id: Uuid,
    pub account_id: Uuid,
    pub email: &'a str,
    pub role: &'a str,
    pub token_hash: &'a [u8],
    pub invited_by: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
}

/// Creates an invitation, revoking any open one for the same address in the same account.
pub async fn invite(pool: &PgPool, i: NewInvitation<'_>) -> Result<InvitationRow, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE invitations SET revoked_at = now() WHERE account_id = $1 AND email = $2 \
         AND accepted_at IS NULL AND revoked_at IS NULL",
    )
    .bind(i.account_id)
    .bind(i.email)
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query_as::<_, InvitationRow>(&format!(
        "INSERT INTO invitations (id, account_id, email, role, token_hash, invited_by, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {INVITATION_COLUMNS}"
    ))
    .bind(i.id)
    .bind(i.account_id)
    .bind(i.email)
    .bind(i.role)
    .bind(i.token_hash)
    .bind(i.invited_by)
    .bind(i.expires_at)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// Open (not accepted, revoked or expired) invitations of an account.
pub async fn open_invitations(
    pool: &PgPool,
    account_id: Uuid,
) -> Result<Vec<InvitationRow>, StoreError> {
    Ok(sqlx::query_as::<_, InvitationRow>(&format!(
        "SELECT {INVITATION_COLUMNS} FROM invitations WHERE account_id = $1 AND accepted_at IS NULL \
         AND revoked_at IS NULL AND expires_at > now() ORDER BY created_at"
    ))
    .bind(account_id)
    .fetch_all(pool)
    .await?)
}

pub async fn revoke_invitation(
    pool: &PgPool,
    account_id: Uuid,
    id: Uuid,
) -> Result<Option<InvitationRow>, StoreError> {
    Ok(sqlx::query_as::<_, InvitationRow>(&format!(
        "UPDATE invitations SET revoked_at = now() WHERE id = $1 AND account_id = $2 \
         AND accepted_at IS NULL AND revoked_at IS NULL RETURNING {INVITATION_COLUMNS}"
    ))
    .bind(id)
    .bind(account_id)
    .fetch_optional(pool)
    .await?)
}

/// Accepts an open invitation for `email` by its token hash, adding the user to the account
/// in the same transaction. None when the token is unknown, used, revoked, expired, or for
/// another address.
pub async fn accept_invitation(
    pool: &PgPool,
    token_hash: &[u8],
    user_id: Uuid,
    email: &str,
) -> Result<Option<InvitationRow>, StoreError> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query_as::<_, InvitationRow>(&format!(
        "UPDATE invitations SET accepted_at = now(), accepted_by = $2 \
         WHERE token_hash = $1 AND email = $3 AND accepted_at IS NULL AND revoked_at IS NULL \
           AND expires_at > now() RETURNING {INVITATION_COLUMNS}"
    ))
    .bind(token_hash)
    .bind(user_id)
    .bind(email)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(inv) = &row {
        insert(&mut tx, inv.account_id, user_id, &inv.role).await?;
    }
    tx.commit().await?;
    Ok(row)
}

//! Double-entry ledger rows. Posting rules (which books move by how much) live in billing;
//! this module writes balanced transactions atomically and idempotently.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use sqlx::{FromRow, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::StoreError;

/// Well-known platform books created by the first migration.
pub mod platform {
    use uuid::Uuid;
    pub const STRIPE_CLEARING: Uuid = Uuid::from_u128(1);
    pub const USAGE_REVENUE: Uuid = Uuid::from_u128(2);
    pub const TOPUP_FEE_REVENUE: Uuid = Uuid::from_u128(3);
    pub const EXPIRED_CREDITS: Uuid = Uuid::from_u128(4);
    pub const GRANTS: Uuid = Uuid::from_u128(5);
    /// Usage providers reported beyond a request's hold: absorbed by the platform.
    pub const PROVIDER_OVERAGE: Uuid = Uuid::from_u128(6);
}

#[derive(Debug, Clone)]
pub struct NewTransaction {
    pub id: Uuid,
    pub external_id: String,
    pub kind: &'static str,
    pub account_id: Option<Uuid>,
    pub description: String,
    pub metadata: serde_json::Value,
    pub effective_at: chrono::DateTime<chrono::Utc>,
    /// (ledger account, signed amount: positive debit, negative credit). Must sum to zero.
    pub entries: Vec<(Uuid, Decimal)>,
}

/// A book's balance after a batch was posted, with the version that batch gave it.
#[derive(Debug, Clone, FromRow)]
pub struct BookBalance {
    pub ledger_account_id: Uuid,
    pub account_id: Option<Uuid>,
    pub balance: Decimal,
    pub version: i64,
}

#[derive(Debug, Default)]
pub struct PostedBatch {
    /// External ids that were newly posted by this batch.
    pub posted: Vec<String>,
    /// External ids that had already been posted earlier (idempotent replays).
    pub duplicates: Vec<String>,
    pub balances: Vec<BookBalance>,
}

/// Looks up a tenant's credits book.
pub async fn credits_book(pool: &PgPool, account_id: Uuid) -> Result<Option<Uuid>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM ledger_accounts WHERE account_id = $1 AND kind = 'credits'",
    )
    .bind(account_id)
    .fetch_optional(pool)
    .await?)
}

/// Balance (normal side) and version of a tenant's credits book.
pub async fn tenant_balance(
    pool: &PgPool,
    account_id: Uuid,
) -> Result<Option<(Decimal, i64)>, StoreError> {
    Ok(sqlx::query_as::<_, (Decimal, i64)>(
        "SELECT balance, version FROM ledger_accounts WHERE account_id = $1 AND kind = 'credits'",
    )
    .bind(account_id)
    .fetch_optional(pool)
    .await?)
}

/// Posts transactions inside the caller's database transaction, in a fixed number of
/// statements whatever the batch size. Transactions whose external id already exists are
/// skipped. The books touched are locked in id order before they are updated, so concurrent
/// writers never deadlock on each other.
pub async fn post_batch(
    tx: &mut Transaction<'_, Postgres>,
    batch: &[NewTransaction],
) -> Result<PostedBatch, StoreError> {
    let mut out = PostedBatch::default();
    if batch.is_empty() {
        return Ok(out);
    }
    let mut seen = std::collections::HashSet::new();
    let mut unique: Vec<&NewTransaction> = Vec::with_capacity(batch.len());
    for t in batch {
        let sum: Decimal = t.entries.iter().map(|(_, a)| *a).sum();
        if sum != Decimal::ZERO || t.entries.is_empty() {
            return Err(StoreError::Corrupt(format!(
                "transaction {} does not balance",
                t.external_id
            )));
        }
        if seen.insert(t.external_id.as_str()) {
            unique.push(t);
        } else {
            out.duplicates.push(t.external_id.clone());
        }
    }

    // Books first, in id order, before anything else of the posting: every posting path takes
    // its locks in this order (books, then the credit lots the entry trigger updates), so two
    // postings never wait on each other in a cycle. NO KEY UPDATE is the lock the balance
    // UPDATE takes anyway, and it does not conflict with the KEY SHARE locks that inserting
    // entries (their foreign keys) takes on the same rows.
    let mut books: Vec<Uuid> = unique
        .iter()
        .flat_map(|t| t.entries.iter().map(|(b, _)| *b))
        .collect();
    books.sort();
    books.dedup();
    let locked: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM ledger_accounts WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
    )
    .bind(&books)
    .fetch_all(&mut **tx)
    .await?;
    if locked.len() != books.len() {
        return Err(StoreError::NotFound(
            "a ledger account of this batch".into(),
        ));
    }

    let new_ids: Vec<String> = sqlx::query_scalar(
        "INSERT INTO ledger_transactions (id, external_id, kind, account_id, description, metadata, effective_at) \
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::jsonb[], $7::timestamptz[]) \
         ON CONFLICT (external_id) DO NOTHING RETURNING external_id",
    )
    .bind(unique.iter().map(|t| t.id).collect::<Vec<_>>())
    .bind(unique.iter().map(|t| t.external_id.as_str()).collect::<Vec<_>>())
    .bind(unique.iter().map(|t| t.kind).collect::<Vec<_>>())
    .bind(unique.iter().map(|t| t.account_id).collect::<Vec<_>>())
    .bind(unique.iter().map(|t| t.description.as_str()).collect::<Vec<_>>())
    .bind(unique.iter().map(|t| t.metadata.clone()).collect::<Vec<_>>())
    .bind(unique.iter().map(|t| t.effective_at).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;
    let fresh: std::collections::HashSet<&str> = new_ids.iter().map(String::as_str).collect();

    let (mut txn_ids, mut books, mut amounts, mut at) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut deltas: BTreeMap<Uuid, Decimal> = BTreeMap::new();
    for t in unique {
        if !fresh.contains(t.external_id.as_str()) {
            out.duplicates.push(t.external_id.clone());
            continue;
        }
        for (book, amount) in &t.entries {
            txn_ids.push(t.id);
            books.push(*book);
            amounts.push(*amount);
            at.push(t.effective_at);
            *deltas.entry(*book).or_default() += *amount;
        }
        out.posted.push(t.external_id.clone());
    }
    if deltas.is_empty() {
        return Ok(out);
    }
    // All entries in one statement: the balance check runs once per statement over them.
    sqlx::query(
        "INSERT INTO ledger_entries (transaction_id, ledger_account_id, amount, created_at) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::numeric[], $4::timestamptz[])",
    )
    .bind(&txn_ids)
    .bind(&books)
    .bind(&amounts)
    .bind(&at)
    .execute(&mut **tx)
    .await?;

    let (touched, debit_deltas): (Vec<Uuid>, Vec<Decimal>) = deltas.into_iter().unzip();
    out.balances = sqlx::query_as::<_, BookBalance>(
        "UPDATE ledger_accounts la \
         SET balance = la.balance + CASE la.normal_side WHEN 'debit' THEN d.delta ELSE -d.delta END, \
             version = la.version + 1 \
         FROM UNNEST($1::uuid[], $2::numeric[]) AS d(book, delta) WHERE la.id = d.book \
         RETURNING la.id AS ledger_account_id, la.account_id, la.balance, la.version",
    )
    .bind(&touched)
    .bind(&debit_deltas)
    .fetch_all(&mut **tx)
    .await?;
    Ok(out)
}

/// Posts one transaction in its own database transaction.
pub async fn post_one(pool: &PgPool, t: NewTransaction) -> Result<PostedBatch, StoreError> {
    let mut tx = pool.begin().await?;
    let out = post_batch(&mut tx, std::slice::from_ref(&t)).await?;
    tx.commit().await?;
    Ok(out)
}

/// Sums of what a tenant has been credited and charged, from its credits book entries.
#[derive(Debug, Clone, FromRow)]
pub struct TenantTotals {
    pub credited: Decimal,
    pub debited: Decimal,
    pub balance: Decimal,
}

pub async fn tenant_totals(
    pool: &PgPool,
    account_id: Uuid,
) -> Result<Option<TenantTotals>, StoreError> {
    Ok(sqlx::query_as::<_, TenantTotals>(
        "SELECT coalesce(sum(-e.amount) FILTER (WHERE e.amount < 0), 0) AS credited, \
                coalesce(sum(e.amount) FILTER (WHERE e.amount > 0), 0) AS debited, \
                la.balance \
         FROM ledger_accounts la LEFT JOIN ledger_entries e ON e.ledger_account_id = la.id \
         WHERE la.account_id = $1 AND la.kind = 'credits' GROUP BY la.id, la.balance",
    )
    .bind(account_id)
    .fetch_optional(pool)
    .await?)
}

/// A book locked for a posting batch, with its balance before the batch.
#[derive(Debug, Clone, FromRow)]
pub struct LockedBook {
    pub id: Uuid,
    pub account_id: Option<Uuid>,
    pub balance: Decimal,
}

/// Locks (in id order, the order every writer locks in, so writers never deadlock) the given
/// platform books and the credits books of the given tenants, and returns their balances.
pub async fn lock_books(
    tx: &mut Transaction<'_, Postgres>,
    platform_books: &[Uuid],
    tenants: &[Uuid],
) -> Result<Vec<LockedBook>, StoreError> {
    Ok(sqlx::query_as::<_, LockedBook>(
        "SELECT id, account_id, balance FROM ledger_accounts          WHERE id = ANY($1) OR (kind = 'credits' AND account_id = ANY($2))          ORDER BY id FOR NO KEY UPDATE",
    )
    .bind(platform_books)
    .bind(tenants)
    .fetch_all(&mut **tx)
    .await?)
}

/// Ledger invariants, each as a count of violations.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct LedgerCheck {
    pub unbalanced_transactions: i64,
    pub books_not_matching_entries: i64,
    pub tenants_below_zero: i64,
    /// Request logs with a charge but no usage transaction naming them.
    pub charged_requests_without_transaction: i64,
    /// Usage transactions whose entries differ from the request logs they name (tenant debit =
    /// sum of `cost`, usage revenue = sum of `cost + overage`, provider overage = sum of
    /// `overage`), or that name none.
    pub usage_transactions_not_matching_requests: i64,
    /// Paid Stripe sessions without their one top-up transaction, plus top-up transactions
    /// without a paid session.
    pub paid_sessions_not_credited_once: i64,
}

impl LedgerCheck {
    pub fn is_clean(&self) -> bool {
        self.unbalanced_transactions == 0
            && self.books_not_matching_entries == 0
            && self.tenants_below_zero == 0
            && self.charged_requests_without_transaction == 0
            && self.usage_transactions_not_matching_requests == 0
            && self.paid_sessions_not_credited_once == 0
    }
}

pub async fn verify(pool: &PgPool) -> Result<LedgerCheck, StoreError> {
    Ok(sqlx::query_as::<_, LedgerCheck>(
        "SELECT \
          (SELECT count(*) FROM (SELECT transaction_id FROM ledger_entries GROUP BY transaction_id \
                                 HAVING sum(amount) <> 0) u) AS unbalanced_transactions, \
          (SELECT count(*) FROM ledger_accounts la WHERE la.balance <> \
              (SELECT coalesce(sum(CASE la.normal_side WHEN 'debit' THEN e.amount ELSE -e.amount END), 0) \
               FROM ledger_entries e WHERE e.ledger_account_id = la.id)) AS books_not_matching_entries, \
          (SELECT count(*) FROM ledger_accounts la WHERE la.kind = 'credits' AND la.balance < 0 \
              AND NOT EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.account_id = la.account_id \
                              AND t.kind IN ('refund', 'dispute'))) AS tenants_below_zero, \
          (SELECT count(*) FROM request_logs r WHERE r.cost > 0 AND NOT EXISTS \
              (SELECT 1 FROM ledger_transactions t WHERE t.id = r.usage_txn_id AND t.kind = 'usage')) \
              AS charged_requests_without_transaction, \
          (SELECT count(*) FROM ledger_transactions t \
           LEFT JOIN (SELECT usage_txn_id, sum(cost) AS cost, sum(overage) AS overage FROM request_logs \
                      WHERE usage_txn_id IS NOT NULL GROUP BY usage_txn_id) r ON r.usage_txn_id = t.id \
           LEFT JOIN (SELECT e.transaction_id, \
                             coalesce(sum(e.amount) FILTER (WHERE la.kind = 'credits'), 0) AS tenant, \
                             coalesce(-sum(e.amount) FILTER (WHERE la.kind = 'usage_revenue'), 0) AS revenue, \
                             coalesce(sum(e.amount) FILTER (WHERE la.kind = 'provider_overage'), 0) AS overage \
                      FROM ledger_entries e JOIN ledger_accounts la ON la.id = e.ledger_account_id \
                      GROUP BY e.transaction_id) e ON e.transaction_id = t.id \
           WHERE t.kind = 'usage' AND (r.usage_txn_id IS NULL OR e.tenant IS DISTINCT FROM r.cost \
                 OR e.revenue IS DISTINCT FROM r.cost + r.overage OR e.overage IS DISTINCT FROM r.overage)) \
              AS usage_transactions_not_matching_requests, \
          ((SELECT count(*) FROM topup_sessions s WHERE s.status = 'paid' AND 1 <> \
              (SELECT count(*) FROM ledger_transactions t WHERE t.external_id = 'topup:' || s.id \
                                                            AND t.kind = 'topup')) \
           + (SELECT count(*) FROM ledger_transactions t WHERE t.kind = 'topup' AND NOT EXISTS \
              (SELECT 1 FROM topup_sessions s WHERE 'topup:' || s.id = t.external_id \
                                                AND s.status = 'paid'))) \
              AS paid_sessions_not_credited_once",
    )
    .fetch_one(pool)
    .await?)
}

/// A credit grant as the operator console lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GrantEntry {
    pub external_id: String,
    pub effective_at: chrono::DateTime<chrono::Utc>,
    pub amount: rust_decimal::Decimal,
}

/// The latest `limit` grants to an account's credits, newest first.
pub async fn grants(
    pool: &PgPool,
    account_id: Uuid,
    limit: i64,
) -> Result<Vec<GrantEntry>, StoreError> {
    Ok(sqlx::query_as::<_, GrantEntry>(
        "SELECT t.external_id, t.effective_at, -e.amount AS amount \
         FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id \
         JOIN ledger_accounts la ON la.id = e.ledger_account_id \
         WHERE la.account_id = $1 AND la.kind = 'credits' AND t.kind = 'grant' \
         ORDER BY t.effective_at DESC LIMIT $2",
    )
    .bind(account_id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

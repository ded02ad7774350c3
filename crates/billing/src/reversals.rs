//! Reversing an operator's grant: a balanced `reversal` transaction (debit the tenant's credits,
//! credit the platform's grants book), never taking the tenant below zero. What the tenant has
//! already spent of the grant cannot be taken back; the reversal takes what is left, up to the
//! grant, first from the hot balance (so credits reserved by in-flight requests stay theirs),
//! exactly like expiry.

use infron_store::hot::{HotState, Reconcile, SettledMark};
use infron_store::ledger::{self, platform, NewTransaction};
use infron_store::PgPool;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::{BillingError, Usd};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reversal {
    Reversed {
        external_id: String,
        grant: Usd,
        reversed: Usd,
        balance: Usd,
    },
    /// This grant was reversed before; nothing changed.
    AlreadyReversed { external_id: String },
    /// No grant with that id on this account.
    NoSuchGrant,
}

/// Reverses the grant whose ledger external id is `grant_external_id` on `account`.
pub async fn reverse_grant(
    pg: &PgPool,
    hot: &HotState,
    account: Uuid,
    grant_external_id: &str,
    reason: &str,
) -> Result<Reversal, BillingError> {
    let store = |e: sqlx::Error| BillingError::Store(e.into());
    let grant: Option<(Uuid, Decimal)> = sqlx::query_as(
        "SELECT t.id, -e.amount FROM ledger_transactions t \
         JOIN ledger_entries e ON e.transaction_id = t.id \
         JOIN ledger_accounts la ON la.id = e.ledger_account_id AND la.kind = 'credits' \
         WHERE t.external_id = $1 AND t.kind = 'grant' AND t.account_id = $2 AND la.account_id = $2",
    )
    .bind(grant_external_id)
    .bind(account)
    .fetch_optional(pg)
    .await
    .map_err(store)?;
    let Some((grant_id, amount)) = grant else {
        return Ok(Reversal::NoSuchGrant);
    };
    let external_id = format!("reversal:{grant_external_id}");
    // One reversal of a grant at a time, across instances; the check and the posting happen
    // under the lock so a retry never takes twice.
    let mut guard = pg.begin().await.map_err(store)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(&external_id)
        .execute(&mut *guard)
        .await
        .map_err(store)?;
    let done: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM ledger_transactions WHERE external_id = $1)",
    )
    .bind(&external_id)
    .fetch_one(pg)
    .await
    .map_err(store)?;
    if done {
        return Ok(Reversal::AlreadyReversed { external_id });
    }
    let grant = Usd::new(amount)?;
    let marker = format!("rev-{grant_id}");
    let took = hot
        .take_for_expiry(account, &marker, grant.to_pico()?)
        .await?;
    let taken = match &took {
        Some((pico, _)) => Usd::from_pico(*pico),
        None => {
            let (balance, _) = ledger::tenant_balance(pg, account)
                .await?
                .ok_or(BillingError::UnknownAccount(account))?;
            grant.min(Usd::new(balance.max(Decimal::ZERO))?)
        }
    };
    let book = ledger::credits_book(pg, account)
        .await?
        .ok_or(BillingError::UnknownAccount(account))?;
    let mut version = 0;
    let mut balance_after = None;
    let mut posted_now = false;
    if !taken.is_zero() {
        let posted = ledger::post_one(
            pg,
            NewTransaction {
                id: Uuid::now_v7(),
                external_id: external_id.clone(),
                kind: "reversal",
                account_id: Some(account),
                description: reason.to_string(),
                metadata: serde_json::json!({ "reverses": grant_external_id, "grant": grant.to_string(), "reason": reason }),
                effective_at: chrono::Utc::now(),
                entries: vec![(book, taken.decimal()), (platform::GRANTS, -taken.decimal())],
            },
        )
        .await?;
        posted_now = !posted.posted.is_empty();
        if let Some(b) = posted
            .balances
            .iter()
            .find(|b| b.account_id == Some(account))
        {
            version = b.version;
            balance_after = Some(Usd::new(b.balance)?.to_pico()?);
        }
    }
    let taken_pico = taken.to_pico()?;
    hot.reconcile(&[Reconcile {
        key: hot.keys().account(account),
        version,
        balance_pico: balance_after,
        // Without a hot copy nothing was taken from one: the posting applies by version.
        delta_pico: if took.is_none() && posted_now {
            -taken_pico
        } else {
            0
        },
        settled: match &took {
            Some((pico, epoch)) if *pico > 0 => vec![SettledMark {
                request: marker.clone(),
                epoch: epoch.clone(),
                charged_pico: *pico,
                refund_pico: 0,
                posted_pico: posted_now.then_some(taken_pico),
            }],
            _ => Vec::new(),
        },
    }])
    .await?;
    guard.commit().await.map_err(store)?;
    let (balance, _) = ledger::tenant_balance(pg, account)
        .await?
        .ok_or(BillingError::UnknownAccount(account))?;
    Ok(Reversal::Reversed {
        external_id,
        grant,
        reversed: taken,
        balance: Usd::new(balance)?,
    })
}

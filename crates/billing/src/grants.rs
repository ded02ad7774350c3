//! Crediting an account outside Stripe (operator grants, promotions).

use infron_store::hot::HotState;
use infron_store::ledger::{self, platform, NewTransaction};
use infron_store::PgPool;
use uuid::Uuid;

use crate::{BillingError, Usd};

#[derive(Debug, Clone)]
pub struct GrantResult {
    pub transaction_external_id: String,
    /// False when a grant with this external id was posted before (nothing changed now).
    pub newly_posted: bool,
    pub balance: Usd,
}

/// Posts a grant: debit the platform's grants book, credit the tenant. Idempotent on
/// `external_id`.
pub async fn grant(
    pg: &PgPool,
    hot: &HotState,
    account: Uuid,
    amount: Usd,
    reason: &str,
    external_id: String,
) -> Result<GrantResult, BillingError> {
    if amount.is_negative() || amount.is_zero() {
        return Err(BillingError::AmountOutOfRange(format!(
            "grant of {amount} must be positive"
        )));
    }
    amount.to_pico()?;
    let book = ledger::credits_book(pg, account)
        .await?
        .ok_or(BillingError::UnknownAccount(account))?;
    let posted = ledger::post_one(
        pg,
        NewTransaction {
            id: Uuid::now_v7(),
            external_id: external_id.clone(),
            kind: "grant",
            account_id: Some(account),
            description: reason.to_string(),
            metadata: serde_json::json!({ "reason": reason }),
            effective_at: chrono::Utc::now(),
            entries: vec![
                (platform::GRANTS, amount.decimal()),
                (book, -amount.decimal()),
            ],
        },
    )
    .await?;
    let newly_posted = !posted.posted.is_empty();
    if let Some(b) = posted
        .balances
        .iter()
        .find(|b| b.account_id == Some(account))
    {
        let delta = if newly_posted { amount.to_pico()? } else { 0 };
        hot.posted_to_account(
            account,
            b.version,
            Some(Usd::new(b.balance)?.to_pico()?),
            delta,
        )
        .await?;
    }
    let (balance, _) = ledger::tenant_balance(pg, account)
        .await?
        .ok_or(BillingError::UnknownAccount(account))?;
    Ok(GrantResult {
        transaction_external_id: external_id,
        newly_posted,
        balance: Usd::new(balance)?,
    })
}

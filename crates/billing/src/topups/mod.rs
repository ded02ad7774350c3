//! Stripe top-ups: the customer buys credits through a Stripe Checkout Session and pays the
//! credits plus the top-up fee; Stripe's signed webhooks then move the ledger.
//!
//! - [`quote`]: what a purchase of credits costs, in Stripe's integer cents.
//! - [`checkout`]: creating the Checkout Session through the async-stripe client.
//! - [`signature`]: verifying the `Stripe-Signature` header of a webhook.
//! - [`events`]: the few fields of Stripe events this module reads.
//! - [`posting`]: the ledger transactions of a top-up and of its reversals.
//! - [`webhook`]: applying an event exactly once, in whatever order events arrive.

pub mod auto;
pub mod checkout;
pub mod events;
pub mod posting;
pub mod signature;
pub mod webhook;

use rust_decimal::Decimal;

use crate::fees::FeeSchedule;
use crate::{BillingError, Usd};

pub use checkout::{CheckoutConfig, CreatedSession, StripeCheckout};
pub use signature::{SignatureError, WebhookVerifier};
pub use webhook::WebhookOutcome;

#[derive(Debug, thiserror::Error)]
pub enum TopupError {
    /// The requested amount cannot be bought; the message says why.
    #[error("{0}")]
    InvalidAmount(String),
    #[error("Stripe could not create the checkout session: {0}")]
    Stripe(String),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("the webhook payload is not a Stripe event: {0}")]
    Payload(String),
    #[error(transparent)]
    Billing(#[from] BillingError),
    #[error(transparent)]
    Store(#[from] infron_store::StoreError),
}

/// The smallest and largest purchase of credits, in USD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopupLimits {
    pub min: Usd,
    pub max: Usd,
}

impl Default for TopupLimits {
    fn default() -> Self {
        TopupLimits {
            min: Usd::from_cents(500),
            max: Usd::from_cents(1_000_000),
        }
    }
}

/// Stripe refuses a Checkout Session above $999,999.99.
pub const STRIPE_MAX_CENTS: i64 = 99_999_999;

/// A purchase of credits: what is credited, the fee, and what the customer pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    pub credits: Usd,
    pub fee: Usd,
    pub total: Usd,
    pub credits_cents: i64,
    pub fee_cents: i64,
    pub total_cents: i64,
}

/// Prices a purchase of `amount` USD of credits. The amount must be whole cents, within the
/// limits; the fee comes from the fee schedule (rounded half-up to the cent) and is paid on top.
pub fn quote(
    amount: Decimal,
    limits: &TopupLimits,
    fees: &FeeSchedule,
) -> Result<Quote, TopupError> {
    if amount <= Decimal::ZERO {
        return Err(TopupError::InvalidAmount(format!(
            "amount must be positive, got {amount}"
        )));
    }
    if amount.normalize().scale() > 2 {
        return Err(TopupError::InvalidAmount(format!(
            "amount must be whole cents (at most 2 decimal places), got {amount}"
        )));
    }
    let credits = Usd::new(amount)?;
    if credits < limits.min || credits > limits.max {
        return Err(TopupError::InvalidAmount(format!(
            "amount must be between {} and {} USD, got {credits}",
            limits.min, limits.max
        )));
    }
    let fee = fees.fee(credits);
    let total = credits.checked_add(fee)?;
    let quote = Quote {
        credits,
        fee,
        total,
        credits_cents: to_cents(credits)?,
        fee_cents: to_cents(fee)?,
        total_cents: to_cents(total)?,
    };
    if quote.total_cents > STRIPE_MAX_CENTS {
        return Err(TopupError::InvalidAmount(format!(
            "amount plus fee ({total} USD) exceeds what one Stripe payment can take"
        )));
    }
    Ok(quote)
}

/// Whole cents of an amount; an amount finer than a cent is an error, never rounded.
pub fn to_cents(amount: Usd) -> Result<i64, BillingError> {
    let scaled = amount
        .decimal()
        .checked_mul(Decimal::ONE_HUNDRED)
        .ok_or_else(|| BillingError::AmountOutOfRange(amount.to_string()))?;
    if !scaled.fract().is_zero() {
        return Err(BillingError::AmountOutOfRange(format!(
            "{amount} is not a whole number of cents"
        )));
    }
    i64::try_from(scaled).map_err(|_| BillingError::AmountOutOfRange(amount.to_string()))
}

/// Parses an amount as a client wrote it: a JSON number or a decimal string, read exactly
/// (never through a float).
pub fn parse_amount(literal: &str) -> Result<Decimal, TopupError> {
    let text = literal.trim();
    let text = if text.starts_with('"') {
        serde_json::from_str::<String>(text)
            .map_err(|_| TopupError::InvalidAmount("amount is not a valid string".into()))?
    } else if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        text.to_string()
    } else {
        return Err(TopupError::InvalidAmount(
            "amount must be a number or a decimal string of USD".into(),
        ));
    };
    let text = text.trim();
    Decimal::from_str_exact(text)
        .or_else(|_| {
            if text.contains(['e', 'E']) {
                Decimal::from_scientific(text)
            } else {
                Err(rust_decimal::Error::ConversionTo(text.to_string()))
            }
        })
        .map_err(|_| TopupError::InvalidAmount(format!("amount '{text}' is not a decimal number")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn quote_charges_the_fee_on_top_in_cents() {
        let q = quote(dec!(100), &TopupLimits::default(), &FeeSchedule::default()).unwrap();
        assert_eq!(
            (q.credits_cents, q.fee_cents, q.total_cents),
            (10_000, 535, 10_535)
        );
        let q = quote(
            dec!(10.10),
            &TopupLimits::default(),
            &FeeSchedule::default(),
        )
        .unwrap();
        assert_eq!(
            (q.credits_cents, q.fee_cents, q.total_cents),
            (1010, 86, 1096)
        );
        assert_eq!(q.total.decimal(), dec!(10.96));
    }

    #[test]
    fn quote_rejects_what_cannot_be_bought() {
        let l = TopupLimits::default();
        let f = FeeSchedule::default();
        for bad in [dec!(0), dec!(-5), dec!(4.99), dec!(10000.01), dec!(25.001)] {
            assert!(
                matches!(quote(bad, &l, &f), Err(TopupError::InvalidAmount(_))),
                "{bad}"
            );
        }
        assert!(quote(dec!(5), &l, &f).is_ok());
        assert!(quote(dec!(10000), &l, &f).is_ok());
        assert!(quote(dec!(25.500), &l, &f).is_ok());
    }

    #[test]
    fn amounts_parse_exactly_from_numbers_and_strings() {
        assert_eq!(parse_amount("25").unwrap(), dec!(25));
        assert_eq!(parse_amount("25.10").unwrap(), dec!(25.10));
        assert_eq!(parse_amount("\" 12.5 \"").unwrap(), dec!(12.5));
        assert_eq!(parse_amount("2.5e1").unwrap(), dec!(25));
        assert_eq!(parse_amount("0.1").unwrap(), dec!(0.1));
        for bad in ["null", "true", "{}", "[]", "\"abc\"", "\"\""] {
            assert!(parse_amount(bad).is_err(), "{bad}");
        }
    }
}

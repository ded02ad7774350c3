//! Ledger postings of a top-up and of the money Stripe later takes back.
//!
//! Payment (`topup:{session}`): debit stripe_clearing the total, credit the tenant the credits
//! and topup_fee_revenue the fee.
//!
//! Reversals are driven by one number per paid session, its reversal position: the cents taken
//! back so far (cumulative refunds plus disputed funds currently withdrawn). The position maps
//! to the credits and fee taken back by [`PaidTopup::split`] — credits first, then the fee,
//! never more than was paid — and every refund or dispute event posts the difference between
//! the split after and before it. So the ledger's final state depends only on the final
//! position, whatever order the events came in, and a reinstatement exactly undoes what its
//! withdrawal took when nothing else happened in between.

use infron_store::ledger::{platform, NewTransaction};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::Usd;

/// The amounts of a paid session, in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaidTopup {
    pub credits_cents: i64,
    pub fee_cents: i64,
}

impl PaidTopup {
    pub fn total_cents(&self) -> i64 {
        self.credits_cents + self.fee_cents
    }

    /// (credits, fee) taken back at reversal position `position`.
    pub fn split(&self, position: i64) -> (i64, i64) {
        let p = position.clamp(0, self.total_cents());
        let credits = p.min(self.credits_cents);
        (credits, p - credits)
    }

    /// (credits, fee) to take back when the position moves from `from` to `to`; negative
    /// when money is given back (a reinstated dispute).
    pub fn delta(&self, from: i64, to: i64) -> (i64, i64) {
        let (c0, f0) = self.split(from);
        let (c1, f1) = self.split(to);
        (c1 - c0, f1 - f0)
    }
}

/// Ledger external id of a session's payment.
pub fn topup_external_id(session: &str) -> String {
    format!("topup:{session}")
}

pub fn refund_external_id(charge: &str, cumulative_cents: i64) -> String {
    format!("refund:{charge}:{cumulative_cents}")
}

pub fn dispute_external_id(dispute: &str, withdrawn: bool) -> String {
    format!(
        "dispute:{dispute}:{}",
        if withdrawn { "withdrawn" } else { "reinstated" }
    )
}

fn dollars(cents: i64) -> Decimal {
    Usd::from_cents(cents).decimal()
}

fn non_zero(entries: Vec<(Uuid, Decimal)>) -> Vec<(Uuid, Decimal)> {
    entries.into_iter().filter(|(_, a)| !a.is_zero()).collect()
}

/// The payment: debit clearing, credit the tenant's credits book and the fee revenue.
pub fn topup_transaction(
    session: &str,
    account: Uuid,
    book: Uuid,
    topup: PaidTopup,
    payment_intent: Option<&str>,
) -> NewTransaction {
    NewTransaction {
        id: Uuid::now_v7(),
        external_id: topup_external_id(session),
        kind: "topup",
        account_id: Some(account),
        description: format!("Stripe top-up {session}"),
        metadata: serde_json::json!({
            "session_id": session,
            "payment_intent": payment_intent,
            "credits_cents": topup.credits_cents,
            "fee_cents": topup.fee_cents,
        }),
        effective_at: chrono::Utc::now(),
        entries: non_zero(vec![
            (platform::STRIPE_CLEARING, dollars(topup.total_cents())),
            (book, -dollars(topup.credits_cents)),
            (platform::TOPUP_FEE_REVENUE, -dollars(topup.fee_cents)),
        ]),
    }
}

/// Money taken back (positive amounts) or given back (negative): the tenant's credits book and
/// fee revenue move by (credits, fee), stripe_clearing by their sum the other way. `None` when
/// both are zero (the position moved beyond what was paid).
pub fn reversal_transaction(
    external_id: String,
    kind: &'static str,
    account: Uuid,
    book: Uuid,
    (credits_cents, fee_cents): (i64, i64),
    metadata: serde_json::Value,
) -> Option<NewTransaction> {
    if credits_cents == 0 && fee_cents == 0 {
        return None;
    }
    Some(NewTransaction {
        id: Uuid::now_v7(),
        description: format!("Stripe {} {external_id}", kind.replace('_', " ")),
        external_id,
        kind,
        account_id: Some(account),
        metadata,
        effective_at: chrono::Utc::now(),
        entries: non_zero(vec![
            (book, dollars(credits_cents)),
            (platform::TOPUP_FEE_REVENUE, dollars(fee_cents)),
            (
                platform::STRIPE_CLEARING,
                -dollars(credits_cents + fee_cents),
            ),
        ]),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const T: PaidTopup = PaidTopup {
        credits_cents: 2500,
        fee_cents: 160,
    };

    #[test]
    fn credits_are_taken_back_before_the_fee() {
        assert_eq!(T.split(0), (0, 0));
        assert_eq!(T.split(1000), (1000, 0));
        assert_eq!(T.split(2500), (2500, 0));
        assert_eq!(T.split(2600), (2500, 100));
        assert_eq!(T.split(2660), (2500, 160));
        assert_eq!(T.split(9999), (2500, 160));
        assert_eq!(T.delta(2000, 2600), (500, 100));
        assert_eq!(T.delta(2660, 0), (-2500, -160));
    }

    #[test]
    fn any_path_to_a_position_sums_to_its_split() {
        // Walk random positions (refunds up, reinstatements down, overshoots past the total)
        // and check the postings always add up to the split of where the walk ends.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200 {
            let mut pos = 0_i64;
            let (mut credits, mut fee) = (0_i64, 0_i64);
            for _ in 0..20 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let to = i64::try_from(seed % 4000).unwrap();
                let (c, f) = T.delta(pos, to);
                credits += c;
                fee += f;
                pos = to;
            }
            assert_eq!((credits, fee), T.split(pos));
        }
    }

    #[test]
    fn postings_balance() {
        let account = Uuid::now_v7();
        let book = Uuid::now_v7();
        let t = topup_transaction("cs_1", account, book, T, Some("pi_1"));
        assert_eq!(
            t.entries.iter().map(|(_, a)| *a).sum::<Decimal>(),
            Decimal::ZERO
        );
        assert_eq!(t.entries.len(), 3);
        let r = reversal_transaction(
            refund_external_id("ch_1", 2600),
            "refund",
            account,
            book,
            T.delta(0, 2600),
            serde_json::Value::Null,
        )
        .unwrap();
        assert_eq!(
            r.entries.iter().map(|(_, a)| *a).sum::<Decimal>(),
            Decimal::ZERO
        );
        assert_eq!(r.external_id, "refund:ch_1:2600");
        assert!(reversal_transaction(
            "x".into(),
            "refund",
            account,
            book,
            (0, 0),
            serde_json::Value::Null
        )
        .is_none());
    }
}

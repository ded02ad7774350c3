//! The top-up fee: a fixed part plus a rate of the credits bought, rounded half-up to the cent,
//! paid on top of the credits. Defaults: $0.35 + 5% (buying $100.00 costs $105.35).

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::Usd;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeSchedule {
    pub fixed: Usd,
    /// Fraction of the credits bought, e.g. 0.05.
    pub rate: Decimal,
}

impl Default for FeeSchedule {
    fn default() -> Self {
        FeeSchedule {
            fixed: Usd::from_cents(35),
            rate: Decimal::new(5, 2),
        }
    }
}

impl FeeSchedule {
    pub fn fee(&self, credits: Usd) -> Usd {
        let raw = self.fixed.decimal() + credits.decimal() * self.rate;
        Usd::rounded(raw.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))
    }

    /// What the customer pays for `credits`.
    pub fn total(&self, credits: Usd) -> Usd {
        Usd::rounded(credits.decimal() + self.fee(credits).decimal())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn fee_table() {
        let s = FeeSchedule::default();
        for (credits, fee, total) in [
            (dec!(1.00), dec!(0.40), dec!(1.40)),
            (dec!(5.00), dec!(0.60), dec!(5.60)),
            (dec!(10.00), dec!(0.85), dec!(10.85)),
            (dec!(100.00), dec!(5.35), dec!(105.35)),
            (dec!(10000.00), dec!(500.35), dec!(10500.35)),
            // 0.35 + 0.05 * 10.10 = 0.855 -> half-up -> 0.86
            (dec!(10.10), dec!(0.86), dec!(10.96)),
            // 0.35 + 0.05 * 10.09 = 0.8545 -> 0.85
            (dec!(10.09), dec!(0.85), dec!(10.94)),
            // 0.35 + 0.05 * 0.01 = 0.3505 -> 0.35
            (dec!(0.01), dec!(0.35), dec!(0.36)),
        ] {
            let c = Usd::new(credits).unwrap();
            assert_eq!(s.fee(c).decimal(), fee, "fee of {credits}");
            assert_eq!(s.total(c).decimal(), total, "total of {credits}");
        }
    }
}

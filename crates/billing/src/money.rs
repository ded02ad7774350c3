//! Exact USD amounts. Storage scale is 12 decimal places (one pico-dollar): catalog prices are
//! limited to 12 decimals per token, so a price times a whole number of tokens is exact at
//! this scale. Where a computation could produce more decimals (a discount rate times a
//! price), the result is rounded half away from zero to 12 places, once, at the point named
//! in the code. Amounts shown to people are rendered without trailing zeros.

use std::fmt;
use std::iter::Sum;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::BillingError;

/// Decimal places kept for every stored amount.
pub const SCALE: u32 = 12;

/// A USD amount, exact to the pico-dollar.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Usd(Decimal);

impl Usd {
    pub const ZERO: Usd = Usd(Decimal::ZERO);

    /// Accepts an amount with at most 12 decimals; anything finer is an error, not a rounding.
    pub fn new(value: Decimal) -> Result<Self, BillingError> {
        if value.normalize().scale() > SCALE {
            return Err(BillingError::AmountOutOfRange(format!(
                "{value} has more than {SCALE} decimal places"
            )));
        }
        Ok(Usd(value))
    }

    /// Rounds half away from zero to the storage scale.
    pub fn rounded(value: Decimal) -> Self {
        Usd(value.round_dp_with_strategy(SCALE, RoundingStrategy::MidpointAwayFromZero))
    }

    pub fn from_cents(cents: i64) -> Self {
        Usd(Decimal::new(cents, 2))
    }

    pub fn decimal(self) -> Decimal {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    pub fn is_negative(self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    pub fn checked_add(self, other: Usd) -> Result<Usd, BillingError> {
        self.0
            .checked_add(other.0)
            .map(Usd)
            .ok_or_else(|| BillingError::AmountOutOfRange(format!("{self} + {other}")))
    }

    pub fn checked_sub(self, other: Usd) -> Result<Usd, BillingError> {
        self.0
            .checked_sub(other.0)
            .map(Usd)
            .ok_or_else(|| BillingError::AmountOutOfRange(format!("{self} - {other}")))
    }

    /// Integer pico-dollars, the unit of the Redis hot balance.
    pub fn to_pico(self) -> Result<i64, BillingError> {
        let scaled = self
            .0
            .checked_mul(Decimal::from(1_000_000_000_000_i64))
            .ok_or_else(|| BillingError::AmountOutOfRange(self.to_string()))?;
        if scaled.fract() != Decimal::ZERO {
            return Err(BillingError::AmountOutOfRange(format!(
                "{self} is finer than a pico-dollar"
            )));
        }
        i64::try_from(scaled).map_err(|_| {
            BillingError::AmountOutOfRange(format!("{self} exceeds the hot balance range"))
        })
    }

    pub fn from_pico(pico: i64) -> Usd {
        Usd(Decimal::new(pico, SCALE).normalize())
    }
}

impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.normalize(), f)
    }
}

impl FromStr for Usd {
    type Err = BillingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let d = Decimal::from_str_exact(s.trim()).map_err(|_| {
            BillingError::AmountOutOfRange(format!("'{s}' is not a decimal amount"))
        })?;
        Usd::new(d)
    }
}

impl Sum for Usd {
    fn sum<I: Iterator<Item = Usd>>(iter: I) -> Usd {
        Usd(iter.map(|u| u.0).sum())
    }
}

/// A price in USD per unit (token, request or image), at most 12 decimals, never negative.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct TokenPrice(Decimal);

impl TokenPrice {
    pub const ZERO: TokenPrice = TokenPrice(Decimal::ZERO);

    pub fn new(value: Decimal) -> Result<Self, BillingError> {
        if value.is_sign_negative() && !value.is_zero() {
            return Err(BillingError::AmountOutOfRange(format!(
                "price {value} is negative"
            )));
        }
        if value.normalize().scale() > SCALE {
            return Err(BillingError::AmountOutOfRange(format!(
                "price {value} has more than {SCALE} decimal places"
            )));
        }
        Ok(TokenPrice(value.normalize()))
    }

    pub fn decimal(self) -> Decimal {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// Exact cost of `units` at this price.
    pub fn times(self, units: u64) -> Result<Usd, BillingError> {
        self.0
            .checked_mul(Decimal::from(units))
            .map(Usd)
            .ok_or_else(|| BillingError::AmountOutOfRange(format!("{units} x {}", self.0)))
    }
}

impl fmt::Display for TokenPrice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for TokenPrice {
    type Err = BillingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let d = Decimal::from_str_exact(s.trim())
            .map_err(|_| BillingError::AmountOutOfRange(format!("'{s}' is not a decimal price")))?;
        TokenPrice::new(d)
    }
}

impl TryFrom<String> for TokenPrice {
    type Error = BillingError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<TokenPrice> for String {
    fn from(p: TokenPrice) -> String {
        p.0.to_string()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn pico_round_trip_is_exact() {
        let u = Usd::new(dec!(12.345678901234)).unwrap();
        assert_eq!(u.to_pico().unwrap(), 12_345_678_901_234);
        assert_eq!(Usd::from_pico(12_345_678_901_234), u);
    }

    #[test]
    fn finer_than_scale_is_rejected_not_rounded() {
        assert!(Usd::new(dec!(0.0000000000001)).is_err());
        assert!("0.0000000000001".parse::<TokenPrice>().is_err());
        assert!("-0.1".parse::<TokenPrice>().is_err());
    }

    #[test]
    fn price_times_tokens_is_exact() {
        let p: TokenPrice = "0.00000001875".parse().unwrap();
        assert_eq!(p.times(1_000_000).unwrap().decimal(), dec!(0.01875));
        assert_eq!(p.times(3).unwrap().decimal(), dec!(0.00000005625));
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(
            Usd::rounded(dec!(0.0000000000005)).decimal(),
            dec!(0.000000000001)
        );
        assert_eq!(Usd::rounded(dec!(0.0000000000004)).decimal(), dec!(0));
    }
}

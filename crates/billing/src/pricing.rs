//! The cost of one request from its normalized usage and the endpoint's prices.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{BillingError, TokenPrice, Usd};

/// Prices of one provider endpoint, USD per unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    pub prompt: TokenPrice,
    pub completion: TokenPrice,
    #[serde(default)]
    pub request: TokenPrice,
    #[serde(default)]
    pub image: TokenPrice,
    /// Price of a prompt token read from the provider's cache; the prompt price if absent.
    #[serde(default)]
    pub input_cache_read: Option<TokenPrice>,
    /// Price of a prompt token written to the provider's cache; the prompt price if absent.
    #[serde(default)]
    pub input_cache_write: Option<TokenPrice>,
    /// Fraction off the list prices (0 to 1). The price charged is list x (1 - discount).
    #[serde(default)]
    pub discount: Decimal,
}

/// Token counts as every adapter reports them. `prompt_tokens` includes cached reads and cache
/// writes; `completion_tokens` includes reasoning tokens (OpenAI's convention).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    #[serde(default)]
    pub cached_tokens: u64,
    #[serde(default)]
    pub cache_write_tokens: u64,
    #[serde(default)]
    pub reasoning_tokens: u64,
    #[serde(default)]
    pub images: u64,
}

impl Usage {
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// Cost split the way OpenRouter's `cost_details` reports it. Components are after discount;
/// `total` is their exact sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CostBreakdown {
    pub prompt: Usd,
    pub completion: Usd,
    pub cache_read: Usd,
    pub cache_write: Usd,
    pub reasoning: Usd,
    pub request: Usd,
    pub image: Usd,
    /// What the discount took off the list price.
    pub discount: Usd,
    pub total: Usd,
}

impl CostBreakdown {
    /// The breakdown with `total` as what was charged: lower than the usage at list price only
    /// when a provider reported more than the request's hold covered (the components still
    /// itemize the usage at list price).
    pub fn charged(mut self, charged: Usd) -> CostBreakdown {
        if charged < self.total {
            self.total = charged;
        }
        self
    }
}

impl Prices {
    pub fn validate(&self) -> Result<(), BillingError> {
        if self.discount < Decimal::ZERO || self.discount > Decimal::ONE {
            return Err(BillingError::AmountOutOfRange(format!(
                "discount {} is not between 0 and 1",
                self.discount
            )));
        }
        Ok(())
    }

    fn cache_read(&self) -> TokenPrice {
        self.input_cache_read.unwrap_or(self.prompt)
    }

    fn cache_write(&self) -> TokenPrice {
        self.input_cache_write.unwrap_or(self.prompt)
    }

    /// Exact cost. Without a discount no rounding happens; with one, each component is
    /// rounded half away from zero to 12 decimals after the discount is applied.
    pub fn cost(&self, usage: &Usage) -> Result<CostBreakdown, BillingError> {
        let uncached_prompt = usage
            .prompt_tokens
            .saturating_sub(usage.cached_tokens)
            .saturating_sub(usage.cache_write_tokens);
        let reasoning = usage.reasoning_tokens.min(usage.completion_tokens);
        let list = [
            self.prompt.times(uncached_prompt)?,
            self.completion.times(usage.completion_tokens - reasoning)?,
            self.cache_read().times(usage.cached_tokens)?,
            self.cache_write().times(usage.cache_write_tokens)?,
            self.completion.times(reasoning)?,
            self.request.times(1)?,
            self.image.times(usage.images)?,
        ];
        let keep = Decimal::ONE - self.discount;
        let charged = list.map(|c| {
            if self.discount.is_zero() {
                c
            } else {
                Usd::rounded(c.decimal() * keep)
            }
        });
        let list_total: Usd = list.iter().copied().sum();
        let total: Usd = charged.iter().copied().sum();
        Ok(CostBreakdown {
            prompt: charged[0],
            completion: charged[1],
            cache_read: charged[2],
            cache_write: charged[3],
            reasoning: charged[4],
            request: charged[5],
            image: charged[6],
            discount: list_total.checked_sub(total)?,
            total,
        })
    }

    /// The most a request can cost: `prompt_tokens` at the prompt price (or the cache-write price
    /// if that is higher, since any prompt token may be written to cache), `max_output` tokens at
    /// the completion price, the per-request price and `images` at the image price.
    pub fn max_cost(
        &self,
        prompt_tokens: u64,
        max_output: u64,
        images: u64,
    ) -> Result<Usd, BillingError> {
        let prompt_price = self.prompt.max(self.cache_write()).max(self.cache_read());
        let parts = [
            prompt_price.times(prompt_tokens)?,
            self.completion.times(max_output)?,
            self.request.times(1)?,
            self.image.times(images)?,
        ];
        Ok(parts.into_iter().sum())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rust_decimal_macros::dec;

    fn p(s: &str) -> TokenPrice {
        s.parse().unwrap()
    }

    #[test]
    fn cost_is_exact_product_of_tokens_and_prices() {
        let prices = Prices {
            prompt: p("0.000003"),
            completion: p("0.000015"),
            input_cache_read: Some(p("0.0000003")),
            input_cache_write: Some(p("0.00000375")),
            request: p("0.001"),
            ..Default::default()
        };
        let usage = Usage {
            prompt_tokens: 1000,
            completion_tokens: 500,
            cached_tokens: 200,
            cache_write_tokens: 100,
            reasoning_tokens: 300,
            images: 0,
        };
        let c = prices.cost(&usage).unwrap();
        assert_eq!(c.prompt.decimal(), dec!(0.0021)); // 700 x 3e-6
        assert_eq!(c.cache_read.decimal(), dec!(0.00006)); // 200 x 3e-7
        assert_eq!(c.cache_write.decimal(), dec!(0.000375)); // 100 x 3.75e-6
        assert_eq!(c.completion.decimal(), dec!(0.003)); // 200 x 15e-6
        assert_eq!(c.reasoning.decimal(), dec!(0.0045)); // 300 x 15e-6
        assert_eq!(c.request.decimal(), dec!(0.001));
        assert_eq!(c.total.decimal(), dec!(0.011035));
        assert!(c.discount.is_zero());
    }

    #[test]
    fn discount_applies_to_each_component() {
        let prices = Prices {
            prompt: p("0.000001"),
            completion: p("0.000002"),
            discount: dec!(0.25),
            ..Default::default()
        };
        let c = prices
            .cost(&Usage {
                prompt_tokens: 10,
                completion_tokens: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(c.total.decimal(), dec!(0.0000225));
        assert_eq!(c.discount.decimal(), dec!(0.0000075));
    }

    #[test]
    fn max_cost_bounds_every_possible_cost() {
        let prices = Prices {
            prompt: p("0.000003"),
            completion: p("0.000015"),
            input_cache_write: Some(p("0.00000375")),
            ..Default::default()
        };
        let max = prices.max_cost(100, 50, 0).unwrap();
        for cw in [0, 50, 100] {
            let c = prices
                .cost(&Usage {
                    prompt_tokens: 100,
                    completion_tokens: 50,
                    cache_write_tokens: cw,
                    ..Default::default()
                })
                .unwrap();
            assert!(c.total <= max);
        }
    }
}

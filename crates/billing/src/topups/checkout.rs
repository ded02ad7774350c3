//! Creating Checkout Sessions through the async-stripe client.
//!
//! The request is async-stripe's typed `CreateCheckoutSession`. The response is read into a
//! narrow struct of the two fields we use (id and url) rather than the crate's full
//! `CheckoutSession`, whose ~70 required fields would make any Stripe-side addition or a
//! test server's omission a hard failure.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use stripe::{IdempotencyKey, RequestStrategy, StripeRequest};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionAllowedPaymentMethodTypes as MethodType,
    CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData,
    CreateCheckoutSessionPaymentIntentData, CreateCheckoutSessionPaymentMethodOptions,
    CreateCheckoutSessionPaymentMethodOptionsWechatPay,
    CreateCheckoutSessionPaymentMethodOptionsWechatPayClient, ProductData,
};
use stripe_checkout::CheckoutSessionMode;
use uuid::Uuid;

use super::{Quote, TopupError};

/// What a Checkout Session offers and where Stripe sends the customer afterwards.
#[derive(Debug, Clone)]
pub struct CheckoutConfig {
    /// Stripe payment method types (`card`, `alipay`, `wechat_pay`, ...), validated by
    /// [`parse_payment_methods`].
    pub payment_methods: Vec<String>,
    pub success_url: String,
    pub cancel_url: String,
}

/// Parses a comma-separated list of Stripe payment method types, rejecting names Stripe does
/// not know (as of the API version async-stripe pins).
pub fn parse_payment_methods(list: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let known =
            matches!(MethodType::from_str(name), Ok(t) if !matches!(t, MethodType::Unknown(_)));
        if !known {
            return Err(format!("'{name}' is not a Stripe payment method type"));
        }
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    if out.is_empty() {
        return Err("lists no payment method type".into());
    }
    Ok(out)
}

/// A session Stripe created: where to send the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSession {
    pub id: String,
    pub url: String,
}

#[derive(miniserde::Deserialize)]
struct SessionReply {
    id: String,
    url: Option<String>,
}

pub struct StripeCheckout {
    client: stripe::Client,
    config: CheckoutConfig,
}

impl std::fmt::Debug for StripeCheckout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeCheckout")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl StripeCheckout {
    /// `api_base` is Stripe's API root (`https://api.stripe.com/` or a test server); requests
    /// go to `{api_base}v1/...`. Each attempt is bounded by `timeout`.
    pub fn new(
        secret_key: &SecretString,
        api_base: &str,
        timeout: Duration,
        config: CheckoutConfig,
    ) -> Result<Self, TopupError> {
        let base = if api_base.ends_with('/') {
            api_base.to_string()
        } else {
            format!("{api_base}/")
        };
        let client = stripe::ClientBuilder::new(secret_key.expose_secret())
            .url(base)
            .timeout(timeout)
            .app_info("infron", Some(env!("CARGO_PKG_VERSION").to_string()), None)
            .build()
            .map_err(|e| TopupError::Stripe(format!("invalid Stripe client settings: {e}")))?;
        Ok(StripeCheckout { client, config })
    }

    pub fn config(&self) -> &CheckoutConfig {
        &self.config
    }

    pub(crate) fn client(&self) -> &stripe::Client {
        &self.client
    }

    /// Creates a payment-mode session for `account` buying `quote.credits`. Two line items,
    /// credits and fee, so the customer sees the fee on Stripe's page; their sum is the total.
    /// The account and amounts travel in the metadata of the session and of its payment.
    pub async fn create_session(
        &self,
        account: Uuid,
        quote: &Quote,
    ) -> Result<CreatedSession, TopupError> {
        let metadata: HashMap<String, String> = HashMap::from([
            ("account_id".to_string(), account.to_string()),
            ("credits_cents".to_string(), quote.credits_cents.to_string()),
            ("fee_cents".to_string(), quote.fee_cents.to_string()),
        ]);
        let mut items = vec![line_item(
            &format!("Infron credits (${})", quote.credits),
            quote.credits_cents,
        )];
        if quote.fee_cents > 0 {
            items.push(line_item("Top-up fee", quote.fee_cents));
        }
        let mut payment = CreateCheckoutSessionPaymentIntentData::new();
        payment.metadata = Some(metadata.clone());
        payment.description = Some(format!("Infron credits for account {account}"));

        let methods: Vec<MethodType> = self
            .config
            .payment_methods
            .iter()
            .filter_map(|m| MethodType::from_str(m).ok())
            .collect();
        let mut request = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .currency(stripe_types::Currency::USD)
            .line_items(items)
            .metadata(metadata)
            .client_reference_id(account.to_string())
            .payment_intent_data(payment)
            .allowed_payment_method_types(methods)
            .success_url(self.config.success_url.clone())
            .cancel_url(self.config.cancel_url.clone());
        if self
            .config
            .payment_methods
            .iter()
            .any(|m| m == "wechat_pay")
        {
            // Stripe requires the WeChat Pay client type; Checkout is a web page.
            let mut options = CreateCheckoutSessionPaymentMethodOptions::new();
            options.wechat_pay = Some(CreateCheckoutSessionPaymentMethodOptionsWechatPay::new(
                CreateCheckoutSessionPaymentMethodOptionsWechatPayClient::Web,
            ));
            request = request.payment_method_options(options);
        }
        // A fresh key per call: the client may resend the request, Stripe creates it once.
        let key = IdempotencyKey::new(format!("infron-checkout-{}", Uuid::now_v7()))
            .map_err(|e| TopupError::Stripe(e.to_string()))?;
        let reply: SessionReply = request
            .build()
            .customize::<SessionReply>()
            .request_strategy(RequestStrategy::Idempotent(key))
            .send(&self.client)
            .await
            .map_err(|e| TopupError::Stripe(e.to_string()))?;
        let url = reply
            .url
            .ok_or_else(|| TopupError::Stripe(format!("session {} has no url", reply.id)))?;
        Ok(CreatedSession { id: reply.id, url })
    }
}

fn line_item(name: &str, cents: i64) -> CreateCheckoutSessionLineItems {
    let mut price = CreateCheckoutSessionLineItemsPriceData::new(stripe_types::Currency::USD);
    price.unit_amount = Some(cents);
    price.product_data = Some(ProductData::new(name));
    let mut item = CreateCheckoutSessionLineItems::new();
    item.price_data = Some(price);
    item.quantity = Some(1);
    item
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn payment_methods_are_checked_against_stripes_list() {
        assert_eq!(
            parse_payment_methods("card, alipay,wechat_pay,card").unwrap(),
            vec!["card", "alipay", "wechat_pay"]
        );
        assert!(parse_payment_methods("card,bitcoin_please").is_err());
        assert!(parse_payment_methods(" , ").is_err());
    }
}

//! The parts of Stripe events that top-ups read. Only the fields used are declared; everything
//! else in Stripe's objects is ignored, so new fields and API versions do not break parsing.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer};

use super::TopupError;

/// An event envelope: `{"id": "evt_...", "type": "...", "created": ..., "data": {"object": {...}}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created: i64,
    #[serde(default)]
    pub livemode: bool,
    pub data: EventData,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventData {
    pub object: serde_json::Value,
}

/// A Checkout Session as it appears in `checkout.session.*` events.
#[derive(Debug, Clone, Deserialize)]
pub struct SessionObject {
    pub id: String,
    #[serde(default)]
    pub payment_status: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub amount_total: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: HashMap<String, String>,
    /// `payment`, `setup` or `subscription`; setup-mode sessions (saving a card for auto
    /// top-up) are acted on through their SetupIntent's event instead.
    #[serde(default)]
    pub mode: Option<String>,
}

/// The metadata key that marks a PaymentIntent as an auto top-up: the trigger's id.
pub const AUTO_TOPUP_TRIGGER: &str = "auto_topup_trigger";
/// The metadata `purpose` of a SetupIntent that saves the card for auto top-up.
pub const AUTO_TOPUP_PURPOSE: &str = "auto_topup";

/// A PaymentIntent as it appears in `payment_intent.*` events.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentIntentObject {
    pub id: String,
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: HashMap<String, String>,
    #[serde(default)]
    pub last_payment_error: Option<PaymentErrorObject>,
}

/// Why a payment failed, as Stripe words it.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentErrorObject {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
}

impl PaymentIntentObject {
    /// Our auto top-up trigger, when this payment is one.
    pub fn trigger(&self) -> Option<uuid::Uuid> {
        self.metadata.get(AUTO_TOPUP_TRIGGER)?.parse().ok()
    }

    /// A sentence for the page: Stripe's message, or its codes.
    pub fn failure_reason(&self) -> String {
        let e = self.last_payment_error.as_ref();
        let message = e.and_then(|e| e.message.clone());
        let code = e.and_then(|e| e.decline_code.clone().or_else(|| e.code.clone()));
        match (message, code) {
            (Some(m), Some(c)) => format!("{m} ({c})"),
            (Some(m), None) => m,
            (None, Some(c)) => format!("the payment failed ({c})"),
            (None, None) => "the payment failed".to_string(),
        }
    }
}

/// A SetupIntent as it appears in `setup_intent.succeeded`.
#[derive(Debug, Clone, Deserialize)]
pub struct SetupIntentObject {
    pub id: String,
    #[serde(default, deserialize_with = "id_or_object")]
    pub customer: Option<String>,
    #[serde(default, deserialize_with = "id_or_object")]
    pub payment_method: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: HashMap<String, String>,
}

/// A Charge as it appears in `charge.refunded`. `amount_refunded` is cumulative.
#[derive(Debug, Clone, Deserialize)]
pub struct ChargeObject {
    pub id: String,
    #[serde(default, deserialize_with = "id_or_object")]
    pub payment_intent: Option<String>,
    pub amount: i64,
    pub amount_refunded: i64,
    pub currency: String,
}

/// A Dispute as it appears in `charge.dispute.*`.
#[derive(Debug, Clone, Deserialize)]
pub struct DisputeObject {
    pub id: String,
    #[serde(deserialize_with = "required_id_or_object")]
    pub charge: String,
    #[serde(default, deserialize_with = "id_or_object")]
    pub payment_intent: Option<String>,
    pub amount: i64,
    pub currency: String,
}

/// The events top-ups act on; every other type is acknowledged and ignored.
#[derive(Debug, Clone)]
pub enum TopupEvent {
    /// `checkout.session.completed`: paid now, or (`payment_status` unpaid) paid later.
    SessionCompleted(SessionObject),
    /// `checkout.session.async_payment_succeeded`.
    AsyncPaymentSucceeded(SessionObject),
    /// `checkout.session.async_payment_failed`.
    AsyncPaymentFailed(SessionObject),
    /// `checkout.session.expired`.
    SessionExpired(SessionObject),
    /// `charge.refunded`.
    ChargeRefunded(ChargeObject),
    /// `charge.dispute.funds_withdrawn`.
    DisputeFundsWithdrawn(DisputeObject),
    /// `charge.dispute.funds_reinstated`.
    DisputeFundsReinstated(DisputeObject),
    /// `payment_intent.succeeded` of an auto top-up.
    PaymentSucceeded(PaymentIntentObject),
    /// `payment_intent.payment_failed` of an auto top-up.
    PaymentFailed(PaymentIntentObject),
    /// `setup_intent.succeeded` of a card saved for auto top-up.
    SetupSucceeded(SetupIntentObject),
    Ignored,
}

impl TopupEvent {
    pub fn from_event(event: &Event) -> Result<TopupEvent, TopupError> {
        let object = &event.data.object;
        let session = || parse::<SessionObject>(object, &event.kind);
        let charge = || parse::<ChargeObject>(object, &event.kind);
        let dispute = || parse::<DisputeObject>(object, &event.kind);
        let payment = || parse::<PaymentIntentObject>(object, &event.kind);
        Ok(match event.kind.as_str() {
            "checkout.session.completed" => {
                let s = session()?;
                if s.mode.as_deref() == Some("setup") {
                    TopupEvent::Ignored
                } else {
                    TopupEvent::SessionCompleted(s)
                }
            }
            "payment_intent.succeeded" => match payment()? {
                p if p.trigger().is_some() => TopupEvent::PaymentSucceeded(p),
                _ => TopupEvent::Ignored,
            },
            "payment_intent.payment_failed" => match payment()? {
                p if p.trigger().is_some() => TopupEvent::PaymentFailed(p),
                _ => TopupEvent::Ignored,
            },
            "setup_intent.succeeded" => {
                let s = parse::<SetupIntentObject>(object, &event.kind)?;
                if s.metadata.get("purpose").map(String::as_str) == Some(AUTO_TOPUP_PURPOSE) {
                    TopupEvent::SetupSucceeded(s)
                } else {
                    TopupEvent::Ignored
                }
            }
            "checkout.session.async_payment_succeeded" => {
                TopupEvent::AsyncPaymentSucceeded(session()?)
            }
            "checkout.session.async_payment_failed" => TopupEvent::AsyncPaymentFailed(session()?),
            "checkout.session.expired" => TopupEvent::SessionExpired(session()?),
            "charge.refunded" => TopupEvent::ChargeRefunded(charge()?),
            "charge.dispute.funds_withdrawn" => TopupEvent::DisputeFundsWithdrawn(dispute()?),
            "charge.dispute.funds_reinstated" => TopupEvent::DisputeFundsReinstated(dispute()?),
            _ => TopupEvent::Ignored,
        })
    }

    /// The id of the object the event is about, for the events table.
    pub fn object_id(&self) -> Option<&str> {
        match self {
            TopupEvent::SessionCompleted(s)
            | TopupEvent::AsyncPaymentSucceeded(s)
            | TopupEvent::AsyncPaymentFailed(s)
            | TopupEvent::SessionExpired(s) => Some(&s.id),
            TopupEvent::ChargeRefunded(c) => Some(&c.id),
            TopupEvent::DisputeFundsWithdrawn(d) | TopupEvent::DisputeFundsReinstated(d) => {
                Some(&d.id)
            }
            TopupEvent::PaymentSucceeded(p) | TopupEvent::PaymentFailed(p) => Some(&p.id),
            TopupEvent::SetupSucceeded(s) => Some(&s.id),
            TopupEvent::Ignored => None,
        }
    }
}

pub fn parse_event(body: &[u8]) -> Result<Event, TopupError> {
    serde_json::from_slice(body).map_err(|e| TopupError::Payload(e.to_string()))
}

fn parse<T: serde::de::DeserializeOwned>(
    object: &serde_json::Value,
    kind: &str,
) -> Result<T, TopupError> {
    T::deserialize(object).map_err(|e| TopupError::Payload(format!("{kind}: {e}")))
}

/// Stripe sends related objects as ids unless expanded; accept both.
#[derive(Deserialize)]
#[serde(untagged)]
enum IdOrObject {
    Id(String),
    Object { id: String },
}

fn id_or_object<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<IdOrObject>::deserialize(d)?.map(|v| match v {
        IdOrObject::Id(id) | IdOrObject::Object { id } => id,
    }))
}

fn required_id_or_object<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    id_or_object(d)?.ok_or_else(|| serde::de::Error::custom("missing id"))
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_the_fields_it_needs_and_ignores_the_rest() {
        let body = br#"{"id":"evt_1","object":"event","type":"charge.refunded","created":1,
            "livemode":false,"pending_webhooks":1,"data":{"object":{"id":"ch_1","object":"charge",
            "amount":2660,"amount_refunded":1000,"currency":"usd","payment_intent":{"id":"pi_1"},
            "refunds":{"data":[]}}}}"#;
        let event = parse_event(body).unwrap();
        match TopupEvent::from_event(&event).unwrap() {
            TopupEvent::ChargeRefunded(c) => {
                assert_eq!(c.payment_intent.as_deref(), Some("pi_1"));
                assert_eq!((c.amount, c.amount_refunded), (2660, 1000));
            }
            other => panic!("{other:?}"),
        }
        let unknown =
            br#"{"id":"evt_2","type":"customer.created","created":1,"data":{"object":{}}}"#;
        assert!(matches!(
            TopupEvent::from_event(&parse_event(unknown).unwrap()).unwrap(),
            TopupEvent::Ignored
        ));
        let session = br#"{"id":"evt_3","type":"checkout.session.completed","created":1,
            "data":{"object":{"id":"cs_1","payment_status":"paid","payment_intent":null,"metadata":null}}}"#;
        assert!(matches!(
            TopupEvent::from_event(&parse_event(session).unwrap()).unwrap(),
            TopupEvent::SessionCompleted(SessionObject {
                payment_intent: None,
                ..
            })
        ));
    }
}

//! Verifying Stripe's webhook signature: `Stripe-Signature: t=<unix time>,v1=<hex>,v1=<hex>`
//! where each v1 is HMAC-SHA-256 over `"{t}.{raw body}"` under an endpoint's signing secret.
//! Several secrets may be configured (during rotation Stripe signs with the old and the new
//! one, sending several v1 values); any configured secret matching any v1 value is accepted.
//! Comparisons are constant-time; the timestamp must be within the tolerance window in either
//! direction, which bounds how long a captured request can be replayed.

use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    #[error("the Stripe-Signature header carries no v1 signature")]
    NoSignature,
    #[error("no v1 signature matches a configured webhook secret")]
    Mismatch,
    #[error("the Stripe-Signature timestamp is outside the tolerance window")]
    OutsideTolerance,
}

pub struct WebhookVerifier {
    secrets: Vec<SecretString>,
    tolerance: Duration,
}

impl std::fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("secrets", &self.secrets.len())
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl WebhookVerifier {
    pub fn new(secrets: Vec<SecretString>, tolerance: Duration) -> Self {
        WebhookVerifier { secrets, tolerance }
    }

    /// Checks `header` against `body` at `now` (unix seconds).
    pub fn verify(
        &self,
        header: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let (timestamp, signatures) = parse_header(header)?;
        let mut matched = false;
        for secret in &self.secrets {
            let expected = mac(secret.expose_secret().as_bytes(), timestamp, body);
            for sig in &signatures {
                // Evaluate every pair: the time taken does not depend on which one matched.
                matched |= bool::from(expected.as_slice().ct_eq(sig.as_slice()));
            }
        }
        if !matched {
            return Err(SignatureError::Mismatch);
        }
        if now.abs_diff(timestamp) > self.tolerance.as_secs() {
            return Err(SignatureError::OutsideTolerance);
        }
        Ok(())
    }
}

/// The header Stripe would send for `body` signed with `secret` at `timestamp`.
pub fn sign_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        to_hex(&mac(secret.as_bytes(), timestamp, body))
    )
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut m = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        // HMAC takes keys of any length; this arm cannot be reached.
        Err(_) => return Vec::new(),
    };
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

/// The timestamp and the decoded v1 signatures; other schemes (v0) are ignored, as Stripe's
/// libraries do. Signatures that are not 64 hex digits can never match and are dropped.
fn parse_header(header: &str) -> Result<(i64, Vec<Vec<u8>>), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let (key, value) = item.split_once('=').ok_or(SignatureError::Malformed)?;
        match key.trim() {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed);
                }
                timestamp = Some(
                    value
                        .trim()
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                );
            }
            "v1" => {
                if let Some(bytes) = from_hex(value.trim()).filter(|b| b.len() == 32) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::NoSignature);
    }
    Ok((timestamp, signatures))
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    s.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const NOW: i64 = 1_790_000_000;

    fn verifier(secrets: &[&str]) -> WebhookVerifier {
        WebhookVerifier::new(
            secrets
                .iter()
                .map(|s| SecretString::from(s.to_string()))
                .collect(),
            Duration::from_secs(300),
        )
    }

    #[test]
    fn matches_stripes_documented_construction() {
        // `printf '1790000000.{}' | openssl dgst -sha256 -hmac whsec_test`
        let header = sign_header("whsec_test", NOW, b"{}");
        assert_eq!(
            header,
            "t=1790000000,v1=1c2847ad1f8158a1da978f36627ac1f07f7fd027321ac9ad40bccc06743f8396"
        );
        assert!(verifier(&["whsec_test"])
            .verify(Some(&header), b"{}", NOW)
            .is_ok());
    }

    #[test]
    fn rejects_what_stripe_did_not_sign() {
        let v = verifier(&["whsec_a"]);
        let body = br#"{"id":"evt_1"}"#;
        let good = sign_header("whsec_a", NOW, body);
        assert_eq!(v.verify(None, body, NOW), Err(SignatureError::Missing));
        assert_eq!(
            v.verify(Some(&sign_header("whsec_b", NOW, body)), body, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            v.verify(Some(&good), br#"{"id":"evt_2"}"#, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            v.verify(Some(&good), body, NOW + 301),
            Err(SignatureError::OutsideTolerance)
        );
        assert_eq!(
            v.verify(Some(&good), body, NOW - 301),
            Err(SignatureError::OutsideTolerance)
        );
        assert!(v.verify(Some(&good), body, NOW + 300).is_ok());
        assert_eq!(
            v.verify(Some("v1=abcd"), body, NOW),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            v.verify(Some(&format!("t={NOW},v0=00")), body, NOW),
            Err(SignatureError::NoSignature)
        );
        assert_eq!(
            v.verify(Some("garbage"), body, NOW),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn rotation_accepts_any_secret_and_any_v1() {
        let body = b"payload";
        let old = sign_header("whsec_old", NOW, body);
        let new = sign_header("whsec_new", NOW, body);
        let both = format!("{old},v1={}", new.split_once("v1=").unwrap().1);
        assert!(verifier(&["whsec_new"])
            .verify(Some(&both), body, NOW)
            .is_ok());
        assert!(verifier(&["whsec_old", "whsec_new"])
            .verify(Some(&new), body, NOW)
            .is_ok());
        assert!(verifier(&["whsec_other"])
            .verify(Some(&both), body, NOW)
            .is_err());
    }
}

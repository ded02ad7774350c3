//! Property-based fuzzing of the Stripe webhook's input: the `Stripe-Signature` header and the
//! event body. No input may panic; a signature made with the secret always verifies, and any
//! change to the body makes it fail. Seeds are in `tests/fuzz_corpus/stripe/`;
//! `PROPTEST_CASES` sets the number of cases (default 300).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use infron_billing::topups::events::{parse_event, TopupEvent};
use infron_billing::topups::parse_amount;
use infron_billing::topups::signature::{sign_header, WebhookVerifier};
use proptest::prelude::*;
use secrecy::SecretString;

const SECRET: &str = "whsec_fuzz";
const NOW: i64 = 1_764_000_000;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(300);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let dir = format!("{}/tests/fuzz_corpus/stripe", env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(pos, op, b) in edits {
        let len = bytes.len();
        let at = if len == 0 { 0 } else { pos % len };
        match op % 4 {
            0 if len > 0 => bytes[at] = b,
            1 => bytes.insert(at.min(len), b),
            2 if len > 0 => {
                bytes.remove(at);
            }
            3 => bytes.truncate(at),
            _ => {}
        }
    }
    bytes
}

fn header_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,80}",
        (any::<i64>(), "[0-9a-fA-F]{0,70}").prop_map(|(t, s)| format!("t={t},v1={s}")),
        (any::<i64>(), "[0-9a-f]{64}").prop_map(|(t, s)| format!("t={t},v1={s},v0={s}")),
        Just("t=,v1=".to_string()),
        Just("t=1,t=2,v1=00".to_string()),
        Just(",,,==,".to_string()),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Mutated event bodies parse or are refused; parsed ones classify without panicking.
    #[test]
    fn event_bodies_never_panic(seed in 0..32usize, edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..8)) {
        let all = seeds();
        let body = mutate(all[seed % all.len()].clone(), &edits);
        if let Ok(event) = parse_event(&body) {
            if let Ok(e) = TopupEvent::from_event(&event) {
                let _ = e.object_id();
            }
        }
    }

    /// Arbitrary signature headers never panic and never verify without the secret.
    #[test]
    fn signature_headers_never_panic(header in header_text(), body in prop::collection::vec(any::<u8>(), 0..64), now in any::<i64>()) {
        let v = WebhookVerifier::new(vec![SecretString::from(SECRET)], Duration::from_secs(300));
        let ok = v.verify(Some(&header), &body, now).is_ok();
        // Only a header carrying the real MAC of this body can verify.
        if ok {
            let t: i64 = header.split(',').find_map(|i| i.strip_prefix("t=")).unwrap().trim().parse().unwrap();
            let expected = sign_header(SECRET, t, &body);
            let mac = expected.split_once(",v1=").unwrap().1;
            prop_assert!(header.to_ascii_lowercase().contains(mac));
        }
    }

    /// A correctly signed body verifies; any change to it does not.
    #[test]
    fn signed_bodies_verify_and_changed_ones_do_not(seed in 0..32usize, pos in any::<usize>(), flip in 1u8..=255, skew in -300i64..=300) {
        let all = seeds();
        let body = all[seed % all.len()].clone();
        let v = WebhookVerifier::new(vec![SecretString::from(SECRET)], Duration::from_secs(300));
        let header = sign_header(SECRET, NOW + skew, &body);
        prop_assert!(v.verify(Some(&header), &body, NOW).is_ok());
        let mut changed = body.clone();
        let i = pos % changed.len();
        changed[i] ^= flip;
        prop_assert!(v.verify(Some(&header), &changed, NOW).is_err());
    }

    /// Top-up amounts as clients send them: numbers, strings, anything.
    #[test]
    fn amounts_never_panic(literal in prop_oneof![".{0,24}", "-?[0-9]{0,30}(\\.[0-9]{0,30})?", "\"[0-9.e+-]{0,20}\""]) {
        let _ = parse_amount(&literal);
    }
}

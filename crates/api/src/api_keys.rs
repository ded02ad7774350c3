//! API key format: `sk-inf-v1-` + 40 random base62 characters (~238 bits) + a 6-character
//! base62 CRC-32 checksum of everything before it. The checksum lets look-alikes be refused
//! before any lookup; only HMAC-SHA-256(server secret, key) is stored.

use hmac::{Hmac, Mac};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

pub const PREFIX: &str = "sk-inf-v1-";
const BODY_LEN: usize = 40;
const CHECK_LEN: usize = 6;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A syntactically valid key (prefix, length, alphabet, checksum all verified).
pub struct ApiKey(SecretString);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey({})", self.hint())
    }
}

fn checksum(s: &str) -> String {
    let mut n = crc32fast::hash(s.as_bytes()) as u64;
    let mut out = [b'0'; CHECK_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl ApiKey {
    pub fn generate() -> ApiKey {
        let mut rng = rand::rngs::OsRng;
        let body: String = (0..BODY_LEN)
            .map(|_| ALPHABET[rng.gen_range(0..62)] as char)
            .collect();
        let head = format!("{PREFIX}{body}");
        let check = checksum(&head);
        ApiKey(SecretString::from(format!("{head}{check}")))
    }

    pub fn parse(s: &str) -> Option<ApiKey> {
        let rest = s.strip_prefix(PREFIX)?;
        if rest.len() != BODY_LEN + CHECK_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let (head, check) = s.split_at(s.len() - CHECK_LEN);
        if checksum(head) != check {
            return None;
        }
        Some(ApiKey(SecretString::from(s.to_string())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Safe to show and store: the prefix and the last four characters.
    pub fn hint(&self) -> String {
        let s = self.0.expose_secret();
        format!("{PREFIX}...{}", &s[s.len().saturating_sub(4)..])
    }

    pub fn hash(&self, secret: &SecretString) -> [u8; 32] {
        // HMAC accepts keys of any length; new_from_slice cannot fail for it.
        let mut mac = match Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) {
            Ok(m) => m,
            Err(_) => return [0; 32],
        };
        mac.update(self.0.expose_secret().as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn generated_keys_parse_and_look_alikes_do_not() {
        let k = ApiKey::generate();
        let s = k.expose().to_string();
        assert_eq!(s.len(), PREFIX.len() + BODY_LEN + CHECK_LEN);
        assert!(ApiKey::parse(&s).is_some());
        // Flip one character of the body: the checksum catches it.
        let mut bytes = s.clone().into_bytes();
        let i = PREFIX.len() + 3;
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        assert!(ApiKey::parse(&String::from_utf8(bytes).unwrap()).is_none());
        assert!(ApiKey::parse("sk-inf-v1-short").is_none());
        assert!(ApiKey::parse(&s.replace("sk-inf-v1-", "sk-abc-v1-")).is_none());
        assert!(!format!("{k:?}").contains(&s[PREFIX.len()..PREFIX.len() + 10]));
    }

    #[test]
    fn hash_depends_on_secret() {
        let k = ApiKey::generate();
        let a = k.hash(&SecretString::from("a".repeat(32)));
        let b = k.hash(&SecretString::from("b".repeat(32)));
        assert_ne!(a, b);
        assert_eq!(a, k.hash(&SecretString::from("a".repeat(32))));
    }
}

//! Password hashing: argon2id with the crate's defaults (19 MiB, 2 passes), run on the
//! blocking pool so hashing never stalls the async workers.

use std::sync::LazyLock;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};

use crate::error::{AccountsError, Result};
use crate::types::Password;

/// A hash of a random password, verified against when the email is unknown so that the
/// answer takes as long as for a real account.
static DUMMY: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    let random: [u8; 16] = rand::random();
    Argon2::default()
        .hash_password(&random, &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
});

pub async fn hash(password: &Password) -> Result<String> {
    let plain = password.expose().to_string();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(plain.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AccountsError::Internal(format!("password hashing failed: {e}")))
    })
    .await
    .map_err(|e| AccountsError::Internal(format!("password hashing task failed: {e}")))?
}

/// True when `password` matches `stored` (a PHC string). With `stored` None (no such user),
/// a dummy hash is verified instead and the answer is false.
pub async fn verify(password: &Password, stored: Option<&str>) -> Result<bool> {
    let plain = password.expose().to_string();
    let real = stored.is_some();
    let phc = stored.map_or_else(|| DUMMY.clone(), str::to_string);
    tokio::task::spawn_blocking(move || {
        let ok = match PasswordHash::new(&phc) {
            Ok(parsed) => Argon2::default()
                .verify_password(plain.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        };
        ok && real
    })
    .await
    .map_err(|e| AccountsError::Internal(format!("password check task failed: {e}")))
}

/// Warms the dummy hash (done once at start, so the first unknown-email sign-in is not
/// measurably slower than later ones).
pub fn warm_up() {
    LazyLock::force(&DUMMY);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_never_match() {
        let p = Password::parse("password", "correct horse battery").unwrap();
        let h = hash(&p).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("correct"));
        assert!(verify(&p, Some(&h)).await.unwrap());
        let wrong = Password::offered("wrong horse battery");
        assert!(!verify(&wrong, Some(&h)).await.unwrap());
        assert!(!verify(&p, None).await.unwrap());
        assert!(!verify(&p, Some("not a phc string")).await.unwrap());
    }
}

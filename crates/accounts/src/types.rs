//! Parsed domain values: once constructed, an `Email`, `Password` or `Role` is valid.

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::AccountsError;

/// A lower-cased email address of a plausible shape (one `@`, a dot in the domain, no spaces).
/// Whether it receives mail is proven by the verification link, not here.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &'static str, s: &str) -> Result<Email, AccountsError> {
        let s = s.trim().to_lowercase();
        let bad = || AccountsError::invalid(field, format!("'{s}' is not an email address"));
        if s.len() < 3 || s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || local.len() > 64
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err(bad());
        }
        Ok(Email(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password that meets the length rules. Never printed, never logged.
pub struct Password(SecretString);

pub const PASSWORD_MIN_CHARS: usize = 10;
/// Bounds the hashing work a request can cause; passphrases fit comfortably.
pub const PASSWORD_MAX_CHARS: usize = 256;

impl Password {
    pub fn parse(field: &'static str, s: &str) -> Result<Password, AccountsError> {
        let n = s.chars().count();
        if n < PASSWORD_MIN_CHARS {
            return Err(AccountsError::invalid(
                field,
                format!("the password must have at least {PASSWORD_MIN_CHARS} characters"),
            ));
        }
        if n > PASSWORD_MAX_CHARS {
            return Err(AccountsError::invalid(
                field,
                format!("the password must have at most {PASSWORD_MAX_CHARS} characters"),
            ));
        }
        if s.trim().is_empty() {
            return Err(AccountsError::invalid(
                field,
                "the password must not be blank",
            ));
        }
        Ok(Password(SecretString::from(s.to_string())))
    }

    /// A password offered at sign-in: only bounded, so a huge body cannot cost a huge hash.
    pub fn offered(s: &str) -> Password {
        let bounded: String = s.chars().take(PASSWORD_MAX_CHARS + 1).collect();
        Password(SecretString::from(bounded))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A member's role in an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
    /// Read-only on credits, activity and logs.
    Billing,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Billing];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Billing => "billing",
        }
    }

    /// Owners and admins administer the whole account.
    pub fn administers(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            "billing" => Ok(Role::Billing),
            other => Err(format!(
                "'{other}' is not a role (owner, admin, member or billing)"
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// Calls models.
    Inference,
    /// Administers the account's inference keys and reads its usage; cannot call models.
    Management,
    /// Reads keys and usage; changes nothing.
    ManagementRead,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Inference => "inference",
            KeyKind::Management => "management",
            KeyKind::ManagementRead => "management_read",
        }
    }

    pub fn is_management(self) -> bool {
        !matches!(self, KeyKind::Inference)
    }
}

impl FromStr for KeyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<KeyKind, String> {
        match s {
            "inference" => Ok(KeyKind::Inference),
            "management" => Ok(KeyKind::Management),
            "management_read" => Ok(KeyKind::ManagementRead),
            other => Err(format!(
                "'{other}' is not a key kind (inference, management or management_read)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            Email::parse("email", " Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@@example.com",
            "ada@example..com",
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn password_length_rules() {
        assert!(Password::parse("password", "short").is_err());
        assert!(Password::parse("password", &"x".repeat(257)).is_err());
        assert!(Password::parse("password", "          ").is_err());
        let p = Password::parse("password", "correct horse").unwrap();
        assert_eq!(format!("{p:?}"), "Password(***)");
    }

    #[test]
    fn roles_and_kinds_round_trip() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("root".parse::<Role>().is_err());
        assert_eq!(
            "management_read".parse::<KeyKind>().unwrap(),
            KeyKind::ManagementRead
        );
    }
}

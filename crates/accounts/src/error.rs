use thiserror::Error;

/// Everything the tenant rules can refuse, and the failures beneath them. Mapped to HTTP in
/// one place (`infron_api::error`).
#[derive(Debug, Error)]
pub enum AccountsError {
    /// Bad input: names the field; nothing was changed.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller may see the thing but not do this to it.
    #[error("{0}")]
    Forbidden(String),
    /// Unknown, or belonging to another account: the same answer, so nothing can be enumerated.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("too many attempts; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error("the email could not be sent: {0}")]
    Mail(String),
    #[error(transparent)]
    Store(#[from] infron_store::StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AccountsError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        AccountsError::Invalid {
            field,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        AccountsError::Forbidden(message.into())
    }
}

impl From<sqlx::Error> for AccountsError {
    fn from(e: sqlx::Error) -> Self {
        AccountsError::Store(e.into())
    }
}

pub type Result<T> = std::result::Result<T, AccountsError>;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    /// One Redis failure reported to every operation of a batch.
    #[error("redis error: {0}")]
    Shared(std::sync::Arc<redis::RedisError>),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    #[error("configuration error: {0}")]
    Config(String),
}

impl StoreError {
    /// True when the error means a dependency is unreachable rather than a bad query.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(e) => matches!(
                e,
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
            ),
            StoreError::Redis(e) => redis_unavailable(e),
            StoreError::Shared(e) => redis_unavailable(e),
            _ => false,
        }
    }
}

fn redis_unavailable(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.kind() == redis::ErrorKind::ClusterConnectionNotFound
}

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::StoreError;

pub type RedisPool = deadpool_redis::Pool;

pub async fn connect_postgres(url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    let options: PgConnectOptions = url.parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
    Ok(pool)
}

pub fn connect_redis(url: &str, max_size: usize) -> Result<RedisPool, StoreError> {
    let mut cfg = deadpool_redis::Config::from_url(url);
    cfg.pool = Some(deadpool_redis::PoolConfig {
        max_size,
        timeouts: deadpool_redis::Timeouts {
            wait: Some(Duration::from_secs(2)),
            create: Some(Duration::from_secs(2)),
            recycle: Some(Duration::from_secs(2)),
        },
        ..Default::default()
    });
    Ok(cfg.create_pool(Some(deadpool_redis::Runtime::Tokio1))?)
}

/// Applies pending migrations and makes sure request-log partitions exist for the coming months.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    crate::MIGRATOR.run(pool).await?;
    ensure_partitions(pool).await
}

pub async fn ensure_partitions(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::query("SELECT infron_ensure_request_log_partitions(2)")
        .execute(pool)
        .await?;
    Ok(())
}

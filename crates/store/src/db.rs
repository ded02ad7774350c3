use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::redis_conn::{RedisConn, RedisTarget};
use crate::StoreError;

pub async fn connect_postgres(url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    let options: PgConnectOptions = url.parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// The shared Redis connection for sessions, throttling, health and the response cache: one
/// multiplexed connection (to a server or a cluster, see [`RedisTarget`]) that reconnects by
/// itself.
pub async fn connect_redis(url: &str) -> Result<RedisConn, StoreError> {
    RedisConn::connect(&RedisTarget::parse(url)?).await
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

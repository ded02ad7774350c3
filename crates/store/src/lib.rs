//! Storage for Infron: the Postgres pool and its queries, the Redis pool and its scripts.
//!
//! This crate knows how rows and keys are laid out; it holds no business rule. Amounts are
//! plain `Decimal` (USD, scale 12) in Postgres and integer pico-dollars in Redis; the billing
//! crate owns what they mean.

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod auto_topup;
pub mod copy;
pub mod db;
pub mod error;
pub mod hot;
pub mod keys;
pub mod ledger;
pub mod lots;
pub mod members;
pub mod redis_conn;
pub mod request_logs;
pub mod sessions;
pub mod topups;
pub mod usage_reads;
pub mod users;

pub use db::{connect_postgres, connect_redis, migrate};
pub use error::StoreError;
pub use redis_conn::RedisConn;
pub use sqlx::PgPool;

/// Runs the embedded migrations and creates upcoming request-log partitions.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

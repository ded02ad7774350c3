//! One Redis connection that reconnects by itself, to a single server or to a Redis Cluster.
//!
//! The money path talks to Redis through these (multiplexed, pipelined) connections rather than
//! a pool: the request path's operations are batched into few large script calls, so one
//! connection carries them all. Anything that blocks (the journal reader's `XREADGROUP BLOCK`)
//! gets a connection of its own, since a blocked connection delays every command behind it.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::StoreError;

/// Where Redis is: one server (`redis://…`), or a cluster (`redis+cluster://host:port,host:port`,
/// any reachable nodes; the rest are discovered).
#[derive(Debug, Clone)]
pub enum RedisTarget {
    Single(String),
    Cluster(Vec<String>),
}

impl RedisTarget {
    pub fn parse(url: &str) -> Result<RedisTarget, StoreError> {
        for scheme in ["redis+cluster://", "rediss+cluster://"] {
            if let Some(rest) = url.strip_prefix(scheme) {
                let tls = scheme.starts_with("rediss");
                let (auth, hosts) = match rest.rsplit_once('@') {
                    Some((a, h)) => (format!("{a}@"), h),
                    None => (String::new(), rest),
                };
                let nodes: Vec<String> = hosts
                    .split(',')
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                    .map(|h| {
                        let h = h.trim_end_matches('/');
                        format!("{}://{auth}{h}", if tls { "rediss" } else { "redis" })
                    })
                    .collect();
                if nodes.is_empty() {
                    return Err(StoreError::Config(
                        "a redis+cluster:// URL names no node".into(),
                    ));
                }
                return Ok(RedisTarget::Cluster(nodes));
            }
        }
        Ok(RedisTarget::Single(url.to_string()))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisTarget::Cluster(_))
    }
}

/// A cheap-to-clone handle on one connection (clones share it).
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// How long one command may wait for its reply before it fails (the connection reconnects).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

impl RedisConn {
    pub async fn connect(target: &RedisTarget) -> Result<RedisConn, StoreError> {
        Self::connect_with(target, RESPONSE_TIMEOUT).await
    }

    /// A connection whose commands may block for up to `block` on the server (`BLOCK` reads).
    pub async fn connect_blocking(
        target: &RedisTarget,
        block: Duration,
    ) -> Result<RedisConn, StoreError> {
        Self::connect_with(target, RESPONSE_TIMEOUT + block).await
    }

    async fn connect_with(
        target: &RedisTarget,
        response_timeout: Duration,
    ) -> Result<RedisConn, StoreError> {
        match target {
            RedisTarget::Single(url) => {
                let client = redis::Client::open(url.as_str())?;
                let config = ConnectionManagerConfig::new()
                    .set_response_timeout(response_timeout)
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_number_of_retries(2)
                    .set_max_delay(500);
                let manager = ConnectionManager::new_with_config(client, config).await?;
                Ok(RedisConn::Single(manager))
            }
            RedisTarget::Cluster(nodes) => {
                let client = redis::cluster::ClusterClient::builder(nodes.clone())
                    .response_timeout(response_timeout)
                    .connection_timeout(CONNECT_TIMEOUT)
                    .build()?;
                Ok(RedisConn::Cluster(client.get_async_connection().await?))
            }
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisConn::Cluster(_))
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(cmd, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}

//! Fault tests: the real `infron` binary against real Postgres and Redis, with one failure at
//! a time injected (Postgres cut off, Redis restarted empty, the process killed, SIGTERM during
//! long streams, a key disabled under two instances). Each checks that no answered request
//! lost its charge and ends with `infron ledger verify` clean.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod harness;

mod cluster;
mod crash;
mod operations;
mod postgres_outage;
mod redis_loss;
mod revocation;
mod shutdown;
mod traces;
mod verify;

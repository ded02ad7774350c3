//! Money and its movements: exact USD amounts, prices, the cost of a usage, the top-up fee,
//! holds and settlements on the hot balance, and the ledger writer that posts settlements to
//! Postgres.

pub mod error;
pub mod expiry;
pub mod fees;
pub mod grants;
pub mod hot;
pub mod limits;
pub mod money;
pub mod pricing;
pub mod reconcile;
pub mod record;
pub mod reversals;
pub mod topups;
pub mod writer;

pub use error::BillingError;
pub use hot::{Hold, HotLedger, HotLedgerConfig, Settled};
pub use money::{TokenPrice, Usd};
pub use pricing::{CostBreakdown, Prices, Usage};
pub use record::{FailedAttempt, SettlementRecord};

//! Money and its movements: exact USD amounts, prices, the cost of a usage, the top-up fee,
//! reservations against the hot balance, settlement, and the ledger writer that posts
//! settlements to Postgres.

pub mod error;
pub mod expiry;
pub mod fees;
pub mod grants;
pub mod limits;
pub mod money;
pub mod pricing;
pub mod reservation;
pub mod reversals;
pub mod settlement;
pub mod topups;
pub mod writer;

pub use error::BillingError;
pub use money::{TokenPrice, Usd};
pub use pricing::{CostBreakdown, Prices, Usage};

//! Producer ids, idempotent sequences and transactions.

pub mod coordinator;
#[cfg(test)]
mod coordinator_tests;
pub mod markers;
pub mod partition_txns;
pub mod producer_ids;
pub mod producer_state;
pub mod store;

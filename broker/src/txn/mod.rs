//! Producer ids, idempotent sequences and transactions.

pub(crate) mod coordinator;
#[cfg(test)]
mod coordinator_tests;
pub(crate) mod markers;
pub(crate) mod partition_txns;
pub(crate) mod producer_ids;
pub(crate) mod producer_state;
pub(crate) mod store;

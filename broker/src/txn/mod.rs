//! Producer ids and idempotent sequences (transactions come later).

pub mod producer_ids;
pub mod producer_state;

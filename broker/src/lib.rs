//! agentbus-broker: a Kafka-wire-compatible broker.
//!
//! Layers, each a module: `net` (TCP, frames) → [`protocol`] (decode, dispatch, encode)
//! → `handlers` (one module per API family) → [`state`] (topics, partitions) → [`log`]
//! (record batches on memory or disk) and [`meta`] (durable topic metadata).

pub mod clock;
pub mod cluster;
pub mod config;
pub mod faults;
pub mod group;
mod handlers;
pub mod log;
pub mod meta;
mod net;
pub mod protocol;
mod server;
pub mod state;
pub mod topic_config;
pub mod txn;

pub use config::{BrokerConfig, ConfigError, StorageConfig};
pub use server::{Broker, StartError};

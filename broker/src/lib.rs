//! agentbus-broker: a Kafka-wire-compatible broker.
//!
//! The house, bottom up. A module imports only from the floors below its own, never from
//! its own floor or above (the test `tests/layers.rs` reads the imports and fails otherwise):
//!
//! ```text
//! 5  net, server               TCP connections and frames; listeners and the ticker
//! 4  service                   one request: decode → injected faults → handler → encode
//! 3  handlers                  one module per API family
//! 2  state                     topic registry, partitions; carries out what the
//!                              coordinators decide (transaction markers, offsets)
//! 1  group, txn                state machines: group coordinator, transaction
//!                              coordinator and producer state, each with its store
//! 0  clock, config, cluster,   leaves: time; settings; the presented cluster; test faults;
//!    faults, log, meta,        record batches on memory or disk; the metadata store engine
//!    protocol, topic_config    (tables of rows, memory or redb); the wire codec; topic configs
//! ```
//! On floor 0 the only arrows are `log` → `clock`, `config` → `log`, `topic_config` →
//! `config`/`log`. "Never" rules that matter most: `log`, `meta` and `protocol` know no
//! broker state; the state machines know neither `state` nor the wire (`net`, `service`);
//! `group` and `txn` do not import each other, except that `txn` uses `group`'s stored
//! offset type.

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
pub mod service;
pub mod state;
pub mod topic_config;
pub mod txn;

pub use config::{BrokerConfig, ConfigError, StorageConfig};
pub use server::{Broker, StartError};

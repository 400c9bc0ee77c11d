//! agentbus-broker: a Kafka-wire-compatible broker.
//!
//! The house, bottom up. A module imports only from the floors below its own, never from
//! its own floor or above (the test `tests/layers.rs` reads the imports and fails otherwise):
//!
//! ```text
//! 5  net, server               TCP connections and frames; listeners and the ticker
//! 4  service                   one request: decode → injected faults → handler → encode
//! 3  handlers                  one module per API family
//!    inspect                   what tests and tools may see of a running broker
//! 2  state                     topic registry, partitions; carries out what the
//!                              coordinators decide (transaction markers, offsets)
//! 1  group, txn                state machines: group coordinator, transaction
//!                              coordinator and producer state, each with its store
//!    security                  authentication: TLS, SASL exchanges, SCRAM credentials
//! 0  clock, config, cluster,   leaves: time; settings; the presented cluster; test faults;
//!    faults, log, meta,        record batches on memory or disk; the metadata store engine
//!    protocol, topic_config    (tables of rows, memory or redb); the wire codec; topic configs
//! ```
//! On floor 0 the only arrows are `log` → `clock`, `config` → `log`, `topic_config` →
//! `config`/`log`. "Never" rules that matter most: `log`, `meta` and `protocol` know no
//! broker state; the state machines know neither `state` nor the wire (`net`, `service`);
//! `group` and `txn` do not import each other, except that `txn` uses `group`'s stored
//! offset type.
//!
//! Everything is `pub(crate)` but the few types re-exported below: starting a broker
//! (`Broker`, its config), and looking at it (`Inspector` and the values it returns).

mod broker_config;
mod clock;
mod cluster;
mod config;
mod faults;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod group;
mod handlers;
mod inspect;
mod log;
mod meta;
mod net;
mod protocol;
mod security;
mod server;
mod service;
mod state;
mod topic_config;
mod txn;

pub use config::{
    operation_code, operation_name, parse_acl, parse_authorizer, parse_listener_mechanisms,
    parse_mechanisms, parse_resource, parse_scram_users, parse_super_users, AclRule, BrokerConfig,
    ClientAuth, CompressionLevels, ConfigError, FileConfig, GroupConfig, IpOverrides, Listener,
    LogLevels, Mechanism, SecurityConfig, SecurityProtocol, StorageConfig,
};
pub use faults::{Fault, InjectedFault, RecordedRequest};
pub use group::{GroupState, GroupSummary, MemberInfo};
pub use inspect::{Authentications, Inspector, NodeInfo, StoredRecord, TopicInfo, TransactionInfo};
pub use log::LogConfig;
pub use protocol::{releases_table_markdown, supported_table_markdown};
pub use security::TlsError;
pub use server::{Broker, StartError};
pub use state::{Offsets, TopicError};

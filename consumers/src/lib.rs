//! The consumer runtime every agentbus consumer group runs on, and the db-writer.
//!
//! ```text
//! rdkafka consumer ─► decode+validate ─► batch (100 events / 500 ms) ─► Sink::write(batch, offsets)
//!         │                 │ failure                                      │
//!         │                 └──────────► DLQ topic (original bytes + error headers)
//!         └── on partition assignment: seek to the sink's own stored offsets
//! ```
//!
//! - [`runtime`]: the loop, rebalances, pausing on infrastructure errors, shutdown;
//! - [`sink`]: what a consumer group plugs in;
//! - [`dlq`]: dead letters with Kafka Connect's error headers;
//! - [`metrics`] and [`http`]: `/health`, `/ready`, `/metrics`, `/metrics.json`;
//! - [`db_writer`]: the PostgreSQL sink (`agentbus consume db-writer`).

pub mod config;
pub mod db_writer;
pub mod dlq;
pub mod http;
pub mod metrics;
mod pipeline;
pub mod runtime;
pub mod sink;

pub use config::{ConfigError, RuntimeConfig};
pub use runtime::{run, RuntimeError};
pub use sink::{Record, Sink, SinkError, WriteOutcome};

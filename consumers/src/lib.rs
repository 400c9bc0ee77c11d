//! The consumer runtime every agentbus consumer group runs on, and the sinks.
//!
//! ```text
//! rdkafka consumer ─► decode+validate ─► batch (100 events / 500 ms) ─► Sink::write(batch)
//!         │                 │ failure                                      │
//!         │                 └──────────► DLQ topic (original bytes + error headers)
//!         └── on assignment: paused until positioned at the sink's own stored offsets
//! ```
//!
//! - [`runtime`]: the loop, rebalances, pausing on infrastructure errors, shutdown,
//!   several groups behind one HTTP listener ([`Service`]);
//! - [`sink`]: what a consumer group plugs in, and where its offsets live;
//! - [`dlq`]: dead letters with Kafka Connect's error headers;
//! - [`metrics`] and [`http`]: `/health`, `/ready`, `/metrics`, `/metrics.json`;
//! - [`db_writer`]: the PostgreSQL sink (`agentbus consume db-writer`);
//! - [`metrics_aggregator`]: windows and rollups in Redis
//!   (`agentbus consume metrics-aggregator`);
//! - [`audit_logger`]: the Parquet archive (`agentbus consume audit-logger`);
//! - [`pattern_extractor`]: templates and fix suggestions through Kafka transactions
//!   (`agentbus consume pattern-extractor`);
//! - [`alert_manager`]: threshold alerts through Kafka transactions, delivered to
//!   PagerDuty, Slack and webhooks (`agentbus consume alert-manager`).

pub mod alert_manager;
pub mod audit_logger;
mod batch;
mod changelog;
mod commits;
pub mod config;
pub mod db_writer;
pub mod dlq;
pub mod http;
pub mod metrics;
pub mod metrics_aggregator;
pub mod pattern_extractor;
mod pipeline;
mod positions;
mod rebalance;
pub mod runtime;
pub mod sink;
pub mod start;
pub mod topic_ids;
mod txn;
pub mod wire;

pub use config::{ConfigError, RuntimeConfig};
pub use positions::OtherLog;
pub use runtime::{run, RuntimeError, Service};
pub use sink::{
    Batch, OffsetStore, Range, Record, Revocation, Sink, SinkError, StoredOffset, TopicPartition,
    WriteOutcome,
};
pub use start::StartFrom;

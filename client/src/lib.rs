//! The agent-observability pipeline's typed contract and producer.
//!
//! - [`events`]: one serde type per topic with exactly the seeds' fields, decoding that
//!   names the offending field, and value checks ([`validate`]);
//! - [`schema`]: the JSON Schema of each type, generated from the code;
//! - [`catalog`]: partitions, retention, replication and partition key of each topic;
//! - [`config`] and [`producer`]: an idempotent librdkafka producer configured from the
//!   seeds' environment variables;
//! - [`examples`]: the seeds' example event of each topic;
//! - [`kafka_props`]: the properties (security) every Kafka client of the process gets.

pub mod alert;
pub mod catalog;
pub mod config;
pub mod derived;
pub mod events;
pub mod examples;
pub mod kafka_props;
pub mod producer;
pub mod schema;
pub mod spool;
pub mod validate;

pub use catalog::TopicSpec;
pub use config::{ConfigError, ProducerConfig};
pub use events::{AnyEvent, Event, EventError, Topic};
pub use producer::{Delivery, Pending, Producer, PublishError};
pub use validate::{Id, Timestamp, ValidationError};

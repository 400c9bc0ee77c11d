//! The metrics-aggregator (`agentbus consume metrics-aggregator`, group
//! `metrics-group`): tumbling windows of `WINDOW_SIZE_SECONDS` by the events' own
//! timestamps, rollups of 1 min, 5 min and 1 h, per topic and per agent, in Redis;
//! and the seeds' rolling counts (`metrics:routing:count:5min`).
//!
//! Effectively once: each partition batch is one Lua script ([`apply.lua`]) that
//! applies the batch's summed increments and moves that partition's stored offset,
//! only when the stored offset is where the batch begins. A replay changes nothing;
//! a Redis that lost writes makes the runtime read again from what it holds.

pub mod aggregate;
pub mod keys;
pub mod query;
mod redis_sink;

pub use keys::{short_name, topic_named, Keys, Resolution};
pub use redis_sink::{RedisSettings, RedisSink};

/// The consumer group's default name (seeds).
pub const GROUP: &str = "metrics-group";

//! What an event adds to its buckets: a count, latency figures (count, sum, min, max
//! and a fixed-bucket histogram), outcomes, quality scores. A batch's contributions
//! are summed here first, so that one script call per partition applies them.

use super::keys::{Keys, Resolution, AGENTS_TTL};
use crate::sink::Record;
use agentbus_client::AnyEvent;
use std::collections::BTreeMap;

/// Upper bounds (ms) of the latency histogram; the last bucket is `+Inf`.
pub const LATENCY_BUCKETS: [u64; 13] = [
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000,
];

/// Quality scores are summed in millionths, so that sums are exact whatever the order.
pub const QUALITY_SCALE: f64 = 1_000_000.0;

/// What one event says, before it is spread over its buckets.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts<'a> {
    /// The agent it names.
    pub agent: Option<&'a str>,
    /// Latency fields: (field name, milliseconds).
    pub latencies: Vec<(&'static str, u64)>,
    /// Whether it succeeded, where the event has an outcome.
    pub success: Option<bool>,
    /// A quality score `0..=1`.
    pub quality: Option<f64>,
    /// A router cache hit.
    pub cache_hit: Option<bool>,
}

/// The facts of `event`.
pub fn facts(event: &AnyEvent) -> Facts<'_> {
    let mut f = Facts::default();
    match event {
        AnyEvent::AgentAction(e) => {
            f.agent = Some(&e.agent_name);
            f.latencies
                .extend(e.duration_ms.map(|d| ("duration_ms", d)));
        }
        AnyEvent::RoutingDecision(e) => {
            f.agent = Some(&e.selected_agent);
            f.latencies.push(("routing_time_ms", e.routing_time_ms));
        }
        AnyEvent::Transformation(e) => {
            f.agent = Some(&e.target_agent);
            f.latencies
                .push(("transformation_duration_ms", e.transformation_duration_ms));
            f.success = Some(e.success);
        }
        AnyEvent::RouterMetric(e) => {
            f.latencies
                .push(("routing_duration_ms", e.routing_duration_ms));
            f.cache_hit = Some(e.cache_hit);
        }
        AnyEvent::TaskExecution(e) => {
            f.agent = Some(&e.agent_name);
            f.latencies.push(("total_duration_ms", e.total_duration_ms));
            f.success = Some(e.success);
            f.quality = e.quality_score;
        }
        AnyEvent::CodeQuality(e) => f.quality = Some(e.quality_score),
        AnyEvent::SuccessPattern(e) => {
            f.latencies.extend(
                e.estimated_duration_ms
                    .map(|d| ("estimated_duration_ms", d)),
            );
        }
        AnyEvent::FailurePattern(e) => {
            f.latencies
                .extend(e.time_to_resolve_ms.map(|d| ("time_to_resolve_ms", d)));
        }
    }
    f
}

/// The histogram bucket of `ms`: the index of the first bound at or above it.
pub fn latency_bucket(ms: u64) -> usize {
    LATENCY_BUCKETS
        .iter()
        .position(|b| ms <= *b)
        .unwrap_or(LATENCY_BUCKETS.len())
}

/// An update of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Add.
    Incr(i64),
    /// Keep the smaller.
    Min(i64),
    /// Keep the larger.
    Max(i64),
}

impl Op {
    fn merge(&mut self, other: Op) {
        *self = match (*self, other) {
            (Op::Incr(a), Op::Incr(b)) => Op::Incr(a.saturating_add(b)),
            (Op::Min(a), Op::Min(b)) => Op::Min(a.min(b)),
            (Op::Max(a), Op::Max(b)) => Op::Max(a.max(b)),
            (_, b) => b,
        };
    }

    /// The script's code and value.
    pub fn code(self) -> (&'static str, i64) {
        match self {
            Op::Incr(v) => ("i", v),
            Op::Min(v) => ("n", v),
            Op::Max(v) => ("x", v),
        }
    }
}

/// The summed updates of one partition batch: per key, its TTL and its fields; and
/// the members to add to sets.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Deltas {
    /// Hash key → (TTL seconds, field → update).
    pub hashes: BTreeMap<String, (i64, BTreeMap<String, Op>)>,
    /// Set key → members.
    pub sets: BTreeMap<String, std::collections::BTreeSet<String>>,
}

impl Deltas {
    fn update(&mut self, key: &str, ttl: i64, field: String, op: Op) {
        let entry = match self.hashes.get_mut(key) {
            Some(e) => e,
            None => self
                .hashes
                .entry(key.to_string())
                .or_insert_with(|| (ttl, BTreeMap::new())),
        };
        entry
            .1
            .entry(field)
            .and_modify(|o| o.merge(op))
            .or_insert(op);
    }

    /// Adds one record's contributions to every bucket it falls in.
    pub fn add(&mut self, keys: &Keys, window: u32, record: &Record) {
        let topic = record.topic;
        let ms = record
            .event
            .timestamp_millis()
            .or(record.timestamp)
            .unwrap_or(0);
        let f = facts(&record.event);
        if let Some(agent) = f.agent {
            self.sets
                .entry(keys.agents(topic))
                .or_default()
                .insert(agent.to_string());
        }
        for res in Resolution::all(window) {
            let start = res.bucket(ms);
            let ttl = res.ttl_seconds();
            let series = std::iter::once(None).chain(f.agent.map(Some));
            for agent in series {
                let key = keys.bucket(topic, agent, res, start);
                self.update(&key, ttl, "count".into(), Op::Incr(1));
                for (name, v) in &f.latencies {
                    let v = i64::try_from(*v).unwrap_or(i64::MAX);
                    self.update(&key, ttl, format!("{name}:count"), Op::Incr(1));
                    self.update(&key, ttl, format!("{name}:sum"), Op::Incr(v));
                    self.update(&key, ttl, format!("{name}:min"), Op::Min(v));
                    self.update(&key, ttl, format!("{name}:max"), Op::Max(v));
                    let b = latency_bucket(v as u64);
                    self.update(&key, ttl, format!("{name}:b{b}"), Op::Incr(1));
                }
                if let Some(ok) = f.success {
                    let field = if ok { "success" } else { "failure" };
                    self.update(&key, ttl, field.into(), Op::Incr(1));
                }
                if let Some(q) = f.quality {
                    self.update(&key, ttl, "quality:count".into(), Op::Incr(1));
                    let micro = (q * QUALITY_SCALE).round() as i64;
                    self.update(&key, ttl, "quality:sum_micro".into(), Op::Incr(micro));
                }
                if f.cache_hit == Some(true) {
                    self.update(&key, ttl, "cache_hit".into(), Op::Incr(1));
                }
            }
        }
    }

    /// TTL of a set key.
    pub fn set_ttl() -> i64 {
        AGENTS_TTL
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentbus_client::{examples, Topic};

    fn record(topic: Topic) -> Record {
        let json = examples::json(topic).to_string();
        Record {
            topic,
            partition: 0,
            offset: 0,
            event: AnyEvent::decode(topic, json.as_bytes()).unwrap(),
            json,
            key: None,
            timestamp: None,
            headers: Vec::new(),
        }
    }

    #[test]
    fn a_task_execution_counts_in_every_resolution_and_for_its_agent() {
        let mut d = Deltas::default();
        let r = record(Topic::TaskExecutions);
        d.add(&Keys::new(""), 5, &r);
        d.add(&Keys::new(""), 5, &r);
        // 4 resolutions, topic and agent.
        assert_eq!(d.hashes.len(), 8);
        let ms = r.event.timestamp_millis().unwrap();
        let key = Keys::new("").bucket(
            Topic::TaskExecutions,
            None,
            Resolution::Window(5),
            Resolution::Window(5).bucket(ms),
        );
        let (ttl, fields) = &d.hashes[&key];
        assert_eq!(*ttl, 86_400);
        assert_eq!(fields["count"], Op::Incr(2));
        assert_eq!(fields["success"], Op::Incr(2));
        assert_eq!(fields["total_duration_ms:sum"], Op::Incr(2 * 15_400));
        assert_eq!(fields["total_duration_ms:min"], Op::Min(15_400));
        assert_eq!(fields["total_duration_ms:b11"], Op::Incr(2));
        assert_eq!(fields["quality:sum_micro"], Op::Incr(2 * 920_000));
    }

    #[test]
    fn latency_buckets_are_upper_bounds() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(5), 0);
        assert_eq!(latency_bucket(6), 1);
        assert_eq!(latency_bucket(60_000), 12);
        assert_eq!(latency_bucket(60_001), 13);
    }
}

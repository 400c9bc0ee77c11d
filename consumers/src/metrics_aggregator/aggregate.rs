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
        // The derived topics are not among the aggregator's inputs.
        AnyEvent::PatternTemplate(_) | AnyEvent::FixSuggestion(_) | AnyEvent::Alert(_) => {}
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

/// The latency figures of one field in one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// Events that had the field.
    pub count: i64,
    /// Sum (ms).
    pub sum: i64,
    /// Smallest (ms).
    pub min: i64,
    /// Largest (ms).
    pub max: i64,
    /// Events per histogram bucket ([`LATENCY_BUCKETS`], then `+Inf`).
    pub buckets: [i64; LATENCY_BUCKETS.len() + 1],
}

impl Latency {
    fn new() -> Self {
        Self {
            count: 0,
            sum: 0,
            min: i64::MAX,
            max: i64::MIN,
            buckets: [0; LATENCY_BUCKETS.len() + 1],
        }
    }

    fn add(&mut self, ms: u64) {
        let v = i64::try_from(ms).unwrap_or(i64::MAX);
        self.count += 1;
        self.sum = self.sum.saturating_add(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.buckets[latency_bucket(ms)] += 1;
    }
}

/// What a batch adds to one bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields {
    /// Events.
    pub count: i64,
    /// Latency fields by name.
    pub latency: BTreeMap<&'static str, Latency>,
    /// Successes.
    pub success: i64,
    /// Failures.
    pub failure: i64,
    /// Events with a quality score.
    pub quality_count: i64,
    /// Their scores summed, in millionths.
    pub quality_sum_micro: i64,
    /// Router cache hits.
    pub cache_hits: i64,
}

/// An update of one hash field, as the script takes it: (field, op, value) with op
/// `i` (add), `n` (keep the smaller) or `x` (keep the larger).
pub type Update = (String, &'static str, i64);

impl Fields {
    fn add(&mut self, f: &Facts<'_>) {
        self.count += 1;
        for (name, ms) in &f.latencies {
            self.latency
                .entry(name)
                .or_insert_with(Latency::new)
                .add(*ms);
        }
        match f.success {
            Some(true) => self.success += 1,
            Some(false) => self.failure += 1,
            None => {}
        }
        if let Some(q) = f.quality {
            self.quality_count += 1;
            self.quality_sum_micro += (q * QUALITY_SCALE).round() as i64;
        }
        if f.cache_hit == Some(true) {
            self.cache_hits += 1;
        }
    }

    /// The hash updates, zeros left out.
    pub fn updates(&self) -> Vec<Update> {
        let mut out: Vec<Update> = Vec::with_capacity(8 + 20 * self.latency.len());
        let mut add = |field: &str, v: i64| {
            if v != 0 {
                out.push((field.to_string(), "i", v));
            }
        };
        add("count", self.count);
        add("success", self.success);
        add("failure", self.failure);
        add("quality:count", self.quality_count);
        add("quality:sum_micro", self.quality_sum_micro);
        add("cache_hit", self.cache_hits);
        for (name, l) in &self.latency {
            out.push((format!("{name}:count"), "i", l.count));
            out.push((format!("{name}:sum"), "i", l.sum));
            out.push((format!("{name}:min"), "n", l.min));
            out.push((format!("{name}:max"), "x", l.max));
            for (i, n) in l.buckets.iter().enumerate().filter(|(_, n)| **n > 0) {
                out.push((format!("{name}:b{i}"), "i", *n));
            }
        }
        // A quality score of exactly 0 still counts.
        if self.quality_count > 0 && self.quality_sum_micro == 0 {
            out.push(("quality:sum_micro".into(), "i", 0));
        }
        out
    }
}

/// A bucket of one topic: the topic's own series or one agent's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BucketId<'a> {
    /// The agent, for an agent's series.
    pub agent: Option<&'a str>,
    /// The resolution.
    pub res: Resolution,
    /// The start (Unix seconds).
    pub start: i64,
}

/// What the records of one partition batch add, summed per bucket.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Deltas<'a> {
    /// Bucket → what it gains.
    pub buckets: BTreeMap<BucketId<'a>, Fields>,
    /// Agents seen.
    pub agents: std::collections::BTreeSet<&'a str>,
}

impl<'a> Deltas<'a> {
    /// Adds one record's contributions to every bucket it falls in.
    pub fn add(&mut self, window: u32, record: &'a Record) {
        let ms = record
            .event
            .timestamp_millis()
            .or(record.timestamp)
            .unwrap_or(0);
        let f = facts(&record.event);
        if let Some(agent) = f.agent {
            self.agents.insert(agent);
        }
        for res in Resolution::all(window) {
            let start = res.bucket(ms);
            for agent in std::iter::once(None).chain(f.agent.map(Some)) {
                self.buckets
                    .entry(BucketId { agent, res, start })
                    .or_default()
                    .add(&f);
            }
        }
    }

    /// The key of `id` on `topic`.
    pub fn key(keys: &Keys, topic: agentbus_client::Topic, id: &BucketId<'_>) -> String {
        keys.bucket(topic, id.agent, id.res, id.start)
    }

    /// TTL of the agents set.
    pub fn agents_ttl() -> i64 {
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
            timestamp_type: "NoTimestamp",
            headers: Vec::new(),
            source: None,
        }
    }

    #[test]
    fn a_task_execution_counts_in_every_resolution_and_for_its_agent() {
        let r = record(Topic::TaskExecutions);
        let mut d = Deltas::default();
        d.add(5, &r);
        d.add(5, &r);
        // 4 resolutions, topic and agent.
        assert_eq!(d.buckets.len(), 8);
        let ms = r.event.timestamp_millis().unwrap();
        let id = BucketId {
            agent: None,
            res: Resolution::Window(5),
            start: Resolution::Window(5).bucket(ms),
        };
        let u = d.buckets[&id].updates();
        let get = |f: &str| {
            u.iter()
                .find(|(n, _, _)| n == f)
                .map(|(_, op, v)| (*op, *v))
        };
        assert_eq!(get("count"), Some(("i", 2)));
        assert_eq!(get("success"), Some(("i", 2)));
        assert_eq!(get("failure"), None);
        assert_eq!(get("total_duration_ms:sum"), Some(("i", 2 * 15_400)));
        assert_eq!(get("total_duration_ms:min"), Some(("n", 15_400)));
        assert_eq!(get("total_duration_ms:b11"), Some(("i", 2)));
        assert_eq!(get("quality:sum_micro"), Some(("i", 2 * 920_000)));
        assert_eq!(
            Deltas::key(&Keys::new(""), Topic::TaskExecutions, &id),
            format!("metrics:{{tasks}}:5s:{}", id.start)
        );
        assert_eq!(d.agents.len(), 1);
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

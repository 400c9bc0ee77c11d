//! Counters, histograms and lag of one consumer process, rendered as Prometheus text
//! (CONVENTIONS' names, kafka_exporter's lag names) and as the seeds' JSON.

use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const FLUSH_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
const SIZE_BUCKETS: [f64; 9] = [1.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0];
/// The series every consumer must expose (CONVENTIONS.md); dashboards and alert rules
/// are written against these names.
pub const REQUIRED: [&str; 12] = [
    "agentbus_events_received_total",
    "agentbus_events_written_total",
    "agentbus_events_duplicate_total",
    "agentbus_errors_total",
    "agentbus_dlq_records_total",
    "agentbus_dlq_write_failures_total",
    "agentbus_batch_flush_duration_seconds",
    "agentbus_batch_size_events",
    "agentbus_offset_commit_failures_total",
    "kafka_consumergroup_lag",
    "kafka_consumergroup_lag_sum",
    "kafka_consumergroup_current_offset",
];

/// Flush durations kept for the exact p99 in `/metrics.json`.
const RECENT_FLUSHES: usize = 10_000;

#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        for (bound, count) in self.bounds.iter().zip(&mut self.counts) {
            if v <= *bound {
                *count += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Debug)]
struct Flushes {
    seconds: Histogram,
    sizes: Histogram,
    recent: VecDeque<f64>,
}

/// Position of one assigned partition.
#[derive(Debug, Clone, Copy, Default)]
struct Position {
    /// Next offset stored by the sink (what kafka_exporter calls the current offset).
    current: Option<i64>,
    /// High watermark last seen by the consumer.
    high: Option<i64>,
}

/// Everything `/metrics`, `/metrics.json`, `/health` and `/ready` report.
#[derive(Debug)]
pub struct Metrics {
    group: String,
    started: Instant,
    received: AtomicU64,
    written: AtomicU64,
    duplicates: AtomicU64,
    dlq_write_failures: AtomicU64,
    commit_failures: AtomicU64,
    errors: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    dlq: Mutex<BTreeMap<&'static str, u64>>,
    flushes: Mutex<Flushes>,
    positions: Mutex<BTreeMap<(String, i32), Position>>,
    last_commit: Mutex<Option<DateTime<Utc>>>,
    shutting_down: AtomicBool,
    broken: AtomicBool,
    sink_ok: AtomicBool,
    assigned: AtomicU64,
}

impl Metrics {
    /// Metrics of consumer group `group`.
    pub fn new(group: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            started: Instant::now(),
            received: AtomicU64::new(0),
            written: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            dlq_write_failures: AtomicU64::new(0),
            commit_failures: AtomicU64::new(0),
            errors: Mutex::default(),
            dlq: Mutex::default(),
            flushes: Mutex::new(Flushes {
                seconds: Histogram::new(&FLUSH_BUCKETS),
                sizes: Histogram::new(&SIZE_BUCKETS),
                recent: VecDeque::new(),
            }),
            positions: Mutex::default(),
            last_commit: Mutex::new(None),
            shutting_down: AtomicBool::new(false),
            broken: AtomicBool::new(false),
            sink_ok: AtomicBool::new(false),
            assigned: AtomicU64::new(0),
        }
    }

    pub(crate) fn received(&self) {
        self.received.fetch_add(1, Relaxed);
    }

    pub(crate) fn error(&self, stage: &'static str, error_type: &'static str) {
        *lock(&self.errors).entry((stage, error_type)).or_default() += 1;
    }

    pub(crate) fn dead_lettered(&self, stage: &'static str) {
        *lock(&self.dlq).entry(stage).or_default() += 1;
    }

    pub(crate) fn dlq_write_failed(&self) {
        self.dlq_write_failures.fetch_add(1, Relaxed);
    }

    pub(crate) fn commit_failed(&self) {
        self.commit_failures.fetch_add(1, Relaxed);
    }

    /// A batch of `events` records reached the sink and its offsets were stored.
    pub(crate) fn flushed(&self, events: usize, written: u64, duplicates: u64, took: Duration) {
        self.written.fetch_add(written, Relaxed);
        self.duplicates.fetch_add(duplicates, Relaxed);
        let mut f = lock(&self.flushes);
        f.seconds.observe(took.as_secs_f64());
        f.sizes.observe(events as f64);
        if f.recent.len() == RECENT_FLUSHES {
            f.recent.pop_front();
        }
        f.recent.push_back(took.as_secs_f64());
        *lock(&self.last_commit) = Some(Utc::now());
    }

    pub(crate) fn set_current(&self, topic: &str, partition: i32, next: i64) {
        lock(&self.positions)
            .entry((topic.to_string(), partition))
            .or_default()
            .current = Some(next);
    }

    pub(crate) fn set_high(&self, topic: &str, partition: i32, high: i64) {
        lock(&self.positions)
            .entry((topic.to_string(), partition))
            .or_default()
            .high = Some(high);
    }

    pub(crate) fn set_assignment(&self, partitions: &[(String, i32)]) {
        let mut positions = lock(&self.positions);
        positions.retain(|k, _| partitions.contains(k));
        for p in partitions {
            positions.entry(p.clone()).or_default();
        }
        self.assigned.store(partitions.len() as u64, Relaxed);
    }

    pub(crate) fn set_sink_ok(&self, ok: bool) {
        self.sink_ok.store(ok, Relaxed);
    }

    /// Marks the start of shutdown: `/health` answers 503 from now on.
    pub fn shutting_down(&self) {
        self.shutting_down.store(true, Relaxed);
    }

    /// Marks the process broken (a fatal sink error): `/health` answers 503.
    pub(crate) fn broken(&self) {
        self.broken.store(true, Relaxed);
    }

    /// Liveness: false once shutdown has begun or the process is broken.
    pub fn healthy(&self) -> bool {
        !self.shutting_down.load(Relaxed) && !self.broken.load(Relaxed)
    }

    /// Readiness: has an assignment and the sink is reachable.
    pub fn ready(&self) -> bool {
        self.healthy() && self.assigned.load(Relaxed) > 0 && self.sink_ok.load(Relaxed)
    }

    /// Events received from Kafka.
    pub fn events_received(&self) -> u64 {
        self.received.load(Relaxed)
    }

    /// Events the sink stored.
    pub fn events_written(&self) -> u64 {
        self.written.load(Relaxed)
    }

    /// Events sent to the DLQ.
    pub fn dead_letters(&self) -> u64 {
        lock(&self.dlq).values().sum()
    }

    /// Sum of lag over the assigned partitions whose positions are known.
    pub fn total_lag(&self) -> i64 {
        lock(&self.positions)
            .values()
            .filter_map(|p| Some((p.high? - p.current?).max(0)))
            .sum()
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn prometheus(&self) -> String {
        let mut out = String::with_capacity(4096);
        let g = escape(&self.group);
        let group = format!("group=\"{g}\"");
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{{group}}} {v}"
            );
        };
        counter(
            &mut out,
            "agentbus_events_received_total",
            "Records received from Kafka.",
            self.events_received(),
        );
        counter(
            &mut out,
            "agentbus_events_written_total",
            "Events stored by the sink.",
            self.events_written(),
        );
        counter(
            &mut out,
            "agentbus_events_duplicate_total",
            "Events the sink already had.",
            self.duplicates.load(Relaxed),
        );
        counter(
            &mut out,
            "agentbus_dlq_write_failures_total",
            "Dead letters that could not be written.",
            self.dlq_write_failures.load(Relaxed),
        );
        counter(
            &mut out,
            "agentbus_offset_commit_failures_total",
            "Failed Kafka offset commits.",
            self.commit_failures.load(Relaxed),
        );

        out.push_str("# HELP agentbus_errors_total Errors by stage and type.\n# TYPE agentbus_errors_total counter\n");
        for ((stage, kind), v) in lock(&self.errors).iter() {
            let _ = writeln!(
                out,
                "agentbus_errors_total{{{group},stage=\"{stage}\",error_type=\"{kind}\"}} {v}"
            );
        }
        out.push_str("# HELP agentbus_dlq_records_total Records sent to the dead-letter queue, by stage.\n# TYPE agentbus_dlq_records_total counter\n");
        for (stage, v) in lock(&self.dlq).iter() {
            let _ = writeln!(
                out,
                "agentbus_dlq_records_total{{{group},stage=\"{stage}\"}} {v}"
            );
        }
        {
            let f = lock(&self.flushes);
            out.push_str("# HELP agentbus_batch_flush_duration_seconds Time to write one batch and its offsets.\n# TYPE agentbus_batch_flush_duration_seconds histogram\n");
            f.seconds
                .render(&mut out, "agentbus_batch_flush_duration_seconds", &group);
            out.push_str("# HELP agentbus_batch_size_events Events per flushed batch.\n# TYPE agentbus_batch_size_events histogram\n");
            f.sizes
                .render(&mut out, "agentbus_batch_size_events", &group);
        }
        let _ = writeln!(out, "# HELP agentbus_up Whether the consumer is ready (assigned, sink reachable).\n# TYPE agentbus_up gauge\nagentbus_up{{{group}}} {}", u8::from(self.ready()));
        let _ = writeln!(out, "# HELP agentbus_uptime_seconds Seconds since start.\n# TYPE agentbus_uptime_seconds gauge\nagentbus_uptime_seconds{{{group}}} {:.3}", self.started.elapsed().as_secs_f64());

        let positions = lock(&self.positions);
        let cg = format!("consumergroup=\"{g}\"");
        out.push_str("# HELP kafka_consumergroup_current_offset Current offset of a consumer group at a partition.\n# TYPE kafka_consumergroup_current_offset gauge\n");
        for ((topic, p), pos) in positions.iter() {
            if let Some(c) = pos.current {
                let _ = writeln!(
                    out,
                    "kafka_consumergroup_current_offset{{{cg},topic=\"{}\",partition=\"{p}\"}} {c}",
                    escape(topic)
                );
            }
        }
        out.push_str("# HELP kafka_consumergroup_lag Approximate lag of a consumer group at a partition.\n# TYPE kafka_consumergroup_lag gauge\n");
        let mut sums: BTreeMap<&str, i64> = BTreeMap::new();
        for ((topic, p), pos) in positions.iter() {
            if let (Some(c), Some(h)) = (pos.current, pos.high) {
                let lag = (h - c).max(0);
                *sums.entry(topic).or_default() += lag;
                let _ = writeln!(
                    out,
                    "kafka_consumergroup_lag{{{cg},topic=\"{}\",partition=\"{p}\"}} {lag}",
                    escape(topic)
                );
            }
        }
        out.push_str("# HELP kafka_consumergroup_lag_sum Approximate lag of a consumer group summed over a topic's partitions.\n# TYPE kafka_consumergroup_lag_sum gauge\n");
        for (topic, lag) in sums {
            let _ = writeln!(
                out,
                "kafka_consumergroup_lag_sum{{{cg},topic=\"{}\"}} {lag}",
                escape(topic)
            );
        }
        out
    }

    /// The seeds' JSON fields, and a few more.
    pub fn json(&self) -> serde_json::Value {
        let uptime = self.started.elapsed().as_secs_f64();
        let (batches, avg_ms, p99_ms) = {
            let f = lock(&self.flushes);
            let avg = if f.seconds.count == 0 {
                0.0
            } else {
                f.seconds.sum * 1000.0 / f.seconds.count as f64
            };
            let mut recent: Vec<f64> = f.recent.iter().copied().collect();
            recent.sort_by(f64::total_cmp);
            let p99 = match recent.len() {
                0 => 0.0,
                n => recent[((n as f64 * 0.99).ceil() as usize).clamp(1, n) - 1] * 1000.0,
            };
            (f.seconds.count, avg, p99)
        };
        let consumed = self.events_received();
        let last_commit =
            lock(&self.last_commit).map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true));
        serde_json::json!({
            "status": if self.healthy() { "healthy" } else { "shutting_down" },
            "consumer_group": self.group,
            "uptime_seconds": round3(uptime),
            "messages_consumed": consumed,
            "messages_inserted": self.events_written(),
            "messages_duplicate": self.duplicates.load(Relaxed),
            "messages_failed": self.dead_letters(),
            "dlq_write_failures": self.dlq_write_failures.load(Relaxed),
            "offset_commit_failures": self.commit_failures.load(Relaxed),
            "batches_processed": batches,
            "avg_batch_processing_ms": round3(avg_ms),
            "p99_batch_processing_ms": round3(p99_ms),
            "messages_per_second": round3(if uptime > 0.0 { consumed as f64 / uptime } else { 0.0 }),
            "last_commit_time": last_commit,
            "consumer_lag": self.total_lag(),
            "assigned_partitions": self.assigned.load(Relaxed),
            "ready": self.ready(),
        })
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_required_metric_is_exposed_even_before_any_event() {
        let text = Metrics::new("g").prometheus();
        for name in REQUIRED {
            let kind = if name.ends_with("_seconds") || name.ends_with("_events") {
                "histogram"
            } else if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "{name} missing:\n{text}"
            );
        }
    }

    #[test]
    fn lag_and_counters_render() {
        let m = Metrics::new("db-writer-group");
        m.set_assignment(&[("a".into(), 0), ("a".into(), 1)]);
        m.set_current("a", 0, 10);
        m.set_high("a", 0, 15);
        m.set_current("a", 1, 3);
        m.set_high("a", 1, 3);
        m.received();
        m.flushed(1, 1, 0, Duration::from_millis(3));
        m.dead_lettered("VALIDATE");
        let text = m.prometheus();
        assert!(text.contains("kafka_consumergroup_lag{consumergroup=\"db-writer-group\",topic=\"a\",partition=\"0\"} 5"), "{text}");
        assert!(text.contains(
            "kafka_consumergroup_lag_sum{consumergroup=\"db-writer-group\",topic=\"a\"} 5"
        ));
        assert!(text.contains(
            "agentbus_dlq_records_total{group=\"db-writer-group\",stage=\"VALIDATE\"} 1"
        ));
        assert!(text.contains("agentbus_batch_flush_duration_seconds_bucket{group=\"db-writer-group\",le=\"0.005\"} 1"));
        assert_eq!(m.total_lag(), 5);
        let json = m.json();
        assert_eq!(json["messages_consumed"], 1);
        assert_eq!(json["messages_failed"], 1);
        assert_eq!(json["batches_processed"], 1);
        assert_eq!(json["p99_batch_processing_ms"], 3.0);
    }
}

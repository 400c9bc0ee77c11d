//! Counters, histograms and lag of the consumer groups of one process, rendered as
//! Prometheus text (CONVENTIONS' names, kafka_exporter's lag names; every series has
//! the group as a label) and as the seeds' JSON.

mod histogram;
pub mod names;
pub mod recent;

use chrono::{DateTime, SecondsFormat, Utc};
use histogram::Histogram;
pub use names::{Direction, ErrorStage, ErrorType, Kind, Metric};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FLUSH_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
const SIZE_BUCKETS: [f64; 9] = [1.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0];

/// Flush durations kept for the exact p99 in `/metrics.json`.
const RECENT_FLUSHES: usize = 10_000;

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

/// Why a stored offset was given up for the log start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResetReason {
    /// Retention deleted the records at the stored offset.
    Retention,
}

impl ResetReason {
    const fn as_str(self) -> &'static str {
        match self {
            ResetReason::Retention => "retention",
        }
    }
}

/// Everything `/metrics`, `/metrics.json`, `/health` and `/ready` report of one group.
#[derive(Debug)]
pub struct Metrics {
    group: String,
    started: Instant,
    received: AtomicU64,
    written: AtomicU64,
    duplicates: AtomicU64,
    dlq_write_failures: AtomicU64,
    commit_failures: AtomicU64,
    errors: Mutex<BTreeMap<(ErrorStage, ErrorType), u64>>,
    dlq: Mutex<BTreeMap<ErrorStage, u64>>,
    mismatches: Mutex<BTreeMap<(String, Direction), u64>>,
    resets: Mutex<BTreeMap<(String, ResetReason), u64>>,
    flushes: Mutex<Flushes>,
    positions: Mutex<BTreeMap<(String, i32), Position>>,
    last_commit: Mutex<Option<DateTime<Utc>>>,
    shutting_down: AtomicBool,
    broken: AtomicBool,
    sink_ok: AtomicBool,
    assigned: AtomicU64,
    /// Partitions assigned but not yet positioned at the sink's offsets.
    positioning: AtomicU64,
    /// The audit-logger's own figures, when this group is one.
    audit: Mutex<Option<crate::audit_logger::AuditStats>>,
    /// The alert-manager's own figures, when this group is one of its two.
    alerts: Mutex<Option<Arc<crate::alert_manager::AlertStats>>>,
    /// The latest dead letters.
    recent_dead: recent::Recent<recent::RecentDeadLetter>,
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
            mismatches: Mutex::default(),
            resets: Mutex::default(),
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
            positioning: AtomicU64::new(0),
            audit: Mutex::new(None),
            alerts: Mutex::new(None),
            recent_dead: recent::Recent::default(),
        }
    }

    /// Reports the audit-logger's figures with this group's.
    pub fn attach_audit(&self, stats: crate::audit_logger::AuditStats) {
        *lock(&self.audit) = Some(stats);
    }

    /// Reports the alert-manager's figures with this group's.
    pub fn attach_alerts(&self, stats: Arc<crate::alert_manager::AlertStats>) {
        *lock(&self.alerts) = Some(stats);
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.group
    }

    pub(crate) fn received(&self) {
        self.received.fetch_add(1, Relaxed);
    }

    pub(crate) fn error(&self, stage: ErrorStage, error_type: ErrorType) {
        *lock(&self.errors).entry((stage, error_type)).or_default() += 1;
    }

    /// The DLQ acknowledged `letter`.
    pub(crate) fn dead_letter_sent(&self, letter: &crate::dlq::DeadLetter) {
        self.dead_lettered(letter.stage.into());
        self.recent_dead.push(recent::RecentDeadLetter {
            time: recent::now(),
            topic: letter.topic.clone(),
            partition: letter.partition,
            offset: letter.offset,
            event: letter.label(),
            reason: letter.message.clone(),
        });
    }

    /// The latest dead letters, newest first.
    pub fn recent_dead_letters(&self) -> Vec<recent::RecentDeadLetter> {
        self.recent_dead.list()
    }

    /// The alert-manager's figures, when this group is one of its groups.
    pub fn alert_stats(&self) -> Option<Arc<crate::alert_manager::AlertStats>> {
        lock(&self.alerts).clone()
    }

    /// Partitions assigned to this member.
    pub fn assigned_partitions(&self) -> u64 {
        self.assigned.load(Relaxed)
    }

    pub(crate) fn dead_lettered(&self, stage: ErrorStage) {
        *lock(&self.dlq).entry(stage).or_default() += 1;
    }

    pub(crate) fn dlq_write_failed(&self) {
        self.dlq_write_failures.fetch_add(1, Relaxed);
    }

    pub(crate) fn commit_failed(&self) {
        self.commit_failures.fetch_add(1, Relaxed);
    }

    pub(crate) fn offset_mismatch(&self, topic: &str, direction: Direction) {
        *lock(&self.mismatches)
            .entry((topic.to_string(), direction))
            .or_default() += 1;
    }

    pub(crate) fn offset_reset(&self, topic: &str, reason: ResetReason) {
        *lock(&self.resets)
            .entry((topic.to_string(), reason))
            .or_default() += 1;
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
        if let Some(p) = lock(&self.positions).get_mut(&(topic.to_string(), partition)) {
            p.high = Some(high);
        }
    }

    pub(crate) fn set_assignment(&self, partitions: &[(String, i32)]) {
        let mut positions = lock(&self.positions);
        positions.retain(|k, _| partitions.contains(k));
        for p in partitions {
            positions.entry(p.clone()).or_default();
        }
        self.assigned.store(partitions.len() as u64, Relaxed);
    }

    pub(crate) fn set_positioning(&self, n: usize) {
        self.positioning.store(n as u64, Relaxed);
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

    /// Readiness: has an assignment, every partition positioned, and the sink is
    /// reachable.
    pub fn ready(&self) -> bool {
        self.healthy()
            && self.assigned.load(Relaxed) > 0
            && self.positioning.load(Relaxed) == 0
            && self.sink_ok.load(Relaxed)
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

    /// Writes this group's samples of `metric`.
    fn samples(&self, metric: Metric, out: &mut String) {
        let g = escape(&self.group);
        let group = format!("group=\"{g}\"");
        let name = metric.name();
        let mut plain = |v: &dyn std::fmt::Display| {
            let _ = writeln!(out, "{name}{{{group}}} {v}");
        };
        match metric {
            Metric::EventsReceived => plain(&self.events_received()),
            Metric::EventsWritten => plain(&self.events_written()),
            Metric::EventsDuplicate => plain(&self.duplicates.load(Relaxed)),
            Metric::DlqWriteFailures => plain(&self.dlq_write_failures.load(Relaxed)),
            Metric::OffsetCommitFailures => plain(&self.commit_failures.load(Relaxed)),
            Metric::Up => plain(&u8::from(self.ready())),
            Metric::Uptime => plain(&format!("{:.3}", self.started.elapsed().as_secs_f64())),
            Metric::Errors => {
                for ((stage, kind), v) in lock(&self.errors).iter() {
                    let _ = writeln!(
                        out,
                        "{name}{{{group},stage=\"{}\",error_type=\"{}\"}} {v}",
                        stage.as_str(),
                        kind.as_str()
                    );
                }
            }
            Metric::DlqRecords => {
                for (stage, v) in lock(&self.dlq).iter() {
                    let _ = writeln!(out, "{name}{{{group},stage=\"{}\"}} {v}", stage.as_str());
                }
            }
            Metric::OffsetMismatches => {
                for ((topic, direction), v) in lock(&self.mismatches).iter() {
                    let _ = writeln!(
                        out,
                        "{name}{{{group},topic=\"{}\",direction=\"{}\"}} {v}",
                        escape(topic),
                        direction.as_str()
                    );
                }
            }
            Metric::OffsetResets => {
                for ((topic, reason), v) in lock(&self.resets).iter() {
                    let _ = writeln!(
                        out,
                        "{name}{{{group},topic=\"{}\",reason=\"{}\"}} {v}",
                        escape(topic),
                        reason.as_str()
                    );
                }
            }
            Metric::BatchFlushDuration => lock(&self.flushes).seconds.render(out, name, &group),
            Metric::BatchSize => lock(&self.flushes).sizes.render(out, name, &group),
            Metric::CurrentOffset | Metric::Lag | Metric::LagSum => {
                self.lag_samples(metric, out, &g);
            }
            Metric::AuditFiles
            | Metric::AuditBytes
            | Metric::AuditUploadDuration
            | Metric::AuditOpenRecords
            | Metric::AuditLag => {
                if let Some(a) = lock(&self.audit).as_ref() {
                    audit_samples(a, metric, out, &group);
                }
            }
            Metric::Alerts
            | Metric::AlertDeliveries
            | Metric::AlertDeliveryLatency
            | Metric::AlertsHeldBack => {
                if let Some(a) = lock(&self.alerts).as_ref() {
                    a.samples(metric, out, &group);
                }
            }
        }
    }

    fn lag_samples(&self, metric: Metric, out: &mut String, g: &str) {
        let name = metric.name();
        let cg = format!("consumergroup=\"{g}\"");
        let positions = lock(&self.positions);
        let mut sums: BTreeMap<&str, i64> = BTreeMap::new();
        for ((topic, p), pos) in positions.iter() {
            let t = escape(topic);
            match (metric, pos.current, pos.high) {
                (Metric::CurrentOffset, Some(c), _) => {
                    let _ = writeln!(out, "{name}{{{cg},topic=\"{t}\",partition=\"{p}\"}} {c}");
                }
                (Metric::Lag, Some(c), Some(h)) => {
                    let lag = (h - c).max(0);
                    let _ = writeln!(out, "{name}{{{cg},topic=\"{t}\",partition=\"{p}\"}} {lag}");
                }
                (Metric::LagSum, Some(c), Some(h)) => {
                    *sums.entry(topic).or_default() += (h - c).max(0);
                }
                _ => {}
            }
        }
        for (topic, lag) in sums {
            let _ = writeln!(out, "{name}{{{cg},topic=\"{}\"}} {lag}", escape(topic));
        }
    }

    /// Prometheus text exposition format 0.0.4 of this group alone.
    pub fn prometheus(self: &Arc<Self>) -> String {
        render(std::slice::from_ref(self))
    }

    /// The seeds' JSON fields, and a few more.
    pub fn json(&self) -> serde_json::Value {
        let uptime = self.started.elapsed().as_secs_f64();
        let (batches, avg_ms, p99_ms) = {
            let f = lock(&self.flushes);
            let avg = if f.seconds.count() == 0 {
                0.0
            } else {
                f.seconds.sum() * 1000.0 / f.seconds.count() as f64
            };
            let mut recent: Vec<f64> = f.recent.iter().copied().collect();
            recent.sort_by(f64::total_cmp);
            let p99 = match recent.len() {
                0 => 0.0,
                n => recent[((n as f64 * 0.99).ceil() as usize).clamp(1, n) - 1] * 1000.0,
            };
            (f.seconds.count(), avg, p99)
        };
        let consumed = self.events_received();
        let last_commit =
            lock(&self.last_commit).map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true));

        let audit = lock(&self.audit).as_ref().map(|a| {
            serde_json::json!({
                "files_archived": a.files(),
                "records_archived": a.records(),
                "bytes_archived": a.bytes.load(Relaxed),
                "open_records": a.open_records.load(Relaxed),
                "audit_lag_seconds": a.lag_seconds(),
            })
        });
        let mismatches: u64 = lock(&self.mismatches).values().sum();
        let resets: u64 = lock(&self.resets).values().sum();
        let mut out = serde_json::json!({
            "status": if self.healthy() { "healthy" } else { "shutting_down" },
            "consumer_group": self.group,
            "uptime_seconds": round3(uptime),
            "messages_consumed": consumed,
            "messages_inserted": self.events_written(),
            "messages_duplicate": self.duplicates.load(Relaxed),
            "messages_failed": self.dead_letters(),
            "dlq_write_failures": self.dlq_write_failures.load(Relaxed),
            "offset_commit_failures": self.commit_failures.load(Relaxed),
            "offset_mismatches": mismatches,
            "offset_resets": resets,
            "batches_processed": batches,
            "avg_batch_processing_ms": round3(avg_ms),
            "p99_batch_processing_ms": round3(p99_ms),
            "messages_per_second": round3(if uptime > 0.0 { consumed as f64 / uptime } else { 0.0 }),
            "last_commit_time": last_commit,
            "consumer_lag": self.total_lag(),
            "assigned_partitions": self.assigned.load(Relaxed),
            "ready": self.ready(),
        });
        if let (Some(serde_json::Value::Object(extra)), serde_json::Value::Object(fields)) =
            (audit, &mut out)
        {
            fields.extend(extra);
        }
        out
    }
}

fn audit_samples(
    a: &crate::audit_logger::AuditCounters,
    metric: Metric,
    out: &mut String,
    group: &str,
) {
    let name = metric.name();
    match metric {
        Metric::AuditFiles => {
            let _ = writeln!(out, "{name}{{{group}}} {}", a.files.load(Relaxed));
        }
        Metric::AuditBytes => {
            let _ = writeln!(out, "{name}{{{group}}} {}", a.bytes.load(Relaxed));
        }
        Metric::AuditOpenRecords => {
            let _ = writeln!(out, "{name}{{{group}}} {}", a.open_records.load(Relaxed));
        }
        Metric::AuditLag => {
            let secs = a.lag_seconds();
            let _ = writeln!(out, "{name}{{{group}}} {secs:.3}");
        }
        _ => {
            let h = lock(&a.upload_seconds);
            let bounds = crate::audit_logger::UPLOAD_BUCKETS;
            for (i, bound) in bounds.iter().enumerate() {
                let n = h.0.get(i).copied().unwrap_or(0);
                let _ = writeln!(out, "{name}_bucket{{{group},le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(out, "{name}_bucket{{{group},le=\"+Inf\"}} {}", h.2);
            let _ = writeln!(out, "{name}_sum{{{group}}} {}", h.1);
            let _ = writeln!(out, "{name}_count{{{group}}} {}", h.2);
        }
    }
}

/// Prometheus text of several groups: each family once, with every group's samples.
pub fn render(groups: &[Arc<Metrics>]) -> String {
    let mut out = String::with_capacity(4096 * groups.len().max(1));
    for metric in Metric::ALL {
        let name = metric.name();
        let _ = writeln!(
            out,
            "# HELP {name} {}\n# TYPE {name} {}",
            metric.help(),
            metric.kind().as_str()
        );
        for m in groups {
            m.samples(metric, &mut out);
        }
    }
    out
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
        let text = Arc::new(Metrics::new("g")).prometheus();
        for metric in Metric::REQUIRED {
            let name = metric.name();
            let kind = metric.kind().as_str();
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "{name} missing:\n{text}"
            );
        }
    }

    #[test]
    fn lag_and_counters_render() {
        let m = Arc::new(Metrics::new("db-writer-group"));
        m.set_assignment(&[("a".into(), 0), ("a".into(), 1)]);
        m.set_current("a", 0, 10);
        m.set_high("a", 0, 15);
        m.set_current("a", 1, 3);
        m.set_high("a", 1, 3);
        m.received();
        m.flushed(1, 1, 0, Duration::from_millis(3));
        m.dead_lettered(ErrorStage::Validate);
        m.offset_mismatch("a", Direction::Rewind);
        let text = m.prometheus();
        assert!(text.contains("kafka_consumergroup_lag{consumergroup=\"db-writer-group\",topic=\"a\",partition=\"0\"} 5"), "{text}");
        assert!(text.contains(
            "kafka_consumergroup_lag_sum{consumergroup=\"db-writer-group\",topic=\"a\"} 5"
        ));
        assert!(text.contains(
            "agentbus_dlq_records_total{group=\"db-writer-group\",stage=\"VALIDATE\"} 1"
        ));
        assert!(text.contains("agentbus_offset_mismatches_total{group=\"db-writer-group\",topic=\"a\",direction=\"rewind\"} 1"));
        assert!(text.contains("agentbus_batch_flush_duration_seconds_bucket{group=\"db-writer-group\",le=\"0.005\"} 1"));
        assert_eq!(m.total_lag(), 5);
        let json = m.json();
        assert_eq!(json["messages_consumed"], 1);
        assert_eq!(json["messages_failed"], 1);
        assert_eq!(json["batches_processed"], 1);
        assert_eq!(json["offset_mismatches"], 1);
        assert_eq!(json["p99_batch_processing_ms"], 3.0);
    }

    #[test]
    fn several_groups_share_one_family_header() {
        let a = Arc::new(Metrics::new("a"));
        let b = Arc::new(Metrics::new("b"));
        let text = render(&[a, b]);
        for metric in Metric::ALL {
            let header = format!("# TYPE {} ", metric.name());
            assert_eq!(text.matches(&header).count(), 1, "{header}");
        }
        assert!(text.contains("agentbus_events_received_total{group=\"a\"} 0"));
        assert!(text.contains("agentbus_events_received_total{group=\"b\"} 0"));
    }
}

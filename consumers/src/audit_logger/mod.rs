//! The audit-logger (`agentbus consume audit-logger`, group `audit-group`): every
//! record of the eight topics archived exactly once as Parquet (zstd) on an object
//! store: S3 or an S3-compatible server, or a local directory.
//!
//! A file per partition, rotated by record count (`FLUSH_SIZE`), by the records' UTC
//! hour, after `ROTATE_IDLE_MS` without records, or past a size; uploaded with
//! `PutMode::Create` under a name carrying its first and last offset. The names are
//! the offsets' authority: a partition resumes after its last archived record.

mod parquet_file;
pub mod read;
pub mod schema;
mod sink;
pub mod store;

pub use sink::{ArchiveSink, Rotation};
pub use store::{Archive, ArchiveSettings};

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The consumer group's default name (seeds).
pub const GROUP: &str = "audit-group";

/// Upload durations' histogram bounds (seconds).
pub(crate) const UPLOAD_BUCKETS: [f64; 10] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// What the archive did, for `/metrics` (`agentbus_audit_*`).
#[derive(Debug, Default)]
pub struct AuditCounters {
    pub(crate) files: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) records: AtomicU64,
    pub(crate) open_records: AtomicU64,
    /// When (ms since the epoch) the oldest record not yet archived arrived (0: none);
    /// the lag is read against the clock, so it grows while nothing else happens.
    pub(crate) oldest_ms: AtomicU64,
    pub(crate) upload_seconds: Mutex<(Vec<u64>, f64, u64)>,
}

/// Shared between the sink and the metrics.
pub type AuditStats = Arc<AuditCounters>;

impl AuditCounters {
    pub(crate) fn uploaded(&self, bytes: usize, records: usize, took: Duration) {
        self.files.fetch_add(1, Relaxed);
        self.bytes.fetch_add(bytes as u64, Relaxed);
        self.records.fetch_add(records as u64, Relaxed);
        let secs = took.as_secs_f64();
        let mut h = self
            .upload_seconds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if h.0.is_empty() {
            h.0 = vec![0; UPLOAD_BUCKETS.len()];
        }
        for (bound, n) in UPLOAD_BUCKETS.iter().zip(h.0.iter_mut()) {
            if secs <= *bound {
                *n += 1;
            }
        }
        h.1 += secs;
        h.2 += 1;
    }

    pub(crate) fn set_open(&self, records: usize, oldest: Option<std::time::Instant>) {
        self.open_records.store(records as u64, Relaxed);
        let since = oldest.map_or(0, |t| {
            let arrived = std::time::SystemTime::now() - t.elapsed();
            arrived
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_millis().max(1) as u64)
        });
        self.oldest_ms.store(since, Relaxed);
    }

    /// How long the oldest record not yet archived has waited, in seconds (0: none).
    pub fn lag_seconds(&self) -> f64 {
        let since = self.oldest_ms.load(Relaxed);
        if since == 0 {
            return 0.0;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        now.saturating_sub(since) as f64 / 1000.0
    }

    /// Files uploaded so far.
    pub fn files(&self) -> u64 {
        self.files.load(Relaxed)
    }

    /// Records in uploaded files so far.
    pub fn records(&self) -> u64 {
        self.records.load(Relaxed)
    }
}

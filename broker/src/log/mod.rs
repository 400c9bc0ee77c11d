//! Partition logs: record batches stored as the client sent them, behind one trait with a
//! memory backend (tests) and a disk backend (segment files, indexes, recovery).

pub(crate) mod batch;
pub(crate) mod disk;
pub(crate) mod epochs;
pub(crate) mod memory;
pub(crate) mod message_set;
pub(crate) mod recompress;
pub(crate) mod records;

use bytes::Bytes;
use std::fmt::Debug;

pub(crate) use batch::BatchHeader;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("offset {offset} is out of range [{start}, {end}]")]
    OutOfRange { offset: i64, start: i64, end: i64 },
    #[error("corrupt log data in {path}: {reason}")]
    Corrupt { path: String, reason: String },
}

impl LogError {
    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        LogError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

/// Per-partition storage settings, taken from the topic's configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll to a new segment once the active one reaches this size.
    pub segment_bytes: u64,
    /// `segment.ms`: roll once the active segment's first batch is this old.
    pub segment_ms: i64,
    /// `retention.ms`: delete segments whose newest record is older; -1 keeps forever.
    pub retention_ms: i64,
    /// `retention.bytes`: delete oldest segments while the log is larger; -1 means no limit.
    pub retention_bytes: i64,
    /// `index.interval.bytes`: bytes of log between two sparse index entries.
    pub index_interval_bytes: u64,
    /// Sync every append to disk before acknowledging it (`--fsync always`).
    pub fsync: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            index_interval_bytes: 4096,
            fsync: false,
        }
    }
}

/// One partition's log. Offsets are absolute; batches are whole v2 record batches.
pub(crate) trait Log: Send + Sync + Debug {
    /// The first offset still stored (log start offset).
    fn start_offset(&self) -> i64;
    /// The offset the next appended record gets (log end offset).
    fn end_offset(&self) -> i64;
    /// Bytes stored.
    fn size_bytes(&self) -> u64;
    /// Appends one batch at `header.base_offset` (which is `end_offset()`). `batch` holds
    /// the bytes as the client sent them: the log stores them with `header.base_offset` and
    /// `header.leader_epoch` written into the batch (both lie outside the CRC), so the
    /// request buffer is kept or written as it is instead of being copied to patch it.
    fn append(&mut self, header: &BatchHeader, batch: Bytes) -> Result<(), LogError>;
    /// Whole batches starting with the one that holds `offset`, at most `max_bytes` of them
    /// except that the first batch is always returned whole (KIP-74). Empty at the log end.
    fn read(&self, offset: i64, max_bytes: usize) -> Result<Bytes, LogError>;
    /// The first batch whose max timestamp is ≥ `timestamp`, if any.
    fn batch_by_timestamp(&self, timestamp: i64) -> Result<Option<Bytes>, LogError>;
    /// The batch holding the largest timestamp (the earliest such batch on ties).
    fn max_timestamp_batch(&self) -> Result<Option<Bytes>, LogError>;
    /// Makes appended data durable.
    fn flush(&mut self) -> Result<(), LogError>;
    /// Applies `retention.ms` / `retention.bytes` at `now_ms`; returns how many bytes went.
    fn apply_retention(&mut self, now_ms: i64) -> Result<u64, LogError>;
    /// Replaces the settings (after a config change).
    fn set_config(&mut self, config: LogConfig);
    /// Moves the log start offset forward (DeleteRecords); data below it is no longer served.
    fn advance_start_offset(&mut self, offset: i64) -> Result<(), LogError>;

    /// The ranges compaction may rewrite, oldest first, as (first offset, first offset of
    /// what follows): a disk log's inactive segments, never the active one. A memory log has
    /// no segments and is one range.
    fn cleanable_ranges(&self) -> Vec<(i64, i64)>;

    /// Replaces the batches of the cleanable range that starts at `base` (compaction). The
    /// batches keep their offsets and stay within the range; nothing else is touched.
    fn replace_range(
        &mut self,
        base: i64,
        batches: Vec<(BatchHeader, Bytes)>,
    ) -> Result<(), LogError>;

    /// Calls `f` with the header and bytes of every batch from the one holding `from` to
    /// the end.
    fn scan_batches(
        &self,
        from: i64,
        f: &mut dyn FnMut(&BatchHeader, &[u8]),
    ) -> Result<(), LogError> {
        self.scan_range(from, i64::MAX, f)
    }

    /// [`Log::scan_batches`], stopping before the first batch at or after `to`.
    fn scan_range(
        &self,
        from: i64,
        to: i64,
        f: &mut dyn FnMut(&BatchHeader, &[u8]),
    ) -> Result<(), LogError> {
        let mut offset = from.max(self.start_offset());
        while offset < self.end_offset().min(to) {
            let data = self.read(offset, 1 << 20)?;
            if data.is_empty() {
                break;
            }
            let (headers, _) = batch::scan_valid(&data);
            let Some(last) = headers.last() else {
                return Err(LogError::Corrupt {
                    path: format!("offset {offset}"),
                    reason: "stored batch does not validate".into(),
                });
            };
            offset = last.last_offset() + 1;
            let mut pos = 0;
            for h in headers.iter().take_while(|h| h.base_offset < to) {
                f(h, &data[pos..pos + h.size]);
                pos += h.size;
            }
        }
        Ok(())
    }
}

pub(crate) use crate::clock::now_ms;

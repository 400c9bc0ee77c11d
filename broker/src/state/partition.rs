//! One partition: its log, the producer state checked on every append, its open
//! transactions and its leader epochs, under one lock where they must change together.

use super::compaction;
use super::waiters::Waiters;
use crate::log::batch::{self, BatchHeader};
use crate::log::epochs::LeaderEpochs;
use crate::log::{Log, LogError};
use crate::txn::markers;
use crate::txn::partition_txns::PartitionTxns;
use crate::txn::producer_state::{ProducerStates, SequenceError, Sequenced};
use bytes::Bytes;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// One partition: its log, its producers' sequence state and its leader epoch history.
#[derive(Debug)]
pub(crate) struct Partition {
    pub index: i32,
    /// Log and producer state change together under one lock, so a sequence check and
    /// the append it allows cannot interleave with another producer's.
    inner: Mutex<PartitionData>,
    /// The leader epochs and where each began (kept beside a disk log).
    epochs: Mutex<LeaderEpochs>,
    /// Where the producer-state snapshot goes (disk backend only).
    snapshot_path: Option<PathBuf>,
    /// Parked fetches reading this partition.
    waiters: Waiters,
}

#[derive(Debug)]
struct PartitionData {
    log: Box<dyn Log>,
    producers: ProducerStates,
    txns: PartitionTxns,
}

/// A producer-state snapshot: the state after every batch below `offset`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ProducerSnapshot {
    offset: i64,
    producers: ProducerStates,
    #[serde(default)]
    txns: PartitionTxns,
}

/// What a fetch gets from one partition.
#[derive(Debug, Clone)]
pub(crate) struct Read {
    pub bytes: Bytes,
    pub offsets: Offsets,
    /// Aborted transactions overlapping the data (read_committed only).
    pub aborted: Vec<crate::txn::partition_txns::AbortedTxn>,
}

impl PartitionData {
    fn offsets(&self) -> Offsets {
        let hw = self.log.end_offset();
        Offsets {
            log_start: self.log.start_offset(),
            high_watermark: hw,
            last_stable: self.txns.last_stable_offset(hw),
        }
    }
}

/// Why an append was refused or failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppendError {
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Offsets of a partition at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    pub log_start: i64,
    pub high_watermark: i64,
    pub last_stable: i64,
}

/// The result of appending a produce request's batches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Appended {
    pub base_offset: i64,
    /// The broker's timestamp for log-append-time topics, else -1.
    pub log_append_time: i64,
    pub log_start_offset: i64,
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves data that is still consistent at batch
    // granularity (appends are single calls), so keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Partition {
    /// Wraps an opened log, rebuilding producer state from the snapshot (if any) and the
    /// batches written after it.
    pub(super) fn open(
        index: i32,
        log: Box<dyn Log>,
        snapshot_path: Option<PathBuf>,
        epochs_path: Option<PathBuf>,
    ) -> Result<Self, LogError> {
        let start = log.start_offset();
        let end = log.end_offset();
        let snapshot = snapshot_path.as_deref().and_then(read_snapshot);
        let (from, mut producers, mut txns) = match snapshot {
            Some(s) if s.offset <= end && s.offset >= start => (s.offset, s.producers, s.txns),
            _ => (start, ProducerStates::default(), PartitionTxns::default()),
        };
        log.scan_batches(from, &mut |h, bytes| {
            producers.record(h);
            txns.on_append(h, markers::marker_type(h, bytes));
        })?;
        Ok(Self {
            index,
            inner: Mutex::new(PartitionData {
                log,
                producers,
                txns,
            }),
            epochs: Mutex::new(LeaderEpochs::open(epochs_path, start, end)),
            snapshot_path,
            waiters: Waiters::default(),
        })
    }

    /// Starts a new leader epoch at the current log end (leadership moved).
    pub(crate) fn bump_leader_epoch(&self) {
        let end = lock(&self.inner).log.end_offset();
        if let Err(e) = lock(&self.epochs).bump(end) {
            // The epoch moves on in memory; a restart would answer from the older list.
            tracing::warn!(partition = self.index, error = %e, "cannot keep the leader epochs");
        }
    }

    /// The current leader epoch.
    pub(crate) fn leader_epoch(&self) -> i32 {
        lock(&self.epochs).current()
    }

    pub(crate) fn offsets(&self) -> Offsets {
        lock(&self.inner).offsets()
    }

    /// Appends validated batches, assigning offsets; the caller checked sizes and CRCs.
    /// Idempotent batches are checked against their producer's sequences first; a retried
    /// batch is answered with its original offset and not stored again.
    /// `log_append_time` is the broker's timestamp for log-append-time topics.
    pub(crate) fn append(
        &self,
        batches: &[(BatchHeader, Bytes)],
        log_append_time: Option<i64>,
    ) -> Result<Appended, AppendError> {
        let epoch = self.leader_epoch();
        let ts = log_append_time;
        let mut guard = lock(&self.inner);
        let data = &mut *guard;
        let mut base_offset = None;
        let mut appended = false;
        for (header, bytes) in batches {
            if let Sequenced::Duplicate {
                base_offset: original,
            } = data.producers.check(header)?
            {
                base_offset.get_or_insert(original);
                continue;
            }
            let offset = data.log.end_offset();
            // Log-append-time changes CRC-covered bytes, so only then is the batch copied;
            // otherwise the log writes the offset and epoch itself.
            let stored = match ts {
                Some(_) => batch::stamp(bytes, offset, epoch, ts),
                None => bytes.clone(),
            };
            let mut h = *header;
            h.base_offset = offset;
            h.leader_epoch = epoch;
            if let Some(ts) = ts {
                h.max_timestamp = ts;
            }
            data.log.append(&h, stored)?;
            data.producers.record(&h);
            data.txns.on_append(&h, None);
            base_offset.get_or_insert(offset);
            appended = true;
        }
        let result = Appended {
            base_offset: base_offset.unwrap_or_else(|| data.log.end_offset()),
            log_append_time: ts.unwrap_or(-1),
            log_start_offset: data.log.start_offset(),
        };
        drop(guard);
        if appended {
            self.waiters.wake();
        }
        Ok(result)
    }

    /// Reads whole batches from `offset`, at most `max_bytes` beyond the first batch. With
    /// `read_committed` the data stops at the last stable offset and the aborted
    /// transactions in the range returned come along.
    pub(crate) fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        read_committed: bool,
    ) -> Result<Read, LogError> {
        let data = lock(&self.inner);
        let offsets = data.offsets();
        let mut bytes = data.log.read(offset, max_bytes)?;
        if !read_committed {
            return Ok(Read {
                bytes,
                offsets,
                aborted: Vec::new(),
            });
        }
        if offset >= offsets.last_stable {
            bytes = Bytes::new();
        } else {
            let (headers, _) = batch::scan_valid(&bytes);
            let keep: usize = headers
                .iter()
                .take_while(|h| h.base_offset < offsets.last_stable)
                .map(|h| h.size)
                .sum();
            bytes.truncate(keep);
        }
        let end = batch::scan_valid(&bytes)
            .0
            .last()
            .map_or(offset, |h| h.last_offset() + 1);
        let aborted = data.txns.aborted_between(offset, end);
        Ok(Read {
            bytes,
            offsets,
            aborted,
        })
    }

    /// Keeps only the latest record of each key (log compaction), as Kafka's cleaner does:
    /// the cleanable ranges (a disk log's inactive segments; the active one is never
    /// touched) are read to find each key's latest offset, then rewritten one at a time and
    /// swapped in. The partition lock is held only to read one range and to swap one in, so
    /// produce and fetch go on in between. Control and transactional batches are kept
    /// whole. Returns how many records went.
    pub(crate) fn compact(&self, max_decompressed: usize) -> Result<usize, LogError> {
        let ranges = lock(&self.inner).log.cleanable_ranges();
        let mut latest: HashMap<Bytes, i64> = HashMap::new();
        for &(base, next) in &ranges {
            for (h, b) in self.read_range(base, next)? {
                if let Some(set) = compaction::decode(&h, &b, max_decompressed)? {
                    for r in set.records {
                        if let Some(k) = r.key {
                            latest.insert(k, r.offset);
                        }
                    }
                }
            }
        }
        let mut removed = 0;
        for &(base, next) in &ranges {
            let batches = self.read_range(base, next)?;
            let (kept, gone) = compaction::clean(batches, &latest, max_decompressed)?;
            if gone == 0 {
                continue;
            }
            let mut data = lock(&self.inner);
            // Retention, DeleteRecords or (in memory) an append may have changed the range
            // meanwhile; it is then left for the next round.
            if !data.log.cleanable_ranges().contains(&(base, next)) {
                continue;
            }
            data.log.replace_range(base, kept)?;
            removed += gone;
        }
        Ok(removed)
    }

    /// The batches of one cleanable range, read under the lock.
    fn read_range(&self, base: i64, next: i64) -> Result<Vec<(BatchHeader, Bytes)>, LogError> {
        let data = lock(&self.inner);
        let mut out = Vec::new();
        data.log.scan_range(base, next, &mut |h, b| {
            out.push((*h, Bytes::copy_from_slice(b)))
        })?;
        Ok(out)
    }

    /// Writes a commit or abort marker for `producer_id`'s transaction; returns its offset.
    pub(crate) fn write_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        timestamp: i64,
    ) -> Result<i64, LogError> {
        let leader_epoch = self.leader_epoch();
        let mut data = lock(&self.inner);
        let offset = data.log.end_offset();
        let marker = markers::marker(producer_id, epoch, commit, 0, timestamp);
        let mut h = BatchHeader::parse(&marker).map_err(|e| LogError::Corrupt {
            path: "marker".into(),
            reason: e.to_string(),
        })?;
        h.base_offset = offset;
        h.leader_epoch = leader_epoch;
        data.log.append(&h, marker)?;
        data.producers.record(&h);
        data.txns.on_append(&h, Some(commit));
        drop(data);
        // The marker moves the last stable offset: read_committed fetches may now answer.
        self.waiters.wake();
        Ok(offset)
    }

    /// Wakes `waiter` at this partition's next append (a parked fetch).
    pub(crate) fn wake_on_append(&self, waiter: &Arc<Notify>) {
        self.waiters.register(waiter);
    }

    /// The open transaction's first offset here for `producer_id`, and the producers seen.
    pub(crate) fn producers(&self) -> Vec<crate::txn::producer_state::ProducerSummary> {
        let data = lock(&self.inner);
        data.producers
            .summaries()
            .into_iter()
            .map(|mut p| {
                p.txn_start_offset = data.txns.open_since(p.producer_id).unwrap_or(-1);
                p
            })
            .collect()
    }

    /// Runs `f` with the log locked (for lookups that need several calls).
    pub(crate) fn with_log<R>(&self, f: impl FnOnce(&mut dyn Log) -> R) -> R {
        let mut data = lock(&self.inner);
        f(data.log.as_mut())
    }

    /// Applies retention; returns the bytes removed. What the partition knows of aborted
    /// transactions wholly below the new log start goes too.
    pub(crate) fn apply_retention(&self, now_ms: i64) -> Result<u64, LogError> {
        let mut data = lock(&self.inner);
        let removed = data.log.apply_retention(now_ms)?;
        let start = data.log.start_offset();
        data.txns.trim(start);
        Ok(removed)
    }

    /// DeleteRecords: moves the log start offset to `target`; returns the new log start.
    pub(crate) fn advance_start_offset(&self, target: i64) -> Result<i64, LogError> {
        let mut data = lock(&self.inner);
        data.log.advance_start_offset(target)?;
        let start = data.log.start_offset();
        data.txns.trim(start);
        Ok(start)
    }

    /// Aborted transactions the partition still indexes (for tests of trimming).
    #[cfg(test)]
    pub(crate) fn aborted_count(&self) -> usize {
        lock(&self.inner)
            .txns
            .aborted_between(i64::MIN, i64::MAX)
            .len()
    }

    /// Flushes the log and writes the producer-state snapshot.
    pub(crate) fn flush(&self) -> Result<(), LogError> {
        let mut data = lock(&self.inner);
        data.log.flush()?;
        if let Some(path) = &self.snapshot_path {
            let snapshot = ProducerSnapshot {
                offset: data.log.end_offset(),
                producers: data.producers.clone(),
                txns: data.txns.clone(),
            };
            write_snapshot(path, &snapshot)?;
        }
        Ok(())
    }

    /// End offset of `epoch` as OffsetForLeaderEpoch defines it: the start offset of the
    /// next higher epoch, or the log end for the current one; `None` if unknown.
    pub(crate) fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let end = lock(&self.inner).log.end_offset();
        lock(&self.epochs).end_offset_for(epoch, end)
    }
}

fn read_snapshot(path: &std::path::Path) -> Option<ProducerSnapshot> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable producer-state snapshot");
            None
        }
    }
}

fn write_snapshot(path: &std::path::Path, snapshot: &ProducerSnapshot) -> Result<(), LogError> {
    let json = serde_json::to_vec(snapshot).map_err(|e| LogError::Corrupt {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json).map_err(|e| LogError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| LogError::io(path, e))
}

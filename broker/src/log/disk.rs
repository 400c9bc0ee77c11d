//! Disk log: one partition stored in a directory the way Kafka lays it out.
//!
//! ```text
//! <dir>/00000000000000000000.log        record batches back to back, bytes exactly as appended
//! <dir>/00000000000000000000.index      sparse offset index: (relative offset u32, position u32)
//! <dir>/00000000000000000000.timeindex  time index: (timestamp i64, relative offset u32)
//! <dir>/00000000000000001234.log        next segment, named by its base offset (20 digits)
//! …
//! <dir>/log-start-offset                logical start offset as text (DeleteRecords), optional
//! ```
//!
//! All index integers are big-endian. The offset index gets one entry, for the batch starting
//! there, each time at least `index_interval_bytes` of log were written since the previous
//! entry. At the same points the time index gets `(max timestamp so far, relative base offset
//! of the first batch that reached it)` when that timestamp is larger than the previous
//! entry's; when a segment stops being the active one a final entry records the segment's max
//! timestamp. An entry `(t, r)` therefore means "every batch before `r` has a max timestamp
//! below `t`", and the last entry of an inactive segment is its max timestamp. Both indexes
//! are also kept in memory (a `Vec` per segment) for lookups; entries are appended to the
//! files as they are created.
//!
//! Only the last segment is written (it is opened for append; every batch is one `write_all`,
//! followed by `sync_data` when `fsync` is configured). A new segment is rolled when the next
//! batch would push the active one beyond `segment_bytes`, or when the active segment's first
//! batch was appended more than `segment_ms` ago. Reads use `pread` (`FileExt::read_at`) into
//! a fresh buffer: nothing but the indexes is held in memory.
//!
//! Recovery on open:
//! * every segment but the last keeps its indexes if both files are present and sane
//!   (whole entries, increasing, pointing at real batch headers); otherwise they are rebuilt
//!   by walking the batch headers;
//! * the last segment is walked batch by batch with full validation (CRC included) and the
//!   file is cut at the first invalid or incomplete batch (a torn tail after a crash); its
//!   indexes are rebuilt;
//! * the end offset is the last batch's last offset + 1, or the base offset of an empty last
//!   segment; the start offset is the larger of the first segment's base offset and the
//!   number in `log-start-offset`.
//!
//! Retention deletes whole segments, oldest first, and never the active one; when the active
//! segment itself has expired, an empty segment is rolled at the end offset first (as Kafka
//! does) so the expired one can go.
//!
//! Compaction rewrites one inactive segment at a time (`replace_range`): the new batches go
//! to `<base>.cleaned`, which is synced and renamed over `<base>.log` after the segment's
//! indexes are removed; the indexes are then rebuilt. The active segment is never rewritten.

use super::batch::BatchHeader;
use super::{Log, LogConfig, LogError};
use crate::clock::Clock;
use bytes::Bytes;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

mod files;
mod index;
mod segment;
use files::*;
use segment::*;

/// `<dir>.<suffix>` beside `dir`, named from the whole directory name: `with_extension`
/// would give `orders.v1-0` and `orders.v2-0` the same `orders.old`.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    dir.with_file_name(name)
}

/// A partition log stored in segment files under one directory.
#[derive(Debug)]
pub(crate) struct DiskLog {
    dir: PathBuf,
    /// The broker's clock: `log.roll.ms` counts in its time (tests move it forward).
    clock: Clock,
    config: LogConfig,
    /// Sorted by base offset, never empty; the last one is the active segment.
    segments: Vec<Segment>,
    start_offset: i64,
}

impl DiskLog {
    /// Rolls segments on `clock`'s time rather than the wall's.
    pub(crate) fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Opens (creating it if missing) the log in `dir` and recovers what is there.
    pub(crate) fn open(dir: &Path, config: LogConfig) -> Result<DiskLog, LogError> {
        let old = sibling(dir, "old");
        if !dir.exists() && old.exists() {
            // Versions before segment-wise compaction swapped whole directories; one such
            // swap was interrupted: the previous log is still whole.
            fs::rename(&old, dir).map_err(|e| LogError::io(dir, e))?;
        }
        fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
        let bases = list_segments(dir)?;
        let persisted_start = read_start_offset(dir);
        let interval = config.index_interval_bytes;
        let mut segments = Vec::with_capacity(bases.len().max(1));
        if let Some((&last, rest)) = bases.split_last() {
            for &base in rest {
                segments.push(Segment::load(dir, base, interval)?);
            }
            segments.push(Segment::recover(dir, last, interval)?);
        } else {
            segments.push(Segment::create(dir, persisted_start.unwrap_or(0).max(0))?);
        }
        let mut log = DiskLog {
            dir: dir.to_path_buf(),
            clock: Clock::default(),
            config,
            start_offset: 0,
            segments,
        };
        log.start_offset = log.segments[0]
            .base_offset
            .max(persisted_start.unwrap_or(0));
        if log.start_offset > log.end_offset() {
            // The start offset outlived the data (e.g. a torn tail): start over there.
            tracing::warn!(
                dir = %dir.display(),
                start = log.start_offset,
                end = log.end_offset(),
                "log start offset beyond the log end; removing all segments"
            );
            let start = log.start_offset;
            log.roll(start)?;
            log.delete_front(log.segments.len() - 1)?;
        }
        log.delete_below_start()?;
        tracing::debug!(
            dir = %dir.display(),
            segments = log.segments.len(),
            start = log.start_offset,
            end = log.end_offset(),
            "opened disk log"
        );
        Ok(log)
    }

    fn active(&self) -> &Segment {
        &self.segments[self.segments.len() - 1]
    }

    fn active_mut(&mut self) -> &mut Segment {
        let last = self.segments.len() - 1;
        &mut self.segments[last]
    }

    fn out_of_range(&self, offset: i64) -> LogError {
        LogError::OutOfRange {
            offset,
            start: self.start_offset,
            end: self.end_offset(),
        }
    }

    fn should_roll(&self, batch_size: u64, last_offset: i64) -> bool {
        let active = self.active();
        if active.is_empty() {
            return false;
        }
        let new_size = active.size + batch_size;
        new_size > self.config.segment_bytes
            || new_size > U32_LIMIT
            || active.relative(last_offset).is_none()
            || active
                .first_append_ms
                .is_some_and(|t| self.clock.now_ms() - t > self.config.segment_ms)
    }

    /// Makes a new, empty segment at `base_offset` the active one.
    fn roll(&mut self, base_offset: i64) -> Result<(), LogError> {
        let fsync = self.config.fsync;
        self.active_mut().deactivate(fsync)?;
        let seg = Segment::create(&self.dir, base_offset)?;
        tracing::debug!(path = %seg.log_path.display(), "rolled new segment");
        self.segments.push(seg);
        Ok(())
    }

    /// Deletes the `n` oldest segments (never the active one); returns the bytes freed.
    fn delete_front(&mut self, n: usize) -> Result<u64, LogError> {
        let n = n.min(self.segments.len() - 1);
        let mut freed = 0;
        for seg in self.segments.drain(..n) {
            tracing::debug!(path = %seg.log_path.display(), "deleting segment");
            freed += seg.delete()?;
        }
        self.start_offset = self.start_offset.max(self.segments[0].base_offset);
        Ok(freed)
    }

    /// Deletes the leading segments that hold only offsets below the start offset.
    fn delete_below_start(&mut self) -> Result<u64, LogError> {
        let n = self.segments[..self.segments.len() - 1]
            .iter()
            .take_while(|s| s.next_offset <= self.start_offset)
            .count();
        self.delete_front(n)
    }

    fn write_start_offset(&self, offset: i64) -> Result<(), LogError> {
        let tmp = self.dir.join(START_OFFSET_TMP);
        let dst = self.dir.join(START_OFFSET_FILE);
        let mut f = File::create(&tmp).map_err(|e| LogError::io(&tmp, e))?;
        f.write_all(format!("{offset}\n").as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| LogError::io(&tmp, e))?;
        drop(f);
        fs::rename(&tmp, &dst).map_err(|e| LogError::io(&dst, e))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| LogError::io(&self.dir, e))
    }

    /// Index of the first segment that may hold offsets ≥ the start offset.
    fn first_live_segment(&self) -> usize {
        self.segments
            .partition_point(|s| s.base_offset <= self.start_offset)
            .saturating_sub(1)
    }

    fn read_whole(&self, seg: &Segment, pos: u64, size: usize) -> Result<Bytes, LogError> {
        Ok(Bytes::from(seg.read_bytes(pos, size)?))
    }
}

/// Base offsets of the segments in `dir`, sorted; removes orphan index files.
fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
        let path = entry.map_err(|e| LogError::io(dir, e))?.path();
        let (Some(stem), Some(ext)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|s| s.to_str()),
        ) else {
            continue;
        };
        let Some(base) = parse_base_offset(stem) else {
            continue;
        };
        match ext {
            LOG_EXT => logs.push(base),
            INDEX_EXT | TIME_INDEX_EXT => indexes.push((base, path)),
            // A compaction that did not get to swap its segment in: the old one is whole.
            CLEANED_EXT => remove_if_present(&path)?,
            _ => {}
        }
    }
    logs.sort_unstable();
    for (base, path) in indexes {
        if logs.binary_search(&base).is_err() {
            tracing::warn!(path = %path.display(), "removing orphan index file");
            remove_if_present(&path)?;
        }
    }
    remove_if_present(&dir.join(START_OFFSET_TMP))?;
    Ok(logs)
}

/// The persisted log start offset, if the file is there and readable.
fn read_start_offset(dir: &Path) -> Option<i64> {
    let path = dir.join(START_OFFSET_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read log start offset");
            return None;
        }
    };
    match text.trim().parse::<i64>() {
        Ok(v) if v >= 0 => Some(v),
        _ => {
            tracing::warn!(path = %path.display(), "ignoring malformed log start offset");
            None
        }
    }
}

impl Log for DiskLog {
    fn start_offset(&self) -> i64 {
        self.start_offset
    }

    fn end_offset(&self) -> i64 {
        self.active().next_offset
    }

    fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    fn append(&mut self, header: &BatchHeader, batch: Bytes) -> Result<(), LogError> {
        if batch.len() != header.size {
            return Err(corrupt(
                &self.active().log_path,
                format!(
                    "batch is {} bytes, header says {}",
                    batch.len(),
                    header.size
                ),
            ));
        }
        if header.base_offset < self.end_offset() {
            return Err(corrupt(
                &self.active().log_path,
                format!(
                    "batch base offset {} is below the log end offset {}",
                    header.base_offset,
                    self.end_offset()
                ),
            ));
        }
        if self.should_roll(batch.len() as u64, header.last_offset()) {
            self.roll(header.base_offset)?;
        }
        let (config, now) = (self.config, self.clock.now_ms());
        self.active_mut().append(header, &batch, &config, now)
    }

    fn read(&self, offset: i64, max_bytes: usize) -> Result<Bytes, LogError> {
        let end = self.end_offset();
        if offset < self.start_offset || offset > end {
            return Err(self.out_of_range(offset));
        }
        // The segment that may hold `offset`, then the batch holding it (or the next one).
        let mut i = self
            .segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1);
        let mut found = None;
        while i < self.segments.len() && found.is_none() {
            let seg = &self.segments[i];
            found = seg.find_batch(seg.position_of(offset), |h| h.last_offset() >= offset)?;
            if found.is_none() {
                i += 1;
            }
        }
        let Some((mut pos, first)) = found else {
            return Ok(Bytes::new());
        };
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        let mut total = 0usize;
        let mut first_size = Some(first.size);
        while i < self.segments.len() {
            let (chunk, at_end) =
                self.segments[i].read_chunk(pos, first_size, max_bytes.saturating_sub(total))?;
            first_size = None;
            total += chunk.len();
            chunks.push(chunk);
            if !at_end || total >= max_bytes {
                break;
            }
            i += 1;
            pos = 0;
        }
        if chunks.len() == 1 {
            return Ok(Bytes::from(chunks.pop().unwrap_or_default()));
        }
        Ok(Bytes::from(chunks.concat()))
    }

    fn batch_by_timestamp(&self, timestamp: i64) -> Result<Option<Bytes>, LogError> {
        let start = self.start_offset;
        for seg in &self.segments[self.first_live_segment()..] {
            if seg.max_ts.is_none_or(|m| m.timestamp < timestamp) {
                continue;
            }
            let from = seg
                .position_of(start)
                .max(seg.position_for_timestamp(timestamp));
            let found = seg.find_batch(from, |h| {
                h.last_offset() >= start && h.max_timestamp >= timestamp
            })?;
            if let Some((pos, h)) = found {
                return self.read_whole(seg, pos, h.size).map(Some);
            }
        }
        Ok(None)
    }

    fn max_timestamp_batch(&self) -> Result<Option<Bytes>, LogError> {
        let mut best: Option<(&Segment, MaxTimestamp)> = None;
        for seg in &self.segments[self.first_live_segment()..] {
            if let Some(m) = seg.max_timestamp_from(self.start_offset)? {
                if best.is_none_or(|(_, b)| m.timestamp > b.timestamp) {
                    best = Some((seg, m));
                }
            }
        }
        match best {
            Some((seg, m)) => self.read_whole(seg, m.pos, m.size).map(Some),
            None => Ok(None),
        }
    }

    fn flush(&mut self) -> Result<(), LogError> {
        self.active().sync()
    }

    fn apply_retention(&mut self, now_ms: i64) -> Result<u64, LogError> {
        let mut freed = 0;
        let retention_ms = self.config.retention_ms;
        if retention_ms >= 0 {
            let expired =
                |s: &Segment| s.max_ts.is_none_or(|m| now_ms - m.timestamp > retention_ms);
            let last = self.segments.len() - 1;
            let mut n = self.segments[..last]
                .iter()
                .take_while(|s| expired(s))
                .count();
            if n == last && !self.active().is_empty() && expired(self.active()) {
                let end = self.end_offset();
                self.roll(end)?;
                n += 1;
            }
            freed += self.delete_front(n)?;
        }
        if self.config.retention_bytes >= 0 {
            let limit = self.config.retention_bytes as u64;
            let mut size = self.size_bytes();
            let mut n = 0;
            for seg in &self.segments[..self.segments.len() - 1] {
                if size <= limit {
                    break;
                }
                size -= seg.size;
                n += 1;
            }
            freed += self.delete_front(n)?;
        }
        Ok(freed)
    }

    fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    fn cleanable_ranges(&self) -> Vec<(i64, i64)> {
        self.segments
            .windows(2)
            .filter(|w| !w[0].is_empty())
            .map(|w| (w[0].base_offset, w[1].base_offset))
            .collect()
    }

    /// Writes the batches to `<base>.cleaned`, syncs it, drops the segment's indexes and
    /// renames the file over `<base>.log`; the indexes are then rebuilt. A crash before the
    /// rename leaves the old segment whole (the `.cleaned` file is removed at open); after
    /// it, the missing indexes are rebuilt at open.
    fn replace_range(
        &mut self,
        base: i64,
        batches: Vec<(BatchHeader, Bytes)>,
    ) -> Result<(), LogError> {
        let last = self.segments.len() - 1;
        let i = self.segments[..last]
            .iter()
            .position(|s| s.base_offset == base)
            .ok_or_else(|| corrupt(&self.dir, format!("no inactive segment at offset {base}")))?;
        let next = self.segments[i + 1].base_offset;
        if let Some((h, _)) = batches
            .iter()
            .find(|(h, _)| h.base_offset < base || h.last_offset() >= next)
        {
            return Err(corrupt(
                &self.segments[i].log_path,
                format!(
                    "batch at {} is outside the segment [{base}, {next})",
                    h.base_offset
                ),
            ));
        }
        let cleaned = segment_path(&self.dir, base, CLEANED_EXT);
        {
            let mut file = File::create(&cleaned).map_err(|e| LogError::io(&cleaned, e))?;
            for (h, b) in &batches {
                let prefix = super::batch::stored_prefix(b, h);
                write_all_vectored(&mut file, &prefix, &b[prefix.len()..])
                    .map_err(|e| LogError::io(&cleaned, e))?;
            }
            file.sync_all().map_err(|e| LogError::io(&cleaned, e))?;
        }
        let seg = &self.segments[i];
        remove_if_present(&seg.index_path)?;
        remove_if_present(&seg.time_index_path)?;
        fs::rename(&cleaned, &seg.log_path).map_err(|e| LogError::io(&cleaned, e))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| LogError::io(&self.dir, e))?;
        self.segments[i] = Segment::rewritten(&self.dir, base, self.config.index_interval_bytes)?;
        Ok(())
    }

    fn advance_start_offset(&mut self, offset: i64) -> Result<(), LogError> {
        if offset > self.end_offset() {
            return Err(self.out_of_range(offset));
        }
        if offset <= self.start_offset {
            return Ok(());
        }
        self.write_start_offset(offset)?;
        self.start_offset = offset;
        if offset == self.end_offset() && !self.active().is_empty() {
            // Everything is gone: roll so the old active segment can be deleted too.
            self.roll(offset)?;
        }
        self.delete_below_start()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;

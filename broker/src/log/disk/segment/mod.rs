//! One segment of a disk log: its `.log` file, the offset and time indexes beside it,
//! and the recovery that rebuilds them (see the parent module's layout).

use super::super::batch::{stored_prefix, BatchHeader, HEADER_LEN};
use super::super::{now_ms, LogConfig, LogError};
use super::files::*;
use super::index::*;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

mod reads;

/// The batch holding a segment's largest timestamp (the first one on ties).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MaxTimestamp {
    pub(super) timestamp: i64,
    pub(super) base_offset: i64,
    pub(super) last_offset: i64,
    pub(super) pos: u64,
    pub(super) size: usize,
}

impl MaxTimestamp {
    pub(super) fn of(pos: u64, h: &BatchHeader) -> Self {
        Self {
            timestamp: h.max_timestamp,
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            pos,
            size: h.size,
        }
    }
}

/// How the batches of a segment are checked while walking them to rebuild its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    /// Headers only (segments that were complete before the last shutdown).
    Headers,
    /// Whole batches including the CRC (the last segment, which may have a torn tail).
    Full,
}

/// One `.log` file with its two indexes.
#[derive(Debug)]
pub(super) struct Segment {
    pub(super) base_offset: i64,
    pub(super) log_path: PathBuf,
    pub(super) index_path: PathBuf,
    pub(super) time_index_path: PathBuf,
    /// Opened for reading and appending.
    pub(super) file: File,
    pub(super) size: u64,
    /// Last offset of the last batch + 1; the base offset while empty.
    pub(super) next_offset: i64,
    pub(super) index: Vec<IndexEntry>,
    pub(super) time_index: Vec<TimeEntry>,
    pub(super) max_ts: Option<MaxTimestamp>,
    pub(super) bytes_since_index: u64,
    /// Present on the active segment only.
    pub(super) writers: Option<IndexWriters>,
    /// The broker's time of the first append (approximated by the file's age after a
    /// restart).
    pub(super) first_append_ms: Option<i64>,
}

impl Segment {
    pub(super) fn new(dir: &Path, base_offset: i64, file: File) -> Self {
        Self {
            base_offset,
            log_path: segment_path(dir, base_offset, LOG_EXT),
            index_path: segment_path(dir, base_offset, INDEX_EXT),
            time_index_path: segment_path(dir, base_offset, TIME_INDEX_EXT),
            file,
            size: 0,
            next_offset: base_offset,
            index: Vec::new(),
            time_index: Vec::new(),
            max_ts: None,
            bytes_since_index: 0,
            writers: None,
            first_append_ms: None,
        }
    }

    /// Creates a new, empty active segment.
    pub(super) fn create(dir: &Path, base_offset: i64) -> Result<Self, LogError> {
        let path = segment_path(dir, base_offset, LOG_EXT);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| LogError::io(&path, e))?;
        let mut seg = Self::new(dir, base_offset, file);
        seg.write_index_files()?;
        seg.open_writers()?;
        Ok(seg)
    }

    pub(super) fn open_existing(dir: &Path, base_offset: i64) -> Result<Self, LogError> {
        let path = segment_path(dir, base_offset, LOG_EXT);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| LogError::io(&path, e))?;
        let len = file.metadata().map_err(|e| LogError::io(&path, e))?.len();
        let mut seg = Self::new(dir, base_offset, file);
        seg.size = len;
        Ok(seg)
    }

    /// Opens a segment that is not the last one: its indexes are trusted when sane.
    pub(super) fn load(dir: &Path, base_offset: i64, interval: u64) -> Result<Self, LogError> {
        let mut seg = Self::open_existing(dir, base_offset)?;
        match seg.load_indexes() {
            Ok(()) => Ok(seg),
            Err(reason) => {
                tracing::warn!(path = %seg.index_path.display(), %reason, "rebuilding segment indexes");
                seg.build_indexes(interval)?;
                Ok(seg)
            }
        }
    }

    /// Opens an inactive segment whose log was just rewritten (compaction): new indexes.
    pub(super) fn rewritten(dir: &Path, base_offset: i64, interval: u64) -> Result<Self, LogError> {
        let mut seg = Self::open_existing(dir, base_offset)?;
        seg.build_indexes(interval)?;
        Ok(seg)
    }

    fn build_indexes(&mut self, interval: u64) -> Result<(), LogError> {
        self.rebuild(Check::Headers, interval)?;
        self.seal_time_index();
        self.write_index_files()
    }

    /// Opens the last segment: validates every batch, cuts a torn tail, rebuilds the indexes.
    pub(super) fn recover(dir: &Path, base_offset: i64, interval: u64) -> Result<Self, LogError> {
        let mut seg = Self::open_existing(dir, base_offset)?;
        seg.rebuild(Check::Full, interval)?;
        seg.write_index_files()?;
        seg.open_writers()?;
        if seg.size > 0 {
            seg.first_append_ms = Some(seg.file_age_ms());
        }
        Ok(seg)
    }

    /// Creation (or else modification) time of the log file, in ms since the epoch.
    pub(super) fn file_age_ms(&self) -> i64 {
        let Ok(meta) = self.file.metadata() else {
            return now_ms();
        };
        meta.created()
            .or_else(|_| meta.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or_else(now_ms, |d| d.as_millis() as i64)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Offset relative to the base offset, as stored in index entries.
    pub(super) fn relative(&self, offset: i64) -> Option<u32> {
        u32::try_from(offset - self.base_offset).ok()
    }

    // ----- state tracking -------------------------------------------------------------

    /// Accounts for the batch `h` stored at `pos` (which must be the current end of the
    /// segment); returns the index entries it produced.
    pub(super) fn track(&mut self, pos: u64, h: &BatchHeader, interval: u64) -> NewEntries {
        let mut new = NewEntries::default();
        if self.max_ts.is_none_or(|m| h.max_timestamp > m.timestamp) {
            self.max_ts = Some(MaxTimestamp::of(pos, h));
        }
        if pos > 0 && pos <= U32_LIMIT && self.bytes_since_index >= interval {
            if let Some(rel) = self.relative(h.base_offset) {
                let entry = IndexEntry {
                    rel,
                    pos: pos as u32,
                };
                self.index.push(entry);
                new.index = Some(entry);
                new.time = self.maybe_time_entry();
                self.bytes_since_index = 0;
            }
        }
        self.bytes_since_index += h.size as u64;
        self.size = pos + h.size as u64;
        self.next_offset = h.last_offset() + 1;
        new
    }

    /// Adds a time index entry for the max timestamp so far when it is a new high.
    pub(super) fn maybe_time_entry(&mut self) -> Option<TimeEntry> {
        let m = self.max_ts?;
        if self
            .time_index
            .last()
            .is_some_and(|t| t.timestamp >= m.timestamp)
        {
            return None;
        }
        let entry = TimeEntry {
            timestamp: m.timestamp,
            rel: self.relative(m.base_offset)?,
        };
        self.time_index.push(entry);
        Some(entry)
    }

    /// Final time index entry of a segment that stops being active (in memory only).
    pub(super) fn seal_time_index(&mut self) -> Option<TimeEntry> {
        self.maybe_time_entry()
    }

    /// Forgets everything and walks the file from the start, cutting it at the first batch
    /// that fails `check`.
    pub(super) fn rebuild(&mut self, check: Check, interval: u64) -> Result<(), LogError> {
        let file_len = self.size;
        self.size = 0;
        self.next_offset = self.base_offset;
        self.index.clear();
        self.time_index.clear();
        self.max_ts = None;
        self.bytes_since_index = 0;
        let mut pos = 0u64;
        let mut buf = Vec::new();
        while pos < file_len {
            match self.checked_batch_at(pos, file_len, check, &mut buf)? {
                Ok(h) => {
                    self.track(pos, &h, interval);
                    pos += h.size as u64;
                }
                Err(reason) => {
                    tracing::warn!(
                        path = %self.log_path.display(),
                        position = pos,
                        dropped = file_len - pos,
                        %reason,
                        "truncated torn tail"
                    );
                    self.file
                        .set_len(pos)
                        .map_err(|e| LogError::io(&self.log_path, e))?;
                    break;
                }
            }
        }
        Ok(())
    }

    /// The batch at `pos` if it passes `check`, else why not (I/O errors are returned as such).
    pub(super) fn checked_batch_at(
        &self,
        pos: u64,
        file_len: u64,
        check: Check,
        buf: &mut Vec<u8>,
    ) -> Result<Result<BatchHeader, String>, LogError> {
        let remaining = file_len - pos;
        if remaining < HEADER_LEN as u64 {
            return Ok(Err(format!("incomplete header ({remaining} bytes)")));
        }
        let mut head = [0u8; HEADER_LEN];
        self.read_exact(&mut head, pos)?;
        let h = match BatchHeader::parse(&head) {
            Ok(h) => h,
            Err(e) => return Ok(Err(e.to_string())),
        };
        if h.size as u64 > remaining {
            return Ok(Err(format!(
                "incomplete batch ({} of {} bytes)",
                remaining, h.size
            )));
        }
        if h.base_offset < self.next_offset || self.relative(h.last_offset()).is_none() {
            return Ok(Err(format!(
                "batch base offset {} out of sequence (expected ≥ {})",
                h.base_offset, self.next_offset
            )));
        }
        if check == Check::Full {
            buf.resize(h.size, 0);
            self.read_exact(buf, pos)?;
            if let Err(e) = BatchHeader::validate(buf) {
                return Ok(Err(e.to_string()));
            }
        }
        Ok(Ok(h))
    }

    // ----- index files --------------------------------------------------------------------

    /// Loads both index files and derives the segment state from them; `Err` asks for a
    /// rebuild.
    pub(super) fn load_indexes(&mut self) -> Result<(), String> {
        let index = read_index_file(&self.index_path)?;
        let time_index = read_time_index_file(&self.time_index_path)?;
        for w in index.windows(2) {
            if w[1].rel <= w[0].rel || w[1].pos <= w[0].pos {
                return Err("offset index entries not increasing".into());
            }
        }
        for w in time_index.windows(2) {
            if w[1].rel <= w[0].rel || w[1].timestamp <= w[0].timestamp {
                return Err("time index entries not increasing".into());
            }
        }
        if index.last().is_some_and(|e| u64::from(e.pos) >= self.size) {
            return Err("offset index points past the end of the log".into());
        }
        self.index = index;
        self.time_index = time_index;
        self.derive_tail_state()?;
        self.derive_max_timestamp()
    }

    /// Finds `next_offset` (and the bytes since the last index entry) by walking the batches
    /// after the last index entry.
    pub(super) fn derive_tail_state(&mut self) -> Result<(), String> {
        let (mut pos, expected) = match self.index.last() {
            Some(e) => (u64::from(e.pos), Some(self.base_offset + i64::from(e.rel))),
            None => (0, None),
        };
        let mut next = self.base_offset;
        let mut since = 0u64;
        while pos < self.size {
            let h = self.header_at(pos).map_err(|e| e.to_string())?;
            if since == 0 && expected.is_some_and(|o| o != h.base_offset) {
                return Err("offset index entry does not match the batch it points at".into());
            }
            next = h.last_offset() + 1;
            since += h.size as u64;
            pos += h.size as u64;
        }
        if expected.is_some() && since == 0 {
            return Err("offset index entry points at no batch".into());
        }
        self.next_offset = next;
        self.bytes_since_index = since;
        Ok(())
    }

    /// The last time index entry is the segment's max timestamp; finds its batch.
    pub(super) fn derive_max_timestamp(&mut self) -> Result<(), String> {
        let Some(last) = self.time_index.last().copied() else {
            return if self.is_empty() {
                Ok(())
            } else {
                Err("time index is empty".into())
            };
        };
        let offset = self.base_offset + i64::from(last.rel);
        let found = self
            .find_batch(self.position_of(offset), |h| h.base_offset >= offset)
            .map_err(|e| e.to_string())?;
        match found {
            Some((pos, h)) if h.base_offset == offset && h.max_timestamp == last.timestamp => {
                self.max_ts = Some(MaxTimestamp::of(pos, &h));
                Ok(())
            }
            _ => Err("time index entry does not match the batch it points at".into()),
        }
    }

    /// Rewrites both index files from the in-memory entries.
    pub(super) fn write_index_files(&self) -> Result<(), LogError> {
        let mut index = Vec::with_capacity(self.index.len() * INDEX_ENTRY_LEN);
        for e in &self.index {
            index.extend_from_slice(&encode_index(e));
        }
        fs::write(&self.index_path, index).map_err(|e| LogError::io(&self.index_path, e))?;
        let mut time = Vec::with_capacity(self.time_index.len() * TIME_INDEX_ENTRY_LEN);
        for e in &self.time_index {
            time.extend_from_slice(&encode_time(e));
        }
        fs::write(&self.time_index_path, time).map_err(|e| LogError::io(&self.time_index_path, e))
    }

    pub(super) fn open_writers(&mut self) -> Result<(), LogError> {
        let open = |path: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| LogError::io(path, e))
        };
        self.writers = Some(IndexWriters {
            index: open(&self.index_path)?,
            time_index: open(&self.time_index_path)?,
        });
        Ok(())
    }

    pub(super) fn write_entries(&mut self, new: &NewEntries) -> Result<(), LogError> {
        let Some(w) = self.writers.as_mut() else {
            return Ok(());
        };
        if let Some(e) = &new.index {
            w.index
                .write_all(&encode_index(e))
                .map_err(|err| LogError::io(&self.index_path, err))?;
        }
        if let Some(e) = &new.time {
            w.time_index
                .write_all(&encode_time(e))
                .map_err(|err| LogError::io(&self.time_index_path, err))?;
        }
        Ok(())
    }

    // ----- writes ---------------------------------------------------------------------------

    pub(super) fn append(
        &mut self,
        h: &BatchHeader,
        batch: &[u8],
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let pos = self.size;
        let prefix = stored_prefix(batch, h);
        if let Err(e) = write_all_vectored(&mut self.file, &prefix, &batch[prefix.len()..]) {
            // Never leave half a batch behind for the next append to follow.
            let _ = self.file.set_len(pos);
            return Err(LogError::io(&self.log_path, e));
        }
        if config.fsync {
            self.file
                .sync_data()
                .map_err(|e| LogError::io(&self.log_path, e))?;
        }
        if self.first_append_ms.is_none() {
            self.first_append_ms = Some(now_ms);
        }
        let new = self.track(pos, h, config.index_interval_bytes);
        self.write_entries(&new)
    }

    /// Turns the active segment into an inactive one: final time entry, files synced when
    /// `fsync` is on, index handles closed.
    pub(super) fn deactivate(&mut self, fsync: bool) -> Result<(), LogError> {
        if let Some(e) = self.seal_time_index() {
            self.write_entries(&NewEntries {
                index: None,
                time: Some(e),
            })?;
        }
        if fsync {
            self.sync()?;
        }
        self.writers = None;
        Ok(())
    }

    pub(super) fn sync(&self) -> Result<(), LogError> {
        self.file
            .sync_data()
            .map_err(|e| LogError::io(&self.log_path, e))?;
        if let Some(w) = &self.writers {
            w.index
                .sync_data()
                .map_err(|e| LogError::io(&self.index_path, e))?;
            w.time_index
                .sync_data()
                .map_err(|e| LogError::io(&self.time_index_path, e))?;
        }
        Ok(())
    }

    /// Removes the segment's files (the log first: orphan indexes are cleaned up on open).
    pub(super) fn delete(self) -> Result<u64, LogError> {
        let size = self.size;
        let Segment {
            log_path,
            index_path,
            time_index_path,
            file,
            writers,
            ..
        } = self;
        drop(file);
        drop(writers);
        remove_if_present(&log_path)?;
        remove_if_present(&index_path)?;
        remove_if_present(&time_index_path)?;
        Ok(size)
    }
}

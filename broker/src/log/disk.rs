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

use super::batch::{stored_prefix, BatchHeader, HEADER_LEN};
use super::{now_ms, Log, LogConfig, LogError};
use crate::clock::Clock;
use bytes::Bytes;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Writes `head` then `tail` with as few system calls as the kernel allows.
fn write_all_vectored(file: &mut File, head: &[u8], tail: &[u8]) -> std::io::Result<()> {
    use std::io::IoSlice;
    let total = head.len() + tail.len();
    let mut written = 0;
    while written < total {
        let n = if written < head.len() {
            file.write_vectored(&[IoSlice::new(&head[written..]), IoSlice::new(tail)])?
        } else {
            file.write(&tail[written - head.len()..])?
        };
        if n == 0 {
            return Err(std::io::Error::new(
                ErrorKind::WriteZero,
                "log file accepted no bytes",
            ));
        }
        written += n;
    }
    Ok(())
}

const LOG_EXT: &str = "log";
const INDEX_EXT: &str = "index";
const TIME_INDEX_EXT: &str = "timeindex";
const START_OFFSET_FILE: &str = "log-start-offset";
const START_OFFSET_TMP: &str = "log-start-offset.tmp";
const INDEX_ENTRY_LEN: usize = 8;
const TIME_INDEX_ENTRY_LEN: usize = 12;
/// Largest relative offset or file position an index entry can hold.
const U32_LIMIT: u64 = u32::MAX as u64;

fn segment_path(dir: &Path, base_offset: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{ext}"))
}

/// Base offset encoded in a segment file stem (exactly 20 digits).
fn parse_base_offset(stem: &str) -> Option<i64> {
    if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse().ok()
    } else {
        None
    }
}

fn corrupt(path: &Path, reason: impl Into<String>) -> LogError {
    LogError::Corrupt {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn remove_if_present(path: &Path) -> Result<(), LogError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(LogError::io(path, e)),
        _ => Ok(()),
    }
}

/// Offset index entry: a batch starting at `base_offset + rel` lies at byte `pos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IndexEntry {
    rel: u32,
    pos: u32,
}

/// Time index entry: batches before `base_offset + rel` have max timestamps below `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TimeEntry {
    timestamp: i64,
    rel: u32,
}

/// The batch holding a segment's largest timestamp (the first one on ties).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MaxTimestamp {
    timestamp: i64,
    base_offset: i64,
    last_offset: i64,
    pos: u64,
    size: usize,
}

impl MaxTimestamp {
    fn of(pos: u64, h: &BatchHeader) -> Self {
        Self {
            timestamp: h.max_timestamp,
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            pos,
            size: h.size,
        }
    }
}

/// Index entries created by one append, to be written to the index files.
#[derive(Debug, Default)]
struct NewEntries {
    index: Option<IndexEntry>,
    time: Option<TimeEntry>,
}

/// Append handles of the active segment's index files.
#[derive(Debug)]
struct IndexWriters {
    index: File,
    time_index: File,
}

/// How the batches of a segment are checked while walking them to rebuild its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Headers only (segments that were complete before the last shutdown).
    Headers,
    /// Whole batches including the CRC (the last segment, which may have a torn tail).
    Full,
}

/// One `.log` file with its two indexes.
#[derive(Debug)]
struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    index_path: PathBuf,
    time_index_path: PathBuf,
    /// Opened for reading and appending.
    file: File,
    size: u64,
    /// Last offset of the last batch + 1; the base offset while empty.
    next_offset: i64,
    index: Vec<IndexEntry>,
    time_index: Vec<TimeEntry>,
    max_ts: Option<MaxTimestamp>,
    bytes_since_index: u64,
    /// Present on the active segment only.
    writers: Option<IndexWriters>,
    /// The broker's time of the first append (approximated by the file's age after a
    /// restart).
    first_append_ms: Option<i64>,
}

impl Segment {
    fn new(dir: &Path, base_offset: i64, file: File) -> Self {
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
    fn create(dir: &Path, base_offset: i64) -> Result<Self, LogError> {
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

    fn open_existing(dir: &Path, base_offset: i64) -> Result<Self, LogError> {
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
    fn load(dir: &Path, base_offset: i64, interval: u64) -> Result<Self, LogError> {
        let mut seg = Self::open_existing(dir, base_offset)?;
        match seg.load_indexes() {
            Ok(()) => Ok(seg),
            Err(reason) => {
                tracing::warn!(path = %seg.index_path.display(), %reason, "rebuilding segment indexes");
                seg.rebuild(Check::Headers, interval)?;
                seg.seal_time_index();
                seg.write_index_files()?;
                Ok(seg)
            }
        }
    }

    /// Opens the last segment: validates every batch, cuts a torn tail, rebuilds the indexes.
    fn recover(dir: &Path, base_offset: i64, interval: u64) -> Result<Self, LogError> {
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
    fn file_age_ms(&self) -> i64 {
        let Ok(meta) = self.file.metadata() else {
            return now_ms();
        };
        meta.created()
            .or_else(|_| meta.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or_else(now_ms, |d| d.as_millis() as i64)
    }

    fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Offset relative to the base offset, as stored in index entries.
    fn relative(&self, offset: i64) -> Option<u32> {
        u32::try_from(offset - self.base_offset).ok()
    }

    // ----- state tracking -------------------------------------------------------------

    /// Accounts for the batch `h` stored at `pos` (which must be the current end of the
    /// segment); returns the index entries it produced.
    fn track(&mut self, pos: u64, h: &BatchHeader, interval: u64) -> NewEntries {
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
    fn maybe_time_entry(&mut self) -> Option<TimeEntry> {
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
    fn seal_time_index(&mut self) -> Option<TimeEntry> {
        self.maybe_time_entry()
    }

    /// Forgets everything and walks the file from the start, cutting it at the first batch
    /// that fails `check`.
    fn rebuild(&mut self, check: Check, interval: u64) -> Result<(), LogError> {
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
    fn checked_batch_at(
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
    fn load_indexes(&mut self) -> Result<(), String> {
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
    fn derive_tail_state(&mut self) -> Result<(), String> {
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
    fn derive_max_timestamp(&mut self) -> Result<(), String> {
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
    fn write_index_files(&self) -> Result<(), LogError> {
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

    fn open_writers(&mut self) -> Result<(), LogError> {
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

    fn write_entries(&mut self, new: &NewEntries) -> Result<(), LogError> {
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

    fn append(
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
    fn deactivate(&mut self, fsync: bool) -> Result<(), LogError> {
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

    fn sync(&self) -> Result<(), LogError> {
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
    fn delete(self) -> Result<u64, LogError> {
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

    // ----- reads ----------------------------------------------------------------------------

    fn read_exact(&self, buf: &mut [u8], pos: u64) -> Result<(), LogError> {
        self.file
            .read_exact_at(buf, pos)
            .map_err(|e| LogError::io(&self.log_path, e))
    }

    fn read_bytes(&self, pos: u64, len: usize) -> Result<Vec<u8>, LogError> {
        let mut buf = vec![0u8; len];
        self.read_exact(&mut buf, pos)?;
        Ok(buf)
    }

    /// Header of the batch stored at `pos`, which must lie within the segment.
    fn header_at(&self, pos: u64) -> Result<BatchHeader, LogError> {
        if pos + HEADER_LEN as u64 > self.size {
            return Err(corrupt(
                &self.log_path,
                format!("partial batch header at {pos}"),
            ));
        }
        let mut head = [0u8; HEADER_LEN];
        self.read_exact(&mut head, pos)?;
        let h = BatchHeader::parse(&head)
            .map_err(|e| corrupt(&self.log_path, format!("at position {pos}: {e}")))?;
        if pos + h.size as u64 > self.size {
            return Err(corrupt(&self.log_path, format!("partial batch at {pos}")));
        }
        Ok(h)
    }

    /// Position of the last indexed batch at or before `offset` (0 without one).
    fn position_of(&self, offset: i64) -> u64 {
        let rel = offset - self.base_offset;
        let i = self.index.partition_point(|e| i64::from(e.rel) <= rel);
        if i == 0 {
            0
        } else {
            u64::from(self.index[i - 1].pos)
        }
    }

    /// Position from which to look for the first batch with max timestamp ≥ `timestamp`.
    fn position_for_timestamp(&self, timestamp: i64) -> u64 {
        let i = self.time_index.partition_point(|e| e.timestamp < timestamp);
        if i == 0 {
            0
        } else {
            self.position_of(self.base_offset + i64::from(self.time_index[i - 1].rel))
        }
    }

    /// Walks batch headers from `pos` to the first batch satisfying `pred`.
    fn find_batch(
        &self,
        mut pos: u64,
        mut pred: impl FnMut(&BatchHeader) -> bool,
    ) -> Result<Option<(u64, BatchHeader)>, LogError> {
        while pos < self.size {
            let h = self.header_at(pos)?;
            if pred(&h) {
                return Ok(Some((pos, h)));
            }
            pos += h.size as u64;
        }
        Ok(None)
    }

    /// Whole batches starting at `pos`: the first always, then more while the chunk stays
    /// within `budget` bytes. Returns the bytes and whether the segment end was reached.
    fn read_chunk(
        &self,
        pos: u64,
        first_size: Option<usize>,
        budget: usize,
    ) -> Result<(Vec<u8>, bool), LogError> {
        let available = usize::try_from(self.size - pos).unwrap_or(usize::MAX);
        let len = available.min(budget.max(first_size.unwrap_or(0)));
        let mut buf = self.read_bytes(pos, len)?;
        let mut used = 0;
        while used + HEADER_LEN <= buf.len() {
            let Ok(h) = BatchHeader::parse(&buf[used..]) else {
                break;
            };
            if used + h.size > buf.len() {
                break;
            }
            used += h.size;
        }
        if first_size.is_some_and(|s| used < s) {
            return Err(corrupt(
                &self.log_path,
                format!("unreadable batch at {pos}"),
            ));
        }
        buf.truncate(used);
        Ok((buf, used == available))
    }

    /// The segment's max timestamp batch among those with last offset ≥ `start`.
    fn max_timestamp_from(&self, start: i64) -> Result<Option<MaxTimestamp>, LogError> {
        match self.max_ts {
            Some(m) if m.last_offset >= start => Ok(Some(m)),
            None => Ok(None),
            Some(_) => {
                let mut best: Option<MaxTimestamp> = None;
                let mut pos = self.position_of(start);
                while pos < self.size {
                    let h = self.header_at(pos)?;
                    if h.last_offset() >= start
                        && best.is_none_or(|b| h.max_timestamp > b.timestamp)
                    {
                        best = Some(MaxTimestamp::of(pos, &h));
                    }
                    pos += h.size as u64;
                }
                Ok(best)
            }
        }
    }
}

fn encode_index(e: &IndexEntry) -> [u8; INDEX_ENTRY_LEN] {
    let mut out = [0u8; INDEX_ENTRY_LEN];
    out[..4].copy_from_slice(&e.rel.to_be_bytes());
    out[4..].copy_from_slice(&e.pos.to_be_bytes());
    out
}

fn encode_time(e: &TimeEntry) -> [u8; TIME_INDEX_ENTRY_LEN] {
    let mut out = [0u8; TIME_INDEX_ENTRY_LEN];
    out[..8].copy_from_slice(&e.timestamp.to_be_bytes());
    out[8..].copy_from_slice(&e.rel.to_be_bytes());
    out
}

fn read_entries(path: &Path, entry_len: usize) -> Result<Vec<[u8; 12]>, String> {
    let data = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if data.len() % entry_len != 0 {
        return Err(format!("{}: partial entry", path.display()));
    }
    Ok(data
        .chunks_exact(entry_len)
        .map(|c| {
            let mut e = [0u8; 12];
            e[..entry_len].copy_from_slice(c);
            e
        })
        .collect())
}

fn read_index_file(path: &Path) -> Result<Vec<IndexEntry>, String> {
    Ok(read_entries(path, INDEX_ENTRY_LEN)?
        .into_iter()
        .map(|e| IndexEntry {
            rel: u32::from_be_bytes([e[0], e[1], e[2], e[3]]),
            pos: u32::from_be_bytes([e[4], e[5], e[6], e[7]]),
        })
        .collect())
}

fn read_time_index_file(path: &Path) -> Result<Vec<TimeEntry>, String> {
    Ok(read_entries(path, TIME_INDEX_ENTRY_LEN)?
        .into_iter()
        .map(|e| TimeEntry {
            timestamp: i64::from_be_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]]),
            rel: u32::from_be_bytes([e[8], e[9], e[10], e[11]]),
        })
        .collect())
}

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
pub struct DiskLog {
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
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Opens (creating it if missing) the log in `dir` and recovers what is there.
    pub fn open(dir: &Path, config: LogConfig) -> Result<DiskLog, LogError> {
        let old = sibling(dir, "old");
        if !dir.exists() && old.exists() {
            // A compaction swap was interrupted: the previous log is still whole.
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

    /// Writes the new batches into a sibling directory, then swaps it in. A crash between
    /// the two renames leaves `<dir>.old`, which `open` moves back.
    fn replace(&mut self, batches: Vec<(BatchHeader, Bytes)>) -> Result<(), LogError> {
        let fresh_dir = sibling(&self.dir, "compacting");
        let old_dir = sibling(&self.dir, "old");
        let _ = fs::remove_dir_all(&fresh_dir);
        fs::create_dir_all(&fresh_dir).map_err(|e| LogError::io(&fresh_dir, e))?;
        let start = self.start_offset;
        fs::write(fresh_dir.join(START_OFFSET_FILE), format!("{start}\n"))
            .map_err(|e| LogError::io(&fresh_dir, e))?;
        {
            let mut fresh = DiskLog::open(&fresh_dir, self.config)?;
            for (h, b) in batches {
                fresh.append(&h, b)?;
            }
            fresh.flush()?;
        }
        // Files that are not the log's own (the partition's producer-state snapshot) move too.
        let entries = fs::read_dir(&self.dir).map_err(|e| LogError::io(&self.dir, e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            let name = entry.file_name();
            if ![LOG_EXT, INDEX_EXT, TIME_INDEX_EXT].contains(&ext) && name != START_OFFSET_FILE {
                fs::copy(&path, fresh_dir.join(&name)).map_err(|e| LogError::io(&path, e))?;
            }
        }
        fs::rename(&self.dir, &old_dir).map_err(|e| LogError::io(&self.dir, e))?;
        fs::rename(&fresh_dir, &self.dir).map_err(|e| LogError::io(&fresh_dir, e))?;
        let _ = fs::remove_dir_all(&old_dir);
        *self = DiskLog::open(&self.dir, self.config)?.with_clock(self.clock.clone());
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
mod tests {
    use super::*;
    use crate::log::batch::{scan_valid, stamp, tests::make_batch};
    use crate::log::memory::MemoryLog;

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 300,
            index_interval_bytes: 100,
            retention_ms: -1,
            retention_bytes: -1,
            ..LogConfig::default()
        }
    }

    fn append(log: &mut dyn Log, timestamps: &[i64]) -> Bytes {
        let base = log.end_offset();
        let b = stamp(&make_batch(0, timestamps), base, 0, None);
        let h = BatchHeader::validate(&b).unwrap();
        log.append(&h, b.clone()).unwrap();
        b
    }

    fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some(ext))
            .collect();
        out.sort();
        out
    }

    fn concat(batches: &[Bytes]) -> Vec<u8> {
        batches.iter().flat_map(|b| b.iter().copied()).collect()
    }

    /// Appends `n` batches of 1–3 records with increasing timestamps.
    fn fill(log: &mut dyn Log, n: usize) -> Vec<Bytes> {
        (0..n)
            .map(|i| {
                let ts = 1_000 + 10 * i as i64;
                let count = i % 3 + 1;
                let tss: Vec<i64> = (0..count as i64).map(|k| ts + k).collect();
                append(log, &tss)
            })
            .collect()
    }

    #[test]
    fn round_trip_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DiskLog::open(dir.path(), config()).unwrap();
        assert_eq!((log.start_offset(), log.end_offset()), (0, 0));
        assert!(log.read(0, 100).unwrap().is_empty());
        let batches = fill(&mut log, 30);
        assert!(files(dir.path(), "log").len() > 3, "segments rolled");
        assert!(files(dir.path(), "index")
            .iter()
            .any(|p| fs::metadata(p).unwrap().len() > 0));
        let all = log.read(0, usize::MAX).unwrap();
        assert_eq!(&all[..], &concat(&batches)[..]);
        assert_eq!(log.size_bytes(), all.len() as u64);
        for b in &batches {
            let h = BatchHeader::validate(b).unwrap();
            for o in h.base_offset..=h.last_offset() {
                assert_eq!(log.read(o, 1).unwrap(), *b, "offset {o}");
            }
        }
        let end = log.end_offset();
        assert!(log.read(end, 100).unwrap().is_empty());
        assert!(matches!(
            log.read(end + 1, 100),
            Err(LogError::OutOfRange { .. })
        ));
        // Each segment holds whole batches and starts at its name's offset.
        for p in files(dir.path(), "log") {
            let data = fs::read(&p).unwrap();
            let (headers, len) = scan_valid(&data);
            assert_eq!(len, data.len());
            let name: i64 = p.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            assert_eq!(headers[0].base_offset, name);
        }
    }

    #[test]
    fn max_bytes_and_middle_of_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DiskLog::open(dir.path(), config()).unwrap();
        let batches = fill(&mut log, 12);
        // Offset 1 is in the middle of the second batch (offsets 1..=2).
        let got = log.read(2, 1).unwrap();
        assert_eq!(got, batches[1]);
        let two = batches[1].len() + batches[2].len();
        assert_eq!(&log.read(1, two).unwrap()[..], &concat(&batches[1..3])[..]);
        assert_eq!(log.read(1, two - 1).unwrap(), batches[1]);
        // A read spanning several segments stops at the budget, with whole batches only.
        let budget = concat(&batches[2..9]).len() + 5;
        let got = log.read(3, budget).unwrap();
        assert_eq!(&got[..], &concat(&batches[2..9])[..]);
        assert!(files(dir.path(), "log").len() > 2);
    }

    #[test]
    fn behaves_like_the_memory_log() {
        // Small segments, and one big segment with many index entries.
        let big = LogConfig {
            segment_bytes: 1 << 20,
            index_interval_bytes: 150,
            ..config()
        };
        for cfg in [config(), big] {
            compare_with_memory_log(cfg);
        }
    }

    fn compare_with_memory_log(cfg: LogConfig) {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = DiskLog::open(dir.path(), cfg).unwrap();
        let mut mem = MemoryLog::new(cfg);
        let stamps: [&[i64]; 10] = [
            &[50, 10],
            &[20],
            &[90, 30, 40],
            &[60],
            &[90],
            &[5, 7],
            &[100],
            &[95, 96],
            &[100, 1],
            &[80],
        ];
        for _ in 0..3 {
            for s in stamps {
                append(&mut disk, s);
                append(&mut mem, s);
            }
        }
        let check = |disk: &DiskLog, mem: &MemoryLog| {
            assert_eq!(disk.start_offset(), mem.start_offset());
            assert_eq!(disk.end_offset(), mem.end_offset());
            for ts in [-1, 0, 6, 10, 11, 50, 61, 90, 91, 96, 100, 101] {
                assert_eq!(
                    disk.batch_by_timestamp(ts).unwrap(),
                    mem.batch_by_timestamp(ts).unwrap(),
                    "timestamp {ts}"
                );
            }
            assert_eq!(
                disk.max_timestamp_batch().unwrap(),
                mem.max_timestamp_batch().unwrap()
            );
            for o in mem.start_offset()..=mem.end_offset() {
                for max in [0, 100, 250, 1000] {
                    assert_eq!(disk.read(o, max).unwrap(), mem.read(o, max).unwrap());
                }
            }
        };
        check(&disk, &mem);
        disk.advance_start_offset(23).unwrap();
        mem.advance_start_offset(23).unwrap();
        check(&disk, &mem);
        drop(disk);
        let disk = DiskLog::open(dir.path(), cfg).unwrap();
        check(&disk, &mem);
    }

    #[test]
    fn batch_by_timestamp_uses_sparse_time_index() {
        let dir = tempfile::tempdir().unwrap();
        for segment_bytes in [1 << 20, 2_000] {
            let cfg = LogConfig {
                segment_bytes,
                index_interval_bytes: 300,
                ..config()
            };
            let mut log =
                DiskLog::open(dir.path().join(segment_bytes.to_string()).as_path(), cfg).unwrap();
            let batches: Vec<Bytes> = (0..100)
                .map(|i| append(&mut log, &[10 * i, 10 * i + 3]))
                .collect();
            assert!(log.segments.iter().any(|s| s.time_index.len() > 2));
            for ts in -5..1_000 {
                let want = batches.get(((ts + 6).max(0) / 10) as usize).cloned();
                assert_eq!(log.batch_by_timestamp(ts).unwrap(), want, "timestamp {ts}");
            }
            assert_eq!(log.max_timestamp_batch().unwrap().as_ref(), batches.last());
            drop(log);
            let log =
                DiskLog::open(dir.path().join(segment_bytes.to_string()).as_path(), cfg).unwrap();
            assert_eq!(
                log.batch_by_timestamp(555).unwrap(),
                Some(batches[56].clone())
            );
            assert_eq!(log.max_timestamp_batch().unwrap().as_ref(), batches.last());
        }
    }

    #[test]
    fn reopen_keeps_data_and_continues() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DiskLog::open(dir.path(), config()).unwrap();
        let mut batches = fill(&mut log, 20);
        let end = log.end_offset();
        log.flush().unwrap();
        let index_before: Vec<Vec<u8>> = files(dir.path(), "index")
            .iter()
            .map(|p| fs::read(p).unwrap())
            .collect();
        drop(log);
        let mut log = DiskLog::open(dir.path(), config()).unwrap();
        assert_eq!(log.end_offset(), end);
        assert_eq!(&log.read(0, usize::MAX).unwrap()[..], &concat(&batches)[..]);
        let index_after: Vec<Vec<u8>> = files(dir.path(), "index")
            .iter()
            .map(|p| fs::read(p).unwrap())
            .collect();
        assert_eq!(index_before, index_after);
        batches.extend(fill(&mut log, 5));
        assert_eq!(&log.read(0, usize::MAX).unwrap()[..], &concat(&batches)[..]);
    }

    #[test]
    fn torn_tail_is_truncated() {
        for tail in ["half", "garbage", "bad-crc"] {
            let dir = tempfile::tempdir().unwrap();
            let mut log = DiskLog::open(dir.path(), config()).unwrap();
            let mut batches = fill(&mut log, 10);
            let end = log.end_offset();
            drop(log);
            let last = files(dir.path(), "log").pop().unwrap();
            let good_len = fs::metadata(&last).unwrap().len();
            let extra = stamp(&make_batch(0, &[1, 2, 3]), end, 0, None);
            let mut f = OpenOptions::new().append(true).open(&last).unwrap();
            match tail {
                "half" => f.write_all(&extra[..extra.len() / 2]).unwrap(),
                "garbage" => f.write_all(&[0xab; 200]).unwrap(),
                _ => {
                    let mut bad = extra.to_vec();
                    let n = bad.len();
                    bad[n - 1] ^= 0xff;
                    f.write_all(&bad).unwrap();
                }
            }
            drop(f);
            let mut log = DiskLog::open(dir.path(), config()).unwrap();
            assert_eq!(log.end_offset(), end, "{tail}");
            assert_eq!(fs::metadata(&last).unwrap().len(), good_len, "{tail}");
            batches.push(append(&mut log, &[7, 8]));
            assert_eq!(log.end_offset(), end + 2);
            assert_eq!(&log.read(0, usize::MAX).unwrap()[..], &concat(&batches)[..]);
            drop(log);
            let log = DiskLog::open(dir.path(), config()).unwrap();
            assert_eq!(log.end_offset(), end + 2);
        }
    }

    #[test]
    fn corrupted_indexes_are_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DiskLog::open(dir.path(), config()).unwrap();
        let batches = fill(&mut log, 30);
        drop(log);
        let indexes = files(dir.path(), "index");
        let times = files(dir.path(), "timeindex");
        assert!(indexes.len() > 3);
        let original_index = fs::read(&indexes[1]).unwrap();
        assert!(!original_index.is_empty());
        let original_time = fs::read(&times[2]).unwrap();
        fs::write(&indexes[0], [1, 2, 3]).unwrap(); // partial entry
        fs::write(&indexes[1], [0, 0, 0, 1, 0, 0, 0, 7]).unwrap(); // points nowhere sane
        fs::remove_file(&times[2]).unwrap();
        let log = DiskLog::open(dir.path(), config()).unwrap();
        assert_eq!(&log.read(0, usize::MAX).unwrap()[..], &concat(&batches)[..]);
        assert_eq!(fs::metadata(&indexes[0]).unwrap().len() % 8, 0);
        assert_eq!(fs::read(&indexes[1]).unwrap(), original_index);
        assert_eq!(fs::read(&times[2]).unwrap(), original_time);
        for b in &batches {
            let h = BatchHeader::validate(b).unwrap();
            assert_eq!(log.read(h.last_offset(), 1).unwrap(), *b);
        }
    }

    #[test]
    fn retention_by_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DiskLog::open(dir.path(), config()).unwrap();
        let batches = fill(&mut log, 30);
        let segments = files(dir.path(), "log").len();
        let total = log.size_bytes();
        log.set_config(LogConfig {
            retention_bytes: 700,
            ..config()
        });
        let freed = log.apply_retention(now_ms()).unwrap();
        assert_eq!(log.size_bytes(), total - freed);
        assert!(log.size_bytes() <= 700);
        let remaining = files(dir.path(), "log");
        assert!(remaining.len() < segments);
        assert_eq!(files(dir.path(), "index").len(), remaining.len());
        assert_eq!(files(dir.path(), "timeindex").len(), remaining.len());
        let first: i64 = remaining[0]
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(log.start_offset(), first);
        assert!(matches!(
            log.read(first - 1, 100),
            Err(LogError::OutOfRange { .. })
        ));
        let kept = log.read(first, usize::MAX).unwrap();
        assert_eq!(kept.len() as u64, log.size_bytes());
        assert!(concat(&batches).ends_with(&kept));
        drop(log);
        let log = DiskLog::open(dir.path(), config()).unwrap();
        assert_eq!(log.start_offset(), first);
    }

    #[test]
    fn retention_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            retention_ms: 100,
            ..config()
        };
        let mut log = DiskLog::open(dir.path(), cfg).unwrap();
        for i in 0..10 {
            append(&mut log, &[1_000 + i]);
        }
        let batches: Vec<Bytes> = (0..10).map(|i| append(&mut log, &[5_000 + i])).collect();
        let end = log.end_offset();
        log.apply_retention(5_050).unwrap();
        assert!(log.start_offset() > 0 && log.start_offset() <= 10);
        let kept = log.read(log.start_offset(), usize::MAX).unwrap();
        assert!(kept.ends_with(&concat(&batches)));
        // Everything expired: the active segment rolls and goes too.
        log.apply_retention(100_000).unwrap();
        assert_eq!((log.start_offset(), log.end_offset()), (end, end));
        assert_eq!(log.size_bytes(), 0);
        assert_eq!(files(dir.path(), "log").len(), 1);
        assert!(log.read(end, 100).unwrap().is_empty());
        drop(log);
        // An empty log reopens at its segment's base offset and continues there.
        let mut log = DiskLog::open(dir.path(), cfg).unwrap();
        assert_eq!((log.start_offset(), log.end_offset()), (end, end));
        let b = append(&mut log, &[200_000]);
        assert_eq!(log.read(end, 1).unwrap(), b);
    }

    #[test]
    fn advance_start_offset_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DiskLog::open(dir.path(), config()).unwrap();
        let batches = fill(&mut log, 30);
        let segments = files(dir.path(), "log").len();
        let end = log.end_offset();
        log.advance_start_offset(25).unwrap();
        assert_eq!(log.start_offset(), 25);
        assert!(files(dir.path(), "log").len() < segments);
        assert!(matches!(log.read(24, 1), Err(LogError::OutOfRange { .. })));
        let h = BatchHeader::validate(&log.read(25, 1).unwrap()).unwrap();
        assert!(h.base_offset <= 25 && h.last_offset() >= 25);
        assert!(log.advance_start_offset(end + 1).is_err());
        log.advance_start_offset(10).unwrap(); // never moves back
        assert_eq!(log.start_offset(), 25);
        drop(log);
        let mut log = DiskLog::open(dir.path(), config()).unwrap();
        assert_eq!(log.start_offset(), 25);
        assert_eq!(log.end_offset(), end);
        assert!(concat(&batches).ends_with(&log.read(25, usize::MAX).unwrap()));
        log.advance_start_offset(end).unwrap();
        assert_eq!(log.size_bytes(), 0);
        assert!(log.read(end, 10).unwrap().is_empty());
        drop(log);
        let log = DiskLog::open(dir.path(), config()).unwrap();
        assert_eq!((log.start_offset(), log.end_offset()), (end, end));
    }

    #[test]
    fn rolls_on_segment_ms() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            segment_ms: 0,
            segment_bytes: 1 << 20,
            ..config()
        };
        let mut log = DiskLog::open(dir.path(), cfg).unwrap();
        append(&mut log, &[1]);
        std::thread::sleep(std::time::Duration::from_millis(5));
        append(&mut log, &[2]);
        assert_eq!(files(dir.path(), "log").len(), 2);
    }

    #[test]
    fn an_interrupted_swap_comes_back_to_its_own_partition_only() {
        let root = tempfile::tempdir().unwrap();
        let (v1, v2) = (
            root.path().join("orders.v1-0"),
            root.path().join("orders.v2-0"),
        );
        let batches = {
            let mut log = DiskLog::open(&v1, config()).unwrap();
            let b = fill(&mut log, 5);
            log.flush().unwrap();
            b
        };
        // The crash between the swap's two renames: only `<dir>.old` is left.
        fs::rename(&v1, sibling(&v1, "old")).unwrap();
        let other = DiskLog::open(&v2, config()).unwrap();
        assert_eq!(other.end_offset(), 0, "orders.v2-0 took orders.v1-0's data");
        let log = DiskLog::open(&v1, config()).unwrap();
        assert_eq!(log.end_offset(), 9); // 1 + 2 + 3 + 1 + 2 records
        assert_eq!(log.read(0, 1).unwrap(), batches[0]);
        assert!(!sibling(&v1, "old").exists());
    }

    #[test]
    fn segments_roll_on_the_brokers_clock() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Clock::default();
        let cfg = LogConfig {
            segment_bytes: 1 << 20,
            segment_ms: 3_600_000,
            ..config()
        };
        let mut log = DiskLog::open(dir.path(), cfg)
            .unwrap()
            .with_clock(clock.clone());
        append(&mut log, &[1]);
        append(&mut log, &[2]);
        assert_eq!(files(dir.path(), "log").len(), 1);
        clock.advance(std::time::Duration::from_secs(2 * 3600));
        append(&mut log, &[3]);
        assert_eq!(
            files(dir.path(), "log").len(),
            2,
            "log.roll.ms passed on the broker's clock"
        );
    }
}

//! A local spool for events the broker did not take in time: one append-only file per
//! topic (`<topic>.spool`), each entry framed with its length and a CRC-32 and fsynced,
//! appends serialized with an exclusive file lock (many agents at once), and drained in
//! order with the original event ids and timestamps. A drain holds a lock of its own
//! (`<topic>.drain.lock`) while it sends, and the file's lock only to read and to record
//! what was delivered, so an agent spooling meanwhile never waits for the network.
//!
//! ```text
//! entry := "AB" len:u32le crc32(payload):u32le payload len:u32le "BA"
//! payload := JSON {key, value, spooled_at_ms}
//! <topic>.spool       the entries, oldest first
//! <topic>.drained     how many bytes of it were delivered (the file is emptied once all were)
//! <topic>.drain.lock  held by the one drain (or drop) of that topic at a time
//! ```
//!
//! A crash mid-append leaves a torn last entry: reading stops there, counts it, and the
//! next append (which checks the last entry by its trailer, without reading the file)
//! cuts it off first. Past `AGENTBUS_SPOOL_MAX_BYTES` (256 MiB) the oldest agent-actions
//! entries (debug-class) are dropped, counted; the learning topics never are. A drain killed half-way sends
//! some entries again; their event ids let the sinks drop the second copy.

mod deliver;

pub use deliver::{deliver, Drainer};

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 2] = b"AB";
const HEADER: usize = 10;
const TRAILER: usize = 6;
const TRAILER_MAGIC: &[u8; 2] = b"BA";
/// The topic whose oldest entries give way when the spool is full.
const EXPENDABLE: &str = "agent-actions";
/// The default bound of the spool.
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Largest entry accepted (an event is far smaller).
const MAX_ENTRY: u32 = 16 * 1024 * 1024;

/// Why the spool could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The directory or a file cannot be read or written.
    #[error("spool {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// One spooled event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The record key (the topic's partition key).
    pub key: String,
    /// The event as JSON, as it would have been produced.
    pub value: String,
    /// When it was spooled (ms since the epoch).
    pub spooled_at_ms: i64,
}

/// What a spool file holds.
#[derive(Debug, Default)]
pub struct Contents {
    /// Entries not yet delivered, oldest first, with the byte offset after each.
    pub entries: Vec<(Entry, u64)>,
    /// Where the undelivered part starts.
    pub start: u64,
    /// Bytes at the end that are not a whole entry (a write cut short), dropped.
    pub torn_bytes: u64,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The entry is in the spool (false: the spool is full and it was an agent action).
    pub written: bool,
    /// Older agent-actions entries dropped to make room.
    pub dropped: usize,
}

/// Events waiting in one topic's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicStatus {
    /// The topic.
    pub topic: String,
    /// Entries waiting.
    pub waiting: usize,
    /// When the oldest was spooled (ms since the epoch).
    pub oldest_ms: Option<i64>,
    /// Bytes of the file.
    pub bytes: u64,
    /// Bytes of a torn last entry (a write cut short), dropped at the next append.
    pub torn_bytes: u64,
}

/// The spool in a directory.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Spool {
    /// The spool in `dir` (created on the first append).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// Bounds the undelivered bytes of all topics together.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// `AGENTBUS_SPOOL_DIR`, else `$XDG_STATE_HOME/agentbus/spool`, else
    /// `~/.local/state/agentbus/spool`, else `./.agentbus-spool`.
    pub fn default_dir() -> PathBuf {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        if let Some(d) = var("AGENTBUS_SPOOL_DIR") {
            return d.into();
        }
        if let Some(d) = var("XDG_STATE_HOME") {
            return PathBuf::from(d).join("agentbus/spool");
        }
        if let Some(h) = var("HOME") {
            return PathBuf::from(h).join(".local/state/agentbus/spool");
        }
        PathBuf::from(".agentbus-spool")
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, topic: &str) -> PathBuf {
        self.dir.join(format!("{topic}.spool"))
    }

    fn drained(&self, topic: &str) -> PathBuf {
        self.dir.join(format!("{topic}.drained"))
    }

    /// The lock that makes one drain (or drop of the oldest entries) of `topic` at a
    /// time; held until the returned file is dropped.
    fn drain_lock(&self, topic: &str) -> Result<File, SpoolError> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self.dir.join(format!("{topic}.drain.lock"));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        file.lock().map_err(io(&path))?;
        Ok(file)
    }

    fn open_locked(&self, topic: &str) -> Result<(File, PathBuf), SpoolError> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self.file(topic);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io(&path))?;
        file.lock().map_err(io(&path))?;
        Ok((file, path))
    }

    /// Appends one event, durably (fsync) before returning; says whether it was written
    /// and how many older agent-actions entries were dropped to stay within the bound (a
    /// new agent-actions entry that finds no older one to drop is not written).
    pub fn append(&self, topic: &str, entry: &Entry) -> Result<Appended, SpoolError> {
        let payload = serde_json::to_vec(entry).unwrap_or_default();
        let mut frame = Vec::with_capacity(HEADER + payload.len() + TRAILER);
        frame.extend_from_slice(MAGIC);
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        frame.extend_from_slice(&payload);
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(TRAILER_MAGIC);
        let mut dropped = 0;
        let over = (self.undelivered_bytes()? + frame.len() as u64).saturating_sub(self.max_bytes);
        if over > 0 {
            dropped = self.drop_expendable(over)?;
            if dropped == 0 && topic == EXPENDABLE {
                tracing::warn!(
                    "spool full ({} bytes): an agent-actions event was dropped",
                    self.max_bytes
                );
                return Ok(Appended {
                    written: false,
                    dropped: 0,
                });
            }
            if dropped > 0 {
                tracing::warn!(
                    "spool full ({} bytes): dropped the {dropped} oldest agent-actions event(s)",
                    self.max_bytes
                );
            }
        }
        let (mut file, path) = self.open_locked(topic)?;
        let len = file.metadata().map_err(io(&path))?.len();
        if !last_entry_whole(&mut file, len).map_err(io(&path))? {
            // A torn entry left by a crash: cut it off so this one is readable.
            let contents = read_from(&mut file, 0).map_err(io(&path))?;
            let whole = contents.entries.last().map_or(0, |(_, end)| *end);
            file.set_len(whole).map_err(io(&path))?;
            tracing::warn!(
                "spool {}: dropped a torn entry of {} bytes (a write was cut short)",
                path.display(),
                contents.torn_bytes
            );
        }
        file.write_all(&frame).map_err(io(&path))?;
        file.sync_data().map_err(io(&path))?;
        Ok(Appended {
            written: true,
            dropped,
        })
    }

    /// Bytes written and not yet delivered, over every topic.
    fn undelivered_bytes(&self) -> Result<u64, SpoolError> {
        let mut total = 0;
        for topic in self.topics()? {
            let len = std::fs::metadata(self.file(&topic)).map_or(0, |m| m.len());
            total += len.saturating_sub(self.drained_offset(&topic)?);
        }
        Ok(total)
    }

    /// Marks the oldest agent-actions entries covering `bytes` as gone; how many.
    fn drop_expendable(&self, bytes: u64) -> Result<usize, SpoolError> {
        if !self.file(EXPENDABLE).exists() {
            return Ok(0);
        }
        let _draining = self.drain_lock(EXPENDABLE)?;
        let (mut file, path) = self.open_locked(EXPENDABLE)?;
        let start = self.drained_offset(EXPENDABLE)?;
        let contents = read_from(&mut file, start).map_err(io(&path))?;
        let mut end = start;
        let mut n = 0;
        for (_, after) in &contents.entries {
            if end - start >= bytes {
                break;
            }
            end = *after;
            n += 1;
        }
        if n > 0 {
            self.mark_drained(EXPENDABLE, &mut file, &path, end)?;
        }
        Ok(n)
    }

    /// Records that `topic`'s entries before `end` are gone (delivered or dropped); an
    /// emptied file is truncated.
    fn mark_drained(
        &self,
        topic: &str,
        file: &mut File,
        path: &Path,
        end: u64,
    ) -> Result<(), SpoolError> {
        let len = file.metadata().map_err(io(path))?.len();
        let marker = self.drained(topic);
        if end >= len {
            // The marker goes first: a crash between the two steps then sends the
            // entries again (their ids deduplicate them) instead of leaving a marker
            // past the end of an emptied file, which would skip the next entries.
            match std::fs::remove_file(&marker) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&marker)(e)),
            }
            file.set_len(0).map_err(io(path))?;
            file.sync_data().map_err(io(path))?;
        } else {
            let tmp = marker.with_extension("drained.tmp");
            std::fs::write(&tmp, end.to_string()).map_err(io(&tmp))?;
            File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(io(&tmp))?;
            std::fs::rename(&tmp, &marker).map_err(io(&marker))?;
        }
        Ok(())
    }

    /// The undelivered entries of `topic`.
    pub fn read(&self, topic: &str) -> Result<Contents, SpoolError> {
        let path = self.file(topic);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::default()),
            Err(e) => return Err(io(&path)(e)),
        };
        let start = self.drained_offset(topic)?;
        read_from(&mut file, start).map_err(io(&path))
    }

    fn drained_offset(&self, topic: &str) -> Result<u64, SpoolError> {
        let path = self.drained(topic);
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(s.trim().parse().unwrap_or(0)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// The topics with a spool file.
    pub fn topics(&self) -> Result<Vec<String>, SpoolError> {
        let mut out = Vec::new();
        let dir = match std::fs::read_dir(&self.dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io(&self.dir)(e)),
        };
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(topic) = name.strip_suffix(".spool") {
                out.push(topic.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// What waits, per topic.
    pub fn status(&self) -> Result<Vec<TopicStatus>, SpoolError> {
        let mut out = Vec::new();
        for topic in self.topics()? {
            let contents = self.read(&topic)?;
            let bytes = std::fs::metadata(self.file(&topic)).map_or(0, |m| m.len());
            out.push(TopicStatus {
                waiting: contents.entries.len(),
                oldest_ms: contents.entries.first().map(|(e, _)| e.spooled_at_ms),
                bytes,
                torn_bytes: contents.torn_bytes,
                topic,
            });
        }
        Ok(out)
    }

    /// Sends up to `max` of `topic`'s entries, oldest first, through `send` (which
    /// returns once they are acknowledged, or fails); records what was delivered, and
    /// empties the file once everything was. Appends go on while `send` runs: they only
    /// add entries after the ones read, and the file is emptied only when nothing was
    /// added.
    pub fn drain<E>(
        &self,
        topic: &str,
        max: usize,
        send: impl FnOnce(&[Entry]) -> Result<(), E>,
    ) -> Result<Result<usize, E>, SpoolError> {
        let _draining = self.drain_lock(topic)?;
        let (batch, start) = {
            let (mut file, path) = self.open_locked(topic)?;
            let start = self.drained_offset(topic)?;
            let contents = read_from(&mut file, start).map_err(io(&path))?;
            let batch: Vec<(Entry, u64)> = contents.entries.into_iter().take(max).collect();
            (batch, start)
        };
        if batch.is_empty() {
            return Ok(Ok(0));
        }
        let entries: Vec<Entry> = batch.iter().map(|(e, _)| e.clone()).collect();
        if let Err(e) = send(&entries) {
            return Ok(Err(e));
        }
        let end = batch.last().map_or(start, |(_, end)| *end);
        let (mut file, path) = self.open_locked(topic)?;
        self.mark_drained(topic, &mut file, &path, end)?;
        Ok(Ok(batch.len()))
    }

    /// Whether entries of `topic` wait (cheap: compares the file's length with what was
    /// delivered, reads no entry).
    pub fn has_backlog(&self, topic: &str) -> Result<bool, SpoolError> {
        let len = std::fs::metadata(self.file(topic)).map_or(0, |m| m.len());
        Ok(len > self.drained_offset(topic)?)
    }
}

/// Whether the file ends with a whole entry (or is empty), read from its end: the
/// trailer gives the entry's length, the header and CRC confirm it.
fn last_entry_whole(file: &mut File, len: u64) -> std::io::Result<bool> {
    if len == 0 {
        return Ok(true);
    }
    if len < (HEADER + TRAILER) as u64 {
        return Ok(false);
    }
    let mut trailer = [0u8; TRAILER];
    file.seek(SeekFrom::Start(len - TRAILER as u64))?;
    file.read_exact(&mut trailer)?;
    let n = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let frame = (HEADER + TRAILER) as u64 + u64::from(n);
    if &trailer[4..] != TRAILER_MAGIC || n > MAX_ENTRY || frame > len {
        return Ok(false);
    }
    let mut entry = vec![0u8; HEADER + n as usize];
    file.seek(SeekFrom::Start(len - frame))?;
    file.read_exact(&mut entry)?;
    let crc = u32::from_le_bytes([entry[6], entry[7], entry[8], entry[9]]);
    let whole = &entry[..2] == MAGIC
        && u32::from_le_bytes([entry[2], entry[3], entry[4], entry[5]]) == n
        && crc32fast::hash(&entry[HEADER..]) == crc;
    file.seek(SeekFrom::End(0))?;
    Ok(whole)
}

/// Whole entries from `start` to the first torn or corrupt one.
fn read_from(file: &mut File, start: u64) -> std::io::Result<Contents> {
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(start))?;
    file.read_to_end(&mut bytes)?;
    let mut out = Contents {
        start,
        ..Contents::default()
    };
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < HEADER || &rest[..2] != MAGIC {
            break;
        }
        let len = u32::from_le_bytes([rest[2], rest[3], rest[4], rest[5]]);
        let crc = u32::from_le_bytes([rest[6], rest[7], rest[8], rest[9]]);
        let end = HEADER + len as usize + TRAILER;
        if len > MAX_ENTRY || rest.len() < end || &rest[end - 2..end] != TRAILER_MAGIC {
            break;
        }
        let payload = &rest[HEADER..HEADER + len as usize];
        if crc32fast::hash(payload) != crc {
            break;
        }
        let Ok(entry) = serde_json::from_slice::<Entry>(payload) else {
            break;
        };
        at += end;
        out.entries.push((entry, start + at as u64));
    }
    out.torn_bytes = (bytes.len() - at) as u64;
    // Seek back to the end: appends go there whatever was read.
    file.seek(SeekFrom::End(0))?;
    Ok(out)
}

#[cfg(test)]
mod tests;

//! The offset and time index entries of a segment and their file encoding (all integers
//! big-endian; see the parent module's layout).

use super::files::{INDEX_ENTRY_LEN, TIME_INDEX_ENTRY_LEN};
use std::fs::{self, File};
use std::path::Path;

/// Offset index entry: a batch starting at `base_offset + rel` lies at byte `pos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct IndexEntry {
    pub(super) rel: u32,
    pub(super) pos: u32,
}

/// Time index entry: batches before `base_offset + rel` have max timestamps below `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TimeEntry {
    pub(super) timestamp: i64,
    pub(super) rel: u32,
}

/// Index entries created by one append, to be written to the index files.
#[derive(Debug, Default)]
pub(super) struct NewEntries {
    pub(super) index: Option<IndexEntry>,
    pub(super) time: Option<TimeEntry>,
}

/// Append handles of the active segment's index files.
#[derive(Debug)]
pub(super) struct IndexWriters {
    pub(super) index: File,
    pub(super) time_index: File,
}

pub(super) fn encode_index(e: &IndexEntry) -> [u8; INDEX_ENTRY_LEN] {
    let mut out = [0u8; INDEX_ENTRY_LEN];
    out[..4].copy_from_slice(&e.rel.to_be_bytes());
    out[4..].copy_from_slice(&e.pos.to_be_bytes());
    out
}

pub(super) fn encode_time(e: &TimeEntry) -> [u8; TIME_INDEX_ENTRY_LEN] {
    let mut out = [0u8; TIME_INDEX_ENTRY_LEN];
    out[..8].copy_from_slice(&e.timestamp.to_be_bytes());
    out[8..].copy_from_slice(&e.rel.to_be_bytes());
    out
}

pub(super) fn read_entries(path: &Path, entry_len: usize) -> Result<Vec<[u8; 12]>, String> {
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

pub(super) fn read_index_file(path: &Path) -> Result<Vec<IndexEntry>, String> {
    Ok(read_entries(path, INDEX_ENTRY_LEN)?
        .into_iter()
        .map(|e| IndexEntry {
            rel: u32::from_be_bytes([e[0], e[1], e[2], e[3]]),
            pos: u32::from_be_bytes([e[4], e[5], e[6], e[7]]),
        })
        .collect())
}

pub(super) fn read_time_index_file(path: &Path) -> Result<Vec<TimeEntry>, String> {
    Ok(read_entries(path, TIME_INDEX_ENTRY_LEN)?
        .into_iter()
        .map(|e| TimeEntry {
            timestamp: i64::from_be_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]]),
            rel: u32::from_be_bytes([e[8], e[9], e[10], e[11]]),
        })
        .collect())
}

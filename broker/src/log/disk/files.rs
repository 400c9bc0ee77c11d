//! The files of a disk log: names, the vectored write, small helpers.

use super::super::LogError;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// Writes `head` then `tail` with as few system calls as the kernel allows.
pub(super) fn write_all_vectored(file: &mut File, head: &[u8], tail: &[u8]) -> std::io::Result<()> {
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

pub(super) const LOG_EXT: &str = "log";
pub(super) const INDEX_EXT: &str = "index";
pub(super) const TIME_INDEX_EXT: &str = "timeindex";
/// A segment rewritten by compaction, before it replaces the `.log` file.
pub(super) const CLEANED_EXT: &str = "cleaned";
pub(super) const START_OFFSET_FILE: &str = "log-start-offset";
pub(super) const START_OFFSET_TMP: &str = "log-start-offset.tmp";
pub(super) const INDEX_ENTRY_LEN: usize = 8;
pub(super) const TIME_INDEX_ENTRY_LEN: usize = 12;
/// Largest relative offset or file position an index entry can hold.
pub(super) const U32_LIMIT: u64 = u32::MAX as u64;

pub(super) fn segment_path(dir: &Path, base_offset: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{ext}"))
}

/// Base offset encoded in a segment file stem (exactly 20 digits).
pub(super) fn parse_base_offset(stem: &str) -> Option<i64> {
    if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse().ok()
    } else {
        None
    }
}

pub(super) fn corrupt(path: &Path, reason: impl Into<String>) -> LogError {
    LogError::Corrupt {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

pub(super) fn remove_if_present(path: &Path) -> Result<(), LogError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(LogError::io(path, e)),
        _ => Ok(()),
    }
}

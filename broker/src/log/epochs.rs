//! A partition's leader epochs and the offset where each began, kept beside its log in
//! Kafka's `leader-epoch-checkpoint` format, so that OffsetForLeaderEpoch answers the
//! same after a restart.

use super::LogError;
use std::path::{Path, PathBuf};

/// The checkpoint's name in a partition directory.
pub(crate) const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

/// Epochs in order, each with its start offset; never empty.
#[derive(Debug)]
pub(crate) struct LeaderEpochs {
    entries: Vec<(i32, i64)>,
    /// Where they are kept (none for a memory log).
    path: Option<PathBuf>,
}

/// `0`, the count, then `epoch offset` per line, as Kafka writes it.
fn parse(text: &str) -> Option<Vec<(i32, i64)>> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let entries: Option<Vec<(i32, i64)>> = lines
        .take(count)
        .map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
        })
        .collect();
    entries.filter(|e| e.len() == count)
}

impl LeaderEpochs {
    /// The epochs kept at `path` that the log (from `start` to `end`) still covers; epoch 0
    /// at `start` when there is nothing readable.
    pub(crate) fn open(path: Option<PathBuf>, start: i64, end: i64) -> Self {
        let read = path.as_deref().and_then(|p| {
            let text = std::fs::read_to_string(p).ok()?;
            let parsed = parse(&text);
            if parsed.is_none() {
                tracing::warn!(path = %p.display(), "ignoring an unreadable leader-epoch checkpoint");
            }
            parsed
        });
        let mut entries: Vec<(i32, i64)> = read
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, offset)| *offset <= end)
            .collect();
        if entries.is_empty() {
            entries.push((0, start));
        }
        Self { entries, path }
    }

    /// The current epoch.
    pub(crate) fn current(&self) -> i32 {
        self.entries.last().map_or(0, |e| e.0)
    }

    /// Starts the next epoch at `end` and keeps the list (written whole, then renamed).
    pub(crate) fn bump(&mut self, end: i64) -> Result<(), LogError> {
        let next = self.current() + 1;
        self.entries.push((next, end));
        match &self.path {
            Some(path) => self.write(path),
            None => Ok(()),
        }
    }

    fn write(&self, path: &Path) -> Result<(), LogError> {
        let mut text = format!("0\n{}\n", self.entries.len());
        for (epoch, offset) in &self.entries {
            text.push_str(&format!("{epoch} {offset}\n"));
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| LogError::io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| LogError::io(path, e))
    }

    /// OffsetForLeaderEpoch's answer for `epoch`: the largest epoch not above it and its
    /// end (the next epoch's start, or `log_end` for the current one); `None` if `epoch`
    /// is older than every epoch kept.
    pub(crate) fn end_offset_for(&self, epoch: i32, log_end: i64) -> Option<(i32, i64)> {
        let pos = self.entries.partition_point(|(e, _)| *e <= epoch);
        if pos == 0 {
            return None;
        }
        let found = self.entries[pos - 1].0;
        let end = self.entries.get(pos).map_or(log_end, |next| next.1);
        Some((found, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_survive_reopening_as_kafka_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CHECKPOINT_FILE);
        let mut epochs = LeaderEpochs::open(Some(path.clone()), 0, 0);
        assert_eq!(epochs.current(), 0);
        epochs.bump(10).unwrap();
        epochs.bump(25).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "0\n3\n0 0\n1 10\n2 25\n"
        );
        let again = LeaderEpochs::open(Some(path.clone()), 0, 30);
        assert_eq!(again.current(), 2);
        for epoch in 0..4 {
            assert_eq!(
                again.end_offset_for(epoch, 30),
                epochs.end_offset_for(epoch, 30)
            );
        }
        assert_eq!(again.end_offset_for(1, 30), Some((1, 25)));
        // A log cut back below an epoch's start forgets it; garbage is ignored.
        assert_eq!(LeaderEpochs::open(Some(path.clone()), 0, 20).current(), 1);
        std::fs::write(&path, "nonsense").unwrap();
        assert_eq!(
            LeaderEpochs::open(Some(path), 5, 20).end_offset_for(0, 20),
            Some((0, 20))
        );
    }
}

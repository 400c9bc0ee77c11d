//! In-memory log: a vector of stored batches. The default inside tests.

use super::batch::stored_prefix;
use super::{BatchHeader, Log, LogConfig, LogError};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;

#[derive(Debug, Clone)]
struct Stored {
    header: BatchHeader,
    bytes: Bytes,
}

impl Stored {
    /// The batch as stored: the client's bytes with the assigned offset and epoch.
    fn stamped(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.bytes.len());
        out.extend_from_slice(&stored_prefix(&self.bytes, &self.header));
        out.extend_from_slice(&self.bytes[16..]);
        out.freeze()
    }
}

/// A partition log kept in memory.
#[derive(Debug)]
pub(crate) struct MemoryLog {
    batches: VecDeque<Stored>,
    start_offset: i64,
    end_offset: i64,
    size: u64,
    config: LogConfig,
}

impl MemoryLog {
    pub(crate) fn new(config: LogConfig) -> Self {
        Self {
            batches: VecDeque::new(),
            start_offset: 0,
            end_offset: 0,
            size: 0,
            config,
        }
    }

    /// Index of the batch holding `offset`, or of the first batch after it.
    fn position(&self, offset: i64) -> usize {
        self.batches
            .partition_point(|b| b.header.last_offset() < offset)
    }

    fn pop_front(&mut self) {
        if let Some(b) = self.batches.pop_front() {
            self.size -= b.bytes.len() as u64;
            self.start_offset = self.start_offset.max(b.header.last_offset() + 1);
        }
    }
}

impl Log for MemoryLog {
    fn start_offset(&self) -> i64 {
        self.start_offset
    }

    fn end_offset(&self) -> i64 {
        self.end_offset
    }

    fn size_bytes(&self) -> u64 {
        self.size
    }

    fn append(&mut self, header: &BatchHeader, batch: Bytes) -> Result<(), LogError> {
        if batch.len() != header.size || batch.len() < super::batch::HEADER_LEN {
            return Err(LogError::Corrupt {
                path: "memory".into(),
                reason: format!(
                    "batch is {} bytes, header says {}",
                    batch.len(),
                    header.size
                ),
            });
        }
        self.size += batch.len() as u64;
        self.end_offset = header.last_offset() + 1;
        self.batches.push_back(Stored {
            header: *header,
            bytes: batch,
        });
        Ok(())
    }

    fn read(&self, offset: i64, max_bytes: usize) -> Result<Bytes, LogError> {
        if offset < self.start_offset || offset > self.end_offset {
            return Err(LogError::OutOfRange {
                offset,
                start: self.start_offset,
                end: self.end_offset,
            });
        }
        let first = self.position(offset);
        let mut iter = self.batches.range(first..);
        let Some(head) = iter.next() else {
            return Ok(Bytes::new());
        };
        let mut total = head.bytes.len();
        let mut parts = vec![head];
        for b in iter {
            if total + b.bytes.len() > max_bytes {
                break;
            }
            total += b.bytes.len();
            parts.push(b);
        }
        let mut out = BytesMut::with_capacity(total);
        for p in parts {
            out.extend_from_slice(&stored_prefix(&p.bytes, &p.header));
            out.extend_from_slice(&p.bytes[16..]);
        }
        Ok(out.freeze())
    }

    fn batch_by_timestamp(&self, timestamp: i64) -> Result<Option<Bytes>, LogError> {
        Ok(self
            .batches
            .iter()
            .find(|b| b.header.max_timestamp >= timestamp)
            .map(Stored::stamped))
    }

    fn max_timestamp_batch(&self) -> Result<Option<Bytes>, LogError> {
        let mut best: Option<&Stored> = None;
        for b in &self.batches {
            if best.is_none_or(|x| b.header.max_timestamp > x.header.max_timestamp) {
                best = Some(b);
            }
        }
        Ok(best.map(Stored::stamped))
    }

    fn flush(&mut self) -> Result<(), LogError> {
        Ok(())
    }

    fn apply_retention(&mut self, now_ms: i64) -> Result<u64, LogError> {
        let before = self.size;
        if self.config.retention_ms >= 0 {
            while let Some(b) = self.batches.front() {
                if now_ms - b.header.max_timestamp > self.config.retention_ms {
                    self.pop_front();
                } else {
                    break;
                }
            }
        }
        if self.config.retention_bytes >= 0 {
            while self.size > self.config.retention_bytes as u64 && !self.batches.is_empty() {
                self.pop_front();
            }
        }
        if self.batches.is_empty() {
            self.start_offset = self.end_offset;
        }
        Ok(before - self.size)
    }

    fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    fn cleanable_ranges(&self) -> Vec<(i64, i64)> {
        if self.batches.is_empty() {
            return Vec::new();
        }
        vec![(self.start_offset, self.end_offset)]
    }

    fn replace_range(
        &mut self,
        base: i64,
        batches: Vec<(BatchHeader, Bytes)>,
    ) -> Result<(), LogError> {
        if base != self.start_offset {
            return Err(LogError::Corrupt {
                path: "memory".into(),
                reason: format!("no cleanable range starts at {base}"),
            });
        }
        self.size = batches.iter().map(|(_, b)| b.len() as u64).sum();
        self.batches = batches
            .into_iter()
            .map(|(header, bytes)| Stored { header, bytes })
            .collect();
        Ok(())
    }

    fn advance_start_offset(&mut self, offset: i64) -> Result<(), LogError> {
        if offset > self.end_offset {
            return Err(LogError::OutOfRange {
                offset,
                start: self.start_offset,
                end: self.end_offset,
            });
        }
        while self
            .batches
            .front()
            .is_some_and(|b| b.header.last_offset() < offset)
        {
            self.pop_front();
        }
        self.start_offset = self.start_offset.max(offset);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{stamp, tests::make_batch};

    fn append(log: &mut MemoryLog, timestamps: &[i64]) {
        let base = log.end_offset();
        let b = stamp(&make_batch(0, timestamps), base, 0, None);
        let h = BatchHeader::validate(&b).unwrap();
        log.append(&h, b).unwrap();
    }

    #[test]
    fn reads_whole_batches_from_the_middle() {
        let mut log = MemoryLog::new(LogConfig::default());
        append(&mut log, &[1, 2, 3]);
        append(&mut log, &[4, 5]);
        assert_eq!(log.end_offset(), 5);
        let got = log.read(1, 1).unwrap();
        let h = BatchHeader::validate(&got).unwrap();
        assert_eq!(h.base_offset, 0);
        assert_eq!(
            got.len(),
            h.size,
            "max_bytes 1 still returns one whole batch"
        );
        let all = log.read(1, usize::MAX).unwrap();
        assert_eq!(crate::log::batch::scan_valid(&all).0.len(), 2);
        assert!(log.read(5, 100).unwrap().is_empty());
        assert!(log.read(6, 100).is_err());
    }

    #[test]
    fn retention_by_bytes_and_time() {
        let mut log = MemoryLog::new(LogConfig {
            retention_ms: 100,
            ..LogConfig::default()
        });
        append(&mut log, &[1_000]);
        append(&mut log, &[5_000]);
        log.apply_retention(5_050).unwrap();
        assert_eq!(log.start_offset(), 1);
        assert_eq!(log.end_offset(), 2);
    }
}

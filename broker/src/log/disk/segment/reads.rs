//! Reading a segment: bytes and batch headers at a position, the position of an offset or
//! a timestamp from the sparse indexes, and chunks of whole batches for fetches.

use super::*;

impl Segment {
    pub(in crate::log::disk) fn read_exact(
        &self,
        buf: &mut [u8],
        pos: u64,
    ) -> Result<(), LogError> {
        self.file
            .read_exact_at(buf, pos)
            .map_err(|e| LogError::io(&self.log_path, e))
    }

    pub(in crate::log::disk) fn read_bytes(
        &self,
        pos: u64,
        len: usize,
    ) -> Result<Vec<u8>, LogError> {
        let mut buf = vec![0u8; len];
        self.read_exact(&mut buf, pos)?;
        Ok(buf)
    }

    /// Header of the batch stored at `pos`, which must lie within the segment.
    pub(in crate::log::disk) fn header_at(&self, pos: u64) -> Result<BatchHeader, LogError> {
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
    pub(in crate::log::disk) fn position_of(&self, offset: i64) -> u64 {
        let rel = offset - self.base_offset;
        let i = self.index.partition_point(|e| i64::from(e.rel) <= rel);
        if i == 0 {
            0
        } else {
            u64::from(self.index[i - 1].pos)
        }
    }

    /// Position from which to look for the first batch with max timestamp ≥ `timestamp`.
    pub(in crate::log::disk) fn position_for_timestamp(&self, timestamp: i64) -> u64 {
        let i = self.time_index.partition_point(|e| e.timestamp < timestamp);
        if i == 0 {
            0
        } else {
            self.position_of(self.base_offset + i64::from(self.time_index[i - 1].rel))
        }
    }

    /// Walks batch headers from `pos` to the first batch satisfying `pred`.
    pub(in crate::log::disk) fn find_batch(
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
    pub(in crate::log::disk) fn read_chunk(
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
    pub(in crate::log::disk) fn max_timestamp_from(
        &self,
        start: i64,
    ) -> Result<Option<MaxTimestamp>, LogError> {
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

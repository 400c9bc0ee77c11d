//! Record batch (magic 2) header: validation and the few in-place edits the broker makes.
//!
//! Layout of the 61-byte header (big-endian):
//! ```text
//! 0  base_offset i64        8  batch_length i32     12 partition_leader_epoch i32
//! 16 magic i8               17 crc u32 (CRC-32C of bytes 21..)
//! 21 attributes i16         23 last_offset_delta i32 27 base_timestamp i64
//! 35 max_timestamp i64      43 producer_id i64       51 producer_epoch i16
//! 53 base_sequence i32      57 record_count i32      61 records…
//! ```

use bytes::{Buf, Bytes, BytesMut};

/// Size of the fixed part of a v2 record batch.
pub(crate) const HEADER_LEN: usize = 61;
/// Bytes before `batch_length` plus the length field itself.
pub(crate) const LOG_OVERHEAD: usize = 12;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_LOG_APPEND_TIME: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// Why a batch was refused; each maps to one Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BatchError {
    #[error("record batch is truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("record batch length {0} is invalid")]
    BadLength(i32),
    #[error("unsupported record batch magic {0}: only magic 2 (Kafka 0.11+) is accepted")]
    UnsupportedMagic(i8),
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("record batch declares {0} records")]
    BadRecordCount(i32),
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge { size: usize, max: usize },
    #[error("record batch uses unknown compression codec {0}")]
    UnknownCodec(i16),
}

/// Header fields of one validated batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub base_offset: i64,
    /// Whole batch size in bytes, header included.
    pub size: usize,
    pub leader_epoch: i32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Reads the header at the start of `buf` without checking the CRC.
    pub(crate) fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        if buf.len() < HEADER_LEN {
            return Err(BatchError::Truncated {
                need: HEADER_LEN,
                have: buf.len(),
            });
        }
        let mut b = buf;
        let base_offset = b.get_i64();
        let batch_length = b.get_i32();
        if batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(BatchError::BadLength(batch_length));
        }
        let leader_epoch = b.get_i32();
        let magic = b.get_i8();
        if magic != 2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        let _crc = b.get_u32();
        let attributes = b.get_i16();
        let last_offset_delta = b.get_i32();
        let base_timestamp = b.get_i64();
        let max_timestamp = b.get_i64();
        let producer_id = b.get_i64();
        let producer_epoch = b.get_i16();
        let base_sequence = b.get_i32();
        let record_count = b.get_i32();
        Ok(Self {
            base_offset,
            size: batch_length as usize + LOG_OVERHEAD,
            leader_epoch,
            attributes,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            record_count,
        })
    }

    /// Parses the header and checks everything a broker must check before storing:
    /// magic, length, CRC-32C, record count and codec.
    pub(crate) fn validate(buf: &[u8]) -> Result<Self, BatchError> {
        let h = Self::parse(buf)?;
        if buf.len() < h.size {
            return Err(BatchError::Truncated {
                need: h.size,
                have: buf.len(),
            });
        }
        let stored = u32::from_be_bytes([buf[17], buf[18], buf[19], buf[20]]);
        let computed = crc32c::crc32c(&buf[21..h.size]);
        if stored != computed {
            return Err(BatchError::CrcMismatch { stored, computed });
        }
        if h.record_count < 0
            || h.last_offset_delta < 0
            || (h.record_count > 0 && h.last_offset_delta < h.record_count - 1)
        {
            return Err(BatchError::BadRecordCount(h.record_count));
        }
        if h.compression() > 4 {
            return Err(BatchError::UnknownCodec(h.compression()));
        }
        Ok(h)
    }

    pub(crate) fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub(crate) fn compression(&self) -> i16 {
        self.attributes & ATTR_COMPRESSION_MASK
    }

    pub(crate) fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    pub(crate) fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    pub(crate) fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }
}

/// Splits a produce payload into its batches, validating each.
pub(crate) fn split_batches(mut records: Bytes) -> Result<Vec<(BatchHeader, Bytes)>, BatchError> {
    let mut out = Vec::new();
    while !records.is_empty() {
        let header = BatchHeader::validate(&records)?;
        out.push((header, records.split_to(header.size)));
    }
    Ok(out)
}

/// Copies `batch` with the broker-assigned base offset and leader epoch (both outside the CRC);
/// with `log_append_time` set, also the timestamp type and max timestamp, re-computing the CRC.
pub(crate) fn stamp(
    batch: &[u8],
    base_offset: i64,
    leader_epoch: i32,
    log_append_time: Option<i64>,
) -> Bytes {
    let mut out = BytesMut::from(batch);
    out[0..8].copy_from_slice(&base_offset.to_be_bytes());
    out[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    if let Some(ts) = log_append_time {
        let attributes = i16::from_be_bytes([out[21], out[22]]) | ATTR_LOG_APPEND_TIME;
        out[21..23].copy_from_slice(&attributes.to_be_bytes());
        out[35..43].copy_from_slice(&ts.to_be_bytes());
        let crc = crc32c::crc32c(&out[21..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
    }
    out.freeze()
}

/// The first 16 bytes of a stored batch: base offset, length and leader epoch from `header`.
pub(crate) fn stored_prefix(batch: &[u8], header: &BatchHeader) -> [u8; 16] {
    let mut prefix = [0u8; 16];
    prefix.copy_from_slice(&batch[..16]);
    prefix[0..8].copy_from_slice(&header.base_offset.to_be_bytes());
    prefix[12..16].copy_from_slice(&header.leader_epoch.to_be_bytes());
    prefix
}

/// Walks consecutive batches in `buf`, stopping at the first incomplete or invalid one.
/// Returns the headers and the number of bytes they cover.
pub(crate) fn scan_valid(buf: &[u8]) -> (Vec<BatchHeader>, usize) {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        match BatchHeader::validate(&buf[pos..]) {
            Ok(h) => {
                pos += h.size;
                out.push(h);
            }
            Err(_) => break,
        }
    }
    (out, pos)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::BufMut;

    /// Builds an uncompressed batch of `n` records with the given values and timestamps.
    pub(crate) fn make_batch(base_offset: i64, timestamps: &[i64]) -> Bytes {
        let mut records = BytesMut::new();
        for (i, ts) in timestamps.iter().enumerate() {
            let mut rec = BytesMut::new();
            rec.put_i8(0);
            put_varlong(&mut rec, ts - timestamps[0]);
            put_varlong(&mut rec, i as i64);
            put_varlong(&mut rec, -1); // null key
            put_varlong(&mut rec, 1);
            rec.put_u8(b'x');
            put_varlong(&mut rec, 0); // no headers
            let len = rec.len();
            let mut with_len = BytesMut::new();
            put_varlong(&mut with_len, len as i64);
            records.extend_from_slice(&with_len);
            records.extend_from_slice(&rec[..len]);
        }
        let mut b = BytesMut::new();
        b.put_i64(base_offset);
        b.put_i32((HEADER_LEN - LOG_OVERHEAD + records.len()) as i32);
        b.put_i32(0);
        b.put_i8(2);
        b.put_u32(0);
        b.put_i16(0);
        b.put_i32(timestamps.len() as i32 - 1);
        b.put_i64(timestamps[0]);
        b.put_i64(*timestamps.iter().max().unwrap_or(&0));
        b.put_i64(-1);
        b.put_i16(-1);
        b.put_i32(-1);
        b.put_i32(timestamps.len() as i32);
        b.extend_from_slice(&records);
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b.freeze()
    }

    fn put_varlong(b: &mut BytesMut, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            b.put_u8((z as u8) | 0x80);
            z >>= 7;
        }
        b.put_u8(z as u8);
    }

    #[test]
    fn validates_and_detects_corruption() {
        let b = make_batch(0, &[10, 20, 30]);
        let h = BatchHeader::validate(&b).unwrap();
        assert_eq!(h.record_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.max_timestamp, 30);
        let mut bad = BytesMut::from(&b[..]);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(matches!(
            BatchHeader::validate(&bad),
            Err(BatchError::CrcMismatch { .. })
        ));
        let mut magic1 = BytesMut::from(&b[..]);
        magic1[16] = 1;
        assert_eq!(
            BatchHeader::validate(&magic1),
            Err(BatchError::UnsupportedMagic(1))
        );
        assert!(matches!(
            BatchHeader::validate(&b[..b.len() - 1]),
            Err(BatchError::Truncated { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn validation_never_panics_and_catches_flips(
            garbage in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            at in 21usize..200,
            bit in 0u8..8,
        ) {
            let _ = BatchHeader::validate(&garbage);
            let _ = scan_valid(&garbage);
            let good = make_batch(0, &[1, 2, 3]);
            let mut bad = BytesMut::from(&good[..]);
            let i = 21 + at % (bad.len() - 21);
            bad[i] ^= 1 << bit;
            proptest::prop_assert!(BatchHeader::validate(&bad).is_err(), "flip at {} accepted", i);
        }
    }

    #[test]
    fn stamp_keeps_crc_valid() {
        let b = make_batch(0, &[10, 20]);
        let s = stamp(&b, 42, 3, Some(99));
        let h = BatchHeader::validate(&s).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.leader_epoch, 3);
        assert_eq!(h.max_timestamp, 99);
        assert!(h.is_log_append_time());
    }
}

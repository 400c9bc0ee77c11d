//! Transaction markers: the control batches that end a transaction in each partition.
//!
//! A marker is a v2 batch with the control and transactional attributes, the producer's id
//! and epoch, and one record whose key is `(version i16 = 0, type i16: 0 abort / 1 commit)`
//! and whose value is `(version i16 = 0, coordinator epoch i32)`, uncompressed, as Kafka
//! writes them.

use crate::log::batch::{BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use bytes::{BufMut, Bytes, BytesMut};

const ATTR_TRANSACTIONAL_CONTROL: i16 = 0x10 | 0x20;

fn put_varint(b: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        b.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    b.put_u8(z as u8);
}

fn get_varint(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut shift = 0;
    let mut z: u64 = 0;
    loop {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        z |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    Some(((z >> 1) as i64) ^ -((z & 1) as i64))
}

/// A marker batch for `producer_id`/`epoch` (offset 0; the log assigns the real one).
pub(crate) fn marker(
    producer_id: i64,
    epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Bytes {
    let mut record = BytesMut::new();
    record.put_i8(0);
    put_varint(&mut record, 0); // timestamp delta
    put_varint(&mut record, 0); // offset delta
    put_varint(&mut record, 4);
    record.put_i16(0);
    record.put_i16(i16::from(commit));
    put_varint(&mut record, 6);
    record.put_i16(0);
    record.put_i32(coordinator_epoch);
    put_varint(&mut record, 0); // headers
    let mut records = BytesMut::new();
    put_varint(&mut records, record.len() as i64);
    records.extend_from_slice(&record);

    let mut b = BytesMut::with_capacity(HEADER_LEN + records.len());
    b.put_i64(0);
    b.put_i32((HEADER_LEN - LOG_OVERHEAD + records.len()) as i32);
    b.put_i32(-1);
    b.put_i8(2);
    b.put_u32(0);
    b.put_i16(ATTR_TRANSACTIONAL_CONTROL);
    b.put_i32(0);
    b.put_i64(timestamp);
    b.put_i64(timestamp);
    b.put_i64(producer_id);
    b.put_i16(epoch);
    b.put_i32(-1);
    b.put_i32(1);
    b.extend_from_slice(&records);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

/// For a control batch: `Some(true)` for a commit marker, `Some(false)` for an abort.
pub(crate) fn marker_type(header: &BatchHeader, batch: &[u8]) -> Option<bool> {
    if !header.is_control() {
        return None;
    }
    let mut pos = HEADER_LEN;
    get_varint(batch, &mut pos)?; // record length
    pos += 1; // attributes
    get_varint(batch, &mut pos)?; // timestamp delta
    get_varint(batch, &mut pos)?; // offset delta
    if get_varint(batch, &mut pos)? < 4 {
        return None;
    }
    let kind = i16::from_be_bytes([*batch.get(pos + 2)?, *batch.get(pos + 3)?]);
    Some(kind == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_validate_and_parse() {
        for commit in [true, false] {
            let m = marker(42, 3, commit, 0, 1000);
            let h = BatchHeader::validate(&m).unwrap();
            assert!(h.is_control() && h.is_transactional());
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.record_count),
                (42, 3, 1)
            );
            assert_eq!(marker_type(&h, &m), Some(commit));
        }
    }
}

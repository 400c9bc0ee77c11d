//! Message sets (magic 0 and 1, Kafka before 0.11), for the clients of emulated 3.x
//! releases that still speak them: Produce v0–v2 arrive as message sets and are stored as
//! one v2 batch (as Kafka up-converts them); Fetch v0–v3 get the stored batches
//! down-converted to message sets.
//!
//! A message: `offset i64, size i32, crc u32 (CRC-32 of what follows), magic i8,
//! attributes i8, [timestamp i64 if magic 1], key bytes, value bytes`. A compressed
//! message's value is a message set itself (its inner offsets relative for magic 1).

use super::batch::BatchHeader;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// Why a message set was refused (CORRUPT_MESSAGE).
#[derive(Debug, thiserror::Error)]
pub(crate) enum MessageSetError {
    #[error("message set is truncated")]
    Truncated,
    #[error("message CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Crc { stored: u32, computed: u32 },
    #[error("message magic {0} is not 0 or 1")]
    Magic(i8),
    #[error("message set has no messages")]
    Empty,
    #[error("compressed message: {0}")]
    Compressed(String),
    #[error("cannot encode the batch: {0}")]
    Encode(String),
}

const ATTR_CODEC: i8 = 0x07;
const ATTR_LOG_APPEND_TIME: i8 = 0x08;

struct Message {
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
}

fn bytes_field(buf: &mut Bytes) -> Result<Option<Bytes>, MessageSetError> {
    if buf.remaining() < 4 {
        return Err(MessageSetError::Truncated);
    }
    let len = buf.get_i32();
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    if buf.remaining() < len {
        return Err(MessageSetError::Truncated);
    }
    Ok(Some(buf.split_to(len)))
}

fn codec(attributes: i8) -> Result<Compression, MessageSetError> {
    Ok(match attributes & ATTR_CODEC {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        c => return Err(MessageSetError::Compressed(format!("unknown codec {c}"))),
    })
}

/// The messages of a set, compressed wrappers opened (one level, as Kafka allows).
fn parse(
    mut buf: Bytes,
    limit: usize,
    nested: bool,
    out: &mut Vec<Message>,
) -> Result<(), MessageSetError> {
    while buf.has_remaining() {
        if buf.remaining() < 12 {
            return Err(MessageSetError::Truncated);
        }
        let _offset = buf.get_i64();
        let size = buf.get_i32();
        if size < 14 || buf.remaining() < size as usize {
            return Err(MessageSetError::Truncated);
        }
        let mut m = buf.split_to(size as usize);
        let stored = m.get_u32();
        let computed = crc32fast::hash(&m);
        if stored != computed {
            return Err(MessageSetError::Crc { stored, computed });
        }
        let magic = m.get_i8();
        if magic != 0 && magic != 1 {
            return Err(MessageSetError::Magic(magic));
        }
        let attributes = m.get_i8();
        let timestamp = if magic == 1 {
            if m.remaining() < 8 {
                return Err(MessageSetError::Truncated);
            }
            m.get_i64()
        } else {
            -1
        };
        let key = bytes_field(&mut m)?;
        let value = bytes_field(&mut m)?;
        match codec(attributes)? {
            Compression::None => out.push(Message {
                timestamp,
                key,
                value,
            }),
            _ if nested => {
                return Err(MessageSetError::Compressed(
                    "a compressed message inside a compressed message".into(),
                ))
            }
            c => {
                let mut inner = value.unwrap_or_default();
                let inner = super::records::decompress(&mut inner, c, limit)
                    .map_err(|e| MessageSetError::Compressed(format!("{e:#}")))?;
                parse(inner, limit, true, out)?;
            }
        }
    }
    Ok(())
}

/// A message set as one uncompressed v2 batch, as Kafka up-converts it: offsets from 0,
/// no producer id, magic 0's missing timestamps as -1. At most `limit` bytes are
/// decompressed.
pub(crate) fn up_convert(set: Bytes, limit: usize) -> Result<Bytes, MessageSetError> {
    let mut messages = Vec::new();
    parse(set, limit, false, &mut messages)?;
    if messages.is_empty() {
        return Err(MessageSetError::Empty);
    }
    let records: Vec<Record> = messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // No producer: base sequence -1, and the encoder wants the deltas to follow.
            sequence: (i as i32).wrapping_sub(1),
            timestamp: m.timestamp,
            key: m.key,
            value: m.value,
            headers: Default::default(),
        })
        .collect();
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut out, &records, &options)
        .map_err(|e| MessageSetError::Encode(e.to_string()))?;
    Ok(out.freeze())
}

fn put_bytes(out: &mut BytesMut, b: Option<&Bytes>) {
    match b {
        None => out.put_i32(-1),
        Some(b) => {
            out.put_i32(b.len() as i32);
            out.put_slice(b);
        }
    }
}

/// Stored v2 batches as an uncompressed message set of `magic` 0 or 1, control batches
/// left out, for Fetch v0–v3. A batch that cannot be read ends the set there.
pub(crate) fn down_convert(mut batches: Bytes, magic: i8, limit: usize) -> Bytes {
    let mut out = BytesMut::with_capacity(batches.len());
    while let Ok(h) = BatchHeader::parse(&batches) {
        if batches.len() < h.size {
            break;
        }
        let batch = batches.split_to(h.size);
        if h.is_control() {
            continue;
        }
        let Ok(set) = super::records::decode(&batch, limit) else {
            break;
        };
        let log_append = h.is_log_append_time();
        for r in set.records {
            let start = out.len();
            out.put_i64(r.offset);
            out.put_i32(0);
            out.put_u32(0);
            out.put_i8(magic);
            let mut attributes = 0;
            if magic == 1 && log_append {
                attributes |= ATTR_LOG_APPEND_TIME;
            }
            out.put_i8(attributes);
            if magic == 1 {
                out.put_i64(if log_append {
                    h.max_timestamp
                } else {
                    r.timestamp
                });
            }
            put_bytes(&mut out, r.key.as_ref());
            put_bytes(&mut out, r.value.as_ref());
            let size = (out.len() - start - 12) as i32;
            out[start + 8..start + 12].copy_from_slice(&size.to_be_bytes());
            let crc = crc32fast::hash(&out[start + 16..]);
            out[start + 12..start + 16].copy_from_slice(&crc.to_be_bytes());
        }
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::records::tests::{encoded, record};

    fn message_set(magic: i8, kvs: &[(&str, &str)]) -> Bytes {
        let records: Vec<Record> = kvs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| {
                let mut r = record(
                    i as i64,
                    Bytes::from(k.to_string()),
                    Bytes::from(v.to_string()),
                );
                r.timestamp = 1_000 + i as i64;
                r
            })
            .collect();
        down_convert(encoded(&records).1, magic, 1 << 20)
    }

    #[test]
    fn message_sets_round_trip_through_a_v2_batch() {
        for magic in [0, 1] {
            let set = message_set(magic, &[("a", "1"), ("b", "2"), ("c", "3")]);
            let batch = up_convert(set.clone(), 1 << 20).unwrap();
            let h = BatchHeader::validate(&batch).unwrap();
            assert_eq!(h.record_count, 3);
            let records = crate::log::records::decode(&batch, 1 << 20)
                .unwrap()
                .records;
            assert_eq!(records[1].key.as_deref(), Some(&b"b"[..]));
            assert_eq!(records[2].value.as_deref(), Some(&b"3"[..]));
            let ts = if magic == 1 { 1_001 } else { -1 };
            assert_eq!(records[1].timestamp, ts);
            // And back: the same bytes.
            assert_eq!(down_convert(batch, magic, 1 << 20), set);
        }
    }

    #[test]
    fn a_gzip_wrapper_is_opened_and_a_bad_crc_refused() {
        use std::io::Write;
        let inner = message_set(1, &[("k", "v"), ("k2", "v2")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&inner).unwrap();
        let compressed = Bytes::from(gz.finish().unwrap());
        let mut wrapper = BytesMut::new();
        wrapper.put_i64(1);
        wrapper.put_i32(0);
        wrapper.put_u32(0);
        wrapper.put_i8(1);
        wrapper.put_i8(1); // gzip
        wrapper.put_i64(5);
        put_bytes(&mut wrapper, None);
        put_bytes(&mut wrapper, Some(&compressed));
        let size = (wrapper.len() - 12) as i32;
        wrapper[8..12].copy_from_slice(&size.to_be_bytes());
        let crc = crc32fast::hash(&wrapper[16..]);
        wrapper[12..16].copy_from_slice(&crc.to_be_bytes());
        let batch = up_convert(wrapper.clone().freeze(), 1 << 20).unwrap();
        assert_eq!(BatchHeader::validate(&batch).unwrap().record_count, 2);
        let last = wrapper.len() - 1;
        wrapper[last] ^= 0xff;
        assert!(matches!(
            up_convert(wrapper.freeze(), 1 << 20),
            Err(MessageSetError::Crc { .. })
        ));
        assert!(matches!(
            up_convert(Bytes::from_static(&[0; 5]), 1 << 20),
            Err(MessageSetError::Truncated)
        ));
    }
}

//! Records of a stored batch, decoded where the broker itself must read them (keys of a
//! compacted topic, compaction, ListOffsets by time). Decompression stops at a limit:
//! a small batch that would expand to gigabytes is refused, not inflated.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::records::{Compression, RecordBatchDecoder, RecordSet};
use std::io::Read;

/// Most bytes one batch may decompress to (`BrokerConfig::max_decompressed_bytes`).
pub(crate) const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 128 * 1024 * 1024;

/// Snappy's framing as the Java client writes it (xerial).
const XERIAL_MAGIC: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";

fn too_big(limit: usize) -> anyhow::Error {
    anyhow::anyhow!("the batch decompresses to more than {limit} bytes")
}

fn read_bounded(reader: impl Read, limit: usize) -> anyhow::Result<Bytes> {
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| anyhow::anyhow!("cannot decompress: {e}"))?;
    if out.len() > limit {
        return Err(too_big(limit));
    }
    Ok(out.into())
}

fn snappy(data: &Bytes, limit: usize) -> anyhow::Result<Bytes> {
    let raw = |block: &[u8], total: usize| -> anyhow::Result<Vec<u8>> {
        let len = snap::raw::decompress_len(block)?;
        if total.saturating_add(len) > limit {
            return Err(too_big(limit));
        }
        Ok(snap::raw::Decoder::new().decompress_vec(block)?)
    };
    if !data.starts_with(XERIAL_MAGIC) {
        return Ok(raw(data, 0)?.into());
    }
    let mut rest = data.slice(XERIAL_MAGIC.len()..);
    let mut out = BytesMut::new();
    while rest.has_remaining() {
        anyhow::ensure!(rest.remaining() >= 4, "truncated snappy block length");
        let size = rest.get_u32() as usize;
        anyhow::ensure!(rest.remaining() >= size, "truncated snappy block");
        let block = rest.split_to(size);
        out.extend_from_slice(&raw(&block, out.len())?);
    }
    Ok(out.freeze())
}

pub(crate) fn decompress(
    buf: &mut Bytes,
    compression: Compression,
    limit: usize,
) -> anyhow::Result<Bytes> {
    let data = buf.split_to(buf.len());
    match compression {
        Compression::None => Ok(data),
        Compression::Gzip => read_bounded(flate2::read::GzDecoder::new(data.reader()), limit),
        Compression::Lz4 => read_bounded(lz4::Decoder::new(data.reader())?, limit),
        Compression::Zstd => read_bounded(zstd::stream::read::Decoder::new(data.reader())?, limit),
        Compression::Snappy => snappy(&data, limit),
    }
}

/// The records of `batch`, decompressing at most `limit` bytes.
pub(crate) fn decode(batch: &Bytes, limit: usize) -> anyhow::Result<RecordSet> {
    let mut buf = batch.clone();
    RecordBatchDecoder::decode_with_custom_compression(
        &mut buf,
        Some(|b: &mut Bytes, c: Compression| decompress(b, c, limit)),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    /// Inputs the `record_batch` fuzz target found (broker/fuzz/regressions/record_batch):
    /// each is split, validated and decoded as the broker does, and must come back, not
    /// abort. (A batch declaring 2^28 records made the decoder reserve 38 GB.)
    #[test]
    fn what_the_fuzzer_found_stays_fixed() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/record_batch");
        let mut decoded = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let data = Bytes::from(std::fs::read(entry.unwrap().path()).unwrap());
            for (_, bytes) in crate::log::batch::split_batches(data).unwrap_or_default() {
                if crate::log::batch::BatchHeader::validate(&bytes).is_ok() {
                    assert!(decode(&bytes, 1 << 20).is_err());
                    decoded += 1;
                }
            }
        }
        assert!(decoded > 0, "the regressions reach the decoder");
    }

    /// A record at `offset` as a producer writes it (not idempotent, creation time).
    pub(crate) fn record(offset: i64, key: Bytes, value: Bytes) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset,
            // The base sequence is -1 and the deltas follow the offsets.
            sequence: offset as i32 - 1,
            timestamp: 0,
            key: Some(key),
            value: Some(value),
            headers: Default::default(),
        }
    }

    /// `records` as one uncompressed v2 batch, with its header.
    pub(crate) fn encoded(records: &[Record]) -> (crate::log::batch::BatchHeader, Bytes) {
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buf, records, &options).unwrap();
        let bytes = buf.freeze();
        (
            crate::log::batch::BatchHeader::parse(&bytes).unwrap(),
            bytes,
        )
    }

    fn batch(value_len: usize, compression: Compression) -> Bytes {
        let record = record(
            0,
            Bytes::from_static(b"k"),
            Bytes::from(vec![0u8; value_len]),
        );
        let mut out = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut out, [&record], &options).unwrap();
        out.freeze()
    }

    #[test]
    fn every_codec_decodes_within_the_limit_and_stops_beyond_it() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let b = batch(100_000, c);
            let set = decode(&b, 1 << 20).unwrap_or_else(|e| panic!("{c:?}: {e}"));
            assert_eq!(set.records[0].value.as_ref().map(Bytes::len), Some(100_000));
            if c != Compression::None {
                let e = format!("{:#}", decode(&b, 50_000).unwrap_err());
                assert!(e.contains("more than 50000 bytes"), "{c:?}: {e}");
            }
        }
    }
}

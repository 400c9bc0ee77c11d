//! Batches stored in the codec a topic's `compression.type` names, as Kafka's broker
//! recompresses them: the records and the header's producer fields kept, the codec and
//! the CRC new. A batch already in that codec is stored as it came (its level is not
//! changed, as in Kafka).

use super::batch::{BatchError, BatchHeader};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::records::{Compression, RecordBatchEncoder, RecordEncodeOptions};
use std::io::Write;

/// The codec named by `compression.type`; `None` for `producer` (store as it came).
pub(crate) fn codec(name: &str) -> Option<Compression> {
    match name {
        "uncompressed" => Some(Compression::None),
        "gzip" => Some(Compression::Gzip),
        "snappy" => Some(Compression::Snappy),
        "lz4" => Some(Compression::Lz4),
        "zstd" => Some(Compression::Zstd),
        _ => None,
    }
}

/// The name `compression.type` gives the codec of a batch.
pub(crate) fn codec_name(h: &BatchHeader) -> &'static str {
    match codec_of(h) {
        Ok(Compression::None) => "uncompressed",
        Ok(Compression::Gzip) => "gzip",
        Ok(Compression::Snappy) => "snappy",
        Ok(Compression::Lz4) => "lz4",
        Ok(Compression::Zstd) => "zstd",
        Err(_) => "unknown",
    }
}

/// The codec of a batch, from its attributes.
pub(crate) fn codec_of(h: &BatchHeader) -> Result<Compression, BatchError> {
    Ok(match h.attributes & 0x07 {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        c => return Err(BatchError::UnknownCodec(c)),
    })
}

fn compress(raw: &[u8], out: &mut BytesMut, to: Compression, level: i32) -> anyhow::Result<()> {
    match to {
        Compression::Gzip => {
            // -1: the codec's default, as Kafka's `compression.gzip.level`.
            let level = if level < 0 { 6 } else { level as u32 };
            let mut e =
                flate2::write::GzEncoder::new(out.writer(), flate2::Compression::new(level));
            e.write_all(raw)?;
            e.finish()?;
        }
        Compression::Lz4 => {
            let mut e = lz4::EncoderBuilder::new()
                .level(level.max(1) as u32)
                .block_mode(lz4::BlockMode::Independent)
                .build(out.writer())?;
            e.write_all(raw)?;
            e.finish().1?;
        }
        Compression::Zstd => zstd::stream::copy_encode(raw, out.writer(), level)?,
        Compression::None | Compression::Snappy => {
            anyhow::bail!("{to:?} is encoded by the record encoder itself")
        }
    }
    Ok(())
}

/// `batch` in codec `to` at `level` (the level of gzip, lz4 or zstd), decompressing at
/// most `limit` bytes; `None` when it already is in that codec.
pub(crate) fn recompress(
    h: &BatchHeader,
    batch: &Bytes,
    to: Compression,
    level: i32,
    limit: usize,
) -> anyhow::Result<Option<(BatchHeader, Bytes)>> {
    if codec_of(h)? == to {
        return Ok(None);
    }
    let set = super::records::decode(batch, limit)?;
    let options = RecordEncodeOptions {
        version: 2,
        compression: to,
    };
    let mut out = BytesMut::with_capacity(batch.len());
    match to {
        Compression::None | Compression::Snappy => {
            RecordBatchEncoder::encode(&mut out, &set.records, &options)?
        }
        _ => RecordBatchEncoder::encode_with_custom_compression(
            &mut out,
            &set.records,
            &options,
            Some(|raw: &mut BytesMut, out: &mut BytesMut, c: Compression| {
                compress(raw, out, c, level)
            }),
        )?,
    }
    let bytes = out.freeze();
    let header = BatchHeader::validate(&bytes)?;
    Ok(Some((header, bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::records::tests::{encoded, record};

    #[test]
    fn every_codec_round_trips_with_the_producer_fields_kept() {
        let mut records: Vec<_> = (0..20)
            .map(|i| {
                let mut r = record(
                    i,
                    Bytes::from(format!("k{i}")),
                    Bytes::from(vec![b'v'; 300]),
                );
                r.producer_id = 42;
                r.producer_epoch = 3;
                r.sequence = 7 + i as i32;
                r.timestamp = 1_000 + i;
                r
            })
            .collect();
        records[0].transactional = true;
        for r in &mut records {
            r.transactional = true;
        }
        let (h, bytes) = encoded(&records);
        for to in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let (nh, nb) = recompress(
                &h,
                &bytes,
                to,
                if to == Compression::Zstd { 3 } else { 1 },
                1 << 20,
            )
            .unwrap()
            .unwrap();
            assert_eq!(codec_of(&nh).unwrap(), to);
            assert!(nb.len() < bytes.len(), "{to:?} compresses");
            assert_eq!(
                (
                    nh.producer_id,
                    nh.producer_epoch,
                    nh.base_sequence,
                    nh.record_count
                ),
                (42, 3, 7, 20)
            );
            assert_eq!((nh.base_timestamp, nh.max_timestamp), (1_000, 1_019));
            assert!(nh.is_transactional());
            let back = crate::log::records::decode(&nb, 1 << 20).unwrap().records;
            assert_eq!(back.len(), 20);
            assert_eq!(back[5].key, records[5].key);
            assert_eq!(back[5].value, records[5].value);
            let (again, plain) = recompress(&nh, &nb, Compression::None, 0, 1 << 20)
                .unwrap()
                .unwrap();
            assert_eq!(codec_of(&again).unwrap(), Compression::None);
            assert_eq!(plain.len(), bytes.len());
            assert!(recompress(&nh, &nb, to, 1, 1 << 20).unwrap().is_none());
        }
    }
}

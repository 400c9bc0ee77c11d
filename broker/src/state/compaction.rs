//! One range of a compacted log, cleaned: the records whose key has a later record go.

use crate::log::batch::BatchHeader;
use crate::log::LogError;
use bytes::Bytes;
use kafka_protocol::records::{RecordBatchEncoder, RecordEncodeOptions, RecordSet};
use std::collections::HashMap;

fn corrupt(reason: String) -> LogError {
    LogError::Corrupt {
        path: "compaction".into(),
        reason,
    }
}

/// The records of a batch compaction may thin out; `None` for control and transactional
/// batches, which are kept whole.
pub(super) fn decode(
    h: &BatchHeader,
    bytes: &Bytes,
    max_decompressed: usize,
) -> Result<Option<RecordSet>, LogError> {
    if h.is_control() || h.is_transactional() {
        return Ok(None);
    }
    crate::log::records::decode(bytes, max_decompressed)
        .map(Some)
        .map_err(|e| corrupt(format!("{e:#}")))
}

/// The batches with only the records that are the latest of their key (and the keyless
/// ones), re-encoded in their codec where records went; and how many went.
pub(super) fn clean(
    batches: Vec<(BatchHeader, Bytes)>,
    latest: &HashMap<Bytes, i64>,
    max_decompressed: usize,
) -> Result<(Vec<(BatchHeader, Bytes)>, usize), LogError> {
    let mut removed = 0;
    let mut out = Vec::with_capacity(batches.len());
    for (h, b) in batches {
        let Some(set) = decode(&h, &b, max_decompressed)? else {
            out.push((h, b));
            continue;
        };
        let total = set.records.len();
        let kept: Vec<_> = set
            .records
            .into_iter()
            .filter(|r| {
                r.key
                    .as_ref()
                    .is_none_or(|k| latest.get(k).is_none_or(|o| *o == r.offset))
            })
            .collect();
        removed += total - kept.len();
        if kept.len() == total {
            out.push((h, b));
        } else if !kept.is_empty() {
            let mut buf = bytes::BytesMut::new();
            RecordBatchEncoder::encode(
                &mut buf,
                &kept,
                &RecordEncodeOptions {
                    version: 2,
                    compression: set.compression,
                },
            )
            .map_err(|e| corrupt(e.to_string()))?;
            let bytes = buf.freeze();
            let mut nh = BatchHeader::parse(&bytes).map_err(|e| corrupt(e.to_string()))?;
            nh.leader_epoch = h.leader_epoch;
            out.push((nh, bytes));
        }
    }
    Ok((out, removed))
}

//! The checks a produced batch's records must pass, one record at a time, as Kafka's
//! `LogValidator` makes them: a compacted topic's records need keys, and CreateTime
//! timestamps must lie within `message.timestamp.before.max.ms` / `after.max.ms` of the
//! broker's clock (KIP-937). A batch with bad records is refused whole, naming each bad
//! record's index in the batch and why (KIP-467), so that a client fails only those and
//! may send the others again.

use crate::log::batch::BatchHeader;
use bytes::Bytes;
use kafka_protocol::error::ResponseError;

/// What the records of one partition's batches are checked against.
#[derive(Debug, Clone, Copy)]
pub(super) struct RecordRules {
    pub(super) compacted: bool,
    /// `(now, before.max.ms, after.max.ms)` for CreateTime topics; `None` for LogAppendTime.
    pub(super) timestamps: Option<(i64, i64, i64)>,
    /// The most bytes a batch may decompress to.
    pub(super) limit: usize,
}

/// A batch refused for some of its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RecordErrors {
    pub(super) code: ResponseError,
    pub(super) message: String,
    /// Each bad record's index in its batch, with the reason.
    pub(super) records: Vec<(i32, String)>,
}

impl RecordRules {
    /// Whether a batch may hold a record these rules refuse; the header alone settles it
    /// for most batches, so their records need not be decoded.
    fn may_refuse(&self, h: &BatchHeader) -> bool {
        self.compacted
            || self.timestamps.is_some_and(|(now, before, after)| {
                before != i64::MAX || out_of_range(h.max_timestamp, now, before, after)
            })
    }

    /// Checks every record of the batch `bytes` (whose header is `h`) of `topic`'s
    /// `partition`.
    pub(super) fn check(
        &self,
        h: &BatchHeader,
        bytes: &Bytes,
        topic: &str,
        partition: i32,
    ) -> Result<(), Refused> {
        if !self.may_refuse(h) {
            return Ok(());
        }
        let set = crate::log::records::decode(bytes, self.limit).map_err(|e| {
            Refused::Batch(format!(
                "cannot decode batch at base sequence {}: {e:#}",
                h.base_sequence
            ))
        })?;
        let mut errors = Vec::new();
        let mut timestamp_error = false;
        for (index, r) in set.records.iter().enumerate() {
            let index = index as i32;
            if self.compacted && r.key.is_none() {
                errors.push((
                    index,
                    format!(
                        "Compacted topic cannot accept message without key in topic partition {topic}-{partition}"
                    ),
                ));
            } else if let Some((now, before, after)) = self.timestamps {
                if r.timestamp != -1 && out_of_range(r.timestamp, now, before, after) {
                    timestamp_error = true;
                    errors.push((
                        index,
                        format!(
                            "Timestamp {} of message with offset {} is out of range. The timestamp should be within [{}, {}]",
                            r.timestamp,
                            r.offset,
                            now.wrapping_sub(before),
                            now.wrapping_add(after)
                        ),
                    ));
                }
            }
        }
        if errors.is_empty() {
            return Ok(());
        }
        Err(Refused::Records(if timestamp_error {
            RecordErrors {
                code: ResponseError::InvalidTimestamp,
                message: "One or more records have been rejected due to invalid timestamp".into(),
                records: errors,
            }
        } else {
            let shown: Vec<String> = errors
                .iter()
                .take(3)
                .map(|(i, m)| format!("RecordError(batchIndex={i}, message='{m}')"))
                .collect();
            RecordErrors {
                code: ResponseError::InvalidRecord,
                message: format!(
                    "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
                    errors.len(),
                    shown.join(", ")
                ),
                records: errors,
            }
        }))
    }
}

/// Why a batch's records were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refused {
    /// The records cannot be read (CORRUPT_MESSAGE).
    Batch(String),
    /// Some records break the rules.
    Records(RecordErrors),
}

/// Kafka's test, in its (wrapping) long arithmetic: more than `before` in the past or
/// more than `after` in the future.
fn out_of_range(timestamp: i64, now: i64, before: i64, after: i64) -> bool {
    let diff = now.wrapping_sub(timestamp);
    diff > before || diff.wrapping_neg() > after
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::records::tests::{encoded, record};

    fn batch(records: &[(Option<&str>, i64)]) -> (BatchHeader, Bytes) {
        let records: Vec<_> = records
            .iter()
            .enumerate()
            .map(|(i, (key, ts))| {
                let mut r = record(i as i64, Bytes::new(), Bytes::from_static(b"v"));
                r.key = key.map(|k| Bytes::copy_from_slice(k.as_bytes()));
                r.timestamp = *ts;
                r
            })
            .collect();
        encoded(&records)
    }

    const NOW: i64 = 1_700_000_000_000;
    const HOUR: i64 = 3_600_000;

    fn rules(compacted: bool, before: i64, after: i64) -> RecordRules {
        RecordRules {
            compacted,
            timestamps: Some((NOW, before, after)),
            limit: 1 << 20,
        }
    }

    #[test]
    fn keyless_records_of_a_compacted_topic_are_named_by_index() {
        let (h, b) = batch(&[(Some("a"), NOW), (None, NOW), (Some("c"), NOW), (None, NOW)]);
        let Err(Refused::Records(e)) = rules(true, i64::MAX, HOUR).check(&h, &b, "t", 0) else {
            panic!("refused");
        };
        assert_eq!(e.code, ResponseError::InvalidRecord);
        let without_key =
            "Compacted topic cannot accept message without key in topic partition t-0";
        assert_eq!(
            e.records,
            vec![(1, without_key.to_string()), (3, without_key.to_string())]
        );
        assert_eq!(
            e.message,
            format!(
                "One or more records have been rejected due to 2 record errors in total, and only showing the first three errors at most: [RecordError(batchIndex=1, message='{without_key}'), RecordError(batchIndex=3, message='{without_key}')]"
            )
        );
        let (h, b) = batch(&[(None, NOW)]);
        assert!(rules(false, i64::MAX, HOUR).check(&h, &b, "t", 0).is_ok());
    }

    #[test]
    fn timestamps_outside_the_bounds_are_refused() {
        let (h, b) = batch(&[
            (None, NOW),
            (None, NOW + HOUR + 1),
            (None, NOW - 10),
            (None, -1),
        ]);
        assert!(rules(false, i64::MAX, i64::MAX)
            .check(&h, &b, "t", 0)
            .is_ok());
        let Err(Refused::Records(e)) = rules(false, 5, HOUR).check(&h, &b, "t", 0) else {
            panic!("refused");
        };
        assert_eq!(e.code, ResponseError::InvalidTimestamp);
        assert_eq!(
            e.message,
            "One or more records have been rejected due to invalid timestamp"
        );
        let indexes: Vec<i32> = e.records.iter().map(|(i, _)| *i).collect();
        assert_eq!(indexes, vec![1, 2]);
        assert_eq!(
            e.records[0].1,
            format!(
                "Timestamp {} of message with offset 1 is out of range. The timestamp should be within [{}, {}]",
                NOW + HOUR + 1,
                NOW - 5,
                NOW + HOUR
            )
        );
        // A LogAppendTime topic takes any timestamp.
        let append_time = RecordRules {
            timestamps: None,
            ..rules(false, 5, HOUR)
        };
        assert!(append_time.check(&h, &b, "t", 0).is_ok());
    }

    #[test]
    fn a_key_error_is_reported_before_a_timestamp_error() {
        let (h, b) = batch(&[(None, NOW + 2 * HOUR)]);
        let Err(Refused::Records(e)) = rules(true, i64::MAX, HOUR).check(&h, &b, "t", 0) else {
            panic!("refused");
        };
        assert_eq!(e.code, ResponseError::InvalidRecord);
        assert!(e.records[0].1.starts_with("Compacted topic"));
    }
}

//! The request and response layouts Kafka 4.0 removed (KIP-896) and the generated codec
//! no longer has, for emulated 3.x releases (`--as-kafka 3.9`): Produce v0–v2, Fetch
//! v0–v3, ListOffsets v0, OffsetCommit v0–v1, OffsetFetch v0. A request is decoded into
//! the current message type, so the handlers serve it; its records stay as sent (message
//! sets), converted by the handlers.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

/// The versions below the generated codec's that this module speaks: (key, min, max).
pub(crate) const LEGACY: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 2),
    (ApiKey::Fetch, 0, 3),
    (ApiKey::ListOffsets, 0, 0),
    (ApiKey::OffsetCommit, 0, 1),
    (ApiKey::OffsetFetch, 0, 0),
];

/// Whether `version` of `api` is one of [`LEGACY`].
pub(crate) fn is_legacy(api: ApiKey, version: i16) -> bool {
    LEGACY
        .iter()
        .any(|(k, min, max)| *k == api && (*min..=*max).contains(&version))
}

fn need(buf: &Bytes, n: usize) -> anyhow::Result<()> {
    anyhow::ensure!(buf.remaining() >= n, "truncated request");
    Ok(())
}

fn i16_(buf: &mut Bytes) -> anyhow::Result<i16> {
    need(buf, 2)?;
    Ok(buf.get_i16())
}

fn i32_(buf: &mut Bytes) -> anyhow::Result<i32> {
    need(buf, 4)?;
    Ok(buf.get_i32())
}

fn i64_(buf: &mut Bytes) -> anyhow::Result<i64> {
    need(buf, 8)?;
    Ok(buf.get_i64())
}

fn string(buf: &mut Bytes) -> anyhow::Result<Option<StrBytes>> {
    let len = i16_(buf)?;
    if len < 0 {
        return Ok(None);
    }
    need(buf, len as usize)?;
    Ok(Some(StrBytes::try_from(buf.split_to(len as usize))?))
}

fn name(buf: &mut Bytes) -> anyhow::Result<StrBytes> {
    Ok(string(buf)?.unwrap_or_default())
}

fn bytes(buf: &mut Bytes) -> anyhow::Result<Option<Bytes>> {
    let len = i32_(buf)?;
    if len < 0 {
        return Ok(None);
    }
    need(buf, len as usize)?;
    Ok(Some(buf.split_to(len as usize)))
}

/// An array of `item`s; its count is checked against the bytes left, so a lying count
/// cannot reserve memory.
fn array<T>(
    buf: &mut Bytes,
    mut item: impl FnMut(&mut Bytes) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<T>> {
    let n = i32_(buf)?;
    if n < 0 {
        return Ok(Vec::new());
    }
    anyhow::ensure!(
        n as usize <= buf.remaining(),
        "array of {n} items in a short request"
    );
    (0..n).map(|_| item(buf)).collect()
}

/// Decodes the body of a legacy request.
pub(crate) fn decode(api: ApiKey, version: i16, buf: &mut Bytes) -> anyhow::Result<RequestKind> {
    Ok(match api {
        ApiKey::Produce => {
            let mut r = ProduceRequest::default();
            r.acks = i16_(buf)?;
            r.timeout_ms = i32_(buf)?;
            r.topic_data = array(buf, |b| {
                let mut t = produce_request::TopicProduceData::default();
                t.name = TopicName(name(b)?);
                t.partition_data = array(b, |b| {
                    let mut p = produce_request::PartitionProduceData::default();
                    p.index = i32_(b)?;
                    p.records = bytes(b)?;
                    Ok(p)
                })?;
                Ok(t)
            })?;
            RequestKind::Produce(r)
        }
        ApiKey::Fetch => {
            let mut r = FetchRequest::default();
            r.replica_id = BrokerId(i32_(buf)?);
            r.max_wait_ms = i32_(buf)?;
            r.min_bytes = i32_(buf)?;
            if version >= 3 {
                r.max_bytes = i32_(buf)?;
            }
            r.topics = array(buf, |b| {
                let mut t = fetch_request::FetchTopic::default();
                t.topic = TopicName(name(b)?);
                t.partitions = array(b, |b| {
                    let mut p = fetch_request::FetchPartition::default();
                    p.partition = i32_(b)?;
                    p.fetch_offset = i64_(b)?;
                    p.partition_max_bytes = i32_(b)?;
                    Ok(p)
                })?;
                Ok(t)
            })?;
            RequestKind::Fetch(r)
        }
        ApiKey::ListOffsets => {
            let mut r = ListOffsetsRequest::default();
            r.replica_id = BrokerId(i32_(buf)?);
            r.topics = array(buf, |b| {
                let mut t = list_offsets_request::ListOffsetsTopic::default();
                t.name = TopicName(name(b)?);
                t.partitions = array(b, |b| {
                    let mut p = list_offsets_request::ListOffsetsPartition::default();
                    p.partition_index = i32_(b)?;
                    p.timestamp = i64_(b)?;
                    let _max_num_offsets = i32_(b)?;
                    Ok(p)
                })?;
                Ok(t)
            })?;
            RequestKind::ListOffsets(r)
        }
        ApiKey::OffsetCommit => {
            let mut r = OffsetCommitRequest::default();
            r.group_id = GroupId(name(buf)?);
            if version >= 1 {
                r.generation_id_or_member_epoch = i32_(buf)?;
                r.member_id = name(buf)?;
            }
            r.topics = array(buf, |b| {
                let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
                t.name = TopicName(name(b)?);
                t.partitions = array(b, |b| {
                    let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
                    p.partition_index = i32_(b)?;
                    p.committed_offset = i64_(b)?;
                    if version >= 1 {
                        let _commit_timestamp = i64_(b)?;
                    }
                    p.committed_metadata = string(b)?;
                    Ok(p)
                })?;
                Ok(t)
            })?;
            RequestKind::OffsetCommit(r)
        }
        ApiKey::OffsetFetch => {
            let mut r = OffsetFetchRequest::default();
            r.group_id = GroupId(name(buf)?);
            r.topics = Some(array(buf, |b| {
                let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
                t.name = TopicName(name(b)?);
                t.partition_indexes = array(b, i32_)?;
                Ok(t)
            })?);
            RequestKind::OffsetFetch(r)
        }
        other => anyhow::bail!("{other:?} v{version} has no legacy layout"),
    })
}

fn put_string(out: &mut BytesMut, s: Option<&str>) {
    match s {
        None => out.put_i16(-1),
        Some(s) => {
            out.put_i16(s.len() as i16);
            out.put_slice(s.as_bytes());
        }
    }
}

fn put_array<T>(out: &mut BytesMut, items: &[T], mut item: impl FnMut(&mut BytesMut, &T)) {
    out.put_i32(items.len() as i32);
    for i in items {
        item(out, i);
    }
}

/// Encodes the body of a response to a legacy request.
pub(crate) fn encode(
    version: i16,
    response: &ResponseKind,
    out: &mut BytesMut,
) -> anyhow::Result<()> {
    match response {
        ResponseKind::Produce(r) => {
            put_array(out, &r.responses, |out, t| {
                put_string(out, Some(&t.name));
                put_array(out, &t.partition_responses, |out, p| {
                    out.put_i32(p.index);
                    out.put_i16(p.error_code);
                    out.put_i64(p.base_offset);
                    if version >= 2 {
                        out.put_i64(p.log_append_time_ms);
                    }
                });
            });
            if version >= 1 {
                out.put_i32(r.throttle_time_ms);
            }
        }
        ResponseKind::Fetch(r) => {
            if version >= 1 {
                out.put_i32(r.throttle_time_ms);
            }
            put_array(out, &r.responses, |out, t| {
                put_string(out, Some(&t.topic));
                put_array(out, &t.partitions, |out, p| {
                    out.put_i32(p.partition_index);
                    out.put_i16(p.error_code);
                    out.put_i64(p.high_watermark);
                    let records = p.records.clone().unwrap_or_default();
                    out.put_i32(records.len() as i32);
                    out.put_slice(&records);
                });
            });
        }
        ResponseKind::ListOffsets(r) => {
            put_array(out, &r.topics, |out, t| {
                put_string(out, Some(&t.name));
                put_array(out, &t.partitions, |out, p| {
                    out.put_i32(p.partition_index);
                    out.put_i16(p.error_code);
                    // `old_style_offsets`: the one offset found, if any.
                    let offsets: &[i64] = if p.error_code == 0 && p.offset >= 0 {
                        std::slice::from_ref(&p.offset)
                    } else {
                        &[]
                    };
                    put_array(out, offsets, |out, o| out.put_i64(*o));
                });
            });
        }
        ResponseKind::OffsetCommit(r) => {
            put_array(out, &r.topics, |out, t| {
                put_string(out, Some(&t.name));
                put_array(out, &t.partitions, |out, p| {
                    out.put_i32(p.partition_index);
                    out.put_i16(p.error_code);
                });
            });
        }
        ResponseKind::OffsetFetch(r) => {
            put_array(out, &r.topics, |out, t| {
                put_string(out, Some(&t.name));
                put_array(out, &t.partitions, |out, p| {
                    out.put_i32(p.partition_index);
                    out.put_i64(p.committed_offset);
                    put_string(out, p.metadata.as_deref());
                    out.put_i16(p.error_code);
                });
            });
        }
        other => anyhow::bail!("no legacy layout for {other:?}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_produce_v2_request_decodes_and_lying_counts_are_refused() {
        let mut b = BytesMut::new();
        b.put_i16(-1);
        b.put_i32(1000);
        b.put_i32(1);
        put_string(&mut b, Some("t"));
        b.put_i32(1);
        b.put_i32(3);
        b.put_i32(2);
        b.put_slice(b"xy");
        let RequestKind::Produce(r) = decode(ApiKey::Produce, 2, &mut b.freeze()).unwrap() else {
            panic!("not a produce request");
        };
        assert_eq!((r.acks, r.timeout_ms), (-1, 1000));
        let p = &r.topic_data[0].partition_data[0];
        assert_eq!((p.index, p.records.as_deref()), (3, Some(&b"xy"[..])));

        let mut lie = BytesMut::new();
        lie.put_i16(1);
        lie.put_i32(0);
        lie.put_i32(i32::MAX);
        assert!(decode(ApiKey::Produce, 0, &mut lie.freeze()).is_err());
    }

    #[test]
    fn list_offsets_v0_answers_the_offset_as_a_list() {
        let mut p = list_offsets_response::ListOffsetsPartitionResponse::default();
        p.partition_index = 0;
        p.offset = 42;
        let mut t = list_offsets_response::ListOffsetsTopicResponse::default();
        t.name = TopicName(StrBytes::from_static_str("t"));
        t.partitions = vec![p];
        let mut r = ListOffsetsResponse::default();
        r.topics = vec![t];
        let mut out = BytesMut::new();
        encode(0, &ResponseKind::ListOffsets(r), &mut out).unwrap();
        let want: &[u8] = &[
            0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
            42,
        ];
        assert_eq!(&out[..], want);
    }
}

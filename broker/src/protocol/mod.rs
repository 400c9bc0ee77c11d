//! Request decoding, dispatch by API key and version, response encoding.
//!
//! [`SUPPORTED`] is the single list of what the broker implements: ApiVersions advertises
//! it, dispatch refuses anything outside it, and the README's table is generated from it.

use crate::faults::{Fault, RecordedRequest};
use crate::handlers;
use crate::state::State;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use std::sync::Arc;

/// The APIs and version ranges this broker implements: (key, min, max).
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 8),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    // EndTxn v5 and Produce v12 are transaction version 2 (KIP-890), not offered.
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
];

/// The supported range of one API key, if any.
pub fn supported_range(key: i16) -> Option<(ApiKey, i16, i16)> {
    SUPPORTED.iter().copied().find(|(k, _, _)| *k as i16 == key)
}

/// A frame that cannot be served; the connection is closed after logging it.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {0} bytes is too short for a request header")]
    TooShort(usize),
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("{api:?} v{version} is not supported (supported: v{min}-v{max})")]
    UnsupportedVersion {
        api: ApiKey,
        version: i16,
        min: i16,
        max: i16,
    },
    #[error("cannot decode {api:?} v{version}: {reason}")]
    Decode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("injected disconnect on {0:?}")]
    Injected(ApiKey),
    #[error("cannot encode response to {api:?} v{version}: {reason}")]
    Encode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
}

/// Who is on the other end of a connection, and which presented broker it reached.
#[derive(Debug, Clone)]
pub struct Connection {
    pub client_host: String,
    pub node_id: i32,
}

/// A decoded request with what a handler needs of its header.
#[derive(Debug)]
pub struct Request {
    pub api: ApiKey,
    pub version: i16,
    pub header: RequestHeader,
    pub body: RequestKind,
    /// The client's address as DescribeGroups reports it (`/127.0.0.1`).
    pub client_host: String,
    /// The presented broker the request came in on.
    pub node_id: i32,
}

impl Request {
    /// The client id from the header, or "".
    pub fn client_id(&self) -> String {
        self.header
            .client_id
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default()
    }
}

/// Decodes, handles and encodes one request frame (without its length prefix), appending
/// the response frame to `out`. `Ok(false)` means no response is sent (Produce, acks=0).
pub async fn serve_frame(
    state: &Arc<State>,
    mut frame: Bytes,
    conn: &Connection,
    out: &mut BytesMut,
) -> Result<bool, FrameError> {
    if frame.len() < 8 {
        return Err(FrameError::TooShort(frame.len()));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Some((api, min, max)) = supported_range(key) else {
        state.faults.violation(|| {
            format!("a client sent api key {key} v{version}, which agentbus does not implement")
        });
        return Err(FrameError::UnknownApiKey(key));
    };
    if version < min || version > max {
        if api == ApiKey::ApiVersions {
            // KIP-511: answer in the v0 format so any client can read the ranges and retry.
            let body = api_versions_response(ResponseError::UnsupportedVersion.code()).into();
            return encode(api, 0, correlation_id, &body, out).map(|()| true);
        }
        // (ApiVersions above the range is normal negotiation, answered above.)
        state.faults.violation(|| {
            format!("a client sent {api:?} v{version}; agentbus implements v{min}-v{max}")
        });
        return Err(FrameError::UnsupportedVersion {
            api,
            version,
            min,
            max,
        });
    }
    let decode_err = |e: anyhow::Error| FrameError::Decode {
        api,
        version,
        reason: e.to_string(),
    };
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version))
        .map_err(decode_err)?;
    let body = RequestKind::decode(api, &mut frame, version).map_err(decode_err)?;
    state.faults.record(|| RecordedRequest {
        api_key: key,
        version,
        client_id: header
            .client_id
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        node_id: conn.node_id,
    });
    match state.faults.take(key, conn.node_id) {
        Some(Fault::Disconnect) => return Err(FrameError::Injected(api)),
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::Error(code)) => {
            if let Some(resp) = handlers::error_response(&body, version, code) {
                return encode(api, version, correlation_id, &resp, out).map(|()| true);
            }
            tracing::warn!(?api, "no error form for this API; injected error ignored");
        }
        None => {}
    }
    if frame.has_remaining() {
        tracing::debug!(
            ?api,
            version,
            left = frame.remaining(),
            "request has trailing bytes"
        );
    }
    let request = Request {
        api,
        version,
        header,
        body,
        client_host: conn.client_host.clone(),
        node_id: conn.node_id,
    };
    match handlers::handle(state, request).await {
        Some(response) => encode(api, version, correlation_id, &response, out).map(|()| true),
        None => Ok(false),
    }
}

fn encode(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
    buf: &mut BytesMut,
) -> Result<(), FrameError> {
    let encode_err = |e: anyhow::Error| FrameError::Encode {
        api,
        version,
        reason: e.to_string(),
    };
    let start = buf.len();
    buf.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    let encoded = header
        .encode(buf, api.response_header_version(version))
        .and_then(|()| response.encode(buf, version));
    if let Err(e) = encoded {
        buf.truncate(start);
        return Err(encode_err(e));
    }
    let len = (buf.len() - start - 4) as i32;
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// The ApiVersions body listing [`SUPPORTED`].
pub fn api_versions_response(error_code: i16) -> ApiVersionsResponse {
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    let mut resp = ApiVersionsResponse::default();
    resp.error_code = error_code;
    resp.api_keys = SUPPORTED
        .iter()
        .map(|(k, min, max)| {
            let mut v = ApiVersion::default();
            v.api_key = *k as i16;
            v.min_version = *min;
            v.max_version = *max;
            v
        })
        .collect();
    resp
}

/// The README's table of supported APIs, generated from [`SUPPORTED`].
pub fn supported_table_markdown() -> String {
    let mut out = String::from("| API | key | versions |\n|---|---|---|\n");
    let mut rows: Vec<_> = SUPPORTED.to_vec();
    rows.sort_by_key(|(k, _, _)| *k as i16);
    for (k, min, max) in rows {
        out.push_str(&format!("| {k:?} | {} | {min}–{max} |\n", k as i16));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use proptest::prelude::*;

    fn state() -> Arc<State> {
        Arc::new(State::open(BrokerConfig::default(), ("127.0.0.1".into(), 9092)).unwrap())
    }

    /// Serves one frame as a connection from 127.0.0.1 would; gives the result and the output.
    fn serve(state: &Arc<State>, frame: Vec<u8>) -> (Result<bool, FrameError>, BytesMut) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let conn = Connection {
            client_host: "/127.0.0.1".into(),
            node_id: 1,
        };
        let mut out = BytesMut::new();
        let result = rt.block_on(serve_frame(state, Bytes::from(frame), &conn, &mut out));
        (result, out)
    }

    /// A valid Metadata v12 request for one topic, to mutate.
    fn metadata_frame() -> Vec<u8> {
        let mut b = vec![0, 3, 0, 12, 0, 0, 0, 7, 0, 1, b'c', 0];
        // topics: compact array of 1, topic id (16 bytes), name "t", tags
        b.push(2);
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&[2, b't', 0]);
        b.extend_from_slice(&[1, 0, 0, 0]); // allow auto create, no authz ops, tags
        b
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Any bytes at all: an answer or an error, never a panic.
        #[test]
        fn arbitrary_frames_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = serve(&state(), frame);
        }

        /// A valid request with bytes flipped or cut short: the same.
        #[test]
        fn mutated_requests_never_panic(flips in proptest::collection::vec((0usize..40, any::<u8>()), 1..6), cut in 0usize..40) {
            let mut frame = metadata_frame();
            for (i, v) in flips {
                let n = frame.len();
                frame[i % n] = v;
            }
            frame.truncate(frame.len().saturating_sub(cut % 8));
            let _ = serve(&state(), frame);
        }
    }

    /// Regression: a declared array length of 2³¹−1 used to abort the process while
    /// reserving memory (kafka-protocol is patched in third_party/).
    #[test]
    fn a_huge_declared_array_is_an_error_not_an_abort() {
        // Metadata v1: header (key 3, v1, correlation 1, client id "c"), topics count i32::MAX.
        let frame = vec![
            0, 3, 0, 1, 0, 0, 0, 1, 0, 1, b'c', 0x7f, 0xff, 0xff, 0xff, 0, 1, b't',
        ];
        let (result, _) = serve(&state(), frame);
        assert!(
            matches!(result, Err(FrameError::Decode { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn the_unmutated_request_is_served() {
        let state = state();
        let (result, out) = serve(&state, metadata_frame());
        let answered = result.unwrap();
        assert!(answered && out.len() > 8);
        assert!(state.topic("t").is_some(), "auto-created");
    }
}

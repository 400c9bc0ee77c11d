//! Serving one request: decode, then injected faults, then the handler, then encode.

use crate::faults::{Fault, RecordedRequest};
use crate::handlers;
use crate::protocol::{
    api_versions_response, decode, encode, Connection, Decoded, FrameError, Request,
};
use crate::state::State;
use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ApiKey;
use std::sync::Arc;

/// Decodes, handles and encodes one request frame (without its length prefix), appending
/// the response frame to `out`. `Ok(false)` means no response is sent (Produce, acks=0).
pub(crate) async fn serve_frame(
    state: &Arc<State>,
    frame: Bytes,
    conn: &Connection,
    out: &mut BytesMut,
) -> Result<bool, FrameError> {
    let decoded = decode(frame, &state.api_table).inspect_err(|e| match e {
        FrameError::UnknownApiKey(key) => state.faults.violation(|| {
            format!("a client sent api key {key}, which agentbus does not implement")
        }),
        FrameError::UnsupportedVersion {
            api,
            version,
            min,
            max,
        } => state.faults.violation(|| {
            format!("a client sent {api:?} v{version}; agentbus implements v{min}-v{max}")
        }),
        _ => {}
    })?;
    let (correlation_id, header, body, trailing, api, version) = match decoded {
        Decoded::ApiVersionsUnsupported { correlation_id } => {
            let body =
                api_versions_response(&state.api_table, ResponseError::UnsupportedVersion.code())
                    .into();
            return encode(ApiKey::ApiVersions, 0, correlation_id, &body, out).map(|()| true);
        }
        Decoded::Request {
            correlation_id,
            header,
            body,
            trailing,
            api,
            version,
        } => (correlation_id, header, body, trailing, api, version),
    };
    let key = api as i16;
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
    if trailing > 0 {
        tracing::debug!(?api, version, trailing, "request has trailing bytes");
    }
    let request = Request {
        api,
        version,
        header,
        body,
        client_host: conn.client_host.clone(),
        node_id: conn.node_id,
        listener: conn.listener,
        principal: conn.principal.clone(),
    };
    match handlers::handle(state, request).await {
        Some(response) => encode(api, version, correlation_id, &response, out).map(|()| true),
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use bytes::BytesMut;
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
            listener: 0,
            principal: "User:ANONYMOUS".into(),
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

//! Any bytes as one request frame (after the length prefix): decoded, dispatched to its
//! handler against a fresh in-memory broker, answered. Must never panic or hang.
#![no_main]

use agentbus_broker::protocol::Connection;
use agentbus_broker::service::serve_frame;
use agentbus_broker::state::State;
use agentbus_broker::BrokerConfig;
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|frame: &[u8]| {
    // Paused time: a long-poll fetch or a rebalance wait passes at once instead of stalling.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let state = match State::open(BrokerConfig::default(), ("127.0.0.1".into(), 9092)) {
        Ok(state) => Arc::new(state),
        Err(e) => panic!("an in-memory broker must open: {e}"),
    };
    let conn = Connection {
        client_host: "/127.0.0.1".into(),
        node_id: state.config.node_id,
    };
    let mut out = BytesMut::new();
    let _ = rt.block_on(serve_frame(
        &state,
        Bytes::copy_from_slice(frame),
        &conn,
        &mut out,
    ));
});

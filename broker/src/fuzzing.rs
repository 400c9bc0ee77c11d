//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`): the broker's insides
//! stay private, and each target hands its bytes to one function here.

use crate::config::BrokerConfig;
use crate::log::batch::{split_batches, BatchHeader};
use crate::log::records;
use crate::protocol::Connection;
use crate::service::serve_frame;
use crate::state::State;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;

/// Any bytes as one request frame (after the length prefix): decoded, dispatched to its
/// handler against a fresh in-memory broker, answered.
pub fn request(frame: &[u8]) {
    // Paused time: a long-poll fetch or a rebalance wait passes at once instead of stalling.
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
    else {
        panic!("cannot build the fuzzing runtime");
    };
    let state = match State::open(BrokerConfig::default(), ("127.0.0.1".into(), 9092)) {
        Ok(state) => Arc::new(state),
        Err(e) => panic!("an in-memory broker must open: {e}"),
    };
    let conn = Connection {
        client_host: "/127.0.0.1".into(),
        node_id: state.config().node_id,
        listener: 0,
        principal: "User:ANONYMOUS".into(),
    };
    let mut out = BytesMut::new();
    let _ = rt.block_on(serve_frame(
        &state,
        Bytes::copy_from_slice(frame),
        &conn,
        &mut out,
    ));
}

/// Any bytes as the records of a produce request: split into batches, each validated as
/// the broker validates before storing, then its records decoded as compaction and the
/// compacted-topic key check do, with decompression bounded by `limit`.
pub fn record_batches(records: Bytes, limit: usize) {
    let Ok(batches) = split_batches(records) else {
        return;
    };
    for (_, bytes) in batches {
        if BatchHeader::validate(&bytes).is_ok() {
            let _ = records::decode(&bytes, limit);
        }
    }
}

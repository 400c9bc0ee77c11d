//! OffsetForLeaderEpoch v2–v4: the end offset of a leader epoch, for log truncation checks.

use super::check_leader_epoch;
use crate::state::State;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use std::sync::Arc;

pub(crate) fn handle(
    state: &Arc<State>,
    node: i32,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut resp = OffsetForLeaderEpochResponse::default();
    for t in req.topics {
        let topic = state.topic(t.topic.0.as_str());
        let mut out = OffsetForLeaderTopicResult::default();
        out.topic = t.topic.clone();
        for p in t.partitions {
            let mut e = EpochEndOffset::default();
            e.partition = p.partition;
            e.leader_epoch = -1;
            e.end_offset = -1;
            match topic.as_ref().and_then(|t| t.partition(p.partition)) {
                None => e.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(partition) => {
                    let leader = super::check_leader(state, node, t.topic.0.as_str(), p.partition);
                    match leader.and_then(|()| {
                        check_leader_epoch(p.current_leader_epoch, partition.leader_epoch())
                    }) {
                        Err(code) => e.error_code = code.code(),
                        Ok(()) => {
                            if let Some((epoch, end)) =
                                partition.end_offset_for_epoch(p.leader_epoch)
                            {
                                e.leader_epoch = epoch;
                                e.end_offset = end;
                            }
                        }
                    }
                }
            }
            out.partitions.push(e);
        }
        resp.topics.push(out);
    }
    resp
}

//! Transactions: AddPartitionsToTxn v0–v5, AddOffsetsToTxn v0–v4, EndTxn v0–v4,
//! TxnOffsetCommit v0–v5, DescribeProducers v0, DescribeTransactions v0,
//! ListTransactions v0–v1. The state machine lives in `crate::txn::coordinator`.

use super::{str_bytes, topic_name};
use crate::group::store::CommittedOffset;
use crate::state::State;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::sync::Arc;

fn code(r: Result<(), ResponseError>) -> i16 {
    r.err().map_or(0, |e| e.code())
}

/// Each partition's result, in the order the topics name them.
pub(super) fn topic_results(
    topics: &[add_partitions_to_txn_request::AddPartitionsToTxnTopic],
    results: &[Result<(), ResponseError>],
) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut results = results.iter();
    topics
        .iter()
        .map(|t| {
            let mut tr = AddPartitionsToTxnTopicResult::default();
            tr.name = t.name.clone();
            tr.results_by_partition = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = AddPartitionsToTxnPartitionResult::default();
                    r.partition_index = *p;
                    r.partition_error_code = results.next().map_or(0, |r| code(*r));
                    r
                })
                .collect();
            tr
        })
        .collect()
}

fn add_one(
    state: &Arc<State>,
    id: &str,
    pid: i64,
    epoch: i16,
    verify_only: bool,
    topics: &[add_partitions_to_txn_request::AddPartitionsToTxnTopic],
) -> Vec<AddPartitionsToTxnTopicResult> {
    let partitions: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect();
    let results =
        match state
            .txns
            .add_partitions(id, pid, epoch, &partitions, verify_only, |t, p| {
                state.topic(t).and_then(|t| t.partition(p)).is_some()
            }) {
            Ok(r) => r,
            Err(e) => vec![Err(e); partitions.len()],
        };
    topic_results(topics, &results)
}

pub(crate) fn add_partitions(
    state: &Arc<State>,
    version: i16,
    req: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let mut resp = AddPartitionsToTxnResponse::default();
    if version <= 3 {
        resp.results_by_topic_v3_and_below = add_one(
            state,
            req.v3_and_below_transactional_id.0.as_str(),
            req.v3_and_below_producer_id.0,
            req.v3_and_below_producer_epoch,
            false,
            &req.v3_and_below_topics,
        );
        return resp;
    }
    for t in req.transactions {
        let mut r = AddPartitionsToTxnResult::default();
        r.topic_results = add_one(
            state,
            t.transactional_id.0.as_str(),
            t.producer_id.0,
            t.producer_epoch,
            t.verify_only,
            &t.topics,
        );
        r.transactional_id = t.transactional_id;
        resp.results_by_transaction.push(r);
    }
    resp
}

pub(crate) fn add_offsets(
    state: &Arc<State>,
    req: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let mut resp = AddOffsetsToTxnResponse::default();
    resp.error_code = code(state.txns.add_offsets(
        req.transactional_id.0.as_str(),
        req.producer_id.0,
        req.producer_epoch,
        req.group_id.0.as_str(),
    ));
    resp
}

pub(crate) fn end_txn(state: &Arc<State>, req: EndTxnRequest) -> EndTxnResponse {
    let mut resp = EndTxnResponse::default();
    resp.error_code = code(state.end_transaction(
        req.transactional_id.0.as_str(),
        req.producer_id.0,
        req.producer_epoch,
        req.committed,
    ));
    resp
}

pub(crate) fn txn_offset_commit(
    state: &Arc<State>,
    version: i16,
    req: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    if req.topics.is_empty() {
        // Nothing to commit (every topic refused by an ACL): as Kafka, the transaction
        // is not consulted.
        return TxnOffsetCommitResponse::default();
    }
    let group = req.group_id.0.as_str();
    // Members are checked as for OffsetCommit when the client says who it is (v3+).
    let member_check = if req.generation_id >= 0 || !req.member_id.is_empty() {
        state.groups.check_commit(
            group,
            req.generation_id,
            req.member_id.as_str(),
            req.group_instance_id.as_ref().map(StrBytes::as_str),
        )
    } else {
        Ok(())
    };
    let now = state.clock.now_ms();
    let mut offsets = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            offsets.push((
                t.name.0.to_string(),
                p.partition_index,
                CommittedOffset {
                    offset: p.committed_offset,
                    leader_epoch: if version >= 2 {
                        p.committed_leader_epoch
                    } else {
                        -1
                    },
                    metadata: p
                        .committed_metadata
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                    commit_timestamp_ms: now,
                },
            ));
        }
    }
    let result = member_check.and_then(|()| {
        state.txns.commit_offsets(
            req.transactional_id.0.as_str(),
            req.producer_id.0,
            req.producer_epoch,
            group,
            offsets,
        )
    });
    txn_offset_commit_response(&req, code(result))
}

/// A TxnOffsetCommit answer with `error` for every partition (every partition shares
/// the outcome of the one transactional update).
pub(crate) fn txn_offset_commit_response(
    req: &TxnOffsetCommitRequest,
    error: i16,
) -> TxnOffsetCommitResponse {
    let mut resp = TxnOffsetCommitResponse::default();
    resp.topics = req
        .topics
        .iter()
        .map(|t| {
            let mut out = txn_offset_commit_response::TxnOffsetCommitResponseTopic::default();
            out.name = t.name.clone();
            out.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r =
                        txn_offset_commit_response::TxnOffsetCommitResponsePartition::default();
                    r.partition_index = p.partition_index;
                    r.error_code = error;
                    r
                })
                .collect();
            out
        })
        .collect();
    resp
}

pub(crate) fn describe_producers(
    state: &Arc<State>,
    req: DescribeProducersRequest,
) -> DescribeProducersResponse {
    use kafka_protocol::messages::describe_producers_response::{
        PartitionResponse, ProducerState, TopicResponse,
    };
    let mut resp = DescribeProducersResponse::default();
    for t in req.topics {
        let topic = state.topic(t.name.0.as_str());
        let mut out = TopicResponse::default();
        out.name = t.name.clone();
        for p in t.partition_indexes {
            let mut pr = PartitionResponse::default();
            pr.partition_index = p;
            match topic.as_ref().and_then(|t| t.partition(p)) {
                None => pr.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(partition) => {
                    pr.active_producers = partition
                        .producers()
                        .into_iter()
                        .map(|s| {
                            let mut ps = ProducerState::default();
                            ps.producer_id = ProducerId(s.producer_id);
                            ps.producer_epoch = i32::from(s.epoch);
                            ps.last_sequence = s.last_sequence;
                            ps.last_timestamp = s.last_timestamp;
                            ps.coordinator_epoch = -1;
                            ps.current_txn_start_offset = s.txn_start_offset;
                            ps
                        })
                        .collect();
                }
            }
            out.partitions.push(pr);
        }
        resp.topics.push(out);
    }
    resp
}

pub(crate) fn describe_transactions(
    state: &Arc<State>,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
    let mut resp = DescribeTransactionsResponse::default();
    for id in req.transactional_ids {
        let mut ts = TransactionState::default();
        match state.txns.describe(id.0.as_str()) {
            None => ts.error_code = ResponseError::TransactionalIdNotFound.code(),
            Some(m) => {
                ts.transaction_state = str_bytes(m.state.as_str());
                ts.transaction_timeout_ms = m.timeout_ms;
                ts.transaction_start_time_ms = m.start_ms;
                ts.producer_id = ProducerId(m.producer_id);
                ts.producer_epoch = m.epoch;
                let mut by_topic: std::collections::BTreeMap<String, Vec<i32>> = Default::default();
                for (t, p) in m.partitions {
                    by_topic.entry(t).or_default().push(p);
                }
                ts.topics = by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        let mut d = TopicData::default();
                        d.topic = topic_name(&t);
                        d.partitions = ps;
                        d
                    })
                    .collect();
            }
        }
        ts.transactional_id = id;
        resp.transaction_states.push(ts);
    }
    resp
}

pub(crate) fn list_transactions(
    state: &Arc<State>,
    req: ListTransactionsRequest,
) -> ListTransactionsResponse {
    use kafka_protocol::messages::list_transactions_response::TransactionState;
    const STATES: &[&str] = &[
        "Empty",
        "Ongoing",
        "PrepareCommit",
        "PrepareAbort",
        "CompleteCommit",
        "CompleteAbort",
    ];
    let mut resp = ListTransactionsResponse::default();
    resp.unknown_state_filters = req
        .state_filters
        .iter()
        .filter(|f| !STATES.contains(&f.as_str()))
        .cloned()
        .collect();
    for m in state.txns.list() {
        let state_ok = req.state_filters.is_empty()
            || req
                .state_filters
                .iter()
                .any(|f| f.as_str() == m.state.as_str());
        let pid_ok = req.producer_id_filters.is_empty()
            || req.producer_id_filters.iter().any(|p| p.0 == m.producer_id);
        if !(state_ok && pid_ok) {
            continue;
        }
        let mut ts = TransactionState::default();
        ts.transactional_id = TransactionalId(str_bytes(m.transactional_id));
        ts.producer_id = ProducerId(m.producer_id);
        ts.transaction_state = str_bytes(m.state.as_str());
        resp.transaction_states.push(ts);
    }
    resp
}

//! Cluster-level admin: DescribeCluster v0–v1, DescribeLogDirs v1–v4, DeleteRecords v0–v2.

use super::str_bytes;
use crate::config::StorageConfig;
use crate::log::LogError;
use crate::state::State;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::*;
use std::sync::Arc;

/// The presented brokers (all of them, as Metadata lists them), the controller, and the
/// cluster's authorized operations when asked.
pub(crate) fn describe_cluster(
    state: &Arc<State>,
    listener: usize,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let mut resp = DescribeClusterResponse::default();
    resp.cluster_id = str_bytes(state.config().cluster_id.clone());
    resp.controller_id = BrokerId(state.cluster.controller());
    resp.brokers = state
        .cluster
        .up_nodes()
        .into_iter()
        .map(|n| {
            let mut b = DescribeClusterBroker::default();
            b.broker_id = BrokerId(n.id);
            let (host, port) = n.endpoint(listener);
            b.host = str_bytes(host.to_string());
            b.port = i32::from(port);
            b.rack = n.rack.map(str_bytes);
            b
        })
        .collect();
    resp.cluster_authorized_operations =
        super::authorized::cluster(req.include_cluster_authorized_operations);
    resp
}

pub(crate) fn describe_log_dirs(
    state: &Arc<State>,
    req: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let mut result = DescribeLogDirsResult::default();
    result.log_dir = str_bytes(match &state.config().storage {
        StorageConfig::Memory => "memory".to_string(),
        StorageConfig::Disk(d) => d.display().to_string(),
    });
    result.total_bytes = -1;
    result.usable_bytes = -1;
    let wanted: Vec<(String, Option<Vec<i32>>)> = match req.topics {
        None => state
            .topics()
            .iter()
            .map(|t| (t.name.clone(), None))
            .collect(),
        Some(ts) => ts
            .into_iter()
            .map(|t| (t.topic.0.to_string(), Some(t.partitions)))
            .collect(),
    };
    for (name, parts) in wanted {
        let Some(topic) = state.topic(&name) else {
            continue;
        };
        let mut t = DescribeLogDirsTopic::default();
        t.name = super::topic_name(&name);
        for p in topic.partitions() {
            if parts.as_ref().is_some_and(|ps| !ps.contains(&p.index)) {
                continue;
            }
            let mut d = DescribeLogDirsPartition::default();
            d.partition_index = p.index;
            d.partition_size = p.with_log(|l| l.size_bytes()) as i64;
            t.partitions.push(d);
        }
        result.topics.push(t);
    }
    let mut resp = DescribeLogDirsResponse::default();
    resp.results = vec![result];
    resp
}

/// DeleteRecords moves the log start offset; offset -1 means the high watermark.
pub(crate) fn delete_records(
    state: &Arc<State>,
    node: i32,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    use kafka_protocol::messages::delete_records_response::{
        DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
    };
    let mut resp = DeleteRecordsResponse::default();
    for t in req.topics {
        let topic = state.topic(t.name.0.as_str());
        let mut out = DeleteRecordsTopicResult::default();
        out.name = t.name.clone();
        for p in t.partitions {
            let mut r = DeleteRecordsPartitionResult::default();
            r.partition_index = p.partition_index;
            r.low_watermark = -1;
            match topic.as_ref().and_then(|t| t.partition(p.partition_index)) {
                None => r.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(_)
                    if super::check_leader(state, node, t.name.0.as_str(), p.partition_index)
                        .is_err() =>
                {
                    r.error_code = ResponseError::NotLeaderOrFollower.code()
                }
                Some(partition) => {
                    let hw = partition.offsets().high_watermark;
                    let target = if p.offset == -1 { hw } else { p.offset };
                    match partition.advance_start_offset(target) {
                        Ok(low) if target >= 0 && target <= hw => r.low_watermark = low,
                        Ok(_) | Err(LogError::OutOfRange { .. }) => {
                            r.error_code = ResponseError::OffsetOutOfRange.code()
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "delete records failed");
                            r.error_code = ResponseError::KafkaStorageError.code();
                        }
                    }
                }
            }
            out.partitions.push(r);
        }
        resp.topics.push(out);
    }
    resp
}

//! KIP-848 consumer groups: ConsumerGroupHeartbeat v0–v1, ConsumerGroupDescribe v0–v1.

use super::{str_bytes, topic_name};
use crate::group::consumer::{Heartbeat, TopicsMetadata};
use crate::protocol::Request;
use crate::state::State;
use kafka_protocol::messages::consumer_group_describe_response as describe;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

fn metadata(state: &State, names: &BTreeSet<String>) -> TopicsMetadata {
    names
        .iter()
        .filter_map(|n| {
            state
                .topic(n)
                .map(|t| (n.clone(), (t.id, t.partition_count())))
        })
        .collect()
}

fn by_topic(parts: &BTreeSet<(uuid::Uuid, i32)>) -> BTreeMap<uuid::Uuid, Vec<i32>> {
    let mut out: BTreeMap<uuid::Uuid, Vec<i32>> = BTreeMap::new();
    for (t, p) in parts {
        out.entry(*t).or_default().push(*p);
    }
    out
}

pub(crate) fn heartbeat(
    state: &Arc<State>,
    request: &Request,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let mut member_id = req.member_id.to_string();
    if member_id.is_empty() && req.member_epoch == 0 {
        // v0: the coordinator names new members (v1 clients bring their own id).
        member_id = uuid::Uuid::new_v4().to_string();
    }
    let hb = Heartbeat {
        member_id,
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.as_ref().map(|s| s.to_string()),
        rack_id: req.rack_id.as_ref().map(|s| s.to_string()),
        client_id: request.client_id(),
        client_host: request.client_host.clone(),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed: req
            .subscribed_topic_names
            .as_ref()
            .map(|v| v.iter().map(|t| t.0.to_string()).collect()),
        // Clients send "" for "no regex" / "default assignor".
        regex: req
            .subscribed_topic_regex
            .as_ref()
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty()),
        assignor: req
            .server_assignor
            .as_ref()
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty()),
        owned: req.topic_partitions.as_ref().map(|tps| {
            tps.iter()
                .flat_map(|tp| tp.partitions.iter().map(move |p| (tp.topic_id, *p)))
                .collect()
        }),
    };
    let mut resp = ConsumerGroupHeartbeatResponse::default();
    resp.heartbeat_interval_ms = state
        .groups
        .config_of(req.group_id.0.as_str())
        .consumer_heartbeat_interval
        .as_millis() as i32;
    match state
        .groups
        .consumer_heartbeat(req.group_id.0.as_str(), hb, |names| metadata(state, names))
    {
        Ok(answer) => {
            resp.member_id = Some(str_bytes(answer.member_id));
            resp.member_epoch = answer.member_epoch;
            resp.assignment = answer.assignment.map(|parts| {
                let mut a = Assignment::default();
                a.topic_partitions = by_topic(&parts)
                    .into_iter()
                    .map(|(topic_id, partitions)| {
                        let mut tp = TopicPartitions::default();
                        tp.topic_id = topic_id;
                        tp.partitions = partitions;
                        tp
                    })
                    .collect();
                a
            });
        }
        Err(e) => {
            resp.error_code = e.code();
            resp.error_message = Some(str_bytes(e.to_string()));
            resp.member_id = Some(req.member_id.clone());
            resp.member_epoch = req.member_epoch;
        }
    }
    resp
}

fn described_assignment(
    state: &State,
    parts: &BTreeSet<(uuid::Uuid, i32)>,
) -> describe::Assignment {
    let mut a = describe::Assignment::default();
    a.topic_partitions = by_topic(parts)
        .into_iter()
        .map(|(topic_id, partitions)| {
            let mut tp = describe::TopicPartitions::default();
            tp.topic_id = topic_id;
            tp.topic_name = topic_name(
                &state
                    .topic_by_id(topic_id)
                    .map(|t| t.name.clone())
                    .unwrap_or_default(),
            );
            tp.partitions = partitions;
            tp
        })
        .collect();
    a
}

pub(crate) fn describe(
    state: &Arc<State>,
    req: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let mut resp = ConsumerGroupDescribeResponse::default();
    for id in req.group_ids.iter().cloned() {
        let mut g = describe::DescribedGroup::default();
        match state.groups.describe_consumer_group(id.0.as_str()) {
            None => {
                g.error_code = kafka_protocol::error::ResponseError::GroupIdNotFound.code();
                g.error_message = Some(str_bytes(format!("Group {} not found.", id.0.as_str())));
                g.group_state = str_bytes("Dead");
            }
            Some((summary, assignment_epoch, members)) => {
                g.authorized_operations =
                    super::authorized::group(req.include_authorized_operations);
                g.group_state = str_bytes(summary.state_name);
                g.group_epoch = summary.generation;
                g.assignment_epoch = assignment_epoch;
                g.assignor_name = str_bytes(summary.protocol);
                g.members = members
                    .into_iter()
                    .map(|m| {
                        let mut d = describe::Member::default();
                        d.member_id = str_bytes(m.member_id);
                        d.instance_id = m.instance_id.map(str_bytes);
                        d.rack_id = m.rack_id.map(str_bytes);
                        d.member_epoch = m.member_epoch;
                        d.client_id = str_bytes(m.client_id);
                        d.client_host = str_bytes(m.client_host);
                        d.subscribed_topic_names =
                            m.subscribed.iter().map(|t| topic_name(t)).collect();
                        d.assignment = described_assignment(state, &m.assignment);
                        d.target_assignment = described_assignment(state, &m.target);
                        d
                    })
                    .collect();
            }
        }
        g.group_id = id;
        resp.groups.push(g);
    }
    resp
}

//! Classic consumer-group APIs: FindCoordinator v0–v6, JoinGroup v0–v9, SyncGroup v0–v5,
//! Heartbeat v0–v4, LeaveGroup v0–v5, DescribeGroups v0–v5, ListGroups v0–v5,
//! DeleteGroups v0–v2. The state machine lives in `crate::group`.

use super::str_bytes;
use crate::group::{GroupState, JoinRequest};
use crate::protocol::Request;
use crate::state::State;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::sync::Arc;

const KEY_TYPE_TRANSACTION: i8 = 1;

fn code(e: Option<ResponseError>) -> i16 {
    e.map_or(0, |e| e.code())
}

pub(crate) fn find_coordinator(
    state: &Arc<State>,
    version: i16,
    listener: usize,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    // Groups (0) and transactions (1) are coordinated by the node their key hashes to.
    let locate = |key: &str| -> Result<(BrokerId, StrBytes, i32), ResponseError> {
        if req.key_type > KEY_TYPE_TRANSACTION {
            return Err(ResponseError::InvalidRequest);
        }
        let node = state
            .cluster
            .node(state.cluster.coordinator(key))
            .filter(|n| n.up)
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        let (host, port) = node.endpoint(listener);
        Ok((
            BrokerId(node.id),
            str_bytes(host.to_string()),
            i32::from(port),
        ))
    };
    let mut resp = FindCoordinatorResponse::default();
    if version >= 4 {
        resp.coordinators = req
            .coordinator_keys
            .iter()
            .map(|k| {
                let mut c = Coordinator::default();
                c.key = k.clone();
                match locate(k.as_str()) {
                    Ok((id, host, port)) => {
                        c.node_id = id;
                        c.host = host;
                        c.port = port;
                    }
                    Err(e) => {
                        c.node_id = BrokerId(-1);
                        c.port = -1;
                        c.error_code = e.code();
                        c.error_message = Some(str_bytes(e.to_string()));
                    }
                }
                c
            })
            .collect();
        return resp;
    }
    match locate(req.key.as_str()) {
        Ok((id, host, port)) => {
            resp.node_id = id;
            resp.host = host;
            resp.port = port;
        }
        Err(e) => {
            resp.error_code = e.code();
            resp.node_id = BrokerId(-1);
            resp.port = -1;
            if version >= 1 {
                resp.error_message = Some(str_bytes(e.to_string()));
            }
        }
    }
    resp
}

pub(crate) async fn join_group(
    state: &Arc<State>,
    request: &Request,
    req: JoinGroupRequest,
) -> JoinGroupResponse {
    let version = request.version;
    let join = JoinRequest {
        group_id: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: request.client_id(),
        client_host: request.client_host.clone(),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: it is the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let out = state.groups.join(join).await;
    let mut resp = JoinGroupResponse::default();
    resp.error_code = code(out.error);
    resp.generation_id = out.generation;
    resp.member_id = str_bytes(out.member_id);
    resp.leader = str_bytes(out.leader);
    if version >= 7 {
        resp.protocol_type = out.protocol_type.map(str_bytes);
        resp.protocol_name = out.protocol.map(str_bytes);
    } else {
        resp.protocol_name = Some(str_bytes(out.protocol.unwrap_or_default()));
    }
    if version >= 9 {
        resp.skip_assignment = out.skip_assignment;
    }
    resp.members = out
        .members
        .into_iter()
        .map(|m| {
            let mut r = JoinGroupResponseMember::default();
            r.member_id = str_bytes(m.member_id);
            if version >= 5 {
                r.group_instance_id = m.instance_id.map(str_bytes);
            }
            r.metadata = m.metadata;
            r
        })
        .collect();
    resp
}

pub(crate) async fn sync_group(
    state: &Arc<State>,
    version: i16,
    req: SyncGroupRequest,
) -> SyncGroupResponse {
    let summary = state.groups.describe(req.group_id.0.as_str());
    let mut resp = SyncGroupResponse::default();
    let inconsistent = version >= 5
        && ((req.protocol_type.as_ref().is_some_and(|t| {
            !summary.protocol_type.is_empty() && t.as_str() != summary.protocol_type
        })) || req
            .protocol_name
            .as_ref()
            .is_some_and(|n| !summary.protocol.is_empty() && n.as_str() != summary.protocol));
    if inconsistent {
        resp.error_code = ResponseError::InconsistentGroupProtocol.code();
        return resp;
    }
    let assignments = req
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let out = state
        .groups
        .sync(
            req.group_id.0.as_str(),
            req.generation_id,
            req.member_id.as_str(),
            req.group_instance_id.as_ref().map(StrBytes::as_str),
            assignments,
        )
        .await;
    resp.error_code = code(out.error);
    resp.assignment = out.assignment;
    if version >= 5 {
        resp.protocol_type = out.protocol_type.map(str_bytes);
        resp.protocol_name = out.protocol.map(str_bytes);
    }
    resp
}

pub(crate) fn heartbeat(state: &Arc<State>, req: HeartbeatRequest) -> HeartbeatResponse {
    let mut resp = HeartbeatResponse::default();
    if let Err(e) = state.groups.heartbeat(
        req.group_id.0.as_str(),
        req.generation_id,
        req.member_id.as_str(),
        req.group_instance_id.as_ref().map(StrBytes::as_str),
    ) {
        resp.error_code = e.code();
    }
    resp
}

pub(crate) fn leave_group(
    state: &Arc<State>,
    version: i16,
    req: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let mut resp = LeaveGroupResponse::default();
    match state.groups.leave(req.group_id.0.as_str(), &members) {
        Err(e) => resp.error_code = e.code(),
        Ok(results) if version >= 3 => {
            resp.members = members
                .into_iter()
                .zip(results)
                .map(|((id, instance), r)| {
                    let mut m = MemberResponse::default();
                    m.member_id = str_bytes(id);
                    m.group_instance_id = instance.map(str_bytes);
                    m.error_code = r.err().map_or(0, |e| e.code());
                    m
                })
                .collect();
        }
        Ok(results) => {
            if let Some(Err(e)) = results.into_iter().next() {
                resp.error_code = e.code();
            }
        }
    }
    resp
}

pub(crate) fn describe_groups(
    state: &Arc<State>,
    version: i16,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let mut resp = DescribeGroupsResponse::default();
    for id in req.groups.iter().cloned() {
        let s = state.groups.describe(id.0.as_str());
        let mut g = DescribedGroup::default();
        g.group_id = id;
        g.group_state = str_bytes(s.state_name);
        g.protocol_type = str_bytes(s.protocol_type);
        g.protocol_data = str_bytes(s.protocol);
        g.authorized_operations = super::authorized::group(req.include_authorized_operations);
        g.members = s
            .members
            .into_iter()
            .map(|m| {
                let mut d = DescribedGroupMember::default();
                d.member_id = str_bytes(m.member_id);
                if version >= 4 {
                    d.group_instance_id = m.instance_id.map(str_bytes);
                }
                d.client_id = str_bytes(m.client_id);
                d.client_host = str_bytes(m.client_host);
                d.member_metadata = m.metadata;
                d.member_assignment = m.assignment;
                d
            })
            .collect();
        resp.groups.push(g);
    }
    resp
}

pub(crate) fn list_groups(
    state: &Arc<State>,
    version: i16,
    req: ListGroupsRequest,
) -> ListGroupsResponse {
    let mut resp = ListGroupsResponse::default();
    let matches = |filter: &[StrBytes], value: &str| {
        filter.is_empty()
            || filter
                .iter()
                .any(|f| f.as_str().eq_ignore_ascii_case(value))
    };
    for s in state.groups.list() {
        if s.state == GroupState::Dead
            || !matches(&req.states_filter, &s.state_name)
            || !matches(&req.types_filter, s.group_type)
        {
            continue;
        }
        let mut g = ListedGroup::default();
        g.group_id = GroupId(str_bytes(s.group_id));
        g.protocol_type = str_bytes(s.protocol_type);
        if version >= 4 {
            g.group_state = str_bytes(s.state_name);
        }
        if version >= 5 {
            g.group_type = str_bytes(s.group_type);
        }
        resp.groups.push(g);
    }
    resp
}

pub(crate) fn delete_groups(state: &Arc<State>, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut resp = DeleteGroupsResponse::default();
    for id in req.groups_names {
        let mut r =
            kafka_protocol::messages::delete_groups_response::DeletableGroupResult::default();
        if let Err(e) = state.groups.delete(id.0.as_str()) {
            r.error_code = e.code();
        }
        r.group_id = id;
        resp.results.push(r);
    }
    resp
}

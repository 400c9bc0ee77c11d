//! ACLs on every request, as Kafka's request handlers check them: a request about one
//! group or transactional id is refused whole with GROUP_/TRANSACTIONAL_ID_AUTHORIZATION_
//! FAILED; topics (groups, transactional ids, config resources) a principal may not touch
//! are taken out of the request and answered as TOPIC_ (GROUP_, TRANSACTIONAL_ID_,
//! CLUSTER_) AUTHORIZATION_FAILED next to the others, wherever Kafka answers item by item;
//! AddPartitionsToTxn with a refused topic adds nothing, as Kafka's;
//! Metadata leaves out what may not be described; cluster-wide APIs need their CLUSTER
//! operation (CLUSTER_AUTHORIZATION_FAILED). Only runs with an authorizer configured.

use super::authz_refusals::{add_partitions_refused, refuse, refused_topics};
use super::routing::error_response;
use crate::config::acl_rules::code::*;
use crate::protocol::Request;
use crate::security::acl::CLUSTER_NAME;
use crate::security::Subject;
use crate::state::State;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{RequestKind, ResponseKind};
use std::collections::BTreeSet;
use std::sync::Arc;

/// What the check decided.
pub(crate) enum Verdict {
    /// Serve it; what was taken out is answered by [`complete`].
    Serve(Option<Denied>),
    /// Answer this instead.
    Refuse(Box<ResponseKind>),
    /// Give no answer (a refused request with no error form; never expected).
    Close,
}

/// The part of a request refused topic by topic.
pub(crate) enum Denied {
    /// A request of the same API holding only the refused topics; its error response is
    /// merged into the real one.
    Topics(Box<RequestKind>, i16),
    /// Metadata: topics to leave out of the answer (asked for by name: answered as
    /// TOPIC_AUTHORIZATION_FAILED instead).
    Hidden { asked: BTreeSet<String> },
    /// ListGroups, ListTransactions: keep only what the principal may describe.
    Filter,
}

/// Splits `items` into the allowed and the refused by `allowed`.
fn split<T>(items: &mut Vec<T>, allowed: impl Fn(&T) -> bool) -> Vec<T> {
    let (keep, refused): (Vec<T>, Vec<T>) =
        std::mem::take(items).into_iter().partition(|t| allowed(t));
    *items = keep;
    refused
}

/// Takes the items of `$r.$field` that `$allowed` refuses out of the request, to be
/// answered beside the served ones.
macro_rules! take_out {
    ($kind:ident, $r:ident . $field:ident, $version:ident, $allowed:expr) => {{
        let refused = split(&mut $r.$field, $allowed);
        topics_refused(
            refused.is_empty(),
            || {
                let mut d = $r.clone();
                d.$field = refused;
                RequestKind::$kind(d)
            },
            $version,
        )
    }};
}

pub(crate) fn check(state: &Arc<State>, request: &mut Request) -> Verdict {
    let version = request.version;
    let a = &state.authorizer;
    // Owned, as the body is changed below.
    let principal = request.principal.clone();
    let host = request.client_host.trim_start_matches('/').to_string();
    let w = Subject {
        principal: &principal,
        host: &host,
    };
    let allow = |op: i8, rt: i8, name: &str| a.allowed(w, op, rt, name);
    let cluster = |op: i8| allow(op, CLUSTER, CLUSTER_NAME);
    let whole = |body: &RequestKind, e: ResponseError| match error_response(body, version, e.code())
    {
        Some(r) => Verdict::Refuse(Box::new(r)),
        None => refuse(body, version, e),
    };
    let topic_name = |name: &str, id: uuid::Uuid| -> String {
        if name.is_empty() {
            state
                .topic_by_id(id)
                .map(|t| t.name.clone())
                .unwrap_or_default()
        } else {
            name.to_string()
        }
    };
    let body = &mut request.body;
    match body {
        RequestKind::Produce(r) => {
            if let Some(id) = &r.transactional_id {
                if !allow(WRITE, TRANSACTIONAL_ID, id) {
                    return whole(body, ResponseError::TransactionalIdAuthorizationFailed);
                }
            }
            take_out!(Produce, r.topic_data, version, |t| allow(
                WRITE, TOPIC, &t.name
            ))
        }
        RequestKind::Fetch(r) => {
            // A follower's fetch would need CLUSTER_ACTION; agentbus has no followers.
            take_out!(Fetch, r.topics, version, |t| {
                allow(READ, TOPIC, &topic_name(&t.topic, t.topic_id))
            })
        }
        RequestKind::ListOffsets(r) => {
            take_out!(ListOffsets, r.topics, version, |t| allow(
                DESCRIBE, TOPIC, &t.name
            ))
        }
        RequestKind::OffsetCommit(r) => {
            if !allow(READ, GROUP, &r.group_id) {
                return whole(body, ResponseError::GroupAuthorizationFailed);
            }
            take_out!(OffsetCommit, r.topics, version, |t| allow(
                READ, TOPIC, &t.name
            ))
        }
        RequestKind::Metadata(r) => {
            let mut asked = BTreeSet::new();
            if let Some(topics) = &mut r.topics {
                // Asked for by name: no DESCRIBE, or no CREATE for one that would be
                // created, is TOPIC_AUTHORIZATION_FAILED (and nothing is created).
                let may_create = cluster(CREATE);
                let refused = split(topics, |t| {
                    let name = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
                    allow(DESCRIBE, TOPIC, &name)
                        && (state.topic(&name).is_some()
                            || may_create
                            || allow(CREATE, TOPIC, &name))
                });
                asked = refused
                    .into_iter()
                    .filter_map(|t| t.name.map(|n| n.to_string()))
                    .collect();
            }
            Verdict::Serve(Some(Denied::Hidden { asked }))
        }
        RequestKind::FindCoordinator(r) => {
            let (op_type, failure) = if r.key_type == 1 {
                (
                    TRANSACTIONAL_ID,
                    ResponseError::TransactionalIdAuthorizationFailed,
                )
            } else {
                (GROUP, ResponseError::GroupAuthorizationFailed)
            };
            let mut keys: Vec<String> = r.coordinator_keys.iter().map(|k| k.to_string()).collect();
            keys.push(r.key.to_string());
            if keys
                .iter()
                .filter(|k| !k.is_empty())
                .all(|k| allow(DESCRIBE, op_type, k))
            {
                Verdict::Serve(None)
            } else {
                whole(body, failure)
            }
        }
        RequestKind::JoinGroup(_)
        | RequestKind::SyncGroup(_)
        | RequestKind::Heartbeat(_)
        | RequestKind::LeaveGroup(_)
        | RequestKind::ConsumerGroupHeartbeat(_) => {
            let group = super::routing::coordinator_key(body, version).unwrap_or_default();
            group_op(allow(READ, GROUP, &group), body, version, whole)
        }
        RequestKind::OffsetFetch(r) => {
            let groups: Vec<String> = if version >= 8 {
                r.groups.iter().map(|g| g.group_id.to_string()).collect()
            } else {
                vec![r.group_id.to_string()]
            };
            if groups.iter().all(|g| allow(DESCRIBE, GROUP, g)) {
                // Topics it may not describe are answered or left out in `complete`.
                Verdict::Serve(Some(Denied::Filter))
            } else {
                whole(body, ResponseError::GroupAuthorizationFailed)
            }
        }
        RequestKind::OffsetDelete(r) => {
            let ok = allow(DELETE, GROUP, &r.group_id);
            group_op(ok, body, version, whole)
        }
        RequestKind::DescribeGroups(r) => {
            take_out!(DescribeGroups, r.groups, version, |g| allow(
                DESCRIBE, GROUP, g
            ))
        }
        RequestKind::ConsumerGroupDescribe(r) => {
            take_out!(ConsumerGroupDescribe, r.group_ids, version, |g| allow(
                DESCRIBE, GROUP, g
            ))
        }
        RequestKind::DeleteGroups(r) => {
            take_out!(DeleteGroups, r.groups_names, version, |g| allow(
                DELETE, GROUP, g
            ))
        }
        RequestKind::ListGroups(_) => {
            if cluster(DESCRIBE) {
                Verdict::Serve(None)
            } else {
                Verdict::Serve(Some(Denied::Filter))
            }
        }
        RequestKind::InitProducerId(r) => match &r.transactional_id {
            Some(id) if !allow(WRITE, TRANSACTIONAL_ID, id) => {
                whole(body, ResponseError::TransactionalIdAuthorizationFailed)
            }
            Some(_) => Verdict::Serve(None),
            None if cluster(IDEMPOTENT_WRITE) || a.allowed_on_any(w, WRITE, TOPIC) => {
                Verdict::Serve(None)
            }
            None => whole(body, ResponseError::ClusterAuthorizationFailed),
        },
        RequestKind::AddPartitionsToTxn(r) => {
            if version >= 4 {
                // The batched form is sent by brokers (KIP-890), which need CLUSTER_ACTION.
                return cluster_op(cluster(CLUSTER_ACTION), body, version);
            }
            if !allow(WRITE, TRANSACTIONAL_ID, &r.v3_and_below_transactional_id) {
                return whole(body, ResponseError::TransactionalIdAuthorizationFailed);
            }
            let writable = |t: &str| allow(WRITE, TOPIC, t);
            if r.v3_and_below_topics.iter().all(|t| writable(&t.name)) {
                Verdict::Serve(None)
            } else {
                let exists = |t: &str, p: i32| {
                    state
                        .topic(t)
                        .and_then(|t| t.partition(p).map(|_| ()))
                        .is_some()
                };
                let resp = add_partitions_refused(r, writable, exists);
                Verdict::Refuse(Box::new(resp.into()))
            }
        }
        RequestKind::AddOffsetsToTxn(r) => {
            if !allow(WRITE, TRANSACTIONAL_ID, &r.transactional_id) {
                whole(body, ResponseError::TransactionalIdAuthorizationFailed)
            } else if !allow(READ, GROUP, &r.group_id) {
                whole(body, ResponseError::GroupAuthorizationFailed)
            } else {
                Verdict::Serve(None)
            }
        }
        RequestKind::EndTxn(r) => {
            let ok = allow(WRITE, TRANSACTIONAL_ID, &r.transactional_id);
            txn_op(ok, body, version, whole)
        }
        RequestKind::TxnOffsetCommit(r) => {
            if !allow(WRITE, TRANSACTIONAL_ID, &r.transactional_id) {
                whole(body, ResponseError::TransactionalIdAuthorizationFailed)
            } else if !allow(READ, GROUP, &r.group_id) {
                whole(body, ResponseError::GroupAuthorizationFailed)
            } else {
                take_out!(TxnOffsetCommit, r.topics, version, |t| allow(
                    READ, TOPIC, &t.name
                ))
            }
        }
        RequestKind::DescribeTransactions(r) => {
            take_out!(DescribeTransactions, r.transactional_ids, version, |id| {
                allow(DESCRIBE, TRANSACTIONAL_ID, id)
            })
        }
        RequestKind::ListTransactions(_) => Verdict::Serve(Some(Denied::Filter)),
        RequestKind::DescribeProducers(r) => {
            take_out!(DescribeProducers, r.topics, version, |t| allow(
                READ, TOPIC, &t.name
            ))
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            take_out!(OffsetForLeaderEpoch, r.topics, version, |t| allow(
                DESCRIBE, TOPIC, &t.topic
            ))
        }
        RequestKind::CreateTopics(r) => {
            let may_create = cluster(CREATE);
            take_out!(CreateTopics, r.topics, version, |t| {
                may_create || allow(CREATE, TOPIC, &t.name)
            })
        }
        RequestKind::DeleteTopics(r) => {
            let names = split(&mut r.topic_names, |t| allow(DELETE, TOPIC, t));
            let states = split(&mut r.topics, |t| {
                let name = t.name.as_deref().map(|n| n.as_str()).unwrap_or("");
                allow(DELETE, TOPIC, &topic_name(name, t.topic_id))
            });
            topics_refused(
                names.is_empty() && states.is_empty(),
                || {
                    let mut d = r.clone();
                    d.topic_names = names;
                    d.topics = states;
                    RequestKind::DeleteTopics(d)
                },
                version,
            )
        }
        RequestKind::CreatePartitions(r) => {
            take_out!(CreatePartitions, r.topics, version, |t| allow(
                ALTER, TOPIC, &t.name
            ))
        }
        RequestKind::DeleteRecords(r) => {
            take_out!(DeleteRecords, r.topics, version, |t| allow(
                DELETE, TOPIC, &t.name
            ))
        }
        RequestKind::DescribeConfigs(r) => {
            take_out!(DescribeConfigs, r.resources, version, |c| {
                config_allowed(&allow, DESCRIBE_CONFIGS, c.resource_type, &c.resource_name)
            })
        }
        RequestKind::AlterConfigs(r) => take_out!(AlterConfigs, r.resources, version, |c| {
            config_allowed(&allow, ALTER_CONFIGS, c.resource_type, &c.resource_name)
        }),
        RequestKind::IncrementalAlterConfigs(r) => {
            take_out!(IncrementalAlterConfigs, r.resources, version, |c| {
                config_allowed(&allow, ALTER_CONFIGS, c.resource_type, &c.resource_name)
            })
        }
        RequestKind::DescribeCluster(_)
        | RequestKind::DescribeLogDirs(_)
        | RequestKind::DescribeAcls(_)
        | RequestKind::DescribeUserScramCredentials(_) => {
            cluster_op(cluster(DESCRIBE), body, version)
        }
        RequestKind::CreateAcls(_)
        | RequestKind::DeleteAcls(_)
        | RequestKind::AlterUserScramCredentials(_) => cluster_op(cluster(ALTER), body, version),
        _ => Verdict::Serve(None),
    }
}

/// DescribeConfigs/AlterConfigs resource types: 2 topic, 4 broker, 8 broker logger, 32 group.
fn config_allowed(
    allow: &impl Fn(i8, i8, &str) -> bool,
    op: i8,
    resource_type: i8,
    name: &str,
) -> bool {
    match resource_type {
        2 => allow(op, TOPIC, name),
        32 => allow(op, GROUP, name),
        _ => allow(op, CLUSTER, CLUSTER_NAME),
    }
}

fn topics_refused(none: bool, denied: impl FnOnce() -> RequestKind, version: i16) -> Verdict {
    if none {
        Verdict::Serve(None)
    } else {
        Verdict::Serve(Some(Denied::Topics(Box::new(denied()), version)))
    }
}

fn group_op(
    ok: bool,
    body: &RequestKind,
    _version: i16,
    whole: impl Fn(&RequestKind, ResponseError) -> Verdict,
) -> Verdict {
    if ok {
        Verdict::Serve(None)
    } else {
        whole(body, ResponseError::GroupAuthorizationFailed)
    }
}

fn txn_op(
    ok: bool,
    body: &RequestKind,
    _version: i16,
    whole: impl Fn(&RequestKind, ResponseError) -> Verdict,
) -> Verdict {
    if ok {
        Verdict::Serve(None)
    } else {
        whole(body, ResponseError::TransactionalIdAuthorizationFailed)
    }
}

fn cluster_op(ok: bool, body: &RequestKind, version: i16) -> Verdict {
    if ok {
        Verdict::Serve(None)
    } else {
        refuse(body, version, ResponseError::ClusterAuthorizationFailed)
    }
}

/// Adds the refused part to the response, or takes out what may not be seen.
pub(crate) fn complete(
    state: &Arc<State>,
    w: Subject<'_>,
    response: &mut ResponseKind,
    denied: Denied,
) {
    let a = &state.authorizer;
    match (denied, response) {
        (Denied::Topics(body, version), response) => {
            if let Some(refused) = refused_topics(&body, version) {
                merge(response, refused);
            }
        }
        (Denied::Hidden { asked }, ResponseKind::Metadata(resp)) => {
            resp.topics.retain(|t| {
                let name = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
                a.allowed(w, DESCRIBE, TOPIC, &name)
            });
            for name in asked {
                let mut t =
                    kafka_protocol::messages::metadata_response::MetadataResponseTopic::default();
                t.name = Some(super::topic_name(&name));
                t.error_code = ResponseError::TopicAuthorizationFailed.code();
                resp.topics.push(t);
            }
        }
        (Denied::Filter, ResponseKind::ListGroups(resp)) => {
            resp.groups
                .retain(|g| a.allowed(w, DESCRIBE, GROUP, &g.group_id));
        }
        (Denied::Filter, ResponseKind::OffsetFetch(resp)) => {
            // As Kafka: a committed offset of a topic the principal may not describe is
            // TOPIC_AUTHORIZATION_FAILED, with offset -1 and no metadata.
            let refused = ResponseError::TopicAuthorizationFailed.code();
            let visible = |name: &str| a.allowed(w, DESCRIBE, TOPIC, name);
            for t in &mut resp.topics {
                if !visible(&t.name) {
                    for p in &mut t.partitions {
                        p.committed_offset = -1;
                        p.metadata = None;
                        p.error_code = refused;
                    }
                }
            }
            for g in &mut resp.groups {
                for t in &mut g.topics {
                    if !visible(&t.name) {
                        for p in &mut t.partitions {
                            p.committed_offset = -1;
                            p.metadata = None;
                            p.error_code = refused;
                        }
                    }
                }
            }
        }
        (Denied::Filter, ResponseKind::ListTransactions(resp)) => {
            resp.transaction_states
                .retain(|t| a.allowed(w, DESCRIBE, TRANSACTIONAL_ID, &t.transactional_id));
        }
        _ => {}
    }
}

/// KIP-430: the authorized-operation sets the handlers filled (every operation the
/// resource type has) narrowed to what the ACLs allow the principal.
pub(crate) fn narrow_operations(state: &Arc<State>, w: Subject<'_>, response: &mut ResponseKind) {
    let a = &state.authorizer;
    let narrow = |bits: &mut i32, resource_type: i8, name: &str| {
        if *bits == super::authorized::OMITTED {
            return;
        }
        *bits = (0..31)
            .filter(|op| *bits & (1 << op) != 0 && a.allowed(w, *op as i8, resource_type, name))
            .fold(0, |acc, op| acc | 1 << op);
    };
    match response {
        ResponseKind::Metadata(r) => {
            for t in &mut r.topics {
                let name = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
                narrow(&mut t.topic_authorized_operations, TOPIC, &name);
            }
            narrow(&mut r.cluster_authorized_operations, CLUSTER, CLUSTER_NAME);
        }
        ResponseKind::DescribeCluster(r) => {
            narrow(&mut r.cluster_authorized_operations, CLUSTER, CLUSTER_NAME)
        }
        ResponseKind::DescribeGroups(r) => {
            for g in &mut r.groups {
                narrow(&mut g.authorized_operations, GROUP, &g.group_id);
            }
        }
        ResponseKind::ConsumerGroupDescribe(r) => {
            for g in &mut r.groups {
                narrow(&mut g.authorized_operations, GROUP, &g.group_id);
            }
        }
        _ => {}
    }
}

/// Appends the refused items' entries to the response.
fn merge(response: &mut ResponseKind, refused: ResponseKind) {
    match (response, refused) {
        (ResponseKind::CreateTopics(r), ResponseKind::CreateTopics(x)) => r.topics.extend(x.topics),
        (ResponseKind::DeleteTopics(r), ResponseKind::DeleteTopics(x)) => {
            r.responses.extend(x.responses)
        }
        (ResponseKind::DescribeGroups(r), ResponseKind::DescribeGroups(x)) => {
            r.groups.extend(x.groups)
        }
        (ResponseKind::DeleteGroups(r), ResponseKind::DeleteGroups(x)) => {
            r.results.extend(x.results)
        }
        (ResponseKind::CreatePartitions(r), ResponseKind::CreatePartitions(x)) => {
            r.results.extend(x.results)
        }
        (ResponseKind::DeleteRecords(r), ResponseKind::DeleteRecords(x)) => {
            r.topics.extend(x.topics)
        }
        (ResponseKind::DescribeConfigs(r), ResponseKind::DescribeConfigs(x)) => {
            r.results.extend(x.results)
        }
        (ResponseKind::AlterConfigs(r), ResponseKind::AlterConfigs(x)) => {
            r.responses.extend(x.responses)
        }
        (ResponseKind::IncrementalAlterConfigs(r), ResponseKind::IncrementalAlterConfigs(x)) => {
            r.responses.extend(x.responses)
        }
        (ResponseKind::Produce(r), ResponseKind::Produce(x)) => r.responses.extend(x.responses),
        (ResponseKind::Fetch(r), ResponseKind::Fetch(x)) => r.responses.extend(x.responses),
        (ResponseKind::ListOffsets(r), ResponseKind::ListOffsets(x)) => r.topics.extend(x.topics),
        (ResponseKind::OffsetCommit(r), ResponseKind::OffsetCommit(x)) => r.topics.extend(x.topics),
        (ResponseKind::TxnOffsetCommit(r), ResponseKind::TxnOffsetCommit(x)) => {
            r.topics.extend(x.topics)
        }
        (ResponseKind::ConsumerGroupDescribe(r), ResponseKind::ConsumerGroupDescribe(x)) => {
            r.groups.extend(x.groups)
        }
        (ResponseKind::DescribeTransactions(r), ResponseKind::DescribeTransactions(x)) => {
            r.transaction_states.extend(x.transaction_states)
        }
        (ResponseKind::DescribeProducers(r), ResponseKind::DescribeProducers(x)) => {
            r.topics.extend(x.topics)
        }
        (ResponseKind::OffsetForLeaderEpoch(r), ResponseKind::OffsetForLeaderEpoch(x)) => {
            r.topics.extend(x.topics)
        }
        _ => {}
    }
}

//! The answers to requests an ACL refuses whole, for the APIs whose error form the
//! coordinator routing does not already give: every item of the request gets the error.

use super::authz::Verdict;
use super::routing::error_response;
use super::str_bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;

/// The response to `body` with the error on every item; a request with no such form
/// is not answered (the client times out) rather than served.
pub(super) fn refuse(body: &RequestKind, version: i16, e: ResponseError) -> Verdict {
    let code = e.code();
    let message = || Some(str_bytes(kafka_message(e)));
    let resp: ResponseKind = match body {
        RequestKind::CreateTopics(r) => {
            let mut resp = CreateTopicsResponse::default();
            resp.topics = r
                .topics
                .iter()
                .map(|t| {
                    let mut out = create_topics_response::CreatableTopicResult::default();
                    out.name = t.name.clone();
                    out.error_code = code;
                    out.error_message = message();
                    out.num_partitions = -1;
                    out.replication_factor = -1;
                    out
                })
                .collect();
            resp.into()
        }
        RequestKind::DeleteTopics(r) => {
            let mut resp = DeleteTopicsResponse::default();
            let named = r
                .topic_names
                .iter()
                .map(|n| (Some(n.clone()), uuid::Uuid::nil()));
            let states = r.topics.iter().map(|t| (t.name.clone(), t.topic_id));
            resp.responses = named
                .chain(states)
                .map(|(name, id)| {
                    let mut out = delete_topics_response::DeletableTopicResult::default();
                    out.name = name;
                    out.topic_id = id;
                    out.error_code = code;
                    out
                })
                .collect();
            resp.into()
        }
        RequestKind::CreatePartitions(r) => {
            let mut resp = CreatePartitionsResponse::default();
            resp.results = r
                .topics
                .iter()
                .map(|t| {
                    let mut out =
                        create_partitions_response::CreatePartitionsTopicResult::default();
                    out.name = t.name.clone();
                    out.error_code = code;
                    out
                })
                .collect();
            resp.into()
        }
        RequestKind::DeleteRecords(r) => {
            let mut resp = DeleteRecordsResponse::default();
            resp.topics = r
                .topics
                .iter()
                .map(|t| {
                    let mut out = delete_records_response::DeleteRecordsTopicResult::default();
                    out.name = t.name.clone();
                    out.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut pr =
                                delete_records_response::DeleteRecordsPartitionResult::default();
                            pr.partition_index = p.partition_index;
                            pr.low_watermark = -1;
                            pr.error_code = code;
                            pr
                        })
                        .collect();
                    out
                })
                .collect();
            resp.into()
        }
        RequestKind::OffsetForLeaderEpoch(r) => {
            let mut resp = OffsetForLeaderEpochResponse::default();
            resp.topics = r
                .topics
                .iter()
                .map(|t| {
                    let mut out =
                        offset_for_leader_epoch_response::OffsetForLeaderTopicResult::default();
                    out.topic = t.topic.clone();
                    out.partitions = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut pr =
                                offset_for_leader_epoch_response::EpochEndOffset::default();
                            pr.partition = p.partition;
                            pr.error_code = code;
                            pr.leader_epoch = -1;
                            pr.end_offset = -1;
                            pr
                        })
                        .collect();
                    out
                })
                .collect();
            resp.into()
        }
        RequestKind::DescribeProducers(r) => {
            let mut resp = DescribeProducersResponse::default();
            resp.topics = r
                .topics
                .iter()
                .map(|t| {
                    let mut out = describe_producers_response::TopicResponse::default();
                    out.name = t.name.clone();
                    out.partitions = t
                        .partition_indexes
                        .iter()
                        .map(|p| {
                            let mut pr = describe_producers_response::PartitionResponse::default();
                            pr.partition_index = *p;
                            pr.error_code = code;
                            pr.error_message = message();
                            pr
                        })
                        .collect();
                    out
                })
                .collect();
            resp.into()
        }
        RequestKind::DescribeConfigs(r) => {
            let mut resp = DescribeConfigsResponse::default();
            resp.results = r
                .resources
                .iter()
                .map(|c| {
                    let mut out = describe_configs_response::DescribeConfigsResult::default();
                    out.resource_type = c.resource_type;
                    out.resource_name = c.resource_name.clone();
                    let e = config_error(c.resource_type, e);
                    out.error_code = e.code();
                    out.error_message = Some(str_bytes(kafka_message(e)));
                    out
                })
                .collect();
            resp.into()
        }
        RequestKind::AlterConfigs(r) => {
            let mut resp = AlterConfigsResponse::default();
            resp.responses = r
                .resources
                .iter()
                .map(|c| {
                    let mut out = alter_configs_response::AlterConfigsResourceResponse::default();
                    out.resource_type = c.resource_type;
                    out.resource_name = c.resource_name.clone();
                    let e = config_error(c.resource_type, e);
                    out.error_code = e.code();
                    out.error_message = Some(str_bytes(kafka_message(e)));
                    out
                })
                .collect();
            resp.into()
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            let mut resp = IncrementalAlterConfigsResponse::default();
            resp.responses = r
                .resources
                .iter()
                .map(|c| {
                    let mut out =
                        incremental_alter_configs_response::AlterConfigsResourceResponse::default();
                    out.resource_type = c.resource_type;
                    out.resource_name = c.resource_name.clone();
                    let e = config_error(c.resource_type, e);
                    out.error_code = e.code();
                    out.error_message = Some(str_bytes(kafka_message(e)));
                    out
                })
                .collect();
            resp.into()
        }
        RequestKind::DescribeCluster(_) => {
            let mut resp = DescribeClusterResponse::default();
            resp.error_code = code;
            resp.error_message = message();
            resp.into()
        }
        RequestKind::DescribeLogDirs(_) => {
            let mut resp = DescribeLogDirsResponse::default();
            resp.error_code = code;
            resp.into()
        }
        RequestKind::DescribeGroups(r) => {
            let mut resp = DescribeGroupsResponse::default();
            resp.groups = r
                .groups
                .iter()
                .map(|g| {
                    let mut out = describe_groups_response::DescribedGroup::default();
                    out.group_id = g.clone();
                    out.error_code = code;
                    out.authorized_operations = i32::MIN;
                    out
                })
                .collect();
            resp.into()
        }
        RequestKind::ConsumerGroupDescribe(r) => {
            let mut resp = ConsumerGroupDescribeResponse::default();
            resp.groups = r
                .group_ids
                .iter()
                .map(|g| {
                    let mut out = consumer_group_describe_response::DescribedGroup::default();
                    out.group_id = g.clone();
                    out.error_code = code;
                    out.error_message = message();
                    out.authorized_operations = i32::MIN;
                    out
                })
                .collect();
            resp.into()
        }
        RequestKind::DeleteGroups(r) => {
            let mut resp = DeleteGroupsResponse::default();
            resp.results = r
                .groups_names
                .iter()
                .map(|g| {
                    let mut out = delete_groups_response::DeletableGroupResult::default();
                    out.group_id = g.clone();
                    out.error_code = code;
                    out
                })
                .collect();
            resp.into()
        }
        RequestKind::DescribeTransactions(r) => {
            let mut resp = DescribeTransactionsResponse::default();
            resp.transaction_states = r
                .transactional_ids
                .iter()
                .map(|id| {
                    let mut out = describe_transactions_response::TransactionState::default();
                    out.transactional_id = id.clone();
                    out.error_code = code;
                    out
                })
                .collect();
            resp.into()
        }
        RequestKind::CreateAcls(r) => {
            let mut resp = CreateAclsResponse::default();
            resp.results = r
                .creations
                .iter()
                .map(|_| {
                    let mut out = create_acls_response::AclCreationResult::default();
                    out.error_code = code;
                    out.error_message = message();
                    out
                })
                .collect();
            resp.into()
        }
        RequestKind::DeleteAcls(r) => {
            let mut resp = DeleteAclsResponse::default();
            resp.filter_results = r
                .filters
                .iter()
                .map(|_| {
                    let mut out = delete_acls_response::DeleteAclsFilterResult::default();
                    out.error_code = code;
                    out.error_message = message();
                    out
                })
                .collect();
            resp.into()
        }
        RequestKind::DescribeAcls(_) => {
            let mut resp = DescribeAclsResponse::default();
            resp.error_code = code;
            resp.error_message = message();
            resp.into()
        }
        RequestKind::DescribeUserScramCredentials(_) => {
            let mut resp = DescribeUserScramCredentialsResponse::default();
            resp.error_code = code;
            resp.error_message = message();
            resp.into()
        }
        RequestKind::AlterUserScramCredentials(r) => {
            let mut resp = AlterUserScramCredentialsResponse::default();
            let users = r
                .deletions
                .iter()
                .map(|d| d.name.clone())
                .chain(r.upsertions.iter().map(|u| u.name.clone()));
            resp.results = users
                .map(|user| {
                    let mut out = alter_user_scram_credentials_response::AlterUserScramCredentialsResult::default();
                    out.user = user;
                    out.error_code = code;
                    out.error_message = message();
                    out
                })
                .collect();
            resp.into()
        }
        other => match error_response(other, version, code) {
            Some(r) => r,
            None => {
                tracing::error!(?e, "refused request has no error form; not answered");
                return Verdict::Close;
            }
        },
    };
    Verdict::Refuse(Box::new(resp))
}

/// A config resource's authorization error by its type (2 topic, 32 group, else the
/// cluster's: brokers and broker loggers).
fn config_error(resource_type: i8, e: ResponseError) -> ResponseError {
    let authorization = matches!(
        e,
        ResponseError::TopicAuthorizationFailed
            | ResponseError::GroupAuthorizationFailed
            | ResponseError::ClusterAuthorizationFailed
    );
    match resource_type {
        _ if !authorization => e,
        2 => ResponseError::TopicAuthorizationFailed,
        32 => ResponseError::GroupAuthorizationFailed,
        _ => ResponseError::ClusterAuthorizationFailed,
    }
}

/// Kafka's default message of an authorization error (Errors.java).
fn kafka_message(e: ResponseError) -> &'static str {
    match e {
        ResponseError::TopicAuthorizationFailed => "Topic authorization failed.",
        ResponseError::GroupAuthorizationFailed => "Group authorization failed.",
        ResponseError::TransactionalIdAuthorizationFailed => {
            "Transactional Id authorization failed."
        }
        _ => "Cluster authorization failed.",
    }
}

/// The answer for the items taken out of a request: topics (TOPIC_AUTHORIZATION_FAILED),
/// groups (GROUP_) or transactional ids (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
pub(super) fn refused_topics(body: &RequestKind, version: i16) -> Option<ResponseKind> {
    let error = match body {
        RequestKind::DescribeGroups(_)
        | RequestKind::DeleteGroups(_)
        | RequestKind::ConsumerGroupDescribe(_) => ResponseError::GroupAuthorizationFailed,
        RequestKind::DescribeTransactions(_) => ResponseError::TransactionalIdAuthorizationFailed,
        _ => ResponseError::TopicAuthorizationFailed,
    };
    match body {
        RequestKind::CreateTopics(_)
        | RequestKind::DeleteTopics(_)
        | RequestKind::DescribeGroups(_)
        | RequestKind::DeleteGroups(_)
        | RequestKind::ConsumerGroupDescribe(_)
        | RequestKind::DescribeTransactions(_)
        | RequestKind::DescribeProducers(_)
        | RequestKind::OffsetForLeaderEpoch(_)
        | RequestKind::CreatePartitions(_)
        | RequestKind::DeleteRecords(_)
        | RequestKind::DescribeConfigs(_)
        | RequestKind::AlterConfigs(_)
        | RequestKind::IncrementalAlterConfigs(_) => match refuse(body, version, error) {
            Verdict::Refuse(resp) => Some(*resp),
            _ => None,
        },
        _ => error_response(body, version, error.code()),
    }
}

/// AddPartitionsToTxn (v0–v3) naming a topic the principal may not write: as Kafka, no
/// partition is added, and each is answered TOPIC_AUTHORIZATION_FAILED,
/// UNKNOWN_TOPIC_OR_PARTITION or OPERATION_NOT_ATTEMPTED.
pub(super) fn add_partitions_refused(
    r: &AddPartitionsToTxnRequest,
    writable: impl Fn(&str) -> bool,
    exists: impl Fn(&str, i32) -> bool,
) -> AddPartitionsToTxnResponse {
    let results: Vec<Result<(), ResponseError>> = r
        .v3_and_below_topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t, *p)))
        .map(|(t, p)| {
            Err(if !writable(&t.name) {
                ResponseError::TopicAuthorizationFailed
            } else if !exists(&t.name, p) {
                ResponseError::UnknownTopicOrPartition
            } else {
                ResponseError::OperationNotAttempted
            })
        })
        .collect();
    let mut resp = AddPartitionsToTxnResponse::default();
    resp.results_by_topic_v3_and_below =
        super::txn::topic_results(&r.v3_and_below_topics, &results);
    resp
}

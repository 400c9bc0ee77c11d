//! ACLs on the transaction and describe APIs, item by item as Kafka answers them: a
//! refused topic in AddPartitionsToTxn adds nothing (the others OPERATION_NOT_ATTEMPTED),
//! the batched form needs CLUSTER_ACTION, and TxnOffsetCommit, DescribeTransactions,
//! DescribeProducers, ConsumerGroupDescribe and OffsetForLeaderEpoch refuse only the items
//! the principal may not touch.

mod common;

use agentbus_testkit::Broker;
use common::raw::Raw;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn txn_id(s: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(s.to_string()))
}

fn group(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.to_string()))
}

async fn signed_in(broker: &Broker, user: &str) -> Raw {
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    assert_eq!(
        raw.authenticate_plain(user, &format!("{user}-pw")).await.0,
        0
    );
    raw
}

const OK: i16 = 0;

fn topic_denied() -> i16 {
    ResponseError::TopicAuthorizationFailed.code()
}

fn add_topics(topics: &[&str]) -> Vec<AddPartitionsToTxnTopic> {
    topics
        .iter()
        .map(|t| {
            let mut a = AddPartitionsToTxnTopic::default();
            a.name = name(t);
            a.partitions = vec![0];
            a
        })
        .collect()
}

/// (topic, error) of each topic's partition 0, sorted.
fn codes<T>(items: &[T], f: impl Fn(&T) -> (String, i16)) -> Vec<(String, i16)> {
    let mut out: Vec<(String, i16)> = items.iter().map(f).collect();
    out.sort();
    out
}

fn pair(s: &str, code: i16) -> (String, i16) {
    (s.to_string(), code)
}

#[tokio::test]
async fn transaction_apis_refuse_only_what_the_principal_may_not_touch() {
    let broker = Broker::builder()
        .sasl_users(&[("admin", "admin-pw"), ("writer", "writer-pw")])
        .super_users(&["User:admin"])
        .acls(&[
            "allow User:writer Write topic:agent-*",
            "allow User:writer Read topic:agent-actions",
            "allow User:writer Write transactional-id:tx",
            "allow User:writer Read group:g",
        ])
        .start()
        .await
        .unwrap();
    let mut admin = signed_in(&broker, "admin").await;
    let mut create = MetadataRequest::default();
    create.topics = Some(
        ["agent-actions", "audit-log"]
            .iter()
            .map(|t| {
                let mut m = MetadataRequestTopic::default();
                m.name = Some(name(t));
                m
            })
            .collect(),
    );
    create.allow_auto_topic_creation = true;
    let created = admin.send(12, &create).await;
    assert!(created.topics.iter().all(|t| t.error_code == 0));

    let mut w = signed_in(&broker, "writer").await;
    let mut init = InitProducerIdRequest::default();
    init.transactional_id = Some(txn_id("tx"));
    init.transaction_timeout_ms = 60_000;
    let producer = w.send(4, &init).await;
    assert_eq!(producer.error_code, 0);

    // One topic it may not write, one that does not exist: nothing is added.
    let mut add = AddPartitionsToTxnRequest::default();
    add.v3_and_below_transactional_id = txn_id("tx");
    add.v3_and_below_producer_id = producer.producer_id;
    add.v3_and_below_producer_epoch = producer.producer_epoch;
    add.v3_and_below_topics = add_topics(&["agent-actions", "audit-log", "agent-none"]);
    let resp = w.send(3, &add).await;
    let got = codes(&resp.results_by_topic_v3_and_below, |t| {
        (
            t.name.to_string(),
            t.results_by_partition[0].partition_error_code,
        )
    });
    assert_eq!(
        got,
        [
            pair("agent-actions", ResponseError::OperationNotAttempted.code()),
            pair("agent-none", ResponseError::UnknownTopicOrPartition.code()),
            pair("audit-log", topic_denied()),
        ]
    );
    let mut describe = DescribeTransactionsRequest::default();
    describe.transactional_ids = vec![txn_id("tx")];
    let seen = admin.send(0, &describe).await;
    assert!(
        seen.transaction_states[0].topics.is_empty(),
        "nothing added: {seen:?}"
    );

    // The batched form (KIP-890) is for brokers: CLUSTER_ACTION.
    let mut batched = AddPartitionsToTxnRequest::default();
    let mut t = AddPartitionsToTxnTransaction::default();
    t.transactional_id = txn_id("tx");
    t.producer_id = producer.producer_id;
    t.producer_epoch = producer.producer_epoch;
    t.verify_only = true;
    t.topics = add_topics(&["agent-actions"]);
    batched.transactions = vec![t];
    assert_eq!(
        w.send(4, &batched).await.error_code,
        ResponseError::ClusterAuthorizationFailed.code()
    );

    // The allowed topic alone is added; offsets for the group go in with it.
    add.v3_and_below_topics = add_topics(&["agent-actions"]);
    let resp = w.send(3, &add).await;
    assert_eq!(
        resp.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        OK
    );
    let mut offsets = AddOffsetsToTxnRequest::default();
    offsets.transactional_id = txn_id("tx");
    offsets.producer_id = producer.producer_id;
    offsets.producer_epoch = producer.producer_epoch;
    offsets.group_id = group("g");
    assert_eq!(w.send(3, &offsets).await.error_code, 0);

    // TxnOffsetCommit: the topic it may not read is refused, the other committed.
    let mut commit = TxnOffsetCommitRequest::default();
    commit.transactional_id = txn_id("tx");
    commit.group_id = group("g");
    commit.producer_id = producer.producer_id;
    commit.producer_epoch = producer.producer_epoch;
    commit.generation_id = -1;
    commit.topics = ["agent-actions", "audit-log"]
        .iter()
        .map(|t| {
            let mut p = TxnOffsetCommitRequestPartition::default();
            p.committed_offset = 5;
            let mut ct = TxnOffsetCommitRequestTopic::default();
            ct.name = name(t);
            ct.partitions = vec![p];
            ct
        })
        .collect();
    let resp = w.send(3, &commit).await;
    let got = codes(&resp.topics, |t| {
        (t.name.to_string(), t.partitions[0].error_code)
    });
    assert_eq!(
        got,
        [pair("agent-actions", OK), pair("audit-log", topic_denied())]
    );
    let mut end = EndTxnRequest::default();
    end.transactional_id = txn_id("tx");
    end.producer_id = producer.producer_id;
    end.producer_epoch = producer.producer_epoch;
    end.committed = true;
    assert_eq!(w.send(3, &end).await.error_code, 0);
    let committed: Vec<_> = broker.inspect().committed("g").into_iter().collect();
    assert_eq!(
        committed,
        [(("agent-actions".to_string(), 0), 5)],
        "only the allowed topic's offset is committed"
    );

    // Describe APIs: each refused item named, the others answered.
    describe.transactional_ids = vec![txn_id("tx"), txn_id("other")];
    let resp = w.send(0, &describe).await;
    let got = codes(&resp.transaction_states, |s| {
        (s.transactional_id.to_string(), s.error_code)
    });
    assert_eq!(
        got,
        [
            pair(
                "other",
                ResponseError::TransactionalIdAuthorizationFailed.code()
            ),
            pair("tx", OK),
        ]
    );
    let mut producers = DescribeProducersRequest::default();
    producers.topics = ["agent-actions", "audit-log"]
        .iter()
        .map(|t| {
            let mut r = describe_producers_request::TopicRequest::default();
            r.name = name(t);
            r.partition_indexes = vec![0];
            r
        })
        .collect();
    let resp = w.send(0, &producers).await;
    let got = codes(&resp.topics, |t| {
        (t.name.to_string(), t.partitions[0].error_code)
    });
    assert_eq!(
        got,
        [pair("agent-actions", OK), pair("audit-log", topic_denied())]
    );
    let mut groups = ConsumerGroupDescribeRequest::default();
    groups.group_ids = vec![group("g"), group("h")];
    let resp = w.send(0, &groups).await;
    let got = codes(&resp.groups, |g| (g.group_id.to_string(), g.error_code));
    assert_eq!(got.len(), 2, "{got:?}");
    assert_ne!(got[0].1, ResponseError::GroupAuthorizationFailed.code());
    assert_eq!(
        got[1],
        pair("h", ResponseError::GroupAuthorizationFailed.code())
    );
    let mut epochs = OffsetForLeaderEpochRequest::default();
    epochs.replica_id = BrokerId(-1);
    epochs.topics = ["agent-actions", "audit-log"]
        .iter()
        .map(|t| {
            let mut p = offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
            p.current_leader_epoch = -1;
            p.leader_epoch = 0;
            let mut ot = offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
            ot.topic = name(t);
            ot.partitions = vec![p];
            ot
        })
        .collect();
    let resp = w.send(4, &epochs).await;
    let got = codes(&resp.topics, |t| {
        (t.topic.to_string(), t.partitions[0].error_code)
    });
    assert_eq!(
        got,
        [pair("agent-actions", OK), pair("audit-log", topic_denied())]
    );
}

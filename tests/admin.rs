//! Admin APIs tools rely on: configs, DeleteRecords, DescribeCluster, DescribeLogDirs.

mod common;

use agentbus_testkit::Broker;
use common::raw::Raw;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ConfigSource, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureRecord;
use std::time::Duration;

fn admin(b: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", b)
        .create()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_and_alter_topic_configs() {
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    common::create_topic(&b, "cfg", 1, &[("retention.ms", "86400000")]).await;
    let a = admin(&b);
    let opts = AdminOptions::new();
    let described = a
        .describe_configs([&ResourceSpecifier::Topic("cfg")], &opts)
        .await
        .unwrap();
    let res = described[0].as_ref().unwrap();
    let retention = res.get("retention.ms").unwrap();
    assert_eq!(retention.value.as_deref(), Some("86400000"));
    assert!(!retention.is_default, "set at creation");
    assert!(matches!(retention.source, ConfigSource::DynamicTopic));
    let segment = res.get("segment.bytes").expect("unset defaults are listed");
    assert!(segment.is_default);

    let change = AlterConfig::new(ResourceSpecifier::Topic("cfg")).set("retention.ms", "3600000");
    let r = a.alter_configs([&change], &opts).await.unwrap();
    assert!(r[0].is_ok());
    let described = a
        .describe_configs([&ResourceSpecifier::Topic("cfg")], &opts)
        .await
        .unwrap();
    assert_eq!(
        described[0]
            .as_ref()
            .unwrap()
            .get("retention.ms")
            .unwrap()
            .value
            .as_deref(),
        Some("3600000")
    );
    assert_eq!(
        broker.inspect().log_config("cfg").unwrap().retention_ms,
        3_600_000
    );

    // rdkafka 0.39 reports every AlterConfigs resource as Ok (it drops the per-resource
    // error); the refusal itself is checked on the wire below. The value must not change.
    let bad = AlterConfig::new(ResourceSpecifier::Topic("cfg")).set("retention.ms", "soon");
    let _ = a.alter_configs([&bad], &opts).await;
    let described = a
        .describe_configs([&ResourceSpecifier::Topic("cfg")], &opts)
        .await
        .unwrap();
    assert_eq!(
        described[0]
            .as_ref()
            .unwrap()
            .get("retention.ms")
            .unwrap()
            .value
            .as_deref(),
        Some("3600000")
    );
    let broker_cfg = a
        .describe_configs([&ResourceSpecifier::Broker(1)], &opts)
        .await
        .unwrap();
    assert!(broker_cfg[0]
        .as_ref()
        .unwrap()
        .get("num.partitions")
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_alter_delete_records_cluster_and_log_dirs() {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    broker.inspect().create_topic("inc", -1).unwrap();
    let mut raw = Raw::connect(&b).await;
    let mut set = AlterableConfig::default();
    set.name = StrBytes::from_static_str("cleanup.policy");
    set.config_operation = 2; // APPEND
    set.value = Some(StrBytes::from_static_str("compact"));
    let mut res = AlterConfigsResource::default();
    res.resource_type = 2;
    res.resource_name = StrBytes::from_static_str("inc");
    res.configs = vec![set];
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources = vec![res];
    assert_eq!(raw.send(1, &req).await.responses[0].error_code, 0);
    let policy = |broker: &Broker| {
        broker
            .inspect()
            .topic("inc")
            .unwrap()
            .configs
            .get("cleanup.policy")
            .cloned()
    };
    // As Kafka: appended to the default `delete`, which stays.
    assert_eq!(policy(&broker).as_deref(), Some("delete,compact"));
    req.resources[0].configs[0].config_operation = 3; // SUBTRACT
    req.resources[0].configs[0].value = Some(StrBytes::from_static_str("delete"));
    assert_eq!(raw.send(1, &req).await.responses[0].error_code, 0);
    assert_eq!(policy(&broker).as_deref(), Some("compact"));
    assert!(broker.inspect().topic("inc").unwrap().configs["cleanup.policy"].contains("compact"));
    // Only list configs take APPEND and SUBTRACT.
    req.resources[0].configs[0].name = StrBytes::from_static_str("retention.ms");
    req.resources[0].configs[0].config_operation = 2;
    req.resources[0].configs[0].value = Some(StrBytes::from_static_str("1000"));
    let refused = &raw.send(1, &req).await.responses[0];
    assert_eq!(
        (
            refused.error_code,
            refused.error_message.as_ref().map(|m| m.to_string())
        ),
        (
            ResponseError::InvalidRequest.code(),
            Some("Config value append is not allowed for config key: retention.ms".to_string())
        )
    );

    // DeleteRecords moves the low watermark and keeps the connection.
    let p = common::producer(&b, &[]);
    for i in 0..10 {
        p.send(
            FutureRecord::to("del")
                .partition(0)
                .key("k")
                .payload(&format!("{i}")),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
    let mut part =
        kafka_protocol::messages::delete_records_request::DeleteRecordsPartition::default();
    part.offset = 4;
    let mut t = kafka_protocol::messages::delete_records_request::DeleteRecordsTopic::default();
    t.name = TopicName(StrBytes::from_static_str("del"));
    t.partitions = vec![part.clone()];
    let mut dr = DeleteRecordsRequest::default();
    dr.topics = vec![t.clone()];
    let r = raw.send(2, &dr).await;
    assert_eq!(
        (
            r.topics[0].partitions[0].error_code,
            r.topics[0].partitions[0].low_watermark
        ),
        (0, 4)
    );
    part.offset = 99;
    t.partitions = vec![part];
    dr.topics = vec![t];
    assert_eq!(
        raw.send(1, &dr).await.topics[0].partitions[0].error_code,
        ResponseError::OffsetOutOfRange.code()
    );
    let consumer = common::consumer(&b, &[]);
    let got = common::consume_all(&consumer, "del", 1, 6);
    use rdkafka::message::Message;
    assert_eq!(got[0].offset(), 4);

    let cluster = raw.send(1, &DescribeClusterRequest::default()).await;
    assert_eq!(cluster.brokers.len(), 1);
    assert_eq!(cluster.controller_id, cluster.brokers[0].broker_id);
    let mut dirs = DescribeLogDirsRequest::default();
    dirs.topics = None;
    let r = raw.send(4, &dirs).await;
    assert!(r.results[0]
        .topics
        .iter()
        .any(|t| t.name.0.as_str() == "del" && t.partitions[0].partition_size > 0));
}

#[tokio::test]
async fn alter_configs_refuses_invalid_values() {
    use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let broker = Broker::start().await.unwrap();
    broker.inspect().create_topic("v", -1).unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let mut c = AlterableConfig::default();
    c.name = StrBytes::from_static_str("retention.ms");
    c.value = Some(StrBytes::from_static_str("soon"));
    let mut res = AlterConfigsResource::default();
    res.resource_type = 2;
    res.resource_name = StrBytes::from_static_str("v");
    res.configs = vec![c];
    let mut req = AlterConfigsRequest::default();
    req.resources = vec![res];
    let r = raw.send(1, &req).await;
    assert_eq!(
        r.responses[0].error_code,
        ResponseError::InvalidConfig.code(),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_for_too_many_partitions_is_refused_whole() {
    use rdkafka::admin::{NewPartitions, NewTopic, TopicReplication};
    use rdkafka::types::RDKafkaErrorCode;
    let broker = Broker::start().await.unwrap();
    let admin = admin(&broker.bootstrap());
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let codes = |r: Vec<rdkafka::admin::TopicResult>| -> Vec<Option<RDKafkaErrorCode>> {
        r.into_iter().map(|r| r.err().map(|(_, c)| c)).collect()
    };
    // Kafka's limit is 10,000 per request: one topic far over it (librdkafka refuses
    // that itself, so the request goes raw), and two that together are.
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let mut req = CreateTopicsRequest::default();
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = TopicName(StrBytes::from_static_str("huge"));
    t.num_partitions = i32::MAX;
    t.replication_factor = 1;
    req.topics.push(t);
    req.timeout_ms = 5_000;
    let r = raw.send(7, &req).await;
    assert_eq!(
        r.topics[0].error_code,
        ResponseError::PolicyViolation.code()
    );
    assert_eq!(
        r.topics[0].error_message.as_deref(),
        Some("Excessively large number of partitions per request.")
    );
    let pair = [
        NewTopic::new("half-a", 6_000, TopicReplication::Fixed(1)),
        NewTopic::new("half-b", 6_000, TopicReplication::Fixed(1)),
    ];
    let r = admin.create_topics(&pair, &opts).await.unwrap();
    assert_eq!(codes(r), [Some(RDKafkaErrorCode::PolicyViolation); 2]);
    assert!(
        broker.inspect().topic("half-a").is_none(),
        "nothing is created"
    );
    let fits = [NewTopic::new("fits", 10_000, TopicReplication::Fixed(1))];
    assert_eq!(
        codes(admin.create_topics(&fits, &opts).await.unwrap()),
        [None]
    );
    let more = [NewPartitions::new("fits", 20_001)];
    let r = admin.create_partitions(&more, &opts).await.unwrap();
    assert_eq!(codes(r), [Some(RDKafkaErrorCode::PolicyViolation)]);
    assert_eq!(broker.inspect().topic("fits").unwrap().partitions, 10_000);
}

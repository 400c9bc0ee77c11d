//! Broker configs changed at run time (AlterConfigs, IncrementalAlterConfigs on BROKER
//! resources): in force at once, reported with Kafka's sources, kept across a restart.

mod common;

use agentbus_testkit::Inspect;
use common::raw::Raw;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureRecord;
use std::time::Duration;

const BROKER: i8 = 4;
const TOPIC: i8 = 2;
const DYNAMIC_BROKER: i8 = 2;
const DYNAMIC_DEFAULT: i8 = 3;
const DEFAULT: i8 = 5;

fn s(v: &str) -> StrBytes {
    StrBytes::from(v.to_string())
}

fn alter(name: &str, configs: &[(&str, &str)]) -> AlterConfigsRequest {
    use alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let mut r = AlterConfigsResource::default();
    r.resource_type = BROKER;
    r.resource_name = s(name);
    r.configs = configs
        .iter()
        .map(|(k, v)| {
            let mut c = AlterableConfig::default();
            c.name = s(k);
            c.value = Some(s(v));
            c
        })
        .collect();
    let mut req = AlterConfigsRequest::default();
    req.resources = vec![r];
    req
}

fn incremental(name: &str, ops: &[(&str, i8, &str)]) -> IncrementalAlterConfigsRequest {
    use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let mut r = AlterConfigsResource::default();
    r.resource_type = BROKER;
    r.resource_name = s(name);
    r.configs = ops
        .iter()
        .map(|(k, op, v)| {
            let mut c = AlterableConfig::default();
            c.name = s(k);
            c.config_operation = *op;
            c.value = Some(s(v));
            c
        })
        .collect();
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources = vec![r];
    req
}

/// One described config: name, value, source, its synonyms' sources, sensitive.
type Described = (String, Option<String>, i8, Vec<i8>, bool);

/// Each config of a resource as DescribeConfigs v4 (with synonyms) reports it.
async fn describe(raw: &mut Raw, resource_type: i8, name: &str) -> Vec<Described> {
    let mut r = describe_configs_request::DescribeConfigsResource::default();
    r.resource_type = resource_type;
    r.resource_name = s(name);
    r.configuration_keys = None;
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![r];
    req.include_synonyms = true;
    let resp = raw.send(4, &req).await;
    let result = &resp.results[0];
    assert_eq!(result.error_code, 0, "{:?}", result.error_message);
    result
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_ref().map(|v| v.to_string()),
                c.config_source,
                c.synonyms.iter().map(|s| s.source).collect(),
                c.is_sensitive,
            )
        })
        .collect()
}

fn find<'a>(configs: &'a [Described], name: &str) -> &'a Described {
    configs
        .iter()
        .find(|c| c.0 == name)
        .unwrap_or_else(|| panic!("{name} not reported"))
}

async fn send_bytes(b: &str, topic: &str, len: usize) -> Result<(), KafkaError> {
    let p = common::producer(b, &[("message.timeout.ms", "5000"), ("retries", "0")]);
    let value = vec![b'x'; len];
    p.send(
        FutureRecord::to(topic)
            .partition(0)
            .key("k")
            .payload(&value),
        Duration::from_secs(10),
    )
    .await
    .map(drop)
    .map_err(|(e, _)| e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamic_broker_config_is_in_force_reported_and_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::disk_broker(dir.path()).await;
    let b = broker.bootstrap();
    common::create_topic(&b, "sized", 1, &[]).await;
    send_bytes(&b, "sized", 4000)
        .await
        .expect("fits the default");
    let mut raw = Raw::connect(&b).await;

    // AlterConfigs on this node: a smaller message.max.bytes refuses the batch.
    let r = raw
        .send(1, &alter("1", &[("message.max.bytes", "2000")]))
        .await;
    assert_eq!(
        r.responses[0].error_code, 0,
        "{:?}",
        r.responses[0].error_message
    );
    let e = send_bytes(&b, "sized", 4000).await.unwrap_err();
    assert_eq!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge),
        "{e}"
    );
    send_bytes(&b, "sized", 500)
        .await
        .expect("a small one fits");

    // IncrementalAlterConfigs on the cluster-wide defaults.
    let r = raw
        .send(
            1,
            &incremental(
                "",
                &[
                    ("log.retention.ms", 0, "7200000"),
                    ("log.cleanup.policy", 2, "compact"),
                    ("sasl.kerberos.service.name", 0, "kafka"),
                ],
            ),
        )
        .await;
    assert_eq!(
        r.responses[0].error_code, 0,
        "{:?}",
        r.responses[0].error_message
    );
    assert_eq!(
        broker.inspect().log_config("sized").unwrap().retention_ms,
        7_200_000
    );

    let check = |node: &[Described]| {
        let max = find(node, "message.max.bytes");
        assert_eq!((max.1.as_deref(), max.2), (Some("2000"), DYNAMIC_BROKER));
        assert_eq!(
            max.3,
            vec![DYNAMIC_BROKER, DEFAULT],
            "synonyms, in force first"
        );
        let retention = find(node, "log.retention.ms");
        assert_eq!(
            (retention.1.as_deref(), retention.2),
            (Some("7200000"), DYNAMIC_DEFAULT)
        );
        // APPEND starts from the default `delete`.
        let policy = find(node, "log.cleanup.policy");
        assert_eq!(policy.1.as_deref(), Some("delete,compact"));
        let kept = find(node, "sasl.kerberos.service.name");
        assert_eq!(
            (kept.1.as_deref(), kept.2),
            (Some("kafka"), DYNAMIC_DEFAULT)
        );
        let partitions = find(node, "num.partitions");
        assert_eq!(partitions.2, DEFAULT);
    };
    check(&describe(&mut raw, BROKER, "1").await);
    // The cluster-wide resource lists only what is set there.
    let defaults = describe(&mut raw, BROKER, "").await;
    assert_eq!(
        defaults.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        [
            "log.cleanup.policy",
            "log.retention.ms",
            "sasl.kerberos.service.name"
        ]
    );
    // A topic that sets none takes the broker's value, and says where it comes from.
    let topic = describe(&mut raw, TOPIC, "sized").await;
    let retention = find(&topic, "retention.ms");
    assert_eq!(
        (retention.1.as_deref(), retention.2),
        (Some("7200000"), DYNAMIC_DEFAULT)
    );
    let max = find(&topic, "max.message.bytes");
    assert_eq!((max.1.as_deref(), max.2), (Some("2000"), DYNAMIC_BROKER));

    // Refused as Kafka refuses them; nothing changes.
    let refusals = [
        (
            alter("1", &[("num.partitions", "3")]),
            ResponseError::InvalidRequest,
            "Cannot update these configs dynamically: Set(num.partitions)",
        ),
        (
            alter("1", &[("message.max.bytes", "big")]),
            ResponseError::InvalidConfig,
            "Invalid value big for configuration message.max.bytes: Not a number of type INT",
        ),
        (
            alter("7", &[("message.max.bytes", "10")]),
            ResponseError::InvalidRequest,
            "Unexpected broker id, expected 1, but received 7",
        ),
        (
            alter("1", &[("ssl.keystore.location", "/k.jks")]),
            ResponseError::InvalidRequest,
            "These security configs can be dynamically updated only per-listener using the listener prefix: Set(ssl.keystore.location)",
        ),
    ];
    for (req, code, message) in refusals {
        let r = &raw.send(1, &req).await.responses[0];
        assert_eq!(
            (
                r.error_code,
                r.error_message.as_ref().map(|m| m.to_string())
            ),
            (code.code(), Some(message.to_string()))
        );
    }
    let r = raw
        .send(1, &incremental("1", &[("message.max.bytes", 2, "1")]))
        .await;
    assert_eq!(
        r.responses[0].error_code,
        ResponseError::InvalidRequest.code()
    );
    // A secret is kept and never shown.
    let r = raw
        .send(
            1,
            &incremental(
                "1",
                &[("listener.name.secure.ssl.key.password", 0, "hunter2")],
            ),
        )
        .await;
    assert_eq!(r.responses[0].error_code, 0);
    let node = describe(&mut raw, BROKER, "1").await;
    let secret = find(&node, "listener.name.secure.ssl.key.password");
    assert_eq!((secret.1.as_deref(), secret.4), (None, true));
    drop(raw);

    // A restart on the same directory keeps all of it, in force.
    broker.shutdown().await;
    let broker = common::disk_broker(dir.path()).await;
    let b = broker.bootstrap();
    let mut raw = Raw::connect(&b).await;
    check(&describe(&mut raw, BROKER, "1").await);
    assert_eq!(
        broker.inspect().log_config("sized").unwrap().retention_ms,
        7_200_000
    );
    let e = send_bytes(&b, "sized", 4000).await.unwrap_err();
    assert_eq!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge)
    );

    // DELETE puts the setting back.
    let r = raw
        .send(1, &incremental("1", &[("message.max.bytes", 1, "")]))
        .await;
    assert_eq!(r.responses[0].error_code, 0);
    send_bytes(&b, "sized", 4000)
        .await
        .expect("the default again");
    let node = describe(&mut raw, BROKER, "1").await;
    assert_eq!(find(&node, "message.max.bytes").2, DEFAULT);
}

fn group_incremental(group: &str, ops: &[(&str, i8, &str)]) -> IncrementalAlterConfigsRequest {
    let mut req = incremental(group, ops);
    req.resources[0].resource_type = GROUP;
    req
}

const GROUP: i8 = 32;
const GROUP_CONFIG: i8 = 8;

async fn join(raw: &mut Raw, group: &str, topic: &str) -> ConsumerGroupHeartbeatResponse {
    let mut hb = ConsumerGroupHeartbeatRequest::default();
    hb.group_id = GroupId(s(group));
    hb.member_id = s(&uuid::Uuid::new_v4().to_string());
    hb.member_epoch = 0;
    hb.rebalance_timeout_ms = 30_000;
    hb.subscribed_topic_names = Some(vec![TopicName(s(topic))]);
    hb.topic_partitions = Some(vec![]);
    raw.send(0, &hb).await
}

/// KIP-848 group configs: checked against the broker's bounds, in force for that group
/// (its heartbeat interval, its session timeout), kept across a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_configs_are_checked_in_force_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::disk_broker(dir.path()).await;
    broker.inspect().create_topic("events", 1).unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let r = raw
        .send(
            1,
            &group_incremental(
                "slow",
                &[
                    ("consumer.heartbeat.interval.ms", 0, "7000"),
                    ("consumer.session.timeout.ms", 0, "50000"),
                ],
            ),
        )
        .await;
    assert_eq!(
        r.responses[0].error_code, 0,
        "{:?}",
        r.responses[0].error_message
    );
    for (ops, message) in [
        (
            vec![("consumer.session.timeout.ms", 0, "1000")],
            "consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms",
        ),
        (vec![("no.such", 0, "1")], "Unknown group config name: no.such"),
    ] {
        let r = &raw.send(1, &group_incremental("slow", &ops)).await.responses[0];
        assert_eq!(
            (r.error_code, r.error_message.as_ref().map(|m| m.to_string())),
            (ResponseError::InvalidConfig.code(), Some(message.to_string()))
        );
    }
    let described = describe(&mut raw, GROUP, "slow").await;
    let interval = find(&described, "consumer.heartbeat.interval.ms");
    assert_eq!(
        (interval.1.as_deref(), interval.2),
        (Some("7000"), GROUP_CONFIG)
    );
    let other = describe(&mut raw, GROUP, "other").await;
    assert_eq!(
        find(&other, "consumer.session.timeout.ms").1.as_deref(),
        Some("45000")
    );

    // In force: the interval the member is told, and the session it is given.
    let joined = join(&mut raw, "slow", "events").await;
    assert_eq!((joined.error_code, joined.heartbeat_interval_ms), (0, 7000));
    broker.advance(Duration::from_secs(47));
    assert_eq!(
        broker.inspect().group("slow").members.len(),
        1,
        "45 s is not its session"
    );
    broker.advance(Duration::from_secs(5));
    assert!(broker.inspect().group("slow").members.is_empty(), "50 s is");
    drop(raw);

    broker.shutdown().await;
    let broker = common::disk_broker(dir.path()).await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let described = describe(&mut raw, GROUP, "slow").await;
    assert_eq!(
        find(&described, "consumer.session.timeout.ms").1.as_deref(),
        Some("50000")
    );
}

/// BROKER_LOGGER: the `agentbus broker` process's log levels, read and changed at run time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_logger_levels_change_what_the_process_logs() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args(["broker", "--listen", "127.0.0.1:0"])
        .env_remove("AGENTBUS_LOG")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let bootstrap = line
        .split("bootstrap ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    let mut raw = Raw::connect(&bootstrap).await;
    let loggers = |req: IncrementalAlterConfigsRequest| {
        let mut req = req;
        req.resources[0].resource_type = 8;
        req
    };
    let levels = describe(&mut raw, 8, "1").await;
    assert_eq!(find(&levels, "root").1.as_deref(), Some("INFO"));

    // A refused produce is logged at DEBUG by the produce handler.
    let refused_produce = || async {
        let mut raw = Raw::connect(&bootstrap).await;
        let mut p = produce_request::PartitionProduceData::default();
        p.index = 0;
        p.records = Some(bytes::Bytes::from_static(b"not a batch"));
        let mut t = produce_request::TopicProduceData::default();
        t.name = TopicName(s("no-such-topic"));
        t.partition_data = vec![p];
        let mut req = ProduceRequest::default();
        req.acks = 1;
        req.timeout_ms = 1000;
        req.topic_data = vec![t];
        raw.send(9, &req).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        std::fs::read_to_string(&log_path)
            .unwrap()
            .matches("produce rejected")
            .count()
    };
    assert_eq!(refused_produce().await, 0, "INFO hides it");
    let set = loggers(incremental(
        "1",
        &[("agentbus_broker::handlers::produce", 0, "DEBUG")],
    ));
    assert_eq!(raw.send(1, &set).await.responses[0].error_code, 0);
    let levels = describe(&mut raw, 8, "1").await;
    assert_eq!(
        find(&levels, "agentbus_broker::handlers::produce")
            .1
            .as_deref(),
        Some("DEBUG")
    );
    assert_eq!(refused_produce().await, 1, "DEBUG shows it");
    let unset = loggers(incremental(
        "1",
        &[("agentbus_broker::handlers::produce", 1, "")],
    ));
    assert_eq!(raw.send(1, &unset).await.responses[0].error_code, 0);
    assert_eq!(refused_produce().await, 1, "back to root's INFO");

    for (ops, code) in [
        (vec![("root", 0, "LOUD")], ResponseError::InvalidConfig),
        (vec![("root", 1, "")], ResponseError::InvalidConfig),
    ] {
        let r = &raw
            .send(1, &loggers(incremental("1", &ops)))
            .await
            .responses[0];
        assert_eq!(r.error_code, code.code(), "{ops:?}: {:?}", r.error_message);
    }
    let mut whole = alter("1", &[("root", "DEBUG")]);
    whole.resources[0].resource_type = 8;
    assert_eq!(
        raw.send(1, &whole).await.responses[0].error_code,
        ResponseError::InvalidRequest.code()
    );
    let _ = child.kill();
    let _ = child.wait();
}

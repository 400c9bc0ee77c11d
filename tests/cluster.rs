//! testkit's simulated 3-broker cluster: clients keep their guarantees while leaders move,
//! brokers stop and restart and coordinators change; faults and recorded requests.

mod common;

use agentbus_testkit::{Broker, Fault};
use common::members::{assert_exactly_once, produce, wait_for, Member, Tally};
use kafka_protocol::error::ResponseError;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PRODUCE: i16 = 0;
const METADATA: i16 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_shows_three_brokers_and_spread_leaders() {
    let cluster = agentbus_testkit::Cluster::builder()
        .brokers(3)
        .racks(&["r1", "r2", "r3"])
        .start()
        .await
        .unwrap();
    common::create_topic(&cluster.bootstrap(), "spread", 6, &[]).await;
    let consumer: BaseConsumer = common::consumer(&cluster.bootstrap(), &[]);
    let md = tokio::task::block_in_place(|| {
        consumer.fetch_metadata(Some("spread"), Duration::from_secs(10))
    })
    .unwrap();
    assert_eq!(md.brokers().len(), 3);
    let mut raw = common::raw::Raw::connect(cluster.bootstrap().split(',').next().unwrap()).await;
    let full = raw
        .send(12, &kafka_protocol::messages::MetadataRequest::default())
        .await;
    let racks: Vec<_> = full
        .brokers
        .iter()
        .map(|b| b.rack.as_ref().map(|r| r.to_string()))
        .collect();
    assert_eq!(
        racks,
        [
            Some("r1".to_string()),
            Some("r2".to_string()),
            Some("r3".to_string())
        ]
    );
    let topic = &md.topics()[0];
    let leaders: std::collections::BTreeSet<i32> =
        topic.partitions().iter().map(|p| p.leader()).collect();
    assert_eq!(leaders.len(), 3, "leaders spread over the brokers");
    assert!(topic
        .partitions()
        .iter()
        .all(|p| p.replicas().len() == 3 && p.isr().len() == 3));
}

/// Replication factors up to the broker count are kept and reported (leader first);
/// beyond it, or 0, CreateTopics refuses with Kafka's INVALID_REPLICATION_FACTOR message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_factors_up_to_the_broker_count() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let cluster = Broker::builder().start_cluster(3).await.unwrap();
    let b = cluster.bootstrap();
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &b)
        .create()
        .unwrap();
    let create = |name: &'static str, rf: i32| {
        let admin = &admin;
        async move {
            let t = NewTopic::new(name, 3, TopicReplication::Fixed(rf));
            let mut res = admin
                .create_topics([&t], &AdminOptions::new())
                .await
                .unwrap();
            res.remove(0)
        }
    };
    for (name, rf) in [("rf1", 1), ("rf2", 2), ("rf3", 3), ("rf-default", -1)] {
        create(name, rf)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
    let refused = create("rf4", 4).await.unwrap_err();
    assert_eq!(
        refused.1,
        rdkafka::types::RDKafkaErrorCode::InvalidReplicationFactor
    );
    assert!(create("rf0", 0).await.is_err());
    let mut raw = common::raw::Raw::connect(b.split(',').next().unwrap()).await;
    let mut all_topics = kafka_protocol::messages::MetadataRequest::default();
    all_topics.topics = None;
    let full = raw.send(12, &all_topics).await;
    for (name, rf) in [("rf1", 1), ("rf2", 2), ("rf3", 3), ("rf-default", 3)] {
        let t = full
            .topics
            .iter()
            .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some(name))
            .unwrap();
        for p in &t.partitions {
            assert_eq!(p.replica_nodes.len(), rf, "{name}");
            assert_eq!(p.replica_nodes[0], p.leader_id, "{name}: leader first");
            assert_eq!(p.isr_nodes.len(), rf, "{name}");
        }
    }
    assert!(!full
        .topics
        .iter()
        .any(|t| t.name.as_ref().map(|n| n.as_str()) == Some("rf4")));

    // Kafka's words, on the wire.
    let mut req = kafka_protocol::messages::CreateTopicsRequest::default();
    let mut t = kafka_protocol::messages::create_topics_request::CreatableTopic::default();
    t.name = kafka_protocol::messages::TopicName("rf5".to_string().into());
    t.num_partitions = 1;
    t.replication_factor = 5;
    req.topics = vec![t];
    req.timeout_ms = 5000;
    let answer = raw.send(7, &req).await;
    assert_eq!(
        answer.topics[0].error_code,
        ResponseError::InvalidReplicationFactor.code()
    );
    assert_eq!(
        answer.topics[0].error_message.as_ref().map(|m| m.to_string()),
        Some("Unable to replicate the partition 5 time(s): The target replication factor of 5 cannot be reached because only 3 broker(s) are registered.".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_survives_leader_moves_and_a_broker_restart() {
    let mut cluster = Broker::builder().start_cluster(3).await.unwrap();
    let b = cluster.bootstrap();
    common::create_topic(&b, "moving", 3, &[]).await;
    let producer = common::producer(
        &b,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "2"),
            ("message.timeout.ms", "60000"),
        ],
    );
    const TOTAL: u64 = 100_000;
    let mut pending = Vec::with_capacity(TOTAL as usize);
    for seq in 0..TOTAL {
        let partition = (seq % 3) as i32;
        let value = seq.to_string();
        loop {
            match producer.send_result(
                FutureRecord::to("moving")
                    .partition(partition)
                    .key("k")
                    .payload(&value),
            ) {
                Ok(f) => {
                    pending.push(f);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
        match seq {
            20_000 => {
                let to = cluster.leader("moving", 0) % 3 + 1;
                cluster.move_leader("moving", 0, to).unwrap();
            }
            40_000 => {
                let victim = cluster.leader("moving", 1);
                cluster.stop_broker(victim);
                tokio::time::sleep(Duration::from_millis(200)).await;
                cluster.start_broker(victim).await.unwrap();
            }
            70_000 => {
                let to = cluster.leader("moving", 2) % 3 + 1;
                cluster.move_leader("moving", 2, to).unwrap();
            }
            _ => {}
        }
        if seq % 5_000 == 0 {
            tokio::task::yield_now().await;
        }
    }
    for f in pending {
        f.await.unwrap().expect("every record acknowledged");
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    // Read everything back: per partition, values in send order, none lost or repeated.
    let consumer: BaseConsumer = common::consumer(&b, &[]);
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition_offset("moving", p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut by_partition: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while got < TOTAL {
        assert!(Instant::now() < deadline, "read {got} of {TOTAL}");
        if let Some(Ok(m)) =
            tokio::task::block_in_place(|| consumer.poll(Duration::from_millis(100)))
        {
            let v: u64 = std::str::from_utf8(m.payload().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            by_partition.entry(m.partition()).or_default().push(v);
            got += 1;
        }
    }
    for (p, values) in by_partition {
        let want: Vec<u64> = (0..TOTAL).filter(|s| (s % 3) as i32 == p).collect();
        assert_eq!(values.len(), want.len(), "partition {p}: count");
        assert!(values == want, "partition {p}: order or duplicates differ");
    }
    let epochs = cluster.inspect().leader_epoch("moving", 0).unwrap();
    assert!(epochs >= 1, "leader epoch bumped by the move");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_keeps_consuming_when_its_coordinator_stops() {
    let mut cluster = Broker::builder().start_cluster(3).await.unwrap();
    let b = cluster.bootstrap();
    common::create_topic(&b, "work", 6, &[]).await;
    let tally: Tally = Arc::default();
    let a = Member::spawn("a", &b, "work", "failover", &[], tally.clone());
    let c = Member::spawn("b", &b, "work", "failover", &[], tally.clone());
    wait_for("both members assigned", 60, || {
        a.assignment().len() == 3 && c.assignment().len() == 3
    })
    .await;
    produce(&b, "work", 0, 600).await;
    wait_for("600 records", 60, || tally.lock().unwrap().len() == 600).await;

    let old = cluster.coordinator("failover");
    cluster.stop_broker(old);
    let new = cluster.coordinator("failover");
    assert_ne!(old, new, "the coordinator moved");
    produce(&b, "work", 600, 600).await;
    wait_for("1200 records after the coordinator moved", 90, || {
        tally.lock().unwrap().len() >= 1200
    })
    .await;
    wait_for("the group stable on the new coordinator", 60, || {
        let s = cluster.inspect().group("failover");
        s.state_name == "Stable" && s.members.len() == 2
    })
    .await;
    assert_exactly_once(cluster.inspect(), "work", &tally);
    a.stop();
    c.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_errors_delays_disconnects_and_recorded_requests() {
    let cluster = Broker::builder().start_cluster(3).await.unwrap();
    let b = cluster.bootstrap();
    common::create_topic(&b, "faulty", 1, &[]).await;
    cluster.record_requests();
    // Two retriable errors, then success: the producer retries through them.
    let _errors = cluster.inject_on(
        PRODUCE,
        None,
        Fault::Error(ResponseError::NotEnoughReplicas.code()),
        Some(2),
    );
    let producer = common::producer(&b, &[("retry.backoff.ms", "10")]);
    let d = producer
        .send(
            FutureRecord::to("faulty").key("k").payload("v"),
            Duration::from_secs(10),
        )
        .await
        .expect("delivered after retries");
    assert_eq!(d.offset, 0, "the failed attempts stored nothing");
    let produce_requests = cluster
        .requests()
        .iter()
        .filter(|r| r.api_key == PRODUCE)
        .count();
    assert!(
        produce_requests >= 3,
        "recorded {produce_requests} produce requests"
    );
    assert!(cluster
        .requests()
        .iter()
        .any(|r| r.api_key == METADATA && r.client_id == "rdkafka"));

    let delay = cluster.inject(PRODUCE, Fault::Delay(Duration::from_millis(400)));
    let started = Instant::now();
    producer
        .send(
            FutureRecord::to("faulty").key("k").payload("slow"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    drop(delay);

    let _cut = cluster.inject_on(PRODUCE, None, Fault::Disconnect, Some(1));
    producer
        .send(
            FutureRecord::to("faulty")
                .key("k")
                .payload("after a disconnect"),
            Duration::from_secs(10),
        )
        .await
        .expect("the producer reconnects and retries");
    assert_eq!(
        cluster
            .inspect()
            .offsets("faulty", 0)
            .unwrap()
            .high_watermark,
        3
    );
}

#[tokio::test]
#[should_panic(expected = "strict mode")]
async fn strict_mode_fails_a_test_that_uses_an_unimplemented_api() {
    let broker = Broker::start().await.unwrap();
    let mut raw = common::raw::Raw::connect(&broker.bootstrap()).await;
    // ListPartitionReassignments (46) is not implemented.
    raw.write(&[0, 0, 0, 10, 0, 46, 0, 0, 0, 0, 0, 1, 0xff, 0xff])
        .await;
    let _ = raw.is_closed().await;
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_to_the_wrong_broker_get_routing_errors() {
    let cluster = Broker::builder().start_cluster(3).await.unwrap();
    common::create_topic(&cluster.bootstrap(), "route", 1, &[]).await;
    let leader = cluster.leader("route", 0);
    let addrs = cluster.bootstrap();
    let other = addrs
        .split(',')
        .zip(cluster.node_ids())
        .find(|(_, id)| *id != leader)
        .map(|(a, _)| a.to_string())
        .unwrap();
    let mut raw = common::raw::Raw::connect(&other).await;
    let r = raw
        .send(9, &{
            let mut pd = kafka_protocol::messages::produce_request::PartitionProduceData::default();
            pd.records = Some(common::raw::batch(
                &[(None, Some("v"), 1)],
                kafka_protocol::records::Compression::None,
            ));
            let mut td = kafka_protocol::messages::produce_request::TopicProduceData::default();
            td.name = kafka_protocol::messages::TopicName(
                kafka_protocol::protocol::StrBytes::from_static_str("route"),
            );
            td.partition_data = vec![pd];
            let mut req = kafka_protocol::messages::ProduceRequest::default();
            req.acks = 1;
            req.topic_data = vec![td];
            req
        })
        .await;
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        ResponseError::NotLeaderOrFollower.code()
    );
    let coordinator = cluster.coordinator("g");
    let wrong = addrs
        .split(',')
        .zip(cluster.node_ids())
        .find(|(_, id)| *id != coordinator)
        .map(|(a, _)| a.to_string())
        .unwrap();
    let mut raw = common::raw::Raw::connect(&wrong).await;
    let mut hb = kafka_protocol::messages::HeartbeatRequest::default();
    hb.group_id =
        kafka_protocol::messages::GroupId(kafka_protocol::protocol::StrBytes::from_static_str("g"));
    assert_eq!(
        raw.send(4, &hb).await.error_code,
        ResponseError::NotCoordinator.code()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspection_without_a_consumer() {
    use agentbus_testkit::Inspect;
    use rdkafka::consumer::CommitMode;
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    common::create_topic(
        &b,
        "seen",
        1,
        &[("retention.bytes", "0"), ("segment.bytes", "100")],
    )
    .await;
    let p = common::producer(&b, &[]);
    for i in 0..3 {
        p.send(
            FutureRecord::to("seen")
                .key(&format!("k{i}"))
                .payload(&format!("v{i}")),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
    let records = broker.records("seen", 0);
    assert_eq!(records.len(), 3);
    assert_eq!(records[2], (2, Some(b"k2".to_vec()), Some(b"v2".to_vec())));
    assert_eq!(broker.offsets("seen", 0), Some((0, 3, 3)));

    let c: BaseConsumer = common::consumer(&b, &[("group.id", "inspected")]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("seen", 0, Offset::Offset(2))
        .unwrap();
    tokio::task::block_in_place(|| c.commit(&tpl, CommitMode::Sync)).unwrap();
    assert_eq!(
        broker.committed("inspected").get(&("seen".to_string(), 0)),
        Some(&2)
    );
    assert_eq!(broker.group("inspected").0, "Empty");

    let t = common::producer(
        &b,
        &[
            ("transactional.id", "peek"),
            ("transaction.timeout.ms", "10000"),
            ("message.timeout.ms", "10000"),
        ],
    );
    t.init_transactions(Duration::from_secs(10)).unwrap();
    t.begin_transaction().unwrap();
    t.send(
        FutureRecord::to("seen").key("t").payload("open"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(broker.open_transactions(), vec!["peek".to_string()]);
    t.abort_transaction(Duration::from_secs(10)).unwrap();
    assert!(broker.open_transactions().is_empty());

    broker.apply_retention();
    let (start, end, _) = broker.offsets("seen", 0).unwrap();
    assert!(
        start > 0,
        "retention.bytes=0 removed old data ({start}..{end})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advancing_the_broker_clock_expires_sessions_transactions_and_data() {
    use agentbus_testkit::Inspect;
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    common::create_topic(&b, "timed", 1, &[("retention.ms", "3600000")]).await;

    // A member that joined and then went silent: gone once 45 s pass on the broker's clock.
    let mut raw = common::raw::Raw::connect(&b).await;
    let mut p = JoinGroupRequestProtocol::default();
    p.name = StrBytes::from_static_str("range");
    let mut join = JoinGroupRequest::default();
    join.group_id = GroupId(StrBytes::from_static_str("sleepy"));
    join.session_timeout_ms = 45_000;
    join.rebalance_timeout_ms = 45_000;
    join.protocol_type = StrBytes::from_static_str("consumer");
    join.protocols = vec![p];
    let joined = raw.send(3, &join).await;
    assert_eq!(joined.error_code, 0);
    let mut sync = SyncGroupRequest::default();
    sync.group_id = join.group_id.clone();
    sync.generation_id = joined.generation_id;
    sync.member_id = joined.member_id.clone();
    raw.send(3, &sync).await;
    assert_eq!(broker.group("sleepy").0, "Stable");
    broker.advance(Duration::from_secs(30));
    assert_eq!(
        broker.group("sleepy").0,
        "Stable",
        "30 s is within the session"
    );
    broker.advance(Duration::from_secs(20));
    assert_eq!(
        broker.group("sleepy").0,
        "Empty",
        "expired without waiting 45 s"
    );

    // An open transaction past its timeout is aborted.
    let t = common::producer(
        &b,
        &[
            ("transactional.id", "slow"),
            ("transaction.timeout.ms", "60000"),
            ("message.timeout.ms", "60000"),
        ],
    );
    t.init_transactions(Duration::from_secs(10)).unwrap();
    t.begin_transaction().unwrap();
    t.send(
        FutureRecord::to("timed")
            .key("k")
            .payload("never committed"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(broker.open_transactions(), vec!["slow".to_string()]);
    broker.advance(Duration::from_secs(61));
    assert!(broker.open_transactions().is_empty());
    let (_, hw, lso) = broker.offsets("timed", 0).unwrap();
    assert_eq!(lso, hw, "the abort marker closed the transaction");

    // Retention by time.
    broker.advance(Duration::from_secs(2 * 3600));
    broker.apply_retention();
    let (start, end, _) = broker.offsets("timed", 0).unwrap();
    assert_eq!(start, end, "everything older than retention.ms is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retriable_errors_are_retried_and_fatal_ones_surface() {
    use agentbus_testkit::Cluster;
    const FETCH: i16 = 1;
    let cluster = Cluster::builder().brokers(3).start().await.unwrap();
    let b = cluster.bootstrap();
    common::create_topic(&b, "flaky", 1, &[]).await;
    let producer = common::producer(
        &b,
        &[("retry.backoff.ms", "10"), ("message.timeout.ms", "10000")],
    );
    {
        let _e1 = cluster.inject_on(
            PRODUCE,
            None,
            Fault::Error(ResponseError::NotLeaderOrFollower.code()),
            Some(2),
        );
        let _e2 = cluster.inject_on(
            PRODUCE,
            None,
            Fault::Error(ResponseError::RequestTimedOut.code()),
            Some(2),
        );
        producer
            .send(
                FutureRecord::to("flaky")
                    .key("k")
                    .payload("through retriable errors"),
                Duration::from_secs(10),
            )
            .await
            .expect("retried until delivered");
    }
    {
        let _fetch = cluster.inject_on(
            FETCH,
            None,
            Fault::Error(ResponseError::NotLeaderOrFollower.code()),
            Some(3),
        );
        let consumer: BaseConsumer = common::consumer(&b, &[]);
        let got = tokio::task::block_in_place(|| common::consume_all(&consumer, "flaky", 1, 1));
        assert_eq!(got[0].payload(), Some(&b"through retriable errors"[..]));
    }
    let _fatal = cluster.inject_on(
        PRODUCE,
        None,
        Fault::Error(ResponseError::InvalidRecord.code()),
        Some(1),
    );
    let err = producer
        .send(
            FutureRecord::to("flaky").key("k").payload("refused"),
            Duration::from_secs(10),
        )
        .await
        .expect_err("a non-retriable error reaches the delivery callback");
    assert!(
        err.0.to_string().contains("Invalid") || err.0.to_string().contains("invalid"),
        "{}",
        err.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_epochs_answer_the_same_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let start = || Broker::builder().data_dir(dir.path()).start_cluster(2);
    let answers = |cluster: &agentbus_testkit::Cluster| {
        let p = cluster.inspect();
        let each: Vec<Option<(i32, i64)>> = (0..4)
            .map(|e| p.end_offset_for_epoch("epochs", 0, e))
            .collect();
        (p.leader_epoch("epochs", 0).unwrap(), each)
    };
    let before = {
        let cluster = start().await.unwrap();
        let b = cluster.bootstrap();
        common::create_topic(&b, "epochs", 1, &[]).await;
        let producer = common::producer(&b, &[]);
        let send = |i: i32| {
            let producer = producer.clone();
            async move {
                producer
                    .send(
                        rdkafka::producer::FutureRecord::<str, str>::to("epochs")
                            .payload(&i.to_string()),
                        Duration::from_secs(10),
                    )
                    .await
                    .expect("produce");
            }
        };
        for i in 0..3 {
            send(i).await;
        }
        let other = cluster
            .node_ids()
            .into_iter()
            .find(|n| *n != cluster.leader("epochs", 0))
            .unwrap();
        cluster.move_leader("epochs", 0, other).unwrap();
        for i in 3..5 {
            send(i).await;
        }
        let before = answers(&cluster);
        cluster.shutdown().await;
        before
    };
    assert_eq!(before.0, 1);
    assert_eq!(before.1[0], Some((0, 3)));
    let cluster = start().await.unwrap();
    assert_eq!(answers(&cluster), before);
}

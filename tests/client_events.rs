//! The pipeline's typed contract against a broker: the seeds' example event of every topic
//! decodes, validates and round-trips through the broker unchanged; malformed events are
//! rejected naming the field; events with one partition key share a partition, in order.

mod common;

use agentbus_client::events::{self, AgentAction, RoutingDecision};
use agentbus_client::{catalog, examples, AnyEvent, Producer, ProducerConfig, Topic};
use agentbus_testkit::Broker;
use rdkafka::message::Message;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// JSON equality with numbers compared by value (`85` and `85.0` are the same number).
fn normalized(v: &Value) -> Value {
    match v {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), normalized(v))).collect())
        }
        other => other.clone(),
    }
}

/// Kafka's murmur2 partitioner (Java client, kafka-python): where a key goes in `n` partitions.
fn murmur2_partition(key: &[u8], n: i32) -> i32 {
    const M: i32 = 0x5bd1_e995;
    let len = key.len();
    let mut h: i32 = 0x9747_b28c_u32 as i32 ^ len as i32;
    for c in key.chunks_exact(4) {
        let mut k = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= ((k as u32) >> 24) as i32;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = &key[len & !3..];
    if tail.len() == 3 {
        h ^= i32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= i32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= i32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= ((h as u32) >> 13) as i32;
    h = h.wrapping_mul(M);
    h ^= ((h as u32) >> 15) as i32;
    (h & 0x7fff_ffff) % n
}

fn producer(bootstrap: &str) -> Producer {
    Producer::new(ProducerConfig {
        brokers: bootstrap.to_string(),
        timeout: Duration::from_secs(10),
        ..Default::default()
    })
    .expect("producer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_examples_round_trip_through_the_broker() {
    let broker = Broker::start().await.expect("broker");
    let bootstrap = broker.bootstrap();
    for spec in catalog::catalog() {
        common::create_topic(&bootstrap, &spec.name, spec.partitions, &[]).await;
    }
    let producer = producer(&bootstrap);
    let consumer = common::consumer(&bootstrap, &[]);
    for topic in Topic::ALL {
        let text = examples::json(topic);
        let event = AnyEvent::decode(topic, text.as_bytes())
            .unwrap_or_else(|e| panic!("{topic}: the seeds' example is rejected: {e}"));
        event.validate().expect("valid");
        let encoded = event.to_json().expect("encode");
        let original: Value = serde_json::from_str(text).expect("json");
        let again: Value = serde_json::from_slice(&encoded).expect("json");
        assert_eq!(
            normalized(&again),
            normalized(&original),
            "{topic}: fields changed"
        );
        // Encoding is stable: decoding the encoding gives the same bytes.
        assert_eq!(
            AnyEvent::decode(topic, &encoded)
                .expect("re-decode")
                .to_json()
                .expect("encode"),
            encoded,
            "{topic}"
        );

        let delivery = producer
            .enqueue_any(&event)
            .expect("enqueue")
            .wait()
            .await
            .expect("publish")
            .expect("enabled");
        assert_eq!(delivery.topic, topic.name());

        let spec = catalog::spec(topic);
        let got = common::consume_all(&consumer, topic.name(), spec.partitions, 1);
        let m = &got[0];
        assert_eq!(m.partition(), delivery.partition, "{topic}");
        assert_eq!(m.offset(), delivery.offset, "{topic}");
        assert_eq!(
            m.payload(),
            Some(&encoded[..]),
            "{topic}: bytes changed in the broker"
        );
        assert_eq!(
            m.key(),
            Some(event.partition_key().as_bytes()),
            "{topic}: key"
        );
        let key_field = original[topic.key_field()].as_str().expect("key field");
        assert_eq!(event.partition_key(), key_field, "{topic}");
        let back = AnyEvent::decode(topic, m.payload().expect("payload")).expect("decode");
        assert_eq!(back, event, "{topic}");
    }
    producer.flush(Duration::from_secs(5)).await.expect("flush");
}

/// A change that breaks the example event.
type Edit = Box<dyn FnOnce(&mut Value)>;

fn field_error(topic: Topic, edit: impl FnOnce(&mut Value)) -> (String, String) {
    let mut v: Value = serde_json::from_str(examples::json(topic)).expect("json");
    edit(&mut v);
    let bytes = serde_json::to_vec(&v).expect("encode");
    let e = AnyEvent::decode(topic, &bytes).expect_err("must be rejected");
    (e.field().to_string(), e.to_string())
}

#[test]
fn murmur2_matches_kafka_python() {
    // `agentbus log` and the seeds' Python skill put this key on partition 5 of 6.
    assert_eq!(murmur2_partition(examples::CORRELATION_ID.as_bytes(), 6), 5);
    for (key, p) in [
        ("134fb519-dc13-4155-b543-302a4c53bf59", 5),
        ("d15aec53-fe8a-40ea-8002-d132956878fd", 4),
        ("c8c427bf-a587-4f89-9d22-4b28e5fe72a8", 2),
        ("00160599-ed74-40f9-83cc-010c0cc933f8", 0),
    ] {
        assert_eq!(murmur2_partition(key.as_bytes(), 6), p, "{key}");
    }
}

#[test]
fn malformed_events_are_rejected_naming_the_field() {
    let routing = Topic::AgentRoutingDecisions;
    let cases: Vec<(Topic, Edit, &str, &str)> = vec![
        (
            routing,
            Box::new(|v| v["confidence_score"] = 1.5.into()),
            "confidence_score",
            "confidence_score: 1.5 is outside 0..=1",
        ),
        (
            routing,
            Box::new(|v| v["confidence_score"] = "high".into()),
            "confidence_score",
            "confidence_score: invalid type: string \"high\", expected f64",
        ),
        (
            routing,
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("correlation_id");
            }),
            "correlation_id",
            "correlation_id: is required",
        ),
        (
            routing,
            Box::new(|v| v["event_id"] = "uuid".into()),
            "event_id",
            "event_id: \"uuid\" is not a UUID (expected 8-4-4-4-12 hex digits)",
        ),
        (
            routing,
            Box::new(|v| v["alternatives"][1]["confidence_score"] = (-0.5).into()),
            "alternatives[1].confidence_score",
            "alternatives[1].confidence_score: -0.5 is outside 0..=1",
        ),
        (
            routing,
            Box::new(|v| v["routing_time_ms"] = (-1).into()),
            "routing_time_ms",
            "routing_time_ms: invalid value: integer `-1`, expected u64",
        ),
        (
            routing,
            Box::new(|v| v["timestamp"] = "yesterday".into()),
            "timestamp",
            "",
        ),
        (
            routing,
            Box::new(|v| v["selected_agnt"] = "x".into()),
            "selected_agnt",
            "",
        ),
        (
            Topic::AgentActions,
            Box::new(|v| v["action_type"] = "lookup".into()),
            "action_type",
            "",
        ),
        (
            Topic::TaskExecutions,
            Box::new(|v| v["fingerprint_id"] = "not-a-uuid".into()),
            "fingerprint_id",
            "",
        ),
        (
            Topic::TaskExecutions,
            Box::new(|v| v["steps"][0]["step_number"] = "one".into()),
            "steps[0].step_number",
            "",
        ),
        (
            Topic::CodeQualityMetrics,
            Box::new(|v| v["test_coverage"] = 150.into()),
            "test_coverage",
            "test_coverage: 150 is outside 0..=100",
        ),
        (
            Topic::RouterPerformanceMetrics,
            Box::new(|v| v["confidence_components"]["context_score"] = 1.01.into()),
            "confidence_components.context_score",
            "",
        ),
        (
            Topic::SuccessPatterns,
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("pattern_template");
            }),
            "pattern_template",
            "pattern_template: is required",
        ),
        (
            Topic::FailurePatterns,
            Box::new(|v| v["failed_step"]["step_number"] = Value::Null),
            "failed_step.step_number",
            "",
        ),
        (
            Topic::AgentTransformationEvents,
            Box::new(|v| v["context_preserved"]["session_id"] = "s-1".into()),
            "context_preserved.session_id",
            "",
        ),
    ];
    for (topic, edit, field, message) in cases {
        let (got_field, got_message) = field_error(topic, edit);
        assert_eq!(got_field, field, "{topic}: {got_message}");
        assert!(
            got_message.starts_with(&format!("{field}: ")),
            "{got_message}"
        );
        if !message.is_empty() {
            assert_eq!(got_message, message);
        }
    }
    let e = AnyEvent::decode(routing, b"{not json").expect_err("not json");
    assert_eq!(e.field(), "$", "{e}");
    let e = AnyEvent::decode(routing, b"[]").expect_err("not an object");
    assert_eq!(e.field(), "$", "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_same_partition_in_order_over_10000_events() {
    const EVENTS: usize = 10_000;
    const KEYS: usize = 40;
    let broker = Broker::start().await.expect("broker");
    let bootstrap = broker.bootstrap();
    let spec = catalog::spec(Topic::AgentActions);
    common::create_topic(&bootstrap, &spec.name, spec.partitions, &[]).await;

    let template: AgentAction =
        events::decode(examples::json(Topic::AgentActions).as_bytes()).expect("example");
    let keys: Vec<agentbus_client::Id> = (0..KEYS).map(|_| agentbus_client::Id::random()).collect();
    let producer = producer(&bootstrap);
    for i in 0..EVENTS {
        let mut e = template.clone();
        e.event_id = agentbus_client::Id::random();
        e.correlation_id = keys[i % KEYS].clone();
        let mut details = serde_json::Map::new();
        details.insert("seq".into(), i.into());
        e.action_details = Some(details);
        producer.publish_detached(&e).expect("enqueue");
    }
    producer
        .flush(Duration::from_secs(30))
        .await
        .expect("all delivered");

    let consumer = common::consumer(&bootstrap, &[]);
    let got = common::consume_all(&consumer, &spec.name, spec.partitions, EVENTS);
    let mut partition_of: HashMap<Vec<u8>, i32> = HashMap::new();
    let mut last_seq: HashMap<Vec<u8>, i64> = HashMap::new();
    let mut used = BTreeMap::new();
    // Records of one partition come back in offset order.
    for m in &got {
        let key = m.key().expect("key").to_vec();
        let p = *partition_of.entry(key.clone()).or_insert(m.partition());
        assert_eq!(p, m.partition(), "one key, two partitions");
        *used.entry(p).or_insert(0) += 1;
        let e: AgentAction = events::decode(m.payload().expect("payload")).expect("decode");
        assert_eq!(e.correlation_id.as_str().as_bytes(), &key[..]);
        let seq = e
            .action_details
            .as_ref()
            .and_then(|d| d["seq"].as_i64())
            .expect("seq");
        let prev = last_seq.insert(key, seq).unwrap_or(-1);
        assert!(seq > prev, "out of order for one key: {prev} then {seq}");
    }
    assert_eq!(partition_of.len(), KEYS);
    // The partition Java producers and the seeds' kafka-python skills pick for the same key.
    for (key, p) in &partition_of {
        assert_eq!(*p, murmur2_partition(key, spec.partitions), "not murmur2");
    }
    assert!(used.len() > 1, "{KEYS} keys all in one partition: {used:?}");

    // A second producer puts each key on the same partition as the first.
    let second = self::producer(&bootstrap);
    let mut e: RoutingDecision =
        events::decode(examples::json(Topic::AgentRoutingDecisions).as_bytes()).expect("example");
    common::create_topic(&bootstrap, Topic::AgentRoutingDecisions.name(), 12, &[]).await;
    for key in keys.iter().take(5) {
        e.correlation_id = key.clone();
        let d1 = second.publish(&e).await.expect("publish").expect("enabled");
        let d2 = producer
            .publish(&e)
            .await
            .expect("publish")
            .expect("enabled");
        assert_eq!(d1.partition, d2.partition);
        assert_eq!(d1.partition, partition_of[key.as_str().as_bytes()]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_producer_delivers_its_detached_events_or_counts_them() {
    use agentbus_testkit::Inspect;
    let broker = Broker::start().await.unwrap();
    let bootstrap = broker.bootstrap();
    common::create_topic(&bootstrap, "agent-routing-decisions", 6, &[]).await;
    let event: RoutingDecision =
        events::decode(examples::json(Topic::AgentRoutingDecisions).as_bytes()).unwrap();
    let p = producer(&bootstrap);
    for _ in 0..500 {
        p.publish_detached(&event).unwrap();
    }
    // Dropped at once, without a flush: the events are sent first.
    tokio::task::block_in_place(|| drop(p));
    let total: i64 = (0..6)
        .map(|i| broker.offsets("agent-routing-decisions", i).unwrap().1)
        .sum();
    assert_eq!(total, 500);

    // Nowhere to send them: closing says how many were lost, within its bound.
    let p = Producer::new(ProducerConfig {
        brokers: "127.0.0.1:1".into(),
        timeout: Duration::from_secs(30),
        ..Default::default()
    })
    .unwrap();
    for _ in 0..7 {
        p.publish_detached(&event).unwrap();
    }
    let started = std::time::Instant::now();
    let lost = tokio::task::block_in_place(|| p.close(Duration::from_millis(500)));
    assert_eq!(lost, 7);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_running_process_drains_the_spool_in_the_background() {
    use agentbus_client::spool::{Drainer, Entry, Spool};
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::new(dir.path());
    let mut value: Value =
        serde_json::from_str(examples::json(Topic::AgentRoutingDecisions)).unwrap();
    let key = value["correlation_id"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for _ in 0..50 {
        let id = uuid::Uuid::new_v4().to_string();
        value["event_id"] = id.clone().into();
        let entry = Entry {
            key: key.clone(),
            value: value.to_string(),
            spooled_at_ms: 0,
        };
        spool.append("agent-routing-decisions", &entry).unwrap();
        ids.push(id);
    }
    let broker = Broker::start().await.expect("broker");
    let b = broker.bootstrap();
    common::create_topic(&b, "agent-routing-decisions", 6, &[]).await;
    let producer = std::sync::Arc::new(producer(&b));
    let drainer = Drainer::spawn(
        Spool::new(dir.path()),
        producer.clone(),
        Duration::from_millis(100),
    )
    .unwrap();
    let delivered = || common::records_on(&broker, "agent-routing-decisions", 6);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while delivered() < 50 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // What is spooled later goes too.
    value["event_id"] = uuid::Uuid::new_v4().to_string().into();
    let late = Entry {
        key,
        value: value.to_string(),
        spooled_at_ms: 0,
    };
    spool.append("agent-routing-decisions", &late).unwrap();
    while delivered() < 51 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(drainer);
    assert_eq!(delivered(), 51);
    assert!(spool
        .read("agent-routing-decisions")
        .unwrap()
        .entries
        .is_empty());
    let consumer = common::consumer(&b, &[]);
    let got: Vec<String> = common::consume_all(&consumer, "agent-routing-decisions", 6, 51)
        .iter()
        .map(|m| {
            let v: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            v["event_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(got[..50], ids[..]);
}

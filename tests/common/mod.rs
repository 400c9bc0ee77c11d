//! Helpers shared by the integration tests: rdkafka clients pointed at a testkit broker.
#![allow(dead_code, unreachable_pub)]

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Produces one record to `topic` and expects it stored; `why` says who may write it.
pub async fn assert_write_allowed(producer: &FutureProducer, topic: &str, why: &str) {
    producer
        .send(
            rdkafka::producer::FutureRecord::<str, str>::to(topic).payload("x"),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|e| panic!("{why}: {e:?}"));
}

/// Produces one record to `topic` and expects TOPIC_AUTHORIZATION_FAILED for it.
pub async fn assert_write_refused(producer: &FutureProducer, topic: &str) {
    let err = producer
        .send(
            rdkafka::producer::FutureRecord::<str, str>::to(topic).payload("x"),
            Duration::from_secs(10),
        )
        .await
        .expect_err("the write is refused");
    assert_eq!(
        err.0.rdkafka_error_code(),
        Some(rdkafka::types::RDKafkaErrorCode::TopicAuthorizationFailed),
        "{topic}: {err:?}"
    );
}

/// Reads a child's output on a thread: each line goes to `each`, then into the returned log
/// (for a failing test to show).
pub fn collect_lines(
    from: impl Read + Send + 'static,
    mut each: impl FnMut(&str) + Send + 'static,
) -> (Arc<Mutex<String>>, std::thread::JoinHandle<()>) {
    let log: Arc<Mutex<String>> = Arc::default();
    let sink = log.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            each(&line);
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    (log, reader)
}

pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "30000")
        .set("linger.ms", "5");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("producer")
}

pub fn consumer(bootstrap: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("group.id", "agentbus-tests-assign-only");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("consumer")
}

/// A testkit broker keeping its data in `dir` (start it again on the same `dir` to
/// test a restart).
pub async fn disk_broker(dir: &std::path::Path) -> agentbus_testkit::Broker {
    agentbus_testkit::Broker::builder()
        .data_dir(dir)
        .start()
        .await
        .expect("disk broker")
}

/// Records on `partitions` partitions of `topic` (the sum of their high watermarks).
pub fn records_on(broker: &agentbus_testkit::Broker, topic: &str, partitions: i32) -> i64 {
    use agentbus_testkit::Inspect;
    (0..partitions)
        .map(|p| broker.offsets(topic, p).map_or(0, |o| o.1))
        .sum()
}

pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin");
    // The broker's default replication factor: every presented broker.
    let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(-1));
    for (k, v) in configs {
        t = t.set(k, v);
    }
    let res = admin
        .create_topics([&t], &AdminOptions::new())
        .await
        .expect("create_topics");
    for r in res {
        r.expect("topic created");
    }
}

/// A record's headers as text, by key.
pub fn headers_of(
    m: &impl rdkafka::message::Message,
) -> std::collections::BTreeMap<String, String> {
    use rdkafka::message::Headers;
    m.headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    (
                        h.key.to_string(),
                        String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Reads `expected` records from all `partitions` of `topic`, from the beginning.
pub fn consume_all(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: i32,
    expected: usize,
) -> Vec<OwnedMessage> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::with_capacity(expected);
    while out.len() < expected {
        assert!(
            Instant::now() < deadline,
            "timed out with {} of {expected} records",
            out.len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(m.detach()),
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
    // Nothing beyond what was produced.
    if let Some(Ok(m)) = consumer.poll(Duration::from_millis(300)) {
        panic!("unexpected extra record at offset {}", m.offset());
    }
    out
}
pub mod aggregator;
pub mod alerts;
pub mod audit;
pub mod db_writer;
pub mod dev;
pub mod members;
pub mod outage;
pub mod patterns;
pub mod raw;
pub mod receiver;
pub mod s3;

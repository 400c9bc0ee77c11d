//! `--as-kafka VERSION`: the ApiVersions of that release, and its behaviour where it
//! changed — old clients that skip ApiVersions (`api.version.request=false`,
//! `api_version=(0, 10)`) work against 3.x and are refused by 4.x, as Kafka does.

mod common;

use agentbus_testkit::Broker;
use common::raw::Raw;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

/// A broker presenting `release`; strict mode off, as the refused requests are the point.
async fn emulating(release: &str) -> Broker {
    let release = release.to_string();
    Broker::builder()
        .strict(false)
        .configure(move |c| c.as_kafka = Some(release))
        .start()
        .await
        .expect("broker")
}

/// A librdkafka client that never asks ApiVersions and assumes broker `fallback`.
fn old_client(bootstrap: &str, fallback: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("api.version.request", "false")
        .set("broker.version.fallback", fallback);
    c
}

async fn produce(bootstrap: &str, fallback: &str, topic: &str, n: usize) -> Result<(), String> {
    let p: FutureProducer = old_client(bootstrap, fallback)
        .set("message.timeout.ms", "5000")
        .create()
        .unwrap();
    for i in 0..n {
        let (k, v) = (format!("k{i}"), format!("v{i}"));
        p.send(
            FutureRecord::to(topic).partition(0).key(&k).payload(&v),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e.to_string())?;
    }
    Ok(())
}

fn consume(bootstrap: &str, fallback: &str, topic: &str, n: usize) -> Vec<(String, String)> {
    let c: BaseConsumer = old_client(bootstrap, fallback)
        .set("group.id", "old-clients")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(Instant::now() < deadline, "read {} of {n}", out.len());
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            let m = m.expect("consume");
            let text =
                |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).to_string();
            out.push((text(m.key()), text(m.payload())));
        }
    }
    out
}

fn python(script: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("python3")
        .arg(format!(
            "{}/tests/python/{script}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args(args)
        .output()
        .expect("python3 (scripts/test.sh installs the clients)");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{script}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_3_9_serves_clients_that_skip_api_versions() {
    let broker = emulating("3.9").await;
    let b = broker.bootstrap();
    broker.inspect().create_topic("old", 1).unwrap();
    // 0.9.0: Produce v1 and Fetch v1 with magic-0 message sets, ListOffsets v0, Metadata v0.
    produce(&b, "0.9.0", "old", 50)
        .await
        .expect("0.9.0 producer");
    // 0.10.0: Produce v2 and Fetch v2 with magic 1 (timestamps).
    produce(&b, "0.10.0", "old", 50)
        .await
        .expect("0.10.0 producer");
    let want: Vec<(String, String)> = (0..50)
        .chain(0..50)
        .map(|i| (format!("k{i}"), format!("v{i}")))
        .collect();
    assert_eq!(consume(&b, "0.9.0", "old", 100), want);
    assert_eq!(consume(&b, "0.10.0", "old", 100), want);
    // Stored as v2 batches: a current client reads them too.
    let current = common::consumer(&b, &[]);
    assert_eq!(common::consume_all(&current, "old", 1, 100).len(), 100);

    broker.inspect().create_topic("old-py", 1).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        python("kafka_python_old_api.py", &[&b, "old-py", "200", "works"])
    })
    .await
    .unwrap();
    assert!(out.contains("200 records round-tripped"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_4_0_refuses_them_as_kafka_4_does() {
    let broker = emulating("4.0").await;
    let b = broker.bootstrap();
    broker.inspect().create_topic("old", 1).unwrap();
    let e = produce(&b, "0.9.0", "old", 1).await.unwrap_err();
    assert!(e.contains("timed out") || e.contains("Timed out"), "{e}");
    assert_eq!(
        broker.inspect().offsets("old", 0).unwrap().high_watermark,
        0
    );
    let b2 = b.clone();
    let out = tokio::task::spawn_blocking(move || {
        python("kafka_python_old_api.py", &[&b2, "old", "1", "refused"])
    })
    .await
    .unwrap();
    assert!(out.contains("refused as Kafka 4 refuses it"), "{out}");
    // A current client is served as ever.
    produce_current(&b).await;
}

async fn produce_current(b: &str) {
    let p = common::producer(b, &[]);
    p.send(
        FutureRecord::to("old").partition(0).key("k").payload("new"),
        Duration::from_secs(10),
    )
    .await
    .expect("a current client");
}

#[tokio::test]
async fn api_versions_are_the_releases() {
    for (release, produce, fetch) in [("3.9", (0, 11), (0, 17)), ("4.0", (3, 11), (4, 17))] {
        let broker = emulating(release).await;
        let mut raw = Raw::connect(&broker.bootstrap()).await;
        let resp = raw.send(3, &ApiVersionsRequest::default()).await;
        let range = |key: ApiKey| {
            resp.api_keys
                .iter()
                .find(|k| k.api_key == key as i16)
                .map(|k| (k.min_version, k.max_version))
        };
        assert_eq!(range(ApiKey::Produce), Some(produce), "{release}");
        assert_eq!(range(ApiKey::Fetch), Some(fetch), "{release}");
        assert!(
            resp.supported_features
                .iter()
                .any(|f| f.name.as_str() == "metadata.version"),
            "{release} lists its features"
        );
    }
    // 3.9 has no KIP-848 consumer groups.
    let broker = emulating("3.9").await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let resp = raw.send(3, &ApiVersionsRequest::default()).await;
    assert!(!resp
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::ConsumerGroupHeartbeat as i16));
}

//! `compression.type` applied: a topic's (or the broker's) codec is the one its batches are
//! stored in, whatever the producer sent, and every client still reads the records.

mod common;

use agentbus_testkit::Broker;
use common::raw::Raw;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::IncrementalAlterConfigsRequest;
use kafka_protocol::protocol::StrBytes;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use std::time::Duration;

const RECORDS: usize = 200;

/// Each target codec with a different one the producer sends.
const CODECS: &[(&str, &str)] = &[
    ("uncompressed", "zstd"),
    ("gzip", "lz4"),
    ("snappy", "gzip"),
    ("lz4", "none"),
    ("zstd", "snappy"),
];

async fn produce(b: &str, topic: &str, sent_as: &str) {
    let p: FutureProducer =
        common::producer(b, &[("compression.type", sent_as), ("linger.ms", "20")]);
    let mut delivered = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let key = format!("k{i}");
        let value = format!("value {i} {}", "x".repeat(i % 50));
        let record = FutureRecord::to(topic)
            .partition(0)
            .key(&key)
            .payload(&value);
        delivered.push(p.send_result(record).map_err(|(e, _)| e).expect("queued"));
    }
    for d in delivered {
        d.await
            .expect("delivery report")
            .unwrap_or_else(|(e, _)| panic!("{topic}: {e}"));
    }
    p.flush(Duration::from_secs(10)).unwrap();
}

fn assert_read_back(b: &str, topic: &str) {
    let consumer = common::consumer(b, &[]);
    let got = common::consume_all(&consumer, topic, 1, RECORDS);
    for (i, m) in got.iter().enumerate() {
        let want = format!("value {i} {}", "x".repeat(i % 50));
        assert_eq!(m.payload(), Some(want.as_bytes()), "{topic} record {i}");
        assert_eq!(m.key(), Some(format!("k{i}").as_bytes()));
    }
}

fn incremental_set(
    resource_type: i8,
    name: &str,
    config: &str,
    value: &str,
) -> IncrementalAlterConfigsRequest {
    let mut c = AlterableConfig::default();
    c.name = StrBytes::from(config.to_string());
    c.value = Some(StrBytes::from(value.to_string()));
    let mut r = AlterConfigsResource::default();
    r.resource_type = resource_type;
    r.resource_name = StrBytes::from(name.to_string());
    r.configs = vec![c];
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources = vec![r];
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_compression_type_is_the_stored_codec_and_every_client_reads_it() {
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    for (target, sent_as) in CODECS {
        let topic = format!("codec-{target}");
        common::create_topic(&b, &topic, 1, &[("compression.type", target)]).await;
        produce(&b, &topic, sent_as).await;
        let codecs = broker.inspect().codecs(&topic, 0);
        assert!(!codecs.is_empty());
        assert!(
            codecs.iter().all(|c| c == target),
            "{topic} stored as {codecs:?}"
        );
        assert_read_back(&b, &topic);
    }
    // `producer` keeps what the producer sent.
    common::create_topic(&b, "codec-producer", 1, &[("compression.type", "producer")]).await;
    produce(&b, "codec-producer", "lz4").await;
    assert!(broker
        .inspect()
        .codecs("codec-producer", 0)
        .iter()
        .all(|c| *c == "lz4"));
    // A level the codec does not have is refused, as Kafka refuses it.
    let mut raw = Raw::connect(&b).await;
    let refused = raw
        .send(
            1,
            &incremental_set(2, "codec-gzip", "compression.gzip.level", "10"),
        )
        .await;
    assert_eq!(refused.responses[0].error_code, 40, "INVALID_CONFIG");
    let ok = raw
        .send(
            1,
            &incremental_set(2, "codec-zstd", "compression.zstd.level", "19"),
        )
        .await;
    assert_eq!(ok.responses[0].error_code, 0);

    // The broker's `compression.type`, changed at run time, applies to topics that set none.
    let r = raw
        .send(1, &incremental_set(4, "", "compression.type", "zstd"))
        .await;
    assert_eq!(
        r.responses[0].error_code, 0,
        "{:?}",
        r.responses[0].error_message
    );
    common::create_topic(&b, "codec-default", 1, &[]).await;
    produce(&b, "codec-default", "none").await;
    assert!(broker
        .inspect()
        .codecs("codec-default", 0)
        .iter()
        .all(|c| *c == "zstd"));
    assert_read_back(&b, "codec-default");

    // confluent-kafka-python and kafka-python (its own codecs) read every topic.
    let b2 = b.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(format!(
                "{}/tests/python/read_codecs.py",
                env!("CARGO_MANIFEST_DIR")
            ))
            .arg(&b2)
            .arg(RECORDS.to_string())
            .args(CODECS.iter().map(|(t, _)| format!("codec-{t}")))
            .arg("codec-default")
            .output()
            .expect("python3 (install it with apt-get install -y python3)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "read_codecs.py: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("both clients read 6 topics"), "{stdout}");
}

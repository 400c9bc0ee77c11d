//! rdkafka producer → agentbus → rdkafka consumer: contents, order, codecs, edge cases.

mod common;

use agentbus_testkit::Broker;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
struct Sent {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp: i64,
    offset: i64,
}

async fn roundtrip_with_codec(codec: &str) {
    let broker = Broker::start().await.unwrap();
    let bootstrap = broker.bootstrap();
    let topic = format!("rt-{codec}");
    common::create_topic(&bootstrap, &topic, 3, &[]).await;
    let producer = common::producer(&bootstrap, &[("compression.type", codec), ("acks", "all")]);
    let base_ts = 1_700_000_000_000i64;
    let mut sent: HashMap<i32, Vec<Sent>> = HashMap::new();
    let mut futures = Vec::new();
    for i in 0..600i64 {
        let key = format!("key-{}", i % 17);
        let value = format!("value-{i}-{}", "x".repeat((i % 50) as usize));
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "seq",
                value: Some(&i.to_string()),
            })
            .insert(Header {
                key: "none",
                value: None::<&[u8]>,
            });
        let record = FutureRecord::to(&topic)
            .key(&key)
            .payload(&value)
            .headers(headers)
            .timestamp(base_ts + i);
        let fut = producer.send_result(record).expect("enqueue");
        futures.push((key, value, i, fut));
    }
    for (key, value, i, fut) in futures {
        let d = fut.await.expect("delivery").expect("delivered");
        sent.entry(d.partition).or_default().push(Sent {
            key: Some(key.into_bytes()),
            value: Some(value.into_bytes()),
            headers: vec![
                ("seq".into(), Some(i.to_string().into_bytes())),
                ("none".into(), None),
            ],
            timestamp: base_ts + i,
            offset: d.offset,
        });
    }
    let consumer = common::consumer(&bootstrap, &[]);
    let got = common::consume_all(&consumer, &topic, 3, 600);
    let mut by_partition: HashMap<i32, Vec<Sent>> = HashMap::new();
    for m in got {
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|x| (x.key.to_string(), x.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        by_partition.entry(m.partition()).or_default().push(Sent {
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers,
            timestamp: m.timestamp().to_millis().unwrap_or(-1),
            offset: m.offset(),
        });
    }
    for (p, mut records) in sent {
        records.sort_by_key(|s| s.offset);
        let got = by_partition.remove(&p).unwrap_or_default();
        assert_eq!(got, records, "partition {p} with {codec}");
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r.offset, i as i64, "offsets are dense from 0");
        }
    }
    assert!(by_partition.is_empty(), "records in unexpected partitions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundtrip_uncompressed() {
    roundtrip_with_codec("none").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundtrip_gzip() {
    roundtrip_with_codec("gzip").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundtrip_snappy() {
    roundtrip_with_codec("snappy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundtrip_lz4() {
    roundtrip_with_codec("lz4").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roundtrip_zstd() {
    roundtrip_with_codec("zstd").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_empty_and_null_records() {
    let broker = Broker::builder()
        .configure(|c| c.max_message_bytes = 2 * 1024 * 1024)
        .start()
        .await
        .unwrap();
    let bootstrap = broker.bootstrap();
    common::create_topic(&bootstrap, "edge", 1, &[]).await;
    let producer = common::producer(&bootstrap, &[("message.max.bytes", "3000000")]);
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let t = Duration::from_secs(10);
    producer
        .send(FutureRecord::to("edge").key("big").payload(&big), t)
        .await
        .expect("1 MiB record");
    producer
        .send(
            FutureRecord::<str, [u8]>::to("edge")
                .key("empty")
                .payload(&[]),
            t,
        )
        .await
        .expect("empty value");
    producer
        .send(FutureRecord::<str, str>::to("edge").payload("no key"), t)
        .await
        .expect("null key");
    producer
        .send(FutureRecord::<str, str>::to("edge").key("null value"), t)
        .await
        .expect("null value");
    let consumer = common::consumer(&bootstrap, &[("fetch.message.max.bytes", "100000")]);
    let got = common::consume_all(&consumer, "edge", 1, 4);
    assert_eq!(got[0].payload(), Some(&big[..]));
    assert_eq!(got[1].key(), Some(&b"empty"[..]));
    assert_eq!(got[1].payload(), Some(&b""[..]));
    assert_eq!(got[2].key(), None);
    assert_eq!(got[2].payload(), Some(&b"no key"[..]));
    assert_eq!(got[3].payload(), None);
}

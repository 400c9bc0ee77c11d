//! Hostile bytes on a raw socket: each gets the right Kafka error or a closed connection,
//! and the broker keeps serving normal clients afterwards.

mod common;

use agentbus_testkit::Broker;
use bytes::{BufMut, BytesMut};
use common::raw::{batch, Raw};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{MetadataRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::time::Duration;

/// A real client still gets metadata from the broker.
async fn still_serves(bootstrap: &str) {
    let consumer: BaseConsumer = common::consumer(bootstrap, &[]);
    let md = tokio::task::block_in_place(|| consumer.fetch_metadata(None, Duration::from_secs(10)))
        .expect("metadata after bad input");
    assert_eq!(md.brokers().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_close_only_that_connection() {
    // Garbage may decode as an unknown API: not a strict-mode failure here.
    let broker = Broker::builder().strict(false).start().await.unwrap();
    let mut bystander = Raw::connect(&broker.bootstrap()).await;
    // Deterministic garbage: a frame length that makes sense, then noise.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..20 {
        let mut raw = Raw::connect(&broker.bootstrap()).await;
        let mut noise = BytesMut::new();
        noise.put_i32(64);
        for _ in 0..64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            noise.put_u8(seed as u8);
        }
        raw.write(&noise).await;
        assert!(raw.is_closed().await, "garbage closes the connection");
    }
    let md = bystander.send(12, &MetadataRequest::default()).await;
    assert_eq!(md.brokers.len(), 1, "other connections are untouched");
    still_serves(&broker.bootstrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_declaring_two_gib_is_refused() {
    let broker = Broker::start().await.unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    raw.write(&i32::MAX.to_be_bytes()).await;
    assert!(raw.is_closed().await);
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    raw.write(&(-5i32).to_be_bytes()).await;
    assert!(raw.is_closed().await);
    still_serves(&broker.bootstrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_frame_then_hangup() {
    let broker = Broker::start().await.unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let (_, frame) = raw.frame(12, &MetadataRequest::default());
    raw.write(&frame[..frame.len() / 2]).await;
    drop(raw);
    // A frame whose body ends before its fields do.
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let mut short = BytesMut::new();
    short.put_i32(10);
    short.put_i16(3); // Metadata
    short.put_i16(12);
    short.put_i32(1);
    short.put_i16(200); // client id longer than the frame
    raw.write(&short).await;
    assert!(raw.is_closed().await);
    still_serves(&broker.bootstrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_api_key_and_unsupported_version_close() {
    let broker = Broker::builder().strict(false).start().await.unwrap();
    for (key, version) in [(999i16, 0i16), (0, 2), (1, 99)] {
        let mut raw = Raw::connect(&broker.bootstrap()).await;
        let mut f = BytesMut::new();
        f.put_i32(10);
        f.put_i16(key);
        f.put_i16(version);
        f.put_i32(7);
        f.put_i16(-1);
        raw.write(&f).await;
        assert!(raw.is_closed().await, "api {key} v{version}");
    }
    still_serves(&broker.bootstrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_crc_is_corrupt_message_and_not_stored() {
    let broker = Broker::start().await.unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let mut md = MetadataRequest::default();
    let mut t = kafka_protocol::messages::metadata_request::MetadataRequestTopic::default();
    t.name = Some(TopicName(StrBytes::from_static_str("crc")));
    md.topics = Some(vec![t]);
    md.allow_auto_topic_creation = true;
    raw.send(12, &md).await;
    let mut records =
        BytesMut::from(&batch(&[(Some("k"), Some("value"), 1)], Compression::None)[..]);
    records[20] ^= 0x01; // inside the stored CRC
    let mut pd = PartitionProduceData::default();
    pd.records = Some(records.freeze());
    let mut td = TopicProduceData::default();
    td.name = TopicName(StrBytes::from_static_str("crc"));
    td.partition_data = vec![pd];
    let mut req = ProduceRequest::default();
    req.acks = 1;
    req.topic_data = vec![td];
    let resp = raw.send(11, &req).await;
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, ResponseError::CorruptMessage.code());
    assert_eq!(
        broker.inspect().offsets("crc", 0).unwrap().high_watermark,
        0
    );
    // Same connection goes on working.
    let md = raw.send(12, &md).await;
    assert_eq!(md.topics[0].error_code, 0);
    still_serves(&broker.bootstrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_batch_that_inflates_past_the_limit_is_refused() {
    let broker = Broker::builder()
        .configure(|c| c.max_decompressed_bytes = 64 * 1024)
        .start()
        .await
        .unwrap();
    let b = broker.bootstrap();
    // A compacted topic: the broker decompresses every batch to check its keys.
    common::create_topic(&b, "squeezed", 1, &[("cleanup.policy", "compact")]).await;
    let mut raw = Raw::connect(&b).await;
    let produce = |value: String| {
        let records = batch(&[(Some("k"), Some(value.as_str()), 1)], Compression::Gzip);
        let mut pd = PartitionProduceData::default();
        pd.records = Some(records);
        let mut td = TopicProduceData::default();
        td.name = TopicName(StrBytes::from_static_str("squeezed"));
        td.partition_data = vec![pd];
        let mut req = ProduceRequest::default();
        req.acks = 1;
        req.topic_data = vec![td];
        req
    };
    // 200 kB of zeros gzip to a few hundred bytes.
    let big = raw.send(9, &produce("0".repeat(200_000))).await;
    let p = &big.responses[0].partition_responses[0];
    assert_eq!(p.error_code, ResponseError::CorruptMessage.code());
    let message = p.error_message.as_deref().unwrap_or_default();
    assert!(message.contains("more than 65536 bytes"), "{message}");
    let small = raw.send(9, &produce("0".repeat(10_000))).await;
    assert_eq!(small.responses[0].partition_responses[0].error_code, 0);
    still_serves(&b).await;
}

//! Idempotent producers: InitProducerId, duplicate batches answered with their original
//! offset, sequence gaps and stale epochs refused, state kept across a restart.

mod common;

use agentbus_testkit::Broker;
use common::raw::{idempotent_batch, Raw};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{InitProducerIdRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::producer::FutureRecord;
use std::time::Duration;

async fn produce(raw: &mut Raw, records: bytes::Bytes) -> PartitionProduceResponse {
    let mut pd = PartitionProduceData::default();
    pd.records = Some(records);
    let mut td = TopicProduceData::default();
    td.name = TopicName(StrBytes::from_static_str("idem"));
    td.partition_data = vec![pd];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.topic_data = vec![td];
    raw.send(11, &req)
        .await
        .responses
        .remove(0)
        .partition_responses
        .remove(0)
}

async fn init(raw: &mut Raw, version: i16) -> (i64, i16) {
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = None;
    req.transaction_timeout_ms = 60_000;
    let resp = raw.send(version, &req).await;
    assert_eq!(resp.error_code, 0);
    (resp.producer_id.0, resp.producer_epoch)
}

#[tokio::test]
async fn duplicates_gaps_and_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::disk_broker(dir.path()).await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let (pid, epoch) = init(&mut raw, 0).await;
    let (other, _) = init(&mut raw, 4).await;
    assert_ne!(pid, other, "every InitProducerId gets a new id");
    broker.inspect().create_topic("idem", -1).unwrap();

    assert_eq!(
        produce(&mut raw, idempotent_batch(pid, epoch, 0, 3))
            .await
            .base_offset,
        0
    );
    assert_eq!(
        produce(&mut raw, idempotent_batch(pid, epoch, 3, 2))
            .await
            .base_offset,
        3
    );
    let dup = produce(&mut raw, idempotent_batch(pid, epoch, 0, 3)).await;
    assert_eq!(
        (dup.error_code, dup.base_offset),
        (0, 0),
        "a resent batch gets its original offset"
    );
    let gap = produce(&mut raw, idempotent_batch(pid, epoch, 9, 1)).await;
    assert_eq!(
        gap.error_code,
        ResponseError::OutOfOrderSequenceNumber.code()
    );
    let fresh = produce(&mut raw, idempotent_batch(other, 0, 4, 1)).await;
    assert_eq!(
        fresh.error_code,
        ResponseError::OutOfOrderSequenceNumber.code(),
        "a new producer starts at 0"
    );
    assert_eq!(
        produce(&mut raw, idempotent_batch(pid, epoch + 1, 0, 1))
            .await
            .base_offset,
        5
    );
    let stale = produce(&mut raw, idempotent_batch(pid, epoch, 5, 1)).await;
    assert_eq!(stale.error_code, ResponseError::InvalidProducerEpoch.code());
    let hw = |b: &Broker| b.inspect().offsets("idem", 0).unwrap().high_watermark;
    assert_eq!(hw(&broker), 6);

    // Producer state and ids survive a restart: the retry of the last batch is still known.
    broker.shutdown().await;
    let broker = common::disk_broker(dir.path()).await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let dup = produce(&mut raw, idempotent_batch(pid, epoch + 1, 0, 1)).await;
    assert_eq!((dup.error_code, dup.base_offset), (0, 5));
    assert_eq!(
        produce(&mut raw, idempotent_batch(pid, epoch + 1, 1, 1))
            .await
            .base_offset,
        6
    );
    let (after, _) = init(&mut raw, 5).await;
    assert!(after > other, "ids are not reused after a restart");
    assert_eq!(hw(&broker), 7);
}

#[tokio::test]
async fn state_rebuilt_from_log_without_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::disk_broker(dir.path()).await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let (pid, epoch) = init(&mut raw, 3).await;
    broker.inspect().create_topic("idem", -1).unwrap();
    produce(&mut raw, idempotent_batch(pid, epoch, 0, 2)).await;
    // Dropped without a graceful shutdown: no snapshot is written, as after a crash.
    drop(raw);
    broker.crash().await;
    assert!(!dir.path().join("idem-0/producer-state.json").exists());
    let broker = common::disk_broker(dir.path()).await;
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let dup = produce(&mut raw, idempotent_batch(pid, epoch, 0, 2)).await;
    assert_eq!((dup.error_code, dup.base_offset), (0, 0));
    assert_eq!(
        produce(&mut raw, idempotent_batch(pid, epoch, 2, 1))
            .await
            .base_offset,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_idempotent_producer_round_trip() {
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    common::create_topic(&b, "idem-rd", 2, &[]).await;
    let producer = common::producer(
        &b,
        &[("enable.idempotence", "true"), ("compression.type", "lz4")],
    );
    let mut futs = Vec::new();
    for i in 0..2000 {
        let v = format!("v{i}");
        futs.push(
            producer
                .send_result(
                    FutureRecord::to("idem-rd")
                        .key(&format!("k{}", i % 10))
                        .payload(&v),
                )
                .unwrap(),
        );
    }
    for f in futs {
        f.await.unwrap().expect("delivered");
    }
    let consumer = common::consumer(&b, &[]);
    let got = common::consume_all(&consumer, "idem-rd", 2, 2000);
    assert_eq!(got.len(), 2000);
    drop(producer);
    let _ = Duration::ZERO;
}

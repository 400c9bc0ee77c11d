//! Wire-level behaviour checked with a bare client: versions, errors and edge cases that
//! real clients rely on.

mod common;

use agentbus_testkit::Broker;
use bytes::{BufMut, Bytes, BytesMut};
use common::raw::{batch, Raw};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use std::time::{Duration, Instant};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

async fn create(
    raw: &mut Raw,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
    validate_only: bool,
) -> CreatableTopicResult {
    let mut t = CreatableTopic::default();
    t.name = name(topic);
    t.num_partitions = partitions;
    t.replication_factor = -1;
    t.configs = configs
        .iter()
        .map(|(k, v)| {
            let mut c = CreatableTopicConfig::default();
            c.name = StrBytes::from_string(k.to_string());
            c.value = Some(StrBytes::from_string(v.to_string()));
            c
        })
        .collect();
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.validate_only = validate_only;
    req.timeout_ms = 5000;
    raw.send(7, &req).await.topics.remove(0)
}

async fn produce(
    raw: &mut Raw,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> PartitionProduceResponse {
    let mut pd = PartitionProduceData::default();
    pd.index = partition;
    pd.records = Some(records);
    let mut td = TopicProduceData::default();
    td.name = name(topic);
    td.partition_data = vec![pd];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 5000;
    req.topic_data = vec![td];
    raw.send(9, &req)
        .await
        .responses
        .remove(0)
        .partition_responses
        .remove(0)
}

struct FetchArgs {
    offset: i64,
    max_wait_ms: i32,
    min_bytes: i32,
    max_bytes: i32,
    partition_max_bytes: i32,
}

impl Default for FetchArgs {
    fn default() -> Self {
        Self {
            offset: 0,
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: 50 << 20,
            partition_max_bytes: 1 << 20,
        }
    }
}

async fn fetch(raw: &mut Raw, topic: &str, partitions: &[i32], a: FetchArgs) -> Vec<PartitionData> {
    let mut ft = FetchTopic::default();
    ft.topic = name(topic);
    ft.partitions = partitions
        .iter()
        .map(|p| {
            let mut fp = FetchPartition::default();
            fp.partition = *p;
            fp.fetch_offset = a.offset;
            fp.partition_max_bytes = a.partition_max_bytes;
            fp
        })
        .collect();
    let mut req = FetchRequest::default();
    req.max_wait_ms = a.max_wait_ms;
    req.min_bytes = a.min_bytes;
    req.max_bytes = a.max_bytes;
    req.session_epoch = -1;
    req.topics = vec![ft];
    let resp = raw.send(11, &req).await;
    assert_eq!(resp.error_code, 0);
    resp.responses
        .into_iter()
        .flat_map(|t| t.partitions)
        .collect()
}

async fn list_offset(
    raw: &mut Raw,
    version: i16,
    topic: &str,
    timestamp: i64,
) -> ListOffsetsPartitionResponse {
    let mut p = ListOffsetsPartition::default();
    p.partition_index = 0;
    p.timestamp = timestamp;
    let mut t = ListOffsetsTopic::default();
    t.name = name(topic);
    t.partitions = vec![p];
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(-1);
    req.topics = vec![t];
    raw.send(version, &req)
        .await
        .topics
        .remove(0)
        .partitions
        .remove(0)
}

#[tokio::test]
async fn api_versions_above_supported_gets_v0_answer_with_ranges() {
    let broker = Broker::start().await.unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    // ApiVersions v127 with a flexible header: key, version, correlation id, client id, tags.
    let mut body = BytesMut::new();
    body.put_i16(18);
    body.put_i16(127);
    body.put_i32(42);
    body.put_i16(4);
    body.extend_from_slice(b"test");
    body.put_u8(0);
    body.extend_from_slice(b"whatever a future version carries");
    let mut frame = BytesMut::new();
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(&body);
    raw.write(&frame).await;
    let mut resp = raw.read_frame().await.expect("answer");
    let header = ResponseHeader::decode(&mut resp, 0).unwrap();
    assert_eq!(header.correlation_id, 42);
    let body = ApiVersionsResponse::decode(&mut resp, 0).unwrap();
    assert_eq!(body.error_code, code(ResponseError::UnsupportedVersion));
    let av = body.api_keys.iter().find(|k| k.api_key == 18).unwrap();
    assert_eq!((av.min_version, av.max_version), (0, 4));
    // The client can now negotiate down on the same connection.
    let v3 = raw.send(3, &ApiVersionsRequest::default()).await;
    assert_eq!(v3.error_code, 0);
    assert_eq!(v3.api_keys.len(), body.api_keys.len());
    assert!(v3.supported_features.is_empty() && v3.finalized_features_epoch == -1);
}

#[tokio::test]
async fn create_topics_validates_like_kafka() {
    let broker = Broker::start().await.unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let r = create(&mut raw, "dry", 3, &[], true).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.num_partitions, 3);
    assert!(
        broker.inspect().topic("dry").is_none(),
        "validate_only must not create"
    );
    let r = create(&mut raw, "t", -1, &[("retention.ms", "1000")], false).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.num_partitions, 1, "-1 takes num.partitions");
    assert!(!r.topic_id.is_nil());
    let configs = r.configs.unwrap();
    let retention = configs
        .iter()
        .find(|c| c.name.as_str() == "retention.ms")
        .unwrap();
    assert_eq!(retention.value.as_ref().unwrap().as_str(), "1000");
    assert_eq!(retention.config_source, 1, "set at creation: not a default");
    assert_eq!(
        create(&mut raw, "t", 1, &[], false).await.error_code,
        code(ResponseError::TopicAlreadyExists)
    );
    assert_eq!(
        create(&mut raw, "bad/name", 1, &[], false).await.error_code,
        code(ResponseError::InvalidTopicException)
    );
    assert_eq!(
        create(&mut raw, "zero", 0, &[], false).await.error_code,
        code(ResponseError::InvalidPartitions)
    );
    assert_eq!(
        create(&mut raw, "cfg", 1, &[("no.such", "1")], false)
            .await
            .error_code,
        code(ResponseError::InvalidConfig)
    );
    assert_eq!(
        create(&mut raw, "cfg", 1, &[("retention.ms", "soon")], false)
            .await
            .error_code,
        code(ResponseError::InvalidConfig)
    );

    let mut req = CreateTopicsRequest::default();
    for _ in 0..2 {
        let mut t = CreatableTopic::default();
        t.name = name("dup");
        t.num_partitions = 1;
        t.replication_factor = 1;
        req.topics.push(t);
    }
    let resp = raw.send(4, &req).await;
    assert!(resp
        .topics
        .iter()
        .all(|t| t.error_code == code(ResponseError::InvalidRequest)));
    assert!(broker.inspect().topic("dup").is_none());
}

#[tokio::test]
async fn delete_topics_by_name_and_id_and_create_partitions() {
    let broker = Broker::start().await.unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "a", 2, &[], false).await;
    let b_id = create(&mut raw, "b", 1, &[], false).await.topic_id;

    let mut cp =
        kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic::default();
    cp.name = name("a");
    cp.count = 5;
    let mut req = CreatePartitionsRequest::default();
    req.topics = vec![cp.clone()];
    req.validate_only = true;
    assert_eq!(raw.send(3, &req).await.results[0].error_code, 0);
    assert_eq!(broker.inspect().topic("a").unwrap().partitions, 2);
    req.validate_only = false;
    assert_eq!(raw.send(3, &req).await.results[0].error_code, 0);
    assert_eq!(broker.inspect().topic("a").unwrap().partitions, 5);
    cp.count = 4;
    req.topics = vec![cp];
    assert_eq!(
        raw.send(0, &req).await.results[0].error_code,
        code(ResponseError::InvalidPartitions)
    );

    let mut req = DeleteTopicsRequest::default();
    req.topic_names = vec![name("a"), name("missing")];
    let resp = raw.send(4, &req).await;
    assert_eq!(resp.responses[0].error_code, 0);
    assert_eq!(
        resp.responses[1].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
    let mut by_id = kafka_protocol::messages::delete_topics_request::DeleteTopicState::default();
    by_id.topic_id = b_id;
    let mut req = DeleteTopicsRequest::default();
    req.topics = vec![by_id];
    let resp = raw.send(6, &req).await;
    assert_eq!(resp.responses[0].error_code, 0);
    assert_eq!(resp.responses[0].name.as_ref().unwrap().0.as_str(), "b");
    assert!(broker.inspect().topics().is_empty());
}

#[tokio::test]
async fn metadata_auto_create_honours_flag_and_request() {
    let broker = Broker::start().await.unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let mut req = MetadataRequest::default();
    let mut t = MetadataRequestTopic::default();
    t.name = Some(name("auto"));
    req.topics = Some(vec![t]);
    req.allow_auto_topic_creation = false;
    let resp = raw.send(12, &req).await;
    assert_eq!(
        resp.topics[0].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
    req.allow_auto_topic_creation = true;
    let resp = raw.send(12, &req).await;
    assert_eq!(resp.topics[0].error_code, 0);
    assert!(!resp.topics[0].topic_id.is_nil());
    assert!(
        resp.brokers.iter().any(|b| b.node_id == resp.controller_id),
        "controller must be a listed broker"
    );
    let p = &resp.topics[0].partitions[0];
    assert_eq!((p.leader_id, p.leader_epoch), (resp.brokers[0].node_id, 0));
    // v0: an empty list means all topics.
    let mut v0 = MetadataRequest::default();
    v0.topics = Some(vec![]);
    let all = raw.send(0, &v0).await;
    assert_eq!(all.topics.len(), 1);

    let off = Broker::builder()
        .auto_create_topics(false)
        .start()
        .await
        .unwrap();
    let mut raw = Raw::connect(&off.bootstrap()).await;
    let resp = raw.send(12, &req).await;
    assert_eq!(
        resp.topics[0].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );
}

#[tokio::test]
async fn produce_rejects_bad_batches_per_topic_limits() {
    let broker = Broker::start().await.unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "small", 1, &[("max.message.bytes", "200")], false).await;
    create(
        &mut raw,
        "compact",
        1,
        &[("cleanup.policy", "compact")],
        false,
    )
    .await;

    let mut corrupt = BytesMut::from(&batch(&[(Some("k"), Some("v"), 1)], Compression::None)[..]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x55;
    assert_eq!(
        produce(&mut raw, "small", 0, corrupt.freeze())
            .await
            .error_code,
        code(ResponseError::CorruptMessage)
    );

    let big = "x".repeat(300);
    let r = produce(
        &mut raw,
        "small",
        0,
        batch(&[(Some("k"), Some(&big), 1)], Compression::None),
    )
    .await;
    assert_eq!(r.error_code, code(ResponseError::MessageTooLarge));
    assert!(r.error_message.unwrap().contains("max.message.bytes"));
    assert_eq!(
        produce(
            &mut raw,
            "small",
            0,
            batch(&[(Some("k"), Some("ok"), 1)], Compression::None)
        )
        .await
        .error_code,
        0
    );

    let r = produce(
        &mut raw,
        "compact",
        0,
        batch(
            &[(Some("k"), Some("v"), 1), (None, Some("v"), 2)],
            Compression::Gzip,
        ),
    )
    .await;
    assert_eq!(r.error_code, code(ResponseError::InvalidRecord));
    assert_eq!(
        produce(
            &mut raw,
            "compact",
            0,
            batch(&[(Some("k"), Some("v"), 1)], Compression::Gzip)
        )
        .await
        .error_code,
        0
    );

    let r = produce(
        &mut raw,
        "missing",
        0,
        batch(&[(None, Some("v"), 1)], Compression::None),
    )
    .await;
    assert_eq!(r.error_code, code(ResponseError::UnknownTopicOrPartition));
    // Nothing rejected was stored.
    assert_eq!(
        broker.inspect().offsets("small", 0).unwrap().high_watermark,
        1
    );
}

#[tokio::test]
async fn log_append_time_topics_get_broker_timestamps() {
    let broker = Broker::start().await.unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(
        &mut raw,
        "lat",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
        false,
    )
    .await;
    let r = produce(
        &mut raw,
        "lat",
        0,
        batch(
            &[(None, Some("v"), 5), (None, Some("w"), 6)],
            Compression::Lz4,
        ),
    )
    .await;
    assert!(r.log_append_time_ms > 1_600_000_000_000);
    let parts = fetch(&mut raw, "lat", &[0], FetchArgs::default()).await;
    let mut records = parts[0].records.clone().unwrap();
    // Kafka marks the batch and sets its max timestamp; clients give every record that time.
    let max_ts = i64::from_be_bytes(records[35..43].try_into().unwrap());
    assert_eq!(max_ts, r.log_append_time_ms);
    let set = RecordBatchDecoder::decode(&mut records).unwrap();
    assert_eq!(set.records.len(), 2);
    assert!(set
        .records
        .iter()
        .all(|rec| rec.timestamp_type == kafka_protocol::records::TimestampType::LogAppend));
}

#[tokio::test]
async fn acks_zero_gets_no_response() {
    let broker = Broker::start().await.unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "z", 1, &[], false).await;
    let mut pd = PartitionProduceData::default();
    pd.records = Some(batch(&[(None, Some("v"), 1)], Compression::None));
    let mut td = TopicProduceData::default();
    td.name = name("z");
    td.partition_data = vec![pd];
    let mut req = ProduceRequest::default();
    req.acks = 0;
    req.topic_data = vec![td];
    let (_, frame) = raw.frame(9, &req);
    raw.write(&frame).await;
    // The next response on the wire answers the next request.
    let mut all = MetadataRequest::default();
    all.topics = None;
    let md = raw.send(12, &all).await;
    assert_eq!(md.topics.len(), 1);
    assert_eq!(broker.inspect().offsets("z", 0).unwrap().high_watermark, 1);
}

#[tokio::test]
async fn list_offsets_by_timestamp_latest_earliest_and_max() {
    let broker = Broker::start().await.unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "ts", 1, &[], false).await;
    produce(
        &mut raw,
        "ts",
        0,
        batch(
            &[(None, Some("a"), 100), (None, Some("b"), 200)],
            Compression::None,
        ),
    )
    .await;
    produce(
        &mut raw,
        "ts",
        0,
        batch(
            &[
                (None, Some("c"), 300),
                (None, Some("d"), 900),
                (None, Some("e"), 400),
            ],
            Compression::Zstd,
        ),
    )
    .await;
    let at = |r: ListOffsetsPartitionResponse| (r.offset, r.timestamp);
    assert_eq!(
        at(list_offset(&mut raw, 8, "ts", -1).await).0,
        5,
        "latest is the offset after the last record"
    );
    assert_eq!(at(list_offset(&mut raw, 8, "ts", -2).await).0, 0);
    assert_eq!(
        at(list_offset(&mut raw, 8, "ts", 150).await),
        (1, 200),
        "first offset with timestamp >= target"
    );
    assert_eq!(at(list_offset(&mut raw, 8, "ts", 200).await), (1, 200));
    assert_eq!(
        at(list_offset(&mut raw, 8, "ts", 350).await),
        (3, 900),
        "inside a compressed batch"
    );
    assert_eq!(at(list_offset(&mut raw, 8, "ts", 901).await), (-1, -1));
    assert_eq!(
        at(list_offset(&mut raw, 8, "ts", -3).await),
        (3, 900),
        "max timestamp"
    );
    assert_eq!(at(list_offset(&mut raw, 1, "ts", -1).await).0, 5);
}

#[tokio::test]
async fn fetch_returns_whole_batches_within_byte_limits() {
    let broker = Broker::start().await.unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "f", 2, &[], false).await;
    let mut sizes = Vec::new();
    let long = "v".repeat(100);
    for i in 0..10 {
        let b = batch(
            &[(None, Some(long.as_str()), i), (None, Some("w"), i)],
            Compression::None,
        );
        sizes.push(b.len());
        produce(&mut raw, "f", 0, b).await;
    }
    produce(
        &mut raw,
        "f",
        1,
        batch(&[(None, Some("p1"), 1)], Compression::None),
    )
    .await;
    // From the middle of a batch: that whole batch comes back.
    let parts = fetch(
        &mut raw,
        "f",
        &[0],
        FetchArgs {
            offset: 3,
            ..Default::default()
        },
    )
    .await;
    let data = parts[0].records.clone().unwrap();
    assert_eq!(i64::from_be_bytes(data[0..8].try_into().unwrap()), 2);
    assert_eq!(parts[0].high_watermark, 20);
    // max_bytes below one batch: still exactly one batch (KIP-74), and nothing from partition 1.
    let parts = fetch(
        &mut raw,
        "f",
        &[0, 1],
        FetchArgs {
            max_bytes: 10,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(parts[0].records.as_ref().unwrap().len(), sizes[0]);
    assert!(parts[1].records.as_ref().unwrap().is_empty());
    // partition_max_bytes of three batches.
    let limit = (sizes[0] * 3) as i32;
    let parts = fetch(
        &mut raw,
        "f",
        &[0],
        FetchArgs {
            partition_max_bytes: limit,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(parts[0].records.as_ref().unwrap().len(), sizes[0] * 3);
    // Out of range.
    let parts = fetch(
        &mut raw,
        "f",
        &[0],
        FetchArgs {
            offset: 21,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(parts[0].error_code, code(ResponseError::OffsetOutOfRange));
}

#[tokio::test]
async fn fetch_long_poll_wakes_on_produce() {
    let broker = Broker::start().await.unwrap();
    let bootstrap = broker.bootstrap();
    let mut raw = Raw::connect(&bootstrap).await;
    create(&mut raw, "lp", 1, &[], false).await;
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut raw = Raw::connect(&bootstrap).await;
        produce(
            &mut raw,
            "lp",
            0,
            batch(&[(None, Some("wake"), 1)], Compression::None),
        )
        .await;
    });
    let started = Instant::now();
    let parts = fetch(
        &mut raw,
        "lp",
        &[0],
        FetchArgs {
            max_wait_ms: 20_000,
            min_bytes: 1,
            ..Default::default()
        },
    )
    .await;
    assert!(
        !parts[0].records.as_ref().unwrap().is_empty(),
        "fetch returned the new data"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "woke on data, not at max_wait"
    );
    writer.await.unwrap();
    // With no data, min_bytes=1 waits out max_wait and returns empty.
    let parts = fetch(
        &mut raw,
        "lp",
        &[0],
        FetchArgs {
            offset: 1,
            max_wait_ms: 200,
            min_bytes: 1,
            ..Default::default()
        },
    )
    .await;
    assert!(parts[0].records.as_ref().unwrap().is_empty());
}

#[tokio::test]
async fn fetch_sessions_are_declined() {
    let broker = Broker::start().await.unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "s", 1, &[], false).await;
    let mut req = FetchRequest::default();
    req.session_id = 0;
    req.session_epoch = 0; // asks for a new session
    let resp = raw.send(12, &req).await;
    assert_eq!(
        (resp.error_code, resp.session_id),
        (0, 0),
        "no session created: client stays on full fetches"
    );
    req.session_id = 12345;
    req.session_epoch = 1;
    let resp = raw.send(12, &req).await;
    assert_eq!(resp.error_code, code(ResponseError::FetchSessionIdNotFound));
}

#[tokio::test]
async fn fetch_by_topic_id_and_read_committed_aborted_list() {
    let broker = Broker::start().await.unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let id = create(&mut raw, "tid", 1, &[], false).await.topic_id;
    produce(
        &mut raw,
        "tid",
        0,
        batch(&[(None, Some("v"), 1)], Compression::None),
    )
    .await;
    let mut fp = FetchPartition::default();
    fp.partition_max_bytes = 1 << 20;
    let mut ft = FetchTopic::default();
    ft.topic_id = id;
    ft.partitions = vec![fp];
    let mut req = FetchRequest::default();
    req.isolation_level = 1;
    req.max_bytes = 1 << 20;
    req.session_epoch = -1;
    req.topics = vec![ft.clone()];
    let resp = raw.send(17, &req).await;
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!((p.high_watermark, p.last_stable_offset), (1, 1));
    assert_eq!(
        p.aborted_transactions.as_deref(),
        Some(&[][..]),
        "an empty list, not null"
    );
    ft.topic_id = uuid_of(7);
    req.topics = vec![ft];
    let resp = raw.send(13, &req).await;
    assert_eq!(
        resp.responses[0].partitions[0].error_code,
        code(ResponseError::UnknownTopicId)
    );
}

fn uuid_of(n: u8) -> uuid::Uuid {
    uuid::Uuid::from_bytes([n; 16])
}

#[tokio::test]
async fn offset_for_leader_epoch_and_fencing() {
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    let broker = Broker::start().await.unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    create(&mut raw, "e", 1, &[], false).await;
    produce(
        &mut raw,
        "e",
        0,
        batch(
            &[(None, Some("a"), 1), (None, Some("b"), 2)],
            Compression::None,
        ),
    )
    .await;
    let ask = |current: i32, epoch: i32| {
        let mut p = OffsetForLeaderPartition::default();
        p.current_leader_epoch = current;
        p.leader_epoch = epoch;
        let mut t = OffsetForLeaderTopic::default();
        t.topic = name("e");
        t.partitions = vec![p];
        let mut req = OffsetForLeaderEpochRequest::default();
        req.replica_id = BrokerId(-1);
        req.topics = vec![t];
        req
    };
    let r = raw
        .send(4, &ask(0, 0))
        .await
        .topics
        .remove(0)
        .partitions
        .remove(0);
    assert_eq!((r.error_code, r.leader_epoch, r.end_offset), (0, 0, 2));
    let r = raw
        .send(3, &ask(-1, 5))
        .await
        .topics
        .remove(0)
        .partitions
        .remove(0);
    assert_eq!(
        (r.leader_epoch, r.end_offset),
        (0, 2),
        "a later epoch maps to the latest known"
    );
    let r = raw
        .send(2, &ask(3, 0))
        .await
        .topics
        .remove(0)
        .partitions
        .remove(0);
    assert_eq!(r.error_code, code(ResponseError::UnknownLeaderEpoch));
}

#[tokio::test]
async fn a_fetch_asking_for_gigabytes_gets_at_most_fetch_max_bytes() {
    let broker = Broker::builder()
        .configure(|c| c.fetch_max_bytes = 64 * 1024)
        .start()
        .await
        .unwrap();
    common::create_topic(&broker.bootstrap(), "big-fetch", 1, &[]).await;
    let producer = common::producer(&broker.bootstrap(), &[("linger.ms", "0")]);
    let value = "x".repeat(20_000);
    for i in 0..10 {
        producer
            .send(
                rdkafka::producer::FutureRecord::<str, str>::to("big-fetch")
                    .key(&i.to_string())
                    .payload(&value),
                Duration::from_secs(10),
            )
            .await
            .expect("produce");
    }
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let args = FetchArgs {
        max_bytes: i32::MAX,
        partition_max_bytes: i32::MAX,
        ..FetchArgs::default()
    };
    let parts = fetch(&mut raw, "big-fetch", &[0], args).await;
    let bytes = parts[0].records.as_ref().map_or(0, |r| r.len());
    assert!(bytes > 0, "the first batches still come");
    assert!(bytes <= 64 * 1024, "{bytes} bytes in one response");
}

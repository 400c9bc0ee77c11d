//! Per-record produce errors (KIP-467) and timestamp bounds (KIP-937), as librdkafka
//! sees them: only the bad records fail with the broker's reason; the others of their
//! batch fail as `_INVALID_DIFFERENT_RECORD`, and sent again they are stored.

mod common;

use agentbus_testkit::{Broker, Inspect};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Sends every `(key, timestamp)` at once (one batch), returns each one's error code.
async fn send_batch(
    producer: &FutureProducer,
    topic: &str,
    records: &[(Option<String>, Option<i64>)],
) -> Vec<Option<RDKafkaErrorCode>> {
    let futures: Vec<_> = records
        .iter()
        .enumerate()
        .map(|(i, (key, ts))| {
            let value = format!("v{i}");
            let mut r = FutureRecord::<String, String>::to(topic)
                .partition(0)
                .payload(&value);
            if let Some(k) = key {
                r = r.key(k);
            }
            if let Some(ts) = ts {
                r = r.timestamp(*ts);
            }
            producer
                .send_result(r)
                .unwrap_or_else(|(e, _)| panic!("enqueue: {e}"))
        })
        .collect();
    let mut out = Vec::new();
    for f in futures {
        out.push(match f.await.expect("delivery report") {
            Ok(_) => None,
            Err((KafkaError::MessageProduction(code), _)) => Some(code),
            Err((e, _)) => panic!("unexpected error {e}"),
        });
    }
    out
}

fn batching_producer(bootstrap: &str) -> FutureProducer {
    common::producer(
        bootstrap,
        &[
            ("linger.ms", "500"),
            ("batch.num.messages", "10000"),
            ("enable.idempotence", "false"),
            ("acks", "all"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_records_fail_alone_and_the_rest_of_their_batch_is_sent_again() {
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    common::create_topic(&b, "compact", 1, &[("cleanup.policy", "compact")]).await;
    let producer = batching_producer(&b);
    let key = |i: usize| (i % 10 != 3).then(|| format!("k{i}"));
    let records: Vec<_> = (0..100).map(|i| (key(i), None)).collect();
    let results = send_batch(&producer, "compact", &records).await;
    for (i, r) in results.iter().enumerate() {
        let want = if key(i).is_none() {
            RDKafkaErrorCode::InvalidRecord
        } else {
            RDKafkaErrorCode::InvalidDifferentRecord
        };
        assert_eq!(*r, Some(want), "record {i}");
    }
    assert_eq!(
        broker.offsets("compact", 0),
        Some((0, 0, 0)),
        "nothing stored"
    );

    let again: Vec<_> = (0..100)
        .filter_map(|i| key(i).map(|k| (Some(k), None)))
        .collect();
    let results = send_batch(&producer, "compact", &again).await;
    assert!(results.iter().all(Option::is_none), "{results:?}");
    let stored: Vec<Option<Vec<u8>>> = broker
        .records("compact", 0)
        .into_iter()
        .map(|(_, k, _)| k)
        .collect();
    let want: Vec<Option<Vec<u8>>> = again
        .iter()
        .map(|(k, _)| k.clone().map(String::into_bytes))
        .collect();
    assert_eq!(stored.len(), 90);
    assert_eq!(stored, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_beyond_the_bounds_fail_with_invalid_timestamp() {
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    common::create_topic(
        &b,
        "bounded",
        1,
        &[("message.timestamp.before.max.ms", "60000")],
    )
    .await;
    let producer = batching_producer(&b);
    let now = chrono::Utc::now().timestamp_millis();
    let hour = 3_600_000;
    // In bounds; two hours ahead (past the default after.max.ms of one hour); an hour old
    // (past this topic's before.max.ms of a minute).
    let records = [
        (Some("a".to_string()), Some(now)),
        (Some("b".to_string()), Some(now + 2 * hour)),
        (Some("c".to_string()), Some(now - hour)),
    ];
    let results = send_batch(&producer, "bounded", &records).await;
    assert_eq!(
        results,
        vec![
            Some(RDKafkaErrorCode::InvalidDifferentRecord),
            Some(RDKafkaErrorCode::InvalidRecord),
            Some(RDKafkaErrorCode::InvalidRecord),
        ]
    );
    // One bad record alone fails with the partition's error, INVALID_TIMESTAMP.
    let results = send_batch(&producer, "bounded", &records[1..2]).await;
    assert_eq!(results, vec![Some(RDKafkaErrorCode::InvalidTimestamp)]);
    let results = send_batch(&producer, "bounded", &records[..1]).await;
    assert_eq!(results, vec![None]);
}

//! The disk backend behind a running broker: background retention, reads across segments.

mod common;

use agentbus_testkit::Broker;
use rdkafka::producer::FutureRecord;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_runs_in_the_background_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::builder()
        .data_dir(dir.path())
        .configure(|c| c.retention_check_interval = Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let b = broker.bootstrap();
    common::create_topic(
        &b,
        "ret",
        1,
        &[("segment.bytes", "4096"), ("retention.bytes", "8192")],
    )
    .await;
    let producer = common::producer(&b, &[("linger.ms", "0"), ("batch.num.messages", "1")]);
    let value = "v".repeat(500);
    for i in 0..200 {
        producer
            .send(
                FutureRecord::to("ret").key(&i.to_string()).payload(&value),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    let partition = broker.inspect().clone();
    let offsets = move || partition.offsets("ret", 0).unwrap();
    let segments = || {
        std::fs::read_dir(dir.path().join("ret-0"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "log")
            })
            .count()
    };
    // Retention may already have run while the records were still arriving; wait until a
    // pass after the last of them has settled the log (no change over five check intervals),
    // so that it does not move under the consumer below.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut seen, mut since) = (offsets().log_start, Instant::now());
    loop {
        let start = offsets().log_start;
        if start != seen {
            (seen, since) = (start, Instant::now());
        }
        let settled = since.elapsed() > Duration::from_millis(500);
        if settled && start > 100 && segments() <= 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention never caught up: start {start}, {} segments",
            segments()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let offsets = offsets();
    assert_eq!(offsets.high_watermark, 200);
    // A consumer from the beginning starts at the new log start offset.
    let consumer = common::consumer(&b, &[("auto.offset.reset", "earliest")]);
    let got = common::consume_all(&consumer, "ret", 1, (200 - offsets.log_start) as usize);
    assert_eq!(got[0].offset(), offsets.log_start);
    use rdkafka::message::Message;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_segments_read_back_in_order_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::disk_broker(dir.path()).await;
    let b = broker.bootstrap();
    common::create_topic(&b, "segs", 2, &[("segment.bytes", "16384")]).await;
    let producer = common::producer(&b, &[("compression.type", "zstd")]);
    let mut futs = Vec::new();
    for i in 0..5000 {
        let v = format!("value-{i}-{}", "p".repeat(i % 200));
        futs.push(
            producer
                .send_result(
                    FutureRecord::to("segs")
                        .key(&format!("{}", i % 13))
                        .payload(&v),
                )
                .unwrap(),
        );
    }
    for f in futs {
        f.await.unwrap().unwrap();
    }
    drop(producer);
    broker.shutdown().await;
    let broker = common::disk_broker(dir.path()).await;
    let consumer = common::consumer(&broker.bootstrap(), &[]);
    let got = common::consume_all(&consumer, "segs", 2, 5000);
    use rdkafka::message::Message;
    for p in 0..2 {
        let offsets: Vec<i64> = got
            .iter()
            .filter(|m| m.partition() == p)
            .map(|m| m.offset())
            .collect();
        assert_eq!(offsets, (0..offsets.len() as i64).collect::<Vec<_>>());
    }
}

//! Log compaction (`cleanup.policy=compact`), on both storage backends.

mod common;

use agentbus_testkit::{Broker, Inspect};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use std::collections::BTreeMap;
use std::time::Duration;

async fn compacts(broker: &Broker) -> BTreeMap<String, (i64, String)> {
    let b = broker.bootstrap();
    let p = common::producer(&b, &[("compression.type", "lz4"), ("linger.ms", "20")]);
    let mut futs = Vec::new();
    for round in 0..5 {
        for k in 0..4 {
            let v = format!("k{k}-round{round}");
            futs.push(
                p.send_result(
                    FutureRecord::to("state")
                        .partition(0)
                        .key(&format!("k{k}"))
                        .payload(&v),
                )
                .unwrap(),
            );
        }
    }
    for f in futs {
        f.await.unwrap().unwrap();
    }
    // One more record after those: on disk it rolls a new active segment (they filled
    // more than `segment.bytes`), which compaction never touches, as in Kafka.
    p.send(
        FutureRecord::to("state")
            .partition(0)
            .key("last")
            .payload("x"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let before = broker.records("state", 0);
    assert_eq!(before.len(), 21);
    broker.compact();
    let after = broker.records("state", 0);
    assert_eq!(after.len(), 5, "one record per key: {after:?}");
    let latest: BTreeMap<String, (i64, String)> = after
        .iter()
        .map(|(o, k, v)| {
            (
                String::from_utf8(k.clone().unwrap()).unwrap(),
                (*o, String::from_utf8(v.clone().unwrap()).unwrap()),
            )
        })
        .collect();
    for k in 0..4 {
        assert_eq!(latest[&format!("k{k}")].1, format!("k{k}-round4"));
    }
    assert_eq!(
        broker.offsets("state", 0).unwrap().1,
        21,
        "the log end stays"
    );
    // A consumer from the beginning reads the latest values at their original offsets.
    let consumer = common::consumer(&b, &[]);
    let got = tokio::task::block_in_place(|| common::consume_all(&consumer, "state", 1, 5));
    for m in got {
        let k = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
        assert_eq!(latest[&k].0, m.offset());
    }
    latest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_the_latest_record_per_key_in_memory() {
    let broker = Broker::start().await.unwrap();
    common::create_topic(
        &broker.bootstrap(),
        "state",
        1,
        &[("cleanup.policy", "compact")],
    )
    .await;
    compacts(&broker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_on_disk_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::disk_broker(dir.path()).await;
    common::create_topic(
        &broker.bootstrap(),
        "state",
        1,
        &[("cleanup.policy", "compact"), ("segment.bytes", "300")],
    )
    .await;
    let latest = compacts(&broker).await;
    broker.shutdown().await;
    let broker = common::disk_broker(dir.path()).await;
    let after: Vec<_> = broker
        .records("state", 0)
        .into_iter()
        .map(|(o, _, _)| o)
        .collect();
    let mut want: Vec<i64> = latest.values().map(|(o, _)| *o).collect();
    want.sort();
    assert_eq!(after, want);
    let p = common::producer(&broker.bootstrap(), &[]);
    let d = p
        .send(
            FutureRecord::to("state")
                .partition(0)
                .key("k9")
                .payload("new"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(
        d.offset, 21,
        "offsets continue after compaction and restart"
    );
}

//! Transactions with real clients: commit and abort visibility, interleaved producers,
//! consume-transform-produce across a crash, zombie fencing, timeouts across a restart.

mod common;

use agentbus_testkit::Broker;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

fn txn_producer(bootstrap: &str, id: &str) -> FutureProducer {
    let p = common::producer(
        bootstrap,
        &[
            ("transactional.id", id),
            ("transaction.timeout.ms", "10000"),
            ("message.timeout.ms", "10000"),
        ],
    );
    p.init_transactions(T).expect("init_transactions");
    p
}

async fn send(p: &FutureProducer, topic: &str, partition: i32, value: &str) {
    p.send(
        FutureRecord::to(topic)
            .partition(partition)
            .key("k")
            .payload(value),
        T,
    )
    .await
    .expect("delivered");
}

/// Everything readable at `isolation`, as (partition, offset, value), by reading to the end
/// (the LSO for read_committed).
fn read_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    isolation: &str,
) -> Vec<(i32, i64, String)> {
    let c: BaseConsumer = common::consumer(
        bootstrap,
        &[
            ("isolation.level", isolation),
            ("enable.partition.eof", "true"),
        ],
    );
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut eof = std::collections::HashSet::new();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while eof.len() < partitions as usize {
        assert!(Instant::now() < deadline, "timed out reading {topic}");
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push((
                m.partition(),
                m.offset(),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string(),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
    out
}

fn values(records: &[(i32, i64, String)]) -> Vec<&str> {
    records.iter().map(|(_, _, v)| v.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_abort_and_interleaved_producers() {
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    common::create_topic(&b, "tx", 1, &[]).await;
    let p = txn_producer(&b, "tx-a");
    p.begin_transaction().unwrap();
    send(&p, "tx", 0, "committed-1").await;
    send(&p, "tx", 0, "committed-2").await;
    p.commit_transaction(T).unwrap();
    p.begin_transaction().unwrap();
    send(&p, "tx", 0, "aborted-1").await;
    p.abort_transaction(T).unwrap();
    assert_eq!(
        values(&read_all(&b, "tx", 1, "read_committed")),
        ["committed-1", "committed-2"]
    );
    assert_eq!(
        values(&read_all(&b, "tx", 1, "read_uncommitted")),
        ["committed-1", "committed-2", "aborted-1"]
    );

    // Two producers interleave on one partition; one commits, one aborts, one stays open.
    let q = txn_producer(&b, "tx-b");
    p.begin_transaction().unwrap();
    q.begin_transaction().unwrap();
    for i in 0..5 {
        send(&p, "tx", 0, &format!("p-{i}")).await;
        send(&q, "tx", 0, &format!("q-{i}")).await;
    }
    q.abort_transaction(T).unwrap();
    let open = txn_producer(&b, "tx-open");
    open.begin_transaction().unwrap();
    send(&open, "tx", 0, "open-0").await;
    p.commit_transaction(T).unwrap();
    let committed = read_all(&b, "tx", 1, "read_committed");
    assert_eq!(
        values(&committed),
        [
            "committed-1",
            "committed-2",
            "p-0",
            "p-1",
            "p-2",
            "p-3",
            "p-4"
        ],
        "only committed records, nothing past the open transaction"
    );
    assert!(
        committed.windows(2).all(|w| w[0].1 < w[1].1),
        "offset order"
    );
    let partition = broker.inspect().clone();
    let offsets_now = move || partition.offsets("tx", 0).unwrap();
    let offsets = offsets_now();
    assert!(
        offsets.last_stable < offsets.high_watermark,
        "LSO below HW while a transaction is open"
    );
    open.commit_transaction(T).unwrap();
    assert_eq!(offsets_now().last_stable, offsets_now().high_watermark);
    assert_eq!(
        values(&read_all(&b, "tx", 1, "read_committed")).last(),
        Some(&"open-0")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zombie_is_fenced_and_its_transaction_aborted() {
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    common::create_topic(&b, "z", 2, &[]).await;
    let zombie = txn_producer(&b, "same-id");
    zombie.begin_transaction().unwrap();
    send(&zombie, "z", 0, "zombie-1").await;
    let successor = txn_producer(&b, "same-id");
    // The zombie's open transaction was aborted by the successor's init.
    assert!(read_all(&b, "z", 2, "read_committed").is_empty());
    let late = zombie
        .send(
            FutureRecord::to("z")
                .partition(1)
                .key("k")
                .payload("zombie-2"),
            Duration::from_secs(5),
        )
        .await;
    let commit = zombie.commit_transaction(Duration::from_secs(5));
    assert!(
        late.is_err() || commit.is_err(),
        "the zombie cannot complete its transaction"
    );
    if let Err(e) = commit {
        let text = e.to_string().to_lowercase();
        assert!(
            text.contains("fenc") || text.contains("epoch"),
            "a fencing error: {e}"
        );
    }
    successor.begin_transaction().unwrap();
    send(&successor, "z", 1, "successor").await;
    successor.commit_transaction(T).unwrap();
    assert_eq!(
        values(&read_all(&b, "z", 2, "read_committed")),
        ["successor"]
    );
}

/// Copies `input` to `output` upper-cased, in transactions of `batch` records with the
/// consumed offsets; stops without committing after `crash_after` records (a crash).
async fn transform(b: &str, crash_after: Option<usize>, batch: usize) -> usize {
    let consumer: BaseConsumer = common::consumer(
        b,
        &[
            ("group.id", "transformer"),
            ("isolation.level", "read_committed"),
            ("auto.offset.reset", "earliest"),
        ],
    );
    consumer.subscribe(&["input"]).unwrap();
    let producer = txn_producer(b, "transformer-0");
    let mut done = 0;
    let mut idle = Instant::now();
    loop {
        producer.begin_transaction().unwrap();
        let mut offsets: BTreeMap<i32, i64> = BTreeMap::new();
        while offsets.values().count() < batch && idle.elapsed() < Duration::from_secs(3) {
            let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            idle = Instant::now();
            let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_uppercase();
            producer
                .send(
                    FutureRecord::to("output")
                        .partition(m.partition())
                        .key("k")
                        .payload(&v),
                    T,
                )
                .await
                .expect("output");
            offsets.insert(m.partition(), m.offset() + 1);
            done += 1;
            if crash_after == Some(done) {
                return done; // no commit, no abort: the process is gone
            }
        }
        if offsets.is_empty() {
            producer.abort_transaction(T).unwrap();
            return done;
        }
        let mut tpl = TopicPartitionList::new();
        for (p, o) in &offsets {
            tpl.add_partition_offset("input", *p, Offset::Offset(*o))
                .unwrap();
        }
        producer
            .send_offsets_to_transaction(&tpl, &consumer.group_metadata().unwrap(), T)
            .unwrap();
        producer.commit_transaction(T).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_transform_produce_survives_a_crash() {
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    common::create_topic(&b, "input", 2, &[]).await;
    common::create_topic(&b, "output", 2, &[]).await;
    let p = common::producer(&b, &[]);
    for i in 0..300 {
        p.send(
            FutureRecord::to("input")
                .partition(i % 2)
                .key("k")
                .payload(&format!("rec-{i}")),
            T,
        )
        .await
        .unwrap();
    }
    transform(&b, Some(170), 50).await;
    transform(&b, None, 50).await;
    let out = read_all(&b, "output", 2, "read_committed");
    let mut got: Vec<&str> = values(&out);
    got.sort();
    let mut want: Vec<String> = (0..300).map(|i| format!("REC-{i}")).collect();
    want.sort();
    assert_eq!(
        got,
        want.iter().map(String::as_str).collect::<Vec<_>>(),
        "each input's output exactly once"
    );
    let uncommitted = read_all(&b, "output", 2, "read_uncommitted");
    assert!(
        uncommitted.len() > 300,
        "the crashed transaction's records are in the log, aborted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_transaction_times_out_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::disk_broker(dir.path()).await;
    let b = broker.bootstrap();
    common::create_topic(&b, "r", 1, &[]).await;
    let p = common::producer(
        &b,
        &[
            ("transactional.id", "restart"),
            ("transaction.timeout.ms", "3000"),
            ("message.timeout.ms", "3000"),
        ],
    );
    p.init_transactions(T).unwrap();
    p.begin_transaction().unwrap();
    send(&p, "r", 0, "kept").await;
    p.commit_transaction(T).unwrap();
    p.begin_transaction().unwrap();
    send(&p, "r", 0, "left-open").await;
    drop(p);
    broker.shutdown().await;

    let broker = common::disk_broker(dir.path()).await;
    let b = broker.bootstrap();
    let partition = broker.inspect().clone();
    let offsets = move || partition.offsets("r", 0).unwrap();
    assert!(
        offsets().last_stable < offsets().high_watermark,
        "still open after the restart"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while offsets().last_stable < offsets().high_watermark {
        assert!(Instant::now() < deadline, "the transaction never timed out");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(values(&read_all(&b, "r", 1, "read_committed")), ["kept"]);
    let state = broker.inspect().transaction("restart").unwrap();
    assert_eq!(state.state, "CompleteAbort");
    // The next incarnation works normally.
    let p = txn_producer(&b, "restart");
    p.begin_transaction().unwrap();
    send(&p, "r", 0, "after").await;
    p.commit_transaction(T).unwrap();
    assert_eq!(
        values(&read_all(&b, "r", 1, "read_committed")),
        ["kept", "after"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_timeout_is_validated() {
    let broker = Broker::builder()
        .configure(|c| c.transaction_max_timeout_ms = 60_000)
        .start()
        .await
        .unwrap();
    let p = common::producer(
        &broker.bootstrap(),
        &[
            ("transactional.id", "too-long"),
            ("transaction.timeout.ms", "120000"),
        ],
    );
    let err = p.init_transactions(T).unwrap_err();
    assert!(err.to_string().to_lowercase().contains("timeout"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_kafka_python_transactions() {
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(format!(
                "{}/tests/python/confluent_transactions.py",
                env!("CARGO_MANIFEST_DIR")
            ))
            .arg(&b)
            .output()
            .expect("python3")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("transactions: ok"),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn every_advertised_version_of_init_producer_id_and_end_txn_works() {
    use common::raw::Raw;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    let broker = Broker::start().await.unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    for version in 0..=5i16 {
        let id = format!("v{version}");
        let mut init = InitProducerIdRequest::default();
        init.transactional_id = Some(TransactionalId(StrBytes::from_string(id.clone())));
        init.transaction_timeout_ms = 30_000;
        let r = raw.send(version, &init).await;
        assert_eq!(r.error_code, 0, "InitProducerId v{version}");
        if version <= 4 {
            // Aborting with nothing added is accepted at every EndTxn version.
            let mut end = EndTxnRequest::default();
            end.transactional_id = TransactionalId(StrBytes::from_string(id));
            end.producer_id = r.producer_id;
            end.producer_epoch = r.producer_epoch;
            end.committed = false;
            assert_eq!(
                raw.send(version, &end).await.error_code,
                0,
                "EndTxn v{version}"
            );
        }
    }
}

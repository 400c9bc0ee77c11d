//! The runtime against a sink that keeps its offsets in memory, where the test can see
//! every write: an incremental revoke settles only the revoked partitions, and a sink
//! that stores its own offsets is never started at Kafka's committed ones.

mod common;

use agentbus_client::Topic;
use agentbus_consumers::sink::{
    Batch, Sink, SinkError, StoredOffset, TopicPartition, WriteOutcome,
};
use agentbus_consumers::{RuntimeConfig, Service};
use agentbus_testkit::Broker;
use common::db_writer as dbw;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 6;

#[derive(Debug, Default)]
struct State {
    offsets: BTreeMap<TopicPartition, i64>,
    /// The partitions each write applied, by the member that wrote it.
    writes: Vec<(&'static str, BTreeSet<TopicPartition>)>,
    events: u64,
    /// Offsets lookups refused before this instant.
    down_until: Option<Instant>,
    lookups_refused: u32,
}

/// One member's view of the shared in-memory store.
#[derive(Debug, Clone)]
struct Memory {
    member: &'static str,
    state: Arc<Mutex<State>>,
}

impl Memory {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

impl Sink for Memory {
    async fn stored_offsets(
        &mut self,
        _group: &str,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, StoredOffset>, SinkError> {
        let mut s = self.lock();
        if s.down_until.is_some_and(|at| Instant::now() < at) {
            s.lookups_refused += 1;
            return Err(SinkError::Unavailable("down for the test".into()));
        }
        Ok(partitions
            .iter()
            .filter_map(|tp| {
                s.offsets.get(tp).map(|next| {
                    (
                        tp.clone(),
                        StoredOffset {
                            next: *next,
                            topic_id: None,
                        },
                    )
                })
            })
            .collect())
    }

    async fn write(&mut self, batch: &Batch<'_>) -> Result<WriteOutcome, SinkError> {
        let mut s = self.lock();
        let mut outcome = WriteOutcome::default();
        let mut applied = BTreeSet::new();
        for (tp, range) in batch.ranges {
            let stored = s.offsets.get(tp).copied();
            if stored == range.from {
                s.offsets.insert(tp.clone(), range.next);
                applied.insert(tp.clone());
            } else if stored != Some(range.next) {
                outcome.mismatched.insert(tp.clone(), stored);
            }
        }
        for r in batch.records {
            let tp = (r.log().to_string(), r.partition);
            if applied.contains(&tp) {
                outcome.written += 1;
            } else if !outcome.mismatched.contains_key(&tp) {
                outcome.duplicates += 1;
            }
        }
        s.events += outcome.written;
        if !applied.is_empty() {
            s.writes.push((self.member, applied));
        }
        Ok(outcome)
    }

    async fn check(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

async fn setup(n: usize) -> (Broker, String, Vec<dbw::Event>) {
    let broker = Broker::start().await.expect("broker");
    let bootstrap = broker.bootstrap();
    let topic = Topic::ALL[0];
    common::create_topic(&bootstrap, topic.name(), PARTITIONS, &[]).await;
    let events: Vec<dbw::Event> = (0..n * 8)
        .map(|i| dbw::event(23, i, 0))
        .filter(|e| e.topic == topic)
        .collect();
    dbw::produce(&common::producer(&bootstrap, &[]), &events).await;
    (broker, bootstrap, events)
}

fn config(bootstrap: &str, batch_timeout: Duration) -> RuntimeConfig {
    let mut c = RuntimeConfig::new(
        bootstrap,
        "memory-group",
        vec![Topic::ALL[0].name().to_string()],
        "memory-test",
    );
    c.batch_size = 100_000;
    c.batch_timeout = batch_timeout;
    c.session_timeout_ms = 6_000;
    c
}

fn ends(broker: &Broker) -> BTreeMap<TopicPartition, i64> {
    use agentbus_testkit::Inspect;
    let topic = Topic::ALL[0].name();
    (0..PARTITIONS)
        .map(|p| ((topic.to_string(), p), broker.offsets(topic, p).unwrap().1))
        .collect()
}

struct Member {
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<Result<(), agentbus_consumers::RuntimeError>>,
    metrics: Arc<agentbus_consumers::metrics::Metrics>,
}

async fn start(config: RuntimeConfig, sink: Memory) -> Member {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut service = Service::new(listener.local_addr().unwrap());
    let metrics = service.add(config, sink);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(service.run_on(listener, async {
        let _ = stopped.await;
    }));
    Member {
        stop,
        running,
        metrics,
    }
}

impl Member {
    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.running
            .await
            .unwrap()
            .expect("the member stops cleanly");
    }
}

async fn wait(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_incremental_revoke_flushes_only_the_revoked_partitions() {
    let (broker, bootstrap, events) = setup(1_200).await;
    let total = events.len() as u64;
    let state = Arc::new(Mutex::new(State::default()));
    let sink = |member| Memory {
        member,
        state: state.clone(),
    };
    // A's batch waits far longer than the test: only a revoke or shutdown writes it.
    let a = start(config(&bootstrap, Duration::from_secs(600)), sink("a")).await;
    wait(
        "member a to read every record",
        Duration::from_secs(30),
        || a.metrics.events_received() == total,
    )
    .await;
    assert!(state.lock().unwrap().writes.is_empty());

    let b = start(config(&bootstrap, Duration::from_millis(100)), sink("b")).await;
    // cooperative-sticky (the default) hands b its share in two steps; a's first
    // write is the revoked share alone.
    wait(
        "a's flush of the revoked partitions",
        Duration::from_secs(60),
        || !state.lock().unwrap().writes.is_empty(),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let b_share = loop {
        let json = b.metrics.json();
        let assigned = json["assigned_partitions"].as_u64().unwrap_or(0);
        if assigned > 0 && b.metrics.ready() {
            break assigned;
        }
        assert!(Instant::now() < deadline, "b got no partitions: {json}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let first = state.lock().unwrap().writes[0].clone();
    assert_eq!(first.0, "a");
    assert_eq!(
        first.1.len() as u64,
        b_share,
        "a's first write settles exactly the partitions handed to b: {first:?}"
    );
    assert!(
        (first.1.len() as i32) < PARTITIONS,
        "an eager revoke would flush all {PARTITIONS}"
    );
    // a kept the rest of its batch unwritten: no other write of a's so far.
    assert!(
        state
            .lock()
            .unwrap()
            .writes
            .iter()
            .filter(|w| w.0 == "a")
            .count()
            == 1,
        "{:?}",
        state.lock().unwrap().writes
    );

    a.stop().await;
    b.stop().await;
    let s = state.lock().unwrap();
    assert_eq!(s.events, total, "every record stored once");
    let ends = ends(&broker);
    for p in 0..PARTITIONS {
        let tp = (Topic::ALL[0].name().to_string(), p);
        assert_eq!(s.offsets.get(&tp), ends.get(&tp), "partition {p}");
    }
    let a_writes: Vec<_> = s.writes.iter().filter(|w| w.0 == "a").collect();
    assert_eq!(a_writes.len(), 2, "{:?}", s.writes);
    assert!(a_writes[0].1.is_disjoint(&a_writes[1].1));
    assert_eq!(
        a_writes[1].1.len() as i32,
        PARTITIONS - first.1.len() as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sink_that_stores_its_offsets_never_starts_at_kafkas() {
    let (broker, bootstrap, events) = setup(400).await;
    let total = events.len() as u64;
    let topic = Topic::ALL[0].name();
    // Kafka says the group read everything; the sink holds nothing.
    let ends = ends(&broker);
    let committer = common::consumer(&bootstrap, &[("group.id", "memory-group")]);
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Offset(ends[&(topic.to_string(), p)]))
            .unwrap();
    }
    committer.commit(&tpl, CommitMode::Sync).expect("commit");
    drop(committer);

    // And the sink does not answer for 4 s: longer than any lookup timeout.
    let state = Arc::new(Mutex::new(State {
        down_until: Some(Instant::now() + Duration::from_secs(4)),
        ..State::default()
    }));
    let sink = Memory {
        member: "a",
        state: state.clone(),
    };
    let a = start(config(&bootstrap, Duration::from_millis(100)), sink).await;
    wait("every record in the sink", Duration::from_secs(60), || {
        state.lock().unwrap().events == total
    })
    .await;
    let refused = state.lock().unwrap().lookups_refused;
    assert!(
        refused >= 2,
        "the sink was asked again and again: {refused}"
    );
    a.stop().await;
    let s = state.lock().unwrap();
    for p in 0..PARTITIONS {
        let tp = (topic.to_string(), p);
        assert_eq!(s.offsets.get(&tp), ends.get(&tp), "partition {p}");
    }
}

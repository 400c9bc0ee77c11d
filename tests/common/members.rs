//! Consumer-group members for tests: rdkafka consumers in threads that commit each record
//! synchronously and count it only then, so a tally shows exactly-once delivery.
#![allow(dead_code, unreachable_pub)]

use agentbus_testkit::Inspector;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// (member, partition, offset) of every record whose commit succeeded.
pub type Tally = Arc<Mutex<Vec<(String, i32, i64)>>>;

#[derive(Default)]
pub struct Ctx {
    rebalances: AtomicUsize,
}
impl ClientContext for Ctx {}
impl ConsumerContext for Ctx {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, _: &Rebalance<'_>) {
        self.rebalances.fetch_add(1, Ordering::SeqCst);
    }
}

pub struct Member {
    stop: Arc<AtomicBool>,
    ctx: Arc<Mutex<Option<Arc<Ctx>>>>,
    assignment: Arc<Mutex<Vec<i32>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Member {
    /// A member that commits each record synchronously and counts it only then.
    pub fn spawn(
        name: &str,
        bootstrap: &str,
        topic: &str,
        group: &str,
        extra: &[(&str, &str)],
        tally: Tally,
    ) -> Self {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest");
        // With KIP-848 the broker owns session timeout and heartbeat interval.
        if !extra.contains(&("group.protocol", "consumer")) {
            cfg.set("session.timeout.ms", "6000")
                .set("heartbeat.interval.ms", "500");
        }
        for (k, v) in extra {
            cfg.set(*k, *v);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let ctx_slot: Arc<Mutex<Option<Arc<Ctx>>>> = Arc::default();
        let assignment: Arc<Mutex<Vec<i32>>> = Arc::default();
        let (name, topic) = (name.to_string(), topic.to_string());
        let (s, slot, asg) = (stop.clone(), ctx_slot.clone(), assignment.clone());
        let thread = std::thread::spawn(move || {
            let consumer: BaseConsumer<Ctx> =
                cfg.create_with_context(Ctx::default()).expect("consumer");
            *slot.lock().unwrap() = Some(consumer.context().clone());
            consumer.subscribe(&[&topic]).expect("subscribe");
            while !s.load(Ordering::SeqCst) {
                if let Ok(a) = consumer.assignment() {
                    *asg.lock().unwrap() = a.elements().iter().map(|e| e.partition()).collect();
                }
                let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
                    continue;
                };
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(&topic, m.partition(), Offset::Offset(m.offset() + 1))
                    .unwrap();
                match consumer.commit(&tpl, CommitMode::Sync) {
                    Ok(()) => tally
                        .lock()
                        .unwrap()
                        .push((name.clone(), m.partition(), m.offset())),
                    Err(_) => {
                        let _ = consumer.seek(
                            &topic,
                            m.partition(),
                            Offset::Offset(m.offset()),
                            Duration::from_secs(1),
                        );
                    }
                }
            }
            // Dropping the consumer closes it, which leaves the group.
        });
        Self {
            stop,
            ctx: ctx_slot,
            assignment,
            thread: Some(thread),
        }
    }

    pub fn rebalances(&self) -> usize {
        self.ctx
            .lock()
            .unwrap()
            .as_ref()
            .map_or(0, |c| c.rebalances.load(Ordering::SeqCst))
    }

    pub fn assignment(&self) -> Vec<i32> {
        let mut a = self.assignment.lock().unwrap().clone();
        a.sort();
        a
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

pub async fn wait_for(what: &str, secs: u64, ok: impl FnMut() -> bool) {
    wait_for_showing(what, secs, ok, String::new).await;
}

/// `wait_for`, and on a timeout the failure shows `context()` (logs, state) as well.
pub async fn wait_for_showing(
    what: &str,
    secs: u64,
    mut ok: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn produce(bootstrap: &str, topic: &str, from: usize, count: usize) {
    let producer = super::producer(bootstrap, &[("linger.ms", "1")]);
    let mut futs = Vec::new();
    for i in from..from + count {
        let v = format!("r{i}");
        futs.push(
            producer
                .send_result(FutureRecord::to(topic).key(&format!("k{i}")).payload(&v))
                .unwrap(),
        );
    }
    for f in futs {
        f.await.unwrap().expect("delivered");
    }
}

/// Every record of the topic counted exactly once.
pub fn assert_exactly_once(broker: &Inspector, topic: &str, tally: &Tally) {
    let t = tally.lock().unwrap();
    let mut seen: BTreeMap<(i32, i64), &str> = BTreeMap::new();
    for (member, p, o) in t.iter() {
        if let Some(first) = seen.insert((*p, *o), member) {
            panic!("record {p}/{o} consumed twice (by {first} and {member})");
        }
    }
    let partitions = broker.topic(topic).unwrap().partitions;
    let mut total = 0;
    for p in 0..partitions {
        let hw = broker.offsets(topic, p).unwrap().high_watermark;
        for o in 0..hw {
            assert!(seen.contains_key(&(p, o)), "record {p}/{o} never consumed");
        }
        total += hw as usize;
    }
    assert_eq!(seen.len(), total);
}

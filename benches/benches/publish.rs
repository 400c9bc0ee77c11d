//! `agentbus-client` publish latency against an in-process testkit broker:
//! - `enqueue`: `Producer::publish_detached` (validate, encode, hand to librdkafka);
//! - `acked`: `Producer::publish` until the broker's acknowledgement (acks=all, idempotent),
//!   with `linger.ms=0` and with the seeds' default `linger.ms=10`.
//!
//! Criterion reports means; p50/p99 of every timed call are printed at the end.
//! `cargo bench -p agentbus-benches --bench publish`

use agentbus_client::events::{self, RoutingDecision};
use agentbus_client::{examples, Id, Producer, ProducerConfig, Topic};
use criterion::{criterion_group, criterion_main, Criterion};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use std::cell::RefCell;
use std::time::{Duration, Instant};

thread_local! {
    static SAMPLES: RefCell<Vec<(&'static str, Vec<Duration>)>> = const { RefCell::new(Vec::new()) };
}

fn record(name: &'static str, d: Duration) {
    SAMPLES.with(|s| {
        let mut s = s.borrow_mut();
        match s.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => v.push(d),
            None => s.push((name, vec![d])),
        }
    });
}

fn report() {
    SAMPLES.with(|s| {
        for (name, v) in s.borrow_mut().iter_mut() {
            v.sort();
            let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
            eprintln!(
                "publish/{name}: n={} p50={:.1} µs p99={:.1} µs max={:.1} µs",
                v.len(),
                at(0.50).as_secs_f64() * 1e6,
                at(0.99).as_secs_f64() * 1e6,
                at(1.0).as_secs_f64() * 1e6,
            );
        }
    });
}

fn event() -> RoutingDecision {
    let mut e: RoutingDecision =
        events::decode(examples::json(Topic::AgentRoutingDecisions).as_bytes()).expect("example");
    e.correlation_id = Id::random();
    e
}

fn publish(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let broker = rt
        .block_on(agentbus_testkit::Broker::start())
        .expect("broker");
    let bootstrap = broker.bootstrap();
    rt.block_on(async {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .expect("admin");
        let t = NewTopic::new(
            Topic::AgentRoutingDecisions.name(),
            6,
            TopicReplication::Fixed(1),
        );
        for r in admin
            .create_topics([&t], &AdminOptions::new())
            .await
            .expect("create")
        {
            r.expect("topic");
        }
    });
    let make = |linger_ms: u32| {
        Producer::new(ProducerConfig {
            brokers: bootstrap.clone(),
            linger_ms,
            ..Default::default()
        })
        .expect("producer")
    };
    let events: Vec<RoutingDecision> = (0..64).map(|_| event()).collect();

    let mut group = c.benchmark_group("publish");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(5));

    let fast = make(0);
    rt.block_on(fast.publish(&events[0])).expect("warm up");
    let mut i = 0usize;
    group.bench_function("enqueue", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                i += 1;
                let e = &events[i % events.len()];
                let start = Instant::now();
                fast.publish_detached(e).expect("enqueue");
                let d = start.elapsed();
                record("enqueue", d);
                total += d;
                if fast.detached_in_flight() > 50_000 {
                    rt.block_on(fast.flush(Duration::from_secs(30)))
                        .expect("flush");
                }
            }
            total
        })
    });
    rt.block_on(fast.flush(Duration::from_secs(30)))
        .expect("flush");

    for (name, producer) in [
        ("acked linger.ms=0", &fast),
        ("acked linger.ms=10", &make(10)),
    ] {
        rt.block_on(producer.publish(&events[0])).expect("warm up");
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    i += 1;
                    let e = &events[i % events.len()];
                    let start = Instant::now();
                    rt.block_on(producer.publish(e)).expect("publish");
                    let d = start.elapsed();
                    record(name, d);
                    total += d;
                }
                total
            })
        });
    }
    group.finish();
    report();
}

criterion_group!(benches, publish);
criterion_main!(benches);

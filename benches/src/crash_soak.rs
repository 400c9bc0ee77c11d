//! `agentbus bench crash-soak`: cycles of acks=all idempotent produce against a broker on
//! disk, `kill -9` at a varying moment, restart on the same directory; after each restart
//! every acknowledged record must be there once, in the order it was sent.

use super::spawn_child;
use anyhow::{bail, Context};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::HashSet;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub(super) struct CrashSoakBench {
    /// Kill-and-restart cycles.
    #[arg(long, default_value_t = 100)]
    cycles: u32,
}

const TOPIC: &str = "crash-soak";

/// Collects the values the broker acknowledged, in acknowledgement order.
#[derive(Clone, Default)]
struct Acks(Arc<Mutex<Vec<String>>>);

/// The kill makes the client complain; that is the point, not news.
impl ClientContext for Acks {
    fn log(&self, _: rdkafka::config::RDKafkaLogLevel, _: &str, _: &str) {}
    fn error(&self, _: rdkafka::error::KafkaError, _: &str) {}
}

impl Acks {
    fn count(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Ok(m) = result {
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(value);
        }
    }
}

fn start(dir: &std::path::Path) -> anyhow::Result<(Child, String)> {
    let dir = dir.display().to_string();
    let args = [
        "broker",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.as_str(),
    ];
    let (child, bootstrap, _) = spawn_child(&super::agentbus_exe()?, &args, "bootstrap ")?;
    Ok((child, bootstrap))
}

/// Produces `cycle`'s records until `for_ms` have passed since the first acknowledgement,
/// then kills the broker; the values acknowledged before the kill.
fn produce_then_kill(
    bootstrap: &str,
    broker: &mut Child,
    cycle: u32,
    for_ms: u64,
) -> anyhow::Result<Vec<String>> {
    let acks = Acks::default();
    let producer: BaseProducer<Acks> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "1000")
        .create_with_context(acks.clone())
        .context("cannot create the producer")?;
    let give_up = Instant::now() + Duration::from_secs(30);
    let mut until: Option<Instant> = None;
    let mut i = 0u64;
    while until.is_none_or(|u| Instant::now() < u) {
        if until.is_none() && acks.count() > 0 {
            until = Some(Instant::now() + Duration::from_millis(for_ms));
        }
        if Instant::now() > give_up {
            bail!("cycle {cycle}: no acknowledgement within 30 s");
        }
        let value = format!("{cycle}:{i}");
        match producer.send(BaseRecord::<(), str, ()>::to(TOPIC).payload(&value)) {
            Ok(()) => i += 1,
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
        producer.poll(Duration::ZERO);
    }
    // SIGKILL, mid-stream: requests in flight are cut.
    broker.kill().context("cannot kill the broker")?;
    let _ = broker.wait();
    let settle = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < settle && producer.in_flight_count() > 0 {
        producer.poll(Duration::from_millis(50));
    }
    producer.purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
    drop(producer);
    let acked = acks.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(acked)
}

/// Every value of the topic from `from` to its end, with the next offset.
fn read_from(bootstrap: &str, from: i64) -> anyhow::Result<(Vec<String>, i64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "crash-soak-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .context("cannot create the consumer")?;
    let (_, high) = consumer.fetch_watermarks(TOPIC, 0, Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Offset(from))?;
    consumer.assign(&tpl)?;
    let mut out = Vec::new();
    let mut next = from;
    let deadline = Instant::now() + Duration::from_secs(60);
    while next < high {
        if Instant::now() > deadline {
            bail!("could not read offsets {next}..{high} within 60 s");
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
                next = m.offset() + 1;
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => bail!("reading back: {e}"),
        }
    }
    Ok((out, next))
}

pub(super) fn run(args: &CrashSoakBench) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("agentbus-crash-soak-{}", std::process::id()));
    let _cleanup = super::tempfile_dir::TempDir(dir.clone());
    let (mut broker, mut bootstrap) = start(&dir)?;
    let (mut seen, mut read_to) = (HashSet::new(), 0i64);
    let (mut acked_total, mut lost, mut duplicated, mut disordered) =
        (0usize, 0usize, 0usize, 0usize);
    let mut stored = 0usize;
    let started = Instant::now();
    for cycle in 0..args.cycles {
        // 40 to 290 ms of producing before the kill, varying from cycle to cycle.
        let for_ms = 40 + u64::from(cycle.wrapping_mul(7919) % 251);
        let acked = produce_then_kill(&bootstrap, &mut broker, cycle, for_ms)?;
        (broker, bootstrap) = start(&dir)?;
        let (values, next) = read_from(&bootstrap, read_to)?;
        read_to = next;
        stored += values.len();
        let mut last_of_cycle = None;
        for v in &values {
            if !seen.insert(v.clone()) {
                duplicated += 1;
            }
            if let Some((c, i)) = v.split_once(':') {
                if c == cycle.to_string() {
                    let i: u64 = i.parse().unwrap_or(0);
                    if last_of_cycle.is_some_and(|l| i <= l) {
                        disordered += 1;
                    }
                    last_of_cycle = Some(i);
                }
            }
        }
        lost += acked.iter().filter(|v| !seen.contains(*v)).count();
        acked_total += acked.len();
        if lost + duplicated + disordered > 0 {
            eprintln!(
                "cycle {cycle}: lost {lost}, duplicated {duplicated}, out of order {disordered}"
            );
        }
    }
    let _ = broker.kill();
    let _ = broker.wait();
    println!(
        "crash soak: {} cycles of produce + kill -9 + restart in {:.1} s; {acked_total} records acknowledged, {stored} stored; lost {lost}, duplicated {duplicated}, out of order {disordered}",
        args.cycles,
        started.elapsed().as_secs_f64()
    );
    if lost + duplicated + disordered > 0 {
        bail!("acknowledged records were lost, duplicated or reordered");
    }
    Ok(())
}

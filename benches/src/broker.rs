//! The broker's own benchmarks: start-up, produce, consume and latency through rdkafka
//! against the target started by the parent module.

use super::*;

pub(super) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Start-up and idle memory of `agentbus broker`, and of `agentbus-broker` (the broker
/// alone) when it was built beside it.
pub(super) fn startup(rounds: usize) -> anyhow::Result<()> {
    let exe = super::agentbus_exe()?;
    startup_of("agentbus broker", &exe, &["broker"], rounds)?;
    let lean = exe.with_file_name("agentbus-broker");
    if lean.is_file() {
        startup_of("agentbus-broker", &lean, &[], rounds)?;
    }
    Ok(())
}

fn startup_of(name: &str, exe: &Path, command: &[&str], rounds: usize) -> anyhow::Result<()> {
    let mut ready = Vec::new();
    let mut rss = Vec::new();
    let mut args = command.to_vec();
    args.extend(["--memory", "--listen", "127.0.0.1:0"]);
    for _ in 0..rounds.max(1) {
        let (mut child, _, elapsed) = spawn_child(exe, &args, "bootstrap ")?;
        ready.push(elapsed.as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(500));
        rss.push(rss_kib(child.id()).unwrap_or(0) as f64 / 1024.0);
        let _ = child.kill();
        let _ = child.wait();
    }
    println!(
        "{name}: process start to ready line, median of {}: {:.2} ms; idle RSS after 500 ms, median: {:.1} MiB",
        ready.len(),
        median(ready),
        median(rss)
    );
    Ok(())
}

#[derive(Debug, Default)]
pub(super) struct Counts {
    delivered: AtomicU64,
    failed: AtomicU64,
    /// Delivery latencies in microseconds (latency runs only).
    latencies: Mutex<Vec<u64>>,
    record_latency: bool,
}

pub(super) struct CountingContext(Arc<Counts>);

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                self.0.delivered.fetch_add(1, Ordering::Relaxed);
                if self.0.record_latency {
                    if let Some(sent) = m.payload().and_then(sent_at) {
                        let us = (epoch().elapsed().as_nanos() as u64).saturating_sub(sent) / 1000;
                        if let Ok(mut l) = self.0.latencies.lock() {
                            l.push(us);
                        }
                    }
                }
            }
            Err(_) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Value layout: sequence (8 bytes) | send time in ns since `epoch()` (8 bytes) | padding.
pub(super) fn value(seq: u64, size: usize) -> Vec<u8> {
    let mut v = vec![b'x'; size.max(16)];
    v[..8].copy_from_slice(&seq.to_be_bytes());
    let now = epoch().elapsed().as_nanos() as u64;
    v[8..16].copy_from_slice(&now.to_be_bytes());
    v
}

pub(super) fn sent_at(payload: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(payload.get(8..16)?.try_into().ok()?))
}

/// A client configuration for `bootstrap` with the broker's client properties.
pub(super) fn client(bootstrap: &str, props: &[(String, String)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    for (k, v) in props {
        c.set(k, v);
    }
    c
}

pub(super) fn producer(
    bootstrap: &str,
    props: &[(String, String)],
    load: &Load,
    counts: Arc<Counts>,
) -> anyhow::Result<BaseProducer<CountingContext>> {
    client(bootstrap, props)
        .set("acks", &load.acks)
        .set("compression.type", &load.codec)
        .set("linger.ms", load.linger_ms.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.max.bytes", "10000000")
        .create_with_context(CountingContext(counts))
        .context("cannot create producer")
}

pub(super) fn create_topic(
    target: &Target,
    bootstrap: &str,
    props: &[(String, String)],
    topic: &str,
    partitions: i32,
) -> anyhow::Result<()> {
    if target.target == "mock" {
        return Ok(());
    }
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        client(bootstrap, props).create()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = rt.block_on(admin.create_topics(
        [&NewTopic::new(
            topic,
            partitions,
            TopicReplication::Fixed(1),
        )],
        &AdminOptions::new(),
    ))?;
    for r in results {
        r.map_err(|(t, e)| anyhow::anyhow!("cannot create topic {t}: {e}"))?;
    }
    Ok(())
}

/// Sends `count` records round-robin over the partitions; returns elapsed time.
pub(super) fn send_all(
    p: &BaseProducer<CountingContext>,
    topic: &str,
    load: &Load,
    counts: &Counts,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for seq in 0..load.count {
        let v = value(seq, load.size);
        let partition = (seq % load.partitions as u64) as i32;
        let mut record = BaseRecord::<(), [u8]>::to(topic)
            .payload(&v)
            .partition(partition);
        loop {
            match p.send(record) {
                Ok(()) => break,
                Err((e, r))
                    if e.rdkafka_error_code()
                        == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                {
                    record = r;
                    p.poll(Duration::from_millis(1));
                }
                Err((e, _)) => bail!("send failed: {e}"),
            }
        }
        if seq % 1024 == 0 {
            p.poll(Duration::ZERO);
        }
    }
    p.flush(Timeout::After(Duration::from_secs(300)))?;
    let elapsed = started.elapsed();
    let failed = counts.failed.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} records failed delivery");
    }
    Ok(elapsed)
}

pub(super) fn self_cpu() -> f64 {
    process_cpu_seconds(std::process::id()).unwrap_or(0.0)
}

pub(super) fn produce(load: &Load) -> anyhow::Result<()> {
    let broker = start(&load.target, load.partitions)?;
    let topic = "bench-produce";
    create_topic(
        &load.target,
        &broker.bootstrap,
        &broker.props,
        topic,
        load.partitions,
    )?;
    let counts = Arc::new(Counts::default());
    let p = producer(&broker.bootstrap, &broker.props, load, counts.clone())?;
    let (broker_cpu0, client_cpu0) = (broker.cpu_seconds(), self_cpu());
    let elapsed = send_all(&p, topic, load, &counts)?;
    let broker_cpu = broker.cpu_seconds().zip(broker_cpu0).map(|(a, b)| a - b);
    let client_cpu = self_cpu() - client_cpu0;
    report(
        "produce",
        load,
        elapsed,
        broker_cpu,
        client_cpu,
        broker.peak_rss(),
    );
    Ok(())
}

pub(super) fn report(
    what: &str,
    load: &Load,
    elapsed: Duration,
    broker_cpu: Option<f64>,
    client_cpu: f64,
    peak: String,
) {
    let secs = elapsed.as_secs_f64();
    let rate = load.count as f64 / secs;
    let mb = load.count as f64 * load.size as f64 / secs / 1e6;
    let cpu = broker_cpu.map_or("n/a".to_string(), |c| format!("{c:.2} s"));
    println!(
        "{what} target={} count={} size={} partitions={} acks={} codec={}: {:.3} s, {:.0} records/s, {:.1} MB/s, broker CPU {cpu}, client CPU {:.2} s, broker peak RSS {peak}",
        load.target.target, load.count, load.size, load.partitions, load.acks, load.codec, secs, rate, mb, client_cpu
    );
}

pub(super) fn consume(load: &Load) -> anyhow::Result<()> {
    let broker = start(&load.target, load.partitions)?;
    let topic = "bench-consume";
    create_topic(
        &load.target,
        &broker.bootstrap,
        &broker.props,
        topic,
        load.partitions,
    )?;
    let counts = Arc::new(Counts::default());
    let p = producer(&broker.bootstrap, &broker.props, load, counts.clone())?;
    send_all(&p, topic, load, &counts)?;
    drop(p);
    let consumer: BaseConsumer = client(&broker.bootstrap, &broker.props)
        .set("group.id", "bench-assign-only")
        .set("enable.auto.commit", "false")
        .set("fetch.message.max.bytes", "1048576")
        // librdkafka pauses a partition for fetch.queue.backoff.ms (1 s by default) once its
        // local queue is full; with a broker faster than the verifying loop that pause, not
        // the broker, would dominate the figure.
        .set("fetch.queue.backoff.ms", "10")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for part in 0..load.partitions {
        tpl.add_partition_offset(topic, part, Offset::Beginning)?;
    }
    let (broker_cpu0, client_cpu0) = (broker.cpu_seconds(), self_cpu());
    let started = Instant::now();
    consumer.assign(&tpl)?;
    let parts = load.partitions as u64;
    let mut next_seq: Vec<u64> = (0..parts).collect();
    let mut next_offset = vec![0i64; load.partitions as usize];
    let mut got = 0u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    while got < load.count {
        if Instant::now() > deadline {
            bail!("timed out after {got} of {} records", load.count);
        }
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m?;
        let part = m.partition() as usize;
        let payload = m.payload().unwrap_or_default();
        let seq = payload
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .context("record too short")?;
        if payload.len() != load.size.max(16)
            || seq != next_seq[part]
            || m.offset() != next_offset[part]
        {
            bail!(
                "verification failed at partition {part} offset {}: seq {seq} (expected {}), {} bytes",
                m.offset(),
                next_seq[part],
                payload.len()
            );
        }
        next_seq[part] += parts;
        next_offset[part] += 1;
        got += 1;
    }
    let elapsed = started.elapsed();
    let broker_cpu = broker.cpu_seconds().zip(broker_cpu0).map(|(a, b)| a - b);
    report(
        "consume (verified)",
        load,
        elapsed,
        broker_cpu,
        self_cpu() - client_cpu0,
        broker.peak_rss(),
    );
    Ok(())
}

pub(super) fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

pub(super) fn latency(target: &Target, rate: u64, seconds: u64, size: usize) -> anyhow::Result<()> {
    let broker = start(target, 1)?;
    let topic = "bench-latency";
    create_topic(target, &broker.bootstrap, &broker.props, topic, 1)?;
    let load = Load {
        target: target.clone(),
        count: rate * seconds,
        size,
        partitions: 1,
        acks: "all".into(),
        codec: "none".into(),
        linger_ms: 0,
    };
    let counts = Arc::new(Counts {
        record_latency: true,
        ..Counts::default()
    });
    let p = producer(&broker.bootstrap, &broker.props, &load, counts.clone())?;
    let consumer: BaseConsumer = client(&broker.bootstrap, &broker.props)
        .set("group.id", "bench-assign-only")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "500")
        .set("fetch.min.bytes", "1")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let total = load.count;
    let reader = std::thread::spawn(move || {
        let mut e2e = Vec::with_capacity(total as usize);
        let deadline = Instant::now() + Duration::from_secs(seconds + 60);
        while (e2e.len() as u64) < total && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                if let Some(sent) = m.payload().and_then(sent_at) {
                    e2e.push((epoch().elapsed().as_nanos() as u64).saturating_sub(sent) / 1000);
                }
            }
        }
        e2e
    });
    // Let the consumer reach the partition before the clock starts.
    std::thread::sleep(Duration::from_millis(500));
    let broker_cpu0 = broker.cpu_seconds();
    let started = Instant::now();
    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    for seq in 0..total {
        let due = started + interval * seq as u32;
        while Instant::now() < due {
            p.poll(
                due.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(1)),
            );
        }
        let v = value(seq, size);
        p.send(BaseRecord::<(), [u8]>::to(topic).payload(&v).partition(0))
            .map_err(|(e, _)| anyhow::anyhow!("send failed: {e}"))?;
        p.poll(Duration::ZERO);
    }
    p.flush(Timeout::After(Duration::from_secs(30)))?;
    let mut e2e = reader
        .join()
        .map_err(|_| anyhow::anyhow!("consumer thread panicked"))?;
    let broker_cpu = broker.cpu_seconds().zip(broker_cpu0).map(|(a, b)| a - b);
    let mut delivery = std::mem::take(
        &mut *counts
            .latencies
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?,
    );
    delivery.sort_unstable();
    e2e.sort_unstable();
    println!(
        "latency target={} rate={rate}/s for {seconds} s, acks=all, linger 0: delivery p50 {:.2} ms p99 {:.2} ms; produce-to-consume p50 {:.2} ms p99 {:.2} ms ({} of {total} consumed); broker CPU {}",
        target.target,
        percentile(&delivery, 0.5),
        percentile(&delivery, 0.99),
        percentile(&e2e, 0.5),
        percentile(&e2e, 0.99),
        e2e.len(),
        broker_cpu.map_or("n/a".to_string(), |c| format!("{c:.2} s")),
    );
    Ok(())
}

/// Time from a new client to its first Metadata answer (TCP, then TLS and SASL where the
/// listener asks for them), `rounds` times: median and worst.
pub(super) fn handshake(target: &Target, rounds: usize) -> anyhow::Result<()> {
    let broker = start(target, 1)?;
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        let consumer: BaseConsumer = client(&broker.bootstrap, &broker.props)
            .set("group.id", "bench-handshake")
            .create()
            .context("cannot create the client")?;
        consumer
            .fetch_metadata(None, Duration::from_secs(30))
            .context("no metadata")?;
        times.push(started.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "handshake target={} rounds={}: new client to first Metadata median {:.2} ms, max {:.2} ms",
        target.target,
        times.len(),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );
    Ok(())
}

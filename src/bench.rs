//! `agentbus bench`: start-up time, idle memory, produce/consume throughput and latency,
//! against a broker this command starts as a child process (so its CPU time can be read
//! from /proc), librdkafka's mock cluster (also in a child process), or any running broker.

mod alert_manager;
mod audit_logger;
mod consumer_run;
mod crash_soak;
mod db_writer;
mod dev;
mod log;
mod metrics_aggregator;
mod pattern_extractor;

use anyhow::{bail, Context};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Time from process start to `ready`, and idle resident memory.
    Startup {
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Produce COUNT records of SIZE bytes and report records/s, MB/s and CPU time.
    Produce(Load),
    /// Produce COUNT records (untimed), then consume them all back with verification.
    Consume(Load),
    /// Produce at a fixed rate; report delivery and produce-to-consume latency.
    Latency {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 100)]
        size: usize,
    },
    /// Events/s of `agentbus consume db-writer` into PostgreSQL, batch p99 and RSS.
    DbWriter(db_writer::DbWriterBench),
    /// Events/s of `agentbus consume metrics-aggregator` into Redis, script p99 and RSS.
    MetricsAggregator(metrics_aggregator::MetricsAggregatorBench),
    /// Events/s of `agentbus consume audit-logger` into its archive, bytes/event, RSS.
    AuditLogger(audit_logger::AuditLoggerBench),
    /// Input events/s of `agentbus consume pattern-extractor` (a Kafka transaction per
    /// batch), transaction p99 and RSS.
    PatternExtractor(pattern_extractor::PatternExtractorBench),
    /// Events/s the alert-manager's evaluator takes in (two transactions per event's
    /// way), and the time from an event to its PagerDuty request.
    AlertManager(alert_manager::AlertManagerBench),
    /// Cycles of acks=all idempotent produce, kill -9 and restart on disk; every
    /// acknowledged record must be there once, in order.
    CrashSoak(crash_soak::CrashSoakBench),
    /// `agentbus dev`: time until every group is ready, idle RSS, and the time from
    /// `agentbus log` to the row in PostgreSQL.
    Dev(dev::DevBench),
    /// `agentbus log` p50/p99 with the broker up and down (spooling), and the spool's
    /// drain rate.
    Log(log::LogBench),
    /// Serve librdkafka's mock cluster until killed (used by `--target mock`).
    #[command(hide = true)]
    ServeMock {
        #[arg(long, default_value_t = 4)]
        partitions: i32,
    },
}

#[derive(Debug, Clone, clap::Args)]
struct Target {
    /// `agentbus` (a child broker in memory), `agentbus-disk`, `mock` (librdkafka's mock
    /// cluster), or `external` (use --brokers).
    #[arg(long, default_value = "agentbus")]
    target: String,
    /// Bootstrap servers of a running broker, with `--target external`.
    #[arg(long)]
    brokers: Option<String>,
    /// PID of that external broker, to report its CPU time.
    #[arg(long)]
    broker_pid: Option<u32>,
    /// Path of a Tansu binary, with `--target tansu` (memory storage).
    #[arg(long, env = "TANSU_BIN", default_value = "tansu")]
    tansu_bin: String,
}

#[derive(Debug, Clone, clap::Args)]
struct Load {
    #[command(flatten)]
    target: Target,
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// Value size in bytes (at least 16).
    #[arg(long, default_value_t = 100)]
    size: usize,
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// acks: all, 1 or 0.
    #[arg(long, default_value = "all")]
    acks: String,
    /// compression.type: none, gzip, snappy, lz4, zstd.
    #[arg(long, default_value = "none")]
    codec: String,
    /// linger.ms of the producer.
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
}

/// A broker under test and how to read its CPU time.
struct Running {
    bootstrap: String,
    child: Option<Child>,
    pid: Option<u32>,
    _dir: Option<tempfile_dir::TempDir>,
}

/// Just enough of a temporary directory for the disk target, without a dependency.
mod tempfile_dir {
    #[derive(Debug)]
    pub(crate) struct TempDir(pub(crate) std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Running {
    fn cpu_seconds(&self) -> Option<f64> {
        self.pid.and_then(process_cpu_seconds)
    }

    fn peak_rss(&self) -> String {
        self.pid
            .and_then(|p| status_kib(p, "VmHWM:"))
            .map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// utime + stime of a process, from /proc (USER_HZ is 100 on Linux).
fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// A memory figure from /proc/PID/status, in KiB (`VmRSS:`, `VmHWM:` for the peak).
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Starts `agentbus broker` or the mock as a child and waits for its ready line.
fn spawn_child(args: &[&str], marker: &str) -> anyhow::Result<(Child, String, Duration)> {
    let exe = std::env::current_exe().context("cannot find the agentbus binary")?;
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args(args)
        .env("AGENTBUS_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start the broker process")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("broker exited before it was ready")?;
    let elapsed = started.elapsed();
    let bootstrap = line
        .split(marker)
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .with_context(|| format!("unexpected first line: {line}"))?
        .to_string();
    Ok((child, bootstrap, elapsed))
}

fn start(target: &Target, partitions: i32) -> anyhow::Result<Running> {
    let (args, dir): (Vec<String>, _) = match target.target.as_str() {
        "agentbus" => (
            vec![
                "broker".into(),
                "--memory".into(),
                "--listen".into(),
                "127.0.0.1:0".into(),
            ],
            None,
        ),
        "agentbus-disk" => {
            let dir = std::env::temp_dir().join(format!("agentbus-bench-{}", std::process::id()));
            (
                vec![
                    "broker".into(),
                    "--listen".into(),
                    "127.0.0.1:0".into(),
                    "--data-dir".into(),
                    dir.display().to_string(),
                ],
                Some(tempfile_dir::TempDir(dir)),
            )
        }
        "tansu" => return start_tansu(&target.tansu_bin),
        "mock" => (
            vec![
                "bench".into(),
                "serve-mock".into(),
                "--partitions".into(),
                partitions.to_string(),
            ],
            None,
        ),
        "external" => {
            let bootstrap = target
                .brokers
                .clone()
                .context("--target external needs --brokers")?;
            return Ok(Running {
                bootstrap,
                child: None,
                pid: target.broker_pid,
                _dir: None,
            });
        }
        other => {
            bail!("unknown --target {other}: use agentbus, agentbus-disk, mock, tansu or external")
        }
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (child, bootstrap, _) = spawn_child(&args, "bootstrap ")?;
    let pid = child.id();
    Ok(Running {
        bootstrap,
        child: Some(child),
        pid: Some(pid),
        _dir: dir,
    })
}

/// Tansu prints no ready line, so wait until its port accepts connections.
fn start_tansu(bin: &str) -> anyhow::Result<Running> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(bin)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start Tansu from `{bin}` (set --tansu-bin)"))?;
    let pid = child.id();
    let running = Running {
        bootstrap: format!("127.0.0.1:{port}"),
        child: Some(child),
        pid: Some(pid),
        _dir: None,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("Tansu did not listen on port {port} within 10 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(running)
}

pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || match args.what {
        What::Startup { rounds } => startup(rounds),
        What::Produce(load) => produce(&load),
        What::Consume(load) => consume(&load),
        What::Latency {
            target,
            rate,
            seconds,
            size,
        } => latency(&target, rate, seconds, size),
        What::DbWriter(args) => db_writer::run(&args),
        What::MetricsAggregator(args) => metrics_aggregator::run(&args),
        What::AuditLogger(args) => audit_logger::run(&args),
        What::PatternExtractor(args) => pattern_extractor::run(&args),
        What::AlertManager(args) => alert_manager::run(&args),
        What::Log(args) => log::run(&args),
        What::Dev(args) => dev::run(&args),
        What::CrashSoak(args) => crash_soak::run(&args),
        What::ServeMock { partitions } => serve_mock(partitions),
    })
    .await
    .context("benchmark thread failed")?
}

/// The mock answers CreateTopics slowly or not at all, so the bench topics are made here.
fn serve_mock(partitions: i32) -> anyhow::Result<()> {
    let mock = rdkafka::mocking::MockCluster::new(1).context("cannot create the mock cluster")?;
    for (topic, n) in [
        ("bench-produce", partitions),
        ("bench-consume", partitions),
        ("bench-latency", 1),
    ] {
        mock.create_topic(topic, n, 1)
            .with_context(|| format!("cannot create {topic} on the mock"))?;
    }
    println!("mock ready: bootstrap {}", mock.bootstrap_servers());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn startup(rounds: usize) -> anyhow::Result<()> {
    let mut ready = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..rounds.max(1) {
        let (mut child, _, elapsed) = spawn_child(
            &["broker", "--memory", "--listen", "127.0.0.1:0"],
            "bootstrap ",
        )?;
        ready.push(elapsed.as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(500));
        rss.push(rss_kib(child.id()).unwrap_or(0) as f64 / 1024.0);
        let _ = child.kill();
        let _ = child.wait();
    }
    println!(
        "startup: process start to ready line, median of {}: {:.2} ms",
        ready.len(),
        median(ready)
    );
    println!("idle RSS after 500 ms, median: {:.1} MiB", median(rss));
    Ok(())
}

#[derive(Debug, Default)]
struct Counts {
    delivered: AtomicU64,
    failed: AtomicU64,
    /// Delivery latencies in microseconds (latency runs only).
    latencies: Mutex<Vec<u64>>,
    record_latency: bool,
}

struct CountingContext(Arc<Counts>);

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
fn value(seq: u64, size: usize) -> Vec<u8> {
    let mut v = vec![b'x'; size.max(16)];
    v[..8].copy_from_slice(&seq.to_be_bytes());
    let now = epoch().elapsed().as_nanos() as u64;
    v[8..16].copy_from_slice(&now.to_be_bytes());
    v
}

fn sent_at(payload: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(payload.get(8..16)?.try_into().ok()?))
}

fn producer(
    bootstrap: &str,
    load: &Load,
    counts: Arc<Counts>,
) -> anyhow::Result<BaseProducer<CountingContext>> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", &load.acks)
        .set("compression.type", &load.codec)
        .set("linger.ms", load.linger_ms.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.max.bytes", "10000000")
        .create_with_context(CountingContext(counts))
        .context("cannot create producer")
}

fn create_topic(
    target: &Target,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<()> {
    if target.target == "mock" {
        return Ok(());
    }
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
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
fn send_all(
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

fn self_cpu() -> f64 {
    process_cpu_seconds(std::process::id()).unwrap_or(0.0)
}

fn produce(load: &Load) -> anyhow::Result<()> {
    let broker = start(&load.target, load.partitions)?;
    let topic = "bench-produce";
    create_topic(&load.target, &broker.bootstrap, topic, load.partitions)?;
    let counts = Arc::new(Counts::default());
    let p = producer(&broker.bootstrap, load, counts.clone())?;
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

fn report(
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

fn consume(load: &Load) -> anyhow::Result<()> {
    let broker = start(&load.target, load.partitions)?;
    let topic = "bench-consume";
    create_topic(&load.target, &broker.bootstrap, topic, load.partitions)?;
    let counts = Arc::new(Counts::default());
    let p = producer(&broker.bootstrap, load, counts.clone())?;
    send_all(&p, topic, load, &counts)?;
    drop(p);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
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

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn latency(target: &Target, rate: u64, seconds: u64, size: usize) -> anyhow::Result<()> {
    let broker = start(target, 1)?;
    let topic = "bench-latency";
    create_topic(target, &broker.bootstrap, topic, 1)?;
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
    let p = producer(&broker.bootstrap, &load, counts.clone())?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
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

//! `agentbus-bench` (run as `agentbus bench …`): start-up time, idle memory, produce/consume
//! throughput and latency, against a broker this command starts as a child process (so its
//! CPU time can be read from /proc), librdkafka's mock cluster (also in a child process), or
//! any running broker; and the pipeline's consumers, `agentbus dev` and `agentbus log`.
//!
//! The drivers live here rather than in the user-facing binary; `agentbus bench` only runs
//! this binary from beside itself. The `agentbus` binary the benchmarks start is the one in
//! `AGENTBUS_BIN` (which `agentbus bench` sets), else the one beside this binary.

mod alert_manager;
mod audit_logger;
mod broker;
mod consumer_run;
mod crash_soak;
mod db_writer;
mod dev;
mod log;
mod metrics_aggregator;
mod pattern_extractor;

use anyhow::{bail, Context};
use broker::{consume, create_topic, latency, percentile, produce, startup};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Benchmarks of the broker, the pipeline's consumers, `agentbus dev` and `agentbus log`.
#[derive(Debug, clap::Parser)]
#[command(name = "agentbus bench", bin_name = "agentbus bench", version)]
struct BenchArgs {
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
    /// Time from a new client to its first Metadata answer (with TLS and SASL on
    /// `--target agentbus-sasl-ssl`).
    Handshake {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 20)]
        rounds: usize,
    },
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
    /// `agentbus` (a child broker in memory), `agentbus-disk`, `agentbus-sasl-ssl` (in
    /// memory, its one listener SASL_SSL with SCRAM-SHA-512), `mock` (librdkafka's mock
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
    /// A librdkafka property for the clients, `key=value` (repeatable): the security
    /// settings of an external broker, say.
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    props: Vec<String>,
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
    /// What the clients need to reach it (security settings).
    props: Vec<(String, String)>,
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

/// The `agentbus` binary to benchmark: `AGENTBUS_BIN`, else the one beside this binary.
fn agentbus_exe() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("AGENTBUS_BIN") {
        return Ok(PathBuf::from(path));
    }
    let me = std::env::current_exe().context("cannot find the agentbus-bench binary")?;
    let beside = me.with_file_name("agentbus");
    if !beside.is_file() {
        bail!(
            "no agentbus binary beside {} (build it with `cargo build --release`, or set AGENTBUS_BIN)",
            me.display()
        );
    }
    Ok(beside)
}

/// Starts `exe` (the broker, or this binary serving the mock) as a child and waits for its
/// ready line.
fn spawn_child(
    exe: &Path,
    args: &[&str],
    marker: &str,
) -> anyhow::Result<(Child, String, Duration)> {
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
    let mut exe = agentbus_exe()?;
    let mut props = target.props()?;
    let (args, dir): (Vec<String>, _) = match target.target.as_str() {
        "agentbus-sasl-ssl" => {
            let (args, dir, secured) = sasl_ssl_broker(&exe)?;
            props.extend(secured);
            (args, Some(dir))
        }
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
        "mock" => {
            exe = std::env::current_exe().context("cannot find the agentbus-bench binary")?;
            (
                vec![
                    "serve-mock".into(),
                    "--partitions".into(),
                    partitions.to_string(),
                ],
                None,
            )
        }
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
                props: target.props()?,
            });
        }
        other => {
            bail!("unknown --target {other}: use agentbus, agentbus-disk, agentbus-sasl-ssl, mock, tansu or external")
        }
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (child, bootstrap, _) = spawn_child(&exe, &args, "bootstrap ")?;
    let pid = child.id();
    Ok(Running {
        bootstrap,
        child: Some(child),
        pid: Some(pid),
        _dir: dir,
        props,
    })
}

impl Target {
    /// The `-X` properties.
    fn props(&self) -> anyhow::Result<Vec<(String, String)>> {
        self.props
            .iter()
            .map(|p| {
                p.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .with_context(|| format!("-X {p}: not key=value"))
            })
            .collect()
    }
}

/// Client properties, `(key, value)`.
type Props = Vec<(String, String)>;

/// A broker whose only listener is SASL_SSL (SCRAM-SHA-512, certificates from
/// `agentbus certs dev`), and the client properties that reach it.
fn sasl_ssl_broker(
    exe: &std::path::Path,
) -> anyhow::Result<(Vec<String>, tempfile_dir::TempDir, Props)> {
    let dir = std::env::temp_dir().join(format!("agentbus-bench-tls-{}", std::process::id()));
    let made = Command::new(exe)
        .args(["certs", "dev", "--dir"])
        .arg(&dir)
        .output()
        .context("agentbus certs dev")?;
    if !made.status.success() {
        bail!(
            "agentbus certs dev: {}",
            String::from_utf8_lossy(&made.stderr)
        );
    }
    let path = |f: &str| dir.join(f).display().to_string();
    let args = vec![
        "broker".into(),
        "--memory".into(),
        "--listeners".into(),
        "SASL_SSL://127.0.0.1:0".into(),
        "--ssl-certificate-location".into(),
        path("broker.pem"),
        "--ssl-key-location".into(),
        path("broker-key.pem"),
        "--scram-users".into(),
        "bench:bench-pw".into(),
    ];
    let props = [
        ("security.protocol", "sasl_ssl".to_string()),
        ("sasl.mechanism", "SCRAM-SHA-512".into()),
        ("sasl.username", "bench".into()),
        ("sasl.password", "bench-pw".into()),
        ("ssl.ca.location", path("ca.pem")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Ok((args, tempfile_dir::TempDir(dir), props))
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
        props: Vec::new(),
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

fn main() -> std::process::ExitCode {
    let args = <BenchArgs as clap::Parser>::parse();
    match run(args.what) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(what: What) -> anyhow::Result<()> {
    match what {
        What::Startup { rounds } => startup(rounds),
        What::Produce(load) => produce(&load),
        What::Handshake { target, rounds } => broker::handshake(&target, rounds),
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
    }
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

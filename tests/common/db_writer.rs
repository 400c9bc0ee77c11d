//! Driving `agentbus consume db-writer` as a child process: events to produce, the
//! process and its HTTP endpoints, PostgreSQL and DLQ checks.
#![allow(dead_code)]

use agentbus_client::{examples, Topic};
use rdkafka::consumer::Consumer as _;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a produced record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Good,
    /// Not JSON.
    BadJson,
    /// JSON of the right shape with an invalid value.
    Invalid,
}

/// One event to produce.
#[derive(Debug, Clone)]
pub struct Event {
    pub topic: Topic,
    pub key: String,
    pub value: Vec<u8>,
    pub id: String,
    pub kind: Kind,
}

fn uuid(a: u32, b: u64) -> String {
    format!("{a:08x}-0000-4000-8000-{b:012x}")
}

/// Event number `i` (0-based) of a run tagged `run`, spread over the eight topics;
/// `bad_every` > 0 makes every `bad_every`-th one malformed, alternately bad JSON and
/// an invalid value.
pub fn event(run: u32, i: usize, bad_every: usize) -> Event {
    let topic = Topic::ALL[i % 8];
    let mut v: Value = serde_json::from_str(examples::json(topic)).expect("example");
    let id = uuid(run, i as u64);
    v["event_id"] = Value::String(id.clone());
    v["correlation_id"] = Value::String(uuid(run + 1, (i / 3) as u64));
    let key = uuid(run + 2, (i % 101) as u64);
    v[topic.key_field()] = Value::String(key.clone());
    let kind = if bad_every > 0 && i % bad_every == bad_every - 1 {
        if (i / bad_every).is_multiple_of(2) {
            Kind::BadJson
        } else {
            Kind::Invalid
        }
    } else {
        Kind::Good
    };
    let value = match kind {
        Kind::Good => serde_json::to_vec(&v).expect("json"),
        Kind::BadJson => format!("{{\"event_id\": \"{id}\", \"oops").into_bytes(),
        Kind::Invalid => {
            v["timestamp"] = Value::String("yesterday".into());
            serde_json::to_vec(&v).expect("json")
        }
    };
    Event {
        topic,
        key,
        value,
        id,
        kind,
    }
}

/// Creates the eight topics with the catalog's partition counts.
pub async fn create_topics(bootstrap: &str) -> i32 {
    let mut total = 0;
    for t in Topic::ALL {
        let partitions = agentbus_client::catalog::spec(t).partitions;
        super::create_topic(bootstrap, t.name(), partitions, &[]).await;
        total += partitions;
    }
    total
}

/// Produces `events` and waits for every acknowledgement.
pub async fn produce(producer: &FutureProducer, events: &[Event]) {
    produce_at(producer, events, None).await;
}

/// Produces `events` with the record timestamp `timestamp` (ms; `None`: now) and waits
/// for every acknowledgement.
pub async fn produce_at(producer: &FutureProducer, events: &[Event], timestamp: Option<i64>) {
    let mut pending = Vec::with_capacity(events.len());
    for e in events {
        let mut record = FutureRecord::to(e.topic.name())
            .key(&e.key)
            .payload(&e.value);
        if let Some(ms) = timestamp {
            record = record.timestamp(ms);
        }
        pending.push(
            producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("enqueue"),
        );
    }
    for p in pending {
        p.await.expect("delivery").expect("acked");
    }
}

/// Produces `events` in three chunks; after each, lets `consumer` apply some, SIGKILLs
/// it at a point it cannot prepare for (different on every run) and starts another
/// with `spawn`, which it returns.
pub async fn kill_three_times(
    producer: &FutureProducer,
    events: &[Event],
    mut consumer: Consumer,
    spawn: impl Fn() -> Consumer,
) -> Consumer {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let chunk = events.len().div_ceil(3);
    for (round, chunk) in events.chunks(chunk).enumerate() {
        produce(producer, chunk).await;
        let wait_ms = 50 + (seed >> (round * 8)) % 400;
        let seen = tokio::task::block_in_place(|| {
            let m = consumer.wait_for("progress", Duration::from_secs(60), |m| {
                m["messages_inserted"].as_u64().unwrap_or(0) > 0
            });
            std::thread::sleep(Duration::from_millis(wait_ms));
            m
        });
        let pid = consumer.pid();
        tokio::task::block_in_place(|| consumer.kill());
        eprintln!(
            "round {round}: killed {pid} after {wait_ms} ms (had written {})",
            seen["messages_inserted"]
        );
        consumer = spawn();
    }
    consumer
}

/// An admin client of `bootstrap`.
pub fn admin(
    bootstrap: &str,
) -> rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client")
}

/// A running `agentbus consume <group>`.
pub struct Consumer {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

/// A running `agentbus consume db-writer`.
pub type DbWriter = Consumer;

impl Consumer {
    /// Starts a db-writer against `bootstrap` and `database_url` with extra `env`, and
    /// waits for its HTTP endpoints.
    pub fn spawn(bootstrap: &str, database_url: &str, env: &[(&str, &str)]) -> Self {
        let mut all = vec![("DATABASE_URL", database_url)];
        all.extend_from_slice(env);
        Self::spawn_group("db-writer", bootstrap, &all)
    }

    /// Starts `agentbus consume <group>` against `bootstrap` with `env`, and waits for
    /// its HTTP endpoints.
    pub fn spawn_group(group: &str, bootstrap: &str, env: &[(&str, &str)]) -> Self {
        Self::spawn_args(&["consume", group], bootstrap, env)
    }

    /// Starts `agentbus <args>` (a consumer) and waits for its HTTP endpoints.
    pub fn spawn_args(args: &[&str], bootstrap: &str, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_agentbus"));
        cmd.args(args)
            .env("KAFKA_BROKERS", bootstrap)
            .env("HTTP_HOST", "127.0.0.1")
            .env("HTTP_PORT", "0")
            .env("SESSION_TIMEOUT_MS", "6000")
            .env("AGENTBUS_LOG", "info,librdkafka=off,rdkafka=off")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn agentbus consume");
        let stderr = child.stderr.take().expect("stderr");
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let mut port_tx = Some(port_tx);
        let (log, _) = super::collect_lines(stderr, move |line| {
            if let Some(port) = agentbus_consumers::runtime::http_port_in_log(line) {
                if let Some(tx) = port_tx.take() {
                    let _ = tx.send(port);
                }
            }
        });
        let port = match port_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(port) => port,
            Err(_) => panic!("{args:?} did not start:\n{}", log.lock().unwrap()),
        };
        Self { child, port, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `GET path`: status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.port, path).unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log()))
    }

    pub fn metrics(&self) -> Value {
        let (status, body) = self.get("/metrics.json");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("metrics.json is JSON")
    }

    /// Polls `/metrics.json` until `done` holds.
    pub fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.metrics();
            if done(&m) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; metrics: {m}\nlog:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(mut self, timeout: Duration) -> (ExitStatus, Duration) {
        let started = Instant::now();
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -TERM failed");
        let status = self.wait_exit(timeout);
        (status, started.elapsed())
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {timeout:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no flush, no commit.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET on loopback.
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    agentbus_consumers::http::get(port, path)
}

/// Prometheus text exposition parsed into `name{labels}` → value; checks every
/// sample line's syntax.
pub fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(meta) = line.strip_prefix("# ") {
            assert!(
                meta.starts_with("HELP ") || meta.starts_with("TYPE "),
                "bad comment: {line}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels: {line}");
        }
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        out.insert(series.to_string(), value);
    }
    out
}

/// Rows per table and distinct ids over all eight tables.
pub fn stored_ids(pg: &agentbus_testkit::Postgres) -> Vec<String> {
    let union = Topic::ALL
        .iter()
        .map(|t| {
            format!(
                "SELECT id::text FROM {}",
                agentbus_consumers::db_writer::table_name(*t)
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let out = pg.psql(&format!("{union} ORDER BY 1")).expect("psql");
    out.lines().map(str::to_string).collect()
}

/// `kafka_offsets` of a group as `(topic, partition) → next offset`.
pub fn stored_offsets(
    pg: &agentbus_testkit::Postgres,
    group: &str,
) -> BTreeMap<(String, i32), i64> {
    let out = pg
        .psql(&format!(
            "SELECT topic, \"partition\", next_offset FROM kafka_offsets WHERE consumer_group = '{group}'"
        ))
        .expect("psql");
    out.lines()
        .filter_map(|l| {
            let mut f = l.split('|');
            Some((
                (f.next()?.to_string(), f.next()?.parse().ok()?),
                f.next()?.parse().ok()?,
            ))
        })
        .collect()
}

/// A record read back from a DLQ topic.
#[derive(Debug)]
pub struct DeadRecord {
    /// The topic it came from (the DLQ's name less `-dlq`).
    pub source: String,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

/// Every record of the eight DLQ topics.
pub fn read_dlq(bootstrap: &str, expected: usize) -> Vec<DeadRecord> {
    let consumer = super::consumer(bootstrap, &[]);
    let mut tpl = rdkafka::TopicPartitionList::new();
    for t in Topic::ALL {
        let dlq = format!("{}-dlq", t.name());
        let md = consumer
            .fetch_metadata(Some(&dlq), Duration::from_secs(10))
            .expect("metadata");
        for p in md.topics()[0].partitions() {
            tpl.add_partition_offset(&dlq, p.id(), rdkafka::Offset::Beginning)
                .expect("tpl");
        }
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    // Read until `expected` arrive, then a little longer to catch extras.
    let mut quiet_until = None;
    loop {
        if out.len() >= expected {
            let until = *quiet_until.get_or_insert_with(|| Instant::now() + Duration::from_secs(1));
            if Instant::now() >= until {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "DLQ: {} of {expected} records",
            out.len()
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let headers = super::headers_of(&m);
                let source = m.topic().trim_end_matches("-dlq").to_string();
                out.push(DeadRecord {
                    source,
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().unwrap_or_default().to_vec(),
                    headers,
                });
            }
            Some(Err(e)) => panic!("DLQ consume error: {e}"),
            None => {}
        }
    }
    out
}

/// Cuts the consumer's store off for ten seconds while `events` keep arriving: `/ready`
/// must turn 503 and `/health` stay 200 (an outage is not a broken process).
pub async fn ten_seconds_down(
    outage: &super::outage::Outage,
    consumer: &Consumer,
    producer: &FutureProducer,
    events: &[Event],
) {
    outage.set_down(true);
    let down_at = Instant::now();
    let mut saw_503 = false;
    let mut chunks = events.chunks(200);
    while down_at.elapsed() < Duration::from_secs(10) {
        if let Some(chunk) = chunks.next() {
            produce(producer, chunk).await;
        }
        let (status, _) = tokio::task::block_in_place(|| consumer.get("/ready"));
        saw_503 |= status == 503;
        assert_eq!(
            consumer.get("/health").0,
            200,
            "an outage is not a broken process"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    for chunk in chunks {
        produce(producer, chunk).await;
    }
    assert!(
        saw_503,
        "/ready never turned 503 during the outage\n{}",
        consumer.log()
    );
}

/// Waits until `a` and `b` both hold partitions and together all `partitions`.
pub fn wait_split(a: &Consumer, b: &Consumer, partitions: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (na, nb) = (
            a.metrics()["assigned_partitions"].as_i64().unwrap(),
            b.metrics()["assigned_partitions"].as_i64().unwrap(),
        );
        if na > 0 && nb > 0 && na + nb == partitions {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "assignment {na} + {nb}\n{}\n{}",
            a.log(),
            b.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `a` and `b` have written `n` events between them, both some.
pub fn wait_written_by_both(a: &Consumer, b: &Consumer, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (wa, wb) = (
            a.metrics()["messages_inserted"].as_u64().unwrap(),
            b.metrics()["messages_inserted"].as_u64().unwrap(),
        );
        if wa + wb == n {
            assert!(wa > 0 && wb > 0, "both write: {wa} + {wb}");
            return;
        }
        assert!(Instant::now() < deadline, "written {wa} + {wb}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The sum of the samples of `name` whose labels contain `label`.
pub fn sum_samples(text: &str, name: &str, label: &str) -> f64 {
    parse_prometheus(text)
        .iter()
        .filter(|(k, _)| k.starts_with(name) && k.contains(label))
        .map(|(_, v)| v)
        .sum()
}

/// The high watermark of every partition of the eight topics that has records.
pub fn ends(broker: &agentbus_testkit::Broker) -> BTreeMap<(String, i32), i64> {
    use agentbus_testkit::Inspect;
    let mut out = BTreeMap::new();
    for t in Topic::ALL {
        for p in 0..agentbus_client::catalog::spec(t).partitions {
            let (_, high, _) = broker.offsets(t.name(), p).expect("partition");
            if high > 0 {
                out.insert((t.name().to_string(), p), high);
            }
        }
    }
    out
}

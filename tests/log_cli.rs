//! `agentbus log …` as the seeds' skills are run, against an in-process broker: the JSON
//! result, the event readable from its topic, `--event FILE|-`, `KAFKA_ENABLE_LOGGING=false`,
//! `DEBUG=true`, validation errors, and a down broker failing within the timeout.
//! Also `agentbus schema TOPIC`.

mod common;

use agentbus_client::events::{self, RoutingDecision, TaskExecution};
use agentbus_client::{examples, Topic};
use agentbus_testkit::Broker;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `agentbus ARGS…` with `env`, feeding `stdin`; kills it after 60 s.
async fn agentbus(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_agentbus"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AGENTBUS_") || k.starts_with("KAFKA_") || k == "DEBUG" {
            cmd.env_remove(k);
        }
    }
    // The spool: a directory of the test's own, and a budget a loaded CI machine meets
    // (tests of the spool set their own).
    let spool_dir = tempfile::tempdir().expect("spool dir");
    cmd.env("AGENTBUS_SPOOL_DIR", spool_dir.path())
        .env("KAFKA_SPOOL_AFTER_MS", "20000");
    cmd.envs(env.iter().copied())
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn agentbus");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input).await.expect("write stdin");
        drop(pipe);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("agentbus {args:?} hung"))
        .expect("run agentbus");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

const CID: &str = "7415f61f-ab2f-4961-97f5-a5f5c6499a4d";

fn routing_args<'a>(bootstrap: &'a str, confidence: &'a str) -> Vec<&'a str> {
    vec![
        "log",
        "routing-decision",
        "--agent",
        "agent-performance",
        "--confidence",
        confidence,
        "--strategy",
        "enhanced_fuzzy_matching",
        "--latency-ms",
        "45",
        "--user-request",
        "optimize database queries",
        "--reasoning",
        "High confidence match",
        "--correlation-id",
        CID,
        "--alternatives",
        r#"[{"agent_name": "agent-database", "confidence_score": 0.85, "reason": "Database keyword match"}]"#,
        "--bootstrap-server",
        bootstrap,
    ]
}

/// Reads the record at `partition`/`offset` of `topic`.
fn read_at(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> rdkafka::message::OwnedMessage {
    let consumer = common::consumer(bootstrap, &[]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
        .expect("partition");
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "record {topic}/{partition}@{offset} not readable"
        );
        if let Some(r) = consumer.poll(Duration::from_millis(200)) {
            let m = r.expect("consume");
            assert_eq!(m.offset(), offset);
            return m.detach();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_routing_decision_prints_the_result_and_the_event_is_readable() {
    let broker = Broker::start().await.expect("broker");
    let bootstrap = broker.bootstrap();
    common::create_topic(&bootstrap, "agent-routing-decisions", 6, &[]).await;

    let run = agentbus(
        &routing_args(&bootstrap, "0.92"),
        &[("DEBUG", "true")],
        None,
    )
    .await;
    assert_eq!(
        run.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    let out = run.json();
    assert_eq!(out["success"], true);
    assert_eq!(out["topic"], "agent-routing-decisions");
    assert_eq!(out["latency_ms"], 45);
    let keys: Vec<&str> = out
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for k in [
        "success",
        "event_id",
        "topic",
        "partition",
        "offset",
        "latency_ms",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    // DEBUG=true: delivery details on stderr, as the seeds' script prints them.
    assert!(
        run.stderr.contains("Published routing decision to Kafka"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("Partition: {}", out["partition"])),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("Offset: {}", out["offset"])),
        "{}",
        run.stderr
    );

    let partition = out["partition"].as_i64().unwrap() as i32;
    let m = read_at(
        &bootstrap,
        "agent-routing-decisions",
        partition,
        out["offset"].as_i64().unwrap(),
    );
    assert_eq!(m.key(), Some(CID.as_bytes()));
    let e: RoutingDecision = events::decode(m.payload().expect("payload")).expect("valid event");
    assert_eq!(e.event_id.as_str(), out["event_id"].as_str().unwrap());
    assert_eq!(e.correlation_id.as_str(), CID);
    assert_eq!(e.selected_agent, "agent-performance");
    assert_eq!(e.confidence_score, 0.92);
    assert_eq!(e.routing_strategy, "enhanced_fuzzy_matching");
    assert_eq!(e.routing_time_ms, 45);
    assert_eq!(e.user_request, "optimize database queries");
    assert_eq!(e.alternatives.len(), 1);
    assert_eq!(e.alternatives[0].agent_name, "agent-database");
    assert!(e.timestamp.check("timestamp").is_ok());

    // Without DEBUG, stderr stays quiet.
    let quiet = agentbus(&routing_args(&bootstrap, "0.5"), &[], None).await;
    assert_eq!(quiet.code, Some(0), "{}", quiet.stderr);
    assert_eq!(quiet.stderr.trim(), "");
    assert_eq!(
        quiet.json()["partition"],
        out["partition"],
        "same correlation id, same partition"
    );
    assert_eq!(
        quiet.json()["offset"].as_i64(),
        Some(out["offset"].as_i64().unwrap() + 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_publishes_a_whole_event_from_a_file_or_stdin() {
    let broker = Broker::start().await.expect("broker");
    let bootstrap = broker.bootstrap();
    common::create_topic(&bootstrap, "task-executions", 12, &[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("event.json");
    std::fs::write(&file, examples::json(Topic::TaskExecutions)).expect("write");
    let path = file.to_str().unwrap();

    let from_file = agentbus(
        &[
            "log",
            "--topic",
            "task-executions",
            "--event",
            path,
            "--bootstrap-server",
            &bootstrap,
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(from_file.code, Some(0), "{}", from_file.stderr);
    let out = from_file.json();
    assert_eq!(out["event_id"], examples::EVENT_ID);
    let m = read_at(
        &bootstrap,
        "task-executions",
        out["partition"].as_i64().unwrap() as i32,
        out["offset"].as_i64().unwrap(),
    );
    let e: TaskExecution = events::decode(m.payload().unwrap()).expect("valid");
    assert_eq!(m.key(), Some(e.fingerprint_id.as_str().as_bytes()));

    let from_stdin = agentbus(
        &[
            "log",
            "--topic",
            "task-execution",
            "--event",
            "-",
            "--bootstrap-server",
            &bootstrap,
        ],
        &[],
        Some(examples::json(Topic::TaskExecutions).as_bytes()),
    )
    .await;
    assert_eq!(from_stdin.code, Some(0), "{}", from_stdin.stderr);
    assert_eq!(from_stdin.json()["partition"], out["partition"]);

    // A whole event is validated against its schema.
    let bad = examples::json(Topic::TaskExecutions).replace("0.92", "1.92");
    let rejected = agentbus(
        &[
            "log",
            "--topic",
            "task-executions",
            "--event",
            "-",
            "--bootstrap-server",
            &bootstrap,
        ],
        &[],
        Some(bad.as_bytes()),
    )
    .await;
    assert_eq!(rejected.code, Some(1));
    assert_eq!(rejected.json()["success"], false);
    assert_eq!(
        rejected.json()["error"],
        "quality_score: 1.92 is outside 0..=1"
    );
}

#[tokio::test]
async fn log_fails_within_the_timeout_when_the_broker_is_down() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bootstrap = format!("127.0.0.1:{port}");
    let mut args = routing_args(&bootstrap, "0.9");
    args.extend_from_slice(&["--timeout-ms", "1000"]);
    let run = agentbus(&args, &[("AGENTBUS_SPOOL", "off")], None).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.elapsed < Duration::from_millis(2500),
        "took {:?}",
        run.elapsed
    );
    let out = run.json();
    assert_eq!(out["success"], false);
    assert!(
        out["error"].as_str().unwrap().contains("within 1000 ms"),
        "{out}"
    );
    assert!(
        run.stderr.contains("Kafka publish failed"),
        "{}",
        run.stderr
    );

    // The same through the environment.
    let mut args = routing_args(&bootstrap, "0.9");
    args.truncate(args.len() - 2);
    let run = agentbus(
        &args,
        &[
            ("KAFKA_BROKERS", &bootstrap),
            ("KAFKA_TIMEOUT_MS", "700"),
            ("AGENTBUS_SPOOL", "off"),
        ],
        None,
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.elapsed < Duration::from_millis(2200),
        "took {:?}",
        run.elapsed
    );
}

#[tokio::test]
async fn log_disabled_succeeds_without_the_network_and_invalid_input_fails() {
    let disabled = agentbus(
        &routing_args("127.0.0.1:1", "0.9"),
        &[("KAFKA_ENABLE_LOGGING", "false")],
        None,
    )
    .await;
    assert_eq!(disabled.code, Some(0), "{disabled:?}");
    assert!(disabled.elapsed < Duration::from_secs(2));
    let out = disabled.json();
    assert_eq!(out["success"], true);
    assert_eq!(
        out["message"],
        "Kafka logging disabled (KAFKA_ENABLE_LOGGING=false)"
    );
    assert_eq!(out["event_id"], Value::Null);

    let invalid = agentbus(&routing_args("127.0.0.1:1", "1.5"), &[], None).await;
    assert_eq!(invalid.code, Some(1));
    assert_eq!(
        invalid.json()["error"],
        "confidence_score: 1.5 is outside 0..=1"
    );
    assert!(invalid
        .stderr
        .contains("confidence_score: 1.5 is outside 0..=1"));

    let missing = agentbus(
        &[
            "log",
            "success-pattern",
            "--pattern-id",
            CID,
            "--pattern-name",
            "p",
            "--pattern-type",
            "workflow",
            "--correlation-id",
            CID,
            "--bootstrap-server",
            "127.0.0.1:1",
        ],
        &[],
        None,
    )
    .await;
    assert_eq!(missing.code, Some(1));
    assert_eq!(missing.json()["error"], "pattern_template: is required");
}

#[tokio::test]
async fn schema_prints_each_topics_json_schema() {
    for topic in Topic::ALL {
        let run = agentbus(&["schema", topic.name()], &[], None).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let s = run.json();
        assert_eq!(s["x-kafka-topic"], topic.name());
        assert_eq!(s["type"], "object");
        let props = s["properties"].as_object().expect("properties");
        let example: Value = serde_json::from_str(examples::json(topic)).unwrap();
        for field in example.as_object().unwrap().keys() {
            assert!(
                props.contains_key(field),
                "{topic}: {field} missing from the schema"
            );
        }
        assert_eq!(
            props.len(),
            example.as_object().unwrap().len(),
            "{topic}: extra fields"
        );
    }
    let by_command = agentbus(&["schema", "routing-decision"], &[], None).await;
    assert_eq!(
        by_command.json()["x-kafka-topic"],
        "agent-routing-decisions"
    );
    let unknown = agentbus(&["schema", "nope"], &[], None).await;
    assert_ne!(unknown.code, Some(0));
    assert!(
        unknown.stderr.contains("unknown topic"),
        "{}",
        unknown.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_environment_values_publish_and_nonsense_only_warns() {
    use agentbus_testkit::Inspect;
    let broker = Broker::start().await.expect("broker");
    let bootstrap = broker.bootstrap();
    common::create_topic(&bootstrap, "agent-routing-decisions", 6, &[]).await;
    for env in [
        ("DEBUG", "express:*"),
        ("DEBUG", "2"),
        ("KAFKA_ACKS", "1"),
        ("KAFKA_ACKS", "0"),
        ("KAFKA_ACKS", "most"),
        ("KAFKA_COMPRESSION", "brotli"),
    ] {
        let run = agentbus(&routing_args(&bootstrap, "0.5"), &[env], None).await;
        assert_eq!(run.code, Some(0), "{env:?}: {}\n{}", run.stdout, run.stderr);
        assert_eq!(run.json()["success"], true, "{env:?}");
        let warned = run.stderr.contains(&format!("warning: {}=", env.0));
        let nonsense = matches!(env.1, "most" | "brotli");
        assert_eq!(warned, nonsense, "{env:?}: {}", run.stderr);
    }
    let total: i64 = (0..6)
        .map(|p| broker.offsets("agent-routing-decisions", p).unwrap().1)
        .sum();
    assert_eq!(total, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_calls_leave_no_producer_ids_behind() {
    let broker = Broker::start().await.expect("broker");
    let bootstrap = broker.bootstrap();
    common::create_topic(&bootstrap, "agent-routing-decisions", 6, &[]).await;
    let before = broker.inspect().producer_id_count();
    for _ in 0..20 {
        let run = agentbus(&routing_args(&bootstrap, "0.5"), &[], None).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    assert_eq!(broker.inspect().producer_id_count(), before);
}

#[tokio::test]
async fn a_failed_publish_names_the_event_id_it_tried() {
    let run = agentbus(
        &routing_args("127.0.0.1:1", "0.5"),
        &[("KAFKA_TIMEOUT_MS", "300"), ("AGENTBUS_SPOOL", "off")],
        None,
    )
    .await;
    assert_eq!(run.code, Some(1));
    let out = run.json();
    assert_eq!(out["success"], false);
    assert!(
        out["event_id"].as_str().is_some_and(|id| id.len() == 36),
        "{out}"
    );
    assert_eq!(out["topic"], "agent-routing-decisions");
}

/// `agentbus spool flush` of `spool_dir` into `bootstrap`.
async fn spool_flush(spool_dir: &str, bootstrap: &str) -> Run {
    agentbus(
        &[
            "spool",
            "flush",
            "--dir",
            spool_dir,
            "--bootstrap-server",
            bootstrap,
        ],
        &[],
        None,
    )
    .await
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Event ids of agent-routing-decisions, per partition in log order.
fn routing_ids(bootstrap: &str) -> Vec<String> {
    let mut out = Vec::new();
    let consumer = common::consumer(bootstrap, &[("enable.partition.eof", "true")]);
    let mut tpl = TopicPartitionList::new();
    for p in 0..6 {
        tpl.add_partition_offset("agent-routing-decisions", p, Offset::Beginning)
            .unwrap();
    }
    rdkafka::consumer::Consumer::assign(&consumer, &tpl).unwrap();
    let mut eof = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while eof < 6 && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let v: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
                out.push(v["event_id"].as_str().unwrap().to_string());
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => eof += 1,
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_broker_spools_and_the_spool_is_delivered_in_order_once() {
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().to_str().unwrap();
    let port = free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let env = [
        ("AGENTBUS_SPOOL_DIR", spool_dir),
        ("KAFKA_SPOOL_AFTER_MS", "50"),
    ];
    let mut ids = Vec::new();
    for _ in 0..30 {
        let run = agentbus(&routing_args(&bootstrap, "0.5"), &env, None).await;
        assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
        let out = run.json();
        assert_eq!(
            (out["success"].clone(), out["spooled"].clone()),
            (Value::Bool(true), Value::Bool(true)),
            "{out}"
        );
        assert!(run.elapsed < Duration::from_secs(3), "{:?}", run.elapsed);
        ids.push(out["event_id"].as_str().unwrap().to_string());
    }
    let status = agentbus(&["spool", "status", "--dir", spool_dir], &[], None).await;
    assert!(
        status
            .stdout
            .contains("agent-routing-decisions\t30 waiting"),
        "{}",
        status.stdout
    );

    // The broker comes up on that port: the flush delivers every event, in order, once.
    let broker = Broker::builder()
        .configure(|c| c.listen = bootstrap.clone())
        .start()
        .await
        .unwrap();
    common::create_topic(&broker.bootstrap(), "agent-routing-decisions", 6, &[]).await;
    let flush = spool_flush(spool_dir, &bootstrap).await;
    assert_eq!(flush.code, Some(0), "{}\n{}", flush.stdout, flush.stderr);
    assert!(flush.stdout.contains("delivered 30"), "{}", flush.stdout);
    // One key (the correlation id): one partition, in the order of the calls.
    assert_eq!(routing_ids(&bootstrap), ids);
    let again = spool_flush(spool_dir, &bootstrap).await;
    assert!(again.stdout.contains("delivered 0"), "{}", again.stdout);

    // Spooled while down, delivered by the next call that finds the broker up.
    let dead = format!("127.0.0.1:{}", free_port());
    for _ in 0..5 {
        let run = agentbus(&routing_args(&dead, "0.5"), &env, None).await;
        ids.push(run.json()["event_id"].as_str().unwrap().to_string());
    }
    let run = agentbus(&routing_args(&bootstrap, "0.5"), &env, None).await;
    assert_eq!(run.json()["spooled"], Value::Null, "{}", run.stdout);
    let mut want = ids.clone();
    want.push(run.json()["event_id"].as_str().unwrap().to_string());
    // The spooled events first, then the new one: it never overtakes them.
    assert_eq!(routing_ids(&bootstrap), want);
}

/// Appends `n` valid routing decisions (one correlation id, so one partition) to the
/// spool in `dir`, as that many calls with the broker down would; their ids in order.
fn spool_routing_decisions(dir: &std::path::Path, n: usize) -> Vec<String> {
    let spool = agentbus_client::spool::Spool::new(dir);
    let mut value: Value =
        serde_json::from_str(examples::json(Topic::AgentRoutingDecisions)).expect("example");
    value["correlation_id"] = CID.into();
    (0..n)
        .map(|_| {
            let id = uuid::Uuid::new_v4().to_string();
            value["event_id"] = id.clone().into();
            let entry = agentbus_client::spool::Entry {
                key: CID.into(),
                value: value.to_string(),
                spooled_at_ms: 0,
            };
            spool
                .append("agent-routing-decisions", &entry)
                .expect("append");
            id
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_spooled_events_reach_the_database_once_though_a_flush_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().to_str().unwrap();
    let ids = spool_routing_decisions(dir.path(), 1000);
    let broker = Broker::start().await.unwrap();
    let bootstrap = broker.bootstrap();
    common::db_writer::create_topics(&bootstrap).await;
    let pg = agentbus_testkit::Postgres::start().await.expect("postgres");
    let writer = common::db_writer::DbWriter::spawn(&bootstrap, pg.url(), &[]);

    // A flush killed once the first events reached the broker, then run again.
    let mut flush = std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args(["spool", "flush", "--dir", spool_dir])
        .args(["--bootstrap-server", &bootstrap])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn flush");
    let on_broker = || common::records_on(&broker, "agent-routing-decisions", 6);
    let deadline = Instant::now() + Duration::from_secs(30);
    while on_broker() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    flush.kill().expect("kill flush");
    let _ = flush.wait();
    assert!(on_broker() > 0, "the flush delivered nothing in 30 s");
    let again = spool_flush(spool_dir, &bootstrap).await;
    assert_eq!(again.code, Some(0), "{}\n{}", again.stdout, again.stderr);
    assert!(again.stdout.contains("0 still waiting"), "{}", again.stdout);
    // The broker may hold some twice (sent before the kill, sent again); the table never.
    let mut want = ids.clone();
    want.sort();
    tokio::task::block_in_place(|| {
        writer.wait_for("1,000 rows", Duration::from_secs(60), |m| {
            m["messages_inserted"] == 1000
        })
    });
    assert_eq!(common::db_writer::stored_ids(&pg), want);
    // Every copy on the broker is one of the thousand, the first copies in spool order.
    let got = routing_ids(&bootstrap);
    let mut first_seen = Vec::new();
    for id in &got {
        assert!(ids.contains(id), "{id} was never spooled");
        if !first_seen.contains(id) {
            first_seen.push(id.clone());
        }
    }
    assert_eq!(first_seen, ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_later_call_delivers_a_thousand_spooled_events_before_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut ids = spool_routing_decisions(dir.path(), 1000);
    let broker = Broker::start().await.unwrap();
    let bootstrap = broker.bootstrap();
    common::create_topic(&bootstrap, "agent-routing-decisions", 6, &[]).await;
    let env = [("AGENTBUS_SPOOL_DIR", dir.path().to_str().unwrap())];
    let run = agentbus(&routing_args(&bootstrap, "0.5"), &env, None).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.json()["spooled"], Value::Null, "{}", run.stdout);
    ids.push(run.json()["event_id"].as_str().unwrap().to_string());
    assert_eq!(routing_ids(&bootstrap), ids);
    let status = agentbus(
        &["spool", "status", "--dir", dir.path().to_str().unwrap()],
        &[],
        None,
    )
    .await;
    assert!(status.stdout.contains("nothing waits"), "{}", status.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_spooling_at_once_leave_every_entry_once() {
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().to_str().unwrap();
    let dead = format!("127.0.0.1:{}", free_port());
    // Eight agents at a time, five rounds: 40 processes appending to one file.
    let mut ids = Vec::new();
    for _ in 0..5 {
        let mut runs = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (dead, spool_dir) = (dead.clone(), spool_dir.to_string());
            runs.spawn(async move {
                let env = [
                    ("AGENTBUS_SPOOL_DIR", spool_dir.as_str()),
                    ("KAFKA_SPOOL_AFTER_MS", "50"),
                ];
                agentbus(&routing_args(&dead, "0.5"), &env, None).await
            });
        }
        while let Some(run) = runs.join_next().await {
            let run = run.expect("join");
            assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
            assert_eq!(run.json()["spooled"], Value::Bool(true), "{}", run.stdout);
            ids.push(run.json()["event_id"].as_str().unwrap().to_string());
        }
    }
    let spool = agentbus_client::spool::Spool::new(dir.path());
    let contents = spool.read("agent-routing-decisions").unwrap();
    assert_eq!(contents.torn_bytes, 0);
    let mut got: Vec<String> = contents
        .entries
        .iter()
        .map(|(e, _)| {
            let v: Value = serde_json::from_str(&e.value).unwrap();
            v["event_id"].as_str().unwrap().to_string()
        })
        .collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids);
}

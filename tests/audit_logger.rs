//! The audit-logger end to end: the real broker (testkit), the real `agentbus consume
//! audit-logger` process, its archive in a local directory read back with the
//! `parquet` crate and checked against the broker's logs.

mod common;

use agentbus_client::Topic;
use agentbus_testkit::{Broker, Inspect};
use common::audit::{self, GROUP};
use common::db_writer::{self as dbw, Consumer, Kind};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use std::path::Path;
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);
const PREFIX: &str = "events/";

fn spawn(broker: &Broker, dir: &Path, env: &[(&str, &str)]) -> Consumer {
    let url = format!("file://{}", dir.display());
    let mut all = vec![("AUDIT_URL", url.as_str())];
    all.extend_from_slice(env);
    Consumer::spawn_group("audit-logger", &broker.bootstrap(), &all)
}

/// Waits until the archive's names reach every partition's log end.
async fn wait_archived(broker: &Broker, dir: &Path, context: impl Fn() -> String) {
    let root = dir.join(PREFIX);
    common::members::wait_for_showing(
        "the archive to reach the log ends",
        90,
        || audit::archived_ends(&audit::files(&root)) == dbw::ends(broker),
        context,
    )
    .await;
}

/// Produces `events`, every fifth with two headers (one without a value).
async fn produce_with_headers(broker: &Broker, events: &[dbw::Event]) {
    let producer = common::producer(&broker.bootstrap(), &[]);
    let mut pending = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let mut r = FutureRecord::to(e.topic.name())
            .key(&e.key)
            .payload(&e.value);
        if i % 5 == 0 {
            r = r.headers(
                OwnedHeaders::new()
                    .insert(Header {
                        key: "trace",
                        value: Some(&[0u8, 159, 146, 150][..]),
                    })
                    .insert(Header {
                        key: "empty",
                        value: None::<&[u8]>,
                    }),
            );
        }
        pending.push(producer.send_result(r).map_err(|(e, _)| e).unwrap());
    }
    for p in pending {
        p.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_events_archived_exactly_once() {
    let broker = Broker::start().await.unwrap();
    dbw::create_topics(&broker.bootstrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<dbw::Event> = (0..20_000).map(|i| dbw::event(21, i, 100)).collect();
    produce_with_headers(&broker, &events).await;
    let logger = spawn(
        &broker,
        dir.path(),
        &[("FLUSH_SIZE", "700"), ("ROTATE_IDLE_MS", "500")],
    );
    wait_archived(&broker, dir.path(), || logger.log()).await;
    audit::assert_exactly_once(dir.path(), PREFIX, &broker);

    // Headers, bad values and typed columns came through.
    let rows = audit::all_rows(&dir.path().join(PREFIX));
    assert_eq!(rows.len(), 20_000);
    let with_headers = rows.iter().filter(|(_, r)| !r.headers.is_empty()).count();
    assert_eq!(with_headers, 4_000);
    let (_, h) = rows.iter().find(|(_, r)| !r.headers.is_empty()).unwrap();
    assert_eq!(
        h.headers,
        vec![
            ("trace".to_string(), Some(vec![0u8, 159, 146, 150])),
            ("empty".to_string(), None)
        ]
    );
    let bad: Vec<_> = rows.iter().filter(|(_, r)| r.error.is_some()).collect();
    assert_eq!(bad.len(), 200, "the archive keeps the bad ones too");
    assert!(bad.iter().all(|(_, r)| r.event_id.is_none()));
    assert_eq!(
        bad.iter()
            .filter(|(_, r)| r.error.as_deref().unwrap().starts_with("VALIDATE: "))
            .count(),
        100
    );
    let good = events.iter().filter(|e| e.kind == Kind::Good).count();
    let ids: std::collections::BTreeSet<&str> = rows
        .iter()
        .filter_map(|(_, r)| r.event_id.as_deref())
        .collect();
    assert_eq!(ids.len(), good);
    let action = rows
        .iter()
        .find(|(_, r)| r.topic == "agent-actions" && r.error.is_none())
        .unwrap();
    let typed: Vec<&str> = action.1.typed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        typed,
        ["agent_name", "action_type", "action_name", "duration_ms"]
    );
    assert_eq!(action.1.typed[1].1, "tool_call");
    assert!(action.1.event_timestamp.is_some() && action.1.correlation_id.is_some());
    assert_eq!(action.1.timestamp_type, "CreateTime");

    // They went to the DLQ as well.
    let dlq = tokio::task::block_in_place(|| dbw::read_dlq(&broker.bootstrap(), 200));
    assert_eq!(dlq.len(), 200);
    assert!(dlq
        .iter()
        .all(|d| d.headers["__connect.errors.consumer.group"] == GROUP));

    // The metrics, and Kafka's committed offsets (after the upload) for lag tools.
    let (_, text) = logger.get("/metrics");
    let files = dbw::sum_samples(&text, "agentbus_audit_files_uploaded_total", GROUP);
    assert_eq!(
        files as usize,
        audit::files(&dir.path().join(PREFIX)).len(),
        "{text}"
    );
    assert!(dbw::sum_samples(&text, "agentbus_audit_bytes_uploaded_total", GROUP) > 0.0);
    assert!(text.contains("agentbus_audit_upload_duration_seconds_count{group=\"audit-group\"}"));
    assert!(
        text.contains("agentbus_audit_lag_seconds{group=\"audit-group\"} 0.000"),
        "{text}"
    );
    common::members::wait_for_showing(
        "Kafka's committed offsets",
        30,
        || broker.committed(GROUP) == dbw::ends(&broker),
        || format!("{:?}", broker.committed(GROUP)),
    )
    .await;

    // `agentbus audit cat` prints the records of a partition as JSON lines.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args([
            "audit",
            "cat",
            "--topic",
            "agent-actions",
            "--partition",
            "0",
        ])
        .env("AUDIT_URL", format!("file://{}", dir.path().display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), broker.records("agent-actions", 0).len());
    assert!(lines
        .iter()
        .all(|l| l["topic"] == "agent-actions" && l["partition"] == 0));
    let (status, _) = tokio::task::block_in_place(|| logger.terminate(Duration::from_secs(30)));
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_three_times_and_a_rebalance_with_open_files_lose_and_duplicate_nothing() {
    let broker = Broker::start().await.unwrap();
    let bootstrap = broker.bootstrap();
    dbw::create_topics(&bootstrap).await;
    let dir = tempfile::tempdir().unwrap();
    let producer = common::producer(&bootstrap, &[]);
    let events: Vec<dbw::Event> = (0..15_000).map(|i| dbw::event(22, i, 0)).collect();
    let env = [
        ("FLUSH_SIZE", "150"),
        ("ROTATE_IDLE_MS", "300"),
        ("BATCH_SIZE", "50"),
    ];
    let first = spawn(&broker, dir.path(), &env);
    let logger = dbw::kill_three_times(&producer, &events[..9_000], first, || {
        spawn(&broker, dir.path(), &env)
    })
    .await;
    wait_archived(&broker, dir.path(), || logger.log()).await;
    audit::assert_exactly_once(dir.path(), PREFIX, &broker);

    // Open files (large, not idle) when a second member joins: the revoked partitions'
    // open files are discarded and archived by their new owner.
    logger.kill();
    let open = [("FLUSH_SIZE", "100000"), ("ROTATE_IDLE_MS", "4000")];
    let a = spawn(&broker, dir.path(), &open);
    dbw::produce(&producer, &events[9_000..12_000]).await;
    tokio::task::block_in_place(|| {
        a.wait_for("a's open files", MINUTE, |m| {
            m["messages_consumed"] == 3_000
        })
    });
    let b = spawn(&broker, dir.path(), &open);
    let partitions: i64 = Topic::ALL
        .iter()
        .map(|t| i64::from(agentbus_client::catalog::spec(*t).partitions))
        .sum();
    tokio::task::block_in_place(|| dbw::wait_split(&a, &b, partitions));
    dbw::produce(&producer, &events[12_000..]).await;
    wait_archived(&broker, dir.path(), || {
        format!("A:\n{}\nB:\n{}", a.log(), b.log())
    })
    .await;
    audit::assert_exactly_once(dir.path(), PREFIX, &broker);
    assert!(
        a.log()
            .contains("discarded the open files of revoked partitions"),
        "{}",
        a.log()
    );
}

#[test]
fn bad_settings_stop_startup_naming_them() {
    let run = |env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"));
        cmd.args(["consume", "audit-logger"])
            .env("HTTP_PORT", "0")
            .env_remove("S3_BUCKET")
            .env_remove("AWS_ACCESS_KEY_ID");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(run(&[("S3_BUCKET", "b")]).contains("AWS_ACCESS_KEY_ID"));
    assert!(run(&[("AUDIT_URL", "ftp://x")]).contains("AUDIT_URL"));
    assert!(run(&[("AUDIT_URL", "file:///proc/agentbus-audit")]).contains("AUDIT_URL"));
    assert!(run(&[("AUDIT_URL", "file:///tmp/x"), ("FLUSH_SIZE", "0")]).contains("FLUSH_SIZE"));
}

#[test]
fn the_schema_is_stable() {
    let schema = agentbus_consumers::audit_logger::schema::message_type(Topic::AgentActions);
    assert_eq!(
        schema,
        "message agentbus_audit { REQUIRED BYTE_ARRAY topic (STRING); REQUIRED INT32 partition; \
         REQUIRED INT64 offset; OPTIONAL INT64 timestamp (TIMESTAMP(MILLIS,true)); \
         REQUIRED BYTE_ARRAY timestamp_type (STRING); OPTIONAL BYTE_ARRAY key; \
         REPEATED GROUP headers { REQUIRED BYTE_ARRAY name (STRING); OPTIONAL BYTE_ARRAY value; } \
         OPTIONAL BYTE_ARRAY event_id (STRING); OPTIONAL BYTE_ARRAY correlation_id (STRING); \
         OPTIONAL INT64 event_timestamp (TIMESTAMP(MILLIS,true)); OPTIONAL BYTE_ARRAY value; \
         OPTIONAL BYTE_ARRAY error (STRING); OPTIONAL BYTE_ARRAY agent_name (STRING); \
         OPTIONAL BYTE_ARRAY action_type (STRING); OPTIONAL BYTE_ARRAY action_name (STRING); \
         OPTIONAL INT64 duration_ms; }"
    );
}

/// The typed columns of every topic (after the columns every file has), pinned: the
/// README's schema table, with their Parquet types.
#[test]
fn every_topics_typed_columns_are_stable() {
    let s = |name: &str| format!("OPTIONAL BYTE_ARRAY {name} (STRING); ");
    let i = |name: &str| format!("OPTIONAL INT64 {name}; ");
    let f = |name: &str| format!("OPTIONAL DOUBLE {name}; ");
    let b = |name: &str| format!("OPTIONAL BOOLEAN {name}; ");
    let pinned = [
        (
            Topic::AgentActions,
            [
                s("agent_name"),
                s("action_type"),
                s("action_name"),
                i("duration_ms"),
            ]
            .concat(),
        ),
        (
            Topic::AgentRoutingDecisions,
            [
                s("selected_agent"),
                s("routing_strategy"),
                f("confidence_score"),
                i("routing_time_ms"),
            ]
            .concat(),
        ),
        (
            Topic::AgentTransformationEvents,
            [
                s("source_agent"),
                s("target_agent"),
                b("success"),
                i("transformation_duration_ms"),
            ]
            .concat(),
        ),
        (
            Topic::RouterPerformanceMetrics,
            [
                s("trigger_match_strategy"),
                b("cache_hit"),
                i("candidates_evaluated"),
                i("routing_duration_ms"),
            ]
            .concat(),
        ),
        (
            Topic::TaskExecutions,
            [
                s("fingerprint_id"),
                s("task_type"),
                s("agent_name"),
                b("success"),
                f("quality_score"),
                i("total_duration_ms"),
            ]
            .concat(),
        ),
        (
            Topic::CodeQualityMetrics,
            [
                s("path_id"),
                s("file_path"),
                s("language"),
                f("quality_score"),
            ]
            .concat(),
        ),
        (
            Topic::SuccessPatterns,
            [s("pattern_id"), s("pattern_name"), s("pattern_type")].concat(),
        ),
        (
            Topic::FailurePatterns,
            [s("failure_id"), s("failure_type"), s("error_category")].concat(),
        ),
    ];
    assert_eq!(pinned.len(), Topic::ALL.len());
    for (topic, typed) in pinned {
        let schema = agentbus_consumers::audit_logger::schema::message_type(topic);
        let (_, tail) = schema
            .split_once("OPTIONAL BYTE_ARRAY error (STRING); ")
            .expect("the columns every file has");
        assert_eq!(tail, format!("{typed}}}"), "{topic}");
    }
}

const BUCKET: &str = "agent-observability-audit";

fn spawn_s3(broker: &Broker, endpoint: &str, env: &[(&str, &str)]) -> Consumer {
    let mut all = vec![
        ("S3_BUCKET", BUCKET),
        ("S3_PREFIX", PREFIX),
        ("S3_ENDPOINT", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", common::s3::ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", common::s3::SECRET_KEY),
    ];
    all.extend_from_slice(env);
    Consumer::spawn_group("audit-logger", &broker.bootstrap(), &all)
}

/// `agentbus audit ls` against the S3 server: the keys, sorted.
fn s3_listing(endpoint: &str) -> Vec<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args([
            "audit",
            "ls",
            "--s3-bucket",
            BUCKET,
            "--s3-endpoint",
            endpoint,
        ])
        .env("AWS_ACCESS_KEY_ID", common::s3::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", common::s3::SECRET_KEY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
}

/// Files in the bucket that are neither archive files nor markers (partial uploads).
fn strays(dir: &Path) -> Vec<String> {
    audit::walk(dir)
        .into_iter()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|n| !(n.ends_with(".parquet") || (n.contains("/markers/") && n.ends_with(".json"))))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_to_an_s3_compatible_server() {
    let broker = Broker::start().await.unwrap();
    dbw::create_topics(&broker.bootstrap()).await;
    let s3 = common::s3::S3::start(BUCKET).await;
    let events: Vec<dbw::Event> = (0..5_000).map(|i| dbw::event(23, i, 0)).collect();
    dbw::produce(&common::producer(&broker.bootstrap(), &[]), &events).await;
    let logger = spawn_s3(
        &broker,
        &s3.endpoint(),
        &[("FLUSH_SIZE", "400"), ("ROTATE_IDLE_MS", "500")],
    );
    let bucket = s3.bucket_dir(BUCKET);
    wait_archived(&broker, &bucket, || logger.log()).await;
    audit::assert_exactly_once(&bucket, PREFIX, &broker);
    // Listed by prefix through the S3 API, as `aws s3 ls s3://…/events/ --recursive`.
    let on_disk: Vec<String> = audit::files(&bucket.join(PREFIX))
        .into_iter()
        .map(|f| format!("{PREFIX}{f}"))
        .collect();
    assert_eq!(s3_listing(&s3.endpoint()), on_disk);
    assert!(on_disk.iter().all(|k| k.starts_with("events/topics/")));
    assert_eq!(strays(&bucket), Vec::<String>::new());

    // Refused keys stop start-up naming the setting (s3s-fs creates missing buckets, so
    // the bucket case is covered by `setting_for`'s unit test).
    // The S3 server runs in this process: wait for the child without blocking it.
    let start = |bucket: &str, key: &str, secret: &str| {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_agentbus"))
            .args(["consume", "audit-logger"])
            .env("KAFKA_BROKERS", broker.bootstrap())
            .env("HTTP_PORT", "0")
            .env("S3_BUCKET", bucket)
            .env("S3_ENDPOINT", s3.endpoint())
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .stdout(std::process::Stdio::null())
            .stderr(log.reopen().unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        async move {
            let status = tokio::time::timeout(Duration::from_secs(60), child.wait()).await;
            let stderr = std::fs::read_to_string(log.path()).unwrap();
            match status {
                Ok(status) => assert!(!status.unwrap().success(), "{stderr}"),
                Err(_) => panic!("start-up with bad S3 settings went on for 60 s:\n{stderr}"),
            }
            stderr
        }
    };
    let (key, secret) = (common::s3::ACCESS_KEY, common::s3::SECRET_KEY);
    let e = start(BUCKET, "wrong-key", secret).await;
    assert!(e.contains("AWS_ACCESS_KEY_ID: cannot write"), "{e}");
    let e = start(BUCKET, key, "wrong-secret").await;
    assert!(e.contains("AWS_SECRET_ACCESS_KEY: cannot write"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_outage_pauses_and_resumes_with_nothing_lost_or_doubled() {
    let broker = Broker::start().await.unwrap();
    let bootstrap = broker.bootstrap();
    dbw::create_topics(&bootstrap).await;
    let s3 = common::s3::S3::start(BUCKET).await;
    let outage = common::outage::Outage::start(s3.port);
    let proxied = format!("http://127.0.0.1:{}", outage.port());
    let logger = spawn_s3(
        &broker,
        &proxied,
        &[("FLUSH_SIZE", "300"), ("ROTATE_IDLE_MS", "500")],
    );
    let producer = common::producer(&bootstrap, &[]);
    let events: Vec<dbw::Event> = (0..6_000).map(|i| dbw::event(24, i, 0)).collect();
    let bucket = s3.bucket_dir(BUCKET);
    dbw::produce(&producer, &events[..2_000]).await;
    wait_archived(&broker, &bucket, || logger.log()).await;
    tokio::task::block_in_place(|| logger.wait_for("ready", MINUTE, |m| m["ready"] == true));
    dbw::ten_seconds_down(&outage, &logger, &producer, &events[2_000..4_000]).await;
    // Closed files that cannot go up are the archive's lag, and it grows by itself.
    let lag = |m: &serde_json::Value| m["audit_lag_seconds"].as_f64().unwrap_or(0.0);
    let before = lag(&logger.metrics());
    assert!(
        before >= 5.0,
        "lag {before} s after 10 s down\n{}",
        logger.log()
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(lag(&logger.metrics()) >= before + 1.0);
    outage.set_down(false);
    dbw::produce(&producer, &events[4_000..]).await;
    wait_archived(&broker, &bucket, || logger.log()).await;
    tokio::task::block_in_place(|| logger.wait_for("ready again", MINUTE, |m| m["ready"] == true));
    audit::assert_exactly_once(&bucket, PREFIX, &broker);
    assert_eq!(strays(&bucket), Vec::<String>::new());
    assert_eq!(logger.metrics()["messages_failed"], 0);
}

/// Another Parquet implementation (DuckDB, installed by `scripts/test.sh`) reads the
/// same rows: coordinates, timestamps, keys, values, headers, and the Hive columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_reads_the_same_rows() {
    use base64::Engine;
    let broker = Broker::start().await.unwrap();
    dbw::create_topics(&broker.bootstrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<dbw::Event> = (0..3_000).map(|i| dbw::event(25, i, 50)).collect();
    produce_with_headers(&broker, &events).await;
    let logger = spawn(
        &broker,
        dir.path(),
        &[("FLUSH_SIZE", "500"), ("ROTATE_IDLE_MS", "500")],
    );
    wait_archived(&broker, dir.path(), || logger.log()).await;
    let root = dir.path().join(PREFIX);
    let pattern = format!("{}/topics/*/*/*/*/*.parquet", root.display());
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/python/read_archive.py"
            ))
            .arg(&pattern)
            .output()
            .expect("python3")
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let b64 = |v: &Option<Vec<u8>>| {
        v.as_ref()
            .map(|v| serde_json::Value::from(base64::engine::general_purpose::STANDARD.encode(v)))
            .unwrap_or(serde_json::Value::Null)
    };
    let mut ours: Vec<_> = audit::all_rows(&root).into_iter().map(|(_, r)| r).collect();
    ours.sort_by(|a, b| (&a.topic, a.partition, a.offset).cmp(&(&b.topic, b.partition, b.offset)));
    assert_eq!(theirs.len(), ours.len());
    assert_eq!(ours.len(), 3_000);
    for (t, o) in theirs.iter().zip(&ours) {
        assert_eq!(t["topic"], o.topic.as_str());
        assert_eq!(t["partition"], o.partition);
        assert_eq!(t["offset"], o.offset);
        assert_eq!(t["timestamp"], o.timestamp.unwrap());
        assert_eq!(t["key"], b64(&o.key));
        assert_eq!(t["value"], b64(&o.value));
        assert_eq!(t["error"], serde_json::json!(o.error));
        let headers: Vec<serde_json::Value> = o
            .headers
            .iter()
            .map(|(k, v)| serde_json::json!([k, b64(v)]))
            .collect();
        assert_eq!(t["headers"], serde_json::Value::Array(headers));
        let hour = chrono::DateTime::from_timestamp_millis(o.timestamp.unwrap()).unwrap();
        assert_eq!(t["date"], hour.format("%Y-%m-%d").to_string());
        assert_eq!(
            t["hour"],
            hour.format("%H").to_string().parse::<i64>().unwrap()
        );
    }
}

/// Records stamped on both sides of an hour boundary (the records' own time, not the
/// clock's) go into two files per partition, under the hour each record belongs to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_never_spans_two_hours_of_record_time() {
    let broker = Broker::start().await.unwrap();
    let bootstrap = broker.bootstrap();
    dbw::create_topics(&bootstrap).await;
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let hour = now.div_euclid(3_600_000) * 3_600_000 - 3_600_000;
    let (before, after) = (hour - 1_000, hour + 500);
    let events: Vec<dbw::Event> = (0..1_200).map(|i| dbw::event(26, i, 0)).collect();
    let producer = common::producer(&bootstrap, &[]);
    dbw::produce_at(&producer, &events[..600], Some(before)).await;
    dbw::produce_at(&producer, &events[600..], Some(after)).await;
    let logger = spawn(&broker, dir.path(), &[("ROTATE_IDLE_MS", "500")]);
    wait_archived(&broker, dir.path(), || logger.log()).await;
    let root = dir.path().join(PREFIX);
    audit::assert_exactly_once(dir.path(), PREFIX, &broker);
    let dir_of = |ms: i64| {
        let t = chrono::DateTime::from_timestamp_millis(ms).unwrap();
        t.format("date=%Y-%m-%d/hour=%H/").to_string()
    };
    let mut both = 0;
    let mut by_partition: std::collections::BTreeMap<(String, i32), Vec<i64>> = Default::default();
    for (file, row) in audit::all_rows(&root) {
        let ts = row.timestamp.unwrap();
        assert!(ts == before || ts == after, "{file}: timestamp {ts}");
        assert!(file.contains(&dir_of(ts)), "{file} holds a record of {ts}");
        by_partition
            .entry((row.topic.clone(), row.partition))
            .or_default()
            .push(ts);
    }
    for stamps in by_partition.values() {
        both += usize::from(stamps.contains(&before) && stamps.contains(&after));
    }
    assert!(both > 0, "no partition got records of both hours");
    assert_ne!(dir_of(before), dir_of(after));
}

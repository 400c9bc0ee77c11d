//! The db-writer end to end: the real broker (testkit), the real `agentbus consume
//! db-writer` process, a real PostgreSQL.

mod common;

use agentbus_testkit::{Broker, Inspect, Postgres};
use common::db_writer::{self as dbw, DbWriter, Kind};
use common::outage::Outage;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const GROUP: &str = "db-writer-group";
const MINUTE: Duration = Duration::from_secs(60);

async fn setup() -> (Broker, Postgres, i32) {
    let broker = Broker::start().await.expect("broker");
    let pg = Postgres::start().await.expect("postgres");
    let mut partitions = dbw::create_topics(&broker.bootstrap()).await;
    // The db-writer also stores the pattern-extractor's outputs.
    for t in agentbus_client::Topic::DERIVED {
        let n = agentbus_client::catalog::spec(t).partitions;
        common::create_topic(&broker.bootstrap(), t.name(), n, &[]).await;
        partitions += n;
    }
    (broker, pg, partitions)
}

fn good_ids(events: &[dbw::Event]) -> Vec<String> {
    let mut ids: Vec<String> = events
        .iter()
        .filter(|e| e.kind == Kind::Good)
        .map(|e| e.id.clone())
        .collect();
    ids.sort();
    ids
}

/// The high watermark of every partition of the eight topics.
/// Waits until PostgreSQL stores every partition's log end as the group's next offset.
async fn wait_caught_up(broker: &Broker, pg: &Postgres, context: impl Fn() -> String) {
    common::members::wait_for_showing(
        "the stored offsets to reach the log ends",
        MINUTE.as_secs(),
        || dbw::stored_offsets(pg, GROUP) == dbw::ends(broker),
        context,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_one_percent_malformed() {
    let (broker, pg, partitions) = setup().await;
    let bootstrap = broker.bootstrap();
    let events: Vec<dbw::Event> = (0..10_000).map(|i| dbw::event(1, i, 100)).collect();
    dbw::produce(&common::producer(&bootstrap, &[]), &events).await;
    let writer = DbWriter::spawn(&bootstrap, pg.url(), &[]);

    let m = tokio::task::block_in_place(|| {
        writer.wait_for("10,000 events", MINUTE, |m| {
            m["messages_consumed"] == 10_000
                && m["messages_inserted"] == 9_900
                && m["messages_failed"] == 100
                && m["consumer_lag"] == 0
        })
    });
    assert_eq!(m["messages_duplicate"], 0, "{m}");
    assert_eq!(m["dlq_write_failures"], 0);
    assert_eq!(m["assigned_partitions"], partitions);
    assert!(
        m["batches_processed"].as_u64().unwrap() >= 10_000 / 100,
        "{m}"
    );
    assert!(m["avg_batch_processing_ms"].as_f64().unwrap() > 0.0);
    assert!(m["last_commit_time"].is_string());
    assert_eq!(m["ready"], true);

    // Exactly the good ones, each once.
    assert_eq!(dbw::stored_ids(&pg), good_ids(&events));
    // Per table too (1,250 per topic, less its bad ones).
    for t in agentbus_client::Topic::ALL {
        let table = agentbus_consumers::db_writer::table_name(t);
        let expected = events
            .iter()
            .filter(|e| e.topic == t && e.kind == Kind::Good)
            .count();
        let n = pg.psql(&format!("SELECT count(*) FROM {table}")).unwrap();
        assert_eq!(n.trim(), expected.to_string(), "{table}");
    }
    // Nested objects are JSONB, lists text[], timestamps timestamptz.
    let row = pg
        .psql("SELECT jsonb_typeof(alternatives), context->>'domain', pg_typeof(created_at) FROM agent_routing_decisions LIMIT 1")
        .unwrap();
    assert_eq!(
        row.trim(),
        "array|database_optimization|timestamp with time zone"
    );
    let tools = pg
        .psql("SELECT tools_used[2] FROM execution_paths LIMIT 1")
        .unwrap();
    assert_eq!(tools.trim(), "Write");
    // The stored offsets are the partitions' ends.
    assert_eq!(dbw::stored_offsets(&pg, GROUP), dbw::ends(&broker));

    // The bad ones are in the DLQs, with Kafka Connect's headers.
    let dlq = tokio::task::block_in_place(|| dbw::read_dlq(&bootstrap, 100));
    assert_eq!(dlq.len(), 100);
    let by_value: BTreeMap<Vec<u8>, &dbw::Event> =
        events.iter().map(|e| (e.value.clone(), e)).collect();
    let mut stages = BTreeMap::new();
    for dbw::DeadRecord {
        source,
        key,
        value,
        headers,
    } in &dlq
    {
        let original = by_value
            .get(value)
            .expect("the DLQ keeps the original value");
        assert_ne!(original.kind, Kind::Good);
        assert_eq!(source, original.topic.name());
        assert_eq!(
            key.as_deref(),
            Some(original.key.as_bytes()),
            "the DLQ keeps the key"
        );
        assert_eq!(headers["__connect.errors.topic"], original.topic.name());
        assert_eq!(headers["__connect.errors.consumer.group"], GROUP);
        let stage = headers["__connect.errors.stage"].as_str();
        let want = if original.kind == Kind::BadJson {
            "DESERIALIZE"
        } else {
            "VALIDATE"
        };
        assert_eq!(stage, want, "{headers:?}");
        if original.kind == Kind::Invalid {
            assert!(
                headers["__connect.errors.exception.message"].contains("timestamp"),
                "{headers:?}"
            );
            assert_eq!(
                headers["__connect.errors.exception.class.name"],
                "EventError::Invalid"
            );
        }
        let partition: i32 = headers["__connect.errors.partition"].parse().unwrap();
        let offset: i64 = headers["__connect.errors.offset"].parse().unwrap();
        let stored = broker.records(source, partition);
        let at = stored
            .iter()
            .find(|r| r.0 == offset)
            .expect("offset header points at the record");
        assert_eq!(at.2.as_deref(), Some(value.as_slice()));
        assert!(
            chrono::DateTime::parse_from_rfc3339(&headers["__connect.errors.timestamp"]).is_ok()
        );
        *stages.entry(stage.to_string()).or_insert(0) += 1;
    }
    assert_eq!(
        stages,
        BTreeMap::from([
            ("DESERIALIZE".to_string(), 50),
            ("VALIDATE".to_string(), 50)
        ])
    );

    // The endpoints after the run.
    let (status, body) = writer.get("/health");
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "healthy");
    assert_eq!(writer.get("/ready").0, 200);
    let (status, text) = writer.get("/metrics");
    assert_eq!(status, 200);
    let p = dbw::parse_prometheus(&text);
    let g = format!("group=\"{GROUP}\"");
    assert_eq!(
        p[&format!("agentbus_events_received_total{{{g}}}")],
        10_000.0
    );
    assert_eq!(p[&format!("agentbus_events_written_total{{{g}}}")], 9_900.0);
    assert_eq!(p[&format!("agentbus_events_duplicate_total{{{g}}}")], 0.0);
    assert_eq!(
        p[&format!("agentbus_dlq_records_total{{{g},stage=\"DESERIALIZE\"}}")],
        50.0
    );
    assert_eq!(
        p[&format!("agentbus_dlq_records_total{{{g},stage=\"VALIDATE\"}}")],
        50.0
    );
    assert_eq!(
        p[&format!(
            "agentbus_errors_total{{{g},stage=\"VALIDATE\",error_type=\"EventError::Invalid\"}}"
        )],
        50.0
    );
    assert_eq!(p[&format!("agentbus_dlq_write_failures_total{{{g}}}")], 0.0);
    assert_eq!(
        p[&format!("agentbus_batch_size_events_sum{{{g}}}")],
        10_000.0
    );
    assert!(p[&format!("agentbus_batch_flush_duration_seconds_count{{{g}}}")] >= 100.0);
    let cg = format!("consumergroup=\"{GROUP}\"");
    let current: f64 = p
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("kafka_consumergroup_current_offset{{{cg}")))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(current, 10_000.0);
    for t in agentbus_client::Topic::ALL {
        assert_eq!(
            p[&format!("kafka_consumergroup_lag_sum{{{cg},topic=\"{}\"}}", t.name())],
            0.0
        );
    }

    // SIGTERM: exits 0, and Kafka has the committed offsets too.
    let (status, took) = tokio::task::block_in_place(|| writer.terminate(Duration::from_secs(30)));
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(30));
    assert_eq!(broker.committed(GROUP), dbw::ends(&broker));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_three_times_loses_and_duplicates_nothing() {
    let (broker, pg, _) = setup().await;
    let bootstrap = broker.bootstrap();
    let events: Vec<dbw::Event> = (0..12_000).map(|i| dbw::event(2, i, 0)).collect();
    let env = [("BATCH_SIZE", "50"), ("BATCH_TIMEOUT_MS", "100")];
    let producer = common::producer(&bootstrap, &[]);
    let first = DbWriter::spawn(&bootstrap, pg.url(), &env);
    let writer = dbw::kill_three_times(&producer, &events[..9_000], first, || {
        DbWriter::spawn(&bootstrap, pg.url(), &env)
    })
    .await;
    dbw::produce(&producer, &events[9_000..]).await;
    let expected = good_ids(&events);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let stored = dbw::stored_offsets(&pg, GROUP);
        if stored == dbw::ends(&broker) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "offsets {stored:?}\nlog:\n{}",
            writer.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every event exactly once (the primary key makes a second copy impossible, so
    // also check that nothing is missing and nothing extra is there).
    assert_eq!(dbw::stored_ids(&pg), expected);
    let (status, _) = tokio::task::block_in_place(|| writer.terminate(Duration::from_secs(30)));
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_pauses_and_resumes_without_dlq() {
    let (broker, pg, _) = setup().await;
    let bootstrap = broker.bootstrap();
    let (outage, proxied_url) = Outage::before(pg.url(), 5432);
    let writer = DbWriter::spawn(&bootstrap, &proxied_url, &[]);
    let producer = common::producer(&bootstrap, &[]);
    let events: Vec<dbw::Event> = (0..6_000).map(|i| dbw::event(3, i, 0)).collect();

    dbw::produce(&producer, &events[..2_000]).await;
    tokio::task::block_in_place(|| {
        writer.wait_for("the first events", MINUTE, |m| {
            m["messages_inserted"] == 2_000 && m["ready"] == true
        })
    });

    // Ten seconds without PostgreSQL, with events arriving.
    dbw::ten_seconds_down(&outage, &writer, &producer, &events[2_000..4_000]).await;
    let during = writer.metrics();
    assert_eq!(
        during["messages_failed"], 0,
        "nothing goes to the DLQ for an outage: {during}"
    );
    outage.set_down(false);

    dbw::produce(&producer, &events[4_000..]).await;
    wait_caught_up(&broker, &pg, || writer.log()).await;
    let m = writer.metrics();
    assert_eq!(m["messages_failed"], 0, "{m}");
    assert_eq!(m["dlq_write_failures"], 0);
    assert_eq!(writer.get("/ready").0, 200);
    assert_eq!(dbw::stored_ids(&pg), good_ids(&events));
    assert_eq!(dbw::stored_offsets(&pg, GROUP), dbw::ends(&broker));
    let text = writer.get("/metrics").1;
    let p = dbw::parse_prometheus(&text);
    assert!(
        p.iter().any(|(k, v)| k.starts_with("agentbus_errors_total")
            && k.contains("stage=\"SINK\"")
            && k.contains("Unavailable")
            && *v > 0.0),
        "the outage is counted as a sink error:\n{text}"
    );
    assert!(
        writer.log().contains("Batch processing failed"),
        "the outage is logged"
    );
    // Nothing in any DLQ.
    let consumer = common::consumer(&bootstrap, &[]);
    for t in agentbus_client::Topic::ALL {
        let dlq = format!("{}-dlq", t.name());
        let md = rdkafka::consumer::Consumer::fetch_metadata(
            &consumer,
            Some(&dlq),
            Duration::from_secs(10),
        )
        .unwrap();
        for part in md.topics()[0].partitions() {
            let (_, high, _) = broker.offsets(&dlq, part.id()).unwrap();
            assert_eq!(high, 0, "{dlq} has records");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_split_the_partitions_and_one_takes_over() {
    let (broker, pg, partitions) = setup().await;
    let bootstrap = broker.bootstrap();
    let a = DbWriter::spawn(&bootstrap, pg.url(), &[]);
    let b = DbWriter::spawn(&bootstrap, pg.url(), &[]);
    tokio::task::block_in_place(|| dbw::wait_split(&a, &b, i64::from(partitions)));
    let producer = common::producer(&bootstrap, &[]);
    let events: Vec<dbw::Event> = (0..10_000).map(|i| dbw::event(4, i, 0)).collect();
    dbw::produce(&producer, &events[..5_000]).await;
    tokio::task::block_in_place(|| dbw::wait_written_by_both(&a, &b, 5_000));
    let (status, _) = tokio::task::block_in_place(|| b.terminate(Duration::from_secs(30)));
    assert!(status.success());
    tokio::task::block_in_place(|| {
        a.wait_for("a takes every partition", MINUTE, |m| {
            m["assigned_partitions"] == partitions
        })
    });
    dbw::produce(&producer, &events[5_000..]).await;
    tokio::task::block_in_place(|| {
        a.wait_for("the rest", MINUTE, |m| {
            m["consumer_lag"] == 0 && m["messages_consumed"].as_u64().unwrap() > 0
        })
    });
    wait_caught_up(&broker, &pg, String::new).await;
    assert_eq!(dbw::stored_ids(&pg), good_ids(&events));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_the_open_batch_and_commits() {
    let (broker, pg, _) = setup().await;
    let bootstrap = broker.bootstrap();
    // A batch that only shutdown can flush.
    let writer = DbWriter::spawn(
        &bootstrap,
        pg.url(),
        &[
            ("BATCH_SIZE", "1000"),
            ("BATCH_TIMEOUT_MS", "600000"),
            ("DRAIN_TIMEOUT_MS", "10000"),
        ],
    );
    let events: Vec<dbw::Event> = (0..300).map(|i| dbw::event(5, i, 0)).collect();
    dbw::produce(&common::producer(&bootstrap, &[]), &events).await;
    tokio::task::block_in_place(|| {
        writer.wait_for("300 in the open batch", MINUTE, |m| {
            m["messages_consumed"] == 300
        })
    });
    assert_eq!(writer.metrics()["messages_inserted"], 0);
    assert_eq!(
        pg.psql("SELECT count(*) FROM kafka_offsets")
            .unwrap()
            .trim(),
        "0"
    );
    let (status, took) = tokio::task::block_in_place(|| writer.terminate(Duration::from_secs(10)));
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(dbw::stored_ids(&pg), good_ids(&events));
    assert_eq!(dbw::stored_offsets(&pg, GROUP), dbw::ends(&broker));
    assert_eq!(
        broker.committed(GROUP),
        dbw::ends(&broker),
        "Kafka has the offsets too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_postgres_cannot_store_goes_to_the_dlq_alone() {
    let (broker, pg, _) = setup().await;
    let bootstrap = broker.bootstrap();
    // Valid by the contract (duration_ms is an unsigned 64-bit number), too big for
    // the bigint column: the batch is refused, then written one event at a time.
    let mut events: Vec<dbw::Event> = (0..40).map(|i| dbw::event(6, i * 8, 0)).collect(); // all agent-actions
    let mut v: serde_json::Value = serde_json::from_slice(&events[7].value).unwrap();
    v["duration_ms"] = serde_json::json!(u64::MAX);
    events[7].value = serde_json::to_vec(&v).unwrap();
    events[7].kind = Kind::Invalid;
    dbw::produce(&common::producer(&bootstrap, &[]), &events).await;
    let writer = DbWriter::spawn(&bootstrap, pg.url(), &[]);
    let m = tokio::task::block_in_place(|| {
        writer.wait_for("40 events", MINUTE, |m| {
            m["messages_consumed"] == 40 && m["consumer_lag"] == 0 && m["messages_failed"] == 1
        })
    });
    assert_eq!(m["messages_inserted"], 39, "{m}");
    assert_eq!(dbw::stored_ids(&pg), good_ids(&events));
    let dlq = tokio::task::block_in_place(|| dbw::read_dlq(&bootstrap, 1));
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].value, events[7].value);
    assert_eq!(dlq[0].headers["__connect.errors.stage"], "SINK");
    assert_eq!(
        dlq[0].headers["__connect.errors.exception.class.name"],
        "SinkError::Rejected"
    );
    assert!(
        dlq[0].headers["__connect.errors.exception.message"].contains("out of range"),
        "{:?}",
        dlq[0].headers
    );
    assert_eq!(dbw::stored_offsets(&pg, GROUP), dbw::ends(&broker));
}

#[test]
fn bad_settings_stop_startup_naming_them() {
    let run = |env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"));
        cmd.args(["consume", "db-writer"])
            .env_remove("DATABASE_URL")
            .env_remove("POSTGRES_HOST")
            .env("HTTP_PORT", "0");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(run(&[]).contains("DATABASE_URL"));
    let db = [("DATABASE_URL", "postgres://postgres@127.0.0.1/x")];
    assert!(run(&[db[0], ("BATCH_SIZE", "lots")]).contains("BATCH_SIZE"));
    assert!(run(&[db[0], ("BATCH_SIZE", "0")]).contains("BATCH_SIZE"));
    assert!(run(&[db[0], ("KAFKA_BROKERS", "nohost")]).contains("KAFKA_BROKERS"));
    assert!(run(&[db[0], ("MAX_LATENCY_MS", "soon")]).contains("MAX_LATENCY_MS"));
    assert!(run(&[("DATABASE_URL", "mysql://nope")]).contains("DATABASE_URL"));
}

#[tokio::test]
async fn migrate_command_applies_the_schema() {
    let pg = Postgres::start().await.expect("postgres");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args(["migrate", "--database-url", pg.url()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tables = pg.psql("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE '\\_sqlx%'").unwrap();
    assert_eq!(
        tables.trim(),
        "agent_actions,agent_alerts,agent_routing_decisions,agent_transformation_events,code_artifacts,execution_paths,failure_patterns,fix_suggestions,kafka_offsets,pattern_templates,router_performance_metrics,success_patterns"
    );
    // The seeds' POSTGRES_* variables instead of a URL (and twice is fine).
    let rest = pg.url().split_once('@').unwrap().1;
    let (hostport, database) = rest.split_once('/').unwrap();
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "5432"));
    let by_parts = std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .arg("migrate")
        .env_remove("DATABASE_URL")
        .env("POSTGRES_HOST", host)
        .env("POSTGRES_PORT", port)
        .env("POSTGRES_DATABASE", database)
        .env("POSTGRES_USER", "postgres")
        .output()
        .unwrap();
    assert!(
        by_parts.status.success(),
        "{}",
        String::from_utf8_lossy(&by_parts.stderr)
    );
    let versions = pg.psql("SELECT count(*) FROM _sqlx_migrations").unwrap();
    assert_eq!(versions.trim(), "5");
    // Twice is fine.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args(["migrate", "--database-url", pg.url()])
        .output()
        .unwrap();
    assert!(again.status.success());
}

/// A rebalance while PostgreSQL is down: the paused member's partitions must not stay
/// paused (librdkafka keeps an application pause across reassignment), and nothing is
/// lost or duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_during_an_outage_resumes_afterwards() {
    let (broker, pg, partitions) = setup().await;
    let bootstrap = broker.bootstrap();
    let (outage, proxied_url) = Outage::before(pg.url(), 5432);
    let a = DbWriter::spawn(&bootstrap, &proxied_url, &[]);
    tokio::task::block_in_place(|| {
        a.wait_for("a's assignment", MINUTE, |m| {
            m["assigned_partitions"] == partitions
        })
    });
    let producer = common::producer(&bootstrap, &[]);
    let events: Vec<dbw::Event> = (0..4_000).map(|i| dbw::event(7, i, 0)).collect();

    outage.set_down(true);
    dbw::produce(&producer, &events[..2_000]).await;
    tokio::task::block_in_place(|| {
        let deadline = Instant::now() + MINUTE;
        while a.get("/ready").0 != 503 {
            assert!(Instant::now() < deadline, "a never noticed the outage");
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    // B joins (its own path to PostgreSQL works): the group rebalances while A is paused.
    let b = DbWriter::spawn(&bootstrap, pg.url(), &[]);
    tokio::task::block_in_place(|| {
        b.wait_for("b's share", MINUTE, |m| {
            m["assigned_partitions"].as_i64().unwrap() > 0
        })
    });
    std::thread::sleep(Duration::from_secs(2));
    outage.set_down(false);
    dbw::produce(&producer, &events[2_000..]).await;
    wait_caught_up(&broker, &pg, || format!("A:\n{}\nB:\n{}", a.log(), b.log())).await;
    assert_eq!(dbw::stored_ids(&pg), good_ids(&events));
    for w in [&a, &b] {
        let m = w.metrics();
        assert_eq!(m["messages_failed"], 0, "{m}");
        assert!(
            m["messages_inserted"].as_u64().unwrap() > 0,
            "both write: {m}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_database_or_table_stops_the_process_naming_it() {
    let (broker, pg, _) = setup().await;
    let bootstrap = broker.bootstrap();
    // A database that does not exist: start-up stops, naming DATABASE_URL.
    let (base, _) = pg.url().rsplit_once('/').unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args(["consume", "db-writer"])
        .env("KAFKA_BROKERS", &bootstrap)
        .env("DATABASE_URL", format!("{base}/agentbus_no_such_database"))
        .env("HTTP_PORT", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DATABASE_URL") && stderr.contains("does not exist"),
        "{stderr}"
    );

    // A table dropped under a running writer: retrying cannot help, so it stops with
    // an error (a supervisor restarts it; the batch was not committed).
    let mut writer = DbWriter::spawn(&bootstrap, pg.url(), &[]);
    let producer = common::producer(&bootstrap, &[]);
    let events: Vec<dbw::Event> = (0..80).map(|i| dbw::event(8, i, 0)).collect();
    dbw::produce(&producer, &events[..40]).await;
    tokio::task::block_in_place(|| {
        writer.wait_for("the first events", MINUTE, |m| m["messages_inserted"] == 40)
    });
    pg.psql("DROP TABLE agent_actions").unwrap();
    dbw::produce(&producer, &events[40..]).await;
    let status = tokio::task::block_in_place(|| writer.wait_exit(MINUTE));
    assert!(!status.success(), "{status:?}");
    assert!(
        writer.log().contains("agent_actions\" does not exist"),
        "{}",
        writer.log()
    );
    assert_eq!(
        dbw::stored_offsets(&pg, GROUP).values().sum::<i64>(),
        40,
        "the failed batch is not committed"
    );
}

/// A database restored from a backup (or failed over to a replica that lagged) holds
/// less than the consumer wrote: the next batch does not start at the stored offset,
/// so the consumer reads again from there instead of storing a jump.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restored_from_a_backup_is_read_again_from_its_offsets() {
    let (broker, pg, _) = setup().await;
    let bootstrap = broker.bootstrap();
    let writer = DbWriter::spawn(&bootstrap, pg.url(), &[]);
    let producer = common::producer(&bootstrap, &[]);
    let events: Vec<dbw::Event> = (0..6_000).map(|i| dbw::event(9, i, 0)).collect();
    let tables: Vec<&str> = agentbus_client::Topic::ALL
        .iter()
        .map(|t| agentbus_consumers::db_writer::table_name(*t))
        .chain(["kafka_offsets"])
        .collect();
    dbw::produce(&producer, &events[..2_000]).await;
    wait_caught_up(&broker, &pg, || writer.log()).await;
    for t in &tables {
        pg.psql(&format!("CREATE TABLE backup_{t} AS SELECT * FROM {t}"))
            .unwrap();
    }
    dbw::produce(&producer, &events[2_000..4_000]).await;
    wait_caught_up(&broker, &pg, || writer.log()).await;
    let restore: Vec<String> = tables
        .iter()
        .map(|t| format!("TRUNCATE {t}; INSERT INTO {t} SELECT * FROM backup_{t};"))
        .collect();
    pg.psql(&format!("BEGIN; {} COMMIT;", restore.join(" ")))
        .unwrap();
    dbw::produce(&producer, &events[4_000..]).await;
    wait_caught_up(&broker, &pg, || writer.log()).await;
    assert_eq!(dbw::stored_ids(&pg), good_ids(&events));
    let text = writer.get("/metrics").1;
    let rewinds = dbw::sum_samples(
        &text,
        "agentbus_offset_mismatches_total",
        "direction=\"rewind\"",
    );
    assert!(rewinds > 0.0, "the gap is counted:\n{text}");
    let m = writer.metrics();
    assert!(m["offset_mismatches"].as_u64().unwrap() > 0, "{m}");
}

/// A table that existed before (the seeds' own schema, say) and differs from what the
/// db-writer writes stops start-up naming the column, instead of failing every batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_table_that_differs_stops_startup_naming_the_column() {
    let pg = Postgres::start().await.expect("postgres");
    pg.psql(
        "CREATE TABLE agent_actions (id uuid PRIMARY KEY, correlation_id uuid NOT NULL, \
         agent_name text, action_type text, action_name text, action_details jsonb, \
         debug_mode boolean, duration_ms integer, metadata jsonb, created_at timestamptz NOT NULL, \
         tenant text NOT NULL)",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args(["migrate", "--database-url", pg.url()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("column agent_actions.duration_ms is int4, expected int8")
            && stderr.contains("column agent_actions.tenant is NOT NULL without a default"),
        "{stderr}"
    );
}

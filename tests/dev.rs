//! `agentbus dev`, the whole system in one process: one event of each of the eight
//! topics published with `agentbus log` shows up in PostgreSQL, in Redis, in the audit
//! archive, a failure burst as an alert, a bad record as a dead letter, and all of it
//! on the status page in headless Chromium. Without Redis the other groups still run.

mod common;

use agentbus_client::{examples, Topic};
use agentbus_consumers::db_writer::table_name;
use agentbus_testkit::{Postgres, Redis};
use common::dev::{self, Dev};
use rdkafka::producer::FutureRecord;
use serde_json::Value;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The example event of `topic` as a new event: a fresh id, stamped now.
fn fresh(topic: Topic, n: u32) -> Value {
    let mut v: Value = serde_json::from_str(examples::json(topic)).expect("example");
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    v["event_id"] = Value::String(format!("00000000-0000-4000-8000-{:012}", 100 + n));
    if v.get("timestamp").is_some() {
        v["timestamp"] = Value::String(now);
    }
    if topic == Topic::FailurePatterns {
        v["failure_id"] = Value::String(format!("f0000000-0000-4000-8000-{:012}", n));
    }
    v
}

/// `agentbus log --topic T --event -`, the event on stdin.
fn log(bootstrap: &str, topic: Topic, event: &Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args([
            "log",
            "--topic",
            topic.name(),
            "--event",
            "-",
            "--bootstrap-server",
            bootstrap,
        ])
        .env(
            "AGENTBUS_SPOOL_DIR",
            std::env::temp_dir().join("agentbus-dev-test-spool"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agentbus log");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(event.to_string().as_bytes())
        .expect("write the event");
    let out = child.wait_with_output().expect("agentbus log");
    assert!(
        out.status.success(),
        "agentbus log {topic}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait(what: &str, secs: u64, dev: &Dev, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {secs} s\n{}",
            dev.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn count(pg: &Postgres, table: &str) -> i64 {
    pg.psql(&format!("SELECT count(*) FROM {table}"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_command_runs_the_pipeline_and_the_status_page_shows_it() {
    let pg = Postgres::start().await.expect("postgres");
    let redis = Redis::start().await.expect("redis");
    let data = tempfile::tempdir().expect("data dir");
    let dev = Dev::start_ready(data.path(), &pg, &redis);
    let summary = dev.stdout();
    for group in dev::GROUPS {
        assert!(
            summary
                .lines()
                .any(|l| l.trim_start().starts_with(group) && l.contains("->")),
            "{group} is not running:\n{summary}"
        );
    }

    // One event of each topic; three more failures of the same fingerprint make a burst
    // of four (the default rule fires above three); one record that is not an event.
    let bootstrap = dev.bootstrap.clone();
    let mut expected = std::collections::BTreeMap::new();
    for (n, topic) in Topic::ALL.iter().enumerate() {
        log(&bootstrap, *topic, &fresh(*topic, n as u32));
        expected.insert(*topic, 1i64);
    }
    for n in 0..3 {
        log(
            &bootstrap,
            Topic::FailurePatterns,
            &fresh(Topic::FailurePatterns, 50 + n),
        );
    }
    expected.insert(Topic::FailurePatterns, 4);
    let producer = common::producer(&bootstrap, &[]);
    producer
        .send(
            FutureRecord::<str, str>::to(Topic::AgentActions.name())
                .key("x")
                .payload("{not json"),
            Duration::from_secs(10),
        )
        .await
        .expect("the bad record");

    // PostgreSQL: every valid event in its table, the alert in agent_alerts.
    let counts = || {
        let mut c: Vec<(Topic, i64)> = expected
            .keys()
            .map(|t| (*t, count(&pg, table_name(*t))))
            .collect();
        c.push((
            Topic::AgentAlerts,
            count(&pg, table_name(Topic::AgentAlerts)),
        ));
        c
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = counts();
        if c.iter().all(|(t, n)| match expected.get(t) {
            Some(want) => n == want,
            None => *n >= 1,
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rows in PostgreSQL: {c:?}\n{}\n{}",
            dev.status(),
            dev.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Redis: the seeds' rolling count of routing decisions.
    let client = redis::Client::open(redis.url()).expect("redis client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let key = format!("{}metrics:routing:count:5min", redis.prefix());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("GET");
        if v.as_deref() == Some("1") {
            break;
        }
        assert!(Instant::now() < deadline, "{key} is {v:?}\n{}", dev.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The archive: every record of the eight topics, the bad one too (it is an audit).
    let archive = data.path().join("audit");
    wait("records in the audit archive", 30, &dev, || {
        common::audit::all_rows(&archive).len() == expected.values().sum::<i64>() as usize + 1
    });
    // The alert, delivered (logged: no destination is set), and the dead letter.
    wait(
        "the alert and the dead letter on /api/status",
        30,
        &dev,
        || {
            let s = dev.status();
            let alerted = s["alerts"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|a| a["rule"] == "repeated-failures" && a["action"] == "trigger")
            });
            let dead = s["dead_letters"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| d["topic"] == Topic::AgentActions.name()));
            alerted && dead
        },
    );
    let s = dev.status();
    for g in s["groups"].as_array().expect("groups") {
        assert_eq!(g["state"], "ready", "{g}");
    }

    // The page, as a browser shows it.
    let url = format!("http://127.0.0.1:{}/", dev.http_port);
    let (dom, console) = dev::render(&url);
    assert!(
        console.is_empty(),
        "the page wrote to the console: {console:#?}"
    );
    assert!(
        dom.contains(&bootstrap),
        "no bootstrap address on the page:\n{dom}"
    );
    for (topic, n) in &expected {
        let records = if *topic == Topic::AgentActions {
            n + 1
        } else {
            *n
        };
        let row = dev::row(&dom, "topics", topic.name());
        assert_eq!(row.get(2), Some(&records.to_string()), "{topic}: {row:?}");
    }
    for group in dev::GROUPS {
        let row = dev::row(&dom, "groups", group);
        assert_eq!(
            row.get(1).map(String::as_str),
            Some("ready"),
            "{group}: {row:?}"
        );
    }
    let writer = dev::row(&dom, "groups", "db-writer");
    let written: i64 = expected.values().sum();
    assert!(
        writer
            .get(4)
            .and_then(|w| w.parse::<i64>().ok())
            .is_some_and(|w| w >= written),
        "db-writer row: {writer:?}"
    );
    let alerts = dev::rows(&dom, "alerts");
    assert!(
        alerts.iter().any(|r| r.iter().any(|c| c == "repeated-failures") && r.iter().any(|c| c == "trigger")),
        "alerts on the page: {alerts:?}"
    );
    let dead = dev::rows(&dom, "dead-letters");
    assert!(
        dead.iter()
            .any(|r| r.iter().any(|c| c == Topic::AgentActions.name())),
        "dead letters on the page: {dead:?}"
    );

    let out = dev.stop();
    assert!(out.contains("agentbus dev stopped"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_other_groups_run_and_the_reason_is_given() {
    let pg = Postgres::start().await.expect("postgres");
    let data = tempfile::tempdir().expect("data dir");
    // Nothing listens on port 1.
    let mut dev = Dev::start(
        data.path(),
        &[
            ("DATABASE_URL", pg.url()),
            ("REDIS_URL", "redis://127.0.0.1:1"),
        ],
    );
    let summary = dev.stdout();
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("metrics-aggregator"))
        .unwrap_or_else(|| panic!("no metrics-aggregator line:\n{summary}"));
    assert!(line.contains("OFF") && line.contains("REDIS_URL"), "{line}");
    dev.wait_for_output("the other groups ready", 90, |out| {
        out.contains("all 4 running groups ready in")
    });
    let group = dev.group("metrics-aggregator");
    assert_eq!(group["state"], "off", "{group}");
    assert!(
        group["reason"]
            .as_str()
            .is_some_and(|r| r.contains("REDIS_URL")),
        "{group}"
    );

    let bootstrap = dev.bootstrap.clone();
    log(
        &bootstrap,
        Topic::AgentRoutingDecisions,
        &fresh(Topic::AgentRoutingDecisions, 1),
    );
    wait("the row in PostgreSQL", 30, &dev, || {
        count(&pg, table_name(Topic::AgentRoutingDecisions)) == 1
    });
    let out = dev.stop();
    assert!(out.contains("agentbus dev stopped"), "{out}");
}

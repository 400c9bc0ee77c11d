//! `agentbus groups` as users run it, against an in-process broker: describe with lag,
//! reset-offsets (dry run and --execute), list, delete, and failing fast on a bad bootstrap.

mod common;

use agentbus_testkit::Broker;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 4;
const PER_PARTITION: i64 = 250;
/// 2025-01-01T00:00:00Z; the record at offset k of every partition has timestamp BASE + k s.
const BASE_TS: i64 = 1_735_689_600_000;

#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn ok(self) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "agentbus failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `agentbus ARGS…` without blocking the broker's runtime, killing it after 60 s.
async fn agentbus(args: &[&str]) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_agentbus"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AGENTBUS_") || k == "KAFKA_BROKERS" {
            cmd.env_remove(k);
        }
    }
    cmd.args(args).kill_on_drop(true);
    let start = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
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

async fn groups(bootstrap: &str, args: &[&str]) -> Run {
    let mut all = vec!["groups", "--bootstrap-server", bootstrap];
    all.extend_from_slice(args);
    agentbus(&all).await
}

/// A row of `groups describe`, keyed by its column names.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    group: String,
    topic: String,
    partition: String,
    current: String,
    end: String,
    lag: String,
    consumer_id: String,
}

fn parse_describe(stdout: &str) -> Vec<Row> {
    let mut lines = stdout.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(
        header,
        [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID"
        ],
        "{stdout}"
    );
    lines
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(c.len(), header.len(), "bad row {l:?} in\n{stdout}");
            Row {
                group: c[0].into(),
                topic: c[1].into(),
                partition: c[2].into(),
                current: c[3].into(),
                end: c[4].into(),
                lag: c[5].into(),
                consumer_id: c[6].into(),
            }
        })
        .collect()
}

/// Current offsets of `topic`'s partitions as `describe` shows them ("-" = none).
async fn described_offsets(bootstrap: &str, group: &str, topic: &str) -> Vec<String> {
    let run = groups(bootstrap, &["describe", group]).await.ok();
    let rows = parse_describe(&run.stdout);
    (0..PARTITIONS)
        .map(|p| {
            rows.iter()
                .find(|r| r.topic == topic && r.partition == p.to_string())
                .map_or_else(|| "missing".to_string(), |r| r.current.clone())
        })
        .collect()
}

fn group_names(list_stdout: &str) -> Vec<String> {
    let mut lines = list_stdout.lines();
    let header = lines.next().unwrap_or_default();
    assert!(header.starts_with("GROUP"), "{list_stdout}");
    lines
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// A 4-partition topic with 250 records per partition (timestamps BASE_TS + offset seconds).
async fn topic_with_records(bootstrap: &str, topic: &str) {
    common::create_topic(bootstrap, topic, PARTITIONS, &[]).await;
    let producer = common::producer(bootstrap, &[("acks", "all")]);
    let mut pending = Vec::new();
    for i in 0..PER_PARTITION * PARTITIONS as i64 {
        let partition = (i % PARTITIONS as i64) as i32;
        let offset = i / PARTITIONS as i64;
        let value = format!("record-{i}");
        let record = FutureRecord::<(), _>::to(topic)
            .partition(partition)
            .payload(&value)
            .timestamp(BASE_TS + offset * 1000);
        pending.push(producer.send_result(record).expect("enqueue"));
    }
    for (i, fut) in pending.into_iter().enumerate() {
        let d = fut.await.expect("delivery").expect("delivered");
        assert_eq!(
            (d.partition, d.offset),
            (
                (i as i64 % PARTITIONS as i64) as i32,
                i as i64 / PARTITIONS as i64
            )
        );
    }
}

/// Commits `offset` on every partition of `topic` for `group`, without joining the group.
async fn commit(bootstrap: &str, group: &str, topic: &str, offset: i64) {
    let bootstrap = bootstrap.to_string();
    let group = group.to_string();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = common::consumer(&bootstrap, &[("group.id", &group)]);
        let mut tpl = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition_offset(&topic, p, Offset::Offset(offset))
                .expect("partition");
        }
        consumer.commit(&tpl, CommitMode::Sync).expect("commit");
    })
    .await
    .expect("commit task");
}

/// A broker holding topic `t` (1,000 records over 4 partitions) and group `g` with 100
/// committed on every partition: 400 consumed in total, lag 150 per partition, 600 in all.
async fn setup(topic: &str, group: &str) -> Broker {
    let broker = Broker::start().await.expect("broker");
    let bootstrap = broker.bootstrap();
    topic_with_records(&bootstrap, topic).await;
    commit(&bootstrap, group, topic, 100).await;
    broker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_shows_offsets_and_lag() {
    let broker = setup("orders", "billing").await;
    let bootstrap = broker.bootstrap();

    let run = groups(&bootstrap, &["describe", "billing"]).await.ok();
    let rows = parse_describe(&run.stdout);
    assert_eq!(rows.len(), PARTITIONS as usize, "{}", run.stdout);
    for (p, row) in rows.iter().enumerate() {
        assert_eq!(
            row,
            &Row {
                group: "billing".into(),
                topic: "orders".into(),
                partition: p.to_string(),
                current: "100".into(),
                end: "250".into(),
                lag: "150".into(),
                consumer_id: "-".into(),
            }
        );
    }
    let committed: i64 = rows.iter().map(|r| r.current.parse::<i64>().unwrap()).sum();
    let lag: i64 = rows.iter().map(|r| r.lag.parse::<i64>().unwrap()).sum();
    assert_eq!((committed, lag), (400, 600));

    let json = groups(&bootstrap, &["describe", "billing", "--output", "json"])
        .await
        .ok()
        .stdout;
    assert!(json.trim_start().starts_with('{'), "{json}");
    assert!(json.contains("\"total_lag\":600"), "{json}");
    assert_eq!(json.matches("\"current_offset\":100,").count(), 4, "{json}");
    assert_eq!(json.matches("\"log_end_offset\":250,").count(), 4, "{json}");
    assert_eq!(json.matches("\"lag\":150,").count(), 4, "{json}");
    assert_eq!(json.matches("\"consumer_id\":null").count(), 4, "{json}");

    // Unknown groups are an error, not an empty table.
    let run = groups(&bootstrap, &["describe", "no-such-group"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("does not exist"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_offsets_plans_then_executes() {
    let broker = setup("orders", "billing").await;
    let b = broker.bootstrap();
    let hundred = vec!["100".to_string(); 4];

    // Dry run (the default): prints the plan, commits nothing.
    let run = groups(
        &b,
        &[
            "reset-offsets",
            "billing",
            "--topic",
            "orders",
            "--to-earliest",
        ],
    )
    .await
    .ok();
    let plan: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(plan.len(), 4, "{}", run.stdout);
    for (p, row) in plan.iter().enumerate() {
        assert_eq!(
            row,
            &["billing", "orders", &p.to_string(), "100", "0"],
            "{}",
            run.stdout
        );
    }
    assert!(run.stderr.contains("dry run"), "{}", run.stderr);
    assert_eq!(described_offsets(&b, "billing", "orders").await, hundred);
    let run = groups(
        &b,
        &[
            "reset-offsets",
            "billing",
            "--topic",
            "orders",
            "--shift-by",
            "-30",
            "--dry-run",
        ],
    )
    .await
    .ok();
    assert!(run.stdout.contains(" 70"), "{}", run.stdout);
    assert_eq!(described_offsets(&b, "billing", "orders").await, hundred);

    let reset = |how: &'static [&'static str]| {
        let b = b.clone();
        async move {
            let mut args = vec!["reset-offsets", "billing", "--topic", "orders"];
            args.extend_from_slice(how);
            args.push("--execute");
            groups(&b, &args).await.ok();
            described_offsets(&b, "billing", "orders").await
        }
    };
    let all = |o: &str| vec![o.to_string(); 4];
    assert_eq!(reset(&["--to-earliest"]).await, all("0"));
    assert_eq!(reset(&["--shift-by", "10"]).await, all("10"));
    assert_eq!(reset(&["--shift-by", "-25"]).await, all("0"), "clamped");
    assert_eq!(reset(&["--to-latest"]).await, all("250"));
    assert_eq!(reset(&["--shift-by", "5"]).await, all("250"), "clamped");
    assert_eq!(reset(&["--to-offset", "42"]).await, all("42"));
    assert_eq!(
        reset(&["--to-datetime", "2025-01-01T00:00:07.500Z"]).await,
        all("8")
    );
    assert_eq!(
        reset(&["--to-datetime", "2025-01-01T01:00:09+01:00"]).await,
        all("9")
    );
    assert_eq!(
        reset(&["--to-datetime", "2030-01-01T00:00:00Z"]).await,
        all("250"),
        "after the last record: the log end"
    );

    // One partition only.
    groups(
        &b,
        &[
            "reset-offsets",
            "billing",
            "--topic",
            "orders:2",
            "--to-earliest",
            "--execute",
        ],
    )
    .await
    .ok();
    assert_eq!(
        described_offsets(&b, "billing", "orders").await,
        ["250", "250", "0", "250"]
    );

    // Shifting a partition the group never committed is refused, as Kafka's tool does.
    common::create_topic(&b, "fresh", 1, &[]).await;
    let run = groups(
        &b,
        &[
            "reset-offsets",
            "billing",
            "--topic",
            "fresh",
            "--shift-by",
            "1",
        ],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("no committed offset"), "{run:?}");

    // Unknown topic.
    let run = groups(
        &b,
        &[
            "reset-offsets",
            "billing",
            "--topic",
            "nope",
            "--to-earliest",
        ],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("'nope' does not exist"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_then_delete() {
    let broker = setup("orders", "billing").await;
    let b = broker.bootstrap();
    commit(&b, "audit", "orders", 5).await;

    let run = groups(&b, &["list"]).await.ok();
    let names = group_names(&run.stdout);
    assert!(names.contains(&"billing".to_string()), "{}", run.stdout);
    assert!(names.contains(&"audit".to_string()), "{}", run.stdout);
    let json = groups(&b, &["list", "--output", "json"]).await.ok().stdout;
    assert!(json.contains("\"group\":\"billing\""), "{json}");

    let run = groups(&b, &["delete", "billing"]).await.ok();
    assert!(run.stdout.contains("billing"), "{}", run.stdout);
    let names = group_names(&groups(&b, &["list"]).await.ok().stdout);
    assert!(!names.contains(&"billing".to_string()), "{names:?}");
    assert!(names.contains(&"audit".to_string()), "{names:?}");

    // Its offsets are gone with it.
    let run = groups(&b, &["describe", "billing"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    let run = groups(&b, &["delete", "billing"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("does not exist"), "{run:?}");
}

/// A group with a live member: describe shows the owner, reset and delete are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_group_is_protected() {
    let broker = setup("orders", "live").await;
    let b = broker.bootstrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let member = {
        let (b, stop) = (b.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer =
                common::consumer(&b, &[("group.id", "live"), ("client.id", "live-member")]);
            consumer.subscribe(&["orders"]).expect("subscribe");
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = consumer.poll(Duration::from_millis(100));
            }
        })
    };
    // Wait until the member owns the partitions.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let run = groups(&b, &["describe", "live"]).await;
        if run.code == Some(0)
            && parse_describe(&run.stdout)
                .iter()
                .filter(|r| r.consumer_id != "-")
                .count()
                == PARTITIONS as usize
        {
            break;
        }
        assert!(Instant::now() < deadline, "member never joined: {run:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let run = groups(
        &b,
        &[
            "reset-offsets",
            "live",
            "--topic",
            "orders",
            "--to-earliest",
            "--execute",
        ],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("active member"), "{run:?}");
    let run = groups(&b, &["delete", "live"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("not empty"), "{run:?}");

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    member.await.expect("member");
}

/// Nothing listening, or a listener that never answers: exit 1 within the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bootstrap_fails_within_the_timeout() {
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_addr = silent.local_addr().expect("addr").to_string();
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            open.push(s); // accept and never answer
        }
    });

    for addr in [&refused, &silent_addr] {
        for args in [
            &["list"][..],
            &["describe", "g"],
            &["delete", "g"],
            &[
                "reset-offsets",
                "g",
                "--topic",
                "t",
                "--to-earliest",
                "--execute",
            ],
        ] {
            let mut all = args.to_vec();
            all.extend(["--timeout-ms", "1500"]);
            let run = groups(addr, &all).await;
            assert_eq!(run.code, Some(1), "{args:?} at {addr}: {run:?}");
            assert!(
                run.elapsed < Duration::from_secs(8),
                "{args:?} at {addr} took {:?}",
                run.elapsed
            );
            assert!(run.stdout.is_empty(), "{run:?}");
            let lines: Vec<&str> = run.stderr.lines().collect();
            assert_eq!(lines.len(), 1, "one line: {run:?}");
            assert!(lines[0].starts_with("error: "), "{run:?}");
        }
    }
    hold.abort();
}

#[tokio::test]
async fn usage_errors() {
    // Exactly one of the --to-*/--shift-by flags.
    let run = agentbus(&["groups", "reset-offsets", "g", "--topic", "t"]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    let run = agentbus(&[
        "groups",
        "reset-offsets",
        "g",
        "--topic",
        "t",
        "--to-earliest",
        "--to-latest",
    ])
    .await;
    assert_eq!(run.code, Some(2), "{run:?}");
    let run = agentbus(&[
        "groups",
        "reset-offsets",
        "g",
        "--topic",
        "t",
        "--to-datetime",
        "yesterday",
    ])
    .await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("RFC 3339"), "{run:?}");
    let help = agentbus(&["groups", "--help"]).await.ok().stdout;
    for word in [
        "list",
        "describe",
        "delete",
        "reset-offsets",
        "--bootstrap-server",
    ] {
        assert!(help.contains(word), "{word} missing from:\n{help}");
    }
    assert!(help.contains("KAFKA_BROKERS"), "{help}");
}

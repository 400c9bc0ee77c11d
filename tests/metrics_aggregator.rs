//! The metrics-aggregator end to end: the real broker (testkit), the real `agentbus
//! consume metrics-aggregator` process, a real Redis; every window, rollup and rolling
//! count checked against a model computed here from the same events.

mod common;

use agentbus_client::Topic;
use agentbus_testkit::{Broker, Inspect, Redis};
use common::aggregator::{self as agg, GROUP};
use common::db_writer::{self as dbw, Consumer};
use common::outage::Outage;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);

async fn setup() -> (Broker, Redis) {
    let broker = Broker::start().await.expect("broker");
    let redis = Redis::start().await.expect("redis");
    dbw::create_topics(&broker.bootstrap()).await;
    (broker, redis)
}

fn spawn(broker: &Broker, redis_url: &str, prefix: &str, env: &[(&str, &str)]) -> Consumer {
    let mut all = vec![("REDIS_URL", redis_url), ("REDIS_KEY_PREFIX", prefix)];
    all.extend_from_slice(env);
    Consumer::spawn_group("metrics-aggregator", &broker.bootstrap(), &all)
}

/// Waits until Redis stores every partition's log end as the group's next offset.
async fn wait_caught_up(broker: &Broker, redis: &Redis, context: impl Fn() -> String) {
    let mut conn = agg::connect(redis.url());
    common::members::wait_for_showing(
        "the stored offsets to reach the log ends",
        90,
        || agg::stored_offsets(&mut conn, redis.prefix()) == dbw::ends(broker),
        context,
    )
    .await;
}

fn events(run: u32, n: usize, bad_every: usize) -> Vec<dbw::Event> {
    let now = agg::now_ms();
    (0..n).map(|i| agg::event(run, i, bad_every, now)).collect()
}

fn redis_cli_get(url: &str, key: &str) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-u", url, "GET", key])
        .output()
        .expect("redis-cli");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_equal_the_model() {
    let (broker, redis) = setup().await;
    let bootstrap = broker.bootstrap();
    let events = events(1, 10_000, 100);
    dbw::produce(&common::producer(&bootstrap, &[]), &events).await;
    let aggregator = spawn(&broker, redis.url(), redis.prefix(), &[]);
    wait_caught_up(&broker, &redis, || aggregator.log()).await;
    let m = aggregator.metrics();
    assert_eq!(m["messages_consumed"], 10_000, "{m}");
    assert_eq!(m["messages_inserted"], 9_900, "{m}");
    assert_eq!(m["messages_failed"], 100, "{m}");
    assert_eq!(m["messages_duplicate"], 0, "{m}");

    let mut conn = agg::connect(redis.url());
    agg::assert_matches_model(&mut conn, redis.prefix(), &events);

    // The seeds' rolling counts, with redis-cli, once a window has closed since the
    // last event was applied.
    let key = format!("{}metrics:routing:count:5min", redis.prefix());
    let hour = format!("{}metrics:tasks:count:1h", redis.prefix());
    let want = agg::Model::recent(&events, Topic::AgentRoutingDecisions, agg::now_ms(), 300);
    let want_hour = agg::Model::recent(&events, Topic::TaskExecutions, agg::now_ms(), 3600);
    assert!(want >= 1_000 && want_hour >= 1_000, "{want} {want_hour}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (got, got_hour) = (
            redis_cli_get(redis.url(), &key),
            redis_cli_get(redis.url(), &hour),
        );
        if got == want.to_string() && got_hour == want_hour.to_string() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{key} = {got:?}, model {want}; {hour} = {got_hour:?}, model {want_hour}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let ttl: i64 = redis::cmd("TTL").arg(&key).query(&mut conn).unwrap();
    assert!(ttl > 0, "every key has a TTL");

    // The query endpoint returns the model's series.
    let model = agg::Model::of(&events, 5);
    let to = agg::now_ms() / 1000;
    let from = to - 4 * 3600;
    let compared = agg::assert_api_matches_model(|p| aggregator.get(p), &model, from, to);
    assert!(compared > 1_000, "{compared} points compared");
    let (status, body) = aggregator.get("/api/metrics?topic=nope");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("topic"), "{body}");

    // `agentbus metrics` prints the same buckets.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args([
            "metrics",
            "--topic",
            "routing",
            "--window",
            "1h",
            "--from",
            &from.to_string(),
            "--to",
            &to.to_string(),
        ])
        .env("REDIS_URL", redis.url())
        .env("REDIS_KEY_PREFIX", redis.prefix())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = table.lines().skip(1).collect();
    let hours: Vec<(&String, &BTreeMap<String, i64>)> = model
        .buckets
        .iter()
        .filter(|(k, _)| k.starts_with("metrics:{routing}:1h:"))
        .collect();
    assert_eq!(rows.len(), hours.len(), "{table}");
    for (row, (_, fields)) in rows.iter().zip(&hours) {
        let count = row.split_whitespace().nth(1).unwrap();
        assert_eq!(count, fields["count"].to_string(), "{table}");
    }

    // The bad ones are in the DLQs, with the group's name.
    let dlq = tokio::task::block_in_place(|| dbw::read_dlq(&bootstrap, 100));
    assert_eq!(dlq.len(), 100);
    assert!(dlq
        .iter()
        .all(|d| d.headers["__connect.errors.consumer.group"] == GROUP));

    // Prometheus text parses, with the group's series.
    let (_, text) = aggregator.get("/metrics");
    let p = dbw::parse_prometheus(&text);
    assert_eq!(
        p[&format!("agentbus_events_written_total{{group=\"{GROUP}\"}}")],
        9_900.0
    );
    let (status, _) = tokio::task::block_in_place(|| aggregator.terminate(Duration::from_secs(30)));
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_three_times_counts_nothing_twice() {
    let (broker, redis) = setup().await;
    let bootstrap = broker.bootstrap();
    let events = events(2, 12_000, 0);
    let env = [("BATCH_SIZE", "50"), ("BATCH_TIMEOUT_MS", "100")];
    let producer = common::producer(&bootstrap, &[]);
    let first = spawn(&broker, redis.url(), redis.prefix(), &env);
    let aggregator = dbw::kill_three_times(&producer, &events[..9_000], first, || {
        spawn(&broker, redis.url(), redis.prefix(), &env)
    })
    .await;
    dbw::produce(&producer, &events[9_000..]).await;
    wait_caught_up(&broker, &redis, || aggregator.log()).await;
    let mut conn = agg::connect(redis.url());
    agg::assert_matches_model(&mut conn, redis.prefix(), &events);
    let (status, _) = tokio::task::block_in_place(|| aggregator.terminate(Duration::from_secs(30)));
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_pauses_and_resumes_exactly() {
    let (broker, redis) = setup().await;
    let bootstrap = broker.bootstrap();
    let (outage, proxied) = Outage::before(redis.url(), 6379);
    let aggregator = spawn(&broker, &proxied, redis.prefix(), &[]);
    let producer = common::producer(&bootstrap, &[]);
    let events = events(3, 6_000, 0);
    dbw::produce(&producer, &events[..2_000]).await;
    tokio::task::block_in_place(|| {
        aggregator.wait_for("the first events", MINUTE, |m| {
            m["messages_inserted"] == 2_000 && m["ready"] == true
        })
    });
    dbw::ten_seconds_down(&outage, &aggregator, &producer, &events[2_000..4_000]).await;
    outage.set_down(false);
    dbw::produce(&producer, &events[4_000..]).await;
    wait_caught_up(&broker, &redis, || aggregator.log()).await;
    tokio::task::block_in_place(|| {
        aggregator.wait_for("/ready again", MINUTE, |m| m["ready"] == true)
    });
    let m = aggregator.metrics();
    assert_eq!(
        m["messages_failed"], 0,
        "nothing goes to the DLQ for an outage: {m}"
    );
    assert_eq!(aggregator.get("/ready").0, 200);
    let mut conn = agg::connect(redis.url());
    agg::assert_matches_model(&mut conn, redis.prefix(), &events);
    for t in Topic::ALL {
        let dlq = format!("{}-dlq", t.name());
        for p in 0..agentbus_client::catalog::spec(t).partitions {
            if let Some((_, high, _)) = broker.offsets(&dlq, p) {
                assert_eq!(high, 0, "{dlq} has records");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_split_the_partitions_and_one_stops() {
    let (broker, redis) = setup().await;
    let bootstrap = broker.bootstrap();
    let a = spawn(&broker, redis.url(), redis.prefix(), &[]);
    let b = spawn(&broker, redis.url(), redis.prefix(), &[]);
    let partitions: i64 = Topic::ALL
        .iter()
        .map(|t| i64::from(agentbus_client::catalog::spec(*t).partitions))
        .sum();
    tokio::task::block_in_place(|| dbw::wait_split(&a, &b, partitions));
    let producer = common::producer(&bootstrap, &[]);
    let events = events(4, 10_000, 0);
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
    wait_caught_up(&broker, &redis, || a.log()).await;
    let mut conn = agg::connect(redis.url());
    agg::assert_matches_model(&mut conn, redis.prefix(), &events);
}

/// Every key under `prefix`, dumped (a backup of the store at this moment).
fn snapshot(conn: &mut redis::Connection, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(conn)
        .unwrap();
    keys.into_iter()
        .map(|k| {
            let dump: Vec<u8> = redis::cmd("DUMP").arg(&k).query(conn).unwrap();
            (k, dump)
        })
        .collect()
}

/// The store as it was at `snapshot` (a failover to a replica that lagged).
fn restore(conn: &mut redis::Connection, prefix: &str, snapshot: &[(String, Vec<u8>)]) {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(conn)
        .unwrap();
    for k in keys {
        let _: () = redis::cmd("DEL").arg(&k).query(conn).unwrap();
    }
    for (k, dump) in snapshot {
        // REPLACE: the aggregator may have written a rolling count since the DEL.
        let _: () = redis::cmd("RESTORE")
            .arg(k)
            .arg(0)
            .arg(dump)
            .arg("REPLACE")
            .query(conn)
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_lost_writes_is_read_again_from_its_offsets() {
    let (broker, redis) = setup().await;
    let bootstrap = broker.bootstrap();
    let aggregator = spawn(&broker, redis.url(), redis.prefix(), &[]);
    let producer = common::producer(&bootstrap, &[]);
    let events = events(5, 6_000, 0);
    let mut conn = agg::connect(redis.url());
    dbw::produce(&producer, &events[..2_000]).await;
    wait_caught_up(&broker, &redis, || aggregator.log()).await;
    let before = snapshot(&mut conn, redis.prefix());
    dbw::produce(&producer, &events[2_000..4_000]).await;
    wait_caught_up(&broker, &redis, || aggregator.log()).await;
    // Redis fails over to a replica that had only the first 2,000: offsets and
    // increments both back there.
    restore(&mut conn, redis.prefix(), &before);
    // Noticed while idle, not only at the next record: the offsets come back to the
    // log ends with nothing new produced.
    wait_caught_up(&broker, &redis, || aggregator.log()).await;
    agg::assert_matches_model(&mut conn, redis.prefix(), &events[..4_000]);
    dbw::produce(&producer, &events[4_000..]).await;
    wait_caught_up(&broker, &redis, || aggregator.log()).await;
    agg::assert_matches_model(&mut conn, redis.prefix(), &events);
    let (_, text) = aggregator.get("/metrics");
    let rewinds = dbw::sum_samples(
        &text,
        "agentbus_offset_mismatches_total",
        "direction=\"rewind\"",
    );
    assert!(rewinds > 0.0, "the gap is counted:\n{text}");
    assert!(
        aggregator
            .log()
            .contains("reading again from the sink's offset"),
        "and logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_topic_stops_the_consumer_instead_of_skipping() {
    let (broker, redis) = setup().await;
    let bootstrap = broker.bootstrap();
    let producer = common::producer(&bootstrap, &[]);
    let events = events(6, 800, 0);
    dbw::produce(&producer, &events[..400]).await;
    let aggregator = spawn(&broker, redis.url(), redis.prefix(), &[]);
    wait_caught_up(&broker, &redis, || aggregator.log()).await;
    let (status, _) = tokio::task::block_in_place(|| aggregator.terminate(Duration::from_secs(30)));
    assert!(status.success());

    // agent-actions deleted and created again; the new one gets as many records as
    // the old one had (a consumer that trusted the stored offsets would skip them all).
    let topic = Topic::AgentActions.name();
    let admin = dbw::admin(&bootstrap);
    let opts = rdkafka::admin::AdminOptions::new();
    admin.delete_topics(&[topic], &opts).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let partitions = agentbus_client::catalog::spec(Topic::AgentActions).partitions;
    common::create_topic(&bootstrap, topic, partitions, &[]).await;
    let again: Vec<dbw::Event> = events[400..]
        .iter()
        .filter(|e| e.topic == Topic::AgentActions)
        .cloned()
        .collect();
    dbw::produce(&producer, &again).await;

    let run = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"));
        cmd.args(["consume", "metrics-aggregator"])
            .args(extra)
            .env("KAFKA_BROKERS", &bootstrap)
            .env("REDIS_URL", redis.url())
            .env("REDIS_KEY_PREFIX", redis.prefix())
            .env("HTTP_HOST", "127.0.0.1")
            .env("HTTP_PORT", "0");
        cmd
    };
    let out = tokio::task::block_in_place(|| {
        let mut child = run(&[])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + MINUTE;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the consumer did not stop");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().unwrap()
    });
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "agent-actions: the offsets consumer group metrics-group stored belong to another log"
        ) && stderr.contains("--reset-sink-offsets agent-actions"),
        "{stderr}"
    );
    // Told by the topic id before a single record was read, not by offsets that
    // happen to fall below the stored ones.
    assert!(
        stderr.contains("they were stored under topic id ")
            && stderr.contains("and the topic's id is now "),
        "{stderr}"
    );
    let mut conn = agg::connect(redis.url());
    let applied = agg::stored_offsets(&mut conn, redis.prefix());
    assert!(
        applied.keys().filter(|(t, _)| t == topic).count() > 0,
        "the old offsets are kept"
    );

    // With the flag, the new topic is read from its start: everything counted once.
    let mut cmd = run(&["--reset-sink-offsets", topic]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    wait_caught_up(&broker, &redis, String::new).await;
    let _ = child.kill();
    let _ = child.wait();
    let mut all: Vec<dbw::Event> = events[..400].to_vec();
    all.extend(again);
    agg::assert_matches_model(&mut conn, redis.prefix(), &all);
}

#[test]
fn bad_settings_stop_startup_naming_them() {
    let run_with = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"));
        cmd.args(["consume", "metrics-aggregator"])
            .args(args)
            .env("HTTP_PORT", "0");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let run = |env: &[(&str, &str)]| run_with(&[], env);
    assert!(run(&[("REDIS_URL", "http://nope")]).contains("REDIS_URL"));
    assert!(run(&[("WINDOW_SIZE_SECONDS", "7")]).contains("WINDOW_SIZE_SECONDS"));
    assert!(run(&[("START_FROM", "yesterday")]).contains("START_FROM"));
    assert!(run(&[("REDIS_KEY_PREFIX", "{x}")]).contains("REDIS_KEY_PREFIX"));
    assert!(run_with(&["--reset-sink-offsets", "nope"], &[]).contains("--reset-sink-offsets"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_group_starts_where_start_from_says() {
    let (broker, redis) = setup().await;
    let bootstrap = broker.bootstrap();
    let producer = common::producer(&bootstrap, &[]);
    let now = agg::now_ms();
    let events = events(7, 1_200, 0);
    // Records of two hours ago, then of now, in every partition.
    dbw::produce_at(&producer, &events[..400], Some(now - 7_200_000)).await;
    dbw::produce_at(&producer, &events[400..800], Some(now)).await;

    // Not older than 30 minutes: only the recent records.
    let redis_prefix = format!("{}30m:", redis.prefix());
    let recent_only = spawn(
        &broker,
        redis.url(),
        &redis_prefix,
        &[("START_FROM", "30m")],
    );
    let m = tokio::task::block_in_place(|| {
        recent_only.wait_for("the recent records", MINUTE, |m| {
            m["messages_inserted"] == 400
        })
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(recent_only.metrics()["messages_consumed"], 400, "{m}");
    let mut conn = agg::connect(redis.url());
    agg::assert_matches_model(&mut conn, &redis_prefix, &events[400..800]);

    let (status, _) =
        tokio::task::block_in_place(|| recent_only.terminate(Duration::from_secs(30)));
    assert!(status.success());

    // Latest: only what is produced once the group is positioned.
    let latest_prefix = format!("{}latest:", redis.prefix());
    let latest = spawn(
        &broker,
        redis.url(),
        &latest_prefix,
        &[("START_FROM", "latest")],
    );
    tokio::task::block_in_place(|| latest.wait_for("positioned", MINUTE, |m| m["ready"] == true));
    dbw::produce(&producer, &events[800..]).await;
    tokio::task::block_in_place(|| {
        latest.wait_for("the new records", MINUTE, |m| m["messages_inserted"] == 400)
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(latest.metrics()["messages_consumed"], 400);
    agg::assert_matches_model(&mut conn, &latest_prefix, &events[800..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_that_overtook_the_stored_offsets_is_logged_and_counted() {
    let (broker, redis) = setup().await;
    let bootstrap = broker.bootstrap();
    let producer = common::producer(&bootstrap, &[]);
    let events = events(8, 1_600, 0);
    dbw::produce(&producer, &events[..800]).await;
    let first = spawn(&broker, redis.url(), redis.prefix(), &[]);
    wait_caught_up(&broker, &redis, || first.log()).await;
    let (status, _) = tokio::task::block_in_place(|| first.terminate(Duration::from_secs(30)));
    assert!(status.success());

    // More records, then the log start moves past what the group stored (as retention
    // would) on every partition of agent-actions.
    dbw::produce(&producer, &events[800..]).await;
    let topic = Topic::AgentActions.name();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..agentbus_client::catalog::spec(Topic::AgentActions).partitions {
        let (_, high, _) = broker.offsets(topic, p).unwrap();
        if high > 2 {
            tpl.add_partition_offset(topic, p, rdkafka::Offset::Offset(high - 1))
                .unwrap();
        }
    }
    let admin = dbw::admin(&bootstrap);
    admin
        .delete_records(&tpl, &rdkafka::admin::AdminOptions::new())
        .await
        .expect("delete records");

    let again = spawn(&broker, redis.url(), redis.prefix(), &[]);
    wait_caught_up(&broker, &redis, || again.log()).await;
    let (_, text) = again.get("/metrics");
    let resets = dbw::sum_samples(
        &text,
        "agentbus_offset_resets_total",
        "reason=\"retention\"",
    );
    assert!(resets >= 1.0, "the reset is counted:\n{text}");
    assert!(
        again
            .log()
            .contains("were deleted by retention before metrics-group stored them"),
        "and logged:\n{}",
        again.log()
    );
}

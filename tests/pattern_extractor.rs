//! The pattern-extractor against the testkit broker: templates and fix suggestions equal
//! a model computed here, exactly once through SIGKILLs, a rebalance and a zombie.

mod common;

use agentbus_client::derived::{FixSuggestion, PatternTemplateEvent};
use agentbus_consumers::pattern_extractor::{CHANGELOG, REPARTITION, SUGGESTIONS, TEMPLATES};
use agentbus_testkit::{Broker, Inspect};
use common::db_writer::{self as dbw, Consumer, Event, Kind};
use common::patterns::{self, Failure};
use rdkafka::producer::{FutureRecord, Producer};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

fn spawn(broker: &Broker, instance: &str) -> Consumer {
    spawn_on(&broker.bootstrap(), instance)
}

fn spawn_on(bootstrap: &str, instance: &str) -> Consumer {
    Consumer::spawn_group(
        "pattern-extractor",
        bootstrap,
        &[("INSTANCE_ID", instance), ("BATCH_SIZE", "1000")],
    )
}

/// A history: executions and failures interleaved, and bad records among them.
fn history(
    run: u32,
    executions: usize,
    failures: usize,
) -> (
    Vec<patterns::SeqSpec>,
    Vec<patterns::Exec>,
    Vec<Failure>,
    Vec<Event>,
) {
    let (specs, execs, mut events) = patterns::executions(run, executions);
    let (fails, fevents) = patterns::failures(run, failures);
    let mut all = Vec::new();
    let mut f = fevents.into_iter();
    for (i, e) in events.drain(..).enumerate() {
        all.push(e);
        if i % 4 == 3 {
            all.extend(f.next());
        }
        if i % 997 == 0 {
            let topic = if i % 2 == 0 {
                agentbus_client::Topic::TaskExecutions
            } else {
                agentbus_client::Topic::FailurePatterns
            };
            all.push(Event {
                topic,
                key: format!("bad-{i}"),
                value: format!("not json {i}").into_bytes(),
                id: format!("bad-{i}"),
                kind: Kind::BadJson,
            });
        }
    }
    all.extend(f);
    (specs, execs, fails, all)
}

/// Waits until the group has committed everything: the input topics to their ends,
/// then the repartition topic to after its last committed record.
async fn wait_caught_up(broker: &impl Inspect, bootstrap: &str, context: impl Fn() -> String) {
    let mut want = BTreeMap::new();
    for topic in ["task-executions", "failure-patterns"] {
        for p in 0..12 {
            if let Some((_, high, _)) = broker.offsets(topic, p) {
                if high > 0 {
                    want.insert((topic.to_string(), p), high);
                }
            }
        }
    }
    let caught_up = |want: &BTreeMap<(String, i32), i64>| {
        let committed = broker.committed("ml-group");
        want.iter().all(|(tp, end)| committed.get(tp) == Some(end))
    };
    common::members::wait_for_showing(
        "the inputs' committed offsets to reach the log ends",
        180,
        || caught_up(&want),
        &context,
    )
    .await;
    // What the last transactions repartitioned is read too: the group commits after
    // the last record it was given (markers and aborted records follow it).
    let want: BTreeMap<(String, i32), i64> = patterns::read_committed_at(bootstrap, REPARTITION)
        .into_iter()
        .filter_map(|(p, records)| Some(((REPARTITION.to_string(), p), records.last()?.0 + 1)))
        .collect();
    common::members::wait_for_showing(
        "the repartitioned failures to be committed",
        60,
        || caught_up(&want),
        &context,
    )
    .await;
}

/// Everything the outputs and the changelog hold equals the model, exactly once.
fn check_outputs(
    bootstrap: &str,
    specs: &[patterns::SeqSpec],
    execs: &[patterns::Exec],
    fails: &[Failure],
    events: &[Event],
) {
    // Templates: each version exactly once, with the model's figures.
    let got: Vec<Value> = patterns::values(bootstrap, TEMPLATES);
    let mut seen = BTreeSet::new();
    for v in &got {
        // The documented shape (`agentbus schema pattern-templates`), nothing more.
        serde_json::from_value::<PatternTemplateEvent>(v.clone())
            .unwrap_or_else(|e| panic!("{e}: {v}"));
        let key = (
            v["pattern_id"].as_str().unwrap().to_string(),
            v["version"].as_u64().unwrap(),
        );
        assert!(
            seen.insert(key.clone()),
            "template version {key:?} published twice"
        );
    }
    let want = patterns::model_template_versions(specs, execs);
    let mut got_versions: Vec<_> = got.iter().map(patterns::version_of).collect();
    let mut want_sorted = want.clone();
    let order = |a: &patterns::Version, b: &patterns::Version| (&a.0, a.1).cmp(&(&b.0, b.1));
    got_versions.sort_by(order);
    want_sorted.sort_by(order);
    assert_eq!(got_versions.len(), want_sorted.len(), "template versions");
    for (g, w) in got_versions.iter().zip(&want_sorted) {
        assert_eq!(g, w);
    }
    assert!(want.iter().any(|v| v.2 == "withdrawn") || want.len() > 20);
    // Every plan that falls short never qualifies.
    let qualified: BTreeSet<&str> = want.iter().map(|v| v.0.as_str()).collect();
    assert!(!qualified.is_empty());

    // The repartition topic holds each failure once; suggestions follow its order.
    let by_id: BTreeMap<String, Failure> = fails
        .iter()
        .map(|f| (f.failure_id.clone(), f.clone()))
        .collect();
    let mut repartitioned = Vec::new();
    for (_, records) in patterns::read_committed(bootstrap, REPARTITION) {
        let mut order = Vec::new();
        for (_, v) in records {
            let v: Value = serde_json::from_slice(&v).unwrap();
            order.push(v["failure_id"].as_str().unwrap().to_string());
        }
        repartitioned.push(order);
    }
    let all: Vec<&String> = repartitioned.iter().flatten().collect();
    let unique: BTreeSet<&String> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "a failure was repartitioned twice");
    assert_eq!(
        unique.len(),
        fails.len(),
        "failures missing from {REPARTITION}"
    );
    let mut want = BTreeMap::new();
    for order in &repartitioned {
        want.extend(patterns::model_suggestions(&by_id, order));
    }
    let got: Vec<Value> = patterns::values(bootstrap, SUGGESTIONS);
    for v in &got {
        serde_json::from_value::<FixSuggestion>(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"));
    }
    let got_map: BTreeMap<_, _> = got.iter().map(patterns::suggestion_of).collect();
    assert_eq!(got.len(), got_map.len(), "a suggestion was published twice");
    assert_eq!(got_map.len(), want.len(), "suggestions");
    assert_eq!(got_map, want);
    assert!(
        want.len() > 100,
        "the history gives few suggestions: {}",
        want.len()
    );

    // Dead letters: each bad record once, inside the transactions.
    let bad: BTreeSet<String> = events
        .iter()
        .filter(|e| e.kind != Kind::Good)
        .map(|e| e.key.clone())
        .collect();
    let mut dead = Vec::new();
    for t in ["task-executions-dlq", "failure-patterns-dlq"] {
        dead.extend(
            patterns::read_committed(bootstrap, t)
                .into_values()
                .flatten()
                .map(|(k, _)| k),
        );
    }
    dead.sort();
    assert_eq!(dead, bad.into_iter().collect::<Vec<_>>(), "dead letters");
    eprintln!(
        "checked: {} template versions ({} withdrawn) of {} sequences, {} suggestions, {} dead letters",
        want_sorted.len(),
        want_sorted.iter().filter(|v| v.2 == "withdrawn").count(),
        specs.len(),
        got_map.len(),
        dead.len()
    );

    // The changelog's latest state of every sequence counts what the model counted.
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for e in execs {
        let s = &specs[e.seq];
        *counts
            .entry((s.fingerprint.clone(), s.actions.join(",")))
            .or_default() += 1;
    }
    let mut latest: BTreeMap<String, Value> = BTreeMap::new();
    for (_, records) in patterns::read_committed(bootstrap, CHANGELOG) {
        for (k, v) in records {
            latest.insert(k, serde_json::from_slice(&v).unwrap());
        }
    }
    let state: BTreeMap<(String, String), u64> = latest
        .iter()
        .filter(|(k, _)| k.starts_with("seq/"))
        .map(|(_, v)| {
            let actions: Vec<String> = serde_json::from_value(v["actions"].clone()).unwrap();
            (
                (
                    v["fingerprint_id"].as_str().unwrap().to_string(),
                    actions.join(","),
                ),
                v["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(state, counts, "the state in {CHANGELOG}");

    // Every failure bucket's groups count what the model counted: one group per message
    // family of the bucket's category, holding every failure of that family once.
    let mut per_family: BTreeMap<(String, usize), u64> = BTreeMap::new();
    for f in fails {
        *per_family
            .entry((f.category.clone(), f.family))
            .or_default() += 1;
    }
    let mut want_groups: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for ((category, _), n) in per_family {
        want_groups.entry(category).or_default().push(n);
    }
    let mut got_groups: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (k, v) in &latest {
        if let Some(bucket) = k.strip_prefix("failures/") {
            let counts = v["groups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["count"].as_u64().unwrap())
                .collect();
            got_groups.insert(bucket.to_string(), counts);
        }
    }
    for counts in want_groups.values_mut().chain(got_groups.values_mut()) {
        counts.sort_unstable();
    }
    assert_eq!(got_groups, want_groups, "the failure groups in {CHANGELOG}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_and_suggestions_equal_the_model() {
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    dbw::create_topics(&b).await;
    let (specs, execs, fails, events) = history(1, 20_000, 5_000);
    let producer = common::producer(&b, &[("enable.idempotence", "true")]);
    dbw::produce(&producer, &events).await;
    let extractor = spawn(&broker, "a");
    wait_caught_up(&broker, &b, || extractor.log()).await;
    check_outputs(&b, &specs, &execs, &fails, &events);
    let (status, _) = tokio::task::block_in_place(|| extractor.terminate(Duration::from_secs(30)));
    assert!(status.success());

    // The db-writer stores every template version and every suggestion, once.
    let pg = agentbus_testkit::Postgres::start().await.expect("postgres");
    let writer = dbw::DbWriter::spawn(&b, pg.url(), &[]);
    for (topic, table) in [
        (TEMPLATES, "pattern_templates"),
        (SUGGESTIONS, "fix_suggestions"),
    ] {
        let mut want: Vec<String> = patterns::values(&b, topic)
            .iter()
            .map(|v| v["event_id"].as_str().unwrap().to_string())
            .collect();
        want.sort();
        assert!(!want.is_empty(), "{topic} is empty");
        let stored = || -> Vec<String> {
            let out = pg
                .psql(&format!("SELECT id::text FROM {table} ORDER BY 1"))
                .expect("psql");
            out.lines().map(str::to_string).collect()
        };
        common::members::wait_for_showing(
            &format!("{table} to hold {} rows", want.len()),
            60,
            || stored().len() >= want.len(),
            || writer.log(),
        )
        .await;
        assert_eq!(stored(), want, "{table}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_three_times_and_a_rebalance_publish_everything_once() {
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    dbw::create_topics(&b).await;
    let (specs, execs, fails, events) = history(2, 12_000, 3_000);
    let producer = common::producer(&b, &[("enable.idempotence", "true")]);
    let first = spawn(&broker, "a");
    let (before, after) = events.split_at(events.len() * 3 / 4);
    let last = dbw::kill_three_times(&producer, before, first, || spawn(&broker, "a")).await;
    // A second instance joins: the partitions (and their state) are shared out.
    let second = spawn(&broker, "b");
    dbw::produce(&producer, after).await;
    wait_caught_up(&broker, &b, || {
        format!("{}\n---\n{}", last.log(), second.log())
    })
    .await;
    check_outputs(&b, &specs, &execs, &fails, &events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombie_is_fenced_and_its_transaction_never_seen() {
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    dbw::create_topics(&b).await;
    let (specs, execs, fails, events) = history(3, 2_000, 500);
    // The old process of instance "a": a transaction left open.
    let zombie = common::producer(
        &b,
        &[
            ("transactional.id", "pattern-extractor-a"),
            ("transaction.timeout.ms", "60000"),
        ],
    );
    tokio::task::block_in_place(|| zombie.init_transactions(Duration::from_secs(10))).unwrap();
    zombie.begin_transaction().unwrap();
    common::create_topic(&b, TEMPLATES, 6, &[("cleanup.policy", "compact")]).await;
    zombie
        .send(
            FutureRecord::to(TEMPLATES)
                .key("zombie")
                .payload("{\"zombie\":true}"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let producer = common::producer(&b, &[("enable.idempotence", "true")]);
    dbw::produce(&producer, &events).await;
    let extractor = spawn(&broker, "a");
    wait_caught_up(&broker, &b, || extractor.log()).await;
    // The zombie's epoch is fenced: it can commit nothing.
    let commit = tokio::task::block_in_place(|| zombie.commit_transaction(Duration::from_secs(10)));
    assert!(commit.is_err(), "the zombie committed");
    let got = patterns::values(&b, TEMPLATES);
    assert!(
        got.iter().all(|v| v.get("zombie").is_none()),
        "the zombie's record is visible"
    );
    check_outputs(&b, &specs, &execs, &fails, &events);
}

/// A second process started with the same instance id fences the first: the first stops
/// (exit 1, naming the fencing) at its next transaction, and the second carries on with
/// every output exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_extractor_stops_and_its_successor_carries_on() {
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    dbw::create_topics(&b).await;
    let (specs, execs, fails, events) = history(4, 4_000, 1_000);
    let producer = common::producer(&b, &[("enable.idempotence", "true")]);
    let half = events.len() / 2;
    dbw::produce(&producer, &events[..half]).await;
    let mut first = spawn(&broker, "a");
    tokio::task::block_in_place(|| {
        first.wait_for("a first transaction", Duration::from_secs(60), |m| {
            m["messages_inserted"].as_u64().unwrap_or(0) > 0
        })
    });
    let second = spawn(&broker, "a");
    dbw::produce(&producer, &events[half..]).await;
    let status = tokio::task::block_in_place(|| first.wait_exit(Duration::from_secs(60)));
    assert!(!status.success(), "the fenced process exited 0");
    assert!(first.log().contains("fenced"), "{}", first.log());
    wait_caught_up(&broker, &b, || second.log()).await;
    check_outputs(&b, &specs, &execs, &fails, &events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_stops_and_a_leader_moves_mid_run() {
    let mut cluster = Broker::builder().start_cluster(3).await.unwrap();
    let b = cluster.bootstrap();
    dbw::create_topics(&b).await;
    let (specs, execs, fails, events) = history(4, 8_000, 2_000);
    // The transaction coordinator on node 2, which stops mid-run.
    cluster.move_coordinator("pattern-extractor-a", 2);
    let producer = common::producer(&b, &[("enable.idempotence", "true")]);
    let (first, rest) = events.split_at(events.len() / 2);
    dbw::produce(&producer, first).await;
    let extractor = spawn_on(&b, "a");
    tokio::task::block_in_place(|| {
        extractor.wait_for("progress", Duration::from_secs(60), |m| {
            m["messages_inserted"].as_u64().unwrap_or(0) > 0
        })
    });
    assert_eq!(cluster.coordinator("pattern-extractor-a"), 2);
    assert!(cluster.stop_broker(2));
    let moved_from = cluster.leader(TEMPLATES, 0);
    let to = if moved_from == 1 { 3 } else { 1 };
    cluster.move_leader(TEMPLATES, 0, to).unwrap();
    dbw::produce(&producer, rest).await;
    wait_caught_up(&cluster, &b, || extractor.log()).await;
    assert_ne!(cluster.coordinator("pattern-extractor-a"), 2);
    check_outputs(&b, &specs, &execs, &fails, &events);
}

#[test]
fn a_bad_model_file_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("model.toml"),
        "[templates]\nmin_success_rate = 1.5\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args(["consume", "pattern-extractor"])
        .env("KAFKA_BROKERS", "127.0.0.1:1")
        .env("ML_MODEL_PATH", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ML_MODEL_PATH") && err.contains("templates.min_success_rate"),
        "{err}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args(["consume", "pattern-extractor"])
        .env("KAFKA_BROKERS", "127.0.0.1:1")
        .env("MIN_OCCURRENCES", "many")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("MIN_OCCURRENCES"));
}

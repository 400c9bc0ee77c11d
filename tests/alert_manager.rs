//! The alert-manager end to end: the real broker (testkit), the real `agentbus consume
//! alert-manager` process, and a real HTTP receiver on loopback standing in for
//! PagerDuty, Slack and a webhook.

mod common;

use agentbus_testkit::Broker;
use common::alerts::{self, Expected};
use common::db_writer as dbw;
use common::receiver::{Answer, Receiver};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const PD: &str = "/v2/enqueue";
const SLACK: &str = "/slack/hook";
const HOOK: &str = "/webhook";

async fn setup() -> (Broker, Receiver, tempfile::TempDir) {
    let broker = Broker::start().await.expect("broker");
    dbw::create_topics(&broker.bootstrap()).await;
    (
        broker,
        Receiver::start().await,
        tempfile::tempdir().unwrap(),
    )
}

fn destinations(r: &Receiver) -> Vec<(&'static str, String)> {
    vec![
        ("PAGERDUTY_API_KEY", "test-routing-key".to_string()),
        ("PAGERDUTY_EVENTS_URL", r.url(PD)),
        ("SLACK_WEBHOOK_URL", r.url(SLACK)),
        ("ALERT_WEBHOOK_URL", r.url(HOOK)),
        (
            "ALERT_LINK_URL",
            "https://dash.example/alerts?key={dedup_key}".to_string(),
        ),
        ("ALERT_RATE_LIMIT", "0".to_string()),
    ]
}

fn env<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// PagerDuty events received, as (dedup_key, event_action).
fn pagerduty_keys(r: &Receiver) -> Vec<(String, String)> {
    r.accepted(PD)
        .iter()
        .map(|q| {
            (
                q.body["dedup_key"].as_str().unwrap().to_string(),
                q.body["event_action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn model_keys(model: &BTreeSet<Expected>) -> BTreeSet<(String, String)> {
    model
        .iter()
        .map(|e| (e.dedup_key.clone(), e.action.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_stream_gives_exactly_the_models_alerts_at_every_destination() {
    let (broker, receiver, dir) = setup().await;
    let bootstrap = broker.bootstrap();
    let sent = alerts::stream(1, chrono::Utc::now().timestamp_millis());
    let model = alerts::model(&sent);
    let events: Vec<dbw::Event> = sent.iter().map(|s| s.event.clone()).collect();
    dbw::produce(&common::producer(&bootstrap, &[]), &events).await;
    let pairs = destinations(&receiver);
    let manager = alerts::spawn(&bootstrap, dir.path(), &env(&pairs));

    alerts::wait(
        "every PagerDuty trigger and resolve",
        90,
        || receiver.accepted(PD).len() >= model.len(),
        || manager.log(),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // PagerDuty: every event once, in the Events API v2 shape.
    let got = pagerduty_keys(&receiver);
    assert_eq!(got.len(), model.len(), "no event twice: {got:?}");
    assert_eq!(
        got.iter().cloned().collect::<BTreeSet<_>>(),
        model_keys(&model)
    );
    let severity: BTreeMap<&str, &str> = model
        .iter()
        .map(|e| (e.dedup_key.as_str(), e.severity.as_str()))
        .collect();
    for q in receiver.accepted(PD) {
        let b = &q.body;
        assert_eq!(b["routing_key"], "test-routing-key");
        let key = b["dedup_key"].as_str().unwrap();
        if b["event_action"] == "trigger" {
            assert_eq!(b["payload"]["severity"], severity[key], "{b}");
            assert!(!b["payload"]["summary"].as_str().unwrap().is_empty());
            assert!(b["payload"]["source"].is_string());
            assert_eq!(
                b["payload"]["custom_details"]["subject"],
                key.split('/').nth(2).unwrap()
            );
            assert!(
                b["links"][0]["href"].as_str().unwrap().ends_with(key),
                "{b}"
            );
        } else {
            assert_eq!(b["event_action"], "resolve");
            assert!(b.get("payload").is_none(), "{b}");
        }
    }

    // Slack: a Block Kit message per alert, with the facts and the link.
    alerts::wait(
        "every Slack message",
        30,
        || receiver.accepted(SLACK).len() >= model.len(),
        || manager.log(),
    )
    .await;
    let slack = receiver.accepted(SLACK);
    assert_eq!(slack.len(), model.len());
    for q in &slack {
        let b = &q.body;
        assert!(b["text"].is_string(), "{b}");
        assert_eq!(b["blocks"][0]["type"], "header");
        let fields: Vec<&str> = b["blocks"][2]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["text"].as_str().unwrap())
            .collect();
        assert!(
            fields.iter().any(|f| f.starts_with("*Dedup key*")),
            "{fields:?}"
        );
        assert!(fields
            .iter()
            .any(|f| f.contains("https://dash.example/alerts?key=agentbus/")));
    }

    // The webhook gets the alert events themselves: exactly the model.
    alerts::wait(
        "every webhook call",
        30,
        || receiver.accepted(HOOK).len() >= model.len(),
        || manager.log(),
    )
    .await;
    let hooked: BTreeSet<Expected> = receiver
        .accepted(HOOK)
        .iter()
        .map(|q| alerts::expected_of(&q.body))
        .collect();
    assert_eq!(hooked, model);

    // agent-alerts holds each alert once (read_committed), as the model says.
    let topic: Vec<Value> =
        tokio::task::block_in_place(|| alerts::read_alerts(&bootstrap, model.len()));
    let stored: BTreeSet<Expected> = topic.iter().map(alerts::expected_of).collect();
    assert_eq!(stored, model);

    // The db-writer stores every alert in agent_alerts, once.
    let pg = agentbus_testkit::Postgres::start().await.expect("postgres");
    let writer = dbw::DbWriter::spawn(&bootstrap, pg.url(), &[]);
    let mut want: Vec<String> = topic
        .iter()
        .map(|v| v["event_id"].as_str().unwrap().to_string())
        .collect();
    want.sort();
    let rows = || -> Vec<String> {
        let out = pg
            .psql("SELECT id::text FROM agent_alerts ORDER BY 1")
            .expect("psql");
        out.lines().map(str::to_string).collect()
    };
    common::members::wait_for_showing(
        "agent_alerts to hold every alert",
        60,
        || rows().len() >= want.len(),
        || writer.log(),
    )
    .await;
    assert_eq!(rows(), want);
    let resolves = pg
        .psql("SELECT count(*) FROM agent_alerts WHERE action = 'resolve'")
        .unwrap();
    assert_eq!(resolves.trim(), (model.len() / 2).to_string());
    drop(writer);

    let m = manager.get("/metrics").1;
    let triggers = model.iter().filter(|e| e.action == "trigger").count() as f64;
    let fired = dbw::sum_samples(&m, "agentbus_alerts_total", "action=\"trigger\"");
    assert_eq!(fired, triggers, "{m}");
    let delivered = dbw::sum_samples(
        &m,
        "agentbus_alert_deliveries_total",
        "destination=\"pagerduty\",outcome=\"delivered\"",
    );
    assert_eq!(delivered, model.len() as f64, "{m}");
    assert!(
        m.contains("agentbus_alert_delivery_latency_seconds_count{group=\"alert-group-delivery\"}"),
        "{m}"
    );
    let (status, _) = tokio::task::block_in_place(|| manager.terminate(Duration::from_secs(30)));
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_three_times_loses_no_alert_and_repeats_only_dedup_keys() {
    let (broker, receiver, dir) = setup().await;
    let bootstrap = broker.bootstrap();
    let sent: Vec<alerts::Sent> = (0..3)
        .flat_map(|run| alerts::stream(10 + run * 5, chrono::Utc::now().timestamp_millis()))
        .collect();
    let model = alerts::model(&sent);
    let producer = common::producer(&bootstrap, &[]);
    let pairs = destinations(&receiver);
    let mut manager = alerts::spawn(&bootstrap, dir.path(), &env(&pairs));
    let mut rng = common::patterns::Rng::new(std::process::id() as u64);
    for chunk in sent.chunks(sent.len() / 3 + 1) {
        let events: Vec<dbw::Event> = chunk.iter().map(|s| s.event.clone()).collect();
        dbw::produce(&producer, &events).await;
        // A moment the process cannot prepare for: while it evaluates, or between a
        // delivery and its commit.
        tokio::time::sleep(Duration::from_millis(300 + rng.below(1500))).await;
        manager.kill();
        manager = alerts::spawn(&bootstrap, dir.path(), &env(&pairs));
    }
    alerts::wait(
        "every PagerDuty event after three kills",
        120,
        || {
            let got: BTreeSet<(String, String)> = pagerduty_keys(&receiver).into_iter().collect();
            model_keys(&model).is_subset(&got)
        },
        || manager.log(),
    )
    .await;
    let topic: Vec<Value> =
        tokio::task::block_in_place(|| alerts::read_alerts(&bootstrap, model.len()));
    let stored: BTreeSet<Expected> = topic.iter().map(alerts::expected_of).collect();
    assert_eq!(
        stored, model,
        "agent-alerts holds exactly the model, once each"
    );
    let got = pagerduty_keys(&receiver);
    let distinct: BTreeSet<(String, String)> = got.iter().cloned().collect();
    assert_eq!(
        distinct,
        model_keys(&model),
        "nothing but the model's dedup keys"
    );
    println!(
        "PagerDuty events re-sent after a kill (same dedup_key): {} of {}",
        got.len() - distinct.len(),
        got.len()
    );
    let (status, _) = tokio::task::block_in_place(|| manager.terminate(Duration::from_secs(30)));
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_and_retry_after_hold_delivery_back_and_a_400_goes_to_the_dlq() {
    let (broker, receiver, dir) = setup().await;
    let bootstrap = broker.bootstrap();
    receiver.answer(PD, Answer::Status(500, None));
    receiver.answer(HOOK, Answer::Status(400, None));
    let sent = alerts::stream(40, chrono::Utc::now().timestamp_millis());
    let model = alerts::model(&sent);
    let events: Vec<dbw::Event> = sent.iter().map(|s| s.event.clone()).collect();
    dbw::produce(&common::producer(&bootstrap, &[]), &events).await;
    let pairs: Vec<(&'static str, String)> = destinations(&receiver)
        .into_iter()
        .filter(|(k, _)| *k != "SLACK_WEBHOOK_URL")
        .collect();
    let manager = alerts::spawn(&bootstrap, dir.path(), &env(&pairs));
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    receiver.answer(PD, Answer::Status(429, Some(2)));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(receiver.accepted(PD).is_empty());
    let refused = receiver.requests().iter().filter(|q| q.path == PD).count();
    assert!(refused >= 4, "PagerDuty was retried: {refused} requests");
    receiver.answer(PD, Answer::Accept);
    alerts::wait(
        "every PagerDuty event once PagerDuty answers",
        90,
        || receiver.accepted(PD).len() >= model.len(),
        || manager.log(),
    )
    .await;
    let first = receiver.accepted(PD)[0].at;
    assert!(first >= started + Duration::from_secs(20));
    // 429 with Retry-After: 2 was honoured: no two requests of one retry within 2 s.
    let throttled: Vec<Instant> = receiver
        .requests()
        .iter()
        .filter(|q| q.path == PD && q.status == 429)
        .map(|q| q.at)
        .collect();
    assert!(
        throttled
            .windows(2)
            .all(|w| w[1] - w[0] >= Duration::from_millis(1900)),
        "Retry-After honoured"
    );
    let distinct: BTreeSet<(String, String)> = pagerduty_keys(&receiver).into_iter().collect();
    assert_eq!(distinct, model_keys(&model));

    // The webhook refused every alert with 400: each is in agent-alerts-dlq with why.
    let dead = tokio::task::block_in_place(|| read_alert_dlq(&bootstrap, model.len()));
    assert_eq!(dead.len(), model.len());
    for (value, headers) in &dead {
        let alert: Value = serde_json::from_slice(value).unwrap();
        assert!(alert["dedup_key"].is_string());
        let reason = headers
            .get("__connect.errors.exception.message")
            .or_else(|| headers.get("error_message"))
            .cloned()
            .unwrap_or_default();
        assert!(reason.contains("webhook: HTTP 400"), "{headers:?}");
    }
    let (status, _) = tokio::task::block_in_place(|| manager.terminate(Duration::from_secs(30)));
    assert!(status.success());
}

/// `agent-alerts-dlq`: value and headers of each record.
fn read_alert_dlq(bootstrap: &str, expected: usize) -> Vec<(Vec<u8>, BTreeMap<String, String>)> {
    use rdkafka::consumer::Consumer;
    use rdkafka::message::Message;
    let consumer = common::consumer(bootstrap, &[]);
    let md = consumer
        .fetch_metadata(Some("agent-alerts-dlq"), Duration::from_secs(10))
        .unwrap();
    let partitions = md.topics()[0].partitions().len() as i32;
    common::consume_all(&consumer, "agent-alerts-dlq", partitions, expected)
        .iter()
        .map(|m| {
            let headers = common::headers_of(m);
            (m.payload().unwrap_or_default().to_vec(), headers)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_one_signature_pages_once_and_sums_up_the_rest() {
    let (broker, receiver, dir) = setup().await;
    let bootstrap = broker.bootstrap();
    // 10,000 failures of one fingerprint within a minute of event time: ten bursts of
    // 1,000, six seconds apart (each burst a new incident after a clear 5 s window,
    // all within the first one's cool-down).
    let t0 = chrono::Utc::now().timestamp_millis() - 120_000;
    let fingerprint = "00000063-0000-4000-8000-0000000000aa".to_string();
    let sent: Vec<alerts::Sent> = (0..10_000u64)
        .map(|i| {
            let at = t0 + (i / 1000) as i64 * 6_000 + (i % 1000) as i64 / 2;
            let fact = alerts::Fact::Failure {
                fingerprint: fingerprint.clone(),
            };
            alerts::event(50, i, fact, at)
        })
        .collect();
    let events: Vec<dbw::Event> = sent.iter().map(|s| s.event.clone()).collect();
    dbw::produce(&common::producer(&bootstrap, &[]), &events).await;
    let rules = alerts::RULES.replace("cooldown = \"10m\"", "cooldown = \"1m\"");
    let path = dir.path().join("flood.toml");
    std::fs::write(&path, rules).unwrap();
    let path = path.to_string_lossy().into_owned();
    let mut pairs = destinations(&receiver);
    pairs.push(("ALERT_RULES", path));
    let manager = alerts::spawn(&bootstrap, dir.path(), &env(&pairs));
    alerts::wait(
        "the suppression summary",
        90,
        || {
            // Each destination is delivered on its own: wait for the summary at both.
            receiver
                .accepted(SLACK)
                .iter()
                .any(|q| q.body["text"].as_str().unwrap_or("").contains("held back"))
                && receiver
                    .accepted(HOOK)
                    .iter()
                    .any(|q| q.body["kind"] == "suppressed")
        },
        || manager.log(),
    )
    .await;
    let pages = pagerduty_keys(&receiver);
    let triggers = pages.iter().filter(|(_, a)| a == "trigger").count();
    assert_eq!(triggers, 1, "one page, not 10,000: {pages:?}");
    let summary = receiver
        .accepted(HOOK)
        .into_iter()
        .find(|q| q.body["kind"] == "suppressed")
        .expect("the summary reaches the webhook");
    assert_eq!(summary.body["occurrences"], 9, "{}", summary.body);
    assert!(
        !receiver
            .accepted(PD)
            .iter()
            .any(|q| q.body["payload"]["class"] == "suppressed"),
        "a summary opens no incident"
    );
    let (status, _) = tokio::task::block_in_place(|| manager.terminate(Duration::from_secs(30)));
    assert!(status.success());
}

#[test]
fn bad_rules_and_settings_stop_startup_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let run = |env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"));
        cmd.args(["consume", "alert-manager"])
            .env("KAFKA_BROKERS", "127.0.0.1:1")
            .env("HTTP_PORT", "0");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[rule]]\nname = \"pages\"\nkind = \"repeated_failure\"\nwindow = \"soon\"\n",
    )
    .unwrap();
    let e = run(&[("ALERT_RULES", bad.to_str().unwrap())]);
    assert!(e.contains("ALERT_RULES: rule \"pages\": window"), "{e}");
    let e = run(&[("ALERT_RULES", "/nonexistent/rules.toml")]);
    assert!(e.contains("ALERT_RULES: /nonexistent/rules.toml"), "{e}");
    let e = run(&[("FAILURE_THRESHOLD", "three")]);
    assert!(e.contains("FAILURE_THRESHOLD"), "{e}");
    let e = run(&[("SLACK_WEBHOOK_URL", "hooks.slack.com/x")]);
    assert!(e.contains("SLACK_WEBHOOK_URL"), "{e}");
    let e = run(&[
        ("PAGERDUTY_API_KEY", "k"),
        ("PAGERDUTY_EVENTS_URL", "ftp://pd"),
    ]);
    assert!(e.contains("PAGERDUTY_EVENTS_URL"), "{e}");
}

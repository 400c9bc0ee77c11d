//! `agentbus verify`: the dual-write check, against a real broker and PostgreSQL.

mod common;

use agentbus_client::Topic;
use agentbus_testkit::{Broker, Postgres};
use common::db_writer::{self as dbw, DbWriter};
use std::time::Duration;

fn verify(bootstrap: &str, pg: &Postgres, extra: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args([
            "verify",
            "--topic",
            "routing-decision",
            "--topic",
            "action",
            "--since",
            "1h",
        ])
        .args(extra)
        .args(["--bootstrap-server", bootstrap, "--database-url", pg.url()])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_a_deleted_row_and_an_event_missing_from_kafka() {
    let broker = Broker::start().await.expect("broker");
    let pg = Postgres::start().await.expect("postgres");
    let bootstrap = broker.bootstrap();
    dbw::create_topics(&bootstrap).await;
    for t in Topic::DERIVED {
        let n = agentbus_client::catalog::spec(t).partitions;
        common::create_topic(&bootstrap, t.name(), n, &[]).await;
    }
    // Events of the last ten minutes (and one bad one, which belongs to the DLQ).
    let at = chrono::Utc::now() - chrono::Duration::minutes(10);
    let stamp = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let events: Vec<dbw::Event> = (0..320)
        .map(|i| dbw::event(71, i, 0))
        .filter(|e| matches!(e.topic, Topic::AgentActions | Topic::AgentRoutingDecisions))
        .map(|mut e| {
            let mut v: serde_json::Value = serde_json::from_slice(&e.value).unwrap();
            v["timestamp"] = stamp.clone().into();
            e.value = serde_json::to_vec(&v).unwrap();
            e
        })
        .chain([dbw::event(72, 1, 2)])
        .collect();
    dbw::produce(&common::producer(&bootstrap, &[]), &events).await;
    let writer = DbWriter::spawn(&bootstrap, pg.url(), &[]);
    common::members::wait_for_showing(
        "every event stored",
        60,
        || dbw::stored_ids(&pg).len() == events.len() - 1,
        || writer.log(),
    )
    .await;
    let (status, _) = tokio::task::block_in_place(|| writer.terminate(Duration::from_secs(30)));
    assert!(status.success());

    let (ok, stdout, stderr) = tokio::task::block_in_place(|| verify(&bootstrap, &pg, &[]));
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("consistent") && !stdout.contains("NOT"),
        "{stdout}"
    );

    // A row deleted from PostgreSQL, and a row no event in Kafka stands for.
    let gone = events
        .iter()
        .find(|e| e.topic == Topic::AgentActions)
        .unwrap()
        .id
        .clone();
    pg.psql(&format!("DELETE FROM agent_actions WHERE id = '{gone}'"))
        .unwrap();
    let extra = "00000099-0000-4000-8000-000000000099";
    pg.psql(&format!(
        "INSERT INTO agent_routing_decisions SELECT '{extra}'::uuid, correlation_id, {} FROM agent_routing_decisions LIMIT 1",
        "user_request, selected_agent, confidence_score, alternatives, reasoning, routing_strategy, context, routing_time_ms, created_at, ingested_at"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let (ok, stdout, _) = tokio::task::block_in_place(|| verify(&bootstrap, &pg, &[]));
    assert!(!ok, "{stdout}");
    assert!(stdout.contains("NOT consistent"), "{stdout}");
    assert!(
        stdout.contains(&format!("missing in database: {gone}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("missing in kafka: {extra}")),
        "{stdout}"
    );

    let (ok, stdout, _) =
        tokio::task::block_in_place(|| verify(&bootstrap, &pg, &["--output", "json"]));
    assert!(!ok);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["consistent"], false);
    let actions = v["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == "agent-actions")
        .unwrap();
    assert_eq!(actions["missing_in_database"], 1);
    assert_eq!(actions["first_missing_in_database"][0], gone.as_str());

    // replay --to-group: the db-writer reads the last hour again; the deleted row comes
    // back and nothing is doubled.
    let replay = |group: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"))
            .args(["replay", "--to-group", group, "--from", "1h"])
            .args(["--bootstrap-server", &bootstrap, "--database-url", pg.url()])
            .output()
            .unwrap()
    };
    let out = tokio::task::block_in_place(|| replay("db-writer-group"));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("partition(s) moved back"), "{said}");
    let before = dbw::stored_ids(&pg).len();
    let writer = DbWriter::spawn(&bootstrap, pg.url(), &[]);
    common::members::wait_for_showing(
        "the deleted row written again",
        60,
        || dbw::stored_ids(&pg).contains(&gone),
        || writer.log(),
    )
    .await;
    let m = writer.wait_for("the span read again", Duration::from_secs(60), |m| {
        m["messages_duplicate"].as_u64().unwrap_or(0) >= (events.len() - 3) as u64
    });
    assert_eq!(dbw::stored_ids(&pg).len(), before + 1, "{m}");
    let _ = tokio::task::block_in_place(|| writer.terminate(Duration::from_secs(30)));
    let out = tokio::task::block_in_place(|| replay("metrics-group"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("count the span twice"));
}

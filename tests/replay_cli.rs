//! `agentbus replay`: a topic's events between two instants, from a real broker.

mod common;

use agentbus_client::Topic;
use agentbus_testkit::Broker;
use common::db_writer as dbw;
use std::collections::BTreeSet;

fn replay(bootstrap: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .arg("replay")
        .args(args)
        .args(["--bootstrap-server", bootstrap])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_prints_exactly_the_events_of_a_time_range() {
    let broker = Broker::start().await.expect("broker");
    let bootstrap = broker.bootstrap();
    dbw::create_topics(&bootstrap).await;
    let producer = common::producer(&bootstrap, &[]);
    let actions: Vec<dbw::Event> = (0..2_400)
        .map(|i| dbw::event(61, i, 0))
        .filter(|e| e.topic == Topic::AgentActions)
        .collect();
    // Three hours, an hour apart, a hundred events each.
    let t0 = chrono::Utc::now().timestamp_millis() - 3 * 3_600_000;
    for (h, chunk) in actions.chunks(100).enumerate() {
        dbw::produce_at(&producer, chunk, Some(t0 + h as i64 * 3_600_000)).await;
    }
    let from = rfc3339(t0 + 3_600_000 - 1);
    let to = rfc3339(t0 + 3_600_000 + 1);
    let (ok, stdout, stderr) = tokio::task::block_in_place(|| {
        replay(&bootstrap, &["agent-actions", "--from", &from, "--to", &to])
    });
    assert!(ok, "{stderr}");
    let got: BTreeSet<String> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let want: BTreeSet<String> = actions[100..200].iter().map(|e| e.id.clone()).collect();
    assert_eq!(stdout.lines().count(), 100, "each once");
    assert_eq!(got, want);

    // By trace id, as a table, with a relative start.
    let v: serde_json::Value = serde_json::from_slice(&actions[150].value).unwrap();
    let correlation = v["correlation_id"].as_str().unwrap();
    let (ok, stdout, stderr) = tokio::task::block_in_place(|| {
        replay(
            &bootstrap,
            &[
                "action",
                "--from",
                "4h",
                "--correlation-id",
                correlation,
                "--output",
                "table",
            ],
        )
    });
    assert!(ok, "{stderr}");
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    let expected = actions
        .iter()
        .filter(|e| {
            let v: serde_json::Value = serde_json::from_slice(&e.value).unwrap();
            v["correlation_id"] == correlation
        })
        .count();
    assert!(expected >= 1);
    assert_eq!(rows.len(), expected, "{stdout}");
    assert!(rows.iter().all(|r| r.contains(correlation)), "{stdout}");

    let (ok, _, stderr) = tokio::task::block_in_place(|| {
        replay(&bootstrap, &["agent-actions", "--from", "yesterday-ish"])
    });
    assert!(!ok && stderr.contains("--from"), "{stderr}");
    let (ok, _, stderr) =
        tokio::task::block_in_place(|| replay(&bootstrap, &["no-such-topic", "--from", "1h"]));
    assert!(!ok && stderr.contains("no-such-topic"), "{stderr}");
}

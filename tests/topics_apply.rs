//! `agentbus topics apply deploy/topics.toml` against an in-process broker: the first run
//! creates the eight topics with the seeds' partitions and retention (replication capped at
//! the one broker, with a warning); a second run changes nothing; an edited file changes a
//! topic's retention and adds partitions.

mod common;

use agentbus_client::catalog;
use agentbus_testkit::Broker;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn apply(bootstrap: &str, file: &std::path::Path) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_agentbus"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AGENTBUS_") || k == "KAFKA_BROKERS" {
            cmd.env_remove(k);
        }
    }
    cmd.args(["topics", "apply"])
        .arg(file)
        .args(["--bootstrap-server", bootstrap, "--timeout-ms", "10000"])
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("topics apply hung")
        .expect("run agentbus");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn deploy_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/topics.toml")
}

/// Partitions and explicitly set configs of `topic`, as the broker holds them.
fn topic_state(broker: &Broker, topic: &str) -> (i32, std::collections::BTreeMap<String, String>) {
    let t = broker
        .inspect()
        .topic(topic)
        .unwrap_or_else(|| panic!("{topic} does not exist"));
    (t.partitions, t.configs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_creates_the_eight_topics_with_the_seeds_settings() {
    let broker = Broker::start().await.expect("broker");
    let run = apply(&broker.bootstrap(), &deploy_file()).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    // The eight, then the derived topics (the pattern-extractor's and the alert-manager's).
    for spec in catalog::deployment() {
        let (partitions, configs) = topic_state(&broker, &spec.name);
        assert_eq!(partitions, spec.partitions, "{}", spec.name);
        assert_eq!(
            configs["retention.ms"],
            spec.retention_ms.to_string(),
            "{}",
            spec.name
        );
        assert_eq!(configs["compression.type"], "snappy");
        assert_eq!(
            configs.get("cleanup.policy"),
            spec.configs.get("cleanup.policy"),
            "{}",
            spec.name
        );
        // Capped with the replication factor: 2 in-sync replicas of 1 would refuse acks=all.
        assert_eq!(configs["min.insync.replicas"], "1");
        assert!(
            run.stdout.contains(&format!("created {}", spec.name)),
            "{}",
            run.stdout
        );
        assert!(
            run.stderr.contains(&format!(
                "warning: {}: replication factor 3 capped at 1 (the cluster has 1 broker)",
                spec.name
            )),
            "{}",
            run.stderr
        );
    }
    assert_eq!(broker.inspect().topics().len(), catalog::deployment().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_twice_changes_nothing_and_an_edited_file_changes_retention() {
    let broker = Broker::start().await.expect("broker");
    let bootstrap = broker.bootstrap();
    let first = apply(&bootstrap, &deploy_file()).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    let ids: Vec<_> = catalog::catalog()
        .iter()
        .map(|s| broker.inspect().topic(&s.name).expect("created").id)
        .collect();

    let second = apply(&bootstrap, &deploy_file()).await;
    assert_eq!(second.code, Some(0), "{second:?}");
    assert!(!second.stdout.contains("created"), "{}", second.stdout);
    for spec in catalog::catalog() {
        assert!(
            second.stdout.contains(&format!("unchanged {}", spec.name)),
            "{}",
            second.stdout
        );
    }
    let again: Vec<_> = catalog::catalog()
        .iter()
        .map(|s| broker.inspect().topic(&s.name).expect("still there").id)
        .collect();
    assert_eq!(ids, again, "topics were recreated");

    // 7 days -> 3 days for agent-actions; 6 -> 8 partitions for failure-patterns.
    let text = std::fs::read_to_string(deploy_file()).expect("read");
    let edited = text
        .replacen(
            "retention_ms = 604800000 # 7 days",
            "retention_ms = 259200000",
            1,
        )
        .replacen(
            "name = \"failure-patterns\"\npartitions = 6",
            "name = \"failure-patterns\"\npartitions = 8",
            1,
        );
    assert_ne!(edited, text);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("topics.toml");
    std::fs::write(&file, edited).expect("write");
    let third = apply(&bootstrap, &file).await;
    assert_eq!(third.code, Some(0), "{third:?}");
    assert!(
        third
            .stdout
            .contains("updated agent-actions: retention.ms: 604800000 -> 259200000"),
        "{}",
        third.stdout
    );
    assert!(
        third
            .stdout
            .contains("failure-patterns: partitions increased to 8"),
        "{}",
        third.stdout
    );
    let (_, configs) = topic_state(&broker, "agent-actions");
    assert_eq!(configs["retention.ms"], "259200000");
    assert_eq!(configs["compression.type"], "snappy", "other configs kept");
    assert_eq!(topic_state(&broker, "failure-patterns").0, 8);
    assert_eq!(
        topic_state(&broker, "agent-routing-decisions").1["retention.ms"],
        "2592000000"
    );

    // And the edited file, applied again, is a no-op too.
    let fourth = apply(&bootstrap, &file).await;
    assert_eq!(fourth.code, Some(0), "{fourth:?}");
    assert!(!fourth.stdout.contains("updated"), "{}", fourth.stdout);
}

//! Redis servers the metrics-aggregator refuses, because effectively-once cannot hold
//! on them: one that may evict keys (an evicted offsets hash would count its topic's
//! events again) and a cluster (the client speaks to one server). Each test runs its
//! own `redis-server`, since it changes the server's settings.

mod common;

use agentbus_consumers::metrics_aggregator::{RedisSettings, RedisSink};
use agentbus_consumers::sink::{Sink, SinkError};
use agentbus_testkit::fixtures::Source;
use agentbus_testkit::{Broker, Redis};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn config_set(url: &str, key: &str, value: &str) {
    let mut conn = common::aggregator::connect(url);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(key)
        .arg(value)
        .query(&mut conn)
        .unwrap();
}

async fn check(url: &str) -> Result<(), SinkError> {
    let settings = RedisSettings {
        url: Some(url.to_string()),
        ..Default::default()
    };
    RedisSink::new(&settings).unwrap().check().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_may_evict_keys_stops_startup() {
    let redis = Redis::start_with(Source::Binaries)
        .await
        .expect("redis-server");
    let url = redis.url();
    check(url)
        .await
        .expect("no memory limit: nothing is evicted");
    config_set(url, "maxmemory", "64mb");
    config_set(url, "maxmemory-policy", "noeviction");
    check(url)
        .await
        .expect("a full Redis refuses writes: the consumer waits");
    for policy in ["allkeys-lru", "volatile-ttl"] {
        config_set(url, "maxmemory-policy", policy);
        match check(url).await {
            Err(SinkError::Fatal(m)) => assert!(
                m.contains("REDIS_URL")
                    && m.contains(&format!("maxmemory-policy {policy}"))
                    && m.contains("noeviction"),
                "{m}"
            ),
            other => panic!("{policy}: {other:?}"),
        }
    }
    config_set(url, "maxmemory", "0");
    check(url)
        .await
        .expect("no limit: the policy never applies");

    // The process stops at start-up with the message.
    config_set(url, "maxmemory", "64mb");
    let broker = Broker::start().await.expect("broker");
    let out = tokio::task::block_in_place(|| run_to_exit(&broker.bootstrap(), url));
    assert!(!out.0, "the consumer must not run on an evicting Redis");
    assert!(out.1.contains("maxmemory-policy volatile-ttl"), "{}", out.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_node_is_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--cluster-enabled",
            "yes",
        ])
        .arg("--cluster-config-file")
        .arg(dir.path().join("nodes.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server on PATH (apt-get install redis-server)");
    let url = format!("redis://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let result = loop {
        match check(&url).await {
            Err(SinkError::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => break other,
        }
    };
    let _ = server.kill();
    let _ = server.wait();
    match result {
        Err(SinkError::Fatal(m)) => {
            assert!(m.contains("REDIS_URL") && m.contains("cluster mode"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

/// Runs `agentbus consume metrics-aggregator` until it exits: (success, stderr).
fn run_to_exit(bootstrap: &str, url: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args(["consume", "metrics-aggregator"])
        .env("KAFKA_BROKERS", bootstrap)
        .env("REDIS_URL", url)
        .env("HTTP_HOST", "127.0.0.1")
        .env("HTTP_PORT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the consumer did not stop");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

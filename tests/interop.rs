//! Other clients against agentbus: kcat (Debian's librdkafka), confluent-kafka-python and
//! kafka-python. CI installs them (`.ci/run`); a missing one fails with the install command.

use agentbus_testkit::Broker;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn tool(cmd: &str, install: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{cmd}` is not installed; install it with: {install}"
    );
    Command::new(cmd)
}

fn check(out: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

#[tokio::test]
async fn kcat_metadata_produce_consume() {
    let broker = Broker::builder()
        .default_partitions(3)
        .start()
        .await
        .unwrap();
    let b = broker.bootstrap();
    let out = blocking(move || {
        let kcat = |args: &[&str]| {
            let mut c = tool("kcat", "apt-get install -y kcat");
            c.arg("-b").arg(&b).args(args);
            c
        };
        let mut p = kcat(&["-P", "-t", "kcat-topic", "-K", ":", "-z", "snappy"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("kcat -P");
        let input: String = (0..100)
            .map(|i| format!("key{}:value{i}\n", i % 4))
            .collect();
        p.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        check(p.wait_with_output().unwrap(), "kcat -P");
        let listing = check(
            kcat(&["-L", "-t", "kcat-topic"]).output().unwrap(),
            "kcat -L",
        );
        let consumed = check(
            kcat(&["-C", "-t", "kcat-topic", "-e", "-q", "-f", "%p %o %k %s\n"])
                .output()
                .unwrap(),
            "kcat -C",
        );
        (listing, consumed)
    })
    .await;
    assert!(
        out.0.contains("topic \"kcat-topic\" with 3 partitions"),
        "{}",
        out.0
    );
    assert!(
        out.0.contains("leader 1, replicas: 1, isrs: 1"),
        "{}",
        out.0
    );
    let mut lines: Vec<&str> = out.1.lines().collect();
    assert_eq!(lines.len(), 100, "{}", out.1);
    lines.sort();
    for i in 0..100 {
        assert!(
            lines
                .iter()
                .any(|l| l.ends_with(&format!(" key{}:value{i}", i % 4).replace(':', " "))),
            "value{i} missing"
        );
    }
    // Same key, same partition, offsets dense per partition.
    for key in 0..4 {
        let parts: std::collections::HashSet<&str> = lines
            .iter()
            .filter(|l| l.split(' ').nth(2) == Some(&format!("key{key}")))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(parts.len(), 1, "key{key} spread over {parts:?}");
    }
}

async fn python(script: &'static str, topic: &'static str) -> String {
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    let out = blocking(move || {
        tool("python3", "apt-get install -y python3")
            .arg(format!(
                "{}/tests/python/{script}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .args([&b, topic, "500"])
            .output()
            .expect("python3")
    })
    .await;
    check(out, script)
}

#[tokio::test]
async fn confluent_kafka_python_produce_consume() {
    let stdout = python("confluent_roundtrip.py", "py-confluent").await;
    assert!(stdout.contains("500 records round-tripped"), "{stdout}");
}

#[tokio::test]
async fn kafka_python_produce_consume() {
    let stdout = python("kafka_python_roundtrip.py", "py-kafka-python").await;
    assert!(stdout.contains("500 records round-tripped"), "{stdout}");
}

/// KIP-467: of 500 records to a compacted topic, the 50 keyless ones fail by index; the
/// 450 others are refused as part of the batch, sent again and stored.
#[tokio::test]
async fn confluent_kafka_python_sees_which_records_were_refused() {
    let stdout = python("confluent_record_errors.py", "py-record-errors").await;
    assert!(
        stdout.contains("50 keyless records refused by index, 450 sent again and stored"),
        "{stdout}"
    );
}

/// KIP-430: DescribeCluster, DescribeTopics and DescribeConsumerGroups with
/// `include_authorized_operations` answer Kafka's sets.
#[tokio::test]
async fn confluent_kafka_python_reads_authorized_operations() {
    let stdout = python("confluent_authorized_operations.py", "py-authorized").await;
    assert!(
        stdout.contains("authorized operations as Kafka answers them"),
        "{stdout}"
    );
}

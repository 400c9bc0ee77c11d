//! `kill -9` of a broker child process mid-stream: every acknowledged record survives with
//! its offset, a torn tail is cut with a log line, and offsets continue without a gap.

mod common;

use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct BrokerProcess {
    child: Child,
    bootstrap: String,
    stderr: Arc<Mutex<String>>,
}

fn start_broker(dir: &Path) -> BrokerProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args(["broker", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn broker");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("ready line");
    assert!(line.contains("ready in"), "unexpected first line: {line}");
    let bootstrap = line
        .split("bootstrap ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("bootstrap in ready line")
        .to_string();
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut pipe = child.stderr.take().expect("stderr");
    let sink = stderr.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    BrokerProcess {
        child,
        bootstrap,
        stderr,
    }
}

fn last_segment(dir: &Path) -> std::path::PathBuf {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a segment file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start_broker(dir.path());
    common::create_topic(&broker.bootstrap, "crash", 2, &[("segment.bytes", "65536")]).await;

    let producer = common::producer(
        &broker.bootstrap,
        &[
            ("acks", "all"),
            ("linger.ms", "1"),
            ("message.timeout.ms", "3000"),
            ("retries", "0"),
        ],
    );
    let acked: Arc<Mutex<Vec<(i32, i64, String)>>> = Arc::default();
    let mut inflight = Vec::new();
    for i in 0..20_000u32 {
        let value = format!("record-{i}");
        let key = format!("k{}", i % 7);
        let fut = producer
            .send_result(FutureRecord::to("crash").key(&key).payload(&value))
            .expect("enqueue");
        let acked = acked.clone();
        inflight.push(tokio::spawn(async move {
            if let Ok(Ok(d)) = fut.await {
                acked.lock().unwrap().push((d.partition, d.offset, value));
            }
        }));
        if i == 12_000 {
            // Mid-stream: records are in flight when the broker dies.
            broker.child.kill().expect("kill -9");
            broker.child.wait().unwrap();
        }
        if i % 500 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for f in inflight {
        f.await.unwrap();
    }
    drop(producer);
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        acked.len() > 1000,
        "only {} acknowledged before the kill",
        acked.len()
    );

    // A torn write: half a batch header at the end of partition 0's active segment.
    let seg = last_segment(&dir.path().join("crash-0"));
    std::fs::OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&[0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 1, 0, 0, 0, 0, 0, 2, 1, 2, 3])
        .unwrap();

    let mut broker = start_broker(dir.path());
    let mut ends = [0i64; 2];
    for (p, o, _) in &acked {
        ends[*p as usize] = ends[*p as usize].max(o + 1);
    }
    let consumer = common::consumer(&broker.bootstrap, &[]);
    // The broker may hold records acknowledged-but-unobserved (the ack was lost with the
    // kill), so read to the high watermark rather than to a count.
    let mut stored: Vec<std::collections::BTreeMap<i64, String>> = vec![Default::default(); 2];
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..2 {
        tpl.add_partition_offset("crash", p, rdkafka::Offset::Beginning)
            .unwrap();
    }
    use rdkafka::consumer::Consumer;
    consumer.assign(&tpl).unwrap();
    let mut hw = [0i64; 2];
    for p in 0..2 {
        hw[p] = consumer
            .fetch_watermarks("crash", p as i32, Duration::from_secs(10))
            .unwrap()
            .1;
        assert!(
            hw[p] >= ends[p],
            "partition {p}: high watermark {} below acknowledged end {}",
            hw[p],
            ends[p]
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while (0..2).any(|p| (stored[p].len() as i64) < hw[p]) {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out reading back"
        );
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            let v = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
            stored[m.partition() as usize].insert(m.offset(), v);
        }
    }
    for (p, o, v) in &acked {
        assert_eq!(
            stored[*p as usize].get(o),
            Some(v),
            "acknowledged record at {p}/{o}"
        );
    }
    for (p, s) in stored.iter().enumerate() {
        let offsets: Vec<i64> = s.keys().copied().collect();
        assert_eq!(
            offsets,
            (0..hw[p]).collect::<Vec<_>>(),
            "no gaps in partition {p}"
        );
    }
    assert!(
        broker
            .stderr
            .lock()
            .unwrap()
            .contains("truncated torn tail"),
        "recovery logs the cut: {}",
        broker.stderr.lock().unwrap()
    );

    // Offsets continue where the log ends.
    let producer = common::producer(&broker.bootstrap, &[("acks", "all")]);
    let d = producer
        .send(
            FutureRecord::to("crash")
                .partition(0)
                .key("after")
                .payload("restart"),
            Duration::from_secs(10),
        )
        .await
        .expect("produce after restart");
    assert_eq!(d.offset, hw[0]);
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_and_exits_zero_and_topics_persist() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path());
    common::create_topic(
        &broker.bootstrap,
        "kept",
        3,
        &[("retention.ms", "86400000")],
    )
    .await;
    let producer = common::producer(&broker.bootstrap, &[("acks", "all")]);
    producer
        .send(
            FutureRecord::to("kept").partition(2).key("k").payload("v"),
            Duration::from_secs(10),
        )
        .await
        .expect("produce");
    let pid = broker.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let mut child = broker.child;
    let code = child.wait().unwrap();
    assert!(code.success(), "SIGTERM exits 0, got {code:?}");

    let mut broker = start_broker(dir.path());
    let consumer = common::consumer(&broker.bootstrap, &[]);
    use rdkafka::consumer::Consumer;
    let md = consumer
        .fetch_metadata(Some("kept"), Duration::from_secs(10))
        .unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 3);
    let (low, high) = consumer
        .fetch_watermarks("kept", 2, Duration::from_secs(10))
        .unwrap();
    assert_eq!((low, high), (0, 1));
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
}

//! `agentbus bench alert-manager`: events/s the evaluator takes in (each failure read,
//! keyed by subject in a transaction, read again and evaluated in another), per batch
//! size; then, with the default batch settings, the time from a failure's event time to
//! the PagerDuty request its alert makes at a receiver on loopback.

use super::consumer_run::{self, Events, Shape, Until};
use agentbus_client::Topic;
use anyhow::bail;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub(super) struct AlertManagerBench {
    #[command(flatten)]
    shape: Shape,
    /// Alerts to time end to end (four failures of a new fingerprint each).
    #[arg(long, default_value_t = 200)]
    alerts: u64,
    /// Alerts started per second in the latency run.
    #[arg(long, default_value_t = 20)]
    alert_rate: u64,
}

fn failure(i: u64, size: usize, fingerprint: &str, at: &str) -> Vec<u8> {
    let build = |pad: usize| {
        format!(
            r#"{{"event_id":"{:08x}-0000-4000-8000-{i:012x}","correlation_id":"{:08x}-0000-4000-8000-{i:012x}","failure_id":"{:08x}-0000-4000-8000-{i:012x}","fingerprint_id":"{fingerprint}","failure_type":"timeout","error_category":"database","error_message":"Connection to db-{} timed out{}","timestamp":"{at}"}}"#,
            0xfa11_u32,
            0xc0de_u32,
            0xf1d0_u32,
            i % 7,
            "x".repeat(pad)
        )
    };
    let base = build(0).len();
    build(size.saturating_sub(base)).into_bytes()
}

/// Failure `i`: 10,000 fingerprints in turn, so that each gets past the threshold and
/// fires once.
fn bench_failure(i: u64, size: usize) -> (String, Vec<u8>) {
    let fingerprint = format!("{:08x}-0000-4000-8000-{:012x}", 0xf00d_u32, i % 10_000);
    let value = failure(i, size, &fingerprint, &consumer_run::timestamp(i));
    (fingerprint, value)
}

pub(super) fn run(args: &AlertManagerBench) -> anyhow::Result<()> {
    let events = Events {
        topic: Topic::FailurePatterns,
        make: bench_failure,
    };
    let header = consumer_run::header("the evaluator", "transaction", &[]);
    let mut rows = Vec::new();
    for (n, &batch) in args.shape.batch_sizes.iter().enumerate() {
        // A broker per run: the keyed copies of one run would be read by the next.
        let broker = consumer_run::broker_with(&args.shape, events)?;
        let group = format!("alert-bench-{n}");
        // Done when the rules group has evaluated every failure's keyed copy.
        let until = Until {
            path: format!("/metrics.json?group={group}-rules"),
            done: "messages_consumed".into(),
            value: args.shape.count,
        };
        let run = consumer_run::measure_until(
            "alert-manager",
            &broker.bootstrap,
            batch,
            args.shape.count,
            &until,
            &[
                ("CONSUMER_GROUP_ID", group.clone()),
                ("INSTANCE_ID", format!("bench-{n}")),
                ("START_FROM", "earliest".into()),
                ("ALERT_RATE_LIMIT", "0".into()),
            ],
        );
        rows.push(run?.row());
    }
    println!("{header}");
    for r in rows {
        println!("{r}");
    }
    latency(args)
}

/// Arrival time (ms since the epoch) of each PagerDuty trigger, by dedup key.
type Arrivals = Arc<Mutex<BTreeMap<String, i64>>>;

fn receiver() -> anyhow::Result<(u16, Arrivals)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let arrivals: Arrivals = Arc::default();
    let shared = arrivals.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let arrivals = shared.clone();
            std::thread::spawn(move || {
                let mut write = match stream.try_clone() {
                    Ok(w) => w,
                    Err(_) => return,
                };
                let mut reader = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let now = chrono::Utc::now().timestamp_millis();
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                        if v["event_action"] == "trigger" {
                            if let Some(k) = v["dedup_key"].as_str() {
                                if let Ok(mut a) = arrivals.lock() {
                                    a.entry(k.to_string()).or_insert(now);
                                }
                            }
                        }
                    }
                    let text = r#"{"status":"success"}"#;
                    let reply = format!(
                        "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                        text.len()
                    );
                    if write.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok((port, arrivals))
}

/// Alerts at a steady rate with the default batch settings: each alert's PagerDuty
/// request time minus its fourth failure's event time.
fn latency(args: &AlertManagerBench) -> anyhow::Result<()> {
    let shape = Shape {
        count: 0,
        ..args.shape.clone()
    };
    let broker = consumer_run::broker_with(
        &shape,
        Events {
            topic: Topic::FailurePatterns,
            make: bench_failure,
        },
    )?;
    let (port, arrivals) = receiver()?;
    // BATCH_SIZE 100 and BATCH_TIMEOUT_MS 500: the defaults.
    let manager = consumer_run::spawn(
        "alert-manager",
        &broker.bootstrap,
        100,
        &[
            ("CONSUMER_GROUP_ID", "alert-latency".into()),
            ("INSTANCE_ID", "latency".into()),
            ("START_FROM", "earliest".into()),
            ("ALERT_RATE_LIMIT", "0".into()),
            ("PAGERDUTY_API_KEY", "bench".into()),
            (
                "PAGERDUTY_EVENTS_URL",
                format!("http://127.0.0.1:{port}/v2/enqueue"),
            ),
        ],
    )?;
    let ready_by = Instant::now() + Duration::from_secs(60);
    while consumer_run::get(manager.port, "/ready")?.0 != 200 {
        if Instant::now() > ready_by {
            bail!("the alert-manager did not get ready");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let producer: rdkafka::producer::BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("linger.ms", "0")
        .create()?;
    let mut fired: BTreeMap<String, i64> = BTreeMap::new();
    let step = Duration::from_micros(1_000_000 / args.alert_rate.max(1));
    let started = Instant::now();
    for a in 0..args.alerts {
        let fingerprint = format!("{:08x}-0000-4000-8000-{:012x}", 0x1a7e_u32, a);
        let mut last = 0;
        for k in 0..4u64 {
            let now = chrono::Utc::now();
            last = now.timestamp_millis();
            let at = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let value = failure(a * 4 + k, 0, &fingerprint, &at);
            let record = rdkafka::producer::BaseRecord::to(Topic::FailurePatterns.name())
                .key(&fingerprint)
                .payload(&value);
            if let Err((e, _)) = producer.send(record) {
                bail!("produce: {e}");
            }
            producer.poll(Duration::ZERO);
        }
        fired.insert(fingerprint, last);
        let next = started + step * (a as u32 + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        producer.poll(Duration::ZERO);
    }
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(30))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while arrivals.lock().map(|a| a.len()).unwrap_or(0) < fired.len() {
        if Instant::now() > deadline {
            bail!(
                "only {} of {} alerts reached the receiver",
                arrivals.lock().map(|a| a.len()).unwrap_or(0),
                fired.len()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(manager);
    let arrivals = arrivals
        .lock()
        .map_err(|_| anyhow::anyhow!("receiver"))?
        .clone();
    let mut ms: Vec<u64> = arrivals
        .iter()
        .filter_map(|(key, at)| {
            let fingerprint = key.split('/').nth(2)?.strip_prefix("fingerprint:")?;
            Some((at - fired.get(fingerprint)?).max(0) as u64)
        })
        .collect();
    ms.sort_unstable();
    if ms.len() != fired.len() {
        bail!("{} alerts matched of {}", ms.len(), fired.len());
    }
    println!(
        "\n{} alerts at {}/s, default batch settings: event time to the PagerDuty request p50 {} ms, p99 {} ms, max {} ms",
        ms.len(),
        args.alert_rate,
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms.last().copied().unwrap_or(0)
    );
    let _ = broker;
    Ok(())
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    let i = ((sorted.len().saturating_sub(1)) as f64 * q).round() as usize;
    sorted.get(i).copied().unwrap_or(0)
}

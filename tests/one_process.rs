//! Several consumer groups in one process (as `agentbus dev` runs them): one HTTP
//! listener serves `/health`, `/ready`, `/metrics` and `/metrics.json` for all of
//! them, every series labelled with its group.

mod common;

use agentbus_consumers::db_writer::{self, PgSink};
use agentbus_consumers::metrics::Metric;
use agentbus_consumers::metrics_aggregator::query::Api;
use agentbus_consumers::metrics_aggregator::{RedisSettings, RedisSink};
use agentbus_consumers::{RuntimeConfig, Service};
use agentbus_testkit::{Broker, Postgres, Redis};
use common::db_writer as dbw;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_groups_share_one_listener_and_label_every_series() {
    let broker = Broker::start().await.expect("broker");
    let pg = Postgres::start().await.expect("postgres");
    let redis = Redis::start().await.expect("redis");
    let bootstrap = broker.bootstrap();
    dbw::create_topics(&bootstrap).await;
    let events: Vec<dbw::Event> = (0..800).map(|i| dbw::event(11, i, 50)).collect();
    dbw::produce(&common::producer(&bootstrap, &[]), &events).await;

    let topics: Vec<String> = agentbus_client::Topic::ALL
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    let options = db_writer::DatabaseSettings {
        url: Some(pg.url().to_string()),
        ..Default::default()
    }
    .connect_options()
    .unwrap();
    db_writer::migrate(&options).await.expect("migrate");
    let settings = RedisSettings {
        url: Some(redis.url().to_string()),
        prefix: redis.prefix().to_string(),
        ..Default::default()
    };
    let sink = RedisSink::new(&settings).unwrap();
    let api = Api::new(redis.url(), sink.keys().clone(), 5).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut service = Service::new(listener.local_addr().unwrap()).route(api.router());
    let config = |group: &str, processor: &str| {
        RuntimeConfig::new(bootstrap.clone(), group, topics.clone(), processor)
    };
    let writer = service.add(
        config("db-writer-group", "db-writer"),
        PgSink::new(db_writer::pool(options)),
    );
    let aggregator = service.add(config("metrics-group", "metrics-aggregator"), sink);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(service.run_on(listener, async {
        let _ = stopped.await;
    }));

    let deadline = Instant::now() + Duration::from_secs(60);
    while !(writer.events_written() == 784
        && aggregator.events_written() == 784
        && writer.dead_letters() == 16
        && aggregator.dead_letters() == 16
        && writer.ready()
        && aggregator.ready())
    {
        assert!(
            Instant::now() < deadline,
            "{}\n{}",
            writer.json(),
            aggregator.json()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let get = |path: &str| {
        let path = path.to_string();
        async move {
            tokio::task::spawn_blocking(move || agentbus_consumers::http::get(port, &path))
                .await
                .unwrap()
                .unwrap()
        }
    };
    // Lag needs the high watermarks, which librdkafka's statistics bring each second.
    let missing = |text: &str| -> Vec<String> {
        let samples = dbw::parse_prometheus(text);
        let mut out = Vec::new();
        for group in ["db-writer-group", "metrics-group"] {
            for metric in Metric::REQUIRED {
                let name = metric.name();
                let label = if name.starts_with("kafka_") {
                    format!("consumergroup=\"{group}\"")
                } else {
                    format!("group=\"{group}\"")
                };
                if !samples
                    .keys()
                    .any(|k| k.starts_with(name) && k.contains(&label))
                {
                    out.push(format!("{name} of {group}"));
                }
            }
        }
        out
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let (status, text) = get("/metrics").await;
        assert_eq!(status, 200);
        let gaps = missing(&text);
        if gaps.is_empty() {
            break text;
        }
        assert!(Instant::now() < deadline, "no samples of {gaps:?}:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let samples = dbw::parse_prometheus(&text);
    for group in ["db-writer-group", "metrics-group"] {
        assert_eq!(
            samples
                [&format!("agentbus_dlq_records_total{{group=\"{group}\",stage=\"DESERIALIZE\"}}")],
            8.0
        );
    }
    // One header per family, whatever the number of groups.
    assert_eq!(
        text.matches("# TYPE agentbus_events_received_total ")
            .count(),
        1
    );

    let (status, body) = get("/metrics.json").await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["groups"]["db-writer-group"]["messages_inserted"], 784);
    assert_eq!(json["groups"]["metrics-group"]["messages_inserted"], 784);
    let (status, body) = get("/metrics.json?group=metrics-group").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("\"consumer_group\":\"metrics-group\""),
        "{body}"
    );
    assert_eq!(get("/ready").await.0, 200);
    let (status, body) = get("/health").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("db-writer-group") && body.contains("metrics-group"),
        "{body}"
    );
    let (status, body) =
        get("/api/metrics?topic=actions&window=1h&from=1760000000&to=1761000000").await;
    assert_eq!(status, 200, "{body}");
    let actions = events
        .iter()
        .filter(|e| e.topic == agentbus_client::Topic::AgentActions && e.kind == dbw::Kind::Good)
        .count();
    assert!(body.contains(&format!("\"count\":{actions}")), "{body}");

    stop.send(()).unwrap();
    running.await.unwrap().expect("both groups stop cleanly");
}

//! The db-writer's offsets guard and migrations, against a real PostgreSQL: a write
//! from a member that no longer owns a partition (a zombie) is refused and counted, and
//! migrations run without a statement timeout.

mod common;

use agentbus_consumers::db_writer::{self, DatabaseSettings, PgSink};
use agentbus_consumers::sink::{Batch, Range, Sink, TopicPartition};
use agentbus_consumers::{RuntimeConfig, Service};
use agentbus_testkit::{Broker, Postgres};
use common::db_writer as dbw;
use sqlx::Connection;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const GROUP: &str = "db-writer-group";

async fn migrated(pg: &Postgres) -> sqlx::postgres::PgConnectOptions {
    let options = DatabaseSettings {
        url: Some(pg.url().to_string()),
        ..Default::default()
    }
    .connect_options()
    .unwrap();
    db_writer::migrate(&options).await.expect("migrate");
    options
}

fn one(tp: &TopicPartition, from: Option<i64>, next: i64) -> BTreeMap<TopicPartition, Range> {
    BTreeMap::from([(
        tp.clone(),
        Range {
            from,
            next,
            topic_id: None,
        },
    )])
}

async fn write(
    sink: &mut PgSink,
    ranges: &BTreeMap<TopicPartition, Range>,
) -> agentbus_consumers::sink::WriteOutcome {
    let batch = Batch {
        group: GROUP,
        records: &[],
        dead: &[],
        ranges,
        group_metadata: None,
    };
    sink.write(&batch).await.expect("write")
}

async fn wait(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_guard_refuses_a_write_that_does_not_start_at_the_stored_offset() {
    let pg = Postgres::start().await.expect("postgres");
    let mut sink = PgSink::new(db_writer::pool(migrated(&pg).await));
    let tp = ("agent-actions".to_string(), 3);
    assert!(write(&mut sink, &one(&tp, None, 10))
        .await
        .mismatched
        .is_empty());
    assert!(write(&mut sink, &one(&tp, Some(10), 20))
        .await
        .mismatched
        .is_empty());
    // A zombie that still believes the partition is at 10.
    let zombie = write(&mut sink, &one(&tp, Some(10), 15)).await;
    assert_eq!(zombie.mismatched, BTreeMap::from([(tp.clone(), Some(20))]));
    // One that believes it holds nothing yet.
    let fresh = write(&mut sink, &one(&tp, None, 5)).await;
    assert_eq!(fresh.mismatched, BTreeMap::from([(tp.clone(), Some(20))]));
    // A replay of the last batch (its acknowledgement was lost) is no mismatch.
    assert!(write(&mut sink, &one(&tp, Some(10), 20))
        .await
        .mismatched
        .is_empty());
    // A store that lost writes: the batch starts past what it holds.
    let other = ("agent-actions".to_string(), 4);
    let lost = write(&mut sink, &one(&other, Some(7), 9)).await;
    assert_eq!(lost.mismatched, BTreeMap::from([(other.clone(), None)]));
    let stored = sink
        .stored_offsets(GROUP, &[tp.clone(), other.clone()])
        .await
        .unwrap();
    assert_eq!(stored[&tp].next, 20);
    assert!(!stored.contains_key(&other));
}

/// The running member is the zombie here: another writer stored a partition's offset
/// on while the member held a batch of it. The member's write is refused, counted as a
/// forward mismatch, and it reads on from the stored offset: the record the other
/// writer claimed is not stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_overtaken_by_another_writer_is_refused_counted_and_reads_on() {
    let broker = Broker::start().await.expect("broker");
    let pg = Postgres::start().await.expect("postgres");
    let bootstrap = broker.bootstrap();
    dbw::create_topics(&bootstrap).await;
    let options = migrated(&pg).await;
    let producer = common::producer(&bootstrap, &[]);
    let events: Vec<dbw::Event> = (0..1_600).map(|i| dbw::event(31, i, 0)).collect();
    dbw::produce(&producer, &events[..800]).await;

    let topics = agentbus_client::Topic::ALL
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    let mut config = RuntimeConfig::new(bootstrap.clone(), GROUP, topics, "db-writer");
    config.batch_size = 100_000;
    config.batch_timeout = Duration::from_secs(4);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut service = Service::new(listener.local_addr().unwrap());
    let metrics = service.add(config, PgSink::new(db_writer::pool(options.clone())));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(service.run_on(listener, async {
        let _ = stopped.await;
    }));
    wait("the first 800 stored", || metrics.events_written() == 800).await;
    let before = dbw::stored_offsets(&pg, GROUP);
    dbw::produce(&producer, &events[800..]).await;
    wait("the next 800 read", || metrics.events_received() == 1_600).await;
    // Before the member's batch is due, another writer stores one record of a
    // partition that has new ones.
    let tp = dbw::ends(&broker)
        .into_iter()
        .find(|(tp, end)| before.get(tp).is_some_and(|b| end > b))
        .map(|(tp, _)| tp)
        .expect("a partition with new records");
    let from = before[&tp];
    let mut other = PgSink::new(db_writer::pool(options.clone()));
    let moved = write(&mut other, &one(&tp, Some(from), from + 1)).await;
    assert!(moved.mismatched.is_empty());

    wait("every offset at its log end", || {
        dbw::stored_offsets(&pg, GROUP) == dbw::ends(&broker)
    })
    .await;
    assert_eq!(metrics.events_written(), 1_599, "{}", metrics.json());
    assert_eq!(dbw::stored_ids(&pg).len(), 1_599);
    let text = metrics.prometheus();
    let forward = dbw::sum_samples(
        &text,
        "agentbus_offset_mismatches_total",
        "direction=\"forward\"",
    );
    assert_eq!(forward, 1.0, "the refused write is counted:\n{text}");
    stop.send(()).unwrap();
    running.await.unwrap().expect("stops cleanly");
}

#[tokio::test]
async fn migrations_run_without_a_statement_timeout() {
    let pg = Postgres::start().await.expect("postgres");
    let database = pg.url().rsplit('/').next().unwrap().to_string();
    // A database (or a managed service) whose default would cancel a long index build.
    pg.psql(&format!(
        "ALTER DATABASE \"{database}\" SET statement_timeout = '2s'"
    ))
    .unwrap();
    let options = migrated(&pg).await;
    let show = |mut conn: sqlx::PgConnection| async move {
        let (v,): (String,) = sqlx::query_as("SHOW statement_timeout")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        v
    };
    let plain = sqlx::PgConnection::connect_with(&options).await.unwrap();
    assert_eq!(show(plain).await, "2s", "the database default applies");
    let migration = sqlx::PgConnection::connect_with(&db_writer::migration_options(&options))
        .await
        .unwrap();
    assert_eq!(show(migration).await, "0");
    let pool = db_writer::pool(options);
    let (v,): (String,) = sqlx::query_as("SHOW statement_timeout")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(v, "30s", "batches keep their bound");
}

//! Security end to end: SASL_SSL with SCRAM-SHA-512 for rdkafka, kcat and the Python
//! clients; what an unauthenticated or wrongly authenticated client gets; SCRAM users
//! managed over the wire and kept, salted, across a restart.

mod common;

use agentbus_testkit::Broker;
use common::raw::Raw;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, ApiVersionsRequest, MetadataRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::ClientConfig;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ALICE: (&str, &str) = ("alice", "alice-secret");

fn config(broker: &Broker, user: (&str, &str), extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in broker.client_config(user.0, user.1) {
        c.set(k, v);
    }
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// Reads `n` records of `topic` in group `group`; their values.
fn read_in_group(c: ClientConfig, topic: &str, n: usize) -> Vec<String> {
    let consumer: BaseConsumer = c.create().expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            use rdkafka::Message;
            out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    consumer
        .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        .expect("commit");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_over_sasl_ssl_serves_rdkafka_kcat_and_the_python_clients() {
    let broker = Broker::builder()
        .tls()
        .sasl_users(&[ALICE])
        .default_partitions(2)
        .start()
        .await
        .unwrap();
    assert_eq!(broker.security_protocol(), "SASL_SSL");

    // rdkafka: idempotent producer, then a group consumer.
    let producer: FutureProducer = config(&broker, ALICE, &[("enable.idempotence", "true")])
        .create()
        .expect("producer");
    for i in 0..100 {
        let value = format!("rdkafka {i}");
        producer
            .send(
                FutureRecord::<str, str>::to("secured").payload(&value),
                Duration::from_secs(30),
            )
            .await
            .expect("delivered");
    }
    let group = config(
        &broker,
        ALICE,
        &[
            ("group.id", "secured-rdkafka"),
            ("auto.offset.reset", "earliest"),
        ],
    );
    let read = blocking(move || read_in_group(group, "secured", 100)).await;
    assert_eq!(read.len(), 100);

    // A transaction, read with read_committed.
    let txn: FutureProducer = config(&broker, ALICE, &[("transactional.id", "secured-txn")])
        .create()
        .expect("transactional producer");
    let txn = blocking(move || {
        txn.init_transactions(Duration::from_secs(30))
            .expect("init");
        txn.begin_transaction().expect("begin");
        txn
    })
    .await;
    for i in 0..10 {
        let value = format!("txn {i}");
        txn.send(
            FutureRecord::<str, str>::to("secured-txn").payload(&value),
            Duration::from_secs(30),
        )
        .await
        .expect("sent in the transaction");
    }
    blocking(move || {
        txn.commit_transaction(Duration::from_secs(30))
            .expect("commit")
    })
    .await;
    let committed = config(
        &broker,
        ALICE,
        &[
            ("group.id", "secured-committed"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
        ],
    );
    let read = blocking(move || read_in_group(committed, "secured-txn", 10)).await;
    assert_eq!(read.len(), 10);

    // kcat (Debian's librdkafka) with the same properties as -X.
    let props: Vec<String> = broker
        .client_config(ALICE.0, ALICE.1)
        .into_iter()
        .filter(|(k, _)| k != "bootstrap.servers")
        .flat_map(|(k, v)| ["-X".to_string(), format!("{k}={v}")])
        .collect();
    let bootstrap = broker.bootstrap();
    let consumed = blocking(move || {
        let kcat = |args: &[&str]| {
            let mut c = Command::new("kcat");
            c.arg("-b").arg(&bootstrap).args(&props).args(args);
            c
        };
        let mut p = kcat(&["-P", "-t", "secured-kcat"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("kcat is installed (apt-get install -y kcat)");
        use std::io::Write;
        let input: String = (0..20).map(|i| format!("kcat {i}\n")).collect();
        p.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = p.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = kcat(&["-C", "-t", "secured-kcat", "-e", "-q"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    })
    .await;
    assert_eq!(consumed.lines().count(), 20, "{consumed}");

    // confluent-kafka-python and kafka-python, and SCRAM users over the admin API.
    let args = [
        broker.bootstrap(),
        broker.ca_location().unwrap().display().to_string(),
        ALICE.0.to_string(),
        ALICE.1.to_string(),
        "secured-python".to_string(),
    ];
    let out = blocking(move || {
        Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/python/secured_clients.py"
            ))
            .args(args)
            .output()
            .expect("python3")
    })
    .await;
    assert!(
        out.status.success(),
        "secured_clients.py:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn wrong_passwords_plain_tcp_on_tls_and_requests_before_authentication_are_refused() {
    let broker = Broker::builder()
        .sasl_users(&[ALICE])
        .configure(|c| c.security.authentication_timeout = Duration::from_millis(500))
        .start()
        .await
        .unwrap();
    let b = broker.bootstrap();

    // A wrong password: SASL_AUTHENTICATION_FAILED after the failed-authentication delay
    // (100 ms), then the connection is closed.
    let mut raw = Raw::connect(&b).await;
    let (code, took) = raw.authenticate_plain("alice", "wrong").await;
    assert_eq!(code, ResponseError::SaslAuthenticationFailed.code());
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(raw.is_closed().await);
    // The same for a user that does not exist: nothing tells them apart.
    let mut raw = Raw::connect(&b).await;
    let (code, _) = raw.authenticate_plain("mallory", "x").await;
    assert_eq!(code, ResponseError::SaslAuthenticationFailed.code());
    let counted = broker.inspect().authentications();
    assert_eq!((counted.succeeded, counted.failed), (0, 2), "counted");

    // Before authentication only ApiVersions and SASL are served; Metadata closes it.
    let mut raw = Raw::connect(&b).await;
    let versions = raw.send(3, &ApiVersionsRequest::default()).await;
    assert_eq!(versions.error_code, 0);
    let (_, frame) = raw.frame(12, &MetadataRequest::default());
    raw.write(&frame).await;
    assert!(
        raw.read_frame().await.is_none(),
        "no answer before authentication"
    );

    // After authentication, Metadata answers on the same connection.
    let mut raw = Raw::connect(&b).await;
    let (code, _) = raw.authenticate_plain("alice", "alice-secret").await;
    assert_eq!(code, 0);
    let md = raw.send(12, &MetadataRequest::default()).await;
    assert_eq!(md.brokers.len(), 1);
    assert_eq!(broker.inspect().authentications().succeeded, 1);

    // A client that never authenticates is dropped when its time is up.
    let mut idle = Raw::connect(&b).await;
    let started = Instant::now();
    assert!(idle.is_closed().await);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // rdkafka with a wrong password fails promptly rather than hanging.
    let wrong = config(&broker, ("alice", "nope"), &[]);
    let started = Instant::now();
    let result = blocking(move || {
        let c: BaseConsumer = wrong.create().expect("consumer");
        c.fetch_metadata(None, Duration::from_secs(10)).map(|_| ())
    })
    .await;
    assert!(result.is_err(), "a wrong password fetched metadata");
    assert!(started.elapsed() < Duration::from_secs(11));
    // No retry storm: librdkafka backs off between attempts (and each failure waits the
    // failed-authentication delay), so its 10 s make a handful of attempts, not hundreds.
    let attempts = broker.inspect().authentications().failed - 2;
    eprintln!(
        "rdkafka with a wrong password: {attempts} attempts in {:?}",
        started.elapsed()
    );
    assert!(
        (1..=25).contains(&attempts),
        "{attempts} failed authentications"
    );

    // A plain TCP client on a TLS listener is dropped, not answered.
    let tls = Broker::builder().tls().start().await.unwrap();
    let mut raw = Raw::connect(&tls.bootstrap()).await;
    let (_, frame) = raw.frame(3, &ApiVersionsRequest::default());
    raw.write(&frame).await;
    let answer = tokio::time::timeout(Duration::from_secs(5), raw.read_frame()).await;
    assert!(
        matches!(answer, Ok(None)),
        "closed, without a Kafka response"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_db_writer_runs_end_to_end_over_sasl_ssl() {
    use common::db_writer::{self as dbw, DbWriter};
    let broker = Broker::builder()
        .tls()
        .sasl_users(&[ALICE])
        .configure(|c| {
            c.security.listeners = Some("SASL_SSL://127.0.0.1:0,PLAINTEXT://127.0.0.1:0".into())
        })
        .start()
        .await
        .unwrap();
    let secured = broker.bootstrap();
    // Topics set up over the second, PLAINTEXT listener; everything else over SASL_SSL.
    let plain = broker.listener_bootstrap("PLAINTEXT").unwrap();
    dbw::create_topics(&plain).await;
    for t in agentbus_client::Topic::DERIVED {
        common::create_topic(&plain, t.name(), 1, &[]).await;
    }
    let props = broker.client_config(ALICE.0, ALICE.1);
    let extra: Vec<(&str, &str)> = props
        .iter()
        .filter(|(k, _)| k != "bootstrap.servers")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let events: Vec<dbw::Event> = (0..500).map(|i| dbw::event(1, i, 50)).collect();
    dbw::produce(&common::producer(&secured, &extra), &events).await;
    let pg = agentbus_testkit::Postgres::start().await.expect("postgres");
    let ca = broker.ca_location().unwrap().display().to_string();
    let writer = DbWriter::spawn(
        &secured,
        pg.url(),
        &[
            ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
            ("KAFKA_SASL_USERNAME", ALICE.0),
            ("KAFKA_SASL_PASSWORD", ALICE.1),
            ("KAFKA_SSL_CA_LOCATION", &ca),
        ],
    );
    let m = tokio::task::block_in_place(|| {
        writer.wait_for("500 events over SASL_SSL", Duration::from_secs(60), |m| {
            m["messages_consumed"] == 500
                && m["messages_inserted"] == 490
                && m["messages_failed"] == 10
                && m["consumer_lag"] == 0
        })
    });
    assert_eq!(
        m["dlq_write_failures"], 0,
        "the DLQ producer is secured too: {m}"
    );
    assert_eq!(dbw::stored_ids(&pg).len(), 490);
    let metrics = writer.get("/metrics").1;
    let log = writer.log();
    for shown in [&metrics, &log] {
        assert!(!shown.contains(ALICE.1), "the password is never shown");
    }
    let (status, _) = tokio::task::block_in_place(|| writer.terminate(Duration::from_secs(30)));
    assert!(status.success());
}

/// The salted password a SCRAM-SHA-512 client derives (what AlterUserScramCredentials
/// carries).
fn salted_sha512(password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = vec![0; 64];
    aws_lc_rs::pbkdf2::derive(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA512,
        std::num::NonZeroU32::new(iterations).unwrap(),
        salt,
        password.as_bytes(),
        &mut out,
    );
    out
}

fn files_contain(dir: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let path = e.unwrap().path();
        if path.is_dir() {
            return files_contain(&path, needle);
        }
        let bytes = std::fs::read(&path).unwrap_or_default();
        bytes.windows(needle.len()).any(|w| w == needle)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_users_added_over_the_wire_survive_a_restart_salted() {
    let dir = tempfile::tempdir().unwrap();
    let start = |seed: bool| {
        let mut b = Broker::builder().data_dir(dir.path());
        b = if seed {
            b.sasl_users(&[ALICE])
        } else {
            // No users seeded: whoever connects must have been stored before.
            b.configure(|c| c.security.listeners = Some("SASL_PLAINTEXT://127.0.0.1:0".into()))
        };
        b.start()
    };
    let broker = start(true).await.unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    assert_eq!(raw.authenticate_plain(ALICE.0, ALICE.1).await.0, 0);
    let salt = b"bob's salt".to_vec();
    let mut upsert = ScramCredentialUpsertion::default();
    upsert.name = StrBytes::from_static_str("bob");
    upsert.mechanism = 2;
    upsert.iterations = 4096;
    upsert.salt = salt.clone().into();
    upsert.salted_password = salted_sha512("bob-password", &salt, 4096).into();
    let mut bad = upsert.clone();
    bad.name = StrBytes::from_static_str("eve");
    bad.iterations = 100;
    let mut req = AlterUserScramCredentialsRequest::default();
    req.upsertions = vec![upsert, bad];
    let resp = raw.send(0, &req).await;
    let by_user: Vec<(String, i16)> = resp
        .results
        .iter()
        .map(|r| (r.user.to_string(), r.error_code))
        .collect();
    assert_eq!(
        by_user,
        [
            ("bob".to_string(), 0),
            (
                "eve".to_string(),
                ResponseError::UnacceptableCredential.code()
            )
        ]
    );
    broker.shutdown().await;

    let broker = start(false).await.unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    assert_eq!(raw.authenticate_plain("bob", "bob-password").await.0, 0);
    // SCRAM-SHA-512 by rdkafka as well.
    let c = config(&broker, ("bob", "bob-password"), &[]);
    let md = blocking(move || {
        let c: BaseConsumer = c.create().expect("consumer");
        c.fetch_metadata(None, Duration::from_secs(10))
            .map(|m| m.brokers().len())
    })
    .await;
    assert_eq!(md.unwrap(), 1);
    broker.shutdown().await;
    // The store keeps neither password nor salted password, only keys derived from them.
    assert!(!files_contain(dir.path(), b"bob-password"));
    assert!(!files_contain(
        dir.path(),
        &salted_sha512("bob-password", &salt, 4096)
    ));
    assert!(!files_contain(dir.path(), b"alice-secret"));
    assert!(files_contain(dir.path(), b"scram_credentials"));
}

/// KIP-368: the session lifetime is told in SaslAuthenticate; a connection that does not
/// re-authenticate in time is closed at its next request; one that does goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_unless_the_client_re_authenticates() {
    use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
    let broker = Broker::builder()
        .sasl_users(&[ALICE])
        .configure(|c| c.security.max_reauth_ms = 1000)
        .start()
        .await
        .unwrap();
    let b = broker.bootstrap();
    let authenticate = || {
        let mut hs = SaslHandshakeRequest::default();
        hs.mechanism = StrBytes::from_static_str("PLAIN");
        let mut auth = SaslAuthenticateRequest::default();
        auth.auth_bytes = format!("\0{}\0{}", ALICE.0, ALICE.1).into_bytes().into();
        (hs, auth)
    };
    let mut lapsed = Raw::connect(&b).await;
    let (hs, auth) = authenticate();
    assert_eq!(lapsed.send(1, &hs).await.error_code, 0);
    let resp = lapsed.send(1, &auth).await;
    assert_eq!((resp.error_code, resp.session_lifetime_ms), (0, 1000));
    let mut renewed = Raw::connect(&b).await;
    assert_eq!(renewed.authenticate_plain(ALICE.0, ALICE.1).await.0, 0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (hs, auth) = authenticate();
    assert_eq!(renewed.send(1, &hs).await.error_code, 0);
    assert_eq!(renewed.send(2, &auth).await.error_code, 0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    // 1.2 s after the first authentication: the renewed one answers, the lapsed one not.
    let md = renewed.send(12, &MetadataRequest::default()).await;
    assert_eq!(md.brokers.len(), 1);
    let (_, frame) = lapsed.frame(12, &MetadataRequest::default());
    lapsed.write(&frame).await;
    assert!(
        lapsed.read_frame().await.is_none(),
        "an expired session is closed"
    );
    // librdkafka keeps working past the lifetime (it re-authenticates, KIP-368).
    let c = config(&broker, ALICE, &[("sasl.mechanisms", "SCRAM-SHA-256")]);
    let seen = blocking(move || {
        let c: BaseConsumer = c.create().expect("consumer");
        let mut ok = 0;
        for _ in 0..6 {
            if c.fetch_metadata(None, Duration::from_secs(5)).is_ok() {
                ok += 1;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        ok
    })
    .await;
    assert_eq!(seen, 6, "metadata every 0.5 s for 3 s over 1 s sessions");
}

/// SaslHandshake v0 (before KIP-152): the tokens follow as bare frames.
#[tokio::test]
async fn a_v0_handshake_takes_bare_tokens_and_large_frames_wait_for_authentication() {
    use kafka_protocol::messages::SaslHandshakeRequest;
    let broker = Broker::builder()
        .sasl_users(&[ALICE])
        .start()
        .await
        .unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str("PLAIN");
    assert_eq!(raw.send(0, &hs).await.error_code, 0);
    let token = format!("\0{}\0{}", ALICE.0, ALICE.1);
    let mut frame = (token.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(token.as_bytes());
    raw.write(&frame).await;
    let reply = raw.read_frame().await.expect("an empty token back");
    assert!(reply.is_empty());
    assert_eq!(
        raw.send(12, &MetadataRequest::default())
            .await
            .brokers
            .len(),
        1
    );
    // Before authentication a frame over 512 KiB closes the connection.
    let mut big = Raw::connect(&broker.bootstrap()).await;
    big.write(&(1_000_000i32).to_be_bytes()).await;
    assert!(big.is_closed().await);
}

//! Each listener offers its own SASL mechanisms (Kafka's
//! `listener.name.NAME.sasl.enabled.mechanisms`): PLAIN on an internal listener only,
//! SCRAM on the client-facing one, and a client of either gets what it was offered.

mod common;

use agentbus_broker::Mechanism;
use agentbus_testkit::Broker;
use common::raw::Raw;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::SaslHandshakeRequest;
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use std::time::Duration;

/// The handshake's answer to `mechanism` on `addr`: its error and the mechanisms offered.
async fn offered(addr: &str, mechanism: &'static str) -> (i16, Vec<String>) {
    let mut raw = Raw::connect(addr).await;
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str(mechanism);
    let resp = raw.send(1, &hs).await;
    (
        resp.error_code,
        resp.mechanisms.iter().map(|m| m.to_string()).collect(),
    )
}

fn metadata(addr: &str, mechanism: &str) -> Result<usize, String> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", addr)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", mechanism)
        .set("sasl.username", "alice")
        .set("sasl.password", "alice-pw");
    let consumer: BaseConsumer = c.create().map_err(|e| e.to_string())?;
    consumer
        .fetch_metadata(None, Duration::from_secs(5))
        .map(|m| m.brokers().len())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_listener_offers_its_own_mechanisms() {
    let broker = Broker::builder()
        .sasl_users(&[("alice", "alice-pw")])
        .configure(|c| {
            c.security.listeners =
                Some("SASL_PLAINTEXT://127.0.0.1:0,INTERNAL://127.0.0.1:0".into());
            c.security.protocol_map = Some("INTERNAL:SASL_PLAINTEXT".into());
            c.security.sasl_mechanisms = vec![Mechanism::ScramSha512];
            c.security.listener_mechanisms = vec![("INTERNAL".into(), vec![Mechanism::Plain])];
        })
        .start()
        .await
        .unwrap();
    let external = broker.bootstrap();
    let internal = broker.listener_bootstrap("INTERNAL").unwrap();
    let unsupported = ResponseError::UnsupportedSaslMechanism.code();
    assert_eq!(
        offered(&external, "PLAIN").await,
        (unsupported, vec!["SCRAM-SHA-512".to_string()])
    );
    assert_eq!(
        offered(&internal, "SCRAM-SHA-512").await,
        (unsupported, vec!["PLAIN".to_string()])
    );
    assert_eq!(offered(&internal, "PLAIN").await.0, 0);

    let (ext, int) = (external.clone(), internal.clone());
    let results = tokio::task::spawn_blocking(move || {
        [
            metadata(&ext, "SCRAM-SHA-512"),
            metadata(&int, "PLAIN"),
            metadata(&ext, "PLAIN"),
        ]
    })
    .await
    .unwrap();
    assert_eq!(results[0], Ok(1), "SCRAM on the external listener");
    assert_eq!(results[1], Ok(1), "PLAIN on the internal one");
    assert!(results[2].is_err(), "PLAIN is not offered outside");
}

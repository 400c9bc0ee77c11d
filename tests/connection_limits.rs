//! `max.connections.per.ip` and `max.connections`: a connection over the per-address limit
//! is closed at once and counted, the open ones keep working; over the broker's limit, new
//! connections wait to be accepted until one closes (as Kafka's acceptor waits).

mod common;

use agentbus_testkit::Broker;
use common::raw::Raw;
use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
use std::time::Duration;

async fn answers(raw: &mut Raw) -> bool {
    let (_, frame) = raw.frame(3, &ApiVersionsRequest::default());
    raw.write(&frame).await;
    tokio::time::timeout(Duration::from_millis(500), raw.read_frame())
        .await
        .is_ok_and(|f| f.is_some())
}

#[tokio::test]
async fn a_connection_over_the_per_address_limit_is_refused_and_counted() {
    let broker = Broker::builder()
        .configure(|c| c.max_connections_per_ip = 2)
        .start()
        .await
        .unwrap();
    let b = broker.bootstrap();
    let mut first = Raw::connect(&b).await;
    let mut second = Raw::connect(&b).await;
    assert!(answers(&mut first).await && answers(&mut second).await);
    let mut third = Raw::connect(&b).await;
    assert!(!answers(&mut third).await, "the third is closed");
    assert_eq!(broker.inspect().connections_refused(), 1);
    // The open ones keep working; once one closes, a new one is let in.
    assert!(answers(&mut first).await && answers(&mut second).await);
    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fourth = Raw::connect(&b).await;
    assert!(answers(&mut fourth).await);
    assert_eq!(broker.inspect().connections_refused(), 1);
    // Metadata on a kept connection still answers.
    let md = second.send(12, &MetadataRequest::default()).await;
    assert_eq!(md.brokers.len(), 1);
}

#[tokio::test]
async fn over_max_connections_a_new_one_waits_for_a_free_slot() {
    let broker = Broker::builder()
        .configure(|c| c.max_connections = 1)
        .start()
        .await
        .unwrap();
    let b = broker.bootstrap();
    let mut first = Raw::connect(&b).await;
    assert!(answers(&mut first).await);
    let mut second = Raw::connect(&b).await;
    assert!(
        !answers(&mut second).await,
        "not accepted while the first is open"
    );
    drop(first);
    let served = tokio::time::timeout(Duration::from_secs(5), second.read_frame())
        .await
        .expect("accepted once the first closed");
    assert!(served.is_some(), "the waiting request is answered");
    assert_eq!(
        broker.inspect().connections_refused(),
        0,
        "waiting is not refusing"
    );
}

#[tokio::test]
async fn the_limits_count_every_listener_of_the_broker() {
    let broker = Broker::builder()
        .configure(|c| {
            c.max_connections_per_ip = 2;
            c.security.listeners = Some("PLAINTEXT://127.0.0.1:0,INTERNAL://127.0.0.1:0".into());
            c.security.protocol_map = Some("INTERNAL:PLAINTEXT".into());
        })
        .start()
        .await
        .unwrap();
    let external = broker.bootstrap();
    let internal = broker.listener_bootstrap("INTERNAL").unwrap();
    assert_ne!(external, internal);
    let mut a = Raw::connect(&external).await;
    let mut b = Raw::connect(&internal).await;
    assert!(answers(&mut a).await && answers(&mut b).await);
    let mut c = Raw::connect(&internal).await;
    assert!(
        !answers(&mut c).await,
        "the third from this address, on either listener"
    );
    assert_eq!(broker.inspect().connections_refused(), 1);
    // Metadata on the internal listener gives the internal listener's address.
    let md = b.send(12, &MetadataRequest::default()).await;
    assert_eq!(
        format!("{}:{}", md.brokers[0].host, md.brokers[0].port),
        internal
    );
}

/// `max.connections.per.ip.overrides`, set at run time as Kafka's dynamic broker config:
/// 127.0.0.1 gets three connections where every other address gets one.
#[tokio::test]
async fn an_address_override_raises_its_limit_at_run_time() {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::messages::IncrementalAlterConfigsRequest;
    use kafka_protocol::protocol::StrBytes;
    let broker = Broker::builder()
        .configure(|c| c.max_connections_per_ip = 1)
        .start()
        .await
        .unwrap();
    let b = broker.bootstrap();
    let mut admin = Raw::connect(&b).await;
    let set = |value: &str| {
        let mut config = AlterableConfig::default();
        config.name = StrBytes::from_static_str("max.connections.per.ip.overrides");
        config.config_operation = 0;
        config.value = Some(StrBytes::from_string(value.to_string()));
        let mut resource = AlterConfigsResource::default();
        resource.resource_type = 4;
        resource.configs = vec![config];
        let mut req = IncrementalAlterConfigsRequest::default();
        req.resources = vec![resource];
        req
    };
    let refused = admin.send(1, &set("127.0.0.1:lots")).await;
    assert_eq!(
        refused.responses[0].error_code,
        kafka_protocol::error::ResponseError::InvalidConfig.code()
    );
    let message = refused.responses[0].error_message.as_deref().unwrap_or("");
    assert!(
        message.contains("max.connections.per.ip.overrides"),
        "{message}"
    );
    let mut second = Raw::connect(&b).await;
    assert!(!answers(&mut second).await, "one per address so far");

    assert_eq!(
        admin.send(1, &set("127.0.0.1:3")).await.responses[0].error_code,
        0
    );
    let mut second = Raw::connect(&b).await;
    let mut third = Raw::connect(&b).await;
    assert!(answers(&mut second).await && answers(&mut third).await);
    let mut fourth = Raw::connect(&b).await;
    assert!(!answers(&mut fourth).await, "the override's three are open");
    assert_eq!(broker.inspect().connections_refused(), 2);
}

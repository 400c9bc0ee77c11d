//! OAUTHBEARER with unsecured tokens (Kafka's development default), from librdkafka and
//! from the wire client the process uses for topic ids and the `users`/`acls` commands.

mod common;

use agentbus_testkit::Broker;
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;

const ALICE: (&str, &str) = ("alice", "alice-secret");

/// OAUTHBEARER with librdkafka's unsecured tokens: the `principal` is the user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauthbearer_unsecured_tokens_name_the_principal() {
    let broker = Broker::builder()
        .tls()
        .sasl_users(&[ALICE])
        .acls(&[
            "allow User:svc-writer All topic:oauth-*",
            "allow User:svc-writer Create cluster",
        ])
        .start()
        .await
        .unwrap();
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", broker.bootstrap())
        .set("security.protocol", "sasl_ssl")
        .set(
            "ssl.ca.location",
            broker.ca_location().unwrap().display().to_string(),
        )
        .set("sasl.mechanisms", "OAUTHBEARER")
        .set("enable.sasl.oauthbearer.unsecure.jwt", "true")
        .set("sasl.oauthbearer.config", "principal=svc-writer")
        .set("message.timeout.ms", "10000");
    let producer: FutureProducer = c.create().expect("producer");
    common::assert_write_allowed(&producer, "oauth-ok", "svc-writer may write oauth-*").await;
    common::assert_write_refused(&producer, "other").await;
}

/// `agentbus acls list` over OAUTHBEARER: the token's principal is who asks, a token
/// that has expired is refused with the broker's reason, and OIDC is named as unsupported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wire_client_signs_in_with_an_unsecured_token() {
    let broker = Broker::builder()
        .tls()
        .sasl_users(&[ALICE])
        .super_users(&["User:admin"])
        .acls(&["allow User:svc Read topic:oauth-*"])
        .start()
        .await
        .unwrap();
    let ca = broker.ca_location().unwrap().display().to_string();
    let bootstrap = broker.bootstrap();
    let run = move |config: &str, extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"))
            .args(extra)
            .args(["acls", "list"])
            .env("KAFKA_BROKERS", &bootstrap)
            .env("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
            .env("KAFKA_SASL_MECHANISM", "OAUTHBEARER")
            .env("KAFKA_SASL_OAUTHBEARER_CONFIG", config)
            .env("KAFKA_SSL_CA_LOCATION", &ca)
            .output()
            .expect("agentbus");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let outs = tokio::task::spawn_blocking(move || {
        [
            run("principal=admin extension_traceId=abc", &[]),
            run("principal=svc", &[]),
            run("principal=admin lifeSeconds=0", &[]),
            run("principal=admin", &["-X", "sasl.oauthbearer.method=oidc"]),
        ]
    })
    .await
    .unwrap();
    let (ok, listed, err) = &outs[0];
    assert!(ok, "the super user lists the ACLs: {err}");
    assert!(
        listed.contains("User:svc") && listed.contains("oauth-"),
        "{listed}"
    );
    let (ok, _, err) = &outs[1];
    assert!(
        !ok && err.contains("Cluster authorization failed"),
        "svc may not describe the ACLs: {err}"
    );
    let (ok, _, err) = &outs[2];
    assert!(!ok && err.contains("expired"), "an expired token: {err}");
    let (ok, _, err) = &outs[3];
    assert!(
        !ok && err.contains("sasl.oauthbearer.method"),
        "oidc: {err}"
    );
}

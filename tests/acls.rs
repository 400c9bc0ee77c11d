//! ACLs enforced with Kafka's errors: a principal allowed to write `agent-*` (prefixed)
//! and nothing on `audit-*`; a deny beating an allow; Metadata hiding what may not be
//! described; ACLs managed over Create/Describe/DeleteAcls; and, with mutual TLS, the
//! principal taken from the client certificate.

mod common;

use agentbus_testkit::{Broker, ClientAuth};
use common::raw::Raw;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest, FetchRequest, InitProducerIdRequest,
    MetadataRequest, OffsetCommitRequest, ProduceRequest, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use std::time::Duration;

const TOPICS: [&str; 4] = ["agent-actions", "agent-secret", "audit-log", "other"];

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

async fn produce(raw: &mut Raw, topic: &str) -> i16 {
    let mut p = PartitionProduceData::default();
    p.index = 0;
    p.records = Some(common::raw::batch(
        &[(None, Some("v"), 1)],
        Compression::None,
    ));
    let mut t = TopicProduceData::default();
    t.name = name(topic);
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 5000;
    req.topic_data = vec![t];
    let resp = raw.send(9, &req).await;
    assert_eq!(resp.responses.len(), 1, "{resp:?}");
    resp.responses[0].partition_responses[0].error_code
}

async fn fetch(raw: &mut Raw, topic: &str) -> i16 {
    let mut p = FetchPartition::default();
    p.partition = 0;
    p.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic = name(topic);
    t.partitions = vec![p];
    let mut req = FetchRequest::default();
    req.max_bytes = 1 << 20;
    req.max_wait_ms = 0;
    req.topics = vec![t];
    let resp = raw.send(12, &req).await;
    resp.responses[0].partitions[0].error_code
}

async fn metadata(raw: &mut Raw, topics: Option<&[&str]>) -> Vec<(String, i16)> {
    let mut req = MetadataRequest::default();
    req.topics = topics.map(|ts| {
        ts.iter()
            .map(|t| {
                let mut m = MetadataRequestTopic::default();
                m.name = Some(name(t));
                m
            })
            .collect()
    });
    let resp = raw.send(12, &req).await;
    let mut out: Vec<(String, i16)> = resp
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                t.error_code,
            )
        })
        .collect();
    out.sort();
    out
}

async fn signed_in(broker: &Broker, user: &str) -> Raw {
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    assert_eq!(
        raw.authenticate_plain(user, &format!("{user}-pw")).await.0,
        0
    );
    raw
}

fn acl(pattern: i8, resource: &str, principal: &str, operation: i8, permission: i8) -> AclCreation {
    let mut c = AclCreation::default();
    c.resource_type = 2;
    c.resource_name = StrBytes::from_string(resource.into());
    c.resource_pattern_type = pattern;
    c.principal = StrBytes::from_string(principal.into());
    c.host = StrBytes::from_static_str("*");
    c.operation = operation;
    c.permission_type = permission;
    c
}

#[tokio::test]
async fn a_prefixed_writer_gets_kafkas_errors_everywhere_else() {
    let broker = Broker::builder()
        .sasl_users(&[("admin", "admin-pw"), ("writer", "writer-pw")])
        .super_users(&["User:admin"])
        .acls(&[
            "allow User:writer Write topic:agent-*",
            "deny User:writer Write topic:agent-secret",
        ])
        .start()
        .await
        .unwrap();
    let mut admin = signed_in(&broker, "admin").await;
    let created = metadata(&mut admin, Some(&TOPICS)).await;
    assert!(created.iter().all(|(_, e)| *e == 0), "{created:?}");
    for t in TOPICS {
        assert_eq!(produce(&mut admin, t).await, 0, "the super user writes {t}");
    }
    let mut w = signed_in(&broker, "writer").await;
    let denied = ResponseError::TopicAuthorizationFailed.code();
    assert_eq!(produce(&mut w, "agent-actions").await, 0);
    assert_eq!(
        produce(&mut w, "agent-secret").await,
        denied,
        "a deny beats an allow"
    );
    assert_eq!(produce(&mut w, "audit-log").await, denied);
    assert_eq!(fetch(&mut w, "audit-log").await, denied);
    assert_eq!(
        fetch(&mut w, "agent-actions").await,
        denied,
        "WRITE is not READ"
    );
    // Metadata: every topic lists only what the writer may describe (WRITE implies it);
    // a topic asked for by name that it may not describe is TOPIC_AUTHORIZATION_FAILED.
    let all = metadata(&mut w, None).await;
    assert_eq!(
        all,
        [
            ("agent-actions".to_string(), 0),
            ("agent-secret".to_string(), 0)
        ]
    );
    let asked = metadata(&mut w, Some(&["audit-log", "agent-actions", "agent-new"])).await;
    assert_eq!(
        asked,
        [
            ("agent-actions".to_string(), 0),
            ("agent-new".to_string(), denied),
            ("audit-log".to_string(), denied),
        ],
        "no CREATE: agent-new is refused, not created"
    );
    assert!(broker.inspect().topic("agent-new").is_none());
    // KIP-430: the authorized operations are the ACLs' (WRITE, and DESCRIBE it implies);
    // the super user's are every topic operation.
    let mut req = MetadataRequest::default();
    let mut t = MetadataRequestTopic::default();
    t.name = Some(name("agent-actions"));
    req.topics = Some(vec![t]);
    req.include_topic_authorized_operations = true;
    let ops = |resp: kafka_protocol::messages::MetadataResponse| {
        resp.topics[0].topic_authorized_operations
    };
    assert_eq!(ops(w.send(12, &req).await), 1 << 4 | 1 << 8);
    assert_eq!(ops(admin.send(12, &req).await), 3576);
    // A group and a transactional id it has no ACL for.
    let mut commit = OffsetCommitRequest::default();
    commit.group_id = kafka_protocol::messages::GroupId(StrBytes::from_static_str("g"));
    let mut part =
        kafka_protocol::messages::offset_commit_request::OffsetCommitRequestPartition::default();
    part.committed_offset = 1;
    let mut topic =
        kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic::default();
    topic.name = name("agent-actions");
    topic.partitions = vec![part];
    commit.topics = vec![topic];
    let resp = w.send(8, &commit).await;
    assert_eq!(
        resp.topics[0].partitions[0].error_code,
        ResponseError::GroupAuthorizationFailed.code()
    );
    let mut init = InitProducerIdRequest::default();
    init.transactional_id = Some(TransactionalId(StrBytes::from_static_str("tx")));
    init.transaction_timeout_ms = 10_000;
    let resp = w.send(4, &init).await;
    assert_eq!(
        resp.error_code,
        ResponseError::TransactionalIdAuthorizationFailed.code()
    );
    // With READ on the group, its offsets show, except of topics it may not describe.
    let mut create = CreateAclsRequest::default();
    let mut on_group = acl(3, "g", "User:writer", 3, 3);
    on_group.resource_type = 3;
    create.creations = vec![on_group];
    assert_eq!(admin.send(3, &create).await.results[0].error_code, 0);
    let mut fetch_offsets = kafka_protocol::messages::OffsetFetchRequest::default();
    fetch_offsets.group_id = kafka_protocol::messages::GroupId(StrBytes::from_static_str("g"));
    fetch_offsets.topics = Some(
        ["agent-actions", "audit-log"]
            .iter()
            .map(|t| {
                let mut ft = kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic::default();
                ft.name = name(t);
                ft.partition_indexes = vec![0];
                ft
            })
            .collect(),
    );
    let offsets = w.send(7, &fetch_offsets).await;
    let codes: Vec<(String, i16)> = offsets
        .topics
        .iter()
        .map(|t| (t.name.to_string(), t.partitions[0].error_code))
        .collect();
    assert_eq!(
        codes,
        [
            ("agent-actions".to_string(), 0),
            ("audit-log".to_string(), denied)
        ]
    );
    // An idempotent producer needs WRITE on some topic: it has.
    let mut idem = InitProducerIdRequest::default();
    idem.transactional_id = None;
    idem.transaction_timeout_ms = -1;
    assert_eq!(w.send(4, &idem).await.error_code, 0);
    // ACLs are managed by who may ALTER the cluster.
    let mut create = CreateAclsRequest::default();
    create.creations = vec![acl(4, "audit-", "User:writer", 3, 3)];
    let refused = w.send(3, &create).await;
    assert_eq!(
        refused.results[0].error_code,
        ResponseError::ClusterAuthorizationFailed.code()
    );
    let created = admin.send(3, &create).await;
    assert_eq!(created.results[0].error_code, 0);
    assert_eq!(fetch(&mut w, "audit-log").await, 0, "READ on audit-* now");
    let mut describe = DescribeAclsRequest::default();
    describe.resource_type_filter = 2;
    describe.resource_name_filter = None;
    describe.principal_filter = None;
    describe.host_filter = None;
    describe.pattern_type_filter = 1;
    describe.operation = 1;
    describe.permission_type = 1;
    let listed = admin.send(3, &describe).await;
    let names: Vec<String> = listed
        .resources
        .iter()
        .map(|r| r.resource_name.to_string())
        .collect();
    assert_eq!(names, ["agent-", "agent-secret", "audit-"]);
    let mut delete = DeleteAclsRequest::default();
    let mut f = DeleteAclsFilter::default();
    f.resource_type_filter = 2;
    f.resource_name_filter = Some(StrBytes::from_static_str("audit-"));
    f.principal_filter = None;
    f.host_filter = None;
    f.pattern_type_filter = 4;
    f.operation = 1;
    f.permission_type = 1;
    delete.filters = vec![f];
    let deleted = admin.send(3, &delete).await;
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 1);
    assert_eq!(fetch(&mut w, "audit-log").await, denied);
    // DescribeConfigs, resource by resource: a topic it may describe the configs of,
    // and the broker, which needs DESCRIBE_CONFIGS on the cluster.
    let mut create = CreateAclsRequest::default();
    create.creations = vec![acl(4, "agent-", "User:writer", 10, 3)];
    assert_eq!(admin.send(3, &create).await.results[0].error_code, 0);
    let mut describe = kafka_protocol::messages::DescribeConfigsRequest::default();
    describe.resources = [(2i8, "agent-actions"), (4, "1")]
        .iter()
        .map(|(rt, n)| {
            let mut r = kafka_protocol::messages::describe_configs_request::DescribeConfigsResource::default();
            r.resource_type = *rt;
            r.resource_name = StrBytes::from_string(n.to_string());
            r.configuration_keys = None;
            r
        })
        .collect();
    let configs = w.send(4, &describe).await;
    let mut codes: Vec<(String, i16)> = configs
        .results
        .iter()
        .map(|r| (r.resource_name.to_string(), r.error_code))
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            (
                "1".to_string(),
                ResponseError::ClusterAuthorizationFailed.code()
            ),
            ("agent-actions".to_string(), 0)
        ]
    );
    // DeleteTopics is answered topic by topic: the one it may delete goes.
    let mut create = CreateAclsRequest::default();
    create.creations = vec![acl(3, "other", "User:writer", 6, 3)];
    assert_eq!(admin.send(3, &create).await.results[0].error_code, 0);
    let mut del = kafka_protocol::messages::DeleteTopicsRequest::default();
    del.topic_names = vec![name("other"), name("audit-log")];
    del.timeout_ms = 5000;
    let resp = w.send(5, &del).await;
    let mut codes: Vec<(String, i16)> = resp
        .responses
        .iter()
        .map(|r| {
            (
                r.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                r.error_code,
            )
        })
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        [("audit-log".to_string(), denied), ("other".to_string(), 0)]
    );
    assert!(broker.inspect().topic("other").is_none());

    // rdkafka sees the same: a delivery error, and a consumer error.
    let mut c = ClientConfig::new();
    for (k, v) in broker.client_config("writer", "writer-pw") {
        c.set(k, v);
    }
    c.set("message.timeout.ms", "10000");
    let producer: FutureProducer = c.create().unwrap();
    common::assert_write_refused(&producer, "agent-secret").await;
    common::assert_write_allowed(&producer, "agent-actions", "allowed").await;
}

/// A client of a TLS broker presenting the certificate of `name` (none: no certificate).
fn mtls_client(broker: &Broker, name: Option<&str>) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in broker.client_config("", "") {
        c.set(k, v);
    }
    if let Some(name) = name {
        let (cert, key) = broker.client_certificate(name).unwrap();
        c.set("ssl.certificate.location", cert.display().to_string())
            .set("ssl.key.location", key.display().to_string());
    }
    c.set("message.timeout.ms", "10000");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_mutual_tls_the_certificate_names_the_principal() {
    let broker = Broker::builder()
        .tls()
        .tls_client_auth(ClientAuth::Required)
        .auto_create_topics(true)
        .acls(&[
            "allow User:CN=writer,O=agentbus All topic:agent-*",
            "allow User:CN=writer,O=agentbus Create cluster",
        ])
        .start()
        .await
        .unwrap();
    assert_eq!(broker.security_protocol(), "SSL");
    let writer: FutureProducer = mtls_client(&broker, Some("writer")).create().unwrap();
    common::assert_write_allowed(
        &writer,
        "agent-mtls",
        "User:CN=writer,O=agentbus may write agent-*",
    )
    .await;
    common::assert_write_refused(&writer, "audit-mtls").await;
    // Another certificate from the same CA connects, but sees no topic.
    let stranger: BaseConsumer = mtls_client(&broker, Some("stranger")).create().unwrap();
    let md = tokio::task::spawn_blocking(move || {
        stranger
            .fetch_metadata(None, Duration::from_secs(10))
            .map(|m| m.topics().len())
    })
    .await
    .unwrap()
    .expect("a certificate from the CA is let in");
    assert_eq!(md, 0, "no ACL names User:CN=stranger,O=agentbus");
    // Without a certificate the TLS handshake fails.
    let anonymous: BaseConsumer = mtls_client(&broker, None).create().unwrap();
    let result = tokio::task::spawn_blocking(move || {
        anonymous
            .fetch_metadata(None, Duration::from_secs(3))
            .map(|_| ())
    })
    .await
    .unwrap();
    assert!(result.is_err(), "a client without a certificate is refused");
}

/// `agentbus users` and `agentbus acls` against a SASL_SSL broker, secured through the
/// KAFKA_* variables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_and_acls_commands_manage_a_secured_broker() {
    let broker = Broker::builder()
        .tls()
        .sasl_users(&[("admin", "admin-pw")])
        .super_users(&["User:admin"])
        .acls(&[])
        .start()
        .await
        .unwrap();
    let ca = broker.ca_location().unwrap().display().to_string();
    let bootstrap = broker.bootstrap();
    let run = move |user: &str, password: &str, args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_agentbus"))
            .args(args)
            .env("KAFKA_BROKERS", &bootstrap)
            .env("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
            .env("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
            .env("KAFKA_SASL_USERNAME", user)
            .env("KAFKA_SASL_PASSWORD", password)
            .env("KAFKA_SSL_CA_LOCATION", &ca)
            .output()
            .expect("agentbus");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let run = std::sync::Arc::new(run);
    let r = run.clone();
    let outs = tokio::task::spawn_blocking(move || {
        let mut outs = Vec::new();
        for (user, pw, args) in [
            (
                "admin",
                "admin-pw",
                vec![
                    "users",
                    "add",
                    "bob",
                    "--password",
                    "bob-pw",
                    "--iterations",
                    "8192",
                ],
            ),
            ("admin", "admin-pw", vec!["users", "list"]),
            ("bob", "bob-pw", vec!["users", "list"]),
            (
                "admin",
                "admin-pw",
                vec![
                    "acls",
                    "add",
                    "--allow-principal",
                    "User:bob",
                    "--operation",
                    "Write",
                    "--operation",
                    "Describe",
                    "--topic",
                    "agent-",
                    "--resource-pattern-type",
                    "prefixed",
                ],
            ),
            ("admin", "admin-pw", vec!["acls", "list"]),
            (
                "admin",
                "admin-pw",
                vec![
                    "acls",
                    "remove",
                    "--allow-principal",
                    "User:bob",
                    "--operation",
                    "Describe",
                    "--topic",
                    "agent-",
                    "--resource-pattern-type",
                    "prefixed",
                ],
            ),
            (
                "admin",
                "admin-pw",
                vec![
                    "acls",
                    "list",
                    "--topic",
                    "agent-",
                    "--resource-pattern-type",
                    "prefixed",
                ],
            ),
            ("bob", "wrong", vec!["users", "list"]),
        ] {
            outs.push(r(user, pw, &args));
        }
        outs
    })
    .await
    .unwrap();
    assert!(outs[0].0, "users add: {}", outs[0].2);
    assert!(
        outs[1].0 && outs[1].1.contains("bob: SCRAM-SHA-512 (iterations 8192)"),
        "{:?}",
        outs[1]
    );
    assert!(outs[1].1.contains("admin: "), "{}", outs[1].1);
    assert!(
        !outs[2].0 && outs[2].2.contains("Cluster authorization failed"),
        "bob may not describe users: {:?}",
        outs[2]
    );
    assert!(
        outs[3].0 && outs[3].1.contains("added 2 ACL(s)"),
        "{outs:#?}"
    );
    assert!(
        outs[4]
            .1
            .contains("ResourcePattern(resourceType=TOPIC, name=agent-, patternType=PREFIXED)")
            && outs[4]
                .1
                .contains("(principal=User:bob, host=*, operation=WRITE, permissionType=ALLOW)"),
        "{:?}",
        outs[4]
    );
    assert!(
        outs[5].0 && outs[5].1.contains("removed 1 ACL(s)"),
        "{:?}",
        outs[5]
    );
    assert!(
        !outs[6].1.contains("DESCRIBE") && outs[6].1.contains("WRITE"),
        "{:?}",
        outs[6]
    );
    assert!(
        !outs[7].0 && outs[7].2.contains("authentication failed"),
        "{:?}",
        outs[7]
    );
}

/// `ssl.principal.mapping.rules`: the certificate's CN alone names the principal; a
/// certificate no rule matches is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_rules_turn_a_subject_into_the_principal() {
    let broker = Broker::builder()
        .tls()
        .tls_client_auth(ClientAuth::Required)
        .configure(|c| {
            c.security.ssl_principal_mapping_rules =
                Some(r"RULE:^CN=(writer),O=agentbus$/$1/U".into())
        })
        .acls(&[
            "allow User:WRITER All topic:*",
            "allow User:WRITER Create cluster",
        ])
        .start()
        .await
        .unwrap();
    let writer: FutureProducer = mtls_client(&broker, Some("writer")).create().unwrap();
    common::assert_write_allowed(
        &writer,
        "mapped",
        "CN=writer,O=agentbus maps to User:WRITER",
    )
    .await;
    let other: BaseConsumer = mtls_client(&broker, Some("other")).create().unwrap();
    let refused = tokio::task::spawn_blocking(move || {
        other
            .fetch_metadata(None, Duration::from_secs(3))
            .map(|_| ())
    })
    .await
    .unwrap();
    assert!(
        refused.is_err(),
        "no rule matches CN=other: the connection is refused"
    );
}

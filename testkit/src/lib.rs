//! agentbus-testkit: isolated in-process brokers for tests.
//!
//! ```no_run
//! # async fn demo() {
//! let broker = agentbus_testkit::Broker::start().await.unwrap();
//! let bootstrap = broker.bootstrap(); // "127.0.0.1:<ephemeral port>"
//! // point any Kafka client at `bootstrap`; dropping `broker` shuts it down
//! # }
//! ```

pub mod certs;
pub mod fixtures;
mod secured;

pub use certs::{CertError, DevCerts};
pub use fixtures::{FixtureError, PgServer, Postgres, Redis, RedisServer};

use agentbus_broker::{BrokerConfig, GroupConfig, StartError, StorageConfig};
use secured::Security;
use std::path::PathBuf;

pub use agentbus_broker::{
    ClientAuth, Fault, GroupState, GroupSummary, Inspector, Offsets, RecordedRequest, StoredRecord,
    TopicError, TopicInfo, TransactionInfo,
};

/// An in-process broker on an ephemeral loopback port with memory storage.
///
/// Strict mode is on unless turned off with [`BrokerBuilder::strict`]: a request for an API
/// or version agentbus does not implement fails the test (when the broker is dropped) with
/// a message naming it, instead of passing with a plausible answer.
#[derive(Debug)]
pub struct Broker {
    inspector: Inspector,
    /// Taken by [`Broker::shutdown`]; dropping it stops the broker.
    inner: Option<agentbus_broker::Broker>,
    bootstrap: String,
    security: Security,
}

impl Drop for Broker {
    fn drop(&mut self) {
        check_strict(&self.inspector);
    }
}

/// Waits until the broker's state and its storage are dropped (and so its data
/// directory's files and the metadata store's lock are let go).
async fn released(storage: std::sync::Weak<()>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while storage.strong_count() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "stopped broker: its storage is still held after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

fn check_strict(inspector: &Inspector) {
    let violations = inspector.violations();
    if !violations.is_empty() && !std::thread::panicking() {
        panic!(
            "strict mode: the client used what agentbus does not implement:\n  {}",
            violations.join("\n  ")
        );
    }
}

impl Broker {
    /// Starts a broker with the defaults tests want (memory storage, auto-create on).
    pub async fn start() -> Result<Self, StartError> {
        Self::builder().start().await
    }

    /// A builder for non-default settings.
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder {
            config: BrokerConfig {
                listen: "127.0.0.1:0".into(),
                // Kafka waits 3 s before the first rebalance of a group; tests need not.
                group: GroupConfig {
                    initial_rebalance_delay: std::time::Duration::ZERO,
                    // KIP-848 members learn of new assignments on their next heartbeat.
                    consumer_heartbeat_interval: std::time::Duration::from_millis(500),
                    ..GroupConfig::default()
                },
                strict: true,
                ..BrokerConfig::default()
            },
            tls: false,
            acls: Vec::new(),
        }
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.bootstrap.clone()
    }

    /// `host:port` of the listener named `name` (with several listeners set through
    /// [`BrokerBuilder::configure`]).
    pub fn listener_bootstrap(&self, name: &str) -> Option<String> {
        self.inner.as_ref()?.listener_bootstrap(name)
    }

    /// The (first) listener's `security.protocol` (`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`).
    pub fn security_protocol(&self) -> &'static str {
        self.security.protocol
    }

    /// The CA that signed the broker's certificate (`ssl.ca.location`), with [`BrokerBuilder::tls`].
    pub fn ca_location(&self) -> Option<PathBuf> {
        self.security.certs.as_ref().map(|c| c.certs.ca.clone())
    }

    /// A client certificate and key (PEM files) whose subject is `CN=NAME,O=agentbus`,
    /// signed by the broker's CA, for mutual TLS.
    pub fn client_certificate(&self, name: &str) -> Result<(PathBuf, PathBuf), CertError> {
        let Some(certs) = &self.security.certs else {
            return Err(CertError::NoTls);
        };
        certs.certs.client(name)
    }

    /// librdkafka properties that reach this broker's listener as `user` (SCRAM-SHA-512
    /// on SASL listeners; `user` is ignored on the others).
    pub fn client_config(&self, user: &str, password: &str) -> Vec<(String, String)> {
        let mut props = vec![
            ("bootstrap.servers".to_string(), self.bootstrap()),
            (
                "security.protocol".to_string(),
                self.security.protocol.to_ascii_lowercase(),
            ),
        ];
        if let Some(ca) = self.ca_location() {
            props.push(("ssl.ca.location".into(), ca.display().to_string()));
        }
        if self.security.protocol.starts_with("SASL") {
            props.push(("sasl.mechanisms".into(), "SCRAM-SHA-512".into()));
            props.push(("sasl.username".into(), user.into()));
            props.push(("sasl.password".into(), password.into()));
        }
        props
    }

    /// What the broker holds (topics, offsets, records, groups, transactions), for
    /// assertions that need no client, and its test controls.
    pub fn inspect(&self) -> &Inspector {
        &self.inspector
    }

    /// Stops gracefully (in-flight requests finish, logs are flushed) and returns once
    /// the storage is released, so a broker can start again on the same data directory.
    pub async fn shutdown(mut self) {
        if let Some(inner) = self.inner.take() {
            inner.shutdown().await;
        }
        let storage = self.inspector.storage_released();
        drop(self);
        released(storage).await;
    }

    /// Stops the broker as a crash would (no flush, no snapshots) and returns once every
    /// task has let go of its storage, so a broker can start again on the same data
    /// directory.
    pub async fn crash(self) {
        let storage = self.inspector.storage_released();
        drop(self);
        released(storage).await;
    }

    /// Requests for APIs or versions agentbus does not implement, seen so far.
    pub fn violations(&self) -> Vec<String> {
        self.inspector.violations()
    }
}

/// Settings for [`Broker`].
#[derive(Debug, Clone)]
pub struct BrokerBuilder {
    config: BrokerConfig,
    tls: bool,
    acls: Vec<String>,
}

impl BrokerBuilder {
    /// Stores data under `dir` instead of in memory.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.storage = StorageConfig::Disk(dir.into());
        self
    }

    /// `auto.create.topics.enable`.
    pub fn auto_create_topics(mut self, on: bool) -> Self {
        self.config.auto_create_topics = on;
        self
    }

    /// `num.partitions` for auto-created topics.
    pub fn default_partitions(mut self, n: i32) -> Self {
        self.config.default_partitions = n;
        self
    }

    /// Any other setting.
    pub fn configure(mut self, f: impl FnOnce(&mut BrokerConfig)) -> Self {
        f(&mut self.config);
        self
    }

    /// Turns strict mode off (for tests that send unimplemented requests on purpose).
    pub fn strict(mut self, on: bool) -> Self {
        self.config.strict = on;
        self
    }

    /// Serves TLS (SSL, or SASL_SSL with [`BrokerBuilder::sasl_users`]) with a CA and
    /// broker certificate generated for this broker; clients find the CA at
    /// [`Broker::ca_location`].
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// With [`BrokerBuilder::tls`]: `ssl.client.auth` (`Required`: mutual TLS, the
    /// principal taken from the client certificate, see [`Broker::client_certificate`]).
    pub fn tls_client_auth(mut self, auth: ClientAuth) -> Self {
        self.config.security.ssl_client_auth = auth;
        self
    }

    /// Requires SASL (SASL_PLAINTEXT, or SASL_SSL with [`BrokerBuilder::tls`]) and gives
    /// these users SCRAM-SHA-256 and SCRAM-SHA-512 credentials (PLAIN checks them too).
    pub fn sasl_users(mut self, users: &[(&str, &str)]) -> Self {
        self.config.security.scram_users = users
            .iter()
            .map(|(u, p)| (u.to_string(), p.to_string()))
            .collect();
        self
    }

    /// Enforces ACLs (the StandardAuthorizer) with these rules, as `kafka-acls` would add
    /// them: `allow User:writer Write topic:agent-*`, `deny User:writer Read topic:audit-*`,
    /// `allow User:ops All cluster` (see `agentbus broker --acl`).
    pub fn acls(mut self, rules: &[&str]) -> Self {
        self.config.security.authorizer = true;
        self.acls = rules.iter().map(|r| r.to_string()).collect();
        self
    }

    /// Principals every ACL check allows (`User:admin`).
    pub fn super_users(mut self, users: &[&str]) -> Self {
        self.config.security.super_users = users.iter().map(|u| u.to_string()).collect();
        self
    }

    pub async fn start(mut self) -> Result<Broker, StartError> {
        let security = secured::secure(&mut self.config, self.tls, &self.acls)?;
        let inner = agentbus_broker::Broker::start(self.config).await?;
        let inspector = inner.inspect();
        Ok(Broker {
            inspector,
            bootstrap: inner.bootstrap(),
            inner: Some(inner),
            security,
        })
    }

    /// Starts `count` presented brokers over one storage (see [`Cluster`]).
    pub async fn start_cluster(self, count: usize) -> Result<Cluster, StartError> {
        let inner = agentbus_broker::Broker::start_nodes(self.config, count).await?;
        let inspector = inner.inspect();
        Ok(Cluster {
            inspector,
            inner: Some(inner),
        })
    }
}

/// Several presented brokers (node ids 1..=N, one listener each) over one storage: what a
/// 3-broker cluster does to clients — leaders move, brokers die, coordinators change,
/// requests fail — in one process.
///
/// ```no_run
/// # async fn demo() {
/// use agentbus_testkit::{Broker, Fault};
/// let mut cluster = Broker::builder().start_cluster(3).await.unwrap();
/// // … clients bootstrap from cluster.bootstrap() …
/// cluster.move_leader("orders", 0, 2).unwrap();
/// cluster.stop_broker(1);
/// let _slow = cluster.inject(kafka_protocol_key::FETCH, Fault::Delay(std::time::Duration::from_millis(200)));
/// cluster.start_broker(1).await.unwrap();
/// # mod kafka_protocol_key { pub const FETCH: i16 = 1; }
/// # }
/// ```
#[derive(Debug)]
pub struct Cluster {
    inspector: Inspector,
    /// Taken only by [`Cluster::shutdown`], which consumes the cluster.
    inner: Option<agentbus_broker::Broker>,
}

/// Removes its fault rule when dropped.
#[derive(Debug)]
pub struct FaultGuard {
    inspector: Inspector,
    id: u64,
}

impl Drop for FaultGuard {
    fn drop(&mut self) {
        self.inspector.remove_fault(self.id);
    }
}

/// Settings for [`Cluster`]: the broker settings plus the number of brokers.
#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    broker: BrokerBuilder,
    brokers: usize,
    racks: Vec<String>,
}

impl ClusterBuilder {
    /// How many brokers to present (3 by default).
    pub fn brokers(mut self, n: usize) -> Self {
        self.brokers = n.max(1);
        self
    }

    /// Rack ids of the brokers in node order (`broker.rack`), reported in Metadata.
    pub fn racks(mut self, racks: &[&str]) -> Self {
        self.racks = racks.iter().map(|r| r.to_string()).collect();
        self
    }

    /// Any broker setting (see [`BrokerBuilder`]).
    pub fn broker(mut self, f: impl FnOnce(BrokerBuilder) -> BrokerBuilder) -> Self {
        self.broker = f(self.broker);
        self
    }

    pub async fn start(self) -> Result<Cluster, StartError> {
        let cluster = self.broker.start_cluster(self.brokers).await?;
        for (id, rack) in cluster.node_ids().into_iter().zip(self.racks) {
            cluster.inspect().set_rack(id, Some(rack));
        }
        Ok(cluster)
    }
}

impl Cluster {
    /// `Cluster::builder().brokers(3).start().await`.
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder {
            broker: Broker::builder(),
            brokers: 3,
            racks: Vec::new(),
        }
    }

    /// Every node's `host:port`, comma-separated.
    /// Stops every node cleanly (the data directory can be opened again at once).
    pub async fn shutdown(mut self) {
        if let Some(inner) = self.inner.take() {
            check_strict(&self.inspector);
            inner.shutdown().await;
        }
    }

    fn broker(&self) -> &agentbus_broker::Broker {
        self.inner.as_ref().expect("a cluster runs until shutdown")
    }

    pub fn bootstrap(&self) -> String {
        self.broker()
            .node_addrs()
            .iter()
            .map(|(_, a)| a.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// What the cluster holds, and its test controls (see [`Broker::inspect`]).
    pub fn inspect(&self) -> &Inspector {
        &self.inspector
    }

    /// Node ids of the presented brokers.
    pub fn node_ids(&self) -> Vec<i32> {
        self.broker()
            .node_addrs()
            .iter()
            .map(|(id, _)| *id)
            .collect()
    }

    /// Stops a broker: its connections drop, new ones are refused, leadership and
    /// coordinators move to the others (leader epochs bump).
    pub fn stop_broker(&mut self, id: i32) -> bool {
        self.inner.as_mut().is_some_and(|b| b.stop_node(id))
    }

    /// Starts a stopped broker again on its old port.
    pub async fn start_broker(&mut self, id: i32) -> Result<(), StartError> {
        match self.inner.as_mut() {
            Some(b) => b.start_node(id).await,
            None => Ok(()),
        }
    }

    /// Moves a partition's leadership (its leader epoch bumps).
    pub fn move_leader(&self, topic: &str, partition: i32, to: i32) -> Result<(), TopicError> {
        self.inspector.move_leader(topic, partition, to)
    }

    /// Moves a group's (or transactional id's) coordinator.
    pub fn move_coordinator(&self, key: &str, to: i32) {
        self.inspector.move_coordinator(key, to)
    }

    /// The node coordinating a group or transactional id.
    pub fn coordinator(&self, key: &str) -> i32 {
        self.inspector.coordinator(key)
    }

    /// The node leading a partition.
    pub fn leader(&self, topic: &str, partition: i32) -> i32 {
        self.inspector.leader(topic, partition)
    }

    /// Applies `fault` to every request with `api_key` while the guard lives.
    pub fn inject(&self, api_key: i16, fault: Fault) -> FaultGuard {
        self.inject_on(api_key, None, fault, None)
    }

    /// Applies `fault` to the next `times` requests with `api_key`, on `node` or any node.
    pub fn inject_on(
        &self,
        api_key: i16,
        node: Option<i32>,
        fault: Fault,
        times: Option<usize>,
    ) -> FaultGuard {
        FaultGuard {
            inspector: self.inspector.clone(),
            id: self.inspector.inject(api_key, node, fault, times),
        }
    }

    /// Starts recording requests (api key, version, client id, node).
    pub fn record_requests(&self) {
        self.inspector.set_recording(true);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inspector.recorded()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.inner.is_some() {
            check_strict(&self.inspector);
        }
    }
}

/// Inspection without a consumer, for assertions, on a broker or a cluster: the
/// [`Inspector`]'s answers in the shapes tests compare.
pub trait Inspect {
    fn inspector(&self) -> &Inspector;

    /// Every stored record of a partition as (offset, key, value), control records left out.
    fn records(&self, topic: &str, partition: i32) -> Vec<StoredRecord> {
        self.inspector().records(topic, partition)
    }

    /// (log start, high watermark, last stable offset) of a partition.
    fn offsets(&self, topic: &str, partition: i32) -> Option<(i64, i64, i64)> {
        let o = self.inspector().offsets(topic, partition)?;
        Some((o.log_start, o.high_watermark, o.last_stable))
    }

    /// A group's committed offsets: (topic, partition) → offset.
    fn committed(&self, group: &str) -> std::collections::BTreeMap<(String, i32), i64> {
        self.inspector().committed(group)
    }

    /// A group's state name and member ids.
    fn group(&self, group: &str) -> (String, Vec<String>) {
        let s = self.inspector().group(group);
        (
            s.state_name,
            s.members.into_iter().map(|m| m.member_id).collect(),
        )
    }

    /// Transactional ids with an open transaction.
    fn open_transactions(&self) -> Vec<String> {
        self.inspector()
            .transactions()
            .into_iter()
            .filter(|t| t.state == "Ongoing")
            .map(|t| t.transactional_id)
            .collect()
    }

    /// Compacts every `cleanup.policy=compact` topic now: only the latest record of each key
    /// stays (offsets keep their gaps, as in Kafka).
    fn compact(&self) {
        self.inspector().compact();
    }

    /// Applies retention now instead of waiting for the background check.
    fn apply_retention(&self) {
        self.inspector().apply_retention();
    }

    /// Moves the broker's clock forward and runs its timers at once: session timeouts,
    /// rebalance deadlines, transaction timeouts. Clients' own timers stay real: a jump
    /// past a member's session timeout expires it even while its client heartbeats (it
    /// joins again under a new id); smaller steps expire only a member that went silent.
    fn advance(&self, by: std::time::Duration) {
        self.inspector().advance(by);
    }
}

impl Inspect for Broker {
    fn inspector(&self) -> &Inspector {
        &self.inspector
    }
}

impl Inspect for Cluster {
    fn inspector(&self) -> &Inspector {
        &self.inspector
    }
}

//! `agentbus broker`: settings from flags, `AGENTBUS_*` variables and a TOML file
//! (in that order of precedence), then serve until SIGINT/SIGTERM.

use crate::control_api::SharedBroker;
use agentbus_broker::{
    Broker, BrokerConfig, ConfigError, FileConfig, SecurityProtocol, StorageConfig,
};
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub(crate) struct BrokerArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "AGENTBUS_LISTEN")]
    listen: Option<String>,
    /// host:port given to clients in metadata (default: the bound address).
    #[arg(long, env = "AGENTBUS_ADVERTISE")]
    advertise: Option<String>,
    /// Keep data in segment files under DIR (survives restarts and crashes).
    #[arg(long, env = "AGENTBUS_DATA_DIR", conflicts_with = "memory")]
    data_dir: Option<PathBuf>,
    /// Keep everything in memory (the default when no data dir is given).
    #[arg(long, env = "AGENTBUS_MEMORY")]
    memory: bool,
    /// Log and metadata storage as one URL: `memory://` or `file://DIR` (instead of
    /// --data-dir / --memory).
    #[arg(long, env = "AGENTBUS_STORAGE", conflicts_with_all = ["memory", "data_dir"])]
    storage: Option<String>,
    /// TOML file with any of these settings (keys as the flags, with underscores).
    #[arg(long, env = "AGENTBUS_CONFIG")]
    config: Option<PathBuf>,
    /// This broker's node id.
    #[arg(long, env = "AGENTBUS_NODE_ID")]
    node_id: Option<i32>,
    /// Cluster id reported to clients.
    #[arg(long, env = "AGENTBUS_CLUSTER_ID")]
    cluster_id: Option<String>,
    /// Create topics on first metadata request for them (auto.create.topics.enable).
    #[arg(long, env = "AGENTBUS_AUTO_CREATE_TOPICS")]
    auto_create_topics: Option<bool>,
    /// Partitions of topics created without a count (num.partitions).
    #[arg(long, env = "AGENTBUS_DEFAULT_PARTITIONS")]
    default_partitions: Option<i32>,
    /// Largest record batch a topic accepts unless it sets max.message.bytes (message.max.bytes).
    #[arg(long, env = "AGENTBUS_MAX_MESSAGE_BYTES")]
    max_message_bytes: Option<i32>,
    /// Largest request frame; a larger one closes the connection (socket.request.max.bytes).
    #[arg(long, env = "AGENTBUS_MAX_REQUEST_BYTES")]
    max_request_bytes: Option<usize>,
    /// Most record bytes in one fetch response, whatever a client asks (fetch.max.bytes).
    #[arg(long, env = "AGENTBUS_FETCH_MAX_BYTES")]
    fetch_max_bytes: Option<usize>,
    /// Segment size before a new segment file is started (log.segment.bytes).
    #[arg(long, env = "AGENTBUS_SEGMENT_BYTES")]
    segment_bytes: Option<u64>,
    /// Segment age before a new segment file is started (log.roll.ms).
    #[arg(long, env = "AGENTBUS_SEGMENT_MS", allow_negative_numbers = true)]
    segment_ms: Option<i64>,
    /// Default retention by age, -1 for none (log.retention.ms).
    #[arg(long, env = "AGENTBUS_RETENTION_MS", allow_negative_numbers = true)]
    retention_ms: Option<i64>,
    /// Default retention by size per partition, -1 for none (log.retention.bytes).
    #[arg(long, env = "AGENTBUS_RETENTION_BYTES", allow_negative_numbers = true)]
    retention_bytes: Option<i64>,
    /// How often retention runs (log.retention.check.interval.ms).
    #[arg(long, env = "AGENTBUS_RETENTION_CHECK_INTERVAL_MS")]
    retention_check_interval_ms: Option<u64>,
    /// `always`: fsync every append before acknowledging it (survives power loss);
    /// `never`: leave it to the OS (survives a killed broker).
    #[arg(long, env = "AGENTBUS_FSYNC")]
    fsync: Option<String>,
    /// Wait before the first rebalance of an empty group, so members starting together
    /// join one generation (group.initial.rebalance.delay.ms).
    #[arg(long, env = "AGENTBUS_GROUP_INITIAL_REBALANCE_DELAY_MS")]
    group_initial_rebalance_delay_ms: Option<u64>,
    /// Strict mode: a request for an API or version agentbus does not implement is
    /// answered as Kafka would, logged, and makes the broker exit with status 1 when it
    /// stops, naming each (so a CI job fails on it).
    #[arg(long, env = "AGENTBUS_STRICT")]
    strict: bool,
    /// Present N brokers (node ids from --node-id on) over one storage, as testkit's
    /// cluster does: leaders and coordinators spread, replication factor up to N. Each
    /// listens on its own port: --listen's and the ones after it, a free one each with
    /// port 0, or one address each (`--listen h:p1,h:p2,h:p3`).
    #[arg(long, env = "AGENTBUS_BROKERS")]
    brokers: Option<u16>,
    /// Connections one broker keeps open; beyond it, new ones wait to be accepted
    /// (max.connections).
    #[arg(long, env = "AGENTBUS_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Connections from one address; beyond it, a new one is closed at once
    /// (max.connections.per.ip).
    #[arg(long, env = "AGENTBUS_MAX_CONNECTIONS_PER_IP")]
    max_connections_per_ip: Option<usize>,
    /// Other limits for some addresses, `host:count,…` (max.connections.per.ip.overrides).
    #[arg(long, env = "AGENTBUS_MAX_CONNECTIONS_PER_IP_OVERRIDES")]
    max_connections_per_ip_overrides: Option<String>,
    /// Present the ApiVersions and behaviour of this Kafka release: 2.8, 3.6, 3.9, 4.0
    /// or 4.1 (3.x: message formats v0/v1 for clients with api.version.request=false;
    /// 4.x: their removal). Default: the newest.
    #[arg(long, env = "AGENTBUS_AS_KAFKA", value_name = "VERSION")]
    as_kafka: Option<String>,
    /// Serve the control API (HTTP/JSON) on ADDR: stop and start nodes, move leaders and
    /// coordinators, inject errors, delays and disconnects, move the clock, read the
    /// requests seen (`agentbus control`). Off unless given; for tests, never exposed.
    #[arg(long, env = "AGENTBUS_CONTROL", value_name = "ADDR")]
    control: Option<String>,
    #[command(flatten)]
    security: SecurityArgs,
}

/// Listeners and their security, with Kafka's names.
#[derive(Debug, clap::Args)]
struct SecurityArgs {
    /// Listeners, each with its security protocol: `PLAINTEXT://127.0.0.1:9092,
    /// SASL_SSL://127.0.0.1:9094` (also SSL, SASL_PLAINTEXT); replaces --listen.
    #[arg(long, env = "AGENTBUS_LISTENERS")]
    listeners: Option<String>,
    /// Addresses given to clients per listener: `SASL_SSL://broker.example:9094,…`.
    #[arg(long, env = "AGENTBUS_ADVERTISED_LISTENERS")]
    advertised_listeners: Option<String>,
    /// Security protocols of listeners not named after one: `CLIENT:SASL_SSL,…`.
    #[arg(long, env = "AGENTBUS_LISTENER_SECURITY_PROTOCOL_MAP")]
    listener_security_protocol_map: Option<String>,
    /// The broker's certificate chain (PEM) for SSL and SASL_SSL listeners.
    #[arg(long, env = "AGENTBUS_SSL_CERTIFICATE_LOCATION")]
    ssl_certificate_location: Option<PathBuf>,
    /// The broker's private key (PEM).
    #[arg(long, env = "AGENTBUS_SSL_KEY_LOCATION")]
    ssl_key_location: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates are checked against.
    #[arg(long, env = "AGENTBUS_SSL_CA_LOCATION")]
    ssl_ca_location: Option<PathBuf>,
    /// `required`, `requested` or `none`: whether TLS clients present a certificate
    /// (its subject is then the principal, as `User:CN=…,O=…`).
    #[arg(long, env = "AGENTBUS_SSL_CLIENT_AUTH")]
    ssl_client_auth: Option<String>,
    /// How a client certificate's subject becomes the principal's name, as Kafka's
    /// `ssl.principal.mapping.rules`: `RULE:^CN=([^,]*),.*$/$1/L,DEFAULT`.
    #[arg(long, env = "AGENTBUS_SSL_PRINCIPAL_MAPPING_RULES")]
    ssl_principal_mapping_rules: Option<String>,
    /// SASL mechanisms offered: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER
    /// (default: all four).
    #[arg(long, env = "AGENTBUS_SASL_ENABLED_MECHANISMS")]
    sasl_enabled_mechanisms: Option<String>,
    /// What a listener offers instead, as Kafka's
    /// `listener.name.NAME.sasl.enabled.mechanisms`: `SASL_SSL=SCRAM-SHA-512;INTERNAL=PLAIN`.
    #[arg(long, env = "AGENTBUS_LISTENER_SASL_ENABLED_MECHANISMS")]
    listener_sasl_enabled_mechanisms: Option<String>,
    /// Sessions end after this unless the client re-authenticates (KIP-368); 0: never.
    #[arg(long, env = "AGENTBUS_CONNECTIONS_MAX_REAUTH_MS")]
    connections_max_reauth_ms: Option<i64>,
    /// A failed authentication is answered, and its connection closed, after this.
    #[arg(long, env = "AGENTBUS_CONNECTION_FAILED_AUTHENTICATION_DELAY_MS")]
    connection_failed_authentication_delay_ms: Option<u64>,
    /// Time a new connection has to finish TLS and SASL before it is closed.
    #[arg(long, env = "AGENTBUS_AUTHENTICATION_TIMEOUT_MS")]
    authentication_timeout_ms: Option<u64>,
    /// Users given SCRAM-SHA-256/512 credentials at start: `NAME:PASSWORD,…` (prefer the
    /// variable or the file to the flag: a flag shows in the process list).
    #[arg(long, env = "AGENTBUS_SCRAM_USERS", hide_env_values = true)]
    scram_users: Option<String>,
    /// Enforce ACLs: org.apache.kafka.metadata.authorizer.StandardAuthorizer (or
    /// `standard`). Without it every request is allowed, as in Kafka.
    #[arg(long, env = "AGENTBUS_AUTHORIZER_CLASS_NAME")]
    authorizer_class_name: Option<String>,
    /// Principals every ACL check allows: `User:admin;User:ops`.
    #[arg(long, env = "AGENTBUS_SUPER_USERS")]
    super_users: Option<String>,
    /// Let everyone at a resource that no ACL names (default false).
    #[arg(long, env = "AGENTBUS_ALLOW_EVERYONE_IF_NO_ACL_FOUND")]
    allow_everyone_if_no_acl_found: Option<bool>,
    /// An ACL created at start, `allow|deny PRINCIPAL OPERATION RESOURCE[@HOST]`, as
    /// `allow User:writer Write topic:agent-*` (repeatable).
    #[arg(long, value_name = "RULE")]
    acl: Vec<String>,
}

fn load_file(path: &PathBuf) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

/// What `agentbus broker` runs: the broker's settings, how many brokers to present, and
/// where the control API listens, if anywhere.
struct Resolved {
    config: BrokerConfig,
    brokers: usize,
    control: Option<String>,
}

/// Merges flags/env (already merged by clap) over the file over the defaults.
fn resolve(args: BrokerArgs) -> anyhow::Result<Resolved> {
    let file = match &args.config {
        Some(p) => load_file(p)?,
        None => FileConfig::default(),
    };
    let mut c = BrokerConfig::default();
    macro_rules! pick {
        ($field:ident) => {
            args.$field.clone().or(file.$field.clone())
        };
    }
    if let Some(v) = pick!(listen) {
        c.listen = v;
    }
    c.advertise = pick!(advertise);
    if let Some(v) = pick!(node_id) {
        c.node_id = v;
    }
    if let Some(v) = pick!(cluster_id) {
        c.cluster_id = v;
    }
    if let Some(v) = pick!(auto_create_topics) {
        c.auto_create_topics = v;
    }
    if let Some(v) = pick!(default_partitions) {
        c.default_partitions = v;
    }
    if let Some(v) = pick!(max_message_bytes) {
        c.max_message_bytes = v;
    }
    if let Some(v) = pick!(max_request_bytes) {
        c.max_request_bytes = v;
    }
    if let Some(v) = pick!(fetch_max_bytes) {
        c.fetch_max_bytes = v;
    }
    if let Some(v) = pick!(segment_bytes) {
        c.log.segment_bytes = v;
    }
    if let Some(v) = pick!(segment_ms) {
        c.log.segment_ms = v;
    }
    if let Some(v) = pick!(retention_ms) {
        c.log.retention_ms = v;
    }
    if let Some(v) = pick!(retention_bytes) {
        c.log.retention_bytes = v;
    }
    if let Some(v) = pick!(retention_check_interval_ms) {
        c.retention_check_interval = Duration::from_millis(v.max(1));
    }
    if let Some(v) = pick!(group_initial_rebalance_delay_ms) {
        c.group.initial_rebalance_delay = Duration::from_millis(v);
    }
    match pick!(fsync).as_deref() {
        None | Some("never") => {}
        Some("always") => c.log.fsync = true,
        Some(other) => {
            return Err(
                ConfigError::new("fsync", format!("`{other}` is not `always` or `never`")).into(),
            )
        }
    }
    c.strict = args.strict || file.strict.unwrap_or(false);
    c.as_kafka = pick!(as_kafka);
    if let Some(v) = pick!(max_connections) {
        c.max_connections = v;
    }
    if let Some(v) = pick!(max_connections_per_ip) {
        c.max_connections_per_ip = v;
    }
    if let Some(v) = pick!(max_connections_per_ip_overrides) {
        c.max_connections_per_ip_overrides = agentbus_broker::IpOverrides::parse(&v)
            .map_err(|why| ConfigError::new("max-connections-per-ip-overrides", why))?;
    }
    security(&args.security, &file, &mut c.security)?;
    c.log_levels = crate::logs::levels();
    c.storage = storage(&args, &file)?;
    c.validate()?;
    // A list of addresses presents as many brokers unless --brokers says otherwise.
    let brokers = match pick!(brokers) {
        None => c.listen.split(',').count(),
        Some(n) if (1..=64).contains(&n) => usize::from(n),
        Some(n) => {
            return Err(ConfigError::new("brokers", format!("{n} is not within 1..=64")).into())
        }
    };
    Ok(Resolved {
        config: c,
        brokers,
        control: pick!(control),
    })
}

/// The security settings: flags and variables, then the file.
fn security(
    args: &SecurityArgs,
    file: &FileConfig,
    s: &mut agentbus_broker::SecurityConfig,
) -> Result<(), ConfigError> {
    macro_rules! pick {
        ($field:ident) => {
            args.$field.clone().or(file.$field.clone())
        };
    }
    s.listeners = pick!(listeners);
    s.advertised_listeners = pick!(advertised_listeners);
    s.protocol_map = pick!(listener_security_protocol_map);
    s.ssl_certificate = pick!(ssl_certificate_location);
    s.ssl_key = pick!(ssl_key_location);
    s.ssl_ca = pick!(ssl_ca_location);
    s.ssl_principal_mapping_rules = pick!(ssl_principal_mapping_rules);
    if let Some(v) = pick!(ssl_client_auth) {
        s.ssl_client_auth = agentbus_broker::ClientAuth::parse(&v)?;
    }
    if let Some(v) = pick!(sasl_enabled_mechanisms) {
        s.sasl_mechanisms = agentbus_broker::parse_mechanisms(&v)?;
    }
    if let Some(v) = pick!(listener_sasl_enabled_mechanisms) {
        s.listener_mechanisms = agentbus_broker::parse_listener_mechanisms(&v)?;
    }
    if let Some(v) = pick!(connections_max_reauth_ms) {
        s.max_reauth_ms = v;
    }
    if let Some(v) = pick!(connection_failed_authentication_delay_ms) {
        s.failed_authentication_delay = Duration::from_millis(v);
    }
    if let Some(v) = pick!(authentication_timeout_ms) {
        s.authentication_timeout = Duration::from_millis(v.max(1));
    }
    if let Some(v) = pick!(scram_users) {
        s.scram_users = agentbus_broker::parse_scram_users(&v)?;
    }
    if let Some(v) = pick!(authorizer_class_name) {
        s.authorizer = agentbus_broker::parse_authorizer(&v)?;
    }
    if let Some(v) = pick!(super_users) {
        s.super_users = agentbus_broker::parse_super_users(&v)?;
    }
    if let Some(v) = pick!(allow_everyone_if_no_acl_found) {
        s.allow_everyone_if_no_acl_found = v;
    }
    let rules = if args.acl.is_empty() {
        file.acl.clone().unwrap_or_default()
    } else {
        args.acl.clone()
    };
    s.acls = rules
        .iter()
        .map(|r| agentbus_broker::parse_acl(r))
        .collect::<Result<_, _>>()?;
    Ok(())
}

/// Flags and variables first, then the file; within each, `storage` before `memory`
/// before `data_dir`.
fn storage(args: &BrokerArgs, file: &FileConfig) -> Result<StorageConfig, ConfigError> {
    if let Some(url) = &args.storage {
        return StorageConfig::from_url(url);
    }
    if args.memory {
        return Ok(StorageConfig::Memory);
    }
    if let Some(dir) = &args.data_dir {
        return Ok(StorageConfig::Disk(dir.clone()));
    }
    match (&file.storage, file.memory, &file.data_dir) {
        (Some(url), _, _) => StorageConfig::from_url(url),
        (None, Some(true), _) | (None, _, None) => Ok(StorageConfig::Memory),
        (None, _, Some(dir)) => Ok(StorageConfig::Disk(dir.clone())),
    }
}

pub(crate) async fn run(args: BrokerArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let Resolved {
        config,
        brokers,
        control,
    } = resolve(args)?;
    let storage = match &config.storage {
        StorageConfig::Memory => "memory".to_string(),
        StorageConfig::Disk(d) => d.display().to_string(),
    };
    // Installed before the ready line: a SIGTERM right after it still stops cleanly.
    let shutdown = crate::signals::shutdown()?;
    let broker = Broker::start_nodes(config, brokers).await?;
    let others: Vec<String> = broker
        .node_addrs()
        .iter()
        .skip(1)
        .map(|(_, a)| a.to_string())
        .collect();
    let bootstrap = std::iter::once(broker.bootstrap())
        .chain(others)
        .collect::<Vec<_>>()
        .join(",");
    let local = broker.local_addr();
    let listeners = broker.listeners();
    let secured = if listeners.len() > 1 || listeners[0].protocol != SecurityProtocol::Plaintext {
        let list: Vec<String> = listeners
            .iter()
            .filter_map(|l| {
                broker
                    .listener_bootstrap(&l.name)
                    .map(|a| format!("{}://{a}", l.name))
            })
            .collect();
        format!(", listeners {}", list.join(","))
    } else {
        String::new()
    };
    let inspector = broker.inspect();
    let broker: SharedBroker = Arc::new(tokio::sync::Mutex::new(Some(broker)));
    let control = match control {
        Some(addr) => Some(crate::control_api::serve(&addr, broker.clone()).await?),
        None => None,
    };
    println!(
        "agentbus broker ready in {} ms: bootstrap {bootstrap} (listening on {local}{secured}, storage {storage}{}{})",
        started.elapsed().as_millis(),
        if brokers > 1 {
            format!(", {brokers} brokers")
        } else {
            String::new()
        },
        control.map_or_else(String::new, |a| format!(", control http://{a}")),
    );
    shutdown.await;
    tracing::info!("shutting down: closing listeners, finishing in-flight requests");
    if let Some(broker) = broker.lock().await.take() {
        broker.shutdown().await;
    }
    tracing::info!("stopped");
    let violations = inspector.violations();
    if !violations.is_empty() {
        anyhow::bail!(
            "strict mode: clients used what agentbus does not implement:\n  {}",
            violations.join("\n  ")
        );
    }
    Ok(())
}

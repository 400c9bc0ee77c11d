//! `agentbus consume <group>` and `agentbus migrate`.

use agentbus_client::Topic;
use agentbus_consumers::audit_logger::{self, ArchiveSink, AuditStats, Rotation};
use agentbus_consumers::config::ConfigError;
use agentbus_consumers::db_writer::{self, DatabaseSettings, PgConnectOptions, PgSink};
use agentbus_consumers::metrics::Metrics;
use agentbus_consumers::metrics_aggregator::query::Api;
use agentbus_consumers::metrics_aggregator::{self, RedisSettings, RedisSink};
use agentbus_consumers::pattern_extractor::{self, ExtractorSettings, ExtractorSink, Model};
use agentbus_consumers::Service;
use agentbus_consumers::{RuntimeConfig, SinkError};
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub(crate) struct ConsumeArgs {
    #[command(subcommand)]
    group: Group,
}

#[derive(Debug, clap::Subcommand)]
enum Group {
    /// Write every event of the eight topics into its PostgreSQL table, exactly once.
    DbWriter(Box<DbWriterArgs>),
    /// Windows, rollups and rolling counts of the eight topics in Redis, effectively
    /// once; `/api/metrics` on the HTTP port serves them.
    MetricsAggregator(Box<MetricsAggregatorArgs>),
    /// Archive every record of the eight topics exactly once as Parquet on an object
    /// store (S3, S3-compatible, or a local directory).
    AuditLogger(Box<AuditLoggerArgs>),
    /// Learn templates from task executions and fix suggestions from failures, exactly
    /// once through Kafka transactions (`pattern-templates`, `fix-suggestions`).
    PatternExtractor(Box<PatternExtractorArgs>),
    /// Threshold alerts on failures, failed transformations and low quality, exactly
    /// once to `agent-alerts` through Kafka transactions, then to PagerDuty, Slack and
    /// a webhook.
    AlertManager(Box<crate::consume_alerts::AlertManagerArgs>),
}

/// Settings every consumer takes (flags, or the seeds' environment variables).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RuntimeArgs {
    /// Kafka bootstrap servers, comma-separated.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "localhost:9092")]
    brokers: String,
    /// Consumer group id (default: the group's own, e.g. `db-writer-group`).
    #[arg(long = "group", env = "CONSUMER_GROUP_ID")]
    group_id: Option<String>,
    /// Events per batch.
    #[arg(long, env = "BATCH_SIZE", default_value_t = 100)]
    batch_size: usize,
    /// Longest a batch waits to fill, in ms (`MAX_LATENCY_MS` is accepted too).
    #[arg(long, env = "BATCH_TIMEOUT_MS")]
    batch_timeout_ms: Option<u64>,
    /// Longest shutdown may take to flush and commit, in ms.
    #[arg(long, env = "DRAIN_TIMEOUT_MS", default_value_t = 30_000)]
    drain_timeout_ms: u64,
    /// Port of /health, /ready, /metrics and /metrics.json.
    #[arg(long, env = "HTTP_PORT", default_value_t = 8080)]
    http_port: u16,
    /// Address the HTTP endpoints bind to.
    #[arg(long, env = "HTTP_HOST", default_value = "0.0.0.0")]
    http_host: std::net::IpAddr,
    /// Group session timeout, in ms.
    #[arg(long, env = "SESSION_TIMEOUT_MS", default_value_t = 10_000)]
    session_timeout_ms: u32,
    /// Where a partition the sink holds nothing of starts: `earliest`, `latest`, or a
    /// duration (`30m`, `24h`, `7d`: the first record not older than that).
    /// (Default `earliest`; the alert-manager's `1h`.)
    #[arg(long, env = "START_FROM")]
    pub(crate) start_from: Option<String>,
    /// Forget the offsets the sink stored for these topics before starting (after a
    /// topic was recreated); they start at --start-from. Comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "TOPIC")]
    reset_sink_offsets: Vec<String>,
    /// Every topic's sink offsets are forgotten (`agentbus dev` on a new log).
    #[arg(skip)]
    forget_sink_offsets: bool,
}

impl RuntimeArgs {
    /// The settings `agentbus dev` runs every group with: its own broker and 25 ms batch
    /// waits (an event shows up everywhere at once; a busy stream fills batches by size).
    pub(crate) fn dev(bootstrap: &str, new_log: bool) -> Self {
        Self {
            brokers: bootstrap.to_string(),
            group_id: None,
            batch_size: 100,
            batch_timeout_ms: Some(25),
            drain_timeout_ms: 10_000,
            http_port: 0,
            http_host: std::net::IpAddr::from([127, 0, 0, 1]),
            session_timeout_ms: 10_000,
            start_from: None,
            reset_sink_offsets: Vec::new(),
            forget_sink_offsets: new_log,
        }
    }

    pub(crate) fn http_addr(&self) -> SocketAddr {
        SocketAddr::new(self.http_host, self.http_port)
    }

    /// Whether BATCH_TIMEOUT_MS (or MAX_LATENCY_MS) was given.
    pub(crate) fn batch_timeout_given(&self) -> bool {
        self.batch_timeout_ms.is_some() || std::env::var_os("MAX_LATENCY_MS").is_some()
    }

    pub(crate) fn config(
        &self,
        default_group: &str,
        processor: &str,
        topics: Vec<String>,
    ) -> Result<RuntimeConfig, ConfigError> {
        let group = self
            .group_id
            .clone()
            .unwrap_or_else(|| default_group.to_string());
        let mut c = RuntimeConfig::new(self.brokers.clone(), group, topics, processor);
        c.batch_size = self.batch_size;
        let timeout_ms = match self.batch_timeout_ms {
            Some(ms) => ms,
            None => match std::env::var("MAX_LATENCY_MS") {
                Ok(v) => v.trim().parse().map_err(|_| {
                    ConfigError::new(
                        "MAX_LATENCY_MS",
                        format!("{v:?} is not a number of milliseconds"),
                    )
                })?,
                Err(_) => 500,
            },
        };
        c.batch_timeout = Duration::from_millis(timeout_ms);
        c.drain_timeout = Duration::from_millis(self.drain_timeout_ms);
        c.http_addr = SocketAddr::new(self.http_host, self.http_port);
        c.session_timeout_ms = self.session_timeout_ms;
        // -X, --client-config and the KAFKA_* security variables (main installs them).
        c.kafka_properties = agentbus_client::kafka_props::process().pairs().to_vec();
        c.start_from = self.start_from.as_deref().unwrap_or("earliest").parse()?;
        c.reset_sink_offsets = if self.forget_sink_offsets {
            c.topics.clone()
        } else {
            self.reset_sink_offsets.clone()
        };
        c.validate()?;
        Ok(c)
    }
}

/// Where PostgreSQL is.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DatabaseArgs {
    /// PostgreSQL URL; wins over the POSTGRES_* settings.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: Option<String>,
    /// PostgreSQL host.
    #[arg(long, env = "POSTGRES_HOST")]
    postgres_host: Option<String>,
    /// PostgreSQL port (5432).
    #[arg(long, env = "POSTGRES_PORT")]
    postgres_port: Option<u16>,
    /// Database name (omninode_bridge).
    #[arg(long, env = "POSTGRES_DATABASE")]
    postgres_database: Option<String>,
    /// User (postgres).
    #[arg(long, env = "POSTGRES_USER")]
    postgres_user: Option<String>,
    /// Password (only from the environment).
    #[arg(skip = std::env::var("POSTGRES_PASSWORD").ok())]
    postgres_password: Option<String>,
}

impl DatabaseArgs {
    pub(crate) fn settings(&self) -> DatabaseSettings {
        DatabaseSettings {
            url: self.database_url.clone(),
            host: self.postgres_host.clone(),
            port: self.postgres_port,
            database: self.postgres_database.clone(),
            user: self.postgres_user.clone(),
            password: self.postgres_password.clone(),
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct DbWriterArgs {
    #[command(flatten)]
    runtime: RuntimeArgs,
    #[command(flatten)]
    database: DatabaseArgs,
}

/// Where Redis is, and the aggregator's key layout.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RedisArgs {
    /// Redis URL (`redis://[:password@]host:port[/db]`); wins over REDIS_HOST/PORT.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub(crate) redis_url: Option<String>,
    /// Redis host (localhost).
    #[arg(long, env = "REDIS_HOST")]
    redis_host: Option<String>,
    /// Redis port (6379).
    #[arg(long, env = "REDIS_PORT")]
    redis_port: Option<u16>,
    /// Password (only from the environment).
    #[arg(skip = std::env::var("REDIS_PASSWORD").ok())]
    redis_password: Option<String>,
    /// Put before every key (several deployments on one Redis).
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "")]
    redis_key_prefix: String,
    /// Size of the tumbling windows, in seconds (must divide a minute).
    #[arg(long, env = "WINDOW_SIZE_SECONDS", default_value_t = 5)]
    window_size_seconds: u32,
}

impl RedisArgs {
    pub(crate) fn settings(&self) -> Result<RedisSettings, ConfigError> {
        let s = RedisSettings {
            url: self.redis_url.clone(),
            host: self.redis_host.clone(),
            port: self.redis_port,
            password: self.redis_password.clone(),
            prefix: self.redis_key_prefix.clone(),
            window_seconds: self.window_size_seconds,
        };
        s.validate()?;
        Ok(s)
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct MetricsAggregatorArgs {
    #[command(flatten)]
    runtime: RuntimeArgs,
    #[command(flatten)]
    redis: RedisArgs,
}

#[derive(Debug, clap::Args)]
pub(crate) struct AuditLoggerArgs {
    #[command(flatten)]
    pub(crate) runtime: RuntimeArgs,
    #[command(flatten)]
    pub(crate) archive: crate::audit_cmd::ArchiveArgs,
    /// Records per archive file.
    #[arg(long, env = "FLUSH_SIZE", default_value_t = 10_000)]
    pub(crate) flush_size: usize,
    /// Close a partition's open file after this long without records, in ms.
    #[arg(long, env = "ROTATE_IDLE_MS", default_value_t = 60_000)]
    pub(crate) rotate_idle_ms: u64,
}

#[derive(Debug, clap::Args)]
pub(crate) struct PatternExtractorArgs {
    #[command(flatten)]
    pub(crate) runtime: RuntimeArgs,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// This instance's name, stable across its restarts: the transactional id is
    /// `pattern-extractor-<instance>` (default: the host name).
    #[arg(long, env = "INSTANCE_ID")]
    pub(crate) instance: Option<String>,
}

/// Where the pattern-extractor's model is, and its thresholds.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ModelArgs {
    /// The model: a TOML file, or a directory holding `model.toml` (built-in defaults
    /// without it).
    #[arg(long, env = "ML_MODEL_PATH")]
    model_path: Option<std::path::PathBuf>,
    /// Executions a step sequence needs before it becomes a template (overrides the
    /// model's `templates.min_occurrences`).
    #[arg(long, env = "MIN_OCCURRENCES")]
    min_occurrences: Option<String>,
    /// Share of successful executions a template needs (`templates.min_success_rate`).
    #[arg(long, env = "MIN_SUCCESS_RATE")]
    min_success_rate: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {
    #[command(flatten)]
    database: DatabaseArgs,
}

pub(crate) async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let shutdown = crate::signals::shutdown()?;
    let stopped = stop_signal(shutdown);
    let http_addr = match &args.group {
        Group::DbWriter(a) => a.runtime.http_addr(),
        Group::MetricsAggregator(a) => a.runtime.http_addr(),
        Group::AuditLogger(a) => a.runtime.http_addr(),
        Group::PatternExtractor(a) => a.runtime.http_addr(),
        Group::AlertManager(a) => a.runtime.http_addr(),
    };
    let mut service = Service::new(http_addr);
    let groups = match args.group {
        Group::DbWriter(a) => {
            // Settings first: a bad one stops start-up before any wait for the database.
            let config = db_writer_config(&a.runtime)?;
            let options = a.database.settings().connect_options()?;
            migrate_when_up(&options, stopped()).await?;
            vec![add_db_writer(config, options, &mut service).await?]
        }
        Group::MetricsAggregator(a) => {
            vec![add_metrics_aggregator(&a.runtime, &a.redis, &mut service)?]
        }
        Group::AuditLogger(a) => vec![add_audit_logger(&a, &mut service).await?],
        Group::PatternExtractor(a) => vec![add_pattern_extractor(&a, &mut service).await?],
        Group::AlertManager(a) => crate::consume_alerts::add(&a, &mut service).await?,
    };
    service.run(stopped()).await?;
    for m in groups {
        tracing::info!(
            "{} stopped: {} consumed, {} written, {} sent to the DLQ",
            m.group(),
            m.events_received(),
            m.events_written(),
            m.dead_letters()
        );
    }
    Ok(())
}

/// A shutdown future that several waits can share.
fn stop_signal(
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Clone {
    let (tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        Box::pin(async move {
            let _ = rx.wait_for(|s| *s).await;
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
    };
    stopped
}

pub(crate) async fn add_pattern_extractor(
    args: &PatternExtractorArgs,
    service: &mut Service,
) -> anyhow::Result<Arc<Metrics>> {
    let mut config = args.runtime.config(
        pattern_extractor::GROUP,
        "pattern-extractor",
        pattern_extractor::topics(),
    )?;
    config.carriers = pattern_extractor::carriers();
    let model = Model::load(
        args.model.model_path.as_deref(),
        args.model.min_occurrences.as_deref(),
        args.model.min_success_rate.as_deref(),
    )?;
    let instance = match args.instance.clone().filter(|i| !i.trim().is_empty()) {
        Some(i) => i,
        None => hostname(),
    };
    let settings = ExtractorSettings {
        brokers: config.brokers.clone(),
        instance,
        model,
    };
    let sink = ExtractorSink::new(settings)
        .await
        .context("KAFKA_BROKERS: cannot start the transactional producer")?;
    Ok(service.add(config, sink))
}

pub(crate) fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "0".to_string())
}

/// Adds the audit-logger; the archive's place.
pub(crate) async fn add_audit_logger(
    args: &AuditLoggerArgs,
    service: &mut Service,
) -> anyhow::Result<Arc<Metrics>> {
    let config = args
        .runtime
        .config(audit_logger::GROUP, "audit-logger", all_topics())?;
    if !(1..=10_000_000).contains(&args.flush_size) {
        return Err(ConfigError::new(
            "FLUSH_SIZE",
            format!("{} is outside 1..=10000000", args.flush_size),
        )
        .into());
    }
    if args.rotate_idle_ms == 0 {
        return Err(ConfigError::new("ROTATE_IDLE_MS", "must be at least 1").into());
    }
    let settings = args.archive.settings();
    let (archive, place) = settings.open()?;
    // A wrong bucket, refused credentials or an unwritable directory stop here.
    if let Err(e) = archive.probe().await {
        let e = e.to_string();
        anyhow::bail!("{}: cannot write to {place}: {e}", settings.setting_for(&e));
    }
    tracing::info!("archiving to {place}");
    let stats = AuditStats::default();
    let rotation = Rotation {
        records: args.flush_size,
        idle: Duration::from_millis(args.rotate_idle_ms),
        ..Rotation::default()
    };
    let sink = ArchiveSink::new(archive, rotation, stats.clone());
    let metrics = service.add(config, sink);
    metrics.attach_audit(stats);
    Ok(metrics)
}

fn all_topics() -> Vec<String> {
    Topic::ALL.iter().map(|t| t.name().to_string()).collect()
}

/// Adds the metrics-aggregator and its `/api/metrics`.
pub(crate) fn add_metrics_aggregator(
    runtime: &RuntimeArgs,
    redis: &RedisArgs,
    service: &mut Service,
) -> anyhow::Result<Arc<Metrics>> {
    let config = runtime.config(
        metrics_aggregator::GROUP,
        "metrics-aggregator",
        all_topics(),
    )?;
    let settings = redis.settings()?;
    let sink = RedisSink::new(&settings)?;
    let api = Api::new(
        &settings.url()?,
        sink.keys().clone(),
        settings.window_seconds,
    )
    .context("REDIS_URL")?;
    service.add_routes(api.router());
    Ok(service.add(config, sink))
}

/// Applies the migrations, waiting for the database rather than failing (systemd would
/// only restart us into the same wait); returns early when `stopped` completes.
async fn migrate_when_up(
    options: &PgConnectOptions,
    stopped: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut backoff = Duration::from_millis(200);
    tokio::pin!(stopped);
    loop {
        match db_writer::migrate(options).await {
            Ok(()) => return Ok(()),
            Err(SinkError::Fatal(e)) => anyhow::bail!("DATABASE_URL: {e}"),
            Err(e) => {
                tracing::warn!("cannot apply the migrations yet: {e}; retrying in {backoff:?}");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = &mut stopped => return Ok(()),
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The db-writer's settings: the eight topics and the derived ones (templates, fix
/// suggestions, alerts).
pub(crate) fn db_writer_config(runtime: &RuntimeArgs) -> Result<RuntimeConfig, ConfigError> {
    let mut topics = all_topics();
    topics.extend(Topic::DERIVED.iter().map(|t| t.name().to_string()));
    runtime.config(db_writer::GROUP, "db-writer", topics)
}

/// Adds the db-writer (its schema applied already).
pub(crate) async fn add_db_writer(
    config: RuntimeConfig,
    options: PgConnectOptions,
    service: &mut Service,
) -> anyhow::Result<Arc<Metrics>> {
    // They may not exist yet when the pattern-extractor has never run.
    if let Err(e) = agentbus_consumers::pattern_extractor::ensure_topics(&config.brokers).await {
        tracing::warn!("cannot create the pattern-extractor's topics yet: {e}");
    }
    Ok(service.add(config, PgSink::new(db_writer::pool(options))))
}

pub(crate) async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let options = args.database.settings().connect_options()?;
    db_writer::migrate(&options)
        .await
        .context("DATABASE_URL: cannot apply the migrations")?;
    let applied = db_writer::MIGRATOR.iter().count();
    println!("migrations applied: {applied} (schema up to date)");
    Ok(())
}

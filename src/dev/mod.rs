//! `agentbus dev`: the whole agent-observability system in one process. The broker on
//! 127.0.0.1:9092 with the deployment's topics, and the five consumer groups behind one
//! HTTP port with a status page at `/`. PostgreSQL and Redis come from the settings,
//! else the local servers, else private ones under the data directory; a group whose
//! dependency cannot be had is off, with the reason, and the rest runs.

mod services;
mod status;

use crate::consume_alerts::{AlertArgs, AlertManagerArgs};
use crate::consume_cmd::{
    self, AuditLoggerArgs, DatabaseArgs, ModelArgs, PatternExtractorArgs, RedisArgs, RuntimeArgs,
};
use agentbus_broker::{Broker, BrokerConfig, StorageConfig};
use agentbus_consumers::config::ConfigError;
use agentbus_consumers::metrics::Metrics;
use agentbus_consumers::Service;
use anyhow::Context;
use status::{GroupEntry, Status};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub(crate) struct DevArgs {
    /// Keep the broker's log, a private PostgreSQL and Redis, and the audit archive
    /// under DIR (they survive restarts).
    #[arg(long, default_value = "data", conflicts_with = "memory")]
    data_dir: PathBuf,
    /// Keep nothing: the broker in memory, private servers and the archive in a
    /// temporary directory removed at exit.
    #[arg(long)]
    memory: bool,
    /// The broker's address.
    #[arg(long, env = "AGENTBUS_LISTEN", default_value = "127.0.0.1:9092")]
    listen: String,
    /// Port of the status page, /metrics, /health, /ready and /api/metrics (0: any).
    #[arg(long, env = "HTTP_PORT", default_value_t = 8080)]
    http_port: u16,
    /// Address the HTTP endpoints bind to.
    #[arg(long, env = "HTTP_HOST", default_value = "127.0.0.1")]
    http_host: std::net::IpAddr,
    /// Close an idle archive file after this long, in ms (short, so that an event shows
    /// up in the archive within seconds).
    #[arg(long, env = "ROTATE_IDLE_MS", default_value_t = 2_000)]
    rotate_idle_ms: u64,
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    redis: RedisArgs,
    #[command(flatten)]
    archive: crate::audit_cmd::ArchiveArgs,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    alerts: AlertArgs,
}

/// Where the data lives: the given directory, or a temporary one removed at exit.
#[derive(Debug)]
struct DataDir {
    path: PathBuf,
    temporary: bool,
}

impl DataDir {
    fn new(args: &DevArgs) -> anyhow::Result<Self> {
        let (path, temporary) = if args.memory {
            let dir = std::env::temp_dir().join(format!("agentbus-dev-{}", std::process::id()));
            (dir, true)
        } else {
            (args.data_dir.clone(), false)
        };
        std::fs::create_dir_all(&path)
            .with_context(|| format!("--data-dir: cannot create {}", path.display()))?;
        let path = path
            .canonicalize()
            .with_context(|| format!("--data-dir: {}", path.display()))?;
        Ok(Self { path, temporary })
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A group as adding it went: running, or off when it failed for any reason but a bad
/// setting (which stops start-up).
fn entry(
    name: &'static str,
    sink: String,
    added: anyhow::Result<Vec<Arc<Metrics>>>,
) -> anyhow::Result<GroupEntry> {
    match added {
        Ok(members) => Ok(GroupEntry {
            name,
            sink,
            members,
            off: None,
        }),
        Err(e) if e.downcast_ref::<ConfigError>().is_some() => Err(e),
        Err(e) => Ok(off(name, sink, format!("{e:#}"))),
    }
}

/// A group whose dependency cannot be had.
fn off(name: &'static str, sink: String, reason: String) -> GroupEntry {
    GroupEntry {
        name,
        sink,
        members: Vec::new(),
        off: Some(reason),
    }
}

async fn start_broker(args: &DevArgs, data: &DataDir) -> anyhow::Result<Broker> {
    let mut config = BrokerConfig {
        listen: args.listen.clone(),
        ..BrokerConfig::default()
    };
    config.storage = if args.memory {
        StorageConfig::Memory
    } else {
        StorageConfig::Disk(data.path.join("kafka"))
    };
    // Every group has one member here: nobody to wait for before the first assignment.
    config.group.initial_rebalance_delay = Duration::ZERO;
    config.validate()?;
    Broker::start(config).await.with_context(|| {
        format!(
            "AGENTBUS_LISTEN: cannot start the broker on {}",
            args.listen
        )
    })
}

pub(crate) async fn run(args: DevArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let shutdown = crate::signals::shutdown()?;
    let data = DataDir::new(&args)?;
    let http_addr = SocketAddr::new(args.http_host, args.http_port);
    let listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("HTTP_PORT: cannot listen on {http_addr}"))?;
    let http_addr = listener.local_addr()?;

    // A new log has new topic ids: offsets a sink kept from an earlier one (a local
    // PostgreSQL or Redis outlives `--memory` or a removed data directory) are forgotten,
    // rather than refused as belonging to another log.
    let new_log = args.memory || !data.path.join("kafka").exists();
    let broker = start_broker(&args, &data).await?;
    let bootstrap = broker.bootstrap();
    let topics = agentbus_client::catalog::deployment();
    crate::topics_cmd::apply_specs(
        &bootstrap,
        Duration::from_secs(10),
        &topics,
        false,
        crate::topics_cmd::Report::QUIET,
    )
    .await
    .context("cannot create the deployment's topics")?;

    let (pg, redis) = tokio::join!(
        services::postgres(&args.database, &data.path),
        services::redis(&args.redis, &data.path)
    );
    let (pg, redis) = (pg?, redis?);
    let runtime = RuntimeArgs::dev(&bootstrap, new_log);
    let mut service = Service::new(http_addr);
    let mut groups = Vec::new();

    groups.push(match &pg {
        Ok(pg) => {
            let added = async {
                let config = consume_cmd::db_writer_config(&runtime)?;
                consume_cmd::add_db_writer(config, pg.options.clone(), &mut service).await
            };
            entry(
                "db-writer",
                format!("PostgreSQL {}", pg.shown),
                added.await.map(|m| vec![m]),
            )?
        }
        Err(reason) => off("db-writer", "PostgreSQL".into(), reason.clone()),
    });
    groups.push(match &redis {
        Ok(r) => {
            let added = consume_cmd::add_metrics_aggregator(&runtime, &r.args, &mut service);
            entry(
                "metrics-aggregator",
                format!("Redis {}", r.shown),
                added.map(|m| vec![m]),
            )?
        }
        Err(reason) => off("metrics-aggregator", "Redis".into(), reason.clone()),
    });

    let mut archive = args.archive.clone();
    if archive.audit_url.is_none() && archive.s3_bucket.is_none() {
        let dir = data.path.join("audit");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        archive.audit_url = Some(format!("file://{}", dir.display()));
    }
    let place = archive
        .s3_bucket
        .as_ref()
        .map(|b| format!("s3://{b}"))
        .or(archive.audit_url.clone())
        .unwrap_or_default();
    // The archive's object names are its offsets: they cannot be forgotten, and under
    // a new data directory there are none.
    let audit = AuditLoggerArgs {
        runtime: RuntimeArgs::dev(&bootstrap, false),
        archive,
        flush_size: 10_000,
        rotate_idle_ms: args.rotate_idle_ms,
    };
    let added = consume_cmd::add_audit_logger(&audit, &mut service).await;
    groups.push(entry(
        "audit-logger",
        format!("archive {place}"),
        added.map(|m| vec![m]),
    )?);

    let extractor = PatternExtractorArgs {
        runtime: runtime.clone(),
        model: args.model.clone(),
        instance: Some("dev".into()),
    };
    let added = consume_cmd::add_pattern_extractor(&extractor, &mut service).await;
    groups.push(entry(
        "pattern-extractor",
        "topics pattern-templates, fix-suggestions".into(),
        added.map(|m| vec![m]),
    )?);

    let mut alerts = args.alerts.clone();
    alerts.instance = Some("dev".into());
    let destinations = alerts.destinations()?;
    let destinations: Vec<&str> = destinations.iter().map(|d| d.name()).collect();
    let sent_to = if destinations.is_empty() {
        "logged; set PAGERDUTY_API_KEY, SLACK_WEBHOOK_URL or ALERT_WEBHOOK_URL to send".to_string()
    } else {
        format!("sent to {}", destinations.join(", "))
    };
    let alert_manager = AlertManagerArgs {
        runtime: runtime.clone(),
        alerts,
    };
    let added = crate::consume_alerts::add(&alert_manager, &mut service).await;
    groups.push(entry(
        "alert-manager",
        format!("topic agent-alerts, {sent_to}"),
        added,
    )?);

    let status = Status::new(bootstrap.clone(), broker.inspect(), groups);
    service.add_routes(status.router());
    status.spawn_sampler();
    print_summary(&bootstrap, topics.len(), &data, &status, http_addr, &redis);
    spawn_ready_report(status.clone(), started);

    // A group that fails for good stops the others; the broker and the servers are
    // stopped cleanly either way.
    let result = service.run_on(listener, shutdown).await;
    tracing::info!("consumers stopped; flushing the broker");
    broker.shutdown().await;
    // Stops the private servers (pg_ctl stop, SIGTERM to redis-server): off the runtime.
    let servers = (
        pg.ok().and_then(|p| p.server),
        redis.ok().and_then(|r| r.server),
    );
    tokio::task::spawn_blocking(move || drop(servers)).await?;
    result?;
    println!("agentbus dev stopped");
    Ok(())
}

fn print_summary(
    bootstrap: &str,
    topics: usize,
    data: &DataDir,
    status: &Status,
    http: SocketAddr,
    redis: &Result<services::Redis, String>,
) {
    let place = if data.temporary {
        "nothing is kept (--memory)".to_string()
    } else {
        format!("data in {}", data.path.display())
    };
    let mut out =
        format!("agentbus dev: the agent-observability pipeline on this machine ({place})\n");
    out += &format!(
        "  {:<20} {bootstrap} ({topics} topics)\n",
        "Kafka bootstrap"
    );
    for g in status.groups() {
        match &g.off {
            None => out += &format!("  {:<20} -> {}\n", g.name, g.sink),
            Some(reason) => out += &format!("  {:<20} OFF: {reason}\n", g.name),
        }
    }
    let base = format!("http://{http}");
    out += &format!("  {:<20} {base}/\n", "status page");
    out += &format!("  {:<20} {base}/metrics  {base}/health\n", "metrics");
    if let Ok(r) = redis {
        let prefix = r.args.settings().map(|s| s.prefix).unwrap_or_default();
        out += &format!(
            "  {:<20} {base}/api/metrics  (keys {prefix}metrics:*)\n",
            "windows"
        );
    }
    out += "Ctrl-C stops everything (the consumers drain, the broker flushes).";
    println!("{out}");
    for g in status.groups() {
        if let Some(reason) = &g.off {
            tracing::warn!("{} is off: {reason}", g.name);
        }
    }
}

/// Prints, once, how long it took until every running group was ready.
fn spawn_ready_report(status: Arc<Status>, started: Instant) {
    tokio::spawn(async move {
        loop {
            let running: Vec<&GroupEntry> =
                status.groups().iter().filter(|g| g.off.is_none()).collect();
            if running.iter().all(|g| g.state() == "ready") {
                println!(
                    "all {} running groups ready in {} ms",
                    running.len(),
                    started.elapsed().as_millis()
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    });
}

//! `agentbus`: the broker, the pipeline's producers and consumers, and admin tools.

mod audit_cmd;
mod bench_cmd;
mod broker_cmd;
mod cluster_args;
mod consume_alerts;
mod consume_cmd;
mod control_api;
mod control_cmd;
mod dev;
mod groups;
mod log_cmd;
mod logs;
mod metrics_cmd;
mod process;
mod replay_cmd;
mod schema_cmd;
mod signals;
mod spool_cmd;
mod topics_cmd;
mod verify_cmd;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "agentbus",
    version,
    about = "Kafka-compatible broker for tests and local development"
)]
struct Cli {
    /// Log format: `text` (readable) or `json` (one object per line).
    #[arg(
        long,
        global = true,
        env = "AGENTBUS_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: logs::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole pipeline on this machine: the broker on 127.0.0.1:9092, the topics, the
    /// five consumer groups and a status page on HTTP_PORT (8080).
    Dev(Box<dev::DevArgs>),
    /// Run the Kafka-compatible broker.
    Broker(Box<broker_cmd::BrokerArgs>),
    /// Drive a broker started with `--control`: stop and start nodes, move leaders and
    /// coordinators, inject faults, move the clock, read the requests it saw.
    Control(control_cmd::ControlArgs),
    /// Measure the broker, the consumers, `dev` and `log` (runs `agentbus-bench`, built
    /// with `cargo build --release -p agentbus-benches`).
    #[command(disable_help_flag = true)]
    Bench(bench_cmd::BenchArgs),
    /// Run a consumer group: `consume db-writer` (PostgreSQL), `consume metrics-aggregator` (Redis).
    Consume(consume_cmd::ConsumeArgs),
    /// Apply the PostgreSQL migrations (the db-writer also applies them at start-up).
    Migrate(consume_cmd::MigrateArgs),
    /// Read the audit-logger's archive: `audit ls` lists the files, `audit cat` prints the records.
    Audit(Box<audit_cmd::AuditArgs>),
    /// Print the metrics-aggregator's windows and rollups from Redis as a table.
    Metrics(Box<metrics_cmd::MetricsArgs>),
    /// Inspect consumer groups: list, describe (offsets and lag), delete, reset offsets.
    Groups(groups::GroupsArgs),
    /// Publish an agent-observability event (the seeds' skills), e.g. `log routing-decision …`.
    Log(Box<log_cmd::LogArgs>),
    /// Print the JSON Schema of a topic's events.
    Schema(schema_cmd::SchemaArgs),
    /// Events `agentbus log` spooled while the broker did not answer: `status`, `flush`.
    Spool(spool_cmd::SpoolArgs),
    /// Manage topics: `topics apply deploy/topics.toml` creates or updates them.
    Topics(topics_cmd::TopicsArgs),
    /// Print a topic's events between two instants (JSON lines or a table).
    Replay(Box<replay_cmd::ReplayArgs>),
    /// The dual-write check: the events in Kafka against the rows in PostgreSQL.
    Verify(Box<verify_cmd::VerifyArgs>),
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
pub(crate) fn emit(s: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to stdout")
        }
        _ => Ok(()),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    process::run(cli.log_format, async {
        match cli.command {
            Command::Dev(args) => dev::run(*args).await,
            Command::Broker(args) => broker_cmd::run(*args).await,
            Command::Control(args) => control_cmd::run(args).await,
            Command::Bench(args) => bench_cmd::run(args),
            Command::Consume(args) => consume_cmd::run(args).await,
            Command::Migrate(args) => consume_cmd::migrate(args).await,
            Command::Groups(args) => groups::run(args).await,
            Command::Metrics(args) => metrics_cmd::run(*args).await,
            Command::Audit(args) => audit_cmd::run(*args).await,
            Command::Log(args) => log_cmd::run(*args).await,
            Command::Schema(args) => schema_cmd::run(args),
            Command::Spool(args) => spool_cmd::run(args).await,
            Command::Topics(args) => topics_cmd::run(args).await,
            Command::Verify(args) => verify_cmd::run(*args).await,
            Command::Replay(args) => replay_cmd::run(*args).await,
        }
    })
}

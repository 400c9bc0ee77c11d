//! `agentbus`: the broker, the pipeline's producers and consumers, and admin tools.

mod acls_cmd;
mod audit_cmd;
mod bench_cmd;
mod broker_cmd;
mod certs_cmd;
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
mod users_cmd;
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
    /// A librdkafka property for every Kafka client of this command, `key=value`
    /// (repeatable; wins over --client-config and the KAFKA_* variables).
    #[arg(short = 'X', global = true, value_name = "KEY=VALUE")]
    properties: Vec<String>,
    /// A librdkafka properties file for every Kafka client (as the kafka-* tools'
    /// --command-config): `security.protocol=SASL_SSL`, `sasl.mechanism=…`, …
    #[arg(long, global = true, env = "KAFKA_CLIENT_CONFIG", value_name = "FILE")]
    client_config: Option<std::path::PathBuf>,
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
    /// SCRAM users over the wire, on agentbus or any Kafka: add, list, delete.
    Users(users_cmd::UsersArgs),
    /// ACLs over the wire, with kafka-acls' flags: add, list, remove.
    Acls(acls_cmd::AclsArgs),
    /// Certificates for local TLS: `certs dev` writes a CA, a broker certificate and
    /// client certificates.
    Certs(certs_cmd::CertsArgs),
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

/// The Kafka client properties of this process: the file, the `KAFKA_*` security
/// variables, then `-X`.
fn client_props(
    cli: &Cli,
) -> Result<agentbus_client::kafka_props::ClientProps, agentbus_client::kafka_props::PropsError> {
    use agentbus_client::kafka_props::{ClientProps, CLIENT_CONFIG_VARIABLE};
    // The file comes from the flag (or its variable, which clap reads), not twice.
    let mut props = ClientProps::from_lookup(|k| {
        if k == CLIENT_CONFIG_VARIABLE {
            None
        } else {
            std::env::var(k).ok()
        }
    })?;
    if let Some(path) = &cli.client_config {
        let mut from_file = ClientProps::default();
        from_file.load_file(path, "--client-config")?;
        for (k, v) in props.pairs() {
            from_file.set(k, v);
        }
        props = from_file;
    }
    props.set_pairs(&cli.properties)?;
    Ok(props)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match client_props(&cli) {
        Ok(props) => agentbus_client::kafka_props::install(props),
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    }
    process::run(cli.log_format, async {
        match cli.command {
            Command::Dev(args) => dev::run(*args).await,
            Command::Broker(args) => broker_cmd::run(*args).await,
            Command::Control(args) => control_cmd::run(args).await,
            Command::Certs(args) => certs_cmd::run(args),
            Command::Users(args) => users_cmd::run(args).await,
            Command::Acls(args) => acls_cmd::run(args).await,
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

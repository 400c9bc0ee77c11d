//! `agentbus-broker`: the broker alone, with the flags, variables and TOML file of
//! `agentbus broker`, in a binary that links nothing else (no Kafka client, no PostgreSQL,
//! Redis or object-store code), so it starts and idles in less memory.

#[path = "../broker_cmd.rs"]
mod broker_cmd;
#[path = "../control_api.rs"]
mod control_api;
#[path = "../logs.rs"]
mod logs;
#[path = "../process.rs"]
mod process;
#[path = "../signals.rs"]
mod signals;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "agentbus-broker",
    version,
    about = "Kafka-compatible broker for tests and local development"
)]
struct Cli {
    /// Log format: `text` (readable) or `json` (one object per line).
    #[arg(long, env = "AGENTBUS_LOG_FORMAT", default_value = "text")]
    log_format: logs::LogFormat,
    #[command(flatten)]
    broker: broker_cmd::BrokerArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    process::run(cli.log_format, broker_cmd::run(cli.broker))
}

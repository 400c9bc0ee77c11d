//! The flags every admin command takes to reach a cluster.

use std::time::Duration;

/// `--bootstrap-server` (or `KAFKA_BROKERS`) and `--timeout-ms`.
#[derive(Debug, clap::Args)]
pub(crate) struct ClusterArgs {
    /// Kafka bootstrap servers (HOST:PORT[,HOST:PORT…]).
    #[arg(
        long,
        global = true,
        env = "KAFKA_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    pub(crate) bootstrap_server: String,
    /// Timeout of each request to the cluster, in milliseconds.
    #[arg(long, global = true, default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    timeout_ms: u64,
}

impl ClusterArgs {
    /// The timeout of each request.
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

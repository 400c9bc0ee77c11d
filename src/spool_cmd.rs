//! `agentbus spool status|flush`: the events `agentbus log` spooled while the broker did
//! not answer, and delivering them (in order, with their original ids and timestamps).

use agentbus_client::spool::Spool;
use agentbus_client::{Producer, ProducerConfig};
use anyhow::Context as _;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub(crate) struct SpoolArgs {
    #[command(subcommand)]
    what: What,
    /// The spool directory (default: `AGENTBUS_SPOOL_DIR`, else the user's state
    /// directory).
    #[arg(long, global = true)]
    dir: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// How many events wait, per topic, and the oldest.
    Status,
    /// Deliver every spooled event, oldest first.
    Flush {
        /// Kafka bootstrap servers (default: `KAFKA_BROKERS`).
        #[arg(long)]
        bootstrap_server: Option<String>,
    },
}

pub(crate) fn spool(dir: Option<std::path::PathBuf>) -> Spool {
    Spool::new(dir.unwrap_or_else(Spool::default_dir))
}

pub(crate) async fn run(args: SpoolArgs) -> anyhow::Result<()> {
    let spool = spool(args.dir);
    match args.what {
        What::Status => {
            let status = spool.status()?;
            let mut out = String::new();
            for s in &status {
                let oldest = s
                    .oldest_ms
                    .and_then(chrono::DateTime::from_timestamp_millis)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .unwrap_or_else(|| "-".into());
                out.push_str(&format!(
                    "{}\t{} waiting\toldest {oldest}\t{} bytes",
                    s.topic, s.waiting, s.bytes
                ));
                if s.torn_bytes > 0 {
                    out.push_str(&format!(
                        "\ta torn last entry of {} bytes (dropped at the next append)",
                        s.torn_bytes
                    ));
                }
                out.push('\n');
            }
            if status.iter().all(|s| s.waiting == 0) {
                out.push_str(&format!("nothing waits in {}\n", spool.dir().display()));
            }
            crate::emit(&out)
        }
        What::Flush { bootstrap_server } => {
            let mut config = ProducerConfig::from_env();
            for w in &config.warnings {
                eprintln!("warning: {w}");
            }
            if let Some(b) = bootstrap_server {
                config.brokers = b;
            }
            config.client_id = "agentbus-spool".into();
            let producer = Producer::new(config).context("producer")?;
            let started = Instant::now();
            // Without it the first send waits for librdkafka's next metadata round.
            producer
                .connect(None)
                .await
                .context("the broker does not answer; the events stay spooled")?;
            let sent = drain(&producer, &spool, usize::MAX, Duration::MAX).await?;
            let left: usize = spool.status()?.iter().map(|s| s.waiting).sum();
            let secs = started.elapsed().as_secs_f64();
            crate::emit(&format!(
                "delivered {sent} spooled event(s) in {secs:.2} s ({:.0}/s); {left} still waiting\n",
                sent as f64 / secs.max(1e-9)
            ))?;
            if left > 0 {
                anyhow::bail!("{left} spooled event(s) could not be delivered");
            }
            Ok(())
        }
    }
}

/// Delivers up to `max` spooled events (all topics, oldest first within each) through
/// `producer`, stopping at the first failure or after `within`; how many were delivered.
pub(crate) async fn drain(
    producer: &Producer,
    spool: &Spool,
    max: usize,
    within: Duration,
) -> anyhow::Result<usize> {
    let handle = tokio::runtime::Handle::current();
    Ok(tokio::task::block_in_place(|| {
        agentbus_client::spool::deliver(spool, producer, &handle, max, within)
    })?)
}

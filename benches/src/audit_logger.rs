//! `agentbus bench audit-logger`: sustained events/s of `agentbus consume audit-logger`
//! into a local directory (or an S3-compatible server given with `--s3-endpoint`),
//! bytes per event in the archive, and the logger's memory with every partition's
//! file open (`--partitions`, 60 by default).

use super::consumer_run::{self, Shape};
use anyhow::Context;

#[derive(Debug, Clone, clap::Args)]
pub(super) struct AuditLoggerBench {
    #[command(flatten)]
    shape: Shape,
    /// Archive to this S3-compatible server instead of a local directory.
    #[arg(long)]
    s3_endpoint: Option<String>,
    /// The bucket on `--s3-endpoint` (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY).
    #[arg(long, default_value = "agent-observability-audit")]
    s3_bucket: String,
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                dir_bytes(&p)
            } else if p.extension().is_some_and(|x| x == "parquet") {
                e.metadata().map_or(0, |m| m.len())
            } else {
                0
            }
        })
        .sum()
}

pub(super) fn run(args: &AuditLoggerBench) -> anyhow::Result<()> {
    let mut shape = args.shape.clone();
    shape.partitions.get_or_insert(60);
    let broker = consumer_run::broker_with_events(&shape)?;
    let into = if args.s3_endpoint.is_some() {
        "S3"
    } else {
        "a local directory"
    };
    println!("{}", consumer_run::header(into, "batch", &["bytes/event"]));
    for &batch in &shape.batch_sizes {
        let dir = std::env::temp_dir().join(format!(
            "agentbus-bench-audit-{}-{batch}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).context("cannot create the archive directory")?;
        let mut env = vec![
            ("FLUSH_SIZE", "10000".to_string()),
            ("ROTATE_IDLE_MS", "200".to_string()),
            (
                "S3_PREFIX",
                format!("bench-{}-{batch}/", std::process::id()),
            ),
        ];
        match &args.s3_endpoint {
            Some(endpoint) => {
                env.push(("S3_ENDPOINT", endpoint.clone()));
                env.push(("S3_BUCKET", args.s3_bucket.clone()));
            }
            None => env.push(("AUDIT_URL", format!("file://{}", dir.display()))),
        }
        let run = consumer_run::measure(
            "audit-logger",
            &broker.bootstrap,
            batch,
            shape.count,
            "records_archived",
            &env,
        );
        let bytes = dir_bytes(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        let run = run?;
        let per_event = if args.s3_endpoint.is_some() || bytes == 0 {
            "n/a".to_string()
        } else {
            format!("{:.1}", bytes as f64 / shape.count as f64)
        };
        println!("{} {per_event} |", run.row());
    }
    Ok(())
}

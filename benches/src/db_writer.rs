//! `agentbus bench db-writer`: sustained events/s of `agentbus consume db-writer` into
//! PostgreSQL, its batch write p99 and its memory, for each batch size asked for; a
//! fresh database for every run.

use super::consumer_run::{self, Shape};
use anyhow::{bail, Context};
use std::process::Command;

#[derive(Debug, Clone, clap::Args)]
pub(super) struct DbWriterBench {
    #[command(flatten)]
    shape: Shape,
    /// A PostgreSQL URL whose user may create databases; each run gets its own.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
}

fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
        .output()
        .context("cannot run psql (the bench creates its databases with it)")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn database_url(admin: &str, name: &str) -> String {
    match admin.rsplit_once('/') {
        Some((base, _)) if base.matches('/').count() >= 2 => format!("{base}/{name}"),
        _ => format!("{admin}/{name}"),
    }
}

pub(super) fn run(args: &DbWriterBench) -> anyhow::Result<()> {
    let broker = consumer_run::broker_with_events(&args.shape)?;
    println!("{}", consumer_run::header("PostgreSQL", "batch write", &[]));
    for &batch in &args.shape.batch_sizes {
        let name = format!("agentbus_bench_{}_{batch}", std::process::id());
        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        psql(&args.database_url, &drop)?;
        psql(&args.database_url, &format!("CREATE DATABASE {name}"))?;
        let url = database_url(&args.database_url, &name);
        let run = consumer_run::measure(
            "db-writer",
            &broker.bootstrap,
            batch,
            args.shape.count,
            "messages_inserted",
            &[("DATABASE_URL", url)],
        );
        let _ = psql(&args.database_url, &drop);
        println!("{}", run?.row());
    }
    Ok(())
}

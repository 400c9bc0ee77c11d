//! `agentbus bench dev`: `agentbus dev` as a user starts it: the time until every group
//! is ready, its resident memory with the five groups idle, and the time from an
//! `agentbus log` call to the event's row in PostgreSQL.

use super::percentile;
use agentbus_client::Topic;
use agentbus_consumers::db_writer::{self, verify, DatabaseSettings};
use anyhow::{bail, Context};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, clap::Args)]
pub(super) struct DevBench {
    /// `agentbus log` calls whose row is waited for, one after the other.
    #[arg(long, default_value_t = 100)]
    events: usize,
    /// Seconds the groups idle before the memory is read.
    #[arg(long, default_value_t = 5)]
    idle_seconds: u64,
}

/// Stops the child with SIGTERM (as Ctrl-C) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

fn log_call(exe: &std::path::Path, bootstrap: &str, id: &str) -> anyhow::Result<()> {
    let out = Command::new(exe)
        .args(super::log::ROUTING_DECISION)
        .args(["--event-id", id, "--bootstrap-server", bootstrap])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("cannot run agentbus log")?;
    if !out.status.success() {
        bail!(
            "agentbus log failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

pub(super) fn run(args: &DevBench) -> anyhow::Result<()> {
    let exe = super::agentbus_exe()?;
    let started = Instant::now();
    let mut child = Command::new(&exe)
        .args([
            "dev",
            "--memory",
            "--listen",
            "127.0.0.1:0",
            "--http-port",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start agentbus dev")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let dev = Running(child);
    let (lines, from_dev) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let (mut bootstrap, mut database) = (None, None);
    let (ready, own_ms) = loop {
        let line = from_dev
            .recv_timeout(Duration::from_secs(120))
            .context("agentbus dev printed nothing for 120 s (or exited)")?;
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Kafka", "bootstrap", addr, ..] => bootstrap = Some(addr.to_string()),
            ["db-writer", "->", "PostgreSQL", url] => database = Some(url.to_string()),
            ["db-writer", "OFF:", ..] => bail!("the db-writer is off: {line}"),
            ["all", n, "running", "groups", "ready", "in", ms, "ms"] => {
                if *n != "5" {
                    bail!("only {n} groups run: {line}");
                }
                break (started.elapsed(), ms.parse::<u64>().ok());
            }
            _ => {}
        }
    };
    let bootstrap = bootstrap.context("no bootstrap address in the summary")?;
    // A password is not printed; DATABASE_URL has it.
    let url = std::env::var("DATABASE_URL")
        .ok()
        .or(database)
        .context("no PostgreSQL in the summary")?;
    std::thread::sleep(Duration::from_secs(args.idle_seconds));
    let rss = rss_kib(dev.0.id())?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let options = DatabaseSettings {
        url: Some(url),
        ..DatabaseSettings::default()
    }
    .connect_options()?;
    let pool = db_writer::pool(options);
    let base = std::process::id();
    let mut micros = Vec::with_capacity(args.events);
    for i in 0..args.events {
        let id = format!("be000000-{:04x}-4000-8000-{:012}", base & 0xffff, i);
        let t = Instant::now();
        log_call(&exe, &bootstrap, &id)?;
        loop {
            if runtime.block_on(verify::has_row(&pool, Topic::AgentRoutingDecisions, &id))? {
                break;
            }
            if t.elapsed() > Duration::from_secs(30) {
                bail!("event {id} did not reach PostgreSQL within 30 s");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        micros.push(t.elapsed().as_micros() as u64);
    }
    micros.sort_unstable();
    println!(
        "agentbus dev: all five groups ready {:.0} ms after the process started ({} ms by its own count); RSS {:.1} MiB after {} s idle",
        ready.as_secs_f64() * 1000.0,
        own_ms.unwrap_or(0),
        rss as f64 / 1024.0,
        args.idle_seconds
    );
    println!(
        "agentbus log -> row in PostgreSQL over {} events: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        micros.len(),
        percentile(&micros, 0.5),
        percentile(&micros, 0.9),
        percentile(&micros, 0.99),
        percentile(&micros, 1.0),
    );
    drop(dev);
    Ok(())
}

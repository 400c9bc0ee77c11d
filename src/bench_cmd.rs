//! `agentbus bench …`: runs `agentbus-bench`, the benchmark drivers built from `benches/`,
//! from beside this binary, so that the drivers stay out of the binary users run.

use anyhow::{bail, Context as _};
use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;

#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// What `agentbus-bench` is given (`agentbus bench --help` lists the benchmarks).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    args: Vec<OsString>,
}

/// Replaces this process with `agentbus-bench ARGS`, telling it which `agentbus` to start.
pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    let me = std::env::current_exe().context("cannot find the agentbus binary")?;
    let bench = me.with_file_name("agentbus-bench");
    if !bench.is_file() {
        bail!(
            "`agentbus bench` runs {}, which is not there: build it with `cargo build --release -p agentbus-benches`",
            bench.display()
        );
    }
    let err = std::process::Command::new(&bench)
        .args(&args.args)
        .env("AGENTBUS_BIN", &me)
        .exec();
    Err(err).with_context(|| format!("cannot run {}", bench.display()))
}

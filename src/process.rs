//! How each binary runs its command: logs set up, a multi-threaded runtime, and any error
//! on stderr with exit status 1.

use std::future::Future;
use std::process::ExitCode;

pub(crate) fn run(
    log_format: crate::logs::LogFormat,
    command: impl Future<Output = anyhow::Result<()>>,
) -> ExitCode {
    crate::logs::init(log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(command);
    // The command is done: do not wait for blocking lookups it gave up on (a spooled
    // `agentbus log` leaves a metadata request to an unreachable broker behind).
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! An S3-compatible server on loopback (`s3s-fs` over a temporary directory, the same as
//! the tests use), for measuring the audit-logger against S3:
//!
//! ```sh
//! cargo run --release --example s3_server -- agent-observability-audit
//! AWS_ACCESS_KEY_ID=agentbus-test-key AWS_SECRET_ACCESS_KEY=agentbus-test-secret \
//!   agentbus bench audit-logger --s3-endpoint http://127.0.0.1:PORT
//! ```

#[allow(unreachable_pub)]
#[path = "../tests/common/s3.rs"]
mod s3;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let bucket = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "agent-observability-audit".into());
    let server = s3::S3::start(&bucket).await;
    println!(
        "{} bucket {bucket} (AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={}); Ctrl-C stops it",
        server.endpoint(),
        s3::ACCESS_KEY,
        s3::SECRET_KEY
    );
    tokio::signal::ctrl_c().await
}

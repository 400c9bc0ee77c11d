//! testkit's PostgreSQL and Redis fixtures, against the running services and started from
//! the installed binaries.

use agentbus_testkit::fixtures::Source;
use agentbus_testkit::{Postgres, Redis};
use std::io::{Read, Write};

async fn check_postgres(source: Source) {
    let a = Postgres::start_with(source.clone())
        .await
        .expect("postgres fixture");
    let b = Postgres::start_with(source)
        .await
        .expect("second postgres fixture");
    assert_ne!(a.url(), b.url(), "a fresh database each");
    a.psql("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')")
        .unwrap();
    assert_eq!(a.psql("SELECT v FROM t").unwrap().trim(), "one");
    assert!(b.psql("SELECT v FROM t").is_err(), "databases are isolated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_on_the_running_server() {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    check_postgres(Source::Url(url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_from_installed_binaries() {
    check_postgres(Source::Binaries).await;
}

/// One RESP command on a fresh connection; returns the raw reply.
fn redis(url: &str, args: &[&str]) -> String {
    let addr = url.trim_start_matches("redis://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(addr).expect("connect to redis");
    let mut cmd = format!("*{}\r\n", args.len());
    for a in args {
        cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(cmd.as_bytes()).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).to_string()
}

async fn check_redis(source: Source) {
    let a = Redis::start_with(source.clone())
        .await
        .expect("redis fixture");
    let b = Redis::start_with(source)
        .await
        .expect("second redis fixture");
    assert_ne!(a.prefix(), b.prefix());
    assert_eq!(redis(a.url(), &["PING"]), "+PONG\r\n");
    let key = format!("{}counter", a.prefix());
    assert_eq!(redis(a.url(), &["INCRBY", &key, "5"]), ":5\r\n");
    assert_eq!(
        redis(b.url(), &["GET", &format!("{}counter", b.prefix())]),
        "$-1\r\n",
        "prefixes isolate tests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_on_the_running_server() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    check_redis(Source::Url(url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_from_installed_binaries() {
    check_redis(Source::Binaries).await;
}

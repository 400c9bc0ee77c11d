//! Start-up cost: an in-process testkit broker until it answers its first Metadata request,
//! and the standalone binary until it prints `ready`.
//!
//! `cargo bench -p agentbus-benches` (build the binary first with `cargo build --release`
//! for the second benchmark).

use criterion::{criterion_group, criterion_main, Criterion};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Metadata v1 for all topics: header (key 3, version 1, correlation 1, client id "b"),
/// then a null topic array.
const METADATA_V1: &[u8] = &[
    0, 0, 0, 15, 0, 3, 0, 1, 0, 0, 0, 1, 0, 1, b'b', 0xff, 0xff, 0xff, 0xff,
];

fn first_metadata(addr: &str) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(METADATA_V1).expect("send");
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("response length");
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).expect("response");
    assert_eq!(&body[..4], &[0, 0, 0, 1], "correlation id");
}

fn testkit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    c.bench_function("testkit start to first metadata", |b| {
        b.iter(|| {
            let broker = rt
                .block_on(agentbus_testkit::Broker::start())
                .expect("start");
            first_metadata(&broker.bootstrap());
            drop(broker);
        })
    });
}

fn binary_path() -> Option<PathBuf> {
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target");
    ["release", "debug"]
        .iter()
        .map(|p| target.join(p).join("agentbus"))
        .find(|p| p.exists())
}

fn binary(c: &mut Criterion) {
    let Some(exe) = binary_path() else {
        eprintln!("skipping binary start-up: build it with `cargo build --release` first");
        return;
    };
    c.bench_function("binary start to ready", |b| {
        b.iter(|| {
            let mut child = Command::new(&exe)
                .args(["broker", "--memory", "--listen", "127.0.0.1:0"])
                .env("AGENTBUS_LOG", "warn")
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn");
            let mut line = String::new();
            BufReader::new(child.stdout.take().expect("stdout"))
                .read_line(&mut line)
                .expect("ready line");
            assert!(line.contains("ready in"));
            let _ = child.kill();
            let _ = child.wait();
        })
    });
}

criterion_group!(benches, testkit, binary);
criterion_main!(benches);

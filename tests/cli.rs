//! `agentbus broker` as users run it: help, settings from flags/env/file, bad settings.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn agentbus() -> Command {
    without_agentbus_env(Command::new(env!("CARGO_BIN_EXE_agentbus")))
}

/// `cmd` without this process's `AGENTBUS_*` variables.
fn without_agentbus_env(mut c: Command) -> Command {
    for (k, _) in std::env::vars() {
        if k.starts_with("AGENTBUS_") {
            c.env_remove(k);
        }
    }
    c
}

/// Starts a broker (stderr as `stderr` says) and returns it with the bootstrap address
/// from its ready line.
fn start_ready(cmd: &mut Command, stderr: Stdio) -> (std::process::Child, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(stderr).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("ready in"), "{line}");
    let bootstrap = line
        .split("bootstrap ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    (child, bootstrap)
}

/// Starts a broker, returns the bootstrap address from its ready line, and stops it.
fn ready_bootstrap(cmd: &mut Command) -> String {
    let (mut child, bootstrap) = start_ready(cmd, Stdio::null());
    let _ = child.kill();
    let _ = child.wait();
    bootstrap
}

/// The brokers (`host:port`) a real client (rdkafka) finds in the metadata, sorted.
fn metadata_brokers(bootstrap: &str) -> Vec<String> {
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let metadata = rdkafka::consumer::Consumer::fetch_metadata(
        &consumer,
        None,
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    let mut brokers: Vec<String> = metadata
        .brokers()
        .iter()
        .map(|b| format!("{}:{}", b.host(), b.port()))
        .collect();
    brokers.sort();
    brokers
}

#[test]
fn help_documents_every_flag() {
    let out = agentbus().args(["broker", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--advertise",
        "--data-dir",
        "--memory",
        "--config",
        "--node-id",
        "--cluster-id",
        "--auto-create-topics",
        "--default-partitions",
        "--max-message-bytes",
        "--max-request-bytes",
        "--segment-bytes",
        "--segment-ms",
        "--retention-ms",
        "--retention-bytes",
        "--retention-check-interval-ms",
        "--fsync",
        "--as-kafka",
        "--control",
        "--max-connections",
        "--max-connections-per-ip",
        "--log-format",
    ] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(flag))
            .unwrap_or_else(|| panic!("{flag} missing from help:\n{help}"));
        let documented = line.len() > flag.len() + 12
            || help
                .lines()
                .skip_while(|l| !l.trim_start().starts_with(flag))
                .nth(1)
                .is_some_and(|l| !l.trim().is_empty());
        assert!(documented, "{flag} has no description");
    }
    assert!(help.contains("AGENTBUS_LISTEN"), "env names are shown");
}

#[test]
fn flags_override_env_which_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broker.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:0\"\nadvertise = \"from-file:1111\"\ndefault_partitions = 2\n",
    )
    .unwrap();
    let from_file = ready_bootstrap(agentbus().args(["broker", "--config"]).arg(&file));
    assert_eq!(from_file, "from-file:1111");
    let from_env = ready_bootstrap(
        agentbus()
            .args(["broker", "--config"])
            .arg(&file)
            .env("AGENTBUS_ADVERTISE", "from-env:2222"),
    );
    assert_eq!(from_env, "from-env:2222");
    let from_flag = ready_bootstrap(
        agentbus()
            .args(["broker", "--advertise", "from-flag:3333", "--config"])
            .arg(&file)
            .env("AGENTBUS_ADVERTISE", "from-env:2222"),
    );
    assert_eq!(from_flag, "from-flag:3333");
}

#[test]
fn one_storage_url_picks_the_engines_for_log_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let url = format!("file://{}", data.display());
    ready_bootstrap(agentbus().args(["broker", "--listen", "127.0.0.1:0", "--storage", &url]));
    assert!(
        data.join("meta.redb").exists(),
        "file:// keeps metadata on disk"
    );
    let file = dir.path().join("broker.toml");
    std::fs::write(&file, format!("storage = \"{url}\"\n")).unwrap();
    // A flag beats the file: memory, and nothing new on disk.
    std::fs::remove_dir_all(&data).unwrap();
    ready_bootstrap(
        agentbus()
            .args(["broker", "--listen", "127.0.0.1:0", "--memory", "--config"])
            .arg(&file),
    );
    assert!(!data.exists(), "--memory beats the file's storage");
}

#[test]
fn bad_settings_stop_startup_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let bad_toml = dir.path().join("bad.toml");
    std::fs::write(&bad_toml, "listen = \"127.0.0.1:0\"\nretention_hours = 5\n").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--default-partitions".into(), "0".into()],
            "default-partitions",
        ),
        (vec!["--fsync".into(), "sometimes".into()], "fsync"),
        (vec!["--advertise".into(), "no-port".into()], "advertise"),
        (vec!["--listen".into(), "256.0.0.1:1".into()], "256.0.0.1:1"),
        (
            vec!["--config".into(), bad_toml.display().to_string()],
            "retention_hours",
        ),
        (vec!["--retention-ms".into(), "-7".into()], "retention-ms"),
        (vec!["--storage".into(), "s3://bucket".into()], "storage"),
        (vec!["--as-kafka".into(), "9.9".into()], "as-kafka"),
        (vec!["--control".into(), "256.0.0.1:1".into()], "control"),
        (
            vec![
                "--listeners".into(),
                "SASL_PLAINTEXT://127.0.0.1:0".into(),
                "--listener-sasl-enabled-mechanisms".into(),
                "INTERNAL=PLAIN".into(),
            ],
            "listener-sasl-enabled-mechanisms",
        ),
        (
            vec![
                "--max-connections-per-ip-overrides".into(),
                "127.0.0.1".into(),
            ],
            "max-connections-per-ip-overrides",
        ),
    ];
    for (args, named) in cases {
        let mut cmd = agentbus();
        cmd.arg("broker");
        if !args.contains(&"--listen".to_string()) {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let out = cmd.args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(
            stderr.contains(named),
            "{args:?}: message must name `{named}`: {stderr}"
        );
    }
}

/// `agentbus-broker` is `agentbus broker` alone: the same flags, variables and errors,
/// and it serves clients.
#[test]
fn the_lean_broker_binary_takes_the_same_settings() {
    let lean = || without_agentbus_env(Command::new(env!("CARGO_BIN_EXE_agentbus-broker")));
    let bootstrap = ready_bootstrap(
        lean()
            .args(["--memory", "--listen", "127.0.0.1:0"])
            .env("AGENTBUS_ADVERTISE", "from-env:2222"),
    );
    assert_eq!(bootstrap, "from-env:2222");
    let out = lean()
        .args(["--listen", "127.0.0.1:0", "--default-partitions", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("default-partitions"));

    let mut cmd = lean();
    cmd.args([
        "--memory",
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ]);
    let (mut child, bootstrap) = start_ready(&mut cmd, Stdio::null());
    assert_eq!(metadata_brokers(&bootstrap), vec![bootstrap]);
    let _ = child.kill();
    let _ = child.wait();
}

/// Starts `agentbus broker` with `args`, sends it a request for API key 1000 (which no
/// Kafka has), stops it with SIGTERM and returns its exit status and stderr.
fn unknown_api_then_sigterm(args: &[&str]) -> (std::process::ExitStatus, String) {
    use std::io::{Read, Write};
    let mut cmd = agentbus();
    cmd.args(["broker", "--memory", "--listen", "127.0.0.1:0"])
        .args(args);
    let (child, addr) = start_ready(&mut cmd, Stdio::piped());
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    // Length, api key 1000, version 0, correlation id 1, null client id.
    conn.write_all(&[0, 0, 0, 10, 0x03, 0xe8, 0, 0, 0, 0, 0, 1, 0xff, 0xff])
        .unwrap();
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "Kafka closes the connection on an unknown API key"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    (out.status, String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn strict_mode_makes_the_broker_fail_on_what_it_does_not_implement() {
    let (status, stderr) = unknown_api_then_sigterm(&["--strict"]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("strict mode"), "{stderr}");
    assert!(stderr.contains("api key 1000"), "{stderr}");
    let (status, stderr) = unknown_api_then_sigterm(&[]);
    assert_eq!(status.code(), Some(0), "{stderr}");
}

/// `--brokers 3`: one process presents three brokers, each on its own port, and a client
/// sees all three; `--listen` may name each one's address.
#[test]
fn one_process_presents_several_brokers() {
    let run = |args: &[&str]| {
        let mut cmd = agentbus();
        cmd.args(["broker", "--memory"]).args(args);
        let (mut child, bootstrap) = start_ready(&mut cmd, Stdio::null());
        let seen = metadata_brokers(&bootstrap);
        let _ = child.kill();
        let _ = child.wait();
        (bootstrap, seen)
    };
    let (bootstrap, seen) = run(&["--brokers", "3", "--listen", "127.0.0.1:0"]);
    let mut listed: Vec<String> = bootstrap.split(',').map(str::to_string).collect();
    assert_eq!(listed.len(), 3, "{bootstrap}");
    listed.sort();
    assert_eq!(seen, listed);

    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string()
    };
    let (a, b) = (free(), free());
    let (bootstrap, seen) = run(&["--listen", &format!("{a},{b}")]);
    assert_eq!(bootstrap, format!("{a},{b}"));
    assert_eq!(seen.len(), 2);

    let out = agentbus()
        .args([
            "broker",
            "--brokers",
            "3",
            "--listen",
            "127.0.0.1:0,127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen"));
}

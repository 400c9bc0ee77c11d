//! The deployment files are checked, not just present: Prometheus' own checker, the
//! metric names against what running consumers export, `docker-compose config`,
//! `systemd-analyze verify`, and the Kubernetes manifests against the code's endpoints.

mod common;

use agentbus_testkit::{Postgres, Redis};
use common::dev::{Dev, GROUPS};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Metrics of kafka_exporter (the compose file runs it for the brokers' side), and
/// Prometheus' own `up`; every other name must come from a consumer.
const FROM_KAFKA_EXPORTER: &[&str] = &[
    "up",
    "kafka_brokers",
    "kafka_topic_partitions",
    "kafka_topic_partition_current_offset",
    "kafka_topic_partition_in_sync_replica",
    "kafka_topic_partition_replicas",
    "kafka_topic_partition_under_replicated_partition",
];

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Runs a checker that CI installs; a missing one fails with what to install.
fn run(program: &str, package: &str, args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (install Debian's {package})"))
}

fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_config_and_the_rules() {
    let dir = deploy().join("prometheus");
    let config = run(
        "promtool",
        "prometheus",
        &["check", "config", "prometheus.yml"],
        &dir,
        &[],
    );
    assert_ok("promtool check config", &config);
    let rules = run(
        "promtool",
        "prometheus",
        &["check", "rules", "rules.yml"],
        &dir,
        &[],
    );
    assert_ok("promtool check rules", &rules);
    let text = String::from_utf8_lossy(&rules.stdout);
    assert!(text.contains("SUCCESS: 6 rules found"), "{text}");
}

#[test]
fn docker_compose_accepts_both_variants() {
    let dir = deploy();
    for env in [
        vec![],
        vec![
            ("COMPOSE_PROFILES", "agentbus"),
            ("KAFKA_BROKERS", "agentbus-broker:9092"),
        ],
    ] {
        let out = run(
            "docker-compose",
            "docker-compose",
            &["config", "-q"],
            &dir,
            &env,
        );
        assert_ok(&format!("docker-compose config ({env:?})"), &out);
    }
    let out = run("docker-compose", "docker-compose", &["config"], &dir, &[]);
    assert_ok("docker-compose config", &out);
    let config = String::from_utf8_lossy(&out.stdout);
    for service in GROUPS.iter().chain(&[
        "kafka1",
        "kafka2",
        "kafka3",
        "agentbus-broker",
        "topic-init",
    ]) {
        assert!(
            config.contains(&format!("\n  {service}:\n")),
            "no service {service}"
        );
    }
    for (group, command) in GROUPS.iter().map(|g| (g, format!("- {g}"))) {
        assert!(
            config.contains(&command),
            "{group} does not run `consume {group}`"
        );
    }
    assert!(
        config.contains("replicas: 3"),
        "the db-writer runs three replicas"
    );
}

#[test]
fn systemd_accepts_every_unit() {
    let units = deploy().join("systemd");
    let copy = tempfile::tempdir().expect("dir");
    let mut names = Vec::new();
    for e in std::fs::read_dir(&units).expect("units") {
        let path = e.expect("entry").path();
        if path.extension().is_some_and(|x| x == "service") {
            // The unit names the installed binary; verify checks that it exists.
            let text = std::fs::read_to_string(&path).expect("unit");
            let text = text.replace("/usr/local/bin/agentbus", env!("CARGO_BIN_EXE_agentbus"));
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            std::fs::write(copy.path().join(&name), text).expect("copy");
            names.push(name);
        }
    }
    names.sort();
    let mut expected: Vec<String> = GROUPS
        .iter()
        .chain(&["broker"])
        .map(|g| format!("agentbus-{g}.service"))
        .collect();
    expected.sort();
    assert_eq!(names, expected);
    for name in &names {
        let env = units.join(format!(
            "{}.env.example",
            name.trim_start_matches("agentbus-")
                .trim_end_matches(".service")
        ));
        assert!(env.is_file(), "no {}", env.display());
    }
    let paths: Vec<String> = names.iter().map(|n| format!("./{n}")).collect();
    let args: Vec<&str> = std::iter::once("verify")
        .chain(paths.iter().map(String::as_str))
        .collect();
    let out = run("systemd-analyze", "systemd", &args, copy.path(), &[]);
    assert_ok("systemd-analyze verify", &out);
    let complaints = String::from_utf8_lossy(&out.stderr);
    assert!(
        complaints.trim().is_empty(),
        "systemd-analyze verify: {complaints}"
    );
    // Each unit's command line parses.
    for name in &names {
        let text = std::fs::read_to_string(units.join(name)).expect("unit");
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart=/usr/local/bin/agentbus "))
            .expect("ExecStart");
        let mut args: Vec<&str> = exec.split_whitespace().collect();
        args.push("--help");
        let out = Command::new(env!("CARGO_BIN_EXE_agentbus"))
            .args(&args)
            .output()
            .expect("agentbus");
        assert_ok(&format!("agentbus {exec} --help"), &out);
    }
}

/// Every YAML document of `file`, as JSON (PyYAML reads them; CI installs it).
fn yaml_documents(file: &Path) -> Vec<Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]))",
        ])
        .arg(file)
        .output()
        .expect("python3");
    assert_ok(&format!("parsing {}", file.display()), &out);
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The metric names a PromQL expression reads.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const WORDS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset", // aggregations may come before `by (…)`:
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
    ];
    // Label matchers, ranges and quoted strings name no metric.
    let mut plain = String::new();
    let mut skip: Option<char> = None;
    for c in expr.chars() {
        match (skip, c) {
            (None, '{') => skip = Some('}'),
            (None, '[') => skip = Some(']'),
            (None, '"') => skip = Some('"'),
            (Some(end), c) if c == end => {
                skip = None;
                plain.push(' ');
            }
            (Some(_), _) => {}
            (None, c) => plain.push(c),
        }
    }
    let mut names = BTreeSet::new();
    let chars: Vec<char> = plain.chars().collect();
    let mut i = 0;
    let mut after_grouping = false;
    while i < chars.len() {
        if chars[i].is_ascii_alphabetic() || chars[i] == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if after_grouping {
                // `by (a, b)`: label names up to the closing parenthesis.
                if next == Some(&')') {
                    after_grouping = false;
                }
            } else if matches!(word.as_str(), "by" | "without" | "on" | "ignoring") {
                after_grouping = true;
            } else if next != Some(&'(') && !WORDS.contains(&word.as_str()) {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Every `expr` of the rules and the dashboards.
fn expressions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for doc in yaml_documents(&deploy().join("prometheus/rules.yml")) {
        for group in doc["groups"].as_array().expect("groups") {
            for rule in group["rules"].as_array().expect("rules") {
                let e = rule["expr"].as_str().expect("expr").to_string();
                out.push((format!("rule {}", rule["alert"]), e));
            }
        }
    }
    let dashboards = deploy().join("grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dashboards)
        .expect("dashboards")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let titles: Vec<String> = files
        .iter()
        .map(|f| {
            let d: Value = serde_json::from_str(&std::fs::read_to_string(f).expect("read"))
                .expect("dashboard JSON");
            for p in d["panels"].as_array().expect("panels") {
                for t in p["targets"].as_array().expect("targets") {
                    let e = t["expr"].as_str().expect("expr").to_string();
                    out.push((format!("{} / {}", d["title"], p["title"]), e));
                }
            }
            d["title"].as_str().expect("title").to_string()
        })
        .collect();
    assert_eq!(
        titles,
        ["Kafka cluster health", "Consumer performance", "Event flow"]
    );
    out
}

#[test]
fn promql_names_are_read_as_metrics() {
    assert_eq!(
        metric_names(
            r#"sum by (group, stage) (rate(agentbus_errors_total{stage="SINK"}[5m])) > 0 or up{job="x"} == 0"#
        ),
        BTreeSet::from(["agentbus_errors_total".to_string(), "up".to_string()])
    );
    assert_eq!(
        metric_names("histogram_quantile(0.5, sum by (le) (rate(a_bucket[5m]))) / b"),
        BTreeSet::from(["a_bucket".to_string(), "b".to_string()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_in_rules_and_dashboards_is_exported_and_every_probe_answers() {
    let pg = Postgres::start().await.expect("postgres");
    let redis = Redis::start().await.expect("redis");
    let data = tempfile::tempdir().expect("data dir");
    let dev = Dev::start_ready(data.path(), &pg, &redis);
    let (code, text) =
        agentbus_consumers::http::get(dev.http_port, "/metrics").expect("GET /metrics");
    assert_eq!(code, 200);
    let mut exported: BTreeSet<String> =
        FROM_KAFKA_EXPORTER.iter().map(|s| s.to_string()).collect();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (name, kind) = (parts.next().expect("name"), parts.next().expect("kind"));
            exported.insert(name.to_string());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    exported.insert(format!("{name}{suffix}"));
                }
            }
        }
    }
    let mut used = 0;
    for (place, expr) in expressions() {
        let names = metric_names(&expr);
        assert!(!names.is_empty(), "{place}: no metric in {expr}");
        for name in names {
            used += 1;
            assert!(
                exported.contains(&name),
                "{place}: {name} is exported by nothing (in {expr})"
            );
        }
    }
    assert!(used >= 30, "only {used} metric uses found");

    // The manifests: every group once, probes on the code's paths and port.
    let k8s = deploy().join("k8s");
    let kustomization = &yaml_documents(&k8s.join("kustomization.yaml"))[0];
    let listed: BTreeSet<String> = kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().expect("name").to_string())
        .collect();
    let present: BTreeSet<String> = std::fs::read_dir(&k8s)
        .expect("k8s")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present, "kustomization.yaml lists every manifest");
    let docs: Vec<Value> = present
        .iter()
        .flat_map(|f| yaml_documents(&k8s.join(f)))
        .collect();
    let config = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .expect("a ConfigMap");
    let port: u16 = config["data"]["HTTP_PORT"]
        .as_str()
        .expect("HTTP_PORT")
        .parse()
        .expect("port");
    assert!(docs.iter().any(|d| d["kind"] == "Secret"), "a Secret");
    let mut seen = BTreeSet::new();
    for w in docs
        .iter()
        .filter(|d| d["kind"] == "Deployment" || d["kind"] == "StatefulSet")
    {
        let spec = &w["spec"]["template"]["spec"];
        let c = &spec["containers"][0];
        let args: Vec<&str> = c["args"]
            .as_array()
            .expect("args")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(args.first(), Some(&"consume"), "{w}");
        let group = args[1].to_string();
        let ports = c["ports"].as_array().expect("ports");
        let http = ports
            .iter()
            .find(|p| p["name"] == "http")
            .expect("a port named http");
        assert_eq!(
            http["containerPort"],
            u64::from(port),
            "{group}: containerPort is HTTP_PORT"
        );
        for (probe, path) in [("livenessProbe", "/health"), ("readinessProbe", "/ready")] {
            let get = &c[probe]["httpGet"];
            assert_eq!(get["path"], path, "{group} {probe}");
            assert!(
                get["port"] == "http" || get["port"] == u64::from(port),
                "{group} {probe} port"
            );
            let (code, body) = agentbus_consumers::http::get(dev.http_port, path).expect("GET");
            assert_eq!(code, 200, "{path} on a ready consumer: {body}");
        }
        let labels = &w["spec"]["selector"]["matchLabels"];
        assert!(
            docs.iter().any(|d| d["kind"] == "PodDisruptionBudget"
                && &d["spec"]["selector"]["matchLabels"] == labels),
            "{group} has a PodDisruptionBudget"
        );
        assert!(
            c["resources"]["requests"].is_object() && c["resources"]["limits"].is_object(),
            "{group} resources"
        );
        seen.insert(group);
    }
    assert_eq!(
        seen,
        GROUPS
            .iter()
            .map(|g| g.to_string())
            .collect::<BTreeSet<_>>()
    );
    // The defaults the manifests rely on: HTTP_PORT 8080 in the code too.
    let help = Command::new(env!("CARGO_BIN_EXE_agentbus"))
        .args(["consume", "db-writer", "--help"])
        .output()
        .expect("agentbus");
    assert!(String::from_utf8_lossy(&help.stdout).contains(&format!("[default: {port}]")));
    dev.stop();
}

/// The secured-cluster settings the deployment files offer are the ones every Kafka
/// client of the process reads (a misspelt one would be silently ignored), and each
/// group's configuration offers them.
#[test]
fn the_secured_cluster_settings_are_the_ones_the_clients_read() {
    use agentbus_client::kafka_props::{CLIENT_CONFIG_VARIABLE, VARIABLES};
    let known: BTreeSet<&str> = VARIABLES
        .iter()
        .map(|(v, _)| *v)
        .chain([CLIENT_CONFIG_VARIABLE])
        .collect();
    let mut files = vec![
        deploy().join(".env"),
        deploy().join("docker-compose.yml"),
        deploy().join("k8s/configmap.yaml"),
        deploy().join("k8s/secret.yaml"),
    ];
    for g in GROUPS {
        files.push(deploy().join(format!("systemd/{g}.env.example")));
    }
    for file in &files {
        let text = std::fs::read_to_string(file).expect("deployment file");
        let named: BTreeSet<String> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| {
                [
                    "KAFKA_SECURITY_",
                    "KAFKA_SASL_",
                    "KAFKA_SSL_",
                    "KAFKA_CLIENT_",
                ]
                .iter()
                .any(|p| w.starts_with(p))
            })
            .map(str::to_string)
            .collect();
        assert!(
            named.len() >= 2,
            "{} offers no secured-cluster settings",
            file.display()
        );
        for name in &named {
            assert!(
                known.contains(name.as_str()),
                "{}: {name} is not read by the clients",
                file.display()
            );
        }
    }
}

/// kafka_exporter takes the secured cluster's settings as its own flags: the compose
/// file's entrypoint script, run with a stand-in `kafka_exporter` that prints its
/// arguments.
#[test]
fn kafka_exporter_gets_the_secured_cluster_settings_as_its_flags() {
    let compose = &yaml_documents(&deploy().join("docker-compose.yml"))[0];
    let script = compose["services"]["kafka-exporter"]["entrypoint"][2]
        .as_str()
        .expect("the entrypoint script")
        .replace("$$", "$");
    let bin = tempfile::tempdir().unwrap();
    let fake = bin.path().join("kafka_exporter");
    std::fs::write(&fake, "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let flags = |env: &[(&str, &str)]| -> Vec<String> {
        let out = Command::new("sh")
            .args(["-c", &script])
            .env_clear()
            .env("PATH", &path)
            .envs(env.iter().copied())
            .output()
            .expect("sh");
        assert_ok("the kafka-exporter entrypoint", &out);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        flags(&[("KAFKA_BROKERS", "k1:9092,k2:9092")]),
        ["--kafka.server=k1:9092", "--kafka.server=k2:9092"]
    );
    assert_eq!(
        flags(&[
            ("KAFKA_BROKERS", "k1:9094"),
            ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
            ("KAFKA_SASL_USERNAME", "agentbus"),
            ("KAFKA_SASL_PASSWORD", "pass word"),
            ("KAFKA_SSL_CA_LOCATION", "/etc/ca.pem"),
        ]),
        [
            "--kafka.server=k1:9094",
            "--sasl.enabled",
            "--sasl.username=agentbus",
            "--sasl.password=pass word",
            "--sasl.mechanism=scram-sha512",
            "--tls.enabled",
            "--tls.ca-file=/etc/ca.pem",
        ]
    );
    assert_eq!(
        flags(&[
            ("KAFKA_BROKERS", "k1:9093"),
            ("KAFKA_SECURITY_PROTOCOL", "SSL")
        ]),
        ["--kafka.server=k1:9093", "--tls.enabled"]
    );
}

//! `agentbus dev` as a child process: its summary parsed, its status read, stopped
//! with SIGTERM as Ctrl-C would.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Settings a developer's shell may hold that would point the child elsewhere.
const FOREIGN: &[&str] = &[
    "DATABASE_URL",
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_KEY_PREFIX",
    "HTTP_PORT",
    "HTTP_HOST",
    "AUDIT_URL",
    "S3_BUCKET",
    "S3_ENDPOINT",
    "PAGERDUTY_API_KEY",
    "SLACK_WEBHOOK_URL",
    "ALERT_WEBHOOK_URL",
    "ALERT_RULES",
    "FAILURE_THRESHOLD",
    "ML_MODEL_PATH",
];

/// The five groups, as the summary and the status page name them.
pub const GROUPS: [&str; 5] = [
    "db-writer",
    "metrics-aggregator",
    "audit-logger",
    "pattern-extractor",
    "alert-manager",
];

/// A running `agentbus dev`.
pub struct Dev {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    pub bootstrap: String,
    pub http_port: u16,
}

fn value_after<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .map(|rest| rest.split_whitespace().next().unwrap_or_default())
}

impl Dev {
    /// Starts `agentbus dev` on ephemeral ports with its data in `data_dir` and `env`;
    /// returns once it printed its summary.
    pub fn start(data_dir: &std::path::Path, env: &[(&str, &str)]) -> Dev {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_agentbus"));
        for (k, _) in std::env::vars() {
            if k.starts_with("AGENTBUS_")
                || k.starts_with("KAFKA_")
                || k.starts_with("POSTGRES_")
                || FOREIGN.contains(&k.as_str())
            {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd
            .args([
                "dev",
                "--listen",
                "127.0.0.1:0",
                "--http-port",
                "0",
                "--data-dir",
            ])
            .arg(data_dir)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("agentbus dev");
        let (stdout, _) = super::collect_lines(child.stdout.take().expect("stdout"), |_| {});
        let (stderr, _) = super::collect_lines(child.stderr.take().expect("stderr"), |_| {});
        let mut dev = Dev {
            child,
            stdout,
            stderr,
            bootstrap: String::new(),
            http_port: 0,
        };
        dev.wait_for_output("the summary", 60, |out| {
            out.contains("Ctrl-C stops everything")
        });
        let out = dev.stdout();
        dev.bootstrap = value_after(&out, "Kafka bootstrap")
            .expect("bootstrap")
            .to_string();
        let page = value_after(&out, "status page").expect("status page URL");
        dev.http_port = page
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {page:?}"));
        dev
    }

    /// Started on `pg` and `redis` (a key prefix of its own), once all five groups are
    /// ready.
    pub fn start_ready(
        data_dir: &std::path::Path,
        pg: &agentbus_testkit::Postgres,
        redis: &agentbus_testkit::Redis,
    ) -> Dev {
        let mut dev = Dev::start(
            data_dir,
            &[
                ("DATABASE_URL", pg.url()),
                ("REDIS_URL", redis.url()),
                ("REDIS_KEY_PREFIX", redis.prefix()),
            ],
        );
        dev.wait_for_output("all groups ready", 90, |out| {
            out.contains("all 5 running groups ready in")
        });
        dev
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn logs(&self) -> String {
        format!(
            "stdout:\n{}\nstderr (last 60 lines):\n{}",
            self.stdout(),
            self.stderr
                .lock()
                .unwrap()
                .lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        )
    }

    /// Waits until stdout satisfies `done`; fails with the logs after `secs`.
    pub fn wait_for_output(&mut self, what: &str, secs: u64, done: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !done(&self.stdout()) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "agentbus dev exited ({status}) before {what}\n{}",
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {secs} s\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `/api/status` as JSON.
    pub fn status(&self) -> serde_json::Value {
        let (code, body) =
            agentbus_consumers::http::get(self.http_port, "/api/status").expect("GET /api/status");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("status JSON")
    }

    /// The status row of group `name`.
    pub fn group(&self, name: &str) -> serde_json::Value {
        self.status()["groups"]
            .as_array()
            .and_then(|g| g.iter().find(|g| g["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no group {name} in the status"))
    }

    /// SIGTERM (as Ctrl-C), then waits for a clean exit.
    pub fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "agentbus dev did not stop within 60 s\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            status.success(),
            "agentbus dev exited with {status}\n{}",
            self.logs()
        );
        self.stdout()
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The page as headless Chromium rendered it after its scripts ran, and what it wrote
/// to the console (nothing, on a good page). Fails when Chromium is not installed.
pub fn render(url: &str) -> (String, Vec<String>) {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
        .unwrap_or_else(|| {
            panic!("the status page test drives a real browser: install Chromium (apt-get install chromium)")
        });
    let profile = tempfile::tempdir().expect("profile dir");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .expect("chromium");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    assert!(out.status.success(), "chromium failed: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

/// The text of the table row `<tr data-name="name">` of the table `id`, cell by cell.
pub fn row(dom: &str, table: &str, name: &str) -> Vec<String> {
    let start = dom
        .find(&format!("id=\"{table}\""))
        .unwrap_or_else(|| panic!("no table {table} in the page:\n{dom}"));
    let dom = &dom[start..];
    let at = dom
        .find(&format!("data-name=\"{name}\""))
        .unwrap_or_else(|| panic!("no row {name} in table {table}:\n{dom}"));
    let end = dom[at..].find("</tr>").map_or(dom.len(), |e| at + e);
    cells(&dom[at..end])
}

/// The cells of every row of the table `id`'s body.
pub fn rows(dom: &str, table: &str) -> Vec<Vec<String>> {
    let start = dom
        .find(&format!("id=\"{table}\""))
        .unwrap_or_else(|| panic!("no table {table} in the page:\n{dom}"));
    let dom = &dom[start..];
    let body = &dom[dom.find("<tbody>").unwrap_or(0)..dom.find("</tbody>").unwrap_or(dom.len())];
    body.split("</tr>")
        .map(cells)
        .filter(|c| !c.is_empty())
        .collect()
}

fn cells(html: &str) -> Vec<String> {
    html.split("<td")
        .skip(1)
        .map(|c| {
            let text = c.split_once('>').map_or("", |(_, t)| t);
            let text = text.split("</td>").next().unwrap_or_default();
            text.replace("&amp;", "&")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
        })
        .collect()
}

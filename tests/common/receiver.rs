//! A real HTTP receiver on loopback that records every request (HTTP/1.1, JSON bodies,
//! keep-alive) and answers what the test says per path: 2xx, an error status with an
//! optional `Retry-After`, or no answer at all (a timeout).
#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// How the receiver answers a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// `202 Accepted` (PagerDuty's), or `200 ok` for Slack paths.
    Accept,
    /// This status, with `Retry-After: <s>` when given.
    Status(u16, Option<u64>),
    /// Read the request, never answer.
    Hang,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub body: Value,
    /// The status answered (0: none).
    pub status: u16,
    pub at: Instant,
    /// Wall-clock ms at arrival.
    pub at_ms: i64,
}

#[derive(Default)]
struct State {
    answers: BTreeMap<String, Answer>,
    requests: Vec<Request>,
}

/// The receiver; stops when dropped.
pub struct Receiver {
    port: u16,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, state).await;
                });
            }
        });
        Self { port, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// From now on, answer `path` with `answer`.
    pub fn answer(&self, path: &str, answer: Answer) {
        self.state
            .lock()
            .unwrap()
            .answers
            .insert(path.to_string(), answer);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The requests to `path` that were accepted.
    pub fn accepted(&self, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path && (200..300).contains(&r.status))
            .collect()
    }
}

async fn serve(stream: tokio::net::TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).await? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).await?;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let answer = state
            .lock()
            .unwrap()
            .answers
            .get(&path)
            .copied()
            .unwrap_or(Answer::Accept);
        let (status, extra, text) = match answer {
            Answer::Accept if path.contains("slack") => (200, String::new(), "ok".to_string()),
            Answer::Accept => (
                202,
                String::new(),
                r#"{"status":"success","message":"Event processed"}"#.to_string(),
            ),
            Answer::Status(s, after) => (
                s,
                after.map_or_else(String::new, |a| format!("Retry-After: {a}\r\n")),
                format!(r#"{{"status":"error","code":{s}}}"#),
            ),
            Answer::Hang => (0, String::new(), String::new()),
        };
        state.lock().unwrap().requests.push(Request {
            path,
            body,
            status,
            at: Instant::now(),
            at_ms: chrono::Utc::now().timestamp_millis(),
        });
        if status == 0 {
            // Hold the connection open without an answer until the client gives up.
            tokio::time::sleep(std::time::Duration::from_secs(120)).await;
            return Ok(());
        }
        let reply = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n{text}",
            text.len()
        );
        write.write_all(reply.as_bytes()).await?;
    }
}

//! The status page of `agentbus dev`: `/` (plain HTML and a little JS from the binary)
//! polls `/api/status` every second: topics with their rates, each group's state and
//! lag, the latest alerts and dead letters.

use agentbus_broker::Inspector;
use agentbus_consumers::metrics::recent::{RecentAlert, RecentDeadLetter};
use agentbus_consumers::metrics::Metrics;
use axum::extract::State as Shared;
use axum::response::{Html, IntoResponse, Response};
use axum::{routing, Json, Router};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PAGE: &str = include_str!("status.html");

/// Seconds of samples a topic's rate is taken over.
const RATE_WINDOW: usize = 5;

/// One of the five consumer groups, running or off.
#[derive(Debug)]
pub(crate) struct GroupEntry {
    pub(crate) name: &'static str,
    /// Where it writes.
    pub(crate) sink: String,
    /// Its Kafka consumer groups (the alert-manager has three); empty when off.
    pub(crate) members: Vec<Arc<Metrics>>,
    /// Why it is off.
    pub(crate) off: Option<String>,
}

impl GroupEntry {
    /// `ready`, `starting`, `stopping` or `off`.
    pub(crate) fn state(&self) -> &'static str {
        if self.off.is_some() {
            "off"
        } else if self.members.iter().any(|m| !m.healthy()) {
            "stopping"
        } else if self.members.iter().all(|m| m.ready()) {
            "ready"
        } else {
            "starting"
        }
    }
}

/// What the page shows, shared with the sampler.
#[derive(Debug)]
pub(crate) struct Status {
    started: Instant,
    bootstrap: String,
    broker: Inspector,
    groups: Vec<GroupEntry>,
    /// Per topic, the last seconds' end offsets (sum over partitions).
    samples: Mutex<BTreeMap<String, VecDeque<(Instant, i64)>>>,
}

#[derive(Debug, Serialize)]
struct TopicRow {
    name: String,
    partitions: usize,
    records: i64,
    end_offset: i64,
    per_second: f64,
}

#[derive(Debug, Serialize)]
struct GroupRow<'a> {
    name: &'a str,
    consumer_groups: Vec<&'a str>,
    sink: &'a str,
    state: &'static str,
    reason: Option<&'a str>,
    lag: i64,
    consumed: u64,
    written: u64,
    dead_letters: u64,
}

#[derive(Debug, Serialize)]
struct DeadLetterRow {
    group: String,
    #[serde(flatten)]
    letter: RecentDeadLetter,
}

impl Status {
    pub(crate) fn new(bootstrap: String, broker: Inspector, groups: Vec<GroupEntry>) -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            bootstrap,
            broker,
            groups,
            samples: Mutex::default(),
        })
    }

    pub(crate) fn groups(&self) -> &[GroupEntry] {
        &self.groups
    }

    /// The topics clients see (not `__consumer_offsets` and the like): name,
    /// partitions, records held, end offset.
    fn topics(&self) -> Vec<(String, usize, i64, i64)> {
        let mut out: Vec<_> = self
            .broker
            .topics()
            .into_iter()
            .filter(|t| !t.name.starts_with("__"))
            .map(|t| {
                let (held, end) = (0..t.partitions)
                    .filter_map(|p| self.broker.offsets(&t.name, p))
                    .fold((0, 0), |(h, e), o| {
                        (h + o.high_watermark - o.log_start, e + o.high_watermark)
                    });
                (t.name, t.partitions as usize, held, end)
            })
            .collect();
        out.sort();
        out
    }

    /// Takes a sample of every topic's end offset.
    fn sample(&self) {
        let now = Instant::now();
        let topics = self.topics();
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.retain(|name, _| topics.iter().any(|t| &t.0 == name));
        for (name, _, _, end) in topics {
            let s = samples.entry(name).or_default();
            if s.len() > RATE_WINDOW {
                s.pop_front();
            }
            s.push_back((now, end));
        }
    }

    fn rate(&self, topic: &str) -> f64 {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        match samples.get(topic) {
            Some(s) if s.len() >= 2 => {
                let ((t0, e0), (t1, e1)) = (s[0], s[s.len() - 1]);
                let secs = t1.duration_since(t0).as_secs_f64();
                if secs > 0.0 {
                    ((e1 - e0) as f64 / secs * 10.0).round() / 10.0
                } else {
                    0.0
                }
            }
            _ => 0.0,
        }
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        let topics: Vec<TopicRow> = self
            .topics()
            .into_iter()
            .map(|(name, partitions, records, end_offset)| TopicRow {
                per_second: self.rate(&name),
                name,
                partitions,
                records,
                end_offset,
            })
            .collect();
        let groups: Vec<GroupRow<'_>> = self
            .groups
            .iter()
            .map(|g| GroupRow {
                name: g.name,
                consumer_groups: g.members.iter().map(|m| m.group()).collect(),
                sink: &g.sink,
                state: g.state(),
                reason: g.off.as_deref(),
                lag: g.members.iter().map(|m| m.total_lag()).sum(),
                consumed: g.members.first().map_or(0, |m| m.events_received()),
                written: g.members.last().map_or(0, |m| m.events_written()),
                dead_letters: g.members.iter().map(|m| m.dead_letters()).sum(),
            })
            .collect();
        let members = || self.groups.iter().flat_map(|g| g.members.iter());
        let mut alerts: Vec<RecentAlert> = members()
            .filter_map(|m| m.alert_stats())
            .flat_map(|s| s.recent_alerts())
            .collect();
        alerts.sort_by(|a, b| b.time.cmp(&a.time));
        alerts.truncate(10);
        let mut dead: Vec<DeadLetterRow> = members()
            .flat_map(|m| {
                m.recent_dead_letters()
                    .into_iter()
                    .map(|letter| DeadLetterRow {
                        group: m.group().to_string(),
                        letter,
                    })
            })
            .collect();
        dead.sort_by(|a, b| b.letter.time.cmp(&a.letter.time));
        dead.truncate(10);
        serde_json::json!({
            "bootstrap": self.bootstrap,
            "uptime_seconds": self.started.elapsed().as_secs(),
            "topics": topics,
            "groups": groups,
            "alerts": alerts,
            "dead_letters": dead,
        })
    }

    /// `/` and `/api/status`.
    pub(crate) fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/", routing::get(page))
            .route("/api/status", routing::get(status))
            .with_state(self.clone())
    }

    /// Samples the topics every second until the process ends.
    pub(crate) fn spawn_sampler(self: &Arc<Self>) {
        let status = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                status.sample();
            }
        });
    }
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn status(Shared(status): Shared<Arc<Status>>) -> Response {
    Json(status.json()).into_response()
}

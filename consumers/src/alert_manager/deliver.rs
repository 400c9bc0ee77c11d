//! The delivery loop (`alert-group-delivery`): reads `agent-alerts` (read_committed),
//! sends each alert to its destinations, and lets the runtime commit the offsets only
//! after every destination accepted (offsets in Kafka, after a durable write).
//!
//! Network errors, 429 and 5xx are retried with exponential backoff and jitter,
//! honouring `Retry-After`; past the write's budget the runtime pauses and retries the
//! batch (destinations that already accepted an alert are not sent it again). Any
//! other 4xx is permanent: the alert goes to `agent-alerts-dlq` with the answer. A
//! global rate limit holds triggers back beyond `ALERT_RATE_LIMIT` a minute and sends
//! a summary of what it held back.

use super::destinations::{self, Destination, Outcome};
use super::stats::AlertStats;
use crate::sink::{Batch, OffsetStore, Sink, SinkError, WriteOutcome};
use agentbus_client::alert::{AgentAlert, AlertAction, AlertKind, Severity};
use agentbus_client::{AnyEvent, Id};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::{info, warn};

/// Longest one write keeps retrying before it hands the batch back to the runtime
/// (which allows a write 30 s).
const WRITE_BUDGET: Duration = Duration::from_secs(20);
const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(10);

/// Where alerts go and how fast.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// The destinations (none: alerts are logged and kept in the topic).
    pub destinations: Vec<Destination>,
    /// `ALERT_LINK_URL`: a link in every message; `{dedup_key}` is filled in.
    pub link: Option<String>,
    /// `ALERT_RATE_LIMIT`: most triggers sent per minute (0: no limit).
    pub rate_per_minute: u32,
    /// Timeout of one request.
    pub request_timeout: Duration,
}

/// The delivery loop's sink.
#[derive(Debug)]
pub struct DeliverySink {
    settings: DeliverySettings,
    client: reqwest::Client,
    /// (event id, destination) accepted since the last committed batch.
    accepted: HashSet<(String, &'static str)>,
    /// The rate limit's answer per event id since the last committed batch (a batch
    /// written again is not counted again).
    admitted: HashMap<String, bool>,
    /// A destination's `Retry-After`: no request before then.
    not_before: HashMap<&'static str, Instant>,
    /// The rate limit's minute: its start and triggers sent in it.
    minute: (Instant, u32),
    /// Triggers held back this minute, by rule.
    held: BTreeMap<String, u64>,
    /// Dedup keys whose trigger was held back (their resolve is not sent either).
    held_keys: HashSet<String>,
    stats: Arc<AlertStats>,
}

use super::evaluate::now_ms;

fn jitter(d: Duration) -> Duration {
    // Up to half again, from the clock's low bits: enough to spread retries.
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    d + d.mul_f64(f64::from(n % 1000) / 2000.0)
}

impl DeliverySink {
    /// A sink for `settings`.
    pub fn new(settings: DeliverySettings) -> Result<Self, SinkError> {
        let client = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent("agentbus-alert-manager")
            .build()
            .map_err(|e| SinkError::Fatal(format!("http client: {e}")))?;
        Ok(Self {
            settings,
            client,
            accepted: HashSet::new(),
            admitted: HashMap::new(),
            not_before: HashMap::new(),
            minute: (Instant::now(), 0),
            held: BTreeMap::new(),
            held_keys: HashSet::new(),
            stats: Arc::new(AlertStats::default()),
        })
    }

    /// The delivery figures.
    pub fn stats(&self) -> Arc<AlertStats> {
        self.stats.clone()
    }

    fn link(&self, alert: &AgentAlert) -> Option<String> {
        self.settings
            .link
            .as_ref()
            .map(|l| l.replace("{dedup_key}", &alert.dedup_key))
    }

    /// Whether the rate limit lets `alert` through now.
    fn admit(&mut self, alert: &AgentAlert) -> bool {
        if alert.action == AlertAction::Resolve {
            return !self.held_keys.remove(&alert.dedup_key);
        }
        if self.settings.rate_per_minute == 0 || alert.kind == AlertKind::Suppressed {
            return true;
        }
        if self.minute.0.elapsed() >= Duration::from_secs(60) {
            self.minute = (Instant::now(), 0);
        }
        if self.minute.1 < self.settings.rate_per_minute {
            self.minute.1 += 1;
            return true;
        }
        *self.held.entry(alert.rule.clone()).or_default() += 1;
        self.held_keys.insert(alert.dedup_key.clone());
        self.stats.held_back();
        false
    }

    /// Sends `alert` to every destination that has not accepted it yet.
    async fn deliver(&mut self, alert: &AgentAlert, until: Instant) -> Result<(), SinkError> {
        if self.settings.destinations.is_empty() {
            info!(rule = %alert.rule, action = alert.action.as_str(), dedup_key = %alert.dedup_key, "alert (no destination configured): {}", alert.summary);
            return Ok(());
        }
        let link = self.link(alert);
        for d in self.settings.destinations.clone() {
            let key = (alert.event_id.as_str().to_string(), d.name());
            if !d.wants(alert) || self.accepted.contains(&key) {
                continue;
            }
            let body = d.body(alert, link.as_deref());
            let mut wait = FIRST_RETRY;
            loop {
                if let Some(at) = self.not_before.get(d.name()) {
                    let at = *at;
                    if at > until {
                        return Err(SinkError::Unavailable(format!(
                            "{}: asked to wait (Retry-After)",
                            d.name()
                        )));
                    }
                    tokio::time::sleep_until(at.into()).await;
                    self.not_before.remove(d.name());
                }
                match destinations::send(&self.client, d.url(), &body).await {
                    Outcome::Accepted => {
                        self.stats.request(d.name(), "delivered");
                        let secs = alert
                            .timestamp
                            .millis()
                            .map_or(0.0, |t| (now_ms() - t).max(0) as f64 / 1000.0);
                        self.stats.delivered_after(secs);
                        self.accepted.insert(key);
                        break;
                    }
                    Outcome::Refused(reason) => {
                        self.stats.request(d.name(), "refused");
                        return Err(SinkError::Rejected(format!("{}: {reason}", d.name())));
                    }
                    Outcome::Retry { reason, after } => {
                        self.stats.request(d.name(), "retried");
                        let pause = after.unwrap_or_else(|| jitter(wait));
                        warn!(
                            destination = d.name(),
                            retry_in_ms = pause.as_millis() as u64,
                            "alert delivery failed: {reason}"
                        );
                        let at = Instant::now() + pause;
                        if at > until {
                            self.not_before.insert(d.name(), at);
                            return Err(SinkError::Unavailable(format!("{}: {reason}", d.name())));
                        }
                        tokio::time::sleep(pause).await;
                        wait = (wait * 2).min(MAX_RETRY);
                    }
                }
            }
        }
        Ok(())
    }

    /// The summary of what the rate limit held back in the minute that ended.
    fn held_summary(&mut self) -> Option<AgentAlert> {
        if self.held.is_empty() || self.minute.0.elapsed() < Duration::from_secs(60) {
            return None;
        }
        let held = std::mem::take(&mut self.held);
        let total: u64 = held.values().sum();
        let by_rule: Vec<String> = held.iter().map(|(r, n)| format!("{r}: {n}")).collect();
        let at = now_ms();
        let key = format!("agentbus/rate-limit/{at}");
        let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, key.as_bytes()).to_string();
        Some(AgentAlert {
            event_id: Id(id.clone()),
            correlation_id: Id(id),
            dedup_key: key,
            rule: "rate-limit".into(),
            kind: AlertKind::Suppressed,
            action: AlertAction::Trigger,
            severity: Severity::Info,
            subject: "all rules".into(),
            summary: format!(
                "{total} alert(s) held back by the rate limit of {} a minute ({})",
                self.settings.rate_per_minute,
                by_rule.join(", ")
            ),
            agent_name: None,
            occurrences: total,
            window_seconds: 60,
            first_seen: super::evaluate::timestamp(at - 60_000),
            last_seen: super::evaluate::timestamp(at),
            details: serde_json::json!({ "held_back": held }),
            timestamp: super::evaluate::timestamp(at),
        })
    }
}

impl Sink for DeliverySink {
    fn offset_store(&self) -> OffsetStore {
        OffsetStore::Kafka
    }

    async fn write(&mut self, batch: &Batch<'_>) -> Result<WriteOutcome, SinkError> {
        let until = Instant::now() + WRITE_BUDGET;
        let mut written = 0;
        for r in batch.records {
            let AnyEvent::Alert(alert) = &r.event else {
                continue;
            };
            let admitted = match self.admitted.get(alert.event_id.as_str()) {
                Some(a) => *a,
                None => {
                    let a = self.admit(alert);
                    self.admitted.insert(alert.event_id.as_str().to_string(), a);
                    a
                }
            };
            if !admitted {
                continue;
            }
            self.deliver(alert, until).await?;
            self.stats.delivered(alert);
            written += 1;
        }
        if let Some(summary) = self.held_summary() {
            warn!("{}", summary.summary);
            if let Err(e) = self.deliver(&summary, until).await {
                warn!("the rate limit's summary was not delivered: {e}");
            }
        }
        // Everything up to here is accepted; the runtime commits it next.
        self.accepted.clear();
        self.admitted.clear();
        Ok(WriteOutcome {
            written,
            ..WriteOutcome::default()
        })
    }

    fn deadline(&self) -> Option<Instant> {
        (!self.held.is_empty()).then(|| self.minute.0 + Duration::from_secs(60))
    }

    /// The minute of a rate limit that held triggers back ended: its summary.
    async fn tick(&mut self) -> Result<(), SinkError> {
        if let Some(summary) = self.held_summary() {
            warn!("{}", summary.summary);
            let until = Instant::now() + WRITE_BUDGET;
            if let Err(e) = self.deliver(&summary, until).await {
                warn!("the rate limit's summary was not delivered: {e}");
            }
        }
        self.minute = (Instant::now(), 0);
        Ok(())
    }

    async fn check(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

//! The transactional sink of the router (`alert-group`: the watched events keyed by
//! subject to `alert-group-subjects`) and of the rules (`alert-group-rules`: alerts to
//! `agent-alerts`, the changed rule state to `alert-group-state`); per batch one Kafka
//! transaction holds those, the dead letters and the consumed offsets. A tick each
//! second resolves the incidents whose condition stayed clear for a window, in a
//! transaction of its own.

use super::evaluate::SubjectState;
use super::rules::Rules;
use super::stats::AlertStats;
use super::{subjects, ALERTS, CHANGELOG, SUBJECTS};
use crate::sink::{Batch, OffsetStore, Revocation, Sink, SinkError, TopicPartition, WriteOutcome};
use crate::txn::{self, Out, TxnProducer};
use agentbus_client::alert::{AgentAlert, AlertAction, AlertKind};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::info;

const PROCESSOR: &str = "alert-manager";
/// The header naming the topic whose event a record of `alert-group-subjects` is.
pub const TOPIC_HEADER: &str = "agentbus-topic";
const TICK: Duration = Duration::from_secs(1);

/// How the evaluator reaches Kafka.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// Bootstrap servers.
    pub brokers: String,
    /// `transactional.id = alert-manager-<instance>`; keep it stable per instance.
    pub instance: String,
    /// The rules.
    pub rules: Rules,
}

/// The evaluator's sink.
pub struct AlertSink {
    settings: AlertSettings,
    producer: TxnProducer,
    /// Subjects partition → `<rule>/<subject>` → state.
    state: HashMap<i32, HashMap<String, SubjectState>>,
    /// Subjects partition → the latest event time seen (ms), and when it was seen. The
    /// partition's clock is that time plus the wall time since: event time while
    /// events flow (a replay or a flood is judged by its own times), real time once
    /// they stop (so that a quiet system still resolves).
    stream_time: HashMap<i32, (i64, Instant)>,
    next_tick: Instant,
    stats: Arc<AlertStats>,
}

impl std::fmt::Debug for AlertSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertSink")
            .field("instance", &self.settings.instance)
            .finish()
    }
}

/// States a batch or a tick changed: `None` forgets the key.
type Changed = BTreeMap<(i32, String), Option<SubjectState>>;

use super::evaluate::now_ms;

/// What a batch or a tick produces: the records, and the alerts among them by rule and
/// action (for `/metrics`, once the transaction committed).
#[derive(Default)]
struct Produced {
    records: Vec<Out>,
    alerts: Vec<(String, &'static str)>,
}

impl Produced {
    fn alert(&mut self, alert: &AgentAlert) {
        let mut out = Out::json(ALERTS, alert.dedup_key.clone(), alert);
        out.timestamp = alert.timestamp.millis();
        self.records.push(out);
        let action = match (alert.kind, alert.action) {
            (AlertKind::Suppressed, _) => "suppressed",
            (_, AlertAction::Trigger) => "trigger",
            (_, AlertAction::Resolve) => "resolve",
        };
        self.alerts.push((alert.rule.clone(), action));
    }
}

fn state_out(partition: i32, key: &str, state: Option<&SubjectState>) -> Out {
    Out {
        topic: CHANGELOG.to_string(),
        partition: Some(partition),
        key: Some(key.as_bytes().to_vec()),
        // Serializing this plain struct cannot fail.
        value: state.map(|s| serde_json::to_vec(s).unwrap_or_default()),
        headers: Vec::new(),
        timestamp: None,
    }
}

impl AlertSink {
    /// Creates the derived topics that are missing and the transactional producer
    /// (which fences an older process of this instance).
    pub async fn new(settings: AlertSettings) -> Result<Self, SinkError> {
        crate::pattern_extractor::ensure_topics(&settings.brokers).await?;
        let producer = TxnProducer::new(&settings.brokers, PROCESSOR, &settings.instance).await?;
        Ok(Self {
            settings,
            producer,
            state: HashMap::new(),
            stream_time: HashMap::new(),
            next_tick: Instant::now() + TICK,
            stats: Arc::new(AlertStats::default()),
        })
    }

    /// The evaluator's figures.
    pub fn stats(&self) -> Arc<AlertStats> {
        self.stats.clone()
    }

    /// Counts the alerts of a committed transaction.
    fn count(&self, alerts: &[(String, &'static str)]) {
        for (rule, action) in alerts {
            self.stats.alert(rule, action);
        }
    }

    /// The state of `key` in partition `p` as this batch left it so far.
    fn entry<'a>(
        &'a self,
        changed: &'a mut Changed,
        p: i32,
        key: String,
        fresh: impl FnOnce() -> SubjectState,
    ) -> &'a mut Option<SubjectState> {
        let known = self.state.get(&p);
        changed.entry((p, key)).or_insert_with_key(|(_, key)| {
            Some(
                known
                    .and_then(|s| s.get(key))
                    .cloned()
                    .unwrap_or_else(fresh),
            )
        })
    }

    /// The records to produce for `batch`, and the state they leave.
    fn compute(&self, batch: &Batch<'_>) -> (Produced, Changed, HashMap<i32, i64>) {
        let rules = &self.settings.rules;
        let mut out = Produced::default();
        let mut changed = BTreeMap::new();
        let mut clocks: HashMap<i32, i64> = HashMap::new();
        for r in batch.records {
            let Some((subject, agent)) = subjects::subject(rules, &r.event) else {
                continue;
            };
            if r.log() != SUBJECTS {
                out.records.push(Out {
                    topic: SUBJECTS.to_string(),
                    partition: None,
                    key: Some(subject.into_bytes()),
                    value: Some(r.json.clone().into_bytes()),
                    headers: vec![(TOPIC_HEADER.to_string(), r.topic.name().as_bytes().to_vec())],
                    timestamp: r.timestamp,
                });
                continue;
            }
            let at = r
                .event
                .timestamp_millis()
                .or(r.timestamp)
                .unwrap_or_else(now_ms);
            let p = r.partition;
            let clock = clocks.entry(p).or_insert(i64::MIN);
            *clock = (*clock).max(at);
            for rule in &rules.rules {
                let Some(obs) = subjects::observe(rule, &r.event, at) else {
                    continue;
                };
                let key = format!("{}/{subject}", rule.name);
                let slot = self.entry(&mut changed, p, key, || {
                    SubjectState::new(&rule.name, &subject, agent.clone())
                });
                if let Some(state) = slot {
                    let describe = || subjects::describe(rule, &r.event);
                    for alert in state.observe(rule, &obs, describe) {
                        info!(rule = %alert.rule, dedup_key = %alert.dedup_key, action = alert.action.as_str(), "{}", alert.summary);
                        out.alert(&alert);
                    }
                }
            }
        }
        for ((p, key), state) in &changed {
            out.records.push(state_out(*p, key, state.as_ref()));
        }
        out.records.extend(txn::dead_letters(batch, PROCESSOR));
        (out, changed, clocks)
    }

    fn apply(&mut self, changed: Changed) {
        for ((p, key), state) in changed {
            let part = self.state.entry(p).or_default();
            match state {
                Some(s) => part.insert(key, s),
                None => part.remove(&key),
            };
        }
    }

    /// Resolves, suppression summaries and forgotten states, each partition at its
    /// clock.
    fn expire(&self) -> (Produced, Changed) {
        let mut out = Produced::default();
        let mut changed = BTreeMap::new();
        for (p, states) in &self.state {
            let Some((t, seen)) = self.stream_time.get(p) else {
                continue;
            };
            let now = t.saturating_add(seen.elapsed().as_millis() as i64);
            for (key, s) in states {
                let Some(rule) = self.settings.rules.named(&s.rule) else {
                    // A rule removed from the file: its state goes.
                    changed.insert((*p, key.clone()), None);
                    continue;
                };
                if s.next_change(rule).is_none_or(|at| at > now) {
                    continue;
                }
                let mut next = s.clone();
                if let Some(alert) = next.expire(rule, now) {
                    info!(rule = %alert.rule, dedup_key = %alert.dedup_key, "alert resolved: {}", alert.summary);
                    out.alert(&alert);
                }
                if next.idle(rule, now) {
                    if let Some(summary) = next.suppression_summary(rule, now) {
                        out.alert(&summary);
                    }
                    changed.insert((*p, key.clone()), None);
                } else if next != *s {
                    changed.insert((*p, key.clone()), Some(next));
                }
            }
        }
        for ((p, key), state) in &changed {
            out.records.push(state_out(*p, key, state.as_ref()));
        }
        (out, changed)
    }
}

impl Sink for AlertSink {
    fn offset_store(&self) -> OffsetStore {
        OffsetStore::KafkaTransaction
    }

    async fn assigned(&mut self, partitions: &[TopicPartition]) -> Result<(), SinkError> {
        let wanted: BTreeSet<i32> = partitions
            .iter()
            .filter(|(t, _)| t == SUBJECTS)
            .map(|(_, p)| *p)
            .collect();
        let brokers = self.settings.brokers.clone();
        let read = wanted.clone();
        let restored = tokio::task::spawn_blocking(move || {
            crate::changelog::read(
                &brokers,
                CHANGELOG,
                &read,
                Duration::from_secs(100),
                |k, v| {
                    serde_json::from_slice::<SubjectState>(v)
                        .map_err(|e| format!("state {k:?}: {e}"))
                },
            )
        })
        .await
        .map_err(|e| SinkError::Unavailable(e.to_string()))??;
        for (p, states) in restored {
            let latest = states
                .values()
                .filter_map(|s| {
                    s.times
                        .back()
                        .copied()
                        .into_iter()
                        .chain(s.firing.as_ref().map(|e| e.last_seen))
                        .max()
                })
                .max();
            if let Some(t) = latest {
                self.stream_time.insert(p, (t, Instant::now()));
            }
            info!(
                partition = p,
                subjects = states.len(),
                "state restored from {CHANGELOG}"
            );
            self.state.insert(p, states);
        }
        Ok(())
    }

    async fn write(&mut self, batch: &Batch<'_>) -> Result<WriteOutcome, SinkError> {
        let (out, changed, clocks) = self.compute(batch);
        // librdkafka's transaction calls block; the runtime polls sinks on the group's
        // own consumer thread, so blocking here holds up nothing else.
        self.producer.transact(Some(batch), &out.records)?;
        self.count(&out.alerts);
        self.apply(changed);
        for (p, t) in clocks {
            let was = self.stream_time.get(&p).map_or(i64::MIN, |s| s.0);
            self.stream_time.insert(p, (was.max(t), Instant::now()));
        }
        Ok(WriteOutcome {
            written: batch.records.len() as u64,
            ..WriteOutcome::default()
        })
    }

    async fn revoked(
        &mut self,
        partitions: &[TopicPartition],
        _how: Revocation,
    ) -> Result<(), SinkError> {
        for (t, p) in partitions {
            if t == SUBJECTS {
                self.state.remove(p);
                self.stream_time.remove(p);
            }
        }
        Ok(())
    }

    fn deadline(&self) -> Option<Instant> {
        Some(self.next_tick)
    }

    async fn tick(&mut self) -> Result<(), SinkError> {
        self.next_tick = Instant::now() + TICK;
        let (out, changed) = self.expire();
        if out.records.is_empty() {
            return Ok(());
        }
        self.producer.transact(None, &out.records)?;
        self.count(&out.alerts);
        self.apply(changed);
        Ok(())
    }

    async fn check(&mut self) -> Result<(), SinkError> {
        self.producer.check(CHANGELOG).await
    }
}

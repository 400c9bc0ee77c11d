//! One rule on one subject: qualifying events counted in a window by event time, an
//! incident that fires once when enough fall in the window and resolves when none has
//! come for a whole window, and a cool-down between incidents.
//!
//! ```text
//!  quiet ──(needed events within window)──► firing ──(no event for a window)──► resolved
//!    ▲   (within the cool-down of the last trigger: a silent incident, counted as    │
//!    │    suppressed, summed up in the next trigger or once the cool-down is over)   │
//!    └───────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Everything here is a pure function of the events (and, for the resolve, of the
//! clock), so that the state is kept in a changelog and read back after a crash.

use super::rules::Rule;
use agentbus_client::alert::{AgentAlert, AlertAction, AlertKind};
use agentbus_client::{Id, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The UUID v5 namespace of alert event ids.
const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6a1e_47c0_0b5d_4f3e_9d5a_2c7e_1f40_a1e7);

/// What one rule keeps about one subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectState {
    /// The rule's name.
    pub rule: String,
    /// The subject (`fingerprint:…`, `signature:…`, `agent:…`, `artifact:…`).
    pub subject: String,
    /// The agent the subject names, if any.
    pub agent: Option<String>,
    /// Event times (ms) of the qualifying events within the window, oldest first.
    pub times: VecDeque<i64>,
    /// A rolling-mean rule's scores, beside `times`.
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub scores: VecDeque<f64>,
    /// The open incident.
    pub firing: Option<Episode>,
    /// Event time of the last trigger (the cool-down runs from it).
    pub last_trigger: Option<i64>,
    /// Incidents held back by the cool-down since the last trigger.
    pub suppressed: u64,
}

/// An open incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// PagerDuty's `dedup_key`, shared by the trigger and the resolve.
    pub dedup_key: String,
    /// First event of the episode (ms).
    pub first_seen: i64,
    /// Latest event (ms).
    pub last_seen: i64,
    /// Events counted.
    pub occurrences: u64,
    /// The latest event's trace id.
    pub correlation_id: String,
    /// The facts of the event that opened it.
    pub details: serde_json::Value,
    /// Held back by the cool-down: no alert opens or resolves it.
    #[serde(default)]
    pub silent: bool,
}

/// A qualifying event for one rule and subject.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// Event time (ms).
    pub at: i64,
    /// The event's trace id.
    pub correlation_id: &'a str,
    /// The score, for a rolling-mean rule.
    pub score: Option<f64>,
}

impl SubjectState {
    /// A state with nothing counted.
    pub fn new(rule: &str, subject: &str, agent: Option<String>) -> Self {
        Self {
            rule: rule.to_string(),
            subject: subject.to_string(),
            agent,
            times: VecDeque::new(),
            scores: VecDeque::new(),
            firing: None,
            last_trigger: None,
            suppressed: 0,
        }
    }

    /// Counts `obs`: the resolve of an incident that stayed clear for a window before
    /// it, and the trigger when it opens one, with the facts and few words `describe`
    /// gives (asked only then).
    pub fn observe(
        &mut self,
        rule: &Rule,
        obs: &Observation<'_>,
        describe: impl FnOnce() -> (serde_json::Value, String),
    ) -> Vec<AgentAlert> {
        let at = obs.at;
        let mut out: Vec<AgentAlert> = self.expire(rule, at).into_iter().collect();
        let i = self
            .times
            .iter()
            .rposition(|t| *t <= at)
            .map_or(0, |i| i + 1);
        self.times.insert(i, at);
        if let Some(score) = obs.score {
            self.scores.insert(i.min(self.scores.len()), score);
        }
        let newest = self.times.back().copied().unwrap_or(at);
        self.prune(newest - rule.window_ms());
        let holds = if rule.by_mean() {
            let n = self.scores.len() as u64;
            n >= rule.min_events && self.scores.iter().sum::<f64>() / (n as f64) < rule.threshold
        } else {
            self.times.len() as u64 >= rule.needed()
        };
        if let Some(ep) = &mut self.firing {
            if rule.by_mean() && !holds {
                return out;
            }
            ep.occurrences += 1;
            if at >= ep.last_seen {
                ep.last_seen = at;
                ep.correlation_id.clear();
                ep.correlation_id.push_str(obs.correlation_id);
            }
            return out;
        }
        if !holds {
            return out;
        }
        let first_seen = self.times.front().copied().unwrap_or(at);
        let silent = self
            .last_trigger
            .is_some_and(|t| at < t + rule.cooldown_ms());
        let (details, what) = if silent {
            (serde_json::Value::Null, String::new())
        } else {
            describe()
        };
        let mut ep = Episode {
            dedup_key: dedup_key(&rule.name, &self.subject, first_seen),
            first_seen,
            last_seen: at,
            occurrences: self.times.len() as u64,
            correlation_id: obs.correlation_id.to_string(),
            details,
            silent: false,
        };
        if silent {
            self.suppressed += 1;
            ep.silent = true;
            self.firing = Some(ep);
            return out;
        }
        if let Some(d) = ep.details.as_object_mut() {
            if rule.kind != AlertKind::FailedTransformation {
                d.insert("threshold".into(), rule.threshold.into());
            }
            if self.suppressed > 0 {
                d.insert("suppressed_before".into(), self.suppressed.into());
            }
        }
        self.suppressed = 0;
        self.last_trigger = Some(at);
        let summary = trigger_summary(rule, &self.subject, ep.occurrences, &what);
        out.push(self.alert(rule, &ep, AlertAction::Trigger, at, summary));
        self.firing = Some(ep);
        out
    }

    /// At `now` (ms): the resolve of an incident whose condition stayed clear for a
    /// whole window; counts that left the window are dropped.
    pub fn expire(&mut self, rule: &Rule, now: i64) -> Option<AgentAlert> {
        let window = rule.window_ms();
        self.prune(now - window);
        let ep = self.firing.as_ref()?;
        if now < ep.last_seen + window {
            return None;
        }
        let ep = self.firing.take()?;
        if ep.silent {
            return None;
        }
        let summary = format!(
            "resolved: {} clear for {} ({} event(s) in the incident)",
            self.subject,
            show_duration(window),
            ep.occurrences
        );
        Some(self.alert(rule, &ep, AlertAction::Resolve, now, summary))
    }

    /// Drops what is at or before `oldest`.
    fn prune(&mut self, oldest: i64) {
        while self.times.front().is_some_and(|t| *t <= oldest) {
            self.times.pop_front();
            self.scores.pop_front();
        }
    }

    /// When [`SubjectState::expire`] has something to do next (ms).
    pub fn next_change(&self, rule: &Rule) -> Option<i64> {
        let window = rule.window_ms();
        let resolve = self.firing.as_ref().map(|ep| ep.last_seen + window);
        let count = self.times.front().map(|t| t + window);
        let cooldown = self.last_trigger.map(|t| t + rule.cooldown_ms());
        [resolve, count, cooldown].into_iter().flatten().min()
    }

    /// Nothing left that a later event could need: the state can be forgotten.
    pub fn idle(&self, rule: &Rule, now: i64) -> bool {
        self.firing.is_none()
            && self
                .times
                .back()
                .is_none_or(|t| *t <= now - rule.window_ms())
            && self
                .last_trigger
                .is_none_or(|t| now >= t + rule.cooldown_ms())
    }

    /// The summary of what the cool-down held back, once the state is forgotten.
    pub fn suppression_summary(&self, rule: &Rule, now: i64) -> Option<AgentAlert> {
        if self.suppressed == 0 {
            return None;
        }
        let since = self.last_trigger.unwrap_or(now);
        let ep = Episode {
            dedup_key: dedup_key(&format!("{}-suppressed", rule.name), &self.subject, since),
            first_seen: since,
            last_seen: now,
            occurrences: self.suppressed,
            correlation_id: String::new(),
            details: serde_json::json!({ "suppressed": self.suppressed, "cooldown_seconds": rule.cooldown.as_secs() }),
            silent: false,
        };
        let summary = format!(
            "{} more incident(s) of {} for {} held back by the {} cool-down",
            self.suppressed,
            rule.name,
            self.subject,
            show_duration(rule.cooldown_ms())
        );
        let mut alert = self.alert(rule, &ep, AlertAction::Trigger, now, summary);
        alert.kind = AlertKind::Suppressed;
        alert.severity = agentbus_client::alert::Severity::Info;
        Some(alert)
    }

    fn alert(
        &self,
        rule: &Rule,
        ep: &Episode,
        action: AlertAction,
        at: i64,
        summary: String,
    ) -> AgentAlert {
        let id = uuid::Uuid::new_v5(
            &NAMESPACE,
            format!("{}/{}", ep.dedup_key, action.as_str()).as_bytes(),
        );
        let correlation = if ep.correlation_id.is_empty() {
            uuid::Uuid::new_v5(&NAMESPACE, ep.dedup_key.as_bytes()).to_string()
        } else {
            ep.correlation_id.clone()
        };
        AgentAlert {
            event_id: Id(id.to_string()),
            correlation_id: Id(correlation),
            dedup_key: ep.dedup_key.clone(),
            rule: rule.name.clone(),
            kind: rule.kind,
            action,
            severity: rule.severity,
            subject: self.subject.clone(),
            summary,
            agent_name: self.agent.clone(),
            occurrences: ep.occurrences,
            window_seconds: rule.window.as_secs(),
            first_seen: timestamp(ep.first_seen),
            last_seen: timestamp(ep.last_seen),
            details: ep.details.clone(),
            timestamp: timestamp(at),
        }
    }
}

/// `agentbus/<rule>/<subject>/<first_seen ms>`; a subject that would make it longer
/// than PagerDuty's 255 characters is replaced by its UUID v5.
pub fn dedup_key(rule: &str, subject: &str, first_seen: i64) -> String {
    let key = format!("agentbus/{rule}/{subject}/{first_seen}");
    if key.len() <= 255 {
        return key;
    }
    let hashed = uuid::Uuid::new_v5(&NAMESPACE, subject.as_bytes());
    format!("agentbus/{rule}/{hashed}/{first_seen}")
}

fn trigger_summary(rule: &Rule, subject: &str, n: u64, what: &str) -> String {
    let what: String = what.chars().take(200).collect();
    match rule.kind {
        AlertKind::RepeatedFailure => format!(
            "{n} failures of {subject} within {} (more than {}): {what}",
            show_duration(rule.window_ms()),
            rule.threshold
        ),
        AlertKind::FailedTransformation => format!("failed transformation ({subject}): {what}"),
        AlertKind::LowQuality => {
            format!("low quality ({subject}): {what}, below {}", rule.threshold)
        }
        AlertKind::Suppressed => what,
    }
}

/// `15m`, `30s`, `1h`.
pub fn show_duration(ms: i64) -> String {
    match ms {
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

/// The wall clock in ms since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// RFC 3339 with milliseconds, UTC.
pub fn timestamp(ms: i64) -> Timestamp {
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    Timestamp(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentbus_client::alert::Severity;
    use std::time::Duration;

    fn rule(kind: AlertKind, threshold: f64) -> Rule {
        Rule {
            name: "r".into(),
            kind,
            severity: Severity::Critical,
            threshold,
            window: Duration::from_secs(60),
            cooldown: Duration::from_secs(600),
            scope: super::super::rules::Scope::Artifact,
            min_events: 1,
        }
    }

    fn obs(at: i64) -> Observation<'static> {
        Observation {
            at,
            correlation_id: "7415f61f-ab2f-4961-97f5-a5f5c6499a4d",
            score: None,
        }
    }

    fn facts() -> (serde_json::Value, String) {
        (serde_json::json!({}), "boom".into())
    }

    impl SubjectState {
        fn observe_(&mut self, r: &Rule, o: &Observation<'_>) -> Vec<AgentAlert> {
            self.observe(r, o, facts)
        }
    }

    #[test]
    fn more_than_the_threshold_fires_once_and_resolves_after_a_clear_window() {
        let r = rule(AlertKind::RepeatedFailure, 3.0);
        let mut s = SubjectState::new("r", "fingerprint:x", None);
        for t in [0, 10_000, 20_000] {
            assert!(s.observe_(&r, &obs(t)).is_empty());
        }
        let fired = s
            .observe_(&r, &obs(30_000))
            .pop()
            .expect("the fourth fires");
        assert_eq!(fired.dedup_key, "agentbus/r/fingerprint:x/0");
        assert_eq!(fired.occurrences, 4);
        assert!(s.observe_(&r, &obs(40_000)).is_empty(), "one incident");
        assert!(s.expire(&r, 99_999).is_none());
        let resolved = s.expire(&r, 100_000).expect("clear for a window");
        assert_eq!(resolved.dedup_key, fired.dedup_key);
        assert_eq!(resolved.action, AlertAction::Resolve);
        assert_eq!(resolved.occurrences, 5);
        assert_ne!(resolved.event_id, fired.event_id);
        // Within the cool-down: a silent incident, then summed up.
        for t in 110_000..110_010 {
            assert!(s.observe_(&r, &obs(t)).is_empty());
        }
        assert_eq!(s.suppressed, 1);
        assert!(
            s.expire(&r, 200_000).is_none(),
            "a silent incident resolves silently"
        );
        assert!(!s.idle(&r, 200_000), "the cool-down runs until 630 s");
        assert!(s.idle(&r, 630_000));
        let summary = s.suppression_summary(&r, 630_000).unwrap();
        assert_eq!(summary.kind, AlertKind::Suppressed);
        assert_eq!(summary.occurrences, 1);
    }

    #[test]
    fn an_event_after_a_clear_window_resolves_before_it_counts() {
        let r = rule(AlertKind::FailedTransformation, 0.0);
        let mut s = SubjectState::new("r", "agent:a", Some("a".into()));
        assert_eq!(s.observe_(&r, &obs(0)).len(), 1);
        let out = s.observe_(&r, &obs(60_000));
        assert_eq!(
            out.len(),
            1,
            "the resolve; the new one is within the cool-down"
        );
        assert_eq!(out[0].action, AlertAction::Resolve);
        assert_eq!(s.suppressed, 1);
        let out = s.observe_(&r, &obs(700_000));
        let actions: Vec<_> = out.iter().map(|a| a.action).collect();
        assert_eq!(
            actions,
            [AlertAction::Trigger],
            "the silent one ended quietly"
        );
        assert_eq!(out[0].details["suppressed_before"], 1);
    }

    #[test]
    fn an_agents_mean_fires_with_enough_scores_and_resolves_once_it_recovers() {
        let mut r = rule(AlertKind::LowQuality, 0.7);
        r.scope = super::super::rules::Scope::Agent;
        r.min_events = 3;
        let mut s = SubjectState::new("r", "agent:a", Some("a".into()));
        let scored = |at: i64, score: f64| Observation {
            score: Some(score),
            ..obs(at)
        };
        assert!(s.observe_(&r, &scored(0, 0.5)).is_empty());
        assert!(
            s.observe_(&r, &scored(1_000, 0.6)).is_empty(),
            "two scores are not enough"
        );
        let fired = s.observe_(&r, &scored(2_000, 0.9));
        assert_eq!(fired.len(), 1, "mean 0.667 < 0.7");
        assert!(
            s.observe_(&r, &scored(3_000, 1.0)).is_empty(),
            "mean 0.75: not counted"
        );
        assert_eq!(s.firing.as_ref().unwrap().last_seen, 2_000);
        let resolved = s.expire(&r, 62_000).unwrap();
        assert_eq!(resolved.occurrences, 3);
    }

    #[test]
    fn a_window_by_event_time_drops_old_failures() {
        let r = rule(AlertKind::RepeatedFailure, 3.0);
        let mut s = SubjectState::new("r", "s", None);
        for t in [0, 30_000, 60_000, 90_000, 120_000] {
            assert!(s.observe_(&r, &obs(t)).is_empty(), "never 4 within 60 s");
        }
    }

    #[test]
    fn a_long_subject_keeps_the_dedup_key_short() {
        let k = dedup_key("r", &"x".repeat(400), 1);
        assert!(k.len() <= 255, "{k}");
        assert_eq!(k, dedup_key("r", &"x".repeat(400), 1));
    }
}

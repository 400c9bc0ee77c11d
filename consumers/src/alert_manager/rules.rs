//! The alert rules: a TOML file (`ALERT_RULES`), or built-in defaults that match the
//! seeds (repeated failures above `FAILURE_THRESHOLD`, failed transformations, low
//! quality). A bad file stops start-up naming the rule and the key.
//!
//! ```toml
//! [[rule]]
//! name = "repeated-failures"      # unique; part of every dedup_key
//! kind = "repeated_failure"       # repeated_failure | failed_transformation | low_quality
//! severity = "critical"           # critical | error | warning | info
//! threshold = 3                   # repeated_failure: fires above this many in the window;
//!                                 # low_quality: fires below this score
//! scope = "artifact"              # low_quality: "artifact" (each score of code-quality-metrics)
//!                                 # or "agent" (the mean of an agent's task-executions scores)
//! min_events = 5                  # scope = "agent": scores in the window before the mean counts
//! window = "15m"                  # counting window, by event time; also how long the
//!                                 # condition must stay clear before the resolve
//! cooldown = "30m"                # no new incident for the same subject sooner
//! ```

use crate::config::ConfigError;
use agentbus_client::alert::{AlertKind, Severity};
use serde::Deserialize;
use std::time::Duration;

/// What a low-quality rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Each score of an artifact (code-quality-metrics, by `path_id`).
    Artifact,
    /// The mean of an agent's scores in the window (task-executions, by `agent_name`).
    Agent,
}

/// One rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// What it watches.
    pub kind: AlertKind,
    /// The severity of its alerts.
    pub severity: Severity,
    /// `repeated_failure`: fires when more than this many failures fall in the window;
    /// `low_quality`: fires for a score below it. Unused by `failed_transformation`.
    pub threshold: f64,
    /// Counting window and clear time, by event time.
    pub window: Duration,
    /// Shortest time between two incidents of one subject.
    pub cooldown: Duration,
    /// `low_quality`: what the score belongs to.
    pub scope: Scope,
    /// `scope = "agent"`: scores in the window before the mean counts.
    pub min_events: u64,
}

impl Rule {
    /// Whether the rule watches a rolling mean (an agent's quality).
    pub fn by_mean(&self) -> bool {
        self.kind == AlertKind::LowQuality && self.scope == Scope::Agent
    }

    /// Events of a subject within the window that make the rule fire.
    pub fn needed(&self) -> u64 {
        match self.kind {
            AlertKind::RepeatedFailure => self.threshold.floor() as u64 + 1,
            _ => 1,
        }
    }

    /// The window in ms.
    pub fn window_ms(&self) -> i64 {
        self.window.as_millis() as i64
    }

    /// The cool-down in ms.
    pub fn cooldown_ms(&self) -> i64 {
        self.cooldown.as_millis() as i64
    }
}

/// The rules of one alert-manager.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// In file order.
    pub rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<String>,
    kind: Option<String>,
    severity: Option<String>,
    threshold: Option<f64>,
    window: Option<String>,
    cooldown: Option<String>,
    scope: Option<String>,
    min_events: Option<u64>,
}

/// `15m`, `30s`, `2h`, `1d`, or milliseconds (`500ms`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        "d" => n * 86_400_000,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

fn bad(rule: &str, key: &str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError::new("ALERT_RULES", format!("rule {rule:?}: {key}: {message}"))
}

impl Rules {
    /// The seeds' rules: repeated failures (more than `failure_threshold` of one
    /// fingerprint or signature in 15 min, critical), failed transformations (warning,
    /// one incident per agent per 10 min), low quality (an artifact's score below 0.7,
    /// or an agent's mean over an hour of at least 5 executions, warning).
    pub fn defaults(failure_threshold: u64) -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        Self {
            rules: vec![
                Rule {
                    name: "repeated-failures".into(),
                    kind: AlertKind::RepeatedFailure,
                    severity: Severity::Critical,
                    threshold: failure_threshold as f64,
                    window: minutes(15),
                    cooldown: minutes(30),
                    scope: Scope::Artifact,
                    min_events: 1,
                },
                Rule {
                    name: "failed-transformations".into(),
                    kind: AlertKind::FailedTransformation,
                    severity: Severity::Warning,
                    threshold: 0.0,
                    window: minutes(15),
                    cooldown: minutes(10),
                    scope: Scope::Artifact,
                    min_events: 1,
                },
                Rule {
                    name: "low-quality".into(),
                    kind: AlertKind::LowQuality,
                    severity: Severity::Warning,
                    threshold: 0.7,
                    window: minutes(60),
                    cooldown: minutes(60),
                    scope: Scope::Artifact,
                    min_events: 1,
                },
                Rule {
                    name: "low-agent-quality".into(),
                    kind: AlertKind::LowQuality,
                    severity: Severity::Warning,
                    threshold: 0.7,
                    window: minutes(60),
                    cooldown: minutes(60),
                    scope: Scope::Agent,
                    min_events: 5,
                },
            ],
        }
    }

    /// Parses a rules file; `failure_threshold` fills a repeated-failure rule's missing
    /// `threshold`.
    pub fn parse(text: &str, failure_threshold: u64) -> Result<Self, ConfigError> {
        let file: File =
            toml::from_str(text).map_err(|e| ConfigError::new("ALERT_RULES", e.to_string()))?;
        if file.rule.is_empty() {
            return Err(ConfigError::new("ALERT_RULES", "no [[rule]] in the file"));
        }
        let mut rules = Vec::new();
        for (i, raw) in file.rule.into_iter().enumerate() {
            let label = raw.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
            let name = raw
                .name
                .filter(|n| !n.trim().is_empty())
                .ok_or_else(|| bad(&label, "name", "is required"))?;
            if name.contains('/') || name.len() > 64 {
                return Err(bad(&name, "name", "at most 64 characters, no '/'"));
            }
            if rules.iter().any(|r: &Rule| r.name == name) {
                return Err(bad(&name, "name", "is used by another rule"));
            }
            let kind = match raw.kind.as_deref() {
                Some("repeated_failure") => AlertKind::RepeatedFailure,
                Some("failed_transformation") => AlertKind::FailedTransformation,
                Some("low_quality") => AlertKind::LowQuality,
                Some(other) => {
                    return Err(bad(
                        &name,
                        "kind",
                        format!("{other:?} is not one of repeated_failure, failed_transformation, low_quality"),
                    ))
                }
                None => return Err(bad(&name, "kind", "is required")),
            };
            let severity = match raw.severity.as_deref() {
                Some(s) => s.parse().map_err(|e| bad(&name, "severity", e))?,
                None => Severity::Warning,
            };
            let threshold = match (kind, raw.threshold) {
                (AlertKind::RepeatedFailure, None) => failure_threshold as f64,
                (AlertKind::RepeatedFailure, Some(t)) if t >= 0.0 && t.fract() == 0.0 => t,
                (AlertKind::RepeatedFailure, Some(t)) => {
                    return Err(bad(
                        &name,
                        "threshold",
                        format!("{t} is not a whole number of failures"),
                    ))
                }
                (AlertKind::LowQuality, None) => 0.7,
                (AlertKind::LowQuality, Some(t)) if (0.0..=1.0).contains(&t) => t,
                (AlertKind::LowQuality, Some(t)) => {
                    return Err(bad(&name, "threshold", format!("{t} is outside 0..=1")))
                }
                (_, _) => 0.0,
            };
            let duration = |key: &str, value: Option<String>, default: u64| match value {
                None => Ok(Duration::from_secs(default)),
                Some(v) => parse_duration(&v).filter(|d| !d.is_zero()).ok_or_else(|| {
                    bad(
                        &name,
                        key,
                        format!("{v:?} is not a duration such as 30s, 15m, 2h"),
                    )
                }),
            };
            let scope = match (kind, raw.scope.as_deref()) {
                (AlertKind::LowQuality, None | Some("artifact")) => Scope::Artifact,
                (AlertKind::LowQuality, Some("agent")) => Scope::Agent,
                (AlertKind::LowQuality, Some(other)) => {
                    return Err(bad(
                        &name,
                        "scope",
                        format!("{other:?} is not artifact or agent"),
                    ))
                }
                (_, None) => Scope::Artifact,
                (_, Some(_)) => return Err(bad(&name, "scope", "only low_quality rules have one")),
            };
            let min_events = match raw.min_events {
                Some(0) => return Err(bad(&name, "min_events", "must be at least 1")),
                Some(n) => n,
                None if scope == Scope::Agent => 5,
                None => 1,
            };
            let window = duration("window", raw.window, 900)?;
            let cooldown = duration("cooldown", raw.cooldown, 1800)?;
            rules.push(Rule {
                name,
                kind,
                severity,
                threshold,
                window,
                cooldown,
                scope,
                min_events,
            });
        }
        Ok(Self { rules })
    }

    /// From `ALERT_RULES` (a path) when set, else the defaults.
    pub fn load(path: Option<&str>, failure_threshold: u64) -> Result<Self, ConfigError> {
        match path.filter(|p| !p.trim().is_empty()) {
            None => Ok(Self::defaults(failure_threshold)),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| ConfigError::new("ALERT_RULES", format!("{p}: {e}")))?;
                Self::parse(&text, failure_threshold)
            }
        }
    }

    /// The rules of `kind`.
    pub fn of(&self, kind: AlertKind) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(move |r| r.kind == kind)
    }

    /// The rule named `name`.
    pub fn named(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_seeds() {
        let r = Rules::defaults(3);
        let failures = r.of(AlertKind::RepeatedFailure).next().unwrap();
        assert_eq!(failures.needed(), 4, "more than FAILURE_THRESHOLD");
        assert_eq!(failures.window, Duration::from_secs(900));
        assert_eq!(r.of(AlertKind::LowQuality).next().unwrap().threshold, 0.7);
    }

    #[test]
    fn a_bad_file_names_the_rule_and_key() {
        let err = |text: &str| Rules::parse(text, 3).unwrap_err().to_string();
        let e = err("[[rule]]\nname = \"x\"\nkind = \"nope\"");
        assert!(e.starts_with("ALERT_RULES: rule \"x\": kind:"), "{e}");
        let e = err("[[rule]]\nname = \"x\"\nkind = \"low_quality\"\nthreshold = 7.0");
        assert!(e.contains("rule \"x\": threshold"), "{e}");
        let e = err("[[rule]]\nname = \"x\"\nkind = \"low_quality\"\nwindow = \"soon\"");
        assert!(e.contains("rule \"x\": window"), "{e}");
        let e = err("[[rule]]\nkind = \"low_quality\"");
        assert!(e.contains("rule \"#1\": name"), "{e}");
        let e = err("[[rule]]\nname = \"x\"\nkind = \"low_quality\"\nseverity = \"loud\"");
        assert!(e.contains("rule \"x\": severity"), "{e}");
        let e = err("[[rule]]\nname = \"x\"\nkind = \"low_quality\"\ncolour = 1");
        assert!(e.contains("colour"), "{e}");
        let e = err("[[rule]]\nname = \"x\"\nkind = \"low_quality\"\n[[rule]]\nname = \"x\"\nkind = \"low_quality\"");
        assert!(e.contains("used by another rule"), "{e}");
    }

    #[test]
    fn a_file_parses() {
        let r = Rules::parse(
            "[[rule]]\nname = \"f\"\nkind = \"repeated_failure\"\nseverity = \"error\"\nwindow = \"30s\"\ncooldown = \"2m\"\n",
            5,
        )
        .unwrap();
        assert_eq!(r.rules[0].threshold, 5.0);
        assert_eq!(r.rules[0].window, Duration::from_secs(30));
        assert_eq!(r.rules[0].cooldown, Duration::from_secs(120));
        assert_eq!(r.rules[0].severity, Severity::Error);
    }
}

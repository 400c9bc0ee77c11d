//! The alert-manager's own figures in `/metrics`: alerts by rule and action (the
//! evaluator's, counted once their transaction committed), deliveries by destination
//! and outcome, triggers the rate limit held back, and the time from an alert's event
//! to its acceptance.

use crate::metrics::recent::{Recent, RecentAlert};
use crate::metrics::Metric;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

/// Upper bounds (s) of the delivery latency histogram.
pub(crate) const LATENCY_BUCKETS: [f64; 10] =
    [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The figures of one group of the alert-manager.
#[derive(Debug, Default)]
pub struct AlertStats {
    /// (rule, `trigger` | `resolve` | `suppressed`) → alerts produced.
    alerts: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// (destination, `delivered` | `retried` | `refused`) → requests.
    requests: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Triggers the rate limit held back.
    held_back: AtomicU64,
    /// Seconds from an alert's event time to its acceptance: bucket counts, sum, count.
    latency: Mutex<(Vec<u64>, f64, u64)>,
    /// The latest alerts delivered.
    recent: Recent<RecentAlert>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AlertStats {
    pub(crate) fn alert(&self, rule: &str, action: &'static str) {
        *lock(&self.alerts)
            .entry((rule.to_string(), action))
            .or_default() += 1;
    }

    pub(crate) fn request(&self, destination: &'static str, outcome: &'static str) {
        *lock(&self.requests)
            .entry((destination, outcome))
            .or_default() += 1;
    }

    pub(crate) fn delivered(&self, alert: &agentbus_client::alert::AgentAlert) {
        self.recent.push(RecentAlert {
            time: crate::metrics::recent::now(),
            rule: alert.rule.clone(),
            action: alert.action.as_str().to_string(),
            severity: alert.severity.as_str().to_string(),
            subject: alert.subject.clone(),
            summary: alert.summary.clone(),
        });
    }

    /// The latest alerts delivered (or logged), newest first.
    pub fn recent_alerts(&self) -> Vec<RecentAlert> {
        self.recent.list()
    }

    pub(crate) fn held_back(&self) {
        self.held_back.fetch_add(1, Relaxed);
    }

    pub(crate) fn delivered_after(&self, seconds: f64) {
        let mut h = lock(&self.latency);
        if h.0.is_empty() {
            h.0 = vec![0; LATENCY_BUCKETS.len()];
        }
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.0[i] += 1;
            }
        }
        h.1 += seconds;
        h.2 += 1;
    }

    /// Alerts produced with `action`, every rule.
    pub fn alerts(&self, action: &str) -> u64 {
        lock(&self.alerts)
            .iter()
            .filter(|((_, a), _)| *a == action)
            .map(|(_, n)| n)
            .sum()
    }

    /// The samples of `metric` (one of the alert families), labelled `group`.
    pub(crate) fn samples(&self, metric: Metric, out: &mut String, group: &str) {
        let name = metric.name();
        match metric {
            Metric::Alerts => {
                for ((rule, action), n) in lock(&self.alerts).iter() {
                    let rule = rule.replace('\\', "\\\\").replace('"', "\\\"");
                    let _ = writeln!(
                        out,
                        "{name}{{{group},rule=\"{rule}\",action=\"{action}\"}} {n}"
                    );
                }
            }
            Metric::AlertDeliveries => {
                for ((d, o), n) in lock(&self.requests).iter() {
                    let _ = writeln!(
                        out,
                        "{name}{{{group},destination=\"{d}\",outcome=\"{o}\"}} {n}"
                    );
                }
            }
            Metric::AlertsHeldBack => {
                let _ = writeln!(out, "{name}{{{group}}} {}", self.held_back.load(Relaxed));
            }
            Metric::AlertDeliveryLatency => {
                let h = lock(&self.latency);
                for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                    let n = h.0.get(i).copied().unwrap_or(0);
                    let _ = writeln!(out, "{name}_bucket{{{group},le=\"{bound}\"}} {n}");
                }
                let _ = writeln!(out, "{name}_bucket{{{group},le=\"+Inf\"}} {}", h.2);
                let _ = writeln!(out, "{name}_sum{{{group}}} {}", h.1);
                let _ = writeln!(out, "{name}_count{{{group}}} {}", h.2);
            }
            _ => {}
        }
    }
}

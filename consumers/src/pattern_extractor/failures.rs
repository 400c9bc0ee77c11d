//! Fix suggestions from failures. Failures are first repartitioned by their bucket (the
//! `error_category`, else the `failure_type`) so that every failure of a bucket is seen
//! by one member in log order. Within a bucket a failure joins the group whose SimHash
//! is nearest to its own, within `max_distance` bits (ties: the older group), else it
//! founds a group; the group's signature is `<bucket>:<founder's hash>`.
//!
//! A failure with a `resolution` adds to its group's resolutions. A failure without one,
//! in a group that has some, gets a suggestion: the most frequent resolution (ties: the
//! first recorded), its steps, how many failures it resolved, and whether
//! `automated_fix_possible` held every time it was recorded.

use super::model::Model;
use super::signature::{distance, normalize, simhash};
use super::templates::NAMESPACE;
use agentbus_client::derived::FixSuggestion;
use agentbus_client::events::FailurePattern;
use agentbus_client::validate::Id;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The bucket (and repartition key) of a failure.
pub fn bucket(f: &FailurePattern) -> String {
    f.error_category
        .clone()
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| f.failure_type.clone())
}

/// One resolution recorded for a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    /// The resolution text.
    pub resolution: String,
    /// Its steps, as first recorded.
    pub steps: Value,
    /// Failures it resolved.
    pub count: u64,
    /// Whether every recording said an automated fix is possible.
    pub automated: bool,
}

/// Failures that look alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// `<bucket>:<hash>`.
    pub signature: String,
    /// The founder's SimHash.
    pub hash: u64,
    /// The founder's normalized message.
    pub normalized: String,
    /// Failures in the group.
    pub count: u64,
    /// Resolutions, in the order first recorded.
    pub resolutions: Vec<Resolution>,
}

/// Every group of one bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Groups, oldest first.
    pub groups: Vec<Group>,
}

/// The state key of a bucket.
pub fn key(bucket: &str) -> String {
    format!("failures/{bucket}")
}

impl Bucket {
    /// Drops the least-seen group that has no resolution, else the least-seen one (the
    /// oldest of equals).
    fn evict(&mut self) {
        let victim = self
            .groups
            .iter()
            .enumerate()
            .min_by_key(|(i, g)| (!g.resolutions.is_empty(), g.count, *i))
            .map(|(i, _)| i);
        if let Some(i) = victim {
            self.groups.remove(i);
        }
    }

    /// Adds a failure; the suggestion for it, keyed by signature, when there is one.
    pub fn add(
        &mut self,
        bucket: &str,
        f: &FailurePattern,
        model: &Model,
    ) -> Option<(String, FixSuggestion)> {
        let normalized = normalize(&f.error_message, &model.normalize);
        let hash = simhash(&normalized);
        let nearest = self
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (distance(g.hash, hash), i))
            .filter(|(d, _)| *d <= model.failures.max_distance)
            .min();
        let i = match nearest {
            Some((_, i)) => i,
            None => {
                if self.groups.len() >= model.failures.max_groups {
                    self.evict();
                }
                self.groups.push(Group {
                    signature: format!("{bucket}:{hash:016x}"),
                    hash,
                    normalized: normalized.clone(),
                    count: 0,
                    resolutions: Vec::new(),
                });
                self.groups.len() - 1
            }
        };
        let group = &mut self.groups[i];
        group.count += 1;
        let automated = f
            .prevention_strategy
            .as_ref()
            .and_then(|p| p.automated_fix_possible)
            .unwrap_or(false);
        if let Some(text) = f.resolution.as_deref().filter(|r| !r.trim().is_empty()) {
            match group.resolutions.iter_mut().find(|r| r.resolution == text) {
                Some(r) => {
                    r.count += 1;
                    r.automated &= automated;
                }
                None => group.resolutions.push(Resolution {
                    resolution: text.to_string(),
                    steps: serde_json::to_value(&f.resolution_steps).unwrap_or(Value::Null),
                    count: 1,
                    automated,
                }),
            }
            return None;
        }
        // The first of the most frequent: `max_by_key` would take the last.
        let best = group
            .resolutions
            .iter()
            .fold(None::<&Resolution>, |best, r| match best {
                Some(b) if b.count >= r.count => Some(b),
                _ => Some(r),
            })?;
        let event = FixSuggestion {
            event_id: Id(uuid::Uuid::new_v5(
                &NAMESPACE,
                format!("suggestion/{}", f.event_id.as_str()).as_bytes(),
            )
            .to_string()),
            correlation_id: f.correlation_id.clone(),
            failure_id: f.failure_id.clone(),
            fingerprint_id: f.fingerprint_id.clone(),
            signature: group.signature.clone(),
            error_category: bucket.to_string(),
            normalized_error: normalized,
            group_occurrences: group.count,
            suggested_resolution: best.resolution.clone(),
            resolution_steps: best.steps.clone(),
            resolution_count: best.count,
            automated_fix_possible: best.automated,
            timestamp: f.timestamp.clone(),
        };
        Some((group.signature.clone(), event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentbus_client::{examples, AnyEvent, Topic};

    fn failure(message: &str, resolution: Option<&str>) -> FailurePattern {
        let mut v: Value =
            serde_json::from_str(examples::json(Topic::FailurePatterns)).expect("example");
        v["error_message"] = message.into();
        v["resolution"] = resolution.map_or(Value::Null, Value::from);
        match AnyEvent::from_value(Topic::FailurePatterns, v).expect("valid") {
            AnyEvent::FailurePattern(f) => f,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_full_bucket_lets_the_least_seen_group_without_a_resolution_go() {
        let mut model = Model::default();
        model.failures.max_groups = 2;
        let mut b = Bucket::default();
        let resolved = "Connection to database host refused after retries on port";
        let lonely = "Permission denied while writing cache file as user";
        let newcomer = "Module has no attribute imported from package root";
        b.add("c", &failure(resolved, Some("restart the pool")), &model);
        b.add("c", &failure(lonely, None), &model);
        b.add("c", &failure(lonely, None), &model);
        assert_eq!(b.groups.len(), 2);
        b.add("c", &failure(newcomer, None), &model);
        let kept: Vec<&str> = b.groups.iter().map(|g| g.normalized.as_str()).collect();
        assert_eq!(b.groups.len(), 2, "{kept:?}");
        assert!(kept[0].starts_with("connection to database"), "{kept:?}");
        assert!(kept[1].starts_with("module has no attribute"), "{kept:?}");
    }
}

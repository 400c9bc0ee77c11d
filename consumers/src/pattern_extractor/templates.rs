//! Templates from executions: per task fingerprint and step sequence (the steps'
//! actions in order), how often it ran, succeeded, how long it took and how good the
//! result was; and, once it qualifies, a template in the shape of the seeds'
//! success-pattern event.
//!
//! A step's files that differ between executions become placeholders: the common
//! beginning and end are kept, what differs becomes `{{entity}}` (`{{entity_2}}`, … for
//! further ones); a step whose number of files differs becomes `{{files}}`-like
//! (`"files": "{{entity}}"`). A template is (re)published under the same `pattern_id`
//! when it first qualifies, when its steps or applicability change, when its
//! occurrences double since the last version, and (`status: withdrawn`) when it stops
//! qualifying.

use super::model::TemplateRules;
use super::signature::fnv64;
use agentbus_client::derived::{PatternTemplateEvent, TemplateCriteria, TemplateStatus};
use agentbus_client::events::TaskExecution;
use agentbus_client::events::{ApplicabilityCriteria, PatternStep, PatternTemplate};
use agentbus_client::validate::Id;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// The namespace of the extractor's deterministic UUIDs (v5).
pub const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6167_656e_7462_7573_2d6d_6c2d_6772_6f70);

/// Most values kept per applicability list.
const MAX_VALUES: usize = 32;

/// The files of one step position, as far as every execution agrees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepFiles {
    /// The same list every time (possibly empty).
    Same { files: Vec<String> },
    /// The same number of files, some differing: per file, the common start and end.
    Slots { slots: Vec<Slot> },
    /// A different number of files between executions.
    Varies,
}

/// One file position whose value differs: what every value begins and ends with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    /// Common beginning.
    pub prefix: String,
    /// Common end (never overlapping the beginning in the shortest value).
    pub suffix: String,
    /// Whether every value so far was the same.
    pub same: bool,
    /// Length (chars) of the shortest value seen.
    pub shortest: usize,
}

impl Slot {
    fn of(value: &str) -> Self {
        Self {
            prefix: value.to_string(),
            suffix: value.to_string(),
            same: true,
            shortest: value.chars().count(),
        }
    }

    fn merge(&mut self, value: &str) {
        if self.same && self.prefix == value {
            return;
        }
        self.same = false;
        let len = value.chars().count();
        self.shortest = self.shortest.min(len);
        let p: String = self
            .prefix
            .chars()
            .zip(value.chars())
            .take_while(|(a, b)| a == b)
            .map(|(a, _)| a)
            .collect();
        let mut s: Vec<char> = self
            .suffix
            .chars()
            .rev()
            .zip(value.chars().rev())
            .take_while(|(a, b)| a == b)
            .map(|(a, _)| a)
            .collect();
        s.reverse();
        let plen = p.chars().count();
        let keep = s.len().min(self.shortest.saturating_sub(plen));
        self.prefix = p;
        self.suffix = s[s.len() - keep..].iter().collect();
    }
}

impl StepFiles {
    /// Takes one execution's files in; whether the template's steps change.
    fn merge(&mut self, files: &[String]) -> bool {
        let before = self.clone();
        match self {
            StepFiles::Same { files: f } if f.as_slice() == files => {}
            StepFiles::Same { files: f } if f.len() == files.len() => {
                let mut slots: Vec<Slot> = f.iter().map(|v| Slot::of(v)).collect();
                for (slot, v) in slots.iter_mut().zip(files) {
                    slot.merge(v);
                }
                *self = StepFiles::Slots { slots };
            }
            StepFiles::Slots { slots } if slots.len() == files.len() => {
                for (slot, v) in slots.iter_mut().zip(files) {
                    slot.merge(v);
                }
            }
            StepFiles::Varies => {}
            _ => *self = StepFiles::Varies,
        }
        *self != before
    }
}

/// What was published last for a sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Published {
    /// Version number (1, 2, …).
    pub version: u64,
    /// Occurrences at that version.
    pub occurrences: u64,
    /// Whether the version withdrew the template.
    pub withdrawn: bool,
}

/// Everything known of one step sequence of one fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sequence {
    /// The task fingerprint.
    pub fingerprint_id: String,
    /// The steps' actions, in order.
    pub actions: Vec<String>,
    /// Executions.
    pub count: u64,
    /// Successful executions.
    pub successes: u64,
    /// Sum of `total_duration_ms`.
    pub duration_sum: u64,
    /// Sum of `quality_score` in millionths (exact, so any two runs agree).
    pub quality_micros: u64,
    /// Executions that had a `quality_score`.
    pub quality_n: u64,
    /// Task types seen.
    pub task_types: BTreeSet<String>,
    /// Domains seen.
    pub domains: BTreeSet<String>,
    /// Languages of the files touched.
    pub technologies: BTreeSet<String>,
    /// Per step position, the files.
    pub files: Vec<StepFiles>,
    /// The last published version.
    pub published: Option<Published>,
    /// The steps or applicability changed since the last version.
    #[serde(default)]
    pub reshaped: bool,
}

/// The state key of a sequence: fingerprint and a hash of the actions.
pub fn key(fingerprint: &str, actions: &[String]) -> String {
    format!(
        "seq/{fingerprint}/{:016x}",
        fnv64(actions.join("\u{1f}").as_bytes())
    )
}

/// The actions of an execution's steps, in step order.
pub fn actions(e: &TaskExecution) -> Vec<String> {
    let mut steps: Vec<_> = e.steps.iter().flatten().collect();
    steps.sort_by_key(|s| s.step_number);
    steps.iter().map(|s| s.action.clone()).collect()
}

fn language(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1;
    Some(match ext {
        "py" => "python",
        "rs" => "rust",
        "ts" | "tsx" => "typescript",
        "js" | "jsx" => "javascript",
        "go" => "go",
        "java" => "java",
        "rb" => "ruby",
        "sql" => "sql",
        "kt" => "kotlin",
        "swift" => "swift",
        "sh" => "shell",
        _ => return None,
    })
}

/// Adds `v` (while the set is below its bound); whether it was new.
fn insert_bounded(set: &mut BTreeSet<String>, v: &str) -> bool {
    set.len() < MAX_VALUES && !set.contains(v) && set.insert(v.to_string())
}

impl Sequence {
    /// A sequence nothing is known of yet.
    pub fn new(fingerprint_id: &str, actions: Vec<String>) -> Self {
        Self {
            fingerprint_id: fingerprint_id.to_string(),
            actions,
            count: 0,
            successes: 0,
            duration_sum: 0,
            quality_micros: 0,
            quality_n: 0,
            task_types: BTreeSet::new(),
            domains: BTreeSet::new(),
            technologies: BTreeSet::new(),
            files: Vec::new(),
            published: None,
            reshaped: false,
        }
    }

    /// Counts one execution of this sequence.
    pub fn add(&mut self, e: &TaskExecution) {
        self.count += 1;
        self.successes += u64::from(e.success);
        self.duration_sum += e.total_duration_ms;
        if let Some(q) = e.quality_score {
            self.quality_micros += (q * 1e6).round() as u64;
            self.quality_n += 1;
        }
        let mut reshaped = insert_bounded(&mut self.task_types, &e.task_type);
        if let Some(d) = &e.domain {
            reshaped |= insert_bounded(&mut self.domains, d);
        }
        let mut steps: Vec<_> = e.steps.iter().flatten().collect();
        steps.sort_by_key(|s| s.step_number);
        for (i, step) in steps.iter().enumerate() {
            let files = step.files.clone().unwrap_or_default();
            for f in &files {
                if let Some(l) = language(f) {
                    reshaped |= insert_bounded(&mut self.technologies, l);
                }
            }
            match self.files.get_mut(i) {
                Some(known) => reshaped |= known.merge(&files),
                None => self.files.push(StepFiles::Same { files }),
            }
        }
        self.reshaped |= reshaped;
    }

    /// Whether the sequence meets the rules.
    pub fn qualifies(&self, rules: &TemplateRules) -> bool {
        self.count >= rules.min_occurrences
            && self.successes as f64 >= rules.min_success_rate * self.count as f64
            && self.quality_n > 0
            && self.quality_micros as f64 >= rules.min_quality_score * 1e6 * self.quality_n as f64
    }

    /// The template's `pattern_id`: a UUID v5 of the fingerprint and the actions.
    pub fn pattern_id(&self) -> uuid::Uuid {
        let name = format!(
            "{}\u{1f}{}",
            self.fingerprint_id,
            self.actions.join("\u{1f}")
        );
        uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes())
    }

    /// The steps with placeholders, and the placeholders.
    fn template(&self) -> PatternTemplate {
        let mut placeholders = serde_json::Map::new();
        let mut next = || {
            let name = match placeholders.len() {
                0 => "entity".to_string(),
                n => format!("entity_{}", n + 1),
            };
            placeholders.insert(name.clone(), Value::from("string"));
            format!("{{{{{name}}}}}")
        };
        let mut steps = Vec::new();
        for (i, action) in self.actions.iter().enumerate() {
            let mut params = serde_json::Map::new();
            match self.files.get(i) {
                Some(StepFiles::Same { files }) if !files.is_empty() => {
                    params.insert("files".into(), Value::from(files.clone()));
                }
                Some(StepFiles::Slots { slots }) => {
                    let files: Vec<String> = slots
                        .iter()
                        .map(|s| {
                            if s.same {
                                s.prefix.clone()
                            } else {
                                format!("{}{}{}", s.prefix, next(), s.suffix)
                            }
                        })
                        .collect();
                    params.insert("files".into(), Value::from(files));
                }
                Some(StepFiles::Varies) => {
                    params.insert("files".into(), Value::from(next()));
                }
                _ => {}
            }
            steps.push(PatternStep {
                action: action.clone(),
                params,
            });
        }
        PatternTemplate {
            steps,
            placeholders: (!placeholders.is_empty()).then_some(placeholders),
        }
    }

    /// After an execution was added: the template version to publish, if any (and the
    /// sequence remembers it).
    pub fn publish(
        &mut self,
        rules: &TemplateRules,
        trigger: &TaskExecution,
    ) -> Option<(String, PatternTemplateEvent)> {
        let qualifies = self.qualifies(rules);
        let due = match &self.published {
            None => qualifies,
            Some(p) if p.withdrawn => qualifies,
            Some(p) => !qualifies || self.reshaped || self.count >= 2 * p.occurrences,
        };
        if !due {
            return None;
        }
        let version = self.published.as_ref().map_or(1, |p| p.version + 1);
        self.published = Some(Published {
            version,
            occurrences: self.count,
            withdrawn: !qualifies,
        });
        self.reshaped = false;
        let pattern_id = self.pattern_id();
        let task_type = self.task_types.iter().next().cloned().unwrap_or_default();
        let list = |set: &BTreeSet<String>| Some(set.iter().cloned().collect::<Vec<_>>());
        let event = PatternTemplateEvent {
            event_id: Id(uuid::Uuid::new_v5(
                &NAMESPACE,
                format!("{pattern_id}/{version}").as_bytes(),
            )
            .to_string()),
            correlation_id: trigger.correlation_id.clone(),
            pattern_id: Id(pattern_id.to_string()),
            fingerprint_id: Id(self.fingerprint_id.clone()),
            pattern_name: format!("{task_type}: {}", self.actions.join(" → ")),
            pattern_type: "workflow".to_string(),
            pattern_template: self.template(),
            applicability_criteria: ApplicabilityCriteria {
                task_types: list(&self.task_types),
                domains: list(&self.domains),
                technologies: list(&self.technologies),
            },
            validation_criteria: TemplateCriteria {
                min_quality_score: rules.min_quality_score,
                min_success_rate: rules.min_success_rate,
            },
            estimated_duration_ms: self.duration_sum / self.count.max(1),
            version,
            status: if qualifies {
                TemplateStatus::Active
            } else {
                TemplateStatus::Withdrawn
            },
            occurrences: self.count,
            success_rate: round4(self.successes as f64 / self.count.max(1) as f64),
            mean_quality_score: round4(
                self.quality_micros as f64 / 1e6 / self.quality_n.max(1) as f64,
            ),
            timestamp: trigger.timestamp.clone(),
        };
        Some((pattern_id.to_string(), event))
    }
}

/// Rounded to 4 decimals (so the figures read the same in every language).
pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varying_files_become_placeholders() {
        let mut f = StepFiles::Same {
            files: vec!["api/users.py".into(), "README.md".into()],
        };
        f.merge(&["api/orders.py".into(), "README.md".into()]);
        f.merge(&["api/items.py".into(), "README.md".into()]);
        let StepFiles::Slots { slots } = &f else {
            panic!("{f:?}")
        };
        // All three end in "s": the common end is "s.py".
        assert_eq!(
            (slots[0].prefix.as_str(), slots[0].suffix.as_str()),
            ("api/", "s.py")
        );
        assert!(slots[1].same);
        f.merge(&["x.py".into()]);
        assert_eq!(f, StepFiles::Varies);
    }

    #[test]
    fn prefix_and_suffix_never_overlap() {
        let mut s = Slot::of("ab");
        s.merge("abab");
        assert!(
            s.prefix.chars().count() + s.suffix.chars().count() <= 2,
            "{s:?}"
        );
    }
}

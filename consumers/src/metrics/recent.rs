//! The last few things of a kind (dead letters, alerts), newest first, for a status page.

use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Mutex;

/// How many of each kind are kept.
const KEPT: usize = 20;

/// A bounded list of the latest items.
#[derive(Debug)]
pub struct Recent<T> {
    items: Mutex<VecDeque<T>>,
}

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Self {
            items: Mutex::new(VecDeque::with_capacity(KEPT)),
        }
    }
}

impl<T: Clone> Recent<T> {
    pub(crate) fn push(&self, item: T) {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        if items.len() == KEPT {
            items.pop_back();
        }
        items.push_front(item);
    }

    /// Newest first.
    pub fn list(&self) -> Vec<T> {
        let items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        items.iter().cloned().collect()
    }
}

/// A record a group sent to the dead-letter queue.
#[derive(Debug, Clone, Serialize)]
pub struct RecentDeadLetter {
    /// When, RFC 3339.
    pub time: String,
    /// The source topic.
    pub topic: String,
    /// The source partition.
    pub partition: i32,
    /// The source offset.
    pub offset: i64,
    /// The event's id, or where it was.
    pub event: String,
    /// Why.
    pub reason: String,
}

/// An alert the alert-manager delivered (or logged, without destinations).
#[derive(Debug, Clone, Serialize)]
pub struct RecentAlert {
    /// When it was delivered, RFC 3339.
    pub time: String,
    /// The rule.
    pub rule: String,
    /// `trigger` or `resolve`.
    pub action: String,
    /// PagerDuty's severity.
    pub severity: String,
    /// What it is about.
    pub subject: String,
    /// One line.
    pub summary: String,
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

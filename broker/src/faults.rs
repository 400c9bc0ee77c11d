//! Test hooks: injected faults, request recording and strict mode. Inert unless a test
//! (testkit) turns them on; each request costs one uncontended check otherwise.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// What an injected rule does to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this Kafka error code in every error field of the response.
    Error(i16),
    /// Hold the request this long, then serve it.
    Delay(Duration),
    /// Close the connection instead of answering.
    Disconnect,
}

/// One injected rule as a test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedFault {
    pub id: u64,
    pub api_key: i16,
    /// The node it applies on; none: every node.
    pub node: Option<i32>,
    pub fault: Fault,
    /// Requests it still applies to; none: until removed.
    pub remaining: Option<usize>,
}

#[derive(Debug, Clone)]
struct Rule {
    id: u64,
    api_key: i16,
    node: Option<i32>,
    fault: Fault,
    remaining: Option<usize>,
}

/// One request as a test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub api_key: i16,
    pub version: i16,
    pub client_id: String,
    pub node_id: i32,
}

#[derive(Debug, Default)]
pub(crate) struct Faults {
    active: AtomicBool,
    next_id: AtomicU64,
    rules: Mutex<Vec<Rule>>,
    recording: AtomicBool,
    recorded: Mutex<Vec<RecordedRequest>>,
    strict: AtomicBool,
    violations: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Faults {
    /// Adds a rule for `api_key` (on `node`, or every node), for the next `times` requests
    /// or until removed; returns its id.
    pub(crate) fn inject(
        &self,
        api_key: i16,
        node: Option<i32>,
        fault: Fault,
        times: Option<usize>,
    ) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.rules).push(Rule {
            id,
            api_key,
            node,
            fault,
            remaining: times,
        });
        self.active.store(true, Ordering::Release);
        id
    }

    /// Removes a rule; whether there was one.
    pub(crate) fn remove(&self, id: u64) -> bool {
        let mut rules = lock(&self.rules);
        let before = rules.len();
        rules.retain(|r| r.id != id);
        rules.len() != before
    }

    pub(crate) fn clear(&self) {
        lock(&self.rules).clear();
    }

    pub(crate) fn rules(&self) -> Vec<InjectedFault> {
        lock(&self.rules)
            .iter()
            .map(|r| InjectedFault {
                id: r.id,
                api_key: r.api_key,
                node: r.node,
                fault: r.fault,
                remaining: r.remaining,
            })
            .collect()
    }

    /// The fault to apply to this request, if a rule matches (counting it down).
    pub(crate) fn take(&self, api_key: i16, node: i32) -> Option<Fault> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        let mut rules = lock(&self.rules);
        let pos = rules
            .iter()
            .position(|r| r.api_key == api_key && r.node.is_none_or(|n| n == node))?;
        let fault = rules[pos].fault;
        if let Some(left) = &mut rules[pos].remaining {
            *left = left.saturating_sub(1);
            if *left == 0 {
                rules.remove(pos);
            }
        }
        Some(fault)
    }

    pub(crate) fn set_recording(&self, on: bool) {
        self.recording.store(on, Ordering::Release);
    }

    pub(crate) fn record(&self, request: impl FnOnce() -> RecordedRequest) {
        if self.recording.load(Ordering::Acquire) {
            lock(&self.recorded).push(request());
        }
    }

    pub(crate) fn recorded(&self) -> Vec<RecordedRequest> {
        lock(&self.recorded).clone()
    }

    pub(crate) fn clear_recorded(&self) {
        lock(&self.recorded).clear();
    }

    pub(crate) fn set_strict(&self, on: bool) {
        self.strict.store(on, Ordering::Release);
    }

    /// In strict mode, notes a request the broker does not implement.
    pub(crate) fn violation(&self, what: impl FnOnce() -> String) {
        if self.strict.load(Ordering::Acquire) {
            let what = what();
            tracing::error!(violation = %what, "strict mode: a client used what agentbus does not implement");
            lock(&self.violations).push(what);
        }
    }

    pub(crate) fn violations(&self) -> Vec<String> {
        lock(&self.violations).clone()
    }
}

//! The extractor's state: per changelog partition, the step sequences and the failure
//! buckets; read back from `ml-group-state` (read_committed, to its last stable offset)
//! when partitions are assigned.

use super::failures::Bucket;
use super::templates::Sequence;
use crate::sink::SinkError;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// One state entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Entry {
    Sequence(Box<Sequence>),
    Bucket(Bucket),
}

impl Entry {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let v = match self {
            Entry::Sequence(s) => serde_json::to_vec(s),
            Entry::Bucket(b) => serde_json::to_vec(b),
        };
        // Serializing these plain structs cannot fail.
        v.unwrap_or_default()
    }

    pub(crate) fn decode(key: &str, value: &[u8]) -> Result<Self, String> {
        let parsed = if key.starts_with("seq/") {
            serde_json::from_slice(value).map(|s| Entry::Sequence(Box::new(s)))
        } else if key.starts_with("failures/") {
            serde_json::from_slice(value).map(Entry::Bucket)
        } else {
            return Err(format!("unknown state key {key:?}"));
        };
        parsed.map_err(|e| format!("state {key:?}: {e}"))
    }
}

/// Changelog partition → key → entry.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) parts: HashMap<i32, HashMap<String, Entry>>,
}

impl State {
    pub(crate) fn get(&self, partition: i32, key: &str) -> Option<&Entry> {
        self.parts.get(&partition)?.get(key)
    }
}

/// Reads `partitions` of the changelog from the start to their last stable offset.
pub(crate) fn read(
    brokers: &str,
    changelog: &str,
    partitions: &BTreeSet<i32>,
    limit: Duration,
) -> Result<HashMap<i32, HashMap<String, Entry>>, SinkError> {
    crate::changelog::read(brokers, changelog, partitions, limit, Entry::decode)
}

//! What is stored of each topic in the metadata store.

use crate::meta::{MetaError, MetaStore, Table, Write};
use crate::topic_config::TopicConfigs;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const TOPICS: Table = "topics";

/// What is stored of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TopicRecord {
    pub(crate) id: uuid::Uuid,
    pub(crate) partitions: i32,
    pub(crate) configs: TopicConfigs,
    /// The replication factor asked for; none (and in records written before it was
    /// kept): every presented broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) replication_factor: Option<i16>,
}

#[derive(Debug, Clone)]
pub(crate) struct TopicStore {
    meta: Arc<MetaStore>,
}

impl TopicStore {
    pub(crate) fn new(meta: Arc<MetaStore>) -> Self {
        Self { meta }
    }

    /// All stored topics.
    pub(crate) fn load(&self) -> Result<Vec<(String, TopicRecord)>, MetaError> {
        self.meta.load_json(TOPICS)
    }

    #[cfg(test)]
    pub(crate) fn meta(&self) -> &MetaStore {
        &self.meta
    }

    /// Creates or replaces a topic's record.
    pub(crate) fn put(&self, name: &str, rec: &TopicRecord) -> Result<(), MetaError> {
        self.meta.apply(&[self.meta.put_json(TOPICS, name, rec)?])
    }

    pub(crate) fn delete(&self, name: &str) -> Result<(), MetaError> {
        self.meta.apply(&[Write::Delete {
            table: TOPICS,
            key: name.to_string(),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let rec = TopicRecord {
            id: uuid::Uuid::new_v4(),
            partitions: 3,
            configs: TopicConfigs::default(),
            replication_factor: Some(2),
        };
        {
            let s = TopicStore::new(Arc::new(MetaStore::open(dir.path()).unwrap()));
            s.put("a", &rec).unwrap();
            s.put("b", &rec).unwrap();
            s.delete("b").unwrap();
        }
        let s = TopicStore::new(Arc::new(MetaStore::open(dir.path()).unwrap()));
        assert_eq!(s.load().unwrap(), vec![("a".to_string(), rec)]);
    }
}

//! Durable metadata (topics and their configs) in an embedded ACID store (redb).
//! The memory backend keeps none: topics live as long as the broker.

use crate::topic_config::TopicConfigs;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const TOPICS: TableDefinition<'_, &str, &str> = TableDefinition::new("topics");
const COUNTERS: TableDefinition<'_, &str, i64> = TableDefinition::new("counters");
const PRODUCER_ID_BLOCK: &str = "producer_id_block_end";

/// What is stored of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub id: uuid::Uuid,
    pub partitions: i32,
    pub configs: TopicConfigs,
}

/// Errors of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("metadata store {path}: {reason}")]
    Store { path: PathBuf, reason: String },
}

/// The metadata store, or nothing for the memory backend.
#[derive(Debug)]
pub struct MetaStore {
    db: Option<(redb::Database, PathBuf)>,
}

impl MetaStore {
    /// No persistence.
    pub fn memory() -> Self {
        Self { db: None }
    }

    /// Opens (or creates) `<dir>/meta.redb`.
    pub fn open(dir: &Path) -> Result<Self, MetaError> {
        let path = dir.join("meta.redb");
        let db = redb::Database::create(&path).map_err(|e| MetaError::Store {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            db: Some((db, path)),
        })
    }

    fn err(path: &Path, e: impl std::fmt::Display) -> MetaError {
        MetaError::Store {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }

    /// All stored topics.
    pub fn load_topics(&self) -> Result<Vec<(String, TopicRecord)>, MetaError> {
        let Some((db, path)) = &self.db else {
            return Ok(Vec::new());
        };
        let txn = db.begin_read().map_err(|e| Self::err(path, e))?;
        let table = match txn.open_table(TOPICS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(Self::err(path, e)),
        };
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| Self::err(path, e))? {
            let (k, v) = row.map_err(|e| Self::err(path, e))?;
            let rec: TopicRecord =
                serde_json::from_str(v.value()).map_err(|e| Self::err(path, e))?;
            out.push((k.value().to_string(), rec));
        }
        Ok(out)
    }

    /// Creates or replaces a topic's record.
    pub fn put_topic(&self, name: &str, rec: &TopicRecord) -> Result<(), MetaError> {
        let Some((db, path)) = &self.db else {
            return Ok(());
        };
        let json = serde_json::to_string(rec).map_err(|e| Self::err(path, e))?;
        let txn = db.begin_write().map_err(|e| Self::err(path, e))?;
        {
            let mut t = txn.open_table(TOPICS).map_err(|e| Self::err(path, e))?;
            t.insert(name, json.as_str())
                .map_err(|e| Self::err(path, e))?;
        }
        txn.commit().map_err(|e| Self::err(path, e))
    }

    /// Removes a topic's record.
    pub fn delete_topic(&self, name: &str) -> Result<(), MetaError> {
        let Some((db, path)) = &self.db else {
            return Ok(());
        };
        let txn = db.begin_write().map_err(|e| Self::err(path, e))?;
        {
            let mut t = txn.open_table(TOPICS).map_err(|e| Self::err(path, e))?;
            t.remove(name).map_err(|e| Self::err(path, e))?;
        }
        txn.commit().map_err(|e| Self::err(path, e))
    }
}

impl MetaStore {
    /// End of the last reserved producer id block, if any was reserved.
    pub fn producer_id_block_end(&self) -> Result<Option<i64>, MetaError> {
        let Some((db, path)) = &self.db else {
            return Ok(None);
        };
        let txn = db.begin_read().map_err(|e| Self::err(path, e))?;
        let table = match txn.open_table(COUNTERS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(Self::err(path, e)),
        };
        let value = table
            .get(PRODUCER_ID_BLOCK)
            .map_err(|e| Self::err(path, e))?
            .map(|v| v.value());
        Ok(value)
    }

    /// Durably reserves producer ids below `end`.
    pub fn set_producer_id_block_end(&self, end: i64) -> Result<(), MetaError> {
        let Some((db, path)) = &self.db else {
            return Ok(());
        };
        let txn = db.begin_write().map_err(|e| Self::err(path, e))?;
        {
            let mut t = txn.open_table(COUNTERS).map_err(|e| Self::err(path, e))?;
            t.insert(PRODUCER_ID_BLOCK, end)
                .map_err(|e| Self::err(path, e))?;
        }
        txn.commit().map_err(|e| Self::err(path, e))
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
        };
        {
            let m = MetaStore::open(dir.path()).unwrap();
            m.put_topic("a", &rec).unwrap();
            m.put_topic("b", &rec).unwrap();
            m.delete_topic("b").unwrap();
        }
        let m = MetaStore::open(dir.path()).unwrap();
        assert_eq!(m.load_topics().unwrap(), vec![("a".to_string(), rec)]);
    }
}

//! Durable metadata (topics and their configs) in an embedded ACID store (redb).
//! The memory backend keeps none: topics live as long as the broker.

use crate::topic_config::TopicConfigs;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const TOPICS: TableDefinition<'_, &str, &str> = TableDefinition::new("topics");
const COUNTERS: TableDefinition<'_, &str, i64> = TableDefinition::new("counters");
const GROUPS: TableDefinition<'_, &str, &str> = TableDefinition::new("groups");
const TXNS: TableDefinition<'_, &str, &str> = TableDefinition::new("transactions");
/// Key: group, topic and partition joined by NUL (none of them can contain one).
const OFFSETS: TableDefinition<'_, &str, &str> = TableDefinition::new("offsets");
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
    /// Every write fails while set ([`MetaStore::fail_writes`]).
    failing: std::sync::atomic::AtomicBool,
}

impl MetaStore {
    /// No persistence.
    pub fn memory() -> Self {
        Self {
            db: None,
            failing: Default::default(),
        }
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
            failing: Default::default(),
        })
    }

    /// Makes every write fail until turned off, as a full disk would: for tests of what a
    /// failed write leaves behind.
    pub fn fail_writes(&self, on: bool) {
        self.failing.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// The database to write to; an error while writes are made to fail.
    fn writable(&self) -> Result<Option<(&redb::Database, &PathBuf)>, MetaError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            let path = self
                .db
                .as_ref()
                .map_or_else(|| PathBuf::from("memory"), |(_, p)| p.clone());
            return Err(Self::err(&path, "writes are made to fail"));
        }
        Ok(self.db.as_ref().map(|(db, path)| (db, path)))
    }

    fn err(path: &Path, e: impl std::fmt::Display) -> MetaError {
        MetaError::Store {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }

    /// All stored topics.
    pub fn load_topics(&self) -> Result<Vec<(String, TopicRecord)>, MetaError> {
        self.read_table(TOPICS, |k, v| {
            let rec = serde_json::from_str(v).map_err(|e| e.to_string())?;
            Ok((k.to_string(), rec))
        })
    }

    /// Creates or replaces a topic's record.
    pub fn put_topic(&self, name: &str, rec: &TopicRecord) -> Result<(), MetaError> {
        let Some((db, path)) = self.writable()? else {
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
        let Some((db, path)) = self.writable()? else {
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
        let Some((db, path)) = self.writable()? else {
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

/// The key of a committed offset: the JSON of `[group, topic, partition]`. Names come
/// from clients and may hold any character (a NUL too); this encoding is unambiguous.
fn offset_key(group: &str, topic: &str, partition: i32) -> String {
    serde_json::json!([group, topic, partition]).to_string()
}

/// The key earlier versions wrote, `group\0topic\0partition`; still read and removed.
fn legacy_offset_key(group: &str, topic: &str, partition: i32) -> String {
    format!("{group}\0{topic}\0{partition}")
}

fn parse_offset_key(k: &str) -> Option<(String, String, i32)> {
    if k.starts_with('[') {
        if let Ok(parsed) = serde_json::from_str::<(String, String, i32)>(k) {
            return Some(parsed);
        }
    }
    // Legacy: the partition is last and a topic name holds no NUL; the group is the rest.
    let mut parts = k.rsplitn(3, '\0');
    let partition = parts.next()?.parse().ok()?;
    let topic = parts.next()?.to_string();
    let group = parts.next()?.to_string();
    Some((group, topic, partition))
}

impl MetaStore {
    fn read_table<K: redb::Key + 'static, V: redb::Value + 'static, T>(
        &self,
        def: TableDefinition<'_, K, V>,
        mut f: impl FnMut(K::SelfType<'_>, V::SelfType<'_>) -> Result<T, String>,
    ) -> Result<Vec<T>, MetaError> {
        let Some((db, path)) = &self.db else {
            return Ok(Vec::new());
        };
        let txn = db.begin_read().map_err(|e| Self::err(path, e))?;
        let table = match txn.open_table(def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(Self::err(path, e)),
        };
        let mut out = Vec::new();
        for row in table.iter().map_err(|e| Self::err(path, e))? {
            let (k, v) = row.map_err(|e| Self::err(path, e))?;
            out.push(f(k.value(), v.value()).map_err(|e| Self::err(path, e))?);
        }
        Ok(out)
    }

    fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), MetaError> {
        let Some((db, path)) = self.writable()? else {
            return Ok(());
        };
        let txn = db.begin_write().map_err(|e| Self::err(path, e))?;
        f(&txn).map_err(|e| Self::err(path, e))?;
        txn.commit().map_err(|e| Self::err(path, e))
    }

    /// Every transactional id's state.
    pub fn load_txns(&self) -> Result<Vec<crate::txn::coordinator::TxnMeta>, MetaError> {
        self.read_table(TXNS, |_, v| {
            serde_json::from_str(v).map_err(|e| e.to_string())
        })
    }

    fn json(&self, value: &impl Serialize) -> Result<String, MetaError> {
        serde_json::to_string(value).map_err(|e| MetaError::Store {
            path: self
                .db
                .as_ref()
                .map_or_else(|| PathBuf::from("memory"), |(_, p)| p.clone()),
            reason: e.to_string(),
        })
    }

    pub fn put_txn(&self, txn: &crate::txn::coordinator::TxnMeta) -> Result<(), MetaError> {
        let json = self.json(txn)?;
        self.write(|t| {
            t.open_table(TXNS)?
                .insert(txn.transactional_id.as_str(), json.as_str())?;
            Ok(())
        })
    }

    /// Every stored group snapshot.
    pub fn load_groups(
        &self,
    ) -> Result<Vec<(String, crate::group::store::GroupSnapshot)>, MetaError> {
        self.read_table(GROUPS, |k, v| {
            let snap = serde_json::from_str(v).map_err(|e| e.to_string())?;
            Ok((k.to_string(), snap))
        })
    }

    /// Every committed offset: (group, topic, partition, offset).
    pub fn load_offsets(
        &self,
    ) -> Result<Vec<(String, String, i32, crate::group::store::CommittedOffset)>, MetaError> {
        let rows = self.read_table(OFFSETS, |k, v| {
            // A row that cannot be read is skipped, not a data directory that cannot open.
            let Some((g, t, p)) = parse_offset_key(k) else {
                tracing::warn!(key = ?k, "skipping a committed offset with an unreadable key");
                return Ok(None);
            };
            match serde_json::from_str(v) {
                Ok(c) => Ok(Some((g, t, p, c))),
                Err(e) => {
                    tracing::warn!(key = ?k, error = %e, "skipping an unreadable committed offset");
                    Ok(None)
                }
            }
        })?;
        Ok(rows.into_iter().flatten().collect())
    }

    pub fn put_group(
        &self,
        group: &str,
        snap: &crate::group::store::GroupSnapshot,
    ) -> Result<(), MetaError> {
        let json = self.json(snap)?;
        self.write(|txn| {
            txn.open_table(GROUPS)?.insert(group, json.as_str())?;
            Ok(())
        })
    }

    /// Stores offsets in one transaction.
    pub fn put_offsets(
        &self,
        group: &str,
        offsets: &[(String, i32, crate::group::store::CommittedOffset)],
    ) -> Result<(), MetaError> {
        let rows = offsets
            .iter()
            .map(|(topic, partition, c)| Ok((offset_key(group, topic, *partition), self.json(c)?)))
            .collect::<Result<Vec<_>, MetaError>>()?;
        self.write(|txn| {
            let mut t = txn.open_table(OFFSETS)?;
            for ((key, json), (topic, partition, _)) in rows.iter().zip(offsets) {
                t.remove(legacy_offset_key(group, topic, *partition).as_str())?;
                t.insert(key.as_str(), json.as_str())?;
            }
            Ok(())
        })
    }

    pub fn delete_offsets(
        &self,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<(), MetaError> {
        if partitions.is_empty() {
            return Ok(());
        }
        self.write(|txn| {
            let mut t = txn.open_table(OFFSETS)?;
            for (topic, partition) in partitions {
                t.remove(offset_key(group, topic, *partition).as_str())?;
                t.remove(legacy_offset_key(group, topic, *partition).as_str())?;
            }
            Ok(())
        })
    }

    /// Removes a group's snapshot and all its offsets.
    pub fn delete_group(&self, group: &str) -> Result<(), MetaError> {
        // By the parsed group, not a prefix: `group\0` is also how the legacy keys of a
        // group named `group\0…` start.
        let keys: Vec<String> = self
            .read_table(OFFSETS, |k, _| Ok(k.to_string()))?
            .into_iter()
            .filter(|k| parse_offset_key(k).is_some_and(|(g, _, _)| g == group))
            .collect();
        self.write(|txn| {
            txn.open_table(GROUPS)?.remove(group)?;
            let mut t = txn.open_table(OFFSETS)?;
            for k in &keys {
                t.remove(k.as_str())?;
            }
            Ok(())
        })
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

    fn committed(offset: i64) -> crate::group::store::CommittedOffset {
        crate::group::store::CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 0,
        }
    }

    fn offsets(m: &MetaStore) -> Vec<(String, String, i32, i64)> {
        let mut out: Vec<_> = m
            .load_offsets()
            .unwrap()
            .into_iter()
            .map(|(g, t, p, c)| (g, t, p, c.offset))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn any_group_name_reopens_and_deleting_a_group_leaves_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let odd = "a\0b\0c";
        {
            let m = MetaStore::open(dir.path()).unwrap();
            m.put_offsets("a", &[("t".into(), 0, committed(5))])
                .unwrap();
            m.put_offsets(odd, &[("t".into(), 1, committed(7))])
                .unwrap();
            m.put_offsets("[\"x", &[("t".into(), 2, committed(9))])
                .unwrap();
        }
        let m = MetaStore::open(dir.path()).unwrap();
        assert_eq!(
            offsets(&m),
            vec![
                ("[\"x".into(), "t".into(), 2, 9),
                ("a".into(), "t".into(), 0, 5),
                (odd.into(), "t".into(), 1, 7),
            ]
        );
        m.delete_group("a").unwrap();
        assert_eq!(
            offsets(&m).len(),
            2,
            "deleting `a` took another group's offsets"
        );
    }

    #[test]
    fn offsets_stored_by_earlier_versions_are_read_replaced_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        {
            let m = MetaStore::open(dir.path()).unwrap();
            let json = serde_json::to_string(&committed(3)).unwrap();
            m.write(|txn| {
                let mut t = txn.open_table(OFFSETS)?;
                t.insert(legacy_offset_key("g", "t", 0).as_str(), json.as_str())?;
                t.insert(legacy_offset_key("h", "t", 0).as_str(), json.as_str())?;
                t.insert("garbage", json.as_str())?;
                Ok(())
            })
            .unwrap();
        }
        let m = MetaStore::open(dir.path()).unwrap();
        assert_eq!(
            offsets(&m),
            vec![
                ("g".into(), "t".into(), 0, 3),
                ("h".into(), "t".into(), 0, 3)
            ]
        );
        m.put_offsets("g", &[("t".into(), 0, committed(4))])
            .unwrap();
        assert_eq!(offsets(&m)[0], ("g".into(), "t".into(), 0, 4));
        assert_eq!(offsets(&m).len(), 2);
        m.delete_group("h").unwrap();
        assert_eq!(offsets(&m), vec![("g".into(), "t".into(), 0, 4)]);
    }
}

//! The metadata store: named tables of string keys and values, written in atomic batches,
//! kept in memory ([`MemoryEngine`]) or in an embedded ACID store ([`RedbEngine`]).
//!
//! It knows nothing of what is stored: each owner encodes its own records next to its code
//! (topics in `state::topic_store`, groups and offsets in `group::store`, transactions and
//! producer ids in `txn::store`).

mod memory;
mod redb_engine;

pub(crate) use memory::MemoryEngine;
pub(crate) use redb_engine::RedbEngine;

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// A table's name.
pub(crate) type Table = &'static str;

/// A row's key and its value decoded, or why it could not be.
pub(crate) type DecodedRow<T> = (String, Result<T, String>);

/// One change of a batch that [`Engine::apply`] makes all at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Write {
    Put {
        table: Table,
        key: String,
        value: String,
    },
    Delete {
        table: Table,
        key: String,
    },
}

/// Errors of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("metadata store {store}: {reason}")]
    Store { store: String, reason: String },
}

/// Where metadata is kept.
pub(crate) trait Engine: std::fmt::Debug + Send + Sync {
    /// Every row of a table, in key order; none when it was never written.
    fn scan(&self, table: Table) -> Result<Vec<(String, String)>, MetaError>;
    /// All the writes or none.
    fn apply(&self, writes: &[Write]) -> Result<(), MetaError>;
    /// A named counter, if it was ever set.
    fn counter(&self, name: &str) -> Result<Option<i64>, MetaError>;
    fn set_counter(&self, name: &str, value: i64) -> Result<(), MetaError>;
    /// Whether a write waits on the disk.
    fn durable(&self) -> bool;
}

/// The engine, plus what every owner's store needs around it: JSON rows, and writes that
/// can be made to fail for tests.
#[derive(Debug)]
pub(crate) struct MetaStore {
    engine: Box<dyn Engine>,
    /// Every write fails while set ([`MetaStore::fail_writes`]).
    failing: AtomicBool,
    #[cfg(test)]
    before_write: std::sync::Mutex<Option<WriteHook>>,
}

/// Called before each write, for tests of what waits on a write.
#[cfg(test)]
pub(crate) struct WriteHook(pub(crate) Box<dyn Fn() + Send + Sync>);

#[cfg(test)]
impl std::fmt::Debug for WriteHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteHook")
    }
}

impl MetaStore {
    pub(crate) fn new(engine: Box<dyn Engine>) -> Self {
        Self {
            engine,
            failing: AtomicBool::new(false),
            #[cfg(test)]
            before_write: Default::default(),
        }
    }

    /// Kept as long as the broker runs.
    pub(crate) fn memory() -> Self {
        Self::new(Box::new(MemoryEngine::default()))
    }

    /// Opens (or creates) `<dir>/meta.redb`.
    pub(crate) fn open(dir: &Path) -> Result<Self, MetaError> {
        Ok(Self::new(Box::new(RedbEngine::open(
            &dir.join("meta.redb"),
        )?)))
    }

    /// Makes every write fail until turned off, as a full disk would: for tests of what a
    /// failed write leaves behind.
    #[cfg(test)]
    pub(crate) fn fail_writes(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }

    #[cfg(test)]
    pub(crate) fn before_write(&self, hook: Option<WriteHook>) {
        *self.before_write.lock().unwrap_or_else(|p| p.into_inner()) = hook;
    }

    /// An error of this store (the engine's `Debug` names it: a path, or memory).
    fn error(&self, reason: String) -> MetaError {
        MetaError::Store {
            store: format!("{:?}", self.engine),
            reason,
        }
    }

    fn check_writable(&self) -> Result<(), MetaError> {
        #[cfg(test)]
        if let Some(hook) = &*self.before_write.lock().unwrap_or_else(|p| p.into_inner()) {
            (hook.0)();
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(self.error("writes are made to fail".into()));
        }
        Ok(())
    }

    pub(crate) fn scan(&self, table: Table) -> Result<Vec<(String, String)>, MetaError> {
        self.engine.scan(table)
    }

    /// Every row of a table decoded from JSON; a row that cannot be read is an error
    /// given with its key, for the owner to skip or refuse.
    pub(crate) fn scan_json<T: DeserializeOwned>(
        &self,
        table: Table,
    ) -> Result<Vec<DecodedRow<T>>, MetaError> {
        Ok(self
            .scan(table)?
            .into_iter()
            .map(|(k, v)| {
                let row = serde_json::from_str(&v).map_err(|e| e.to_string());
                (k, row)
            })
            .collect())
    }

    /// Every row of a table decoded from JSON; a row that cannot be read is an error that
    /// names it.
    pub(crate) fn load_json<T: DeserializeOwned>(
        &self,
        table: Table,
    ) -> Result<Vec<(String, T)>, MetaError> {
        self.scan_json(table)?
            .into_iter()
            .map(|(key, row)| {
                let row =
                    row.map_err(|reason| self.error(format!("{table} row {key:?}: {reason}")))?;
                Ok((key, row))
            })
            .collect()
    }

    pub(crate) fn apply(&self, writes: &[Write]) -> Result<(), MetaError> {
        self.check_writable()?;
        if writes.is_empty() {
            return Ok(());
        }
        self.engine.apply(writes)
    }

    /// A put of `value` as JSON.
    pub(crate) fn put_json(
        &self,
        table: Table,
        key: impl Into<String>,
        value: &impl Serialize,
    ) -> Result<Write, MetaError> {
        let value = serde_json::to_string(value)
            .map_err(|e| self.error(format!("cannot encode a row of {table}: {e}")))?;
        Ok(Write::Put {
            table,
            key: key.into(),
            value,
        })
    }

    /// Whether a write waits on the disk (the redb engine; not the memory one).
    pub(crate) fn durable(&self) -> bool {
        self.engine.durable()
    }

    pub(crate) fn counter(&self, name: &str) -> Result<Option<i64>, MetaError> {
        self.engine.counter(name)
    }

    pub(crate) fn set_counter(&self, name: &str, value: i64) -> Result<(), MetaError> {
        self.check_writable()?;
        self.engine.set_counter(name, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(table: Table, key: &str, value: &str) -> Write {
        Write::Put {
            table,
            key: key.into(),
            value: value.into(),
        }
    }

    fn exercise(store: &MetaStore) {
        assert!(store.scan("t").unwrap().is_empty());
        store
            .apply(&[put("t", "b", "2"), put("t", "a", "1"), put("u", "a", "x")])
            .unwrap();
        store
            .apply(&[
                Write::Delete {
                    table: "t",
                    key: "b".into(),
                },
                put("t", "c", "3"),
            ])
            .unwrap();
        assert_eq!(
            store.scan("t").unwrap(),
            vec![("a".into(), "1".into()), ("c".into(), "3".into())]
        );
        assert_eq!(store.counter("n").unwrap(), None);
        store.set_counter("n", 7).unwrap();
        assert_eq!(store.counter("n").unwrap(), Some(7));
        store.fail_writes(true);
        assert!(store.apply(&[put("t", "d", "4")]).is_err());
        assert!(store.set_counter("n", 8).is_err());
        store.fail_writes(false);
        assert_eq!(store.scan("t").unwrap().len(), 2);
    }

    #[test]
    fn both_engines_keep_tables_and_counters_alike() {
        exercise(&MetaStore::memory());
        let dir = tempfile::tempdir().unwrap();
        exercise(&MetaStore::open(dir.path()).unwrap());
        let reopened = MetaStore::open(dir.path()).unwrap();
        assert_eq!(reopened.scan("u").unwrap(), vec![("a".into(), "x".into())]);
        assert_eq!(reopened.counter("n").unwrap(), Some(7));
    }
}

//! The redb engine: `meta.redb` in the data directory, one ACID write transaction a batch.

use super::{Engine, MetaError, Table, Write};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};

/// Counters keep the `i64` type earlier versions created the table with.
const COUNTERS: TableDefinition<'_, &str, i64> = TableDefinition::new("counters");

fn rows(table: Table) -> TableDefinition<'static, &'static str, &'static str> {
    TableDefinition::new(table)
}

pub(crate) struct RedbEngine {
    db: redb::Database,
    path: PathBuf,
}

impl std::fmt::Debug for RedbEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())
    }
}

impl RedbEngine {
    pub(crate) fn open(path: &Path) -> Result<Self, MetaError> {
        let db = redb::Database::create(path).map_err(|e| MetaError::Store {
            store: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            db,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> MetaError {
        MetaError::Store {
            store: self.path.display().to_string(),
            reason: e.to_string(),
        }
    }

    fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), MetaError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        f(&txn).map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))
    }
}

impl Engine for RedbEngine {
    fn scan(&self, table: Table) -> Result<Vec<(String, String)>, MetaError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = match txn.open_table(rows(table)) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e)),
        };
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            out.push((k.value().to_string(), v.value().to_string()));
        }
        Ok(out)
    }

    fn apply(&self, writes: &[Write]) -> Result<(), MetaError> {
        self.write(|txn| {
            for w in writes {
                match w {
                    Write::Put { table, key, value } => {
                        txn.open_table(rows(table))?
                            .insert(key.as_str(), value.as_str())?;
                    }
                    Write::Delete { table, key } => {
                        txn.open_table(rows(table))?.remove(key.as_str())?;
                    }
                }
            }
            Ok(())
        })
    }

    fn counter(&self, name: &str) -> Result<Option<i64>, MetaError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = match txn.open_table(COUNTERS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let value = t.get(name).map_err(|e| self.err(e))?.map(|v| v.value());
        Ok(value)
    }

    fn set_counter(&self, name: &str, value: i64) -> Result<(), MetaError> {
        self.write(|txn| {
            txn.open_table(COUNTERS)?.insert(name, value)?;
            Ok(())
        })
    }

    fn durable(&self) -> bool {
        true
    }
}

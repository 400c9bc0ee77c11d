//! The memory engine: tables for as long as the broker runs.

use super::{Engine, MetaError, Table, Write};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
struct Tables {
    rows: BTreeMap<Table, BTreeMap<String, String>>,
    counters: BTreeMap<String, i64>,
}

#[derive(Debug, Default)]
pub(crate) struct MemoryEngine {
    tables: Mutex<Tables>,
}

impl MemoryEngine {
    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Engine for MemoryEngine {
    fn scan(&self, table: Table) -> Result<Vec<(String, String)>, MetaError> {
        Ok(self
            .lock()
            .rows
            .get(table)
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }

    fn apply(&self, writes: &[Write]) -> Result<(), MetaError> {
        let mut tables = self.lock();
        for w in writes {
            match w {
                Write::Put { table, key, value } => {
                    tables
                        .rows
                        .entry(table)
                        .or_default()
                        .insert(key.clone(), value.clone());
                }
                Write::Delete { table, key } => {
                    if let Some(t) = tables.rows.get_mut(table) {
                        t.remove(key);
                    }
                }
            }
        }
        Ok(())
    }

    fn counter(&self, name: &str) -> Result<Option<i64>, MetaError> {
        Ok(self.lock().counters.get(name).copied())
    }

    fn set_counter(&self, name: &str, value: i64) -> Result<(), MetaError> {
        self.lock().counters.insert(name.to_string(), value);
        Ok(())
    }

    fn durable(&self) -> bool {
        false
    }
}

//! What the coordinator keeps in the metadata store: committed offsets (written on every
//! commit) and a snapshot of each group (written when it settles), so both survive restarts.

use crate::meta::{MetaError, MetaStore, Table, Write};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    /// The next offset to consume, as Kafka stores it.
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// A member as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MemberSnapshot {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Vec<u8>)>,
    pub assignment: Vec<u8>,
}

/// A settled group as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GroupSnapshot {
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: Vec<MemberSnapshot>,
}

const GROUPS: Table = "groups";
const OFFSETS: Table = "offsets";
const GROUP_CONFIGS: Table = "group_configs";

/// Where the coordinator keeps groups and offsets.
#[derive(Debug, Clone)]
pub(crate) struct GroupStore {
    meta: Arc<MetaStore>,
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

fn delete(table: Table, key: String) -> Write {
    Write::Delete { table, key }
}

impl GroupStore {
    pub(crate) fn new(meta: Arc<MetaStore>) -> Self {
        Self { meta }
    }

    /// Whether a write waits on the disk.
    pub(crate) fn durable(&self) -> bool {
        self.meta.durable()
    }

    /// Every stored group snapshot.
    pub(crate) fn load_groups(&self) -> Result<Vec<(String, GroupSnapshot)>, MetaError> {
        self.meta.load_json(GROUPS)
    }

    /// Every committed offset: (group, topic, partition, offset). A row that cannot be
    /// read is skipped with a warning, not a data directory that cannot open.
    pub(crate) fn load_offsets(
        &self,
    ) -> Result<Vec<(String, String, i32, CommittedOffset)>, MetaError> {
        let mut out = Vec::new();
        for (k, row) in self.meta.scan_json::<CommittedOffset>(OFFSETS)? {
            let Some((g, t, p)) = parse_offset_key(&k) else {
                tracing::warn!(key = ?k, "skipping a committed offset with an unreadable key");
                continue;
            };
            match row {
                Ok(c) => out.push((g, t, p, c)),
                Err(e) => {
                    tracing::warn!(key = ?k, error = %e, "skipping an unreadable committed offset")
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn put_group(&self, group: &str, snap: &GroupSnapshot) -> Result<(), MetaError> {
        self.meta.apply(&[self.meta.put_json(GROUPS, group, snap)?])
    }

    /// Stores offsets in one transaction.
    pub(crate) fn put_offsets(
        &self,
        group: &str,
        offsets: &[(String, i32, CommittedOffset)],
    ) -> Result<(), MetaError> {
        let mut writes = Vec::with_capacity(offsets.len() * 2);
        for (topic, partition, c) in offsets {
            writes.push(delete(OFFSETS, legacy_offset_key(group, topic, *partition)));
            writes.push(
                self.meta
                    .put_json(OFFSETS, offset_key(group, topic, *partition), c)?,
            );
        }
        self.meta.apply(&writes)
    }

    pub(crate) fn delete_offsets(
        &self,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<(), MetaError> {
        let writes: Vec<_> = partitions
            .iter()
            .flat_map(|(topic, partition)| {
                [
                    delete(OFFSETS, offset_key(group, topic, *partition)),
                    delete(OFFSETS, legacy_offset_key(group, topic, *partition)),
                ]
            })
            .collect();
        self.meta.apply(&writes)
    }

    /// The configs set on groups (KIP-848 GROUP resources).
    pub(crate) fn load_group_configs(
        &self,
    ) -> Result<Vec<(String, super::configs::Configs)>, MetaError> {
        self.meta.load_json(GROUP_CONFIGS)
    }

    pub(crate) fn put_group_configs(
        &self,
        group: &str,
        configs: &super::configs::Configs,
    ) -> Result<(), MetaError> {
        let write = if configs.is_empty() {
            delete(GROUP_CONFIGS, group.to_string())
        } else {
            self.meta.put_json(GROUP_CONFIGS, group, configs)?
        };
        self.meta.apply(&[write])
    }

    /// Removes a group's snapshot and all its offsets.
    pub(crate) fn delete_group(&self, group: &str) -> Result<(), MetaError> {
        // By the parsed group, not a prefix: `group\0` is also how the legacy keys of a
        // group named `group\0…` start.
        let mut writes: Vec<_> = self
            .meta
            .scan(OFFSETS)?
            .into_iter()
            .filter(|(k, _)| parse_offset_key(k).is_some_and(|(g, _, _)| g == group))
            .map(|(k, _)| delete(OFFSETS, k))
            .collect();
        writes.push(delete(GROUPS, group.to_string()));
        self.meta.apply(&writes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 0,
        }
    }

    fn offsets(s: &GroupStore) -> Vec<(String, String, i32, i64)> {
        let mut out: Vec<_> = s
            .load_offsets()
            .unwrap()
            .into_iter()
            .map(|(g, t, p, c)| (g, t, p, c.offset))
            .collect();
        out.sort();
        out
    }

    fn open(dir: &std::path::Path) -> GroupStore {
        GroupStore::new(Arc::new(MetaStore::open(dir).unwrap()))
    }

    #[test]
    fn any_group_name_reopens_and_deleting_a_group_leaves_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let odd = "a\0b\0c";
        {
            let s = open(dir.path());
            s.put_offsets("a", &[("t".into(), 0, committed(5))])
                .unwrap();
            s.put_offsets(odd, &[("t".into(), 1, committed(7))])
                .unwrap();
            s.put_offsets("[\"x", &[("t".into(), 2, committed(9))])
                .unwrap();
        }
        let s = open(dir.path());
        assert_eq!(
            offsets(&s),
            vec![
                ("[\"x".into(), "t".into(), 2, 9),
                ("a".into(), "t".into(), 0, 5),
                (odd.into(), "t".into(), 1, 7),
            ]
        );
        s.delete_group("a").unwrap();
        assert_eq!(
            offsets(&s).len(),
            2,
            "deleting `a` took another group's offsets"
        );
    }

    #[test]
    fn offsets_stored_by_earlier_versions_are_read_replaced_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = open(dir.path());
            let json = serde_json::to_string(&committed(3)).unwrap();
            let row = |key: String| Write::Put {
                table: OFFSETS,
                key,
                value: json.clone(),
            };
            s.meta
                .apply(&[
                    row(legacy_offset_key("g", "t", 0)),
                    row(legacy_offset_key("h", "t", 0)),
                    row("garbage".into()),
                ])
                .unwrap();
        }
        let s = open(dir.path());
        assert_eq!(
            offsets(&s),
            vec![
                ("g".into(), "t".into(), 0, 3),
                ("h".into(), "t".into(), 0, 3)
            ]
        );
        s.put_offsets("g", &[("t".into(), 0, committed(4))])
            .unwrap();
        assert_eq!(offsets(&s)[0], ("g".into(), "t".into(), 0, 4));
        assert_eq!(offsets(&s).len(), 2);
        s.delete_group("h").unwrap();
        assert_eq!(offsets(&s), vec![("g".into(), "t".into(), 0, 4)]);
    }
}

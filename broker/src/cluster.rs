//! The brokers this process presents to clients: one for `agentbus broker`, or several in
//! testkit's cluster simulation, all over one shared storage. Partition leadership and
//! coordinator placement live here, so requests sent to the wrong node get the errors a real
//! cluster gives (NOT_LEADER_OR_FOLLOWER, NOT_COORDINATOR).

use std::collections::{BTreeMap, HashMap};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// One presented broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub id: i32,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    pub up: bool,
    /// The address on each further listener (index 1 on); `host`/`port` are the first's.
    pub endpoints: Vec<(String, u16)>,
}

impl Node {
    /// The address a client of listener `index` is given: the same listener's.
    pub(crate) fn endpoint(&self, index: usize) -> (&str, u16) {
        match index.checked_sub(1).and_then(|i| self.endpoints.get(i)) {
            Some((host, port)) => (host, *port),
            None => (&self.host, self.port),
        }
    }
}

/// Nodes, partition leaders and coordinator placement.
#[derive(Debug, Default)]
pub(crate) struct ClusterView {
    nodes: RwLock<BTreeMap<i32, Node>>,
    leaders: RwLock<HashMap<(String, i32), i32>>,
    coordinators: RwLock<HashMap<String, i32>>,
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// FNV-1a: a stable hash, so placement does not change between runs.
fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A partition's replicas among `nodes` (in node order): `factor` of them (every node
/// when `None`) from its `leader` on, so the leader comes first.
pub(crate) fn replica_set(nodes: &[Node], leader: i32, factor: Option<i16>) -> Vec<&Node> {
    let start = nodes.iter().position(|n| n.id == leader).unwrap_or(0);
    let count = factor.map_or(nodes.len(), |f| (f.max(1) as usize).min(nodes.len()));
    (0..count)
        .map(|i| &nodes[(start + i) % nodes.len()])
        .collect()
}

impl ClusterView {
    pub(crate) fn add_node(&self, node: Node) {
        write(&self.nodes).insert(node.id, node);
    }

    pub(crate) fn nodes(&self) -> Vec<Node> {
        read(&self.nodes).values().cloned().collect()
    }

    pub(crate) fn up_nodes(&self) -> Vec<Node> {
        read(&self.nodes)
            .values()
            .filter(|n| n.up)
            .cloned()
            .collect()
    }

    pub(crate) fn node(&self, id: i32) -> Option<Node> {
        read(&self.nodes).get(&id).cloned()
    }

    pub(crate) fn set_endpoints(&self, id: i32, endpoints: Vec<(String, u16)>) {
        if let Some(n) = write(&self.nodes).get_mut(&id) {
            n.endpoints = endpoints;
        }
    }

    pub(crate) fn set_rack(&self, id: i32, rack: Option<String>) {
        if let Some(n) = write(&self.nodes).get_mut(&id) {
            n.rack = rack;
        }
    }

    pub(crate) fn set_up(&self, id: i32, up: bool) {
        if let Some(n) = write(&self.nodes).get_mut(&id) {
            n.up = up;
        }
        if !up {
            write(&self.coordinators).retain(|_, node| *node != id);
        }
    }

    /// The node leading a partition: as assigned, else spread by topic and partition.
    pub(crate) fn leader(&self, topic: &str, partition: i32) -> i32 {
        if let Some(l) = read(&self.leaders).get(&(topic.to_string(), partition)) {
            return *l;
        }
        let nodes = read(&self.nodes);
        let ids: Vec<i32> = nodes.keys().copied().collect();
        if ids.is_empty() {
            return -1;
        }
        let start = (stable_hash(topic) as usize + partition.max(0) as usize) % ids.len();
        (0..ids.len())
            .map(|i| ids[(start + i) % ids.len()])
            .find(|id| nodes.get(id).is_some_and(|n| n.up))
            .unwrap_or(ids[start])
    }

    pub(crate) fn set_leader(&self, topic: &str, partition: i32, node: i32) {
        write(&self.leaders).insert((topic.to_string(), partition), node);
    }

    /// The coordinator of a group or transactional id: as moved, else by hash over the nodes
    /// that are up.
    pub(crate) fn coordinator(&self, key: &str) -> i32 {
        if let Some(n) = read(&self.coordinators).get(key) {
            return *n;
        }
        let up = self.up_nodes();
        if up.is_empty() {
            return -1;
        }
        up[(stable_hash(key) % up.len() as u64) as usize].id
    }

    pub(crate) fn move_coordinator(&self, key: &str, node: i32) {
        write(&self.coordinators).insert(key.to_string(), node);
    }

    /// The controller reported in Metadata: the lowest node that is up.
    pub(crate) fn controller(&self) -> i32 {
        self.up_nodes().first().map_or(-1, |n| n.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: i32) -> Node {
        Node {
            id,
            host: "h".into(),
            port: 1,
            rack: None,
            up: true,
            endpoints: Vec::new(),
        }
    }

    #[test]
    fn leaders_spread_and_avoid_down_nodes() {
        let c = ClusterView::default();
        for i in 1..=3 {
            c.add_node(node(i));
        }
        let leaders: std::collections::BTreeSet<i32> = (0..6).map(|p| c.leader("t", p)).collect();
        assert_eq!(leaders.len(), 3, "spread over all nodes");
        c.set_up(2, false);
        assert!((0..6).all(|p| c.leader("t", p) != 2));
        assert_ne!(c.coordinator("g"), 2);
        c.move_coordinator("g", 3);
        assert_eq!(c.coordinator("g"), 3);
        assert_eq!(c.controller(), 1);
    }
}

//! The classic protocol's state machine of one group (see the module docs of `group`): its
//! types and what it reports here; joining, syncing, membership and snapshots in the
//! modules below.

mod join;
mod membership;
mod snapshot;
mod sync;
#[cfg(test)]
mod tests;

use super::store::GroupStore;
use super::store::{GroupSnapshot, MemberSnapshot};
use super::{GroupConfig, GroupSummary};
use bytes::Bytes;
use indexmap::IndexMap;
use kafka_protocol::error::ResponseError;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Kafka's group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka's tools print.
    pub fn as_str(&self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// The parts of a JoinGroup request the coordinator needs.
#[derive(Debug, Clone)]
pub(crate) struct JoinRequest {
    pub group_id: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// Requests from v4 on get MEMBER_ID_REQUIRED on their first join.
    pub require_known_member_id: bool,
}

/// A member as JoinGroup's leader and DescribeGroups see it.
#[derive(Debug, Clone)]
pub struct MemberInfo {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Metadata for the chosen protocol.
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// JoinGroup's answer.
#[derive(Debug, Clone)]
pub(crate) struct JoinOutcome {
    pub error: Option<ResponseError>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    pub members: Vec<MemberInfo>,
    pub skip_assignment: bool,
}

impl JoinOutcome {
    pub(crate) fn error(e: ResponseError, member_id: &str) -> Self {
        Self {
            error: Some(e),
            generation: -1,
            protocol_type: None,
            protocol: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
            skip_assignment: false,
        }
    }
}

/// SyncGroup's answer.
#[derive(Debug, Clone)]
pub(crate) struct SyncOutcome {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignment: Bytes,
}

impl SyncOutcome {
    pub(crate) fn error(e: ResponseError) -> Self {
        Self {
            error: Some(e),
            protocol_type: None,
            protocol: None,
            assignment: Bytes::new(),
        }
    }
}

#[derive(Debug)]
struct Member {
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    last_heartbeat: Instant,
    join_waiter: Option<oneshot::Sender<JoinOutcome>>,
    sync_waiter: Option<oneshot::Sender<SyncOutcome>>,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// A group whose members speak the classic protocol (JoinGroup, SyncGroup, Heartbeat).
#[derive(Debug)]
pub(crate) struct ClassicGroup {
    id: String,
    pub(crate) state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    /// In join order: the first member becomes leader when there is none.
    members: IndexMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until they join or expire.
    pending: HashMap<String, Instant>,
    static_members: HashMap<String, String>,
    rebalance_deadline: Option<Instant>,
    /// While set, the first rebalance of an empty group waits (initial delay).
    delay_until: Option<Instant>,
    /// When the group last became Empty (offsets expire from there).
    pub(crate) empty_since: Instant,
    /// Set when the group changed in a way worth persisting.
    dirty: bool,
}

fn new_member_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

impl ClassicGroup {
    pub(crate) fn new(id: &str, now: Instant) -> Self {
        Self {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: IndexMap::new(),
            pending: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline: None,
            delay_until: None,
            empty_since: now,
            dirty: false,
        }
    }

    fn set_state(&mut self, state: GroupState, now: Instant) {
        if state == GroupState::Empty && self.state != GroupState::Empty {
            self.empty_since = now;
        }
        tracing::debug!(group = %self.id, from = self.state.as_str(), to = state.as_str(), generation = self.generation, "group state");
        self.state = state;
        self.dirty = true;
    }

    fn member_infos(&self) -> Vec<MemberInfo> {
        let protocol = self.protocol.clone().unwrap_or_default();
        self.members
            .iter()
            .map(|(id, m)| MemberInfo {
                member_id: id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: m.metadata_for(&protocol),
                assignment: m.assignment.clone(),
            })
            .collect()
    }

    pub(crate) fn summary(&self) -> GroupSummary {
        let stable = self.state == GroupState::Stable;
        GroupSummary {
            group_id: self.id.clone(),
            state: self.state,
            state_name: self.state.as_str().to_string(),
            group_type: "classic",
            generation: self.generation,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: if stable {
                self.protocol.clone().unwrap_or_default()
            } else {
                String::new()
            },
            members: self
                .member_infos()
                .into_iter()
                .map(|mut m| {
                    if !stable {
                        m.metadata = Bytes::new();
                        m.assignment = Bytes::new();
                    }
                    m
                })
                .collect(),
        }
    }

    /// Topics the members subscribe to (consumer protocol metadata).
    pub(crate) fn subscribed_topics(&self) -> BTreeSet<String> {
        use kafka_protocol::messages::ConsumerProtocolSubscription;
        use kafka_protocol::protocol::Decodable;
        let mut out = BTreeSet::new();
        if self.protocol_type.as_deref() != Some("consumer") {
            return out;
        }
        let protocol = self.protocol.clone().unwrap_or_default();
        for m in self.members.values() {
            let mut meta = m.metadata_for(&protocol);
            if meta.len() < 2 {
                continue;
            }
            let version = i16::from_be_bytes([meta[0], meta[1]]);
            let _ = bytes::Buf::get_i16(&mut meta);
            if let Ok(sub) = ConsumerProtocolSubscription::decode(&mut meta, version.min(3)) {
                out.extend(sub.topics.iter().map(|t| t.to_string()));
            }
        }
        out
    }
}

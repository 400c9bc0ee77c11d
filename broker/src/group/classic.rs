//! One consumer group's state machine (see the module docs of `group`).

use super::consumer::ConsumerGroup;
use super::store::GroupStore;
use super::store::{CommittedOffset, GroupSnapshot, MemberSnapshot};
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
pub struct JoinRequest {
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
pub struct JoinOutcome {
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
    pub fn error(e: ResponseError, member_id: &str) -> Self {
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
pub struct SyncOutcome {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignment: Bytes,
}

impl SyncOutcome {
    pub fn error(e: ResponseError) -> Self {
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

#[derive(Debug)]
pub(crate) struct Group {
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
    pub(crate) offsets: HashMap<(String, i32), CommittedOffset>,
    pub(crate) empty_since: Instant,
    /// Set when the group changed in a way worth persisting.
    dirty: bool,
    /// Present while the group uses the KIP-848 consumer protocol.
    pub(crate) consumer: Option<ConsumerGroup>,
}

fn new_member_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

impl Group {
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
            offsets: HashMap::new(),
            empty_since: now,
            dirty: false,
            consumer: None,
        }
    }

    /// Rebuilds a settled group after a restart; members' sessions start afresh.
    pub(crate) fn restore(id: &str, snap: GroupSnapshot, now: Instant) -> Self {
        let mut g = Self::new(id, now);
        g.generation = snap.generation;
        g.protocol_type = snap.protocol_type;
        g.protocol = snap.protocol;
        g.leader = snap.leader;
        for m in snap.members {
            if let Some(i) = &m.instance_id {
                g.static_members.insert(i.clone(), m.member_id.clone());
            }
            g.members.insert(
                m.member_id,
                Member {
                    instance_id: m.instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout: Duration::from_millis(m.session_timeout_ms.max(0) as u64),
                    rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64),
                    protocol_type: m.protocol_type,
                    protocols: m
                        .protocols
                        .into_iter()
                        .map(|(n, b)| (n, Bytes::from(b)))
                        .collect(),
                    assignment: Bytes::from(m.assignment),
                    last_heartbeat: now,
                    join_waiter: None,
                    sync_waiter: None,
                },
            );
        }
        g.state = if g.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        g
    }

    pub(crate) fn snapshot(&self) -> GroupSnapshot {
        GroupSnapshot {
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            members: self
                .members
                .iter()
                .map(|(id, m)| MemberSnapshot {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout.as_millis() as i32,
                    rebalance_timeout_ms: m.rebalance_timeout.as_millis() as i32,
                    protocol_type: m.protocol_type.clone(),
                    protocols: m
                        .protocols
                        .iter()
                        .map(|(n, b)| (n.clone(), b.to_vec()))
                        .collect(),
                    assignment: m.assignment.to_vec(),
                })
                .collect(),
        }
    }

    /// Writes the snapshot when the group has settled since the last write.
    pub(crate) fn persist_if_settled(&mut self, store: &GroupStore) {
        if !self.dirty || !matches!(self.state, GroupState::Stable | GroupState::Empty) {
            return;
        }
        self.dirty = false;
        if let Err(e) = store.put_group(&self.id, &self.snapshot()) {
            tracing::error!(group = %self.id, error = %e, "cannot persist group");
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

    fn check_static(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        if let Some(i) = instance_id {
            if let Some(known) = self.static_members.get(i) {
                if known != member_id {
                    return Err(ResponseError::FencedInstanceId);
                }
            }
        }
        Ok(())
    }

    fn current_join(&self, member_id: &str) -> JoinOutcome {
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.member_infos()
        } else {
            Vec::new()
        };
        JoinOutcome {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader,
            member_id: member_id.to_string(),
            members,
            skip_assignment: false,
        }
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

    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocols.is_empty() || protocol_type.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        if self
            .protocol_type
            .as_deref()
            .is_some_and(|t| t != protocol_type)
        {
            return false;
        }
        // Some protocol must be supported by every member, this one included.
        protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        })
    }

    /// Handles JoinGroup; `Ok` gives the channel the answer will arrive on.
    pub(crate) fn join(
        &mut self,
        req: JoinRequest,
        config: &GroupConfig,
        now: Instant,
    ) -> Result<oneshot::Receiver<JoinOutcome>, Box<JoinOutcome>> {
        let fail = |e: ResponseError| Err(Box::new(JoinOutcome::error(e, &req.member_id)));
        if self.state == GroupState::Dead {
            return fail(ResponseError::CoordinatorNotAvailable);
        }
        if let Some(c) = &self.consumer {
            if !c.members.is_empty() {
                return fail(ResponseError::InconsistentGroupProtocol);
            }
            self.consumer = None;
        }
        if !self.supports_protocols(&req.protocol_type, &req.protocols) {
            return fail(ResponseError::InconsistentGroupProtocol);
        }
        let (tx, rx) = oneshot::channel();
        if req.member_id.is_empty() {
            if let Some(instance) = req.instance_id.clone() {
                let new_id = new_member_id(&instance);
                if let Some(old_id) = self.static_members.get(&instance).cloned() {
                    return self.rejoin_static(req, &old_id, new_id, tx, rx, config, now);
                }
                self.static_members.insert(instance, new_id.clone());
                self.add_member(&req, &new_id, tx, config, now);
                return Ok(rx);
            }
            let new_id = new_member_id(if req.client_id.is_empty() {
                "member"
            } else {
                &req.client_id
            });
            if req.require_known_member_id {
                self.pending.insert(
                    new_id.clone(),
                    now + Duration::from_millis(req.session_timeout_ms.max(0) as u64),
                );
                return Err(Box::new(JoinOutcome::error(
                    ResponseError::MemberIdRequired,
                    &new_id,
                )));
            }
            self.add_member(&req, &new_id, tx, config, now);
            return Ok(rx);
        }
        let member_id = req.member_id.clone();
        if let Err(e) = self.check_static(&member_id, req.instance_id.as_deref()) {
            return fail(e);
        }
        if self.pending.remove(&member_id).is_some() {
            self.add_member(&req, &member_id, tx, config, now);
            return Ok(rx);
        }
        let Some(member) = self.members.get_mut(&member_id) else {
            return fail(ResponseError::UnknownMemberId);
        };
        let same_protocols = member.protocols == req.protocols;
        member.last_heartbeat = now;
        match self.state {
            GroupState::PreparingRebalance => {
                self.update_member(&req, &member_id, tx);
                self.maybe_complete_join(now);
            }
            GroupState::CompletingRebalance | GroupState::Stable
                if same_protocols && self.leader.as_deref() != Some(member_id.as_str()) =>
            {
                // A follower rejoining with nothing new gets the current generation.
                let _ = tx.send(self.current_join(&member_id));
            }
            _ => {
                self.update_member(&req, &member_id, tx);
                self.prepare_rebalance(config, now);
            }
        }
        Ok(rx)
    }

    #[allow(clippy::too_many_arguments)]
    fn rejoin_static(
        &mut self,
        req: JoinRequest,
        old_id: &str,
        new_id: String,
        tx: oneshot::Sender<JoinOutcome>,
        rx: oneshot::Receiver<JoinOutcome>,
        config: &GroupConfig,
        now: Instant,
    ) -> Result<oneshot::Receiver<JoinOutcome>, Box<JoinOutcome>> {
        let Some(mut old) = self.members.shift_remove(old_id) else {
            // Known instance whose member is gone: join as new.
            if let Some(i) = &req.instance_id {
                self.static_members.insert(i.clone(), new_id.clone());
            }
            self.add_member(&req, &new_id, tx, config, now);
            return Ok(rx);
        };
        // The old incarnation is fenced.
        if let Some(w) = old.join_waiter.take() {
            let _ = w.send(JoinOutcome::error(ResponseError::FencedInstanceId, old_id));
        }
        if let Some(w) = old.sync_waiter.take() {
            let _ = w.send(SyncOutcome::error(ResponseError::FencedInstanceId));
        }
        let same_protocols = old.protocols == req.protocols;
        old.last_heartbeat = now;
        old.client_id = req.client_id.clone();
        old.client_host = req.client_host.clone();
        old.session_timeout = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
        old.rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64);
        self.members.insert(new_id.clone(), old);
        if let Some(i) = &req.instance_id {
            self.static_members.insert(i.clone(), new_id.clone());
        }
        let was_leader = self.leader.as_deref() == Some(old_id);
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        self.dirty = true;
        match self.state {
            GroupState::Stable if same_protocols => {
                // KIP-345: no rebalance; the member syncs and gets its old assignment. A
                // leader is told to skip assigning (KIP-814).
                let mut outcome = self.current_join(&new_id);
                outcome.skip_assignment = was_leader;
                let _ = tx.send(outcome);
            }
            GroupState::PreparingRebalance => {
                self.update_member(&req, &new_id, tx);
                self.maybe_complete_join(now);
            }
            _ => {
                self.update_member(&req, &new_id, tx);
                self.prepare_rebalance(config, now);
            }
        }
        Ok(rx)
    }

    fn add_member(
        &mut self,
        req: &JoinRequest,
        member_id: &str,
        tx: oneshot::Sender<JoinOutcome>,
        config: &GroupConfig,
        now: Instant,
    ) {
        self.members.insert(
            member_id.to_string(),
            Member {
                instance_id: req.instance_id.clone(),
                client_id: req.client_id.clone(),
                client_host: req.client_host.clone(),
                session_timeout: Duration::from_millis(req.session_timeout_ms.max(0) as u64),
                rebalance_timeout: Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64),
                protocol_type: req.protocol_type.clone(),
                protocols: req.protocols.clone(),
                assignment: Bytes::new(),
                last_heartbeat: now,
                join_waiter: Some(tx),
                sync_waiter: None,
            },
        );
        if self.state == GroupState::PreparingRebalance {
            if let Some(until) = self.delay_until {
                // Each new member during the initial delay extends it, up to the rebalance
                // deadline.
                let extended = (now + config.initial_rebalance_delay)
                    .min(self.rebalance_deadline.unwrap_or(until));
                self.delay_until = Some(until.max(extended));
            }
            self.maybe_complete_join(now);
        } else {
            self.prepare_rebalance(config, now);
        }
    }

    fn update_member(
        &mut self,
        req: &JoinRequest,
        member_id: &str,
        tx: oneshot::Sender<JoinOutcome>,
    ) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.protocols = req.protocols.clone();
            m.protocol_type = req.protocol_type.clone();
            m.session_timeout = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
            m.rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64);
            m.client_id = req.client_id.clone();
            m.client_host = req.client_host.clone();
            if let Some(old) = m.join_waiter.replace(tx) {
                let _ = old.send(JoinOutcome::error(
                    ResponseError::UnknownMemberId,
                    member_id,
                ));
            }
        }
    }

    fn prepare_rebalance(&mut self, config: &GroupConfig, now: Instant) {
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncOutcome::error(ResponseError::RebalanceInProgress));
                }
            }
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(config.initial_rebalance_delay);
        let from_empty = self.state == GroupState::Empty;
        self.rebalance_deadline = Some(now + timeout);
        self.delay_until = (from_empty && !config.initial_rebalance_delay.is_zero())
            .then(|| now + config.initial_rebalance_delay.min(timeout));
        self.set_state(GroupState::PreparingRebalance, now);
        self.maybe_complete_join(now);
    }

    fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.join_waiter.is_some())
    }

    fn maybe_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        if let Some(until) = self.delay_until {
            if now < until {
                return;
            }
            self.delay_until = None;
        }
        if self.all_joined() {
            self.complete_join(now);
        }
    }

    fn complete_join(&mut self, now: Instant) {
        // Members that did not rejoin in time are out.
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.join_waiter.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            tracing::info!(group = %self.id, member = %id, "member did not rejoin in time; removed");
            self.remove_member(&id);
        }
        self.pending.clear();
        self.rebalance_deadline = None;
        self.generation += 1;
        if self.members.is_empty() {
            // Kafka keeps the protocol type of a group that emptied (tools show it).
            self.protocol = None;
            self.leader = None;
            self.set_state(GroupState::Empty, now);
            return;
        }
        self.protocol_type = self
            .members
            .values()
            .next()
            .map(|m| m.protocol_type.clone());
        self.protocol = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        for m in self.members.values_mut() {
            m.assignment = Bytes::new();
        }
        self.set_state(GroupState::CompletingRebalance, now);
        let infos = self.member_infos();
        let leader = self.leader.clone().unwrap_or_default();
        for (id, m) in self.members.iter_mut() {
            m.last_heartbeat = now;
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(JoinOutcome {
                    error: None,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol: self.protocol.clone(),
                    leader: leader.clone(),
                    member_id: id.clone(),
                    members: if *id == leader {
                        infos.clone()
                    } else {
                        Vec::new()
                    },
                    skip_assignment: false,
                });
            }
        }
        tracing::info!(group = %self.id, generation = self.generation, members = self.members.len(), "rebalance: join complete");
    }

    /// The protocol with the most votes among those every member supports; each member
    /// votes for the first of its protocols that all support.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(x, _)| x == *n))
            })
            .collect();
        let mut votes: IndexMap<&String, usize> = candidates.iter().map(|c| (*c, 0)).collect();
        for m in self.members.values() {
            if let Some((n, _)) = m.protocols.iter().find(|(n, _)| votes.contains_key(n)) {
                if let Some(v) = votes.get_mut(n) {
                    *v += 1;
                }
            }
        }
        votes
            .iter()
            .max_by_key(|(_, v)| **v)
            .map(|(n, _)| (*n).clone())
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(mut m) = self.members.shift_remove(id) {
            if let Some(i) = &m.instance_id {
                if self.static_members.get(i).map(String::as_str) == Some(id) {
                    self.static_members.remove(i);
                }
            }
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(JoinOutcome::error(ResponseError::UnknownMemberId, id));
            }
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(SyncOutcome::error(ResponseError::UnknownMemberId));
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        self.dirty = true;
    }

    pub(crate) fn sync(
        &mut self,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Result<oneshot::Receiver<SyncOutcome>, SyncOutcome> {
        let fail = |e| Err(SyncOutcome::error(e));
        if let Err(e) = self.check_static(member_id, instance_id) {
            return fail(e);
        }
        if !self.members.contains_key(member_id) {
            return fail(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return fail(ResponseError::IllegalGeneration);
        }
        let (tx, rx) = oneshot::channel();
        match self.state {
            GroupState::PreparingRebalance => return fail(ResponseError::RebalanceInProgress),
            GroupState::Empty | GroupState::Dead => return fail(ResponseError::UnknownMemberId),
            GroupState::Stable => {
                let assignment = self
                    .members
                    .get(member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                let _ = tx.send(self.sync_outcome(assignment));
            }
            GroupState::CompletingRebalance => {
                if let Some(m) = self.members.get_mut(member_id) {
                    m.last_heartbeat = now;
                    if let Some(old) = m.sync_waiter.replace(tx) {
                        let _ = old.send(SyncOutcome::error(ResponseError::UnknownMemberId));
                    }
                }
                if self.leader.as_deref() == Some(member_id) {
                    let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for (id, m) in self.members.iter_mut() {
                        m.assignment = given.remove(id).unwrap_or_default();
                    }
                    self.set_state(GroupState::Stable, now);
                    let outcomes: Vec<_> = self
                        .members
                        .values()
                        .map(|m| self.sync_outcome(m.assignment.clone()))
                        .collect();
                    for (m, outcome) in self.members.values_mut().zip(outcomes) {
                        // As Kafka does: a member's session restarts when its assignment is
                        // handed out, however long the leader took to send it.
                        m.last_heartbeat = now;
                        if let Some(w) = m.sync_waiter.take() {
                            let _ = w.send(outcome);
                        }
                    }
                    tracing::info!(group = %self.id, generation = self.generation, "rebalance complete: group stable");
                }
            }
        }
        Ok(rx)
    }

    fn sync_outcome(&self, assignment: Bytes) -> SyncOutcome {
        SyncOutcome {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            assignment,
        }
    }

    pub(crate) fn heartbeat(
        &mut self,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
    ) -> Result<(), ResponseError> {
        self.check_static(member_id, instance_id)?;
        let state = self.state;
        let current = self.generation;
        let m = self
            .members
            .get_mut(member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        if generation != current {
            return Err(ResponseError::IllegalGeneration);
        }
        m.last_heartbeat = now;
        match state {
            GroupState::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            GroupState::Empty | GroupState::Dead => Err(ResponseError::UnknownMemberId),
            GroupState::CompletingRebalance | GroupState::Stable => Ok(()),
        }
    }

    pub(crate) fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        config: &GroupConfig,
        now: Instant,
    ) -> Result<(), ResponseError> {
        let id = match (member_id.is_empty(), instance_id) {
            (true, Some(i)) => self
                .static_members
                .get(i)
                .cloned()
                .ok_or(ResponseError::UnknownMemberId)?,
            _ => {
                self.check_static(member_id, instance_id)?;
                member_id.to_string()
            }
        };
        if self.pending.remove(&id).is_some() {
            self.maybe_complete_join(now);
            return Ok(());
        }
        if !self.members.contains_key(&id) {
            return Err(ResponseError::UnknownMemberId);
        }
        tracing::info!(group = %self.id, member = %id, "member left");
        self.remove_member(&id);
        self.after_removal(config, now);
        Ok(())
    }

    fn after_removal(&mut self, config: &GroupConfig, now: Instant) {
        match self.state {
            GroupState::PreparingRebalance => self.maybe_complete_join(now),
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(config, now)
            }
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    pub(crate) fn check_commit(
        &self,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        if let Some(c) = &self.consumer {
            if generation < 0 && member_id.is_empty() && c.members.is_empty() {
                return Ok(());
            }
            let m = c
                .members
                .get(member_id)
                .ok_or(ResponseError::UnknownMemberId)?;
            return if generation == m.epoch || generation == m.previous_epoch {
                Ok(())
            } else {
                Err(ResponseError::StaleMemberEpoch)
            };
        }
        if generation < 0 && member_id.is_empty() {
            // A commit without group membership (assign(), admin tools): only while no
            // member owns the group's partitions.
            return if matches!(self.state, GroupState::Empty) {
                Ok(())
            } else {
                Err(ResponseError::UnknownMemberId)
            };
        }
        self.check_static(member_id, instance_id)?;
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }

    /// Session expiry and rebalance deadlines.
    pub(crate) fn tick(&mut self, config: &GroupConfig, now: Instant) {
        self.pending.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| {
                m.join_waiter.is_none()
                    && m.sync_waiter.is_none()
                    && now.duration_since(m.last_heartbeat) > m.session_timeout
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove_member(id);
        }
        if !expired.is_empty() {
            self.after_removal(config, now);
        }
        if self.state == GroupState::PreparingRebalance {
            if self.rebalance_deadline.is_some_and(|d| now >= d) {
                self.delay_until = None;
                self.complete_join(now);
            } else {
                self.maybe_complete_join(now);
            }
        }
    }

    pub(crate) fn summary(&self) -> GroupSummary {
        if let Some(c) = &self.consumer {
            let state_name = c.state_name();
            return GroupSummary {
                group_id: self.id.clone(),
                state: match state_name {
                    "Empty" => GroupState::Empty,
                    "Stable" => GroupState::Stable,
                    _ => GroupState::PreparingRebalance,
                },
                state_name: state_name.to_string(),
                group_type: "consumer",
                generation: c.epoch,
                protocol_type: "consumer".into(),
                protocol: c.assignor.clone(),
                members: c
                    .member_infos()
                    .into_iter()
                    .map(|m| MemberInfo {
                        member_id: m.member_id,
                        instance_id: m.instance_id,
                        client_id: m.client_id,
                        client_host: m.client_host,
                        metadata: Bytes::new(),
                        assignment: Bytes::new(),
                    })
                    .collect(),
            };
        }
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

    /// No members of either protocol.
    pub(crate) fn is_empty(&self) -> bool {
        self.state == GroupState::Empty
            && self.consumer.as_ref().is_none_or(|c| c.members.is_empty())
    }

    /// Topics the members subscribe to (consumer protocol metadata).
    pub(crate) fn subscribed_topics(&self) -> BTreeSet<String> {
        use kafka_protocol::messages::ConsumerProtocolSubscription;
        use kafka_protocol::protocol::Decodable;
        let mut out = BTreeSet::new();
        if let Some(c) = &self.consumer {
            return c.subscribed_topics();
        }
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

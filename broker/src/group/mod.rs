//! Group coordinator and committed offsets. A group ([`protocol::Group`]) holds its offsets
//! and the state machine of the protocol its members speak: classic (below) or KIP-848's
//! consumer protocol (`consumer`).
//!
//! Classic group states, as in Kafka's GroupCoordinator:
//! ```text
//!            join (first member)                 all members joined / deadline
//!  Empty ─────────────────────────► Preparing ───────────────────────────────► Completing
//!    ▲                              Rebalance ◄──────────────┐                 Rebalance
//!    │ last member leaves/expires      ▲   ▲    member joins, │                     │
//!    │ (join completes with none)      │   │    leaves, dies  │   leader's SyncGroup│
//!    └─────────────────────────────────┘   └──────────────────┴───── Stable ◄───────┘
//! ```
//! * PreparingRebalance waits until every known member has sent JoinGroup (or the rebalance
//!   timeout passes, and the stragglers are removed); then the generation is bumped, a
//!   protocol every member supports is chosen, and the leader gets the member list.
//! * From Empty the first rebalance waits `group.initial.rebalance.delay.ms` (extended by
//!   each new member, up to the rebalance timeout) so that a starting fleet joins at once.
//! * CompletingRebalance waits for the leader's assignments; other members' SyncGroup calls
//!   park until then. Stable serves heartbeats and commits.
//! * Members not waiting in JoinGroup/SyncGroup are removed when `session.timeout.ms`
//!   passes without a heartbeat; that starts a rebalance for the others.
//! * Static members (`group.instance.id`) keep their place across restarts: a rejoin with the
//!   same instance id replaces the old member id without a rebalance when the group is
//!   stable, and the old id is fenced (FENCED_INSTANCE_ID).
//!
//! Each group is a value behind its own mutex; handlers change it briefly and then await a
//! oneshot channel when the protocol makes them wait (JoinGroup, SyncGroup). A ticker drives
//! timeouts.

mod classic;
pub(crate) mod configs;
pub(crate) mod consumer;
mod protocol;
pub(crate) mod store;

pub use classic::{GroupState, MemberInfo};
pub(crate) use classic::{JoinOutcome, JoinRequest, SyncOutcome};

pub(crate) use crate::config::GroupConfig;
use crate::meta::MetaError;
use kafka_protocol::error::ResponseError;
use protocol::Group;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use store::{CommittedOffset, GroupStore};

/// All groups of this broker.
#[derive(Debug)]
pub(crate) struct Coordinator {
    config: GroupConfig,
    clock: crate::clock::Clock,
    groups: Mutex<HashMap<String, Arc<Mutex<Group>>>>,
    store: GroupStore,
    /// Per-group configs (GROUP resources).
    group_configs: configs::GroupConfigs,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One partition's committed offset as OffsetFetch reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

/// Committed offsets by topic, then partition (`None` where nothing is committed).
pub(crate) type TopicOffsets = Vec<(String, Vec<(i32, Option<FetchedOffset>)>)>;

/// A group as DescribeGroups and ListGroups show it.
#[derive(Debug, Clone)]
pub struct GroupSummary {
    pub group_id: String,
    pub state: GroupState,
    /// The state as Kafka names it for this kind of group.
    pub state_name: String,
    /// `classic` or `consumer` (KIP-848).
    pub group_type: &'static str,
    pub generation: i32,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberInfo>,
}

impl Coordinator {
    /// Restores groups and offsets from the store.
    pub(crate) fn open(
        config: GroupConfig,
        clock: crate::clock::Clock,
        store: GroupStore,
    ) -> Result<Self, MetaError> {
        let now = clock.now();
        let mut groups: HashMap<String, Group> = HashMap::new();
        for (id, snapshot) in store.load_groups()? {
            groups.insert(id.clone(), Group::restore(&id, snapshot, now));
        }
        for (id, topic, partition, committed) in store.load_offsets()? {
            groups
                .entry(id.clone())
                .or_insert_with(|| Group::new(&id, now))
                .offsets
                .insert((topic, partition), committed);
        }
        let group_configs = configs::GroupConfigs::load(&store)?;
        Ok(Self {
            config,
            clock,
            group_configs,
            groups: Mutex::new(
                groups
                    .into_iter()
                    .map(|(k, g)| (k, Arc::new(Mutex::new(g))))
                    .collect(),
            ),
            store,
        })
    }

    /// Writes a settled group's snapshot. A write to disk may wait on an fsync: on a
    /// multi-threaded runtime the async worker hands its other tasks on meanwhile
    /// (`block_in_place`; on a blocking-pool thread it just runs).
    fn persist_if_settled(&self, g: &mut Group) {
        let worker_may_block = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if self.store.durable() && worker_may_block {
            tokio::task::block_in_place(|| g.persist_if_settled(&self.store));
        } else {
            g.persist_if_settled(&self.store);
        }
    }

    pub(crate) fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// The coordinator's settings with `group`'s own configs in force.
    pub(crate) fn config_of(&self, group: &str) -> GroupConfig {
        self.group_configs.applied(group, &self.config)
    }

    /// The configs set on `group`.
    pub(crate) fn group_configs(&self, group: &str) -> configs::Configs {
        self.group_configs.get(group)
    }

    /// Checks and (unless `validate_only`) replaces `group`'s configs.
    pub(crate) fn set_group_configs(
        &self,
        group: &str,
        new: configs::Configs,
        validate_only: bool,
    ) -> Result<(), (ResponseError, String)> {
        configs::check(&new, &self.config).map_err(|m| (ResponseError::InvalidConfig, m))?;
        if validate_only {
            return Ok(());
        }
        self.group_configs
            .replace(&self.store, group, new)
            .map_err(|e| (ResponseError::KafkaStorageError, e.to_string()))
    }

    fn get(&self, id: &str) -> Option<Arc<Mutex<Group>>> {
        lock(&self.groups).get(id).cloned()
    }

    fn get_or_create(&self, id: &str) -> Arc<Mutex<Group>> {
        lock(&self.groups)
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(Group::new(id, self.clock.now()))))
            .clone()
    }

    /// JoinGroup: returns at once or after the rebalance completes.
    pub(crate) async fn join(&self, req: JoinRequest) -> JoinOutcome {
        if req.group_id.is_empty() {
            return JoinOutcome::error(ResponseError::InvalidGroupId, &req.member_id);
        }
        let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
        if session < self.config.min_session_timeout || session > self.config.max_session_timeout {
            return JoinOutcome::error(ResponseError::InvalidSessionTimeout, &req.member_id);
        }
        let group = self.get_or_create(&req.group_id);
        let rx = {
            let mut g = lock(&group);
            let now = self.clock.now();
            let joined = match g.classic_for_join(now) {
                Ok(classic) => classic.join(req.clone(), &self.config, now),
                Err(e) => return JoinOutcome::error(e, &req.member_id),
            };
            match joined {
                Ok(rx) => {
                    self.persist_if_settled(&mut g);
                    rx
                }
                Err(outcome) => return *outcome,
            }
        };
        // The group answers every parked join when the rebalance completes or the member is
        // removed; the bound is a safety net so a client is never left hanging.
        let bound = Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64)
            + self.config.initial_rebalance_delay
            + Duration::from_secs(5);
        match tokio::time::timeout(bound, rx).await {
            Ok(Ok(outcome)) => outcome,
            _ => JoinOutcome::error(ResponseError::RebalanceInProgress, &req.member_id),
        }
    }

    /// SyncGroup: the leader's call completes the rebalance; followers wait for it.
    pub(crate) async fn sync(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        assignments: Vec<(String, bytes::Bytes)>,
    ) -> SyncOutcome {
        let Some(group) = self.get(group_id) else {
            return SyncOutcome::error(ResponseError::UnknownMemberId);
        };
        let rx = {
            let mut g = lock(&group);
            let now = self.clock.now();
            let Some(classic) = g.classic() else {
                return SyncOutcome::error(ResponseError::UnknownMemberId);
            };
            let rx = classic.sync(generation, member_id, instance_id, assignments, now);
            self.persist_if_settled(&mut g);
            match rx {
                Ok(rx) => rx,
                Err(outcome) => return outcome,
            }
        };
        match tokio::time::timeout(Duration::from_secs(300), rx).await {
            Ok(Ok(outcome)) => outcome,
            _ => SyncOutcome::error(ResponseError::RebalanceInProgress),
        }
    }

    pub(crate) fn heartbeat(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        let group = self.get(group_id).ok_or(ResponseError::UnknownMemberId)?;
        let mut g = lock(&group);
        let now = self.clock.now();
        g.classic()
            .ok_or(ResponseError::UnknownMemberId)?
            .heartbeat(generation, member_id, instance_id, now)
    }

    /// LeaveGroup for each (member id, instance id); returns one result per member.
    pub(crate) fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<Result<(), ResponseError>>, ResponseError> {
        let group = self.get(group_id).ok_or(ResponseError::UnknownMemberId)?;
        let mut g = lock(&group);
        let now = self.clock.now();
        let classic = g.classic().ok_or(ResponseError::UnknownMemberId)?;
        let results = members
            .iter()
            .map(|(id, instance)| classic.leave(id, instance.as_deref(), &self.config, now))
            .collect();
        self.persist_if_settled(&mut g);
        Ok(results)
    }

    /// Validates an OffsetCommit's member fields; creates the group for simple commits.
    pub(crate) fn check_commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let group = if generation < 0 && member_id.is_empty() {
            self.get_or_create(group_id)
        } else {
            self.get(group_id).ok_or(ResponseError::IllegalGeneration)?
        };
        let g = lock(&group);
        g.check_commit(generation, member_id, instance_id)
    }

    /// Stores committed offsets (after [`Coordinator::check_commit`]).
    pub(crate) fn commit(
        &self,
        group_id: &str,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), MetaError> {
        let group = self.get_or_create(group_id);
        self.store.put_offsets(group_id, &offsets)?;
        let mut g = lock(&group);
        for (topic, partition, c) in offsets {
            g.offsets.insert((topic, partition), c);
        }
        Ok(())
    }

    /// Committed offsets of a group; `None` for topics means all.
    pub(crate) fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<&[(String, Vec<i32>)]>,
    ) -> TopicOffsets {
        let group = self.get(group_id);
        let g = group.as_ref().map(|g| lock(g));
        let known = |t: &str, p: i32| -> Option<FetchedOffset> {
            let c = g.as_ref()?.offsets.get(&(t.to_string(), p))?;
            Some(FetchedOffset {
                offset: c.offset,
                leader_epoch: c.leader_epoch,
                metadata: c.metadata.clone(),
            })
        };
        match topics {
            Some(topics) => topics
                .iter()
                .map(|(t, parts)| {
                    (
                        t.clone(),
                        parts.iter().map(|p| (*p, known(t, *p))).collect(),
                    )
                })
                .collect(),
            None => {
                let mut by_topic: std::collections::BTreeMap<
                    String,
                    Vec<(i32, Option<FetchedOffset>)>,
                > = Default::default();
                if let Some(g) = &g {
                    for (t, p) in g.offsets.keys() {
                        by_topic
                            .entry(t.clone())
                            .or_default()
                            .push((*p, known(t, *p)));
                    }
                }
                for v in by_topic.values_mut() {
                    v.sort_by_key(|(p, _)| *p);
                }
                by_topic.into_iter().collect()
            }
        }
    }

    pub(crate) fn describe(&self, group_id: &str) -> GroupSummary {
        match self.get(group_id) {
            Some(g) => lock(&g).summary(),
            None => GroupSummary {
                group_id: group_id.to_string(),
                state: GroupState::Dead,
                state_name: "Dead".into(),
                group_type: "classic",
                generation: -1,
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            },
        }
    }

    pub(crate) fn list(&self) -> Vec<GroupSummary> {
        let groups: Vec<_> = lock(&self.groups).values().cloned().collect();
        let mut out: Vec<_> = groups.iter().map(|g| lock(g).summary()).collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// DeleteGroups: only groups without members.
    pub(crate) fn delete(&self, group_id: &str) -> Result<(), ResponseError> {
        let mut groups = lock(&self.groups);
        let group = groups.get(group_id).ok_or(ResponseError::GroupIdNotFound)?;
        if lock(group).summary().state != GroupState::Empty {
            return Err(ResponseError::NonEmptyGroup);
        }
        groups.remove(group_id);
        drop(groups);
        if let Err(e) = self.store.delete_group(group_id) {
            tracing::error!(group = group_id, error = %e, "cannot delete group from the store");
            return Err(ResponseError::KafkaStorageError);
        }
        Ok(())
    }

    /// OffsetDelete: refused for topics the active members subscribe to.
    pub(crate) fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Result<(), ResponseError>>, ResponseError> {
        let group = self.get(group_id).ok_or(ResponseError::GroupIdNotFound)?;
        let mut g = lock(&group);
        let subscribed = g.subscribed_topics();
        let mut deleted = Vec::new();
        let results = partitions
            .iter()
            .map(|(t, p)| {
                if subscribed.contains(t) {
                    return Err(ResponseError::GroupSubscribedToTopic);
                }
                g.offsets.remove(&(t.clone(), *p));
                deleted.push((t.clone(), *p));
                Ok(())
            })
            .collect();
        if let Err(e) = self.store.delete_offsets(group_id, &deleted) {
            tracing::error!(group = group_id, error = %e, "cannot delete offsets from the store");
            return Err(ResponseError::KafkaStorageError);
        }
        Ok(results)
    }

    /// ConsumerGroupHeartbeat (KIP-848). `metadata` resolves topic names to (id, partitions).
    pub(crate) fn consumer_heartbeat(
        &self,
        group_id: &str,
        hb: consumer::Heartbeat,
        metadata: impl Fn(&std::collections::BTreeSet<String>) -> consumer::TopicsMetadata,
    ) -> Result<consumer::HeartbeatAnswer, ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let group = self.get_or_create(group_id);
        let mut g = lock(&group);
        let now = self.clock.now();
        g.consumer_for_heartbeat(now)?.heartbeat(hb, metadata, now)
    }

    /// ConsumerGroupDescribe: `None` when the group is not a consumer-protocol group.
    pub(crate) fn describe_consumer_group(
        &self,
        group_id: &str,
    ) -> Option<(GroupSummary, i32, Vec<consumer::ConsumerMemberInfo>)> {
        let group = self.get(group_id)?;
        let g = lock(&group);
        let c = g.consumer()?;
        Some((g.summary(), c.assignment_epoch, c.member_infos()))
    }

    /// Expires sessions, completes timed-out rebalances, drops expired offsets.
    pub(crate) fn tick(&self) {
        let now = self.clock.now();
        let groups: Vec<_> = lock(&self.groups)
            .iter()
            .map(|(k, g)| (k.clone(), g.clone()))
            .collect();
        for (id, group) in groups {
            let mut g = lock(&group);
            g.tick(&self.config_of(&id), now);
            self.persist_if_settled(&mut g);
            if g.is_empty()
                && !g.offsets.is_empty()
                && now.duration_since(g.empty_since()) > self.config.offsets_retention
            {
                tracing::info!(group = %id, "committed offsets expired (offsets.retention)");
                let all: Vec<_> = g.offsets.keys().cloned().collect();
                g.offsets.clear();
                if let Err(e) = self.store.delete_offsets(&id, &all) {
                    tracing::warn!(group = %id, error = %e, "cannot delete expired offsets");
                }
            }
        }
    }
}

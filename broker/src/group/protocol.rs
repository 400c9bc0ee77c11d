//! One group: its committed offsets, which outlive any membership, and the state machine
//! of the protocol its members speak, classic (JoinGroup, SyncGroup) or KIP-848's consumer
//! protocol. An empty group takes the protocol of the next member that arrives.

use super::classic::{ClassicGroup, GroupState, MemberInfo};
use super::consumer::ConsumerGroup;
use super::store::{CommittedOffset, GroupSnapshot, GroupStore};
use super::{GroupConfig, GroupSummary};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct Group {
    id: String,
    pub(crate) offsets: HashMap<(String, i32), CommittedOffset>,
    pub(crate) protocol: Protocol,
    /// When the group last changed protocol: a consumer-protocol group without members
    /// counts as empty since then.
    switched_at: Instant,
}

/// The protocol a group's members speak, with its state machine.
#[derive(Debug)]
pub(crate) enum Protocol {
    Classic(Box<ClassicGroup>),
    Consumer(ConsumerGroup),
}

impl Group {
    pub(crate) fn new(id: &str, now: Instant) -> Self {
        Self::with(
            id,
            Protocol::Classic(Box::new(ClassicGroup::new(id, now))),
            now,
        )
    }

    /// Rebuilds a settled classic group after a restart.
    pub(crate) fn restore(id: &str, snapshot: GroupSnapshot, now: Instant) -> Self {
        Self::with(
            id,
            Protocol::Classic(Box::new(ClassicGroup::restore(id, snapshot, now))),
            now,
        )
    }

    fn with(id: &str, protocol: Protocol, now: Instant) -> Self {
        Self {
            id: id.to_string(),
            offsets: HashMap::new(),
            protocol,
            switched_at: now,
        }
    }

    /// The classic state machine; `None` while the group speaks the consumer protocol.
    pub(crate) fn classic(&mut self) -> Option<&mut ClassicGroup> {
        match &mut self.protocol {
            Protocol::Classic(c) => Some(c.as_mut()),
            Protocol::Consumer(_) => None,
        }
    }

    /// The classic state machine for a JoinGroup: an empty consumer-protocol group
    /// becomes a classic one; one with members refuses (INCONSISTENT_GROUP_PROTOCOL).
    pub(crate) fn classic_for_join(
        &mut self,
        now: Instant,
    ) -> Result<&mut ClassicGroup, ResponseError> {
        if let Protocol::Consumer(c) = &self.protocol {
            if !c.members.is_empty() {
                return Err(ResponseError::InconsistentGroupProtocol);
            }
            self.protocol = Protocol::Classic(Box::new(ClassicGroup::new(&self.id, now)));
            self.switched_at = now;
        }
        self.classic()
            .ok_or(ResponseError::InconsistentGroupProtocol)
    }

    /// The consumer-protocol state machine for a ConsumerGroupHeartbeat: an empty classic
    /// group becomes a consumer-protocol one; one with members is not found for it.
    pub(crate) fn consumer_for_heartbeat(
        &mut self,
        now: Instant,
    ) -> Result<&mut ConsumerGroup, ResponseError> {
        if let Protocol::Classic(c) = &self.protocol {
            if c.state != GroupState::Empty {
                return Err(ResponseError::GroupIdNotFound);
            }
            self.protocol = Protocol::Consumer(ConsumerGroup::default());
            self.switched_at = now;
        }
        match &mut self.protocol {
            Protocol::Consumer(c) => Ok(c),
            Protocol::Classic(_) => Err(ResponseError::GroupIdNotFound),
        }
    }

    pub(crate) fn consumer(&self) -> Option<&ConsumerGroup> {
        match &self.protocol {
            Protocol::Consumer(c) => Some(c),
            Protocol::Classic(_) => None,
        }
    }

    /// No members.
    pub(crate) fn is_empty(&self) -> bool {
        match &self.protocol {
            Protocol::Classic(c) => c.state == GroupState::Empty,
            Protocol::Consumer(c) => c.members.is_empty(),
        }
    }

    /// Since when the group has had no members (offsets expire from there).
    pub(crate) fn empty_since(&self) -> Instant {
        match &self.protocol {
            Protocol::Classic(c) => c.empty_since,
            Protocol::Consumer(_) => self.switched_at,
        }
    }

    /// Topics the members subscribe to: their offsets may not be deleted.
    pub(crate) fn subscribed_topics(&self) -> BTreeSet<String> {
        match &self.protocol {
            Protocol::Classic(c) => c.subscribed_topics(),
            Protocol::Consumer(c) => c.subscribed_topics(),
        }
    }

    /// Validates an OffsetCommit's member fields.
    pub(crate) fn check_commit(
        &self,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        match &self.protocol {
            Protocol::Classic(c) => c.check_commit(generation, member_id, instance_id),
            Protocol::Consumer(c) => c.check_commit(generation, member_id),
        }
    }

    /// Session expiry and rebalance deadlines of either protocol.
    pub(crate) fn tick(&mut self, config: &GroupConfig, now: Instant) {
        match &mut self.protocol {
            Protocol::Classic(c) => c.tick(config, now),
            Protocol::Consumer(c) => {
                for member in c.expire(config.consumer_session_timeout, now) {
                    tracing::info!(group = %self.id, %member, "consumer-protocol member removed (session or rebalance timeout)");
                }
            }
        }
    }

    /// Writes a settled classic group's snapshot (consumer-protocol members rejoin after
    /// a restart with their epoch, so nothing of theirs is kept).
    pub(crate) fn persist_if_settled(&mut self, store: &GroupStore) {
        if let Protocol::Classic(c) = &mut self.protocol {
            c.persist_if_settled(store);
        }
    }

    pub(crate) fn summary(&self) -> GroupSummary {
        match &self.protocol {
            Protocol::Classic(c) => c.summary(),
            Protocol::Consumer(c) => consumer_summary(&self.id, c),
        }
    }
}

/// A consumer-protocol group as DescribeGroups and ListGroups show it.
fn consumer_summary(id: &str, c: &ConsumerGroup) -> GroupSummary {
    let state_name = c.state_name();
    GroupSummary {
        group_id: id.to_string(),
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_group_takes_the_protocol_of_the_member_that_arrives() {
        let t0 = Instant::now();
        let mut g = Group::new("g", t0);
        assert!(g.consumer().is_none());
        let t1 = t0 + std::time::Duration::from_secs(1);
        assert!(g.consumer_for_heartbeat(t1).is_ok());
        assert!(g.consumer().is_some() && g.classic().is_none());
        assert!(g.is_empty());
        assert_eq!(g.empty_since(), t1);
        assert_eq!(g.summary().group_type, "consumer");

        let t2 = t1 + std::time::Duration::from_secs(1);
        assert!(g.classic_for_join(t2).is_ok());
        assert!(g.consumer().is_none());
        assert_eq!(g.summary().group_type, "classic");
    }

    #[test]
    fn a_classic_group_with_members_is_not_found_by_the_consumer_protocol() {
        let t0 = Instant::now();
        let mut g = Group::new("g", t0);
        if let Some(c) = g.classic() {
            c.state = GroupState::Stable;
        }
        assert_eq!(
            g.consumer_for_heartbeat(t0).err(),
            Some(ResponseError::GroupIdNotFound)
        );
        assert!(g.classic().is_some());
        assert!(!g.is_empty());
    }
}

//! KIP-848 consumer groups (`group.protocol=consumer`): the broker assigns partitions and
//! members reconcile towards their target through ConsumerGroupHeartbeat.
//!
//! ```text
//! member epoch 0 ──► joins: group epoch +1, targets recomputed (uniform or range assignor)
//! each heartbeat:
//!   partitions still to revoke? ── yes ─► answer the assignment without them; epoch stays
//!          │ no                            (the member reports what it still owns)
//!          ▼
//!   owned ⊄ target ─► ask to revoke owned − target
//!          │ otherwise
//!          ▼
//!   member epoch := assignment epoch; add target partitions no other member still owns
//!   (the rest follow on later heartbeats, once their previous owner has let go)
//! member epoch -1 ─► leaves; -2 ─► static member leaves for now, keeping its assignment
//! no heartbeat for the session timeout, or no revocation within the rebalance timeout
//!   ─► removed (group epoch +1)
//! ```
//! A partition is never assigned to two members at once: a member only gets a partition
//! after the previous owner's heartbeat shows it gave it up.

use kafka_protocol::error::ResponseError;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A partition by topic id.
pub(crate) type TopicPartition = (Uuid, i32);

/// Names of the assignors offered (`group.remote.assignor`); the first is the default.
pub(crate) const ASSIGNORS: &[&str] = &["uniform", "range"];

#[derive(Debug, Clone)]
pub(crate) struct ConsumerMember {
    pub(crate) instance_id: Option<String>,
    pub(crate) rack_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_host: String,
    pub(crate) epoch: i32,
    pub(crate) previous_epoch: i32,
    pub(crate) subscribed: Vec<String>,
    rebalance_timeout: Duration,
    pub(crate) assignor: Option<String>,
    /// What the member owns as far as the coordinator knows.
    pub(crate) assigned: BTreeSet<TopicPartition>,
    /// Asked to give these up; not yet confirmed.
    pending_revocation: BTreeSet<TopicPartition>,
    revocation_deadline: Option<Instant>,
    last_sent: Option<BTreeSet<TopicPartition>>,
    last_heartbeat: Instant,
    /// A static member that left with epoch -2: kept (with its assignment) until its session
    /// times out or it comes back.
    away: bool,
}

/// One heartbeat's parsed request.
#[derive(Debug, Clone)]
pub(crate) struct Heartbeat {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub subscribed: Option<Vec<String>>,
    pub regex: Option<String>,
    pub assignor: Option<String>,
    pub owned: Option<BTreeSet<TopicPartition>>,
}

/// A heartbeat's answer.
#[derive(Debug, Clone)]
pub(crate) struct HeartbeatAnswer {
    pub member_id: String,
    pub member_epoch: i32,
    /// Present when the member's assignment changed (or it just joined).
    pub assignment: Option<BTreeSet<TopicPartition>>,
}

/// Partition counts of the topics members subscribe to, by name: (topic id, partitions).
pub(crate) type TopicsMetadata = BTreeMap<String, (Uuid, i32)>;

#[derive(Debug, Default)]
pub(crate) struct ConsumerGroup {
    pub(crate) epoch: i32,
    pub(crate) assignment_epoch: i32,
    pub(crate) members: BTreeMap<String, ConsumerMember>,
    pub(crate) targets: BTreeMap<String, BTreeSet<TopicPartition>>,
    /// Subscribed topics' partition counts when the targets were computed.
    metadata: TopicsMetadata,
    pub(crate) assignor: String,
}

impl ConsumerGroup {
    /// "Empty", "Assigning", "Reconciling" or "Stable", as Kafka names the states.
    pub(crate) fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.assignment_epoch < self.epoch {
            "Assigning"
        } else if self.members.iter().any(|(id, m)| {
            m.epoch != self.assignment_epoch
                || !m.pending_revocation.is_empty()
                || self.targets.get(id) != Some(&m.assigned)
        }) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    pub(crate) fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| m.subscribed.iter().cloned())
            .collect()
    }

    fn bump(&mut self) {
        self.epoch += 1;
    }

    /// Handles one heartbeat. `metadata` resolves the subscribed topics.
    pub(crate) fn heartbeat(
        &mut self,
        hb: Heartbeat,
        metadata: impl Fn(&BTreeSet<String>) -> TopicsMetadata,
        now: Instant,
    ) -> Result<HeartbeatAnswer, ResponseError> {
        if hb.regex.is_some() {
            // Regex subscriptions (RE2/J) are not offered; clients fall back to names.
            return Err(ResponseError::InvalidRequest);
        }
        if let Some(a) = &hb.assignor {
            if !ASSIGNORS.contains(&a.as_str()) {
                return Err(ResponseError::UnsupportedAssignor);
            }
        }
        match hb.member_epoch {
            -1 | -2 => return self.leave(&hb),
            0 => self.join(&hb, now)?,
            epoch => {
                let m = self
                    .members
                    .get(&hb.member_id)
                    .ok_or(ResponseError::UnknownMemberId)?;
                if epoch != m.epoch && epoch != m.previous_epoch {
                    return Err(ResponseError::FencedMemberEpoch);
                }
                self.update(&hb, now);
            }
        }
        // Topic changes (a partition added, a topic created) count as a new group epoch.
        let current = metadata(&self.subscribed_topics());
        if current != self.metadata {
            self.metadata = current;
            self.bump();
        }
        if self.assignment_epoch < self.epoch {
            self.compute_targets();
        }
        let member_id = hb.member_id.clone();
        // As Kafka: a joining member, and a full request (every field set, which a client
        // sends after an error or a timed-out heartbeat, whose answer may have carried an
        // assignment it never saw), get the assignment whether or not it changed.
        let full = hb.rebalance_timeout_ms != -1 && hb.subscribed.is_some() && hb.owned.is_some();
        let force_send = hb.member_epoch == 0 || full;
        self.reconcile(&member_id, hb.owned, now);
        let member = self
            .members
            .get_mut(&member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        let assignment = (force_send || member.last_sent.as_ref() != Some(&member.assigned))
            .then(|| member.assigned.clone());
        if assignment.is_some() {
            member.last_sent = Some(member.assigned.clone());
        }
        Ok(HeartbeatAnswer {
            member_id,
            member_epoch: member.epoch,
            assignment,
        })
    }

    fn join(&mut self, hb: &Heartbeat, now: Instant) -> Result<(), ResponseError> {
        if hb.member_id.is_empty() {
            return Err(ResponseError::InvalidRequest);
        }
        if let Some(instance) = &hb.instance_id {
            let previous = self
                .members
                .iter()
                .find(|(id, m)| m.instance_id.as_deref() == Some(instance) && **id != hb.member_id)
                .map(|(id, m)| (id.clone(), m.away));
            if let Some((old_id, away)) = previous {
                if !away {
                    return Err(ResponseError::UnreleasedInstanceId);
                }
                // The static member is back: it takes over its old assignment and epoch.
                if let Some(mut old) = self.members.remove(&old_id) {
                    old.away = false;
                    old.last_heartbeat = now;
                    old.last_sent = None;
                    if let Some(t) = self.targets.remove(&old_id) {
                        self.targets.insert(hb.member_id.clone(), t);
                    }
                    self.members.insert(hb.member_id.clone(), old);
                    self.update(hb, now);
                    return Ok(());
                }
            }
        }
        // A (re)join starts from nothing: whatever the member had is released.
        self.members.insert(
            hb.member_id.clone(),
            ConsumerMember {
                instance_id: hb.instance_id.clone(),
                rack_id: hb.rack_id.clone(),
                client_id: hb.client_id.clone(),
                client_host: hb.client_host.clone(),
                epoch: 0,
                previous_epoch: 0,
                subscribed: hb.subscribed.clone().unwrap_or_default(),
                rebalance_timeout: Duration::from_millis(hb.rebalance_timeout_ms.max(0) as u64),
                assignor: hb.assignor.clone(),
                assigned: BTreeSet::new(),
                pending_revocation: BTreeSet::new(),
                revocation_deadline: None,
                last_sent: None,
                last_heartbeat: now,
                away: false,
            },
        );
        self.bump();
        Ok(())
    }

    fn update(&mut self, hb: &Heartbeat, now: Instant) {
        let mut changed = false;
        if let Some(m) = self.members.get_mut(&hb.member_id) {
            m.last_heartbeat = now;
            m.client_id = hb.client_id.clone();
            m.client_host = hb.client_host.clone();
            if hb.rebalance_timeout_ms >= 0 {
                m.rebalance_timeout = Duration::from_millis(hb.rebalance_timeout_ms as u64);
            }
            if let Some(s) = &hb.subscribed {
                if *s != m.subscribed {
                    m.subscribed = s.clone();
                    changed = true;
                }
            }
            if hb.assignor.is_some() && hb.assignor != m.assignor {
                m.assignor = hb.assignor.clone();
                changed = true;
            }
        }
        if changed {
            self.bump();
        }
    }

    fn leave(&mut self, hb: &Heartbeat) -> Result<HeartbeatAnswer, ResponseError> {
        let id = if hb.member_id.is_empty() {
            self.members
                .iter()
                .find(|(_, m)| m.instance_id.is_some() && m.instance_id == hb.instance_id)
                .map(|(id, _)| id.clone())
                .ok_or(ResponseError::UnknownMemberId)?
        } else {
            hb.member_id.clone()
        };
        if !self.members.contains_key(&id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if hb.member_epoch == -2 && hb.instance_id.is_some() {
            if let Some(m) = self.members.get_mut(&id) {
                m.away = true;
            }
        } else {
            self.remove(&id);
        }
        Ok(HeartbeatAnswer {
            member_id: id,
            member_epoch: hb.member_epoch,
            assignment: None,
        })
    }

    pub(crate) fn remove(&mut self, id: &str) {
        if self.members.remove(id).is_some() {
            self.targets.remove(id);
            self.bump();
        }
    }

    /// Removes members whose session expired or who did not revoke in time.
    pub(crate) fn expire(&mut self, session_timeout: Duration, now: Instant) -> Vec<String> {
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| {
                now.duration_since(m.last_heartbeat) > session_timeout
                    || m.revocation_deadline.is_some_and(|d| now > d)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            self.remove(id);
        }
        gone
    }

    fn owned_by_others(&self, me: &str) -> BTreeSet<TopicPartition> {
        self.members
            .iter()
            .filter(|(id, _)| id.as_str() != me)
            .flat_map(|(_, m)| {
                m.assigned
                    .iter()
                    .chain(m.pending_revocation.iter())
                    .copied()
            })
            .collect()
    }

    fn reconcile(&mut self, id: &str, owned: Option<BTreeSet<TopicPartition>>, now: Instant) {
        let target = self.targets.get(id).cloned().unwrap_or_default();
        let others = self.owned_by_others(id);
        let assignment_epoch = self.assignment_epoch;
        let Some(m) = self.members.get_mut(id) else {
            return;
        };
        if let Some(owned) = owned {
            m.pending_revocation.retain(|p| owned.contains(p));
        }
        if !m.pending_revocation.is_empty() {
            return;
        }
        m.revocation_deadline = None;
        let to_revoke: BTreeSet<_> = m.assigned.difference(&target).copied().collect();
        if !to_revoke.is_empty() {
            m.assigned.retain(|p| target.contains(p));
            m.pending_revocation = to_revoke;
            m.revocation_deadline = Some(now + m.rebalance_timeout);
            return;
        }
        if m.epoch != assignment_epoch {
            m.previous_epoch = m.epoch;
            m.epoch = assignment_epoch;
        }
        for p in target.difference(&m.assigned.clone()) {
            if !others.contains(p) {
                m.assigned.insert(*p);
            }
        }
    }

    /// Computes every member's target assignment for the current group epoch.
    fn compute_targets(&mut self) {
        let assignor = self
            .members
            .values()
            .find_map(|m| m.assignor.clone())
            .unwrap_or_else(|| ASSIGNORS[0].to_string());
        let mut targets: BTreeMap<String, BTreeSet<TopicPartition>> = self
            .members
            .keys()
            .map(|id| (id.clone(), BTreeSet::new()))
            .collect();
        for (topic, (topic_id, partitions)) in &self.metadata {
            let subscribers: Vec<&String> = self
                .members
                .iter()
                .filter(|(_, m)| m.subscribed.iter().any(|t| t == topic))
                .map(|(id, _)| id)
                .collect();
            if subscribers.is_empty() {
                continue;
            }
            let n = subscribers.len() as i32;
            if assignor == "range" {
                // Contiguous ranges in member-id order.
                let (per, extra) = (partitions / n, partitions % n);
                let mut next = 0;
                for (i, id) in subscribers.iter().enumerate() {
                    let count = per + i32::from((i as i32) < extra);
                    if let Some(t) = targets.get_mut(*id) {
                        t.extend((next..next + count).map(|p| (*topic_id, p)));
                    }
                    next += count;
                }
                continue;
            }
            // Uniform: balanced counts, keeping partitions where they are when possible.
            let quota =
                |i: usize| (partitions / n + i32::from((i as i32) < partitions % n)) as usize;
            let mut taken = BTreeSet::new();
            let mut counts = vec![0usize; subscribers.len()];
            for (i, id) in subscribers.iter().enumerate() {
                let Some(current) = self.targets.get(*id) else {
                    continue;
                };
                for p in current
                    .iter()
                    .filter(|(t, p)| t == topic_id && *p < *partitions)
                {
                    if counts[i] < quota(i) && taken.insert(p.1) {
                        counts[i] += 1;
                        if let Some(t) = targets.get_mut(*id) {
                            t.insert(*p);
                        }
                    }
                }
            }
            let mut free = (0..*partitions).filter(|p| !taken.contains(p));
            for (i, id) in subscribers.iter().enumerate() {
                while counts[i] < quota(i) {
                    let Some(p) = free.next() else { break };
                    counts[i] += 1;
                    if let Some(t) = targets.get_mut(*id) {
                        t.insert((*topic_id, p));
                    }
                }
            }
        }
        self.targets = targets;
        self.assignor = assignor;
        self.assignment_epoch = self.epoch;
    }
}

/// A member as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerMemberInfo {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub subscribed: Vec<String>,
    pub assignment: BTreeSet<TopicPartition>,
    pub target: BTreeSet<TopicPartition>,
}

impl ConsumerGroup {
    /// An OffsetCommit's member fields: the member's current or previous epoch (KIP-848),
    /// or no member at all while the group has none.
    pub(crate) fn check_commit(&self, epoch: i32, member_id: &str) -> Result<(), ResponseError> {
        if epoch < 0 && member_id.is_empty() && self.members.is_empty() {
            return Ok(());
        }
        let m = self
            .members
            .get(member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        if epoch == m.epoch || epoch == m.previous_epoch {
            Ok(())
        } else {
            Err(ResponseError::StaleMemberEpoch)
        }
    }

    pub(crate) fn member_infos(&self) -> Vec<ConsumerMemberInfo> {
        self.members
            .iter()
            .map(|(id, m)| ConsumerMemberInfo {
                member_id: id.clone(),
                instance_id: m.instance_id.clone(),
                rack_id: m.rack_id.clone(),
                member_epoch: m.epoch,
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                subscribed: m.subscribed.clone(),
                assignment: m.assigned.clone(),
                target: self.targets.get(id).cloned().unwrap_or_default(),
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "consumer_tests.rs"]
mod tests;

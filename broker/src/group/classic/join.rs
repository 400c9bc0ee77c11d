//! JoinGroup: members joining, static members rejoining, the rebalance that follows and
//! its completion (generation, protocol, leader).

use super::*;

impl ClassicGroup {
    pub(super) fn check_static(
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

    pub(super) fn current_join(&self, member_id: &str) -> JoinOutcome {
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

    pub(super) fn supports_protocols(
        &self,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
    ) -> bool {
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
    pub(super) fn rejoin_static(
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

    pub(super) fn add_member(
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

    pub(super) fn update_member(
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

    pub(super) fn prepare_rebalance(&mut self, config: &GroupConfig, now: Instant) {
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

    pub(super) fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.join_waiter.is_some())
    }

    pub(super) fn maybe_complete_join(&mut self, now: Instant) {
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

    pub(super) fn complete_join(&mut self, now: Instant) {
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
    pub(super) fn select_protocol(&self) -> Option<String> {
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
}

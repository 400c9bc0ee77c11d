//! SyncGroup: the leader's assignments complete the rebalance; followers wait for them.

use super::*;

impl ClassicGroup {
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

    pub(super) fn sync_outcome(&self, assignment: Bytes) -> SyncOutcome {
        SyncOutcome {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            assignment,
        }
    }
}

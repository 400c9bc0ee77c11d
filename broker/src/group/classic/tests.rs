//! The classic group state machine driven directly, with `now` given by each test: no
//! broker, no clock, no waiting.

use super::*;

const DELAY: Duration = Duration::from_millis(3000);

fn config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay: DELAY,
        ..GroupConfig::default()
    }
}

fn request(member_id: &str, instance_id: Option<&str>, rebalance_ms: i32) -> JoinRequest {
    JoinRequest {
        group_id: "g".into(),
        member_id: member_id.into(),
        instance_id: instance_id.map(str::to_string),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: rebalance_ms,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
        require_known_member_id: false,
    }
}

/// What a parked JoinGroup or SyncGroup got, if it was answered.
fn answered<T>(rx: &mut oneshot::Receiver<T>) -> Option<T> {
    rx.try_recv().ok()
}

/// Two dynamic members joined at `t0` and answered at `t0 + DELAY`: the group, the
/// leader's JoinGroup answer and the follower's.
fn joined_pair(t0: Instant) -> (ClassicGroup, JoinOutcome, JoinOutcome) {
    let config = config();
    let mut g = ClassicGroup::new("g", t0);
    let mut a = g.join(request("", None, 5000), &config, t0).unwrap();
    let mut b = g.join(request("", None, 5000), &config, t0).unwrap();
    g.tick(&config, t0 + DELAY);
    let (a, b) = (answered(&mut a).unwrap(), answered(&mut b).unwrap());
    if a.member_id == a.leader {
        (g, a, b)
    } else {
        (g, b, a)
    }
}

/// Two dynamic members joined and synced at `t0 + DELAY`: (group, leader id, other id).
fn stable_pair(t0: Instant) -> (ClassicGroup, String, String) {
    let (mut g, leader, other) = joined_pair(t0);
    let (leader, other) = (leader.member_id, other.member_id);
    let t1 = t0 + DELAY;
    let assignments = vec![
        (leader.clone(), Bytes::from_static(b"p0")),
        (other.clone(), Bytes::from_static(b"p1")),
    ];
    let mut s = g.sync(1, &leader, None, assignments, t1).unwrap();
    assert!(answered(&mut s).unwrap().error.is_none());
    assert_eq!(g.state, GroupState::Stable);
    (g, leader, other)
}

#[test]
fn joins_racing_into_an_empty_group_extend_the_delay_and_share_a_generation() {
    let config = config();
    let t0 = Instant::now();
    let mut g = ClassicGroup::new("g", t0);
    let mut a = g.join(request("", None, 5000), &config, t0).unwrap();
    let mut b = g
        .join(
            request("", None, 5000),
            &config,
            t0 + Duration::from_millis(10),
        )
        .unwrap();
    g.tick(&config, t0 + DELAY - Duration::from_millis(1));
    assert!(
        answered(&mut a).is_none(),
        "answered before the initial delay"
    );
    assert_eq!(g.state, GroupState::PreparingRebalance);
    // The second member's arrival extended the delay (within the rebalance timeout).
    g.tick(&config, t0 + DELAY);
    assert!(
        answered(&mut a).is_none(),
        "the new member did not extend the delay"
    );
    g.tick(&config, t0 + DELAY + Duration::from_millis(10));
    let (a, b) = (answered(&mut a).unwrap(), answered(&mut b).unwrap());
    assert_eq!((a.generation, b.generation), (1, 1));
    assert_eq!(a.leader, b.leader);
    assert_ne!(a.member_id, b.member_id);
    let leader = if a.member_id == a.leader { &a } else { &b };
    assert_eq!(
        leader.members.len(),
        2,
        "only the leader gets the member list"
    );
    assert_eq!(g.state, GroupState::CompletingRebalance);
}

#[test]
fn a_static_member_rejoining_replaces_the_old_id_without_a_rebalance() {
    let config = config();
    let t0 = Instant::now();
    let mut g = ClassicGroup::new("g", t0);
    let mut first = g.join(request("", Some("i1"), 5000), &config, t0).unwrap();
    let t1 = t0 + DELAY;
    g.tick(&config, t1);
    let old = answered(&mut first).unwrap().member_id;
    let mut s = g
        .sync(
            1,
            &old,
            Some("i1"),
            vec![(old.clone(), Bytes::from_static(b"a"))],
            t1,
        )
        .unwrap();
    assert!(answered(&mut s).unwrap().error.is_none());
    // The same instance restarts: no member id, same instance id.
    let mut again = g.join(request("", Some("i1"), 5000), &config, t1).unwrap();
    let again = answered(&mut again).expect("a stable group answers at once");
    assert_ne!(again.member_id, old);
    assert_eq!(again.generation, 1, "no rebalance");
    assert_eq!(g.state, GroupState::Stable);
    assert_eq!(
        g.heartbeat(1, &old, Some("i1"), t1),
        Err(ResponseError::FencedInstanceId)
    );
    assert_eq!(g.heartbeat(1, &again.member_id, Some("i1"), t1), Ok(()));
    let mut s = g.sync(1, &again.member_id, Some("i1"), vec![], t1).unwrap();
    assert_eq!(
        answered(&mut s).unwrap().assignment,
        Bytes::from_static(b"a"),
        "the new id keeps the old assignment"
    );
}

#[test]
fn a_member_that_does_not_rejoin_within_the_rebalance_timeout_is_removed() {
    let config = config();
    let t0 = Instant::now();
    let (mut g, leader, other) = stable_pair(t0);
    let t1 = t0 + DELAY;
    // The leader rejoins (a rebalance); the other member never does.
    let mut rejoin = g.join(request(&leader, None, 5000), &config, t1).unwrap();
    assert_eq!(g.state, GroupState::PreparingRebalance);
    g.tick(&config, t1 + Duration::from_millis(4999));
    assert!(
        answered(&mut rejoin).is_none(),
        "completed before the timeout"
    );
    g.tick(&config, t1 + Duration::from_millis(5000));
    let out = answered(&mut rejoin).unwrap();
    assert_eq!(out.generation, 2);
    assert_eq!(out.members.len(), 1);
    assert_eq!(
        g.heartbeat(2, &other, None, t1 + Duration::from_millis(5000)),
        Err(ResponseError::UnknownMemberId)
    );
}

#[test]
fn the_leader_leaving_during_sync_sends_the_waiting_follower_back_to_join() {
    let config = config();
    let t0 = Instant::now();
    let (mut g, leader, follower) = joined_pair(t0);
    let t1 = t0 + DELAY;
    let mut waiting = g.sync(1, &follower.member_id, None, vec![], t1).unwrap();
    assert!(
        answered(&mut waiting).is_none(),
        "a follower waits for the leader"
    );
    g.leave(&leader.member_id, None, &config, t1).unwrap();
    assert_eq!(
        answered(&mut waiting).unwrap().error,
        Some(ResponseError::RebalanceInProgress)
    );
    assert_eq!(g.state, GroupState::PreparingRebalance);
    let mut rejoin = g
        .join(request(&follower.member_id, None, 5000), &config, t1)
        .unwrap();
    let out = answered(&mut rejoin).unwrap();
    assert_eq!(
        (out.generation, out.leader.as_str()),
        (2, follower.member_id.as_str())
    );
}

#[test]
fn a_silent_member_expires_after_its_session_timeout() {
    let config = config();
    let t0 = Instant::now();
    let (mut g, leader, other) = stable_pair(t0);
    let t1 = t0 + DELAY;
    let later = t1 + Duration::from_millis(10_001);
    // Only the leader heartbeats.
    g.heartbeat(1, &leader, None, t1 + Duration::from_millis(9000))
        .unwrap();
    g.tick(&config, later);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat(1, &other, None, later),
        Err(ResponseError::UnknownMemberId)
    );
}

//! The group coordinator's error paths and edge cases, on the wire.

mod common;

use agentbus_testkit::{Broker, Inspect};
use bytes::Bytes;
use common::raw::Raw;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

/// Consumer-protocol subscription metadata (v0) for `topics`.
fn subscription(topics: &[&str]) -> Bytes {
    let mut sub = ConsumerProtocolSubscription::default();
    sub.topics = topics.iter().map(|t| s(t)).collect();
    let mut buf = bytes::BytesMut::new();
    buf.extend_from_slice(&0i16.to_be_bytes());
    sub.encode(&mut buf, 0).unwrap();
    buf.freeze()
}

fn join_req(
    group: &str,
    member: &str,
    instance: Option<&str>,
    session_ms: i32,
) -> JoinGroupRequest {
    let mut p = JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = subscription(&["orders"]);
    let mut r = JoinGroupRequest::default();
    r.group_id = GroupId(s(group));
    r.member_id = s(member);
    r.group_instance_id = instance.map(s);
    r.session_timeout_ms = session_ms;
    r.rebalance_timeout_ms = 10_000;
    r.protocol_type = s("consumer");
    r.protocols = vec![p];
    r
}

fn sync_req(
    group: &str,
    generation: i32,
    member: &str,
    assign_to: Option<&str>,
) -> SyncGroupRequest {
    let mut r = SyncGroupRequest::default();
    r.group_id = GroupId(s(group));
    r.generation_id = generation;
    r.member_id = s(member);
    if let Some(m) = assign_to {
        let mut a = SyncGroupRequestAssignment::default();
        a.member_id = s(m);
        a.assignment = Bytes::from_static(b"assignment-bytes");
        r.assignments = vec![a];
    }
    r
}

fn heartbeat_req(group: &str, generation: i32, member: &str) -> HeartbeatRequest {
    let mut hb = HeartbeatRequest::default();
    hb.group_id = GroupId(s(group));
    hb.generation_id = generation;
    hb.member_id = s(member);
    hb
}

fn commit_req(
    group: &str,
    generation: i32,
    member: &str,
    offset: i64,
    meta: &str,
) -> OffsetCommitRequest {
    let mut p = OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = offset;
    p.committed_metadata = Some(s(meta));
    let mut t = OffsetCommitRequestTopic::default();
    t.name = TopicName(s("orders"));
    t.partitions = vec![p];
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(s(group));
    r.generation_id_or_member_epoch = generation;
    r.member_id = s(member);
    r.topics = vec![t];
    r
}

/// Joins `group` as a single member and completes the rebalance; returns (member, generation).
async fn stable_member(raw: &mut Raw, group: &str) -> (String, i32) {
    let first = raw.send(9, &join_req(group, "", None, 10_000)).await;
    assert_eq!(first.error_code, code(ResponseError::MemberIdRequired));
    assert!(!first.member_id.is_empty());
    let joined = raw
        .send(9, &join_req(group, first.member_id.as_str(), None, 10_000))
        .await;
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.leader, joined.member_id, "a lone member leads");
    assert_eq!(joined.members.len(), 1);
    assert_eq!(joined.protocol_name.as_ref().unwrap().as_str(), "range");
    let member = joined.member_id.to_string();
    let synced = raw
        .send(
            5,
            &sync_req(group, joined.generation_id, &member, Some(&member)),
        )
        .await;
    assert_eq!(synced.error_code, 0);
    assert_eq!(&synced.assignment[..], b"assignment-bytes");
    (member, joined.generation_id)
}

#[tokio::test]
async fn join_sync_heartbeat_commit_and_errors() {
    let broker = Broker::start().await.unwrap();
    broker.inspect().create_topic("orders", -1).unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let (member, generation) = stable_member(&mut raw, "g").await;

    let mut hb = heartbeat_req("g", generation, &member);
    assert_eq!(raw.send(4, &hb).await.error_code, 0);
    hb.generation_id = generation + 7;
    assert_eq!(
        raw.send(4, &hb).await.error_code,
        code(ResponseError::IllegalGeneration)
    );
    hb.member_id = s("nobody");
    assert_eq!(
        raw.send(4, &hb).await.error_code,
        code(ResponseError::UnknownMemberId)
    );

    assert_eq!(
        raw.send(9, &join_req("g", "", None, 100)).await.error_code,
        code(ResponseError::InvalidSessionTimeout)
    );
    let mut other_type = join_req("g", "", None, 10_000);
    other_type.protocol_type = s("connect");
    assert_eq!(
        raw.send(3, &other_type).await.error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
    assert_eq!(
        raw.send(5, &sync_req("g", generation + 1, &member, None))
            .await
            .error_code,
        code(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        raw.send(5, &sync_req("g", generation, "ghost", None))
            .await
            .error_code,
        code(ResponseError::UnknownMemberId)
    );

    // Commits: the member's own generation only; no "simple" commit while it is active.
    let r = raw
        .send(9, &commit_req("g", generation, &member, 42, "meta-42"))
        .await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let r = raw
        .send(8, &commit_req("g", generation - 1, &member, 1, ""))
        .await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        code(ResponseError::IllegalGeneration)
    );
    let r = raw.send(2, &commit_req("g", -1, "", 1, "")).await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        code(ResponseError::UnknownMemberId)
    );
    let mut too_long = commit_req("g", generation, &member, 1, "");
    too_long.topics[0].partitions[0].committed_metadata = Some(s(&"m".repeat(5000)));
    let r = raw.send(9, &too_long).await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        code(ResponseError::OffsetMetadataTooLarge)
    );
    let mut unknown = commit_req("g", generation, &member, 1, "");
    unknown.topics[0].partitions[0].partition_index = 99;
    let r = raw.send(9, &unknown).await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        code(ResponseError::UnknownTopicOrPartition)
    );

    // OffsetFetch: all topics (null), and the multi-group form.
    let mut f = OffsetFetchRequest::default();
    f.group_id = GroupId(s("g"));
    f.topics = None;
    let r = raw.send(7, &f).await;
    let p = &r.topics[0].partitions[0];
    assert_eq!(
        (p.committed_offset, p.metadata.as_ref().unwrap().as_str()),
        (42, "meta-42")
    );
    let mut multi = OffsetFetchRequest::default();
    for g in ["g", "never-seen"] {
        let mut rg = OffsetFetchRequestGroup::default();
        rg.group_id = GroupId(s(g));
        rg.topics = None;
        multi.groups.push(rg);
    }
    let r = raw.send(8, &multi).await;
    assert_eq!(r.groups.len(), 2);
    assert_eq!(r.groups[0].topics[0].partitions[0].committed_offset, 42);
    assert!(r.groups[1].topics.is_empty());

    // OffsetDelete refuses a topic the members subscribe to.
    let mut od = OffsetDeleteRequest::default();
    od.group_id = GroupId(s("g"));
    let mut t =
        kafka_protocol::messages::offset_delete_request::OffsetDeleteRequestTopic::default();
    t.name = TopicName(s("orders"));
    t.partitions = vec![Default::default()];
    od.topics = vec![t];
    let r = raw.send(0, &od).await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        code(ResponseError::GroupSubscribedToTopic)
    );
}

#[tokio::test]
async fn describe_list_leave_delete() {
    let broker = Broker::start().await.unwrap();
    broker.inspect().create_topic("orders", -1).unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let (member, _) = stable_member(&mut raw, "d").await;

    let mut dg = DescribeGroupsRequest::default();
    dg.groups = vec![GroupId(s("d")), GroupId(s("missing"))];
    let r = raw.send(5, &dg).await;
    let g = &r.groups[0];
    assert_eq!(
        (
            g.group_state.as_str(),
            g.protocol_type.as_str(),
            g.protocol_data.as_str()
        ),
        ("Stable", "consumer", "range")
    );
    assert_eq!(g.members[0].member_id.as_str(), member);
    assert_eq!(g.members[0].client_host.as_str(), "/127.0.0.1");
    assert_eq!(g.members[0].client_id.as_str(), "raw-test");
    assert_eq!(&g.members[0].member_assignment[..], b"assignment-bytes");
    assert_eq!(r.groups[1].group_state.as_str(), "Dead");

    let mut lg = ListGroupsRequest::default();
    lg.states_filter = vec![s("Stable")];
    let r = raw.send(4, &lg).await;
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].group_state.as_str(), "Stable");
    lg.states_filter = vec![s("Empty")];
    assert!(raw.send(4, &lg).await.groups.is_empty());
    lg.states_filter = vec![];
    lg.types_filter = vec![s("consumer")];
    assert!(
        raw.send(5, &lg).await.groups.is_empty(),
        "a classic group is not of type consumer"
    );

    let mut del = DeleteGroupsRequest::default();
    del.groups_names = vec![GroupId(s("d"))];
    assert_eq!(
        raw.send(2, &del).await.results[0].error_code,
        code(ResponseError::NonEmptyGroup)
    );

    let mut leave = LeaveGroupRequest::default();
    leave.group_id = GroupId(s("d"));
    let mut id = MemberIdentity::default();
    id.member_id = s(&member);
    let mut ghost = MemberIdentity::default();
    ghost.member_id = s("ghost");
    leave.members = vec![id, ghost];
    let r = raw.send(5, &leave).await;
    assert_eq!(r.members[0].error_code, 0);
    assert_eq!(
        r.members[1].error_code,
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(broker.inspect().group("d").state_name, "Empty");

    assert_eq!(raw.send(2, &del).await.results[0].error_code, 0);
    assert_eq!(
        raw.send(2, &del).await.results[0].error_code,
        code(ResponseError::GroupIdNotFound)
    );
}

#[tokio::test]
async fn static_member_fencing_and_find_coordinator() {
    let broker = Broker::start().await.unwrap();
    broker.inspect().create_topic("orders", -1).unwrap();
    let mut raw = Raw::connect(&broker.bootstrap()).await;
    let joined = raw
        .send(7, &join_req("st", "", Some("instance-1"), 10_000))
        .await;
    assert_eq!(
        joined.error_code, 0,
        "static members get no MEMBER_ID_REQUIRED"
    );
    let old = joined.member_id.to_string();
    raw.send(5, &sync_req("st", joined.generation_id, &old, Some(&old)))
        .await;
    // The same instance restarts: new member id, same generation, old id fenced.
    let again = raw
        .send(7, &join_req("st", "", Some("instance-1"), 10_000))
        .await;
    assert_eq!(again.error_code, 0);
    assert_ne!(again.member_id.as_str(), old);
    assert_eq!(
        again.generation_id, joined.generation_id,
        "no rebalance for a static rejoin"
    );
    let mut hb = heartbeat_req("st", joined.generation_id, &old);
    hb.group_instance_id = Some(s("instance-1"));
    assert_eq!(
        raw.send(3, &hb).await.error_code,
        code(ResponseError::FencedInstanceId)
    );
    let synced = raw
        .send(
            5,
            &sync_req("st", again.generation_id, again.member_id.as_str(), None),
        )
        .await;
    assert_eq!(
        &synced.assignment[..],
        b"assignment-bytes",
        "the old assignment carries over"
    );

    let mut fc = FindCoordinatorRequest::default();
    fc.key = s("st");
    let r = raw.send(0, &fc).await;
    assert_eq!((r.error_code, r.node_id.0), (0, 1));
    let mut batched = FindCoordinatorRequest::default();
    batched.coordinator_keys = vec![s("a"), s("b")];
    let r = raw.send(4, &batched).await;
    assert_eq!(r.coordinators.len(), 2);
    assert!(r
        .coordinators
        .iter()
        .all(|c| c.error_code == 0 && c.node_id.0 == 1));
}

#[tokio::test]
async fn member_that_never_rejoins_is_removed_at_the_rebalance_timeout() {
    let broker = Broker::start().await.unwrap();
    broker.inspect().create_topic("orders", -1).unwrap();
    let bootstrap = broker.bootstrap();
    let mut a = Raw::connect(&bootstrap).await;
    let mut first = join_req("rt", "", None, 30_000);
    first.rebalance_timeout_ms = 1_000;
    let id = a.send(9, &first).await.member_id.to_string();
    first.member_id = s(&id);
    let joined = a.send(9, &first).await;
    a.send(5, &sync_req("rt", joined.generation_id, &id, Some(&id)))
        .await;

    // B joins; A keeps heartbeating (so its session lives) but never rejoins.
    let b_task = tokio::spawn(async move {
        let mut b = Raw::connect(&bootstrap).await;
        let mut req = join_req("rt", "", None, 30_000);
        req.rebalance_timeout_ms = 1_000;
        let id = b.send(9, &req).await.member_id.to_string();
        req.member_id = s(&id);
        b.send(9, &req).await
    });
    let hb = heartbeat_req("rt", joined.generation_id, &id);
    let started = std::time::Instant::now();
    let mut saw_rebalance = false;
    while !b_task.is_finished() && started.elapsed() < std::time::Duration::from_secs(10) {
        let code = a.send(4, &hb).await.error_code;
        saw_rebalance |= code == ResponseError::RebalanceInProgress.code();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(saw_rebalance, "A was told to rejoin");
    let b = b_task.await.unwrap();
    assert_eq!(b.error_code, 0);
    assert_eq!(b.members.len(), 1, "A was dropped, B leads alone");
    assert_eq!(b.generation_id, joined.generation_id + 1);
    assert_eq!(
        a.send(4, &hb).await.error_code,
        code(ResponseError::UnknownMemberId)
    );
}

#[tokio::test]
async fn a_members_session_restarts_when_the_leader_hands_out_assignments() {
    let broker = Broker::start().await.unwrap();
    broker.inspect().create_topic("orders", -1).unwrap();
    let bootstrap = broker.bootstrap();
    let mut a = Raw::connect(&bootstrap).await;
    let (leader, first_generation) = stable_member(&mut a, "slow").await;

    let b_join = tokio::spawn(async move {
        let mut b = Raw::connect(&bootstrap).await;
        let id = b
            .send(9, &join_req("slow", "", None, 10_000))
            .await
            .member_id;
        let joined = b
            .send(9, &join_req("slow", id.as_str(), None, 10_000))
            .await;
        (b, joined)
    });
    let hb = heartbeat_req("slow", first_generation, &leader);
    while a.send(4, &hb).await.error_code != code(ResponseError::RebalanceInProgress) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let rejoined = a.send(9, &join_req("slow", &leader, None, 10_000)).await;
    let (mut b, joined) = b_join.await.unwrap();
    let generation = rejoined.generation_id;
    assert_eq!((rejoined.error_code, joined.generation_id), (0, generation));
    let follower = joined.member_id.to_string();

    // B's SyncGroup waits for the leader, which takes 8 of B's 10 session seconds.
    let b_sync = {
        let follower = follower.clone();
        tokio::spawn(async move {
            let r = b
                .send(5, &sync_req("slow", generation, &follower, None))
                .await;
            (b, r)
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    broker.advance(std::time::Duration::from_secs(8));
    let mut assign = sync_req("slow", generation, &leader, Some(&leader));
    let mut theirs = SyncGroupRequestAssignment::default();
    theirs.member_id = s(&follower);
    theirs.assignment = Bytes::from_static(b"theirs");
    assign.assignments.push(theirs);
    assert_eq!(a.send(5, &assign).await.error_code, 0);
    let (mut b, synced) = b_sync.await.unwrap();
    assert_eq!(
        (synced.error_code, &synced.assignment[..]),
        (0, &b"theirs"[..])
    );

    // B's first heartbeat comes 3 s after its assignment, 11 s after the join completed:
    // its session counts from the assignment, so it is still a member.
    broker.advance(std::time::Duration::from_secs(3));
    assert_eq!(
        b.send(4, &heartbeat_req("slow", generation, &follower))
            .await
            .error_code,
        0
    );
    assert_eq!(
        broker.inspect().group("slow").members.len(),
        2,
        "nobody was expired"
    );
}

#[tokio::test]
async fn an_answer_is_not_held_behind_a_pipelined_join_that_parks() {
    let broker = Broker::start().await.unwrap();
    broker.inspect().create_topic("orders", -1).unwrap();
    let mut a = Raw::connect(&broker.bootstrap()).await;
    let (leader, generation) = stable_member(&mut a, "piped").await;
    let mut c = Raw::connect(&broker.bootstrap()).await;
    let b = c
        .send(9, &join_req("piped", "", None, 10_000))
        .await
        .member_id;

    // One write: a heartbeat, then a JoinGroup that parks until the leader rejoins.
    let (hb_id, hb) = c.frame(4, &heartbeat_req("piped", generation, &leader));
    let (join_id, join) = c.frame(9, &join_req("piped", b.as_str(), None, 10_000));
    c.write(&[hb, join].concat()).await;
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), c.read_frame())
        .await
        .expect("the heartbeat's answer comes while the join is parked")
        .unwrap();
    assert_eq!(i32::from_be_bytes(first[..4].try_into().unwrap()), hb_id);

    a.send(9, &join_req("piped", &leader, None, 10_000)).await;
    let second = c.read_frame().await.unwrap();
    assert_eq!(i32::from_be_bytes(second[..4].try_into().unwrap()), join_id);
}

#[tokio::test]
async fn initial_rebalance_delay_gathers_members_into_one_generation() {
    let broker = Broker::builder()
        .configure(|c| c.group.initial_rebalance_delay = std::time::Duration::from_millis(800))
        .start()
        .await
        .unwrap();
    broker.inspect().create_topic("orders", -1).unwrap();
    let mut joins = Vec::new();
    for i in 0..3 {
        let bootstrap = broker.bootstrap();
        joins.push(tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(150 * i)).await;
            let mut raw = Raw::connect(&bootstrap).await;
            raw.send(3, &join_req("delayed", "", None, 10_000)).await
        }));
    }
    let mut generations = Vec::new();
    for j in joins {
        let r = j.await.unwrap();
        assert_eq!(r.error_code, 0);
        generations.push(r.generation_id);
    }
    assert_eq!(
        generations,
        vec![1, 1, 1],
        "one rebalance for members starting together"
    );
}

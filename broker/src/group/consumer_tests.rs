//! Unit tests of the KIP-848 consumer-protocol group, driven as clients drive it.

use super::*;

const TOPIC: Uuid = Uuid::from_u128(7);

fn meta(_: &BTreeSet<String>) -> TopicsMetadata {
    [("t".to_string(), (TOPIC, 6))].into_iter().collect()
}

fn hb(
    id: &str,
    epoch: i32,
    owned: Option<&BTreeSet<TopicPartition>>,
    assignor: Option<&str>,
) -> Heartbeat {
    Heartbeat {
        member_id: id.into(),
        member_epoch: epoch,
        instance_id: None,
        rack_id: None,
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        rebalance_timeout_ms: 30_000,
        subscribed: (epoch == 0).then(|| vec!["t".to_string()]),
        regex: None,
        assignor: assignor.map(str::to_string),
        owned: owned.cloned(),
    }
}

/// Drives members like clients do: each applies what it is told and reports it back.
fn settle(g: &mut ConsumerGroup, owned: &mut BTreeMap<String, (i32, BTreeSet<TopicPartition>)>) {
    let now = Instant::now();
    for _ in 0..10 {
        let ids: Vec<String> = owned.keys().cloned().collect();
        for id in ids {
            let (epoch, parts) = owned[&id].clone();
            let a = g
                .heartbeat(hb(&id, epoch, Some(&parts), None), meta, now)
                .unwrap();
            let entry = owned.get_mut(&id).unwrap();
            entry.0 = a.member_epoch;
            if let Some(new) = a.assignment {
                entry.1 = new;
            }
            // Never two owners of one partition, at any step.
            let mut seen = BTreeSet::new();
            for (_, parts) in owned.values() {
                for p in parts {
                    assert!(seen.insert(*p), "{p:?} owned twice");
                }
            }
        }
    }
}

#[test]
fn members_converge_without_double_ownership() {
    let mut g = ConsumerGroup::default();
    let now = Instant::now();
    let mut owned: BTreeMap<String, (i32, BTreeSet<TopicPartition>)> = BTreeMap::new();
    let a = g
        .heartbeat(hb("a", 0, Some(&BTreeSet::new()), None), meta, now)
        .unwrap();
    assert_eq!(a.assignment.as_ref().map(BTreeSet::len), Some(6));
    owned.insert("a".into(), (a.member_epoch, a.assignment.unwrap()));
    for id in ["b", "c"] {
        let r = g
            .heartbeat(hb(id, 0, Some(&BTreeSet::new()), None), meta, now)
            .unwrap();
        owned.insert(
            id.into(),
            (r.member_epoch, r.assignment.unwrap_or_default()),
        );
        settle(&mut g, &mut owned);
    }
    for (id, (epoch, parts)) in &owned {
        assert_eq!(parts.len(), 2, "{id} holds its share");
        assert_eq!(*epoch, g.assignment_epoch);
    }
    assert_eq!(g.state_name(), "Stable");
    // A leaves; the others take over its partitions.
    g.heartbeat(hb("a", -1, None, None), meta, now).unwrap();
    owned.remove("a");
    settle(&mut g, &mut owned);
    assert!(owned.values().all(|(_, p)| p.len() == 3));
}

#[test]
fn a_full_request_gets_the_assignment_again() {
    let mut g = ConsumerGroup::default();
    let now = Instant::now();
    let joined = g
        .heartbeat(hb("a", 0, Some(&BTreeSet::new()), None), meta, now)
        .unwrap();
    let parts = joined.assignment.unwrap();
    let epoch = joined.member_epoch;
    // An ordinary heartbeat: nothing changed, nothing sent.
    let plain = g.heartbeat(hb("a", epoch, None, None), meta, now).unwrap();
    assert_eq!(plain.assignment, None);
    // The client lost that answer and sends everything again: it hears its assignment.
    let mut full = hb("a", epoch, Some(&BTreeSet::new()), None);
    full.subscribed = Some(vec!["t".to_string()]);
    let again = g.heartbeat(full, meta, now).unwrap();
    assert_eq!(again.assignment, Some(parts));
}

#[test]
fn range_assignor_and_fencing() {
    let mut g = ConsumerGroup::default();
    let now = Instant::now();
    let a = g
        .heartbeat(hb("a", 0, Some(&BTreeSet::new()), Some("range")), meta, now)
        .unwrap();
    let b = g
        .heartbeat(hb("b", 0, Some(&BTreeSet::new()), Some("range")), meta, now)
        .unwrap();
    assert_eq!(g.assignor, "range");
    assert_eq!(g.targets["a"], (0..3).map(|p| (TOPIC, p)).collect());
    assert_eq!(g.targets["b"], (3..6).map(|p| (TOPIC, p)).collect());
    assert_eq!(
        g.heartbeat(hb("a", a.member_epoch + 5, None, None), meta, now)
            .unwrap_err(),
        ResponseError::FencedMemberEpoch
    );
    assert_eq!(
        g.heartbeat(hb("zz", 3, None, None), meta, now).unwrap_err(),
        ResponseError::UnknownMemberId
    );
    assert_eq!(
        g.heartbeat(hb("c", 0, None, Some("nope")), meta, now)
            .unwrap_err(),
        ResponseError::UnsupportedAssignor
    );
    let _ = b;
}

//! Consumer groups with real clients: partitions split across members, members leaving and
//! dying, static membership, durable committed offsets, many groups rebalancing at once.

mod common;

use common::members::{assert_exactly_once, produce, wait_for, wait_for_showing, Member, Tally};

use agentbus_testkit::GroupState;
use agentbus_testkit::{Broker, Inspect};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A Python member (tests/python/group_member.py) whose reports go into the tally.
struct PyMember {
    child: Child,
    readers: Vec<std::thread::JoinHandle<()>>,
    /// The partitions it holds, as its rebalance callbacks report them.
    assignment: Arc<Mutex<BTreeSet<i32>>>,
    /// Its client's log (stderr), shown when a test fails.
    log: Arc<Mutex<String>>,
}

impl PyMember {
    fn spawn(
        client: &str,
        bootstrap: &str,
        topic: &str,
        group: &str,
        name: &str,
        tally: Tally,
        env: &[(&str, &str)],
    ) -> Self {
        let mut cmd = Command::new("python3");
        cmd.arg(format!(
            "{}/tests/python/group_member.py",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args([client, bootstrap, topic, group]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3");
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let assignment: Arc<Mutex<BTreeSet<i32>>> = Arc::default();
        let (name, held) = (name.to_string(), assignment.clone());
        let (_, stdout) = common::collect_lines(out, move |line| {
            let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
            let partitions = || rest.split(',').filter_map(|p| p.parse::<i32>().ok());
            match word {
                "assigned" => held.lock().unwrap().extend(partitions()),
                "revoked" => {
                    let mut held = held.lock().unwrap();
                    for p in partitions() {
                        held.remove(&p);
                    }
                }
                _ => {
                    if let (Ok(p), Ok(o)) = (word.parse(), rest.trim().parse()) {
                        tally.lock().unwrap().push((name.clone(), p, o));
                    }
                }
            }
        });
        let (log, stderr) = common::collect_lines(err, |_| {});
        Self {
            child,
            readers: vec![stdout, stderr],
            assignment,
            log,
        }
    }

    fn assignment(&self) -> BTreeSet<i32> {
        self.assignment.lock().unwrap().clone()
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGKILL: no LeaveGroup, so the group only notices when the session times out.
    fn kill(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        for r in self.readers {
            r.join().unwrap();
        }
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

async fn wait_stable(broker: &Broker, group: &str, members: usize) {
    wait_for(
        &format!("{group} stable with {members} members"),
        60,
        || {
            let s = broker.inspect().group(group);
            s.state == GroupState::Stable && s.members.len() == members
        },
    )
    .await;
}

fn per_member(tally: &Tally) -> HashMap<String, usize> {
    per_member_of(&tally.lock().unwrap())
}

fn per_member_of(tally: &[(String, i32, i64)]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for (name, _, _) in tally {
        *m.entry(name.clone()).or_default() += 1;
    }
    m
}

async fn three_members_leave_and_die(strategy: &str) {
    let broker = Broker::builder()
        .configure(|c| c.group.consumer_session_timeout = Duration::from_secs(6))
        .start()
        .await
        .unwrap();
    let b = broker.bootstrap();
    let (topic, group) = ("work", format!("g-{strategy}"));
    common::create_topic(&b, topic, 12, &[]).await;
    let tally: Tally = Arc::default();
    let cfg = if strategy == "consumer" {
        [("group.protocol", "consumer")]
    } else {
        [("partition.assignment.strategy", strategy)]
    };
    let a = Member::spawn("a", &b, topic, &group, &cfg, tally.clone());
    let leaver = Member::spawn("b", &b, topic, &group, &cfg, tally.clone());
    let victim = PyMember::spawn(
        "confluent",
        &b,
        topic,
        &group,
        "c",
        tally.clone(),
        &[("ASSIGNOR", strategy)],
    );
    wait_stable(&broker, &group, 3).await;
    wait_for("every member assigned", 30, || {
        a.assignment().len() == 4 && leaver.assignment().len() == 4
    })
    .await;
    produce(&b, topic, 0, 1200).await;
    wait_for("1200 records", 60, || tally.lock().unwrap().len() == 1200).await;
    let split = per_member(&tally);
    assert_eq!(split.len(), 3, "all three members consumed: {split:?}");

    leaver.stop();
    wait_stable(&broker, &group, 2).await;
    produce(&b, topic, 1200, 1200).await;
    let show = || {
        let t = tally.lock().unwrap();
        let mut last: BTreeMap<i32, i64> = BTreeMap::new();
        for (_, p, o) in t.iter() {
            let e = last.entry(*p).or_insert(*o);
            *e = (*e).max(*o);
        }
        format!(
            "tally {} {:?}; last offsets {last:?}; a holds {:?}; group {:#?}; committed {:?}",
            t.len(),
            per_member_of(&t),
            a.assignment(),
            broker.inspect().group(&group),
            broker.committed(&group),
        )
    };
    wait_for_showing(
        "2400 records",
        60,
        || tally.lock().unwrap().len() == 2400,
        show,
    )
    .await;

    victim.kill();
    produce(&b, topic, 2400, 1200).await;
    wait_for("3600 records after the session timeout", 60, || {
        tally.lock().unwrap().len() >= 3600
    })
    .await;
    wait_stable(&broker, &group, 1).await;
    assert_eq!(a.assignment().len(), 12);
    assert_exactly_once(broker.inspect(), topic, &tally);
    a.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_eager() {
    three_members_leave_and_die("range,roundrobin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_cooperative_sticky() {
    three_members_leave_and_die("cooperative-sticky").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_consumer_protocol() {
    three_members_leave_and_die("consumer").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_member_restarts_without_rebalance() {
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    common::create_topic(&b, "st", 6, &[]).await;
    let tally: Tally = Arc::default();
    let a = Member::spawn(
        "a",
        &b,
        "st",
        "static",
        &[("group.instance.id", "a"), ("session.timeout.ms", "10000")],
        tally.clone(),
    );
    let other = Member::spawn(
        "b",
        &b,
        "st",
        "static",
        &[("group.instance.id", "b"), ("session.timeout.ms", "10000")],
        tally.clone(),
    );
    wait_stable(&broker, "static", 2).await;
    wait_for("both assigned", 30, || {
        a.assignment().len() == 3 && other.assignment().len() == 3
    })
    .await;
    let before = a.assignment();
    let generation = broker.inspect().group("static").generation;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let other_rebalances = other.rebalances();

    a.stop(); // a static member does not leave the group on close
    let a2 = Member::spawn(
        "a2",
        &b,
        "st",
        "static",
        &[("group.instance.id", "a"), ("session.timeout.ms", "10000")],
        tally.clone(),
    );
    wait_for("restarted member assigned", 30, || {
        a2.assignment().len() == 3
    })
    .await;
    assert_eq!(a2.assignment(), before, "same partitions after the restart");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = broker.inspect().group("static");
    assert_eq!(
        (s.state, s.generation),
        (GroupState::Stable, generation),
        "no rebalance"
    );
    assert_eq!(
        other.rebalances(),
        other_rebalances,
        "the other member saw no rebalance"
    );
    assert_eq!(other.assignment().len(), 3);
    produce(&b, "st", 0, 300).await;
    wait_for("300 records", 60, || tally.lock().unwrap().len() == 300).await;
    assert_exactly_once(broker.inspect(), "st", &tally);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_with_metadata_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = common::disk_broker(dir.path()).await;
    let b = broker.bootstrap();
    common::create_topic(&b, "durable", 2, &[]).await;
    produce(&b, "durable", 0, 40).await;
    let group_client = |b: &str| -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", b)
            .set("group.id", "keeper")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap()
    };
    let c = group_client(&b);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("durable", 0, Offset::Offset(3))
        .unwrap();
    tpl.add_partition_offset("durable", 1, Offset::Offset(7))
        .unwrap();
    tpl.find_partition("durable", 0)
        .unwrap()
        .set_metadata("checkpoint zero");
    tpl.find_partition("durable", 1)
        .unwrap()
        .set_metadata("{\"batch\":7}");
    c.commit(&tpl, CommitMode::Sync).expect("commit");
    drop(c);
    // No graceful shutdown: committed offsets are durable when the commit is answered.
    broker.crash().await;

    let broker = common::disk_broker(dir.path()).await;
    let b = broker.bootstrap();
    let c = group_client(&b);
    let mut ask = TopicPartitionList::new();
    ask.add_partition("durable", 0);
    ask.add_partition("durable", 1);
    let got = c.committed_offsets(ask, Duration::from_secs(10)).unwrap();
    let p0 = got.find_partition("durable", 0).unwrap();
    let p1 = got.find_partition("durable", 1).unwrap();
    assert_eq!(
        (p0.offset(), p0.metadata()),
        (Offset::Offset(3), "checkpoint zero")
    );
    assert_eq!(
        (p1.offset(), p1.metadata()),
        (Offset::Offset(7), "{\"batch\":7}")
    );
    // A consumer in the group resumes where it committed.
    c.subscribe(&["durable"]).unwrap();
    let mut first: HashMap<i32, i64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while first.len() < 2 && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            first.entry(m.partition()).or_insert(m.offset());
        }
    }
    assert_eq!(first.get(&0), Some(&3));
    assert_eq!(first.get(&1), Some(&7));
}

async fn python_group(client: &str) {
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    let (topic, group) = (format!("py-{client}"), format!("py-group-{client}"));
    common::create_topic(&b, &topic, 4, &[]).await;
    let tally: Tally = Arc::default();
    let spawn = |name| {
        PyMember::spawn(
            client,
            &b,
            &topic,
            &group,
            name,
            tally.clone(),
            &[("SESSION_TIMEOUT_MS", "10000")],
        )
    };
    let (mut one, mut two) = (spawn("one"), spawn("two"));
    wait_stable(&broker, &group, 2).await;
    // Stable on the broker says nothing of what each client has applied yet; wait for both
    // to report their partitions, so the split below tests the assignment, not timing.
    wait_for_showing(
        "each member to hold two partitions",
        60,
        || one.assignment().len() == 2 && two.assignment().len() == 2,
        || {
            let g = broker.inspect().group(&group);
            format!(
                "{client}: one holds {:?}, two {:?}; group {} generation {} members {:?}\n\
                 --- one ---\n{}\n--- two ---\n{}",
                one.assignment(),
                two.assignment(),
                g.state_name,
                g.generation,
                g.members.iter().map(|m| &m.member_id).collect::<Vec<_>>(),
                one.log(),
                two.log()
            )
        },
    )
    .await;
    produce(&b, &topic, 0, 400).await;
    wait_for("400 records", 120, || tally.lock().unwrap().len() >= 400).await;
    // Anything consumed twice would show up shortly after.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let running = [one.is_running(), two.is_running()];
    let holding = [one.assignment(), two.assignment()];
    let logs = [one.kill(), two.kill()];
    let split = per_member(&tally);
    let context = || {
        format!(
            "{client}: split {split:?}, running {running:?}, holding {holding:?}\n\
             --- one ---\n{}\n--- two ---\n{}",
            logs[0], logs[1]
        )
    };
    assert_eq!(running, [true, true], "{}", context());
    assert_eq!(split.len(), 2, "both members consumed: {}", context());
    assert_exactly_once(broker.inspect(), &topic, &tally);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_kafka_python_group() {
    python_group("confluent").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_group() {
    python_group("kafka-python").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_groups_rebalance_at_once() {
    let broker = Broker::start().await.unwrap();
    let b = broker.bootstrap();
    common::create_topic(&b, "shared", 6, &[]).await;
    let tally: Tally = Arc::default();
    let mut members = Vec::new();
    for g in 0..20 {
        for m in 0..2 {
            members.push(Member::spawn(
                &format!("{g}-{m}"),
                &b,
                "shared",
                &format!("many-{g}"),
                &[],
                tally.clone(),
            ));
        }
    }
    for g in 0..20 {
        wait_stable(&broker, &format!("many-{g}"), 2).await;
    }
    wait_for("every member holds 3 partitions", 60, || {
        members.iter().all(|m| m.assignment().len() == 3)
    })
    .await;
    for m in members {
        m.stop();
    }
}

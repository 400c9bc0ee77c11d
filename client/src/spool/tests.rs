use super::*;

fn entry(i: usize) -> Entry {
    Entry {
        key: format!("k{i}"),
        value: format!("{{\"n\":{i}}}"),
        spooled_at_ms: i as i64,
    }
}

#[test]
fn appends_read_back_in_order_and_drain_in_steps() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::new(dir.path());
    for i in 0..10 {
        spool.append("t", &entry(i)).unwrap();
    }
    let got: Vec<Entry> = spool
        .read("t")
        .unwrap()
        .entries
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    assert_eq!(got, (0..10).map(entry).collect::<Vec<_>>());
    let mut sent = Vec::new();
    let n = spool
        .drain("t", 4, |b| {
            sent.extend_from_slice(b);
            Ok::<(), ()>(())
        })
        .unwrap()
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(spool.read("t").unwrap().entries.len(), 6);
    // A failed send delivers nothing.
    let failed = spool.drain("t", 4, |_| Err("down")).unwrap();
    assert_eq!(failed, Err("down"));
    assert_eq!(spool.status().unwrap()[0].waiting, 6);
    spool
        .drain("t", 100, |b| {
            sent.extend_from_slice(b);
            Ok::<(), ()>(())
        })
        .unwrap()
        .unwrap();
    assert_eq!(sent, (0..10).map(entry).collect::<Vec<_>>());
    assert_eq!(spool.status().unwrap()[0].waiting, 0);
    assert_eq!(spool.status().unwrap()[0].bytes, 0);
}

#[test]
fn an_append_during_a_drain_neither_waits_nor_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::new(dir.path());
    for i in 0..3 {
        spool.append("t", &entry(i)).unwrap();
    }
    // With the file's lock held while sending, this append would wait for ever.
    let n = spool
        .drain("t", 100, |_| spool.append("t", &entry(3)).map(|_| ()))
        .unwrap()
        .unwrap();
    assert_eq!(n, 3);
    let left: Vec<Entry> = spool
        .read("t")
        .unwrap()
        .entries
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    assert_eq!(left, vec![entry(3)]);
}

#[test]
fn a_torn_entry_is_dropped_and_what_came_before_reads() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::new(dir.path());
    for i in 0..3 {
        spool.append("t", &entry(i)).unwrap();
    }
    let path = dir.path().join("t.spool");
    let len = std::fs::metadata(&path).unwrap().len();
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    // Cut in the middle of the last entry's payload.
    f.set_len(len - 20).unwrap();
    let c = spool.read("t").unwrap();
    assert_eq!(c.entries.len(), 2);
    assert!(c.torn_bytes > 0);
    assert_eq!(spool.status().unwrap()[0].torn_bytes, c.torn_bytes);
    spool.append("t", &entry(9)).unwrap();
    let got: Vec<i64> = spool
        .read("t")
        .unwrap()
        .entries
        .iter()
        .map(|(e, _)| e.spooled_at_ms)
        .collect();
    assert_eq!(got, [0, 1, 9]);
}

#[test]
fn a_full_spool_drops_the_oldest_agent_actions_never_the_learning_topics() {
    let dir = tempfile::tempdir().unwrap();
    let one = {
        let probe = tempfile::tempdir().unwrap();
        let s = Spool::new(probe.path());
        s.append("t", &entry(0)).unwrap();
        std::fs::metadata(probe.path().join("t.spool"))
            .unwrap()
            .len()
    };
    let spool = Spool::new(dir.path()).with_max_bytes(one * 5 + 16);
    for i in 0..4 {
        assert_eq!(spool.append("agent-actions", &entry(i)).unwrap().dropped, 0);
    }
    assert_eq!(
        spool.append("task-executions", &entry(10)).unwrap().dropped,
        0
    );
    // Full: the oldest agent action gives way to a learning event.
    assert_eq!(
        spool.append("task-executions", &entry(11)).unwrap().dropped,
        1
    );
    let actions: Vec<i64> = spool
        .read("agent-actions")
        .unwrap()
        .entries
        .iter()
        .map(|(e, _)| e.spooled_at_ms)
        .collect();
    assert_eq!(actions, [1, 2, 3]);
    for i in 12..20 {
        spool.append("task-executions", &entry(i)).unwrap();
    }
    // The learning topic is never dropped, even past the bound.
    assert_eq!(spool.read("task-executions").unwrap().entries.len(), 10);
    assert_eq!(spool.read("agent-actions").unwrap().entries.len(), 0);
    // A new agent action with none older to drop is itself dropped.
    assert!(!spool.append("agent-actions", &entry(30)).unwrap().written);
    assert_eq!(spool.read("agent-actions").unwrap().entries.len(), 0);
}

#[test]
fn concurrent_appenders_never_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let spool = Spool::new(dir.path());
            std::thread::spawn(move || {
                for i in 0..50 {
                    spool.append("t", &entry(t * 1000 + i)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let c = Spool::new(dir.path()).read("t").unwrap();
    assert_eq!(c.torn_bytes, 0);
    let mut got: Vec<i64> = c.entries.iter().map(|(e, _)| e.spooled_at_ms).collect();
    got.sort();
    let mut want: Vec<i64> = (0..8)
        .flat_map(|t| (0..50).map(move |i| t * 1000 + i))
        .collect();
    want.sort();
    assert_eq!(got, want);
}

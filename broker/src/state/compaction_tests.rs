//! Compaction of a large log: produce and fetch on the partition keep flowing while it
//! runs, because the cleaner holds the partition lock only per segment read and swap.

use super::*;
use crate::log::batch::BatchHeader;
use crate::log::records::tests::{encoded, record};
use bytes::Bytes;
use kafka_protocol::records::Record;
use std::time::{Duration, Instant};

const VALUE: usize = 16 * 1024;
const PER_BATCH: usize = 64; // 1 MiB batches
const KEYS: usize = 100;

/// A batch of `count` records at `offset` with keys cycling over `KEYS`.
fn batch(offset: i64, count: usize, value: &Bytes) -> (BatchHeader, Bytes) {
    let records: Vec<Record> = (0..count)
        .map(|i| {
            let key = Bytes::from(format!("k{}", (offset as usize + i) % KEYS));
            // Offsets count from the batch: its base sequence stays -1.
            let mut r = record(i as i64, key, value.clone());
            r.offset = offset + i as i64;
            r
        })
        .collect();
    encoded(&records)
}

#[test]
fn produce_and_fetch_flow_while_a_gigabyte_is_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let config = BrokerConfig {
        storage: StorageConfig::Disk(dir.path().to_path_buf()),
        ..BrokerConfig::default()
    };
    let state = State::open(config, ("127.0.0.1".into(), 9092)).unwrap();
    let configs = TopicConfigs::from_pairs([
        ("cleanup.policy", Some("compact")),
        ("segment.bytes", Some("67108864")),
        ("segment.ms", Some("60000")),
        ("max.message.bytes", Some("2097152")),
    ])
    .unwrap();
    let topic = state.create_topic("big", 1, -1, configs).unwrap();
    let p = topic.partition(0).unwrap();
    let value = Bytes::from(vec![b'v'; VALUE]);
    let batches = 1024; // 1 GiB of records
    for n in 0..batches {
        let offset = (n * PER_BATCH) as i64;
        p.append(&[batch(offset, PER_BATCH, &value)], None).unwrap();
    }
    // An append after segment.ms rolls a new active segment: the whole gigabyte is then
    // in inactive ones.
    state.clock.advance(Duration::from_secs(120));
    let mut end = (batches * PER_BATCH) as i64;
    p.append(&[batch(end, 1, &value)], None).unwrap();
    end += 1;
    let ranges = p.with_log(|l| l.cleanable_ranges());
    assert!(ranges.len() >= 15, "{ranges:?}");

    let max_decompressed = state.config().max_decompressed_bytes;
    let started = Instant::now();
    let (removed, compaction_took, ops, longest) = std::thread::scope(|s| {
        let cleaner = s.spawn(|| {
            let removed = p.compact(max_decompressed).unwrap();
            (removed, started.elapsed())
        });
        let (mut ops, mut longest) = (0, Duration::ZERO);
        while !cleaner.is_finished() {
            let t = Instant::now();
            p.append(&[batch(end, 1, &value)], None).unwrap();
            let read = p.read(end, 1 << 20, false).unwrap();
            assert!(!read.bytes.is_empty(), "the new record is read back");
            longest = longest.max(t.elapsed());
            end += 1;
            ops += 1;
        }
        let (removed, took) = cleaner.join().unwrap();
        (removed, took, ops, longest)
    });
    assert!(
        removed > batches * PER_BATCH - 2 * KEYS,
        "removed {removed}: one record per key is left of the gigabyte"
    );
    // Holding the lock for the whole compaction would make one operation wait for all of
    // it; per segment, none waits more than a fraction of it.
    assert!(
        ops >= 10 && longest < compaction_took / 4,
        "{ops} produce+fetch rounds during a {compaction_took:?} compaction, the longest {longest:?}"
    );
    // Every key's latest record is still there, at its offset, and the log end moved on.
    let mut seen = std::collections::HashMap::new();
    p.with_log(|l| {
        l.scan_batches(0, &mut |h, b| {
            let set = crate::log::records::decode(&Bytes::copy_from_slice(b), 1 << 30).unwrap();
            for r in set.records {
                seen.insert(r.key.unwrap(), r.offset);
                assert!(r.offset <= h.last_offset());
            }
        })
    })
    .unwrap();
    assert_eq!(seen.len(), KEYS);
    assert_eq!(p.offsets().high_watermark, end);
}

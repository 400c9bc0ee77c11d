//! The disk log against the memory log, recovery, indexes, retention and compaction.

use super::*;
use crate::log::batch::{scan_valid, stamp, tests::make_batch};
use crate::log::memory::MemoryLog;
use crate::log::now_ms;
use std::fs::OpenOptions;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 300,
        index_interval_bytes: 100,
        retention_ms: -1,
        retention_bytes: -1,
        ..LogConfig::default()
    }
}

fn append(log: &mut dyn Log, timestamps: &[i64]) -> Bytes {
    let base = log.end_offset();
    let b = stamp(&make_batch(0, timestamps), base, 0, None);
    let h = BatchHeader::validate(&b).unwrap();
    log.append(&h, b.clone()).unwrap();
    b
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some(ext))
        .collect();
    out.sort();
    out
}

fn concat(batches: &[Bytes]) -> Vec<u8> {
    batches.iter().flat_map(|b| b.iter().copied()).collect()
}

/// Appends `n` batches of 1–3 records with increasing timestamps.
fn fill(log: &mut dyn Log, n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| {
            let ts = 1_000 + 10 * i as i64;
            let count = i % 3 + 1;
            let tss: Vec<i64> = (0..count as i64).map(|k| ts + k).collect();
            append(log, &tss)
        })
        .collect()
}

#[test]
fn round_trip_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = DiskLog::open(dir.path(), config()).unwrap();
    assert_eq!((log.start_offset(), log.end_offset()), (0, 0));
    assert!(log.read(0, 100).unwrap().is_empty());
    let batches = fill(&mut log, 30);
    assert!(files(dir.path(), "log").len() > 3, "segments rolled");
    assert!(files(dir.path(), "index")
        .iter()
        .any(|p| fs::metadata(p).unwrap().len() > 0));
    let all = log.read(0, usize::MAX).unwrap();
    assert_eq!(&all[..], &concat(&batches)[..]);
    assert_eq!(log.size_bytes(), all.len() as u64);
    for b in &batches {
        let h = BatchHeader::validate(b).unwrap();
        for o in h.base_offset..=h.last_offset() {
            assert_eq!(log.read(o, 1).unwrap(), *b, "offset {o}");
        }
    }
    let end = log.end_offset();
    assert!(log.read(end, 100).unwrap().is_empty());
    assert!(matches!(
        log.read(end + 1, 100),
        Err(LogError::OutOfRange { .. })
    ));
    // Each segment holds whole batches and starts at its name's offset.
    for p in files(dir.path(), "log") {
        let data = fs::read(&p).unwrap();
        let (headers, len) = scan_valid(&data);
        assert_eq!(len, data.len());
        let name: i64 = p.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        assert_eq!(headers[0].base_offset, name);
    }
}

#[test]
fn max_bytes_and_middle_of_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = DiskLog::open(dir.path(), config()).unwrap();
    let batches = fill(&mut log, 12);
    // Offset 1 is in the middle of the second batch (offsets 1..=2).
    let got = log.read(2, 1).unwrap();
    assert_eq!(got, batches[1]);
    let two = batches[1].len() + batches[2].len();
    assert_eq!(&log.read(1, two).unwrap()[..], &concat(&batches[1..3])[..]);
    assert_eq!(log.read(1, two - 1).unwrap(), batches[1]);
    // A read spanning several segments stops at the budget, with whole batches only.
    let budget = concat(&batches[2..9]).len() + 5;
    let got = log.read(3, budget).unwrap();
    assert_eq!(&got[..], &concat(&batches[2..9])[..]);
    assert!(files(dir.path(), "log").len() > 2);
}

#[test]
fn behaves_like_the_memory_log() {
    // Small segments, and one big segment with many index entries.
    let big = LogConfig {
        segment_bytes: 1 << 20,
        index_interval_bytes: 150,
        ..config()
    };
    for cfg in [config(), big] {
        compare_with_memory_log(cfg);
    }
}

fn compare_with_memory_log(cfg: LogConfig) {
    let dir = tempfile::tempdir().unwrap();
    let mut disk = DiskLog::open(dir.path(), cfg).unwrap();
    let mut mem = MemoryLog::new(cfg);
    let stamps: [&[i64]; 10] = [
        &[50, 10],
        &[20],
        &[90, 30, 40],
        &[60],
        &[90],
        &[5, 7],
        &[100],
        &[95, 96],
        &[100, 1],
        &[80],
    ];
    for _ in 0..3 {
        for s in stamps {
            append(&mut disk, s);
            append(&mut mem, s);
        }
    }
    let check = |disk: &DiskLog, mem: &MemoryLog| {
        assert_eq!(disk.start_offset(), mem.start_offset());
        assert_eq!(disk.end_offset(), mem.end_offset());
        for ts in [-1, 0, 6, 10, 11, 50, 61, 90, 91, 96, 100, 101] {
            assert_eq!(
                disk.batch_by_timestamp(ts).unwrap(),
                mem.batch_by_timestamp(ts).unwrap(),
                "timestamp {ts}"
            );
        }
        assert_eq!(
            disk.max_timestamp_batch().unwrap(),
            mem.max_timestamp_batch().unwrap()
        );
        for o in mem.start_offset()..=mem.end_offset() {
            for max in [0, 100, 250, 1000] {
                assert_eq!(disk.read(o, max).unwrap(), mem.read(o, max).unwrap());
            }
        }
    };
    check(&disk, &mem);
    disk.advance_start_offset(23).unwrap();
    mem.advance_start_offset(23).unwrap();
    check(&disk, &mem);
    drop(disk);
    let disk = DiskLog::open(dir.path(), cfg).unwrap();
    check(&disk, &mem);
}

#[test]
fn batch_by_timestamp_uses_sparse_time_index() {
    let dir = tempfile::tempdir().unwrap();
    for segment_bytes in [1 << 20, 2_000] {
        let cfg = LogConfig {
            segment_bytes,
            index_interval_bytes: 300,
            ..config()
        };
        let mut log =
            DiskLog::open(dir.path().join(segment_bytes.to_string()).as_path(), cfg).unwrap();
        let batches: Vec<Bytes> = (0..100)
            .map(|i| append(&mut log, &[10 * i, 10 * i + 3]))
            .collect();
        assert!(log.segments.iter().any(|s| s.time_index.len() > 2));
        for ts in -5..1_000 {
            let want = batches.get(((ts + 6).max(0) / 10) as usize).cloned();
            assert_eq!(log.batch_by_timestamp(ts).unwrap(), want, "timestamp {ts}");
        }
        assert_eq!(log.max_timestamp_batch().unwrap().as_ref(), batches.last());
        drop(log);
        let log = DiskLog::open(dir.path().join(segment_bytes.to_string()).as_path(), cfg).unwrap();
        assert_eq!(
            log.batch_by_timestamp(555).unwrap(),
            Some(batches[56].clone())
        );
        assert_eq!(log.max_timestamp_batch().unwrap().as_ref(), batches.last());
    }
}

#[test]
fn reopen_keeps_data_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = DiskLog::open(dir.path(), config()).unwrap();
    let mut batches = fill(&mut log, 20);
    let end = log.end_offset();
    log.flush().unwrap();
    let index_before: Vec<Vec<u8>> = files(dir.path(), "index")
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect();
    drop(log);
    let mut log = DiskLog::open(dir.path(), config()).unwrap();
    assert_eq!(log.end_offset(), end);
    assert_eq!(&log.read(0, usize::MAX).unwrap()[..], &concat(&batches)[..]);
    let index_after: Vec<Vec<u8>> = files(dir.path(), "index")
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect();
    assert_eq!(index_before, index_after);
    batches.extend(fill(&mut log, 5));
    assert_eq!(&log.read(0, usize::MAX).unwrap()[..], &concat(&batches)[..]);
}

#[test]
fn torn_tail_is_truncated() {
    for tail in ["half", "garbage", "bad-crc"] {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DiskLog::open(dir.path(), config()).unwrap();
        let mut batches = fill(&mut log, 10);
        let end = log.end_offset();
        drop(log);
        let last = files(dir.path(), "log").pop().unwrap();
        let good_len = fs::metadata(&last).unwrap().len();
        let extra = stamp(&make_batch(0, &[1, 2, 3]), end, 0, None);
        let mut f = OpenOptions::new().append(true).open(&last).unwrap();
        match tail {
            "half" => f.write_all(&extra[..extra.len() / 2]).unwrap(),
            "garbage" => f.write_all(&[0xab; 200]).unwrap(),
            _ => {
                let mut bad = extra.to_vec();
                let n = bad.len();
                bad[n - 1] ^= 0xff;
                f.write_all(&bad).unwrap();
            }
        }
        drop(f);
        let mut log = DiskLog::open(dir.path(), config()).unwrap();
        assert_eq!(log.end_offset(), end, "{tail}");
        assert_eq!(fs::metadata(&last).unwrap().len(), good_len, "{tail}");
        batches.push(append(&mut log, &[7, 8]));
        assert_eq!(log.end_offset(), end + 2);
        assert_eq!(&log.read(0, usize::MAX).unwrap()[..], &concat(&batches)[..]);
        drop(log);
        let log = DiskLog::open(dir.path(), config()).unwrap();
        assert_eq!(log.end_offset(), end + 2);
    }
}

#[test]
fn corrupted_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = DiskLog::open(dir.path(), config()).unwrap();
    let batches = fill(&mut log, 30);
    drop(log);
    let indexes = files(dir.path(), "index");
    let times = files(dir.path(), "timeindex");
    assert!(indexes.len() > 3);
    let original_index = fs::read(&indexes[1]).unwrap();
    assert!(!original_index.is_empty());
    let original_time = fs::read(&times[2]).unwrap();
    fs::write(&indexes[0], [1, 2, 3]).unwrap(); // partial entry
    fs::write(&indexes[1], [0, 0, 0, 1, 0, 0, 0, 7]).unwrap(); // points nowhere sane
    fs::remove_file(&times[2]).unwrap();
    let log = DiskLog::open(dir.path(), config()).unwrap();
    assert_eq!(&log.read(0, usize::MAX).unwrap()[..], &concat(&batches)[..]);
    assert_eq!(fs::metadata(&indexes[0]).unwrap().len() % 8, 0);
    assert_eq!(fs::read(&indexes[1]).unwrap(), original_index);
    assert_eq!(fs::read(&times[2]).unwrap(), original_time);
    for b in &batches {
        let h = BatchHeader::validate(b).unwrap();
        assert_eq!(log.read(h.last_offset(), 1).unwrap(), *b);
    }
}

#[test]
fn retention_by_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = DiskLog::open(dir.path(), config()).unwrap();
    let batches = fill(&mut log, 30);
    let segments = files(dir.path(), "log").len();
    let total = log.size_bytes();
    log.set_config(LogConfig {
        retention_bytes: 700,
        ..config()
    });
    let freed = log.apply_retention(now_ms()).unwrap();
    assert_eq!(log.size_bytes(), total - freed);
    assert!(log.size_bytes() <= 700);
    let remaining = files(dir.path(), "log");
    assert!(remaining.len() < segments);
    assert_eq!(files(dir.path(), "index").len(), remaining.len());
    assert_eq!(files(dir.path(), "timeindex").len(), remaining.len());
    let first: i64 = remaining[0]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(log.start_offset(), first);
    assert!(matches!(
        log.read(first - 1, 100),
        Err(LogError::OutOfRange { .. })
    ));
    let kept = log.read(first, usize::MAX).unwrap();
    assert_eq!(kept.len() as u64, log.size_bytes());
    assert!(concat(&batches).ends_with(&kept));
    drop(log);
    let log = DiskLog::open(dir.path(), config()).unwrap();
    assert_eq!(log.start_offset(), first);
}

#[test]
fn retention_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        retention_ms: 100,
        ..config()
    };
    let mut log = DiskLog::open(dir.path(), cfg).unwrap();
    for i in 0..10 {
        append(&mut log, &[1_000 + i]);
    }
    let batches: Vec<Bytes> = (0..10).map(|i| append(&mut log, &[5_000 + i])).collect();
    let end = log.end_offset();
    log.apply_retention(5_050).unwrap();
    assert!(log.start_offset() > 0 && log.start_offset() <= 10);
    let kept = log.read(log.start_offset(), usize::MAX).unwrap();
    assert!(kept.ends_with(&concat(&batches)));
    // Everything expired: the active segment rolls and goes too.
    log.apply_retention(100_000).unwrap();
    assert_eq!((log.start_offset(), log.end_offset()), (end, end));
    assert_eq!(log.size_bytes(), 0);
    assert_eq!(files(dir.path(), "log").len(), 1);
    assert!(log.read(end, 100).unwrap().is_empty());
    drop(log);
    // An empty log reopens at its segment's base offset and continues there.
    let mut log = DiskLog::open(dir.path(), cfg).unwrap();
    assert_eq!((log.start_offset(), log.end_offset()), (end, end));
    let b = append(&mut log, &[200_000]);
    assert_eq!(log.read(end, 1).unwrap(), b);
}

#[test]
fn advance_start_offset_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = DiskLog::open(dir.path(), config()).unwrap();
    let batches = fill(&mut log, 30);
    let segments = files(dir.path(), "log").len();
    let end = log.end_offset();
    log.advance_start_offset(25).unwrap();
    assert_eq!(log.start_offset(), 25);
    assert!(files(dir.path(), "log").len() < segments);
    assert!(matches!(log.read(24, 1), Err(LogError::OutOfRange { .. })));
    let h = BatchHeader::validate(&log.read(25, 1).unwrap()).unwrap();
    assert!(h.base_offset <= 25 && h.last_offset() >= 25);
    assert!(log.advance_start_offset(end + 1).is_err());
    log.advance_start_offset(10).unwrap(); // never moves back
    assert_eq!(log.start_offset(), 25);
    drop(log);
    let mut log = DiskLog::open(dir.path(), config()).unwrap();
    assert_eq!(log.start_offset(), 25);
    assert_eq!(log.end_offset(), end);
    assert!(concat(&batches).ends_with(&log.read(25, usize::MAX).unwrap()));
    log.advance_start_offset(end).unwrap();
    assert_eq!(log.size_bytes(), 0);
    assert!(log.read(end, 10).unwrap().is_empty());
    drop(log);
    let log = DiskLog::open(dir.path(), config()).unwrap();
    assert_eq!((log.start_offset(), log.end_offset()), (end, end));
}

#[test]
fn rolls_on_segment_ms() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_ms: 0,
        segment_bytes: 1 << 20,
        ..config()
    };
    let mut log = DiskLog::open(dir.path(), cfg).unwrap();
    append(&mut log, &[1]);
    std::thread::sleep(std::time::Duration::from_millis(5));
    append(&mut log, &[2]);
    assert_eq!(files(dir.path(), "log").len(), 2);
}

#[test]
fn an_interrupted_swap_comes_back_to_its_own_partition_only() {
    let root = tempfile::tempdir().unwrap();
    let (v1, v2) = (
        root.path().join("orders.v1-0"),
        root.path().join("orders.v2-0"),
    );
    let batches = {
        let mut log = DiskLog::open(&v1, config()).unwrap();
        let b = fill(&mut log, 5);
        log.flush().unwrap();
        b
    };
    // The crash between the swap's two renames: only `<dir>.old` is left.
    fs::rename(&v1, sibling(&v1, "old")).unwrap();
    let other = DiskLog::open(&v2, config()).unwrap();
    assert_eq!(other.end_offset(), 0, "orders.v2-0 took orders.v1-0's data");
    let log = DiskLog::open(&v1, config()).unwrap();
    assert_eq!(log.end_offset(), 9); // 1 + 2 + 3 + 1 + 2 records
    assert_eq!(log.read(0, 1).unwrap(), batches[0]);
    assert!(!sibling(&v1, "old").exists());
}

#[test]
fn segments_roll_on_the_brokers_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::default();
    let cfg = LogConfig {
        segment_bytes: 1 << 20,
        segment_ms: 3_600_000,
        ..config()
    };
    let mut log = DiskLog::open(dir.path(), cfg)
        .unwrap()
        .with_clock(clock.clone());
    append(&mut log, &[1]);
    append(&mut log, &[2]);
    assert_eq!(files(dir.path(), "log").len(), 1);
    clock.advance(std::time::Duration::from_secs(2 * 3600));
    append(&mut log, &[3]);
    assert_eq!(
        files(dir.path(), "log").len(),
        2,
        "log.roll.ms passed on the broker's clock"
    );
}

#[test]
fn a_segment_is_replaced_alone_and_a_crash_before_the_swap_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let batches = {
        let mut log = DiskLog::open(dir.path(), config()).unwrap();
        fill(&mut log, 12)
    };
    let log = DiskLog::open(dir.path(), config()).unwrap();
    let ranges = log.cleanable_ranges();
    assert!(ranges.len() >= 2, "{ranges:?}");
    assert!(
        ranges
            .iter()
            .all(|(_, next)| *next <= log.active().base_offset),
        "the active segment is never cleanable"
    );
    // A compaction that wrote its segment but crashed before the swap.
    let (base, next) = ranges[0];
    fs::write(segment_path(dir.path(), base, CLEANED_EXT), b"half").unwrap();
    drop(log);
    let mut log = DiskLog::open(dir.path(), config()).unwrap();
    assert!(
        files(dir.path(), CLEANED_EXT).is_empty(),
        "the leftover is removed"
    );
    assert_eq!(log.read(0, 1).unwrap(), batches[0]);
    // Replace the first segment by its last batch only; the rest of the log is untouched.
    let mut kept = Vec::new();
    log.scan_range(base, next, &mut |h, b| {
        kept = vec![(*h, Bytes::copy_from_slice(b))]
    })
    .unwrap();
    let (last_h, last_b) = kept[0].clone();
    let end = log.end_offset();
    log.replace_range(base, kept).unwrap();
    assert_eq!(log.start_offset(), base);
    assert_eq!(log.end_offset(), end);
    assert_eq!(
        log.read(base, 1 << 20).unwrap().slice(..last_b.len()),
        last_b
    );
    assert_eq!(log.read(last_h.base_offset, 1).unwrap(), last_b);
    let rest = log.read(next, 1 << 30).unwrap();
    drop(log);
    let mut log = DiskLog::open(dir.path(), config()).unwrap();
    assert_eq!(log.read(next, 1 << 30).unwrap(), rest, "reopened, the same");
    assert_eq!(log.read(base, 1).unwrap(), last_b);
    // Neither the active segment nor a batch from elsewhere can be swapped in.
    let active = log.active().base_offset;
    assert!(log.replace_range(active, Vec::new()).is_err());
    assert!(log.replace_range(base, vec![(last_h, last_b)]).is_ok());
    let mut outside = Vec::new();
    log.scan_range(next, next + 1, &mut |h, b| {
        outside.push((*h, Bytes::copy_from_slice(b)))
    })
    .unwrap();
    assert!(log.replace_range(base, outside).is_err());
}

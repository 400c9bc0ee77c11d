//! The audit-logger under test: its archive in a local directory, read back file by
//! file with the `parquet` crate.
#![allow(dead_code)]

use agentbus_client::Topic;
use agentbus_consumers::audit_logger::read::{rows, ArchivedRow};
use agentbus_consumers::audit_logger::store::parse_name;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const GROUP: &str = "audit-group";

/// Every file under `dir`.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Every `.parquet` file under `dir`, relative to it, sorted.
pub fn files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walk(dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .filter_map(|p| p.strip_prefix(dir).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// The next offset after the last archived record, per partition, from the names.
pub fn archived_ends(names: &[String]) -> BTreeMap<(String, i32), i64> {
    let mut out = BTreeMap::new();
    for n in names {
        let topic = n.split('/').nth(1).unwrap_or_default().to_string();
        if let Some((p, _, last)) = parse_name(n) {
            let e = out.entry((topic, p)).or_insert(0);
            *e = (*e).max(last + 1);
        }
    }
    out
}

/// Every row of every file, with the file it came from.
pub fn all_rows(dir: &Path) -> Vec<(String, ArchivedRow)> {
    let mut out = Vec::new();
    for f in files(dir) {
        let bytes = std::fs::read(dir.join(&f)).unwrap();
        for r in rows(bytes::Bytes::from(bytes)).unwrap_or_else(|e| panic!("{f}: {e}")) {
            out.push((f.clone(), r));
        }
    }
    out
}

/// Checks the archive against the broker's logs: every record of every partition
/// exactly once, with its offset, key and value; names as CONVENTIONS say; no file
/// spans two UTC hours; each file's name gives its first and last offset.
pub fn assert_exactly_once(dir: &Path, prefix: &str, broker: &agentbus_testkit::Broker) {
    use agentbus_testkit::Inspect;
    let rows = all_rows(&dir.join(prefix));
    let mut by_partition: BTreeMap<(String, i32), Vec<agentbus_testkit::StoredRecord>> =
        BTreeMap::new();
    let mut per_file: BTreeMap<&str, Vec<&ArchivedRow>> = BTreeMap::new();
    for (f, r) in &rows {
        per_file.entry(f.as_str()).or_default().push(r);
        by_partition
            .entry((r.topic.clone(), r.partition))
            .or_default()
            .push((r.offset, r.key.clone(), r.value.clone()));
    }
    for (f, rs) in &per_file {
        let (p, first, last) = parse_name(f).unwrap_or_else(|| panic!("bad name {f}"));
        let topic = &rs[0].topic;
        let hour = rs[0].timestamp.unwrap() / 3_600_000 * 3_600_000;
        let t = chrono::DateTime::from_timestamp_millis(hour).unwrap();
        let want = format!(
            "topics/{topic}/date={}/hour={}/partition={p}/{topic}+{p}+{first:020}+{last:020}.parquet",
            t.format("%Y-%m-%d"),
            t.format("%H")
        );
        assert_eq!(*f, want.as_str());
        assert_eq!(rs.iter().map(|r| r.offset).min(), Some(first), "{f}");
        assert_eq!(rs.iter().map(|r| r.offset).max(), Some(last), "{f}");
        for r in rs {
            assert_eq!(
                r.timestamp.unwrap() / 3_600_000 * 3_600_000,
                hour,
                "{f} spans two hours"
            );
            assert_eq!((&r.topic, r.partition), (topic, p));
        }
    }
    let mut checked = 0;
    for t in Topic::ALL {
        for p in 0..agentbus_client::catalog::spec(t).partitions {
            let mut want = broker.records(t.name(), p);
            want.sort_by_key(|r| r.0);
            let mut got = by_partition
                .remove(&(t.name().to_string(), p))
                .unwrap_or_default();
            got.sort_by_key(|r| r.0);
            assert_eq!(
                got.len(),
                want.len(),
                "{}/{p}: {} archived, {} in the log",
                t.name(),
                got.len(),
                want.len()
            );
            assert!(
                got == want,
                "{}/{p}: the archive differs from the log",
                t.name()
            );
            checked += got.len();
        }
    }
    assert!(
        by_partition.is_empty(),
        "rows of unknown partitions: {:?}",
        by_partition.keys()
    );
    assert_eq!(checked, rows.len());
}

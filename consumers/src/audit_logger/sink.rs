//! The audit-logger's sink: a file per partition, rotated by record count, by the
//! records' UTC hour and after an idle spell; durable once uploaded. The archive is
//! the authority of the offsets: a partition resumes after the last archived record,
//! and an open file of a revoked partition is discarded (its records are read again).

use super::parquet_file::{ClosedFile, OpenFile};
use super::schema::{typed_columns, Row};
use super::store::{object_name, Archive};
use super::AuditStats;
use crate::sink::{Batch, Revocation, Sink, SinkError, StoredOffset, TopicPartition, WriteOutcome};
use agentbus_client::Topic;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::{info, warn};

/// How files rotate.
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    /// `FLUSH_SIZE`: records per file.
    pub records: usize,
    /// `ROTATE_IDLE_MS`: an open file with no new record for this long is closed.
    pub idle: Duration,
    /// An open file past this many bytes is closed (bounds memory per partition).
    pub max_bytes: usize,
    /// All open files together past this many bytes: the largest is closed (bounds
    /// memory however many partitions are open; 60 × `max_bytes` would not).
    pub max_total_bytes: usize,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            records: 10_000,
            idle: Duration::from_secs(60),
            max_bytes: 4 << 20,
            max_total_bytes: 24 << 20,
        }
    }
}

struct Open {
    file: OpenFile,
    last_append: Instant,
    /// When the oldest record of the file arrived (for the archive's lag).
    since: Instant,
}

/// What the archive holds of a partition, and what is on its way.
#[derive(Default)]
struct Partition {
    /// The next offset after the last archived record (`None`: nothing archived).
    archived: Option<i64>,
    /// The next offset after the last record taken (archived, closed or open).
    taken: Option<i64>,
    topic_id: Option<String>,
    open: Option<Open>,
}

/// The audit-logger's sink.
pub struct ArchiveSink {
    archive: Archive,
    rotation: Rotation,
    parts: BTreeMap<TopicPartition, Partition>,
    /// Closed files waiting for their upload, oldest first, with when their oldest
    /// record arrived.
    pending: VecDeque<(ClosedFile, Instant)>,
    durable: BTreeMap<TopicPartition, i64>,
    stats: AuditStats,
}

impl std::fmt::Debug for ArchiveSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveSink")
            .field("partitions", &self.parts.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(3_600_000) * 3_600_000
}

impl ArchiveSink {
    /// A sink writing to `archive`.
    pub fn new(archive: Archive, rotation: Rotation, stats: AuditStats) -> Self {
        Self {
            archive,
            rotation,
            parts: BTreeMap::new(),
            pending: VecDeque::new(),
            durable: BTreeMap::new(),
            stats,
        }
    }

    fn close_file(&mut self, tp: &TopicPartition) -> Result<(), SinkError> {
        let Some(open) = self.parts.get_mut(tp).and_then(|p| p.open.take()) else {
            return Ok(());
        };
        let closed = open
            .file
            .finish()
            .map_err(|e| SinkError::Fatal(format!("parquet: {e}")))?;
        self.pending.push_back((closed, open.since));
        Ok(())
    }

    /// Uploads the closed files, oldest first; each is durable once its marker is
    /// written.
    async fn upload_pending(&mut self) -> Result<(), SinkError> {
        while let Some((file, _)) = self.pending.front() {
            let name = object_name(
                &self.archive.prefix,
                file.topic,
                file.partition,
                file.first,
                file.last,
                file.hour,
            );
            let tp = (file.topic.name().to_string(), file.partition);
            let topic_id = self.parts.get(&tp).and_then(|p| p.topic_id.clone());
            let started = Instant::now();
            let size = file.bytes.len();
            let before = self
                .parts
                .get(&tp)
                .and_then(|p| p.archived)
                .map_or(-1, |next| next - 1);
            let (topic, partition, id) = (&tp.0, tp.1, topic_id.as_deref());
            self.archive
                .mark(topic, partition, before, &name, id, true)
                .await?;
            self.archive.upload(&name, file.bytes.clone()).await?;
            self.archive
                .mark(topic, partition, file.last, &name, id, false)
                .await?;
            self.stats.uploaded(size, file.records, started.elapsed());
            info!(object = %name, records = file.records, bytes = size, "archived");
            if let Some(p) = self.parts.get_mut(&tp) {
                p.archived = Some(file.last + 1);
            }
            self.durable.insert(tp, file.last + 1);
            self.pending.pop_front();
        }
        Ok(())
    }

    fn take(&mut self, tp: &TopicPartition, topic: Topic, row: Row) -> Result<(), SinkError> {
        let ms = row.timestamp.unwrap_or_else(now_ms);
        let hour = hour_of(ms);
        let part = self.parts.entry(tp.clone()).or_default();
        let rotate = part.open.as_ref().is_some_and(|o| {
            o.file.hour != hour
                || o.file.records >= self.rotation.records
                || o.file.buffered_bytes() >= self.rotation.max_bytes
        });
        if rotate {
            self.close_file(tp)?;
        }
        let part = self.parts.entry(tp.clone()).or_default();
        let offset = row.offset;
        let open = match &mut part.open {
            Some(o) => o,
            None => {
                let file = OpenFile::new(topic, tp.1, part.topic_id.as_deref(), &row, hour)
                    .map_err(|e| SinkError::Fatal(format!("parquet: {e}")))?;
                part.open.insert(Open {
                    file,
                    last_append: Instant::now(),
                    since: Instant::now(),
                })
            }
        };
        open.file
            .push(row)
            .map_err(|e| SinkError::Fatal(format!("parquet: {e}")))?;
        open.last_append = Instant::now();
        part.taken = Some(offset + 1);
        Ok(())
    }

    /// Closes the largest open files while all of them together hold more than
    /// `max_total_bytes`.
    fn close_largest_past_budget(&mut self) -> Result<(), SinkError> {
        loop {
            let sizes = self
                .parts
                .iter()
                .filter_map(|(tp, p)| p.open.as_ref().map(|o| (o.file.buffered_bytes(), tp)));
            let (total, largest) = sizes.fold((0, None), |(total, max), (n, tp)| {
                let max = match max {
                    Some((m, _)) if m >= n => max,
                    _ => Some((n, tp)),
                };
                (total + n, max)
            });
            match largest {
                Some((_, tp)) if total > self.rotation.max_total_bytes => {
                    let tp = tp.clone();
                    self.close_file(&tp)?;
                }
                _ => return Ok(()),
            }
        }
    }

    fn refresh_stats(&self) {
        let open: usize = self
            .parts
            .values()
            .filter_map(|p| p.open.as_ref())
            .map(|o| o.file.records)
            .sum::<usize>()
            + self.pending.iter().map(|(f, _)| f.records).sum::<usize>();
        // Closed files count until they are up: during an outage they are the lag.
        let oldest = self
            .parts
            .values()
            .filter_map(|p| p.open.as_ref().map(|o| o.since))
            .chain(self.pending.iter().map(|(_, since)| *since))
            .min();
        self.stats.set_open(open, oldest);
    }
}

impl Sink for ArchiveSink {
    fn buffers(&self) -> bool {
        true
    }

    fn take_durable(&mut self) -> BTreeMap<TopicPartition, i64> {
        std::mem::take(&mut self.durable)
    }

    async fn stored_offsets(
        &mut self,
        _group: &str,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, StoredOffset>, SinkError> {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions {
            by_topic.entry(t.as_str()).or_default().push(*p);
        }
        let mut out = BTreeMap::new();
        for (topic, parts) in by_topic {
            let found = self.archive.last_archived(topic, &parts).await?;
            for p in parts {
                let tp = (topic.to_string(), p);
                let entry = self.parts.entry(tp.clone()).or_default();
                // Positioning starts afresh: whatever was open is read again.
                entry.open = None;
                match found.get(&p) {
                    Some((last, topic_id)) => {
                        entry.archived = Some(last + 1);
                        entry.taken = Some(last + 1);
                        out.insert(
                            tp,
                            StoredOffset {
                                next: last + 1,
                                topic_id: topic_id.clone(),
                            },
                        );
                    }
                    None => {
                        entry.archived = None;
                        entry.taken = None;
                    }
                }
            }
        }
        self.pending
            .retain(|(f, _)| !partitions.contains(&(f.topic.name().to_string(), f.partition)));
        Ok(out)
    }

    async fn write(&mut self, batch: &Batch<'_>) -> Result<WriteOutcome, SinkError> {
        // Files closed earlier whose upload failed go first (the runtime retries this
        // batch, paused, until they are up).
        self.upload_pending().await?;
        let mut outcome = WriteOutcome::default();
        let mut state: BTreeMap<&TopicPartition, bool> = BTreeMap::new();
        for (tp, range) in batch.ranges {
            let part = self.parts.entry(tp.clone()).or_default();
            if part.topic_id.is_none() {
                part.topic_id = range.topic_id.clone();
            }
            let apply = if part.taken == Some(range.next) {
                false
            } else if part.taken == range.from {
                true
            } else {
                outcome.mismatched.insert(tp.clone(), part.archived);
                part.open = None;
                part.taken = part.archived;
                false
            };
            state.insert(tp, apply);
        }
        // Valid records and dead letters, in offset order per partition.
        let mut rows: Vec<(TopicPartition, Topic, Row)> =
            Vec::with_capacity(batch.records.len() + batch.dead.len());
        for r in batch.records {
            rows.push((
                (r.topic.name().to_string(), r.partition),
                r.topic,
                Row::of(r),
            ));
        }
        for d in batch.dead {
            let Ok(topic) = d.topic.parse::<Topic>() else {
                continue;
            };
            rows.push((
                (d.topic.clone(), d.partition),
                topic,
                Row::of_dead(d, typed_columns(topic).len()),
            ));
        }
        rows.sort_by(|a, b| (&a.0, a.2.offset).cmp(&(&b.0, b.2.offset)));
        for (tp, topic, row) in rows {
            match state.get(&tp) {
                Some(true) => {
                    self.take(&tp, topic, row)?;
                    outcome.written += 1;
                }
                Some(false) if !outcome.mismatched.contains_key(&tp) => outcome.duplicates += 1,
                _ => {}
            }
        }
        for (tp, range) in batch.ranges {
            if state.get(tp) == Some(&true) {
                if let Some(p) = self.parts.get_mut(tp) {
                    p.taken = Some(range.next);
                }
            }
        }
        self.close_largest_past_budget()?;
        let upload = self.upload_pending().await;
        self.refresh_stats();
        upload.map(|()| outcome)
    }

    async fn revoked(
        &mut self,
        partitions: &[TopicPartition],
        how: Revocation,
    ) -> Result<(), SinkError> {
        let mut dropped = 0;
        for tp in partitions {
            if let Some(p) = self.parts.remove(tp) {
                dropped += p.open.map_or(0, |o| o.file.records);
            }
        }
        self.pending
            .retain(|(f, _)| !partitions.contains(&(f.topic.name().to_string(), f.partition)));
        if dropped > 0 {
            warn!(
                records = dropped,
                lost = how == Revocation::Lost,
                "discarded the open files of revoked partitions; their next owner archives them"
            );
        }
        self.refresh_stats();
        Ok(())
    }

    fn deadline(&self) -> Option<Instant> {
        let idle = self
            .parts
            .values()
            .filter_map(|p| p.open.as_ref())
            .map(|o| o.last_append + self.rotation.idle)
            .min();
        let retry = (!self.pending.is_empty()).then(|| Instant::now() + Duration::from_secs(1));
        match (idle, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    async fn tick(&mut self) -> Result<(), SinkError> {
        let now = Instant::now();
        let idle: Vec<TopicPartition> = self
            .parts
            .iter()
            .filter(|(_, p)| {
                p.open
                    .as_ref()
                    .is_some_and(|o| now >= o.last_append + self.rotation.idle)
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in idle {
            self.close_file(&tp)?;
        }
        let result = self.upload_pending().await;
        self.refresh_stats();
        result
    }

    async fn close(&mut self) -> Result<(), SinkError> {
        let open: Vec<TopicPartition> = self
            .parts
            .iter()
            .filter(|(_, p)| p.open.is_some())
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in open {
            self.close_file(&tp)?;
        }
        self.upload_pending().await
    }

    async fn reset_offsets(&mut self, _group: &str, topics: &[String]) -> Result<u64, SinkError> {
        Err(SinkError::Fatal(format!(
            "the archive of {} cannot be reset: its object names are its offsets. Move that topic's objects (and markers/<topic>/) out of the prefix, then start again",
            topics.join(", ")
        )))
    }

    async fn check(&mut self) -> Result<(), SinkError> {
        self.archive.reachable().await
    }
}

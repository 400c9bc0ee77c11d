//! `kafka_offsets`: the group's next offset per partition and the topic id it belongs
//! to, moved only from a batch's `from` to its `next`, inside the batch's transaction.

use crate::sink::{Range, StoredOffset, TopicPartition};
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::{BTreeMap, BTreeSet};

/// What the offsets of one partition of a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Moved {
    /// From `from` to `next`: write the partition's rows.
    Advanced,
    /// Already at `next` (a commit whose acknowledgement was lost): nothing to write.
    AlreadyThere,
    /// Somewhere else (the stored offset): nothing is written, the runtime re-reads.
    Elsewhere(Option<i64>),
}

/// Moves the offsets where they are at `from` (rows are locked until the commit, so a
/// second member writing the same partition waits and then finds them moved); inserts
/// the partitions that hold nothing yet when `from` is nothing.
const ADVANCE: &str = r#"
WITH u AS (
    SELECT * FROM UNNEST($2::text[], $3::integer[], $4::bigint[], $5::bigint[], $6::text[]) AS u(t, p, f, n, id)
), moved AS (
    UPDATE kafka_offsets o
       SET next_offset = u.n, topic_id = COALESCE(u.id, o.topic_id), updated_at = now()
      FROM u
     WHERE o.consumer_group = $1 AND o.topic = u.t AND o."partition" = u.p
       AND u.f IS NOT NULL AND o.next_offset = u.f
 RETURNING o.topic, o."partition"
), added AS (
    INSERT INTO kafka_offsets (consumer_group, topic, "partition", next_offset, topic_id, updated_at)
    SELECT $1, t, p, n, id, now() FROM u WHERE f IS NULL
    ON CONFLICT (consumer_group, topic, "partition") DO NOTHING
 RETURNING topic, "partition"
)
SELECT topic, "partition" FROM moved UNION ALL SELECT topic, "partition" FROM added"#;

const STORED: &str = r#"
SELECT o.topic, o."partition", o.next_offset, o.topic_id FROM kafka_offsets o
  JOIN UNNEST($2::text[], $3::integer[]) AS u(t, p) ON o.topic = u.t AND o."partition" = u.p
 WHERE o.consumer_group = $1"#;

pub(super) async fn advance(
    tx: &mut Transaction<'_, Postgres>,
    group: &str,
    ranges: &BTreeMap<TopicPartition, Range>,
) -> Result<BTreeMap<TopicPartition, Moved>, sqlx::Error> {
    let n = ranges.len();
    let (mut topics, mut parts, mut froms, mut nexts, mut ids) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for ((t, p), r) in ranges {
        topics.push(t.as_str());
        parts.push(*p);
        froms.push(r.from);
        nexts.push(r.next);
        ids.push(r.topic_id.as_deref());
    }
    let advanced: BTreeSet<TopicPartition> = sqlx::query_as::<_, (String, i32)>(ADVANCE)
        .bind(group)
        .bind(&topics)
        .bind(&parts)
        .bind(&froms)
        .bind(&nexts)
        .bind(&ids)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
    let mut out: BTreeMap<TopicPartition, Moved> = BTreeMap::new();
    let others: Vec<TopicPartition> = ranges
        .keys()
        .filter(|tp| !advanced.contains(*tp))
        .cloned()
        .collect();
    let stored = if others.is_empty() {
        BTreeMap::new()
    } else {
        query_stored(&mut **tx, group, &others).await?
    };
    for (tp, r) in ranges {
        let moved = if advanced.contains(tp) {
            Moved::Advanced
        } else {
            match stored.get(tp).map(|s| s.next) {
                Some(next) if next == r.next => Moved::AlreadyThere,
                other => Moved::Elsewhere(other),
            }
        };
        out.insert(tp.clone(), moved);
    }
    Ok(out)
}

async fn query_stored<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    group: &str,
    partitions: &[TopicPartition],
) -> Result<BTreeMap<TopicPartition, StoredOffset>, sqlx::Error> {
    let (topics, parts): (Vec<&str>, Vec<i32>) =
        partitions.iter().map(|(t, p)| (t.as_str(), *p)).unzip();
    let rows: Vec<(String, i32, i64, Option<String>)> = sqlx::query_as(STORED)
        .bind(group)
        .bind(topics)
        .bind(parts)
        .fetch_all(executor)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(t, p, next, topic_id)| ((t, p), StoredOffset { next, topic_id }))
        .collect())
}

pub(super) async fn stored(
    pool: &PgPool,
    group: &str,
    partitions: &[TopicPartition],
) -> Result<BTreeMap<TopicPartition, StoredOffset>, sqlx::Error> {
    query_stored(pool, group, partitions).await
}

pub(super) async fn reset(
    pool: &PgPool,
    group: &str,
    topics: &[String],
) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM kafka_offsets WHERE consumer_group = $1 AND topic = ANY($2)")
            .bind(group)
            .bind(topics)
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

//! The db-writer's side of the operations commands: the rows of a topic's table
//! created since an instant (`agentbus verify`), and its stored offsets moved back to a
//! time (`agentbus replay --to-group`).

use super::classify;
use crate::sink::SinkError;
use agentbus_client::Topic;
use sqlx::postgres::PgConnectOptions;
use sqlx::Connection;
use std::collections::BTreeMap;

/// `id → correlation_id` of the rows of `topic`'s table whose `created_at` is at or
/// after `since_ms` (the event's own timestamp).
pub async fn rows_since(
    options: &PgConnectOptions,
    topic: Topic,
    since_ms: i64,
) -> Result<BTreeMap<String, String>, SinkError> {
    let mut conn = sqlx::PgConnection::connect_with(options)
        .await
        .map_err(classify)?;
    // The table name comes from the code's own mapping, never from input.
    let sql = format!(
        "SELECT id::text, correlation_id::text FROM {} WHERE created_at >= to_timestamp($1::double precision / 1000)",
        super::table_name(topic)
    );
    let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(since_ms as f64)
        .fetch_all(&mut conn)
        .await
        .map_err(classify)?;
    let _ = conn.close().await;
    Ok(rows.into_iter().collect())
}

/// Whether `topic`'s table holds the event `id` (for measuring how long an event takes
/// to arrive).
pub async fn has_row(pool: &sqlx::PgPool, topic: Topic, id: &str) -> Result<bool, SinkError> {
    let sql = format!(
        "SELECT 1 FROM {} WHERE id = $1::uuid",
        super::table_name(topic)
    );
    let row: Option<i32> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(classify)?;
    Ok(row.is_some())
}

/// Moves the group's stored offsets back to `to` (partition → the first offset at the
/// replay's start), only where they are further on; returns how many moved. A running
/// db-writer notices at its next batch of those partitions (the stored offset is not
/// where its batch begins) and reads again from there; the rows it writes again are
/// duplicates by event id and are skipped.
pub async fn rewind(
    options: &PgConnectOptions,
    group: &str,
    to: &BTreeMap<(String, i32), i64>,
) -> Result<u64, SinkError> {
    let mut conn = sqlx::PgConnection::connect_with(options)
        .await
        .map_err(classify)?;
    let (mut topics, mut parts, mut offsets) = (Vec::new(), Vec::new(), Vec::new());
    for ((t, p), o) in to {
        topics.push(t.as_str());
        parts.push(*p);
        offsets.push(*o);
    }
    let moved = sqlx::query(
        r#"UPDATE kafka_offsets o SET next_offset = u.n, updated_at = now()
             FROM UNNEST($2::text[], $3::integer[], $4::bigint[]) AS u(t, p, n)
            WHERE o.consumer_group = $1 AND o.topic = u.t AND o."partition" = u.p
              AND o.next_offset > u.n"#,
    )
    .bind(group)
    .bind(&topics)
    .bind(&parts)
    .bind(&offsets)
    .execute(&mut conn)
    .await
    .map_err(classify)?
    .rows_affected();
    let _ = conn.close().await;
    Ok(moved)
}

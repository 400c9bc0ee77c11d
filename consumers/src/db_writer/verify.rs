//! What the dual-write check (`agentbus verify`) reads from PostgreSQL: the rows of a
//! topic's table created since an instant, by event id.

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

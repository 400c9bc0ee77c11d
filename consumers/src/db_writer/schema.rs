//! The tables the db-writer writes, checked against what it expects after the
//! migrations ran: `CREATE TABLE IF NOT EXISTS` leaves a table that existed before
//! (the seeds' own `omninode_bridge` schema, say) as it was, and a difference would
//! otherwise surface as failed batches.

use super::table_name;
use super::tables::expected_columns;
use agentbus_client::Topic;
use sqlx::PgConnection;
use std::collections::BTreeMap;

/// The offsets table's columns.
const OFFSETS: [(&str, &str); 5] = [
    ("consumer_group", "text"),
    ("topic", "text"),
    ("partition", "int4"),
    ("next_offset", "int8"),
    ("topic_id", "text"),
];

#[derive(Debug, sqlx::FromRow)]
struct Column {
    table_name: String,
    column_name: String,
    udt_name: String,
    is_nullable: String,
    column_default: Option<String>,
}

/// Every difference between the tables and what the db-writer writes, one line each
/// (empty: all is as expected).
pub(super) async fn differences(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    let mut wanted: Vec<(&str, Vec<(&str, &str)>)> = Topic::ALL
        .iter()
        .chain(Topic::DERIVED.iter())
        .map(|t| (table_name(*t), expected_columns(*t)))
        .collect();
    wanted.push(("kafka_offsets", OFFSETS.to_vec()));
    let names: Vec<&str> = wanted.iter().map(|(t, _)| *t).collect();
    let rows: Vec<Column> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, udt_name::text, is_nullable::text, column_default::text \
           FROM information_schema.columns \
          WHERE table_schema = current_schema() AND table_name = ANY($1)",
    )
    .bind(&names)
    .fetch_all(&mut *conn)
    .await?;
    let mut found: BTreeMap<&str, BTreeMap<&str, &Column>> = BTreeMap::new();
    for c in &rows {
        found
            .entry(c.table_name.as_str())
            .or_default()
            .insert(c.column_name.as_str(), c);
    }
    let mut out = Vec::new();
    for (table, columns) in &wanted {
        let Some(have) = found.get(table) else {
            out.push(format!("table {table} does not exist"));
            continue;
        };
        for (column, udt) in columns {
            match have.get(column) {
                None => out.push(format!("table {table} has no column {column} ({udt})")),
                Some(c) if c.udt_name != *udt => out.push(format!(
                    "column {table}.{column} is {}, expected {udt}",
                    c.udt_name
                )),
                Some(_) => {}
            }
        }
        for (name, c) in have {
            let written = columns.iter().any(|(column, _)| column == name);
            if !written && c.is_nullable == "NO" && c.column_default.is_none() {
                out.push(format!(
                    "column {table}.{name} is NOT NULL without a default, and the db-writer does not write it"
                ));
            }
        }
    }
    Ok(out)
}

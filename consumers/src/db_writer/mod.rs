//! The db-writer (`agentbus consume db-writer`, group `db-writer-group`): every event
//! of the eight topics into its PostgreSQL table, exactly once.
//!
//! Each batch is one transaction: the group's offsets in `kafka_offsets` move from each
//! partition's `from` to its `next` (only where they are at `from`: a zombie member or
//! a restored database makes the runtime read again from what is stored), then one
//! multi-row insert per table of the partitions that moved (`ON CONFLICT (id) DO
//! NOTHING`, so a replay is counted as a duplicate). On assignment the consumer starts
//! at those offsets.

mod offsets;
mod schema;
mod tables;
pub mod verify;

pub use tables::{expected_columns, insert_sql, table_name};

use crate::config::ConfigError;
use crate::sink::{Batch, Sink, SinkError, StoredOffset, TopicPartition, WriteOutcome};
use agentbus_client::Topic;
use sqlx::migrate::Migrator;
pub use sqlx::postgres::PgConnectOptions;
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::collections::BTreeMap;
use std::time::Duration;

/// The consumer group's default name (seeds).
pub const GROUP: &str = "db-writer-group";

/// The schema: one table per topic and `kafka_offsets`.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Where the database is, from `DATABASE_URL` or the seeds' `POSTGRES_*` variables.
#[derive(Debug, Clone, Default)]
pub struct DatabaseSettings {
    /// `DATABASE_URL` (wins when set).
    pub url: Option<String>,
    /// `POSTGRES_HOST`.
    pub host: Option<String>,
    /// `POSTGRES_PORT` (5432).
    pub port: Option<u16>,
    /// `POSTGRES_DATABASE` (`omninode_bridge`).
    pub database: Option<String>,
    /// `POSTGRES_USER` (`postgres`).
    pub user: Option<String>,
    /// `POSTGRES_PASSWORD`.
    pub password: Option<String>,
}

impl DatabaseSettings {
    /// The connection options, or the setting that is missing or wrong.
    pub fn connect_options(&self) -> Result<PgConnectOptions, ConfigError> {
        if let Some(url) = self.url.as_deref().filter(|u| !u.trim().is_empty()) {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::new(
                    "DATABASE_URL",
                    "must start with postgres:// or postgresql://",
                ));
            }
            return url.parse::<PgConnectOptions>().map_err(|e| {
                ConfigError::new("DATABASE_URL", format!("not a PostgreSQL URL: {e}"))
            });
        }
        let Some(host) = self.host.as_deref().filter(|h| !h.trim().is_empty()) else {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "not set (set DATABASE_URL, or POSTGRES_HOST with POSTGRES_PORT, POSTGRES_DATABASE, POSTGRES_USER, POSTGRES_PASSWORD)",
            ));
        };
        let mut options = PgConnectOptions::new_without_pgpass()
            .host(host)
            .port(self.port.unwrap_or(5432))
            .database(self.database.as_deref().unwrap_or("omninode_bridge"))
            .username(self.user.as_deref().unwrap_or("postgres"));
        if let Some(password) = &self.password {
            options = options.password(password);
        }
        Ok(options)
    }
}

/// A pool that connects on first use (start-up does not wait for the database).
pub fn pool(options: PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(
            options
                .application_name("agentbus-db-writer")
                .options([("statement_timeout", "30s")]),
        )
}

/// The connection migrations run on: no statement timeout, whatever the database's or
/// the role's default (`0` comes last, so it wins over one in `DATABASE_URL`).
pub fn migration_options(options: &PgConnectOptions) -> PgConnectOptions {
    options
        .clone()
        .application_name("agentbus-migrate")
        .options([("statement_timeout", "0")])
}

/// Creates the database `options` names when the server does not have it (asking its
/// `postgres` database); whether it did. For `agentbus dev`, whose server may be new.
pub async fn create_database(options: &PgConnectOptions) -> Result<bool, SinkError> {
    use sqlx::Connection;
    let name = options.get_database().unwrap_or("postgres").to_string();
    let admin = options.clone().database("postgres");
    let connect = sqlx::PgConnection::connect_with(&admin);
    let mut conn = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .map_err(|_| SinkError::Unavailable("no answer within 5 s".into()))?
        .map_err(classify)?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut conn)
        .await
        .map_err(classify)?;
    if exists.is_none() {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        // The name is quoted as an identifier.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {quoted}")))
            .execute(&mut conn)
            .await
            .map_err(classify)?;
    }
    let _ = conn.close().await;
    Ok(exists.is_none())
}

/// Applies the migrations that are not applied yet, on a connection of their own
/// without the pool's statement timeout (an index build on a big table must finish,
/// not time out and start over), then checks the tables against what the db-writer
/// writes. Safe to run from several processes at once: sqlx takes an advisory lock.
/// An unreachable database is `Unavailable`; bad credentials, a schema that disagrees
/// with the migrations, or a table that differs are `Fatal`.
pub async fn migrate(options: &PgConnectOptions) -> Result<(), SinkError> {
    use sqlx::migrate::MigrateError;
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect_with(&migration_options(options))
        .await
        .map_err(classify)?;
    MIGRATOR.run(&mut conn).await.map_err(|e| match e {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => classify(e),
        other => SinkError::Fatal(other.to_string()),
    })?;
    let differences = schema::differences(&mut conn).await.map_err(classify)?;
    let _ = conn.close().await;
    if !differences.is_empty() {
        return Err(SinkError::Fatal(format!(
            "the tables differ from what the db-writer writes: {}",
            differences.join("; ")
        )));
    }
    Ok(())
}

/// The PostgreSQL sink.
#[derive(Debug, Clone)]
pub struct PgSink {
    pool: PgPool,
    inserts: BTreeMap<Topic, String>,
}

impl PgSink {
    /// A sink writing through `pool` (migrated already).
    pub fn new(pool: PgPool) -> Self {
        let inserts = Topic::ALL
            .into_iter()
            .chain(Topic::DERIVED)
            .map(|t| (t, insert_sql(t)))
            .collect();
        Self { pool, inserts }
    }
}

/// Data errors (class 22: data exception, 23: integrity violation, 54: a limit such as
/// an index row too large) are the data's fault; wrong credentials (28), a missing
/// database (3D) or table or privilege (42) need a person; everything else
/// (connections, shutdowns, timeouts) is an outage to wait out.
fn classify(e: sqlx::Error) -> SinkError {
    if let sqlx::Error::Database(db) = &e {
        if db
            .code()
            .is_some_and(|c| ["28", "3D", "42"].iter().any(|class| c.starts_with(class)))
        {
            return SinkError::Fatal(db.message().to_string());
        }
        if db
            .code()
            .is_some_and(|c| ["22", "23", "54"].iter().any(|class| c.starts_with(class)))
        {
            return SinkError::Rejected(db.message().to_string());
        }
    }
    SinkError::Unavailable(e.to_string())
}

impl Sink for PgSink {
    async fn stored_offsets(
        &mut self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, StoredOffset>, SinkError> {
        offsets::stored(&self.pool, group, partitions)
            .await
            .map_err(classify)
    }

    async fn write(&mut self, batch: &Batch<'_>) -> Result<WriteOutcome, SinkError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let moved = offsets::advance(&mut tx, batch.group, batch.ranges)
            .await
            .map_err(classify)?;
        let mut by_topic: BTreeMap<Topic, Vec<&str>> = BTreeMap::new();
        let mut duplicates = 0;
        for r in batch.records {
            let tp = (r.topic.name().to_string(), r.partition);
            match moved.get(&tp) {
                Some(offsets::Moved::Advanced) => {
                    by_topic.entry(r.topic).or_default().push(&r.json);
                }
                Some(offsets::Moved::AlreadyThere) => duplicates += 1,
                _ => {}
            }
        }
        let mut written = 0;
        let mut offered = 0;
        for (topic, docs) in by_topic {
            let Some(sql) = self.inserts.get(&topic) else {
                return Err(SinkError::Fatal(format!(
                    "no table is mapped for topic {topic}"
                )));
            };
            offered += docs.len() as u64;
            // Built from the table definitions only, never from event data.
            written += sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(docs)
                .execute(&mut *tx)
                .await
                .map_err(classify)?
                .rows_affected();
        }
        tx.commit().await.map_err(classify)?;
        let mismatched = moved
            .into_iter()
            .filter_map(|(tp, m)| match m {
                offsets::Moved::Elsewhere(stored) => Some((tp, stored)),
                _ => None,
            })
            .collect();
        Ok(WriteOutcome {
            written,
            duplicates: duplicates + offered - written,
            mismatched,
        })
    }

    async fn reset_offsets(&mut self, group: &str, topics: &[String]) -> Result<u64, SinkError> {
        offsets::reset(&self.pool, group, topics)
            .await
            .map_err(classify)
    }

    async fn check(&mut self) -> Result<(), SinkError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_settings_name_what_is_missing() {
        let e = DatabaseSettings::default().connect_options().unwrap_err();
        assert_eq!(e.setting, "DATABASE_URL");
        let bad = DatabaseSettings {
            url: Some("mysql://x".into()),
            ..Default::default()
        };
        assert_eq!(bad.connect_options().unwrap_err().setting, "DATABASE_URL");
        let parts = DatabaseSettings {
            host: Some("db".into()),
            port: Some(5436),
            ..Default::default()
        };
        let o = parts.connect_options().unwrap();
        assert_eq!(o.get_host(), "db");
        assert_eq!(o.get_port(), 5436);
        assert_eq!(o.get_database(), Some("omninode_bridge"));
    }
}

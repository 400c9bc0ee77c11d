//! The db-writer (`agentbus consume db-writer`, group `db-writer-group`): every event
//! of the eight topics into its PostgreSQL table, exactly once.
//!
//! Each batch is one transaction: one multi-row insert per table
//! (`ON CONFLICT (id) DO NOTHING`, so replays are counted as duplicates) and the
//! group's next offsets in `kafka_offsets`, guarded so an older member cannot move
//! them backwards. On assignment the consumer starts at those offsets.

mod tables;

pub use tables::{insert_sql, table_name};

use crate::config::ConfigError;
use crate::sink::{Record, Sink, SinkError, TopicPartition, WriteOutcome};
use agentbus_client::Topic;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
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

/// Applies the migrations that are not applied yet (safe to run from several
/// processes at once: sqlx takes an advisory lock). An unreachable database is
/// `Unavailable`; bad credentials or a schema that disagrees with the migrations are
/// `Fatal`.
pub async fn migrate(pool: &PgPool) -> Result<(), SinkError> {
    use sqlx::migrate::MigrateError;
    MIGRATOR.run(pool).await.map_err(|e| match e {
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) => classify(e),
        other => SinkError::Fatal(other.to_string()),
    })
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
        let inserts = Topic::ALL.into_iter().map(|t| (t, insert_sql(t))).collect();
        Self { pool, inserts }
    }
}

const UPSERT_OFFSETS: &str = r#"
INSERT INTO kafka_offsets (consumer_group, topic, "partition", next_offset, updated_at)
SELECT $1, t, p, o, now() FROM UNNEST($2::text[], $3::integer[], $4::bigint[]) AS u(t, p, o)
ON CONFLICT (consumer_group, topic, "partition") DO UPDATE
   SET next_offset = EXCLUDED.next_offset, updated_at = EXCLUDED.updated_at
 WHERE kafka_offsets.next_offset < EXCLUDED.next_offset"#;

const STORED_OFFSETS: &str = r#"
SELECT o.topic, o."partition", o.next_offset FROM kafka_offsets o
  JOIN UNNEST($2::text[], $3::integer[]) AS u(t, p) ON o.topic = u.t AND o."partition" = u.p
 WHERE o.consumer_group = $1"#;

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
    ) -> Result<Option<BTreeMap<TopicPartition, i64>>, SinkError> {
        let (topics, parts): (Vec<String>, Vec<i32>) = partitions.iter().cloned().unzip();
        let rows: Vec<(String, i32, i64)> = sqlx::query_as(STORED_OFFSETS)
            .bind(group)
            .bind(topics)
            .bind(parts)
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        Ok(Some(
            rows.into_iter().map(|(t, p, o)| ((t, p), o)).collect(),
        ))
    }

    async fn write(
        &mut self,
        group: &str,
        records: &[Record],
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<WriteOutcome, SinkError> {
        let mut by_topic: BTreeMap<Topic, Vec<&str>> = BTreeMap::new();
        for r in records {
            by_topic.entry(r.topic).or_default().push(&r.json);
        }
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let mut written = 0;
        for (topic, docs) in by_topic {
            let sql = self.inserts.get(&topic).cloned().unwrap_or_default();
            // Built from the table definitions only, never from event data.
            written += sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(docs)
                .execute(&mut *tx)
                .await
                .map_err(classify)?
                .rows_affected();
        }
        if !offsets.is_empty() {
            let mut topics = Vec::with_capacity(offsets.len());
            let mut parts = Vec::with_capacity(offsets.len());
            let mut nexts = Vec::with_capacity(offsets.len());
            for ((t, p), o) in offsets {
                topics.push(t.as_str());
                parts.push(*p);
                nexts.push(*o);
            }
            sqlx::query(UPSERT_OFFSETS)
                .bind(group)
                .bind(topics)
                .bind(parts)
                .bind(nexts)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
        }
        tx.commit().await.map_err(classify)?;
        Ok(WriteOutcome {
            written,
            duplicates: records.len() as u64 - written,
        })
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

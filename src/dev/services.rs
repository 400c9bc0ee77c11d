//! PostgreSQL and Redis for `agentbus dev`: the one the settings name, else the local
//! server when it answers, else a private one started from the installed binaries with
//! its data under the data directory. When none can be had, the reason (and what to
//! install) turns only the group that needs it off.

use crate::consume_cmd::{DatabaseArgs, RedisArgs};
use agentbus_consumers::db_writer::{self, DatabaseSettings, PgConnectOptions};
use agentbus_consumers::metrics_aggregator::RedisSink;
use agentbus_consumers::SinkError;
use agentbus_testkit::{PgServer, RedisServer};
use std::path::Path;

/// The database the seeds name.
const DATABASE: &str = "omninode_bridge";

/// A PostgreSQL with the db-writer's schema.
#[derive(Debug)]
pub(crate) struct Postgres {
    pub(crate) options: PgConnectOptions,
    /// Where it is, without a password.
    pub(crate) shown: String,
    /// Stopped when dropped.
    pub(crate) server: Option<PgServer>,
}

/// A Redis the metrics-aggregator may use.
#[derive(Debug)]
pub(crate) struct Redis {
    pub(crate) args: RedisArgs,
    pub(crate) shown: String,
    pub(crate) server: Option<RedisServer>,
}

fn explicit_database(args: &DatabaseArgs) -> bool {
    args.database_url.is_some()
        || [
            "POSTGRES_HOST",
            "POSTGRES_PORT",
            "POSTGRES_DATABASE",
            "POSTGRES_USER",
        ]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

/// Creates the database if needed and applies the migrations.
async fn prepare(options: &PgConnectOptions) -> Result<(), SinkError> {
    db_writer::create_database(options).await?;
    db_writer::migrate(options).await
}

fn shown(options: &PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or(DATABASE)
    )
}

fn local_options(url: &str) -> Result<PgConnectOptions, String> {
    DatabaseSettings {
        url: Some(url.to_string()),
        ..DatabaseSettings::default()
    }
    .connect_options()
    .map_err(|e| e.to_string())
}

/// PostgreSQL for the db-writer; `Err` is why there is none.
pub(crate) async fn postgres(
    args: &DatabaseArgs,
    dir: &Path,
) -> anyhow::Result<Result<Postgres, String>> {
    if explicit_database(args) {
        let options = args.settings().connect_options()?;
        return Ok(match prepare(&options).await {
            Ok(()) => Ok(Postgres {
                shown: shown(&options),
                options,
                server: None,
            }),
            Err(e) => Err(format!(
                "PostgreSQL at DATABASE_URL ({}) cannot be used: {e}",
                shown(&options)
            )),
        });
    }
    let local = format!("postgres://postgres@127.0.0.1:5432/{DATABASE}");
    if let Ok(options) = local_options(&local) {
        match prepare(&options).await {
            Ok(()) => {
                return Ok(Ok(Postgres {
                    shown: shown(&options),
                    options,
                    server: None,
                }))
            }
            Err(e) => tracing::debug!("no usable PostgreSQL on 127.0.0.1:5432: {e}"),
        }
    }
    let pg_dir = dir.join("postgres");
    let server = match tokio::task::spawn_blocking(move || PgServer::start_in(&pg_dir)).await? {
        Ok(s) => s,
        Err(e) => {
            return Ok(Err(format!(
                "no PostgreSQL: none answers on 127.0.0.1:5432 and none could be started ({e}); install it (apt-get install postgresql) or set DATABASE_URL"
            )))
        }
    };
    let url = server
        .admin_url()
        .replace("/postgres", &format!("/{DATABASE}"));
    let options = local_options(&url).map_err(anyhow::Error::msg)?;
    Ok(match prepare(&options).await {
        Ok(()) => Ok(Postgres {
            shown: shown(&options),
            options,
            server: Some(server),
        }),
        Err(e) => Err(format!(
            "the private PostgreSQL ({}) cannot be used: {e}",
            shown(&options)
        )),
    })
}

fn explicit_redis(args: &RedisArgs) -> bool {
    args.redis_url.is_some()
        || ["REDIS_HOST", "REDIS_PORT"]
            .iter()
            .any(|v| std::env::var_os(v).is_some())
}

async fn probe(args: &RedisArgs) -> Result<String, String> {
    let settings = args.settings().map_err(|e| e.to_string())?;
    let url = settings.url().map_err(|e| e.to_string())?;
    let mut sink = RedisSink::new(&settings).map_err(|e| e.to_string())?;
    let shown = match url.split_once('@') {
        Some((_, host)) => format!("redis://{host}"),
        None => url,
    };
    sink.probe()
        .await
        .map(|()| shown)
        .map_err(|e| e.to_string())
}

/// Redis for the metrics-aggregator; `Err` is why there is none.
pub(crate) async fn redis(args: &RedisArgs, dir: &Path) -> anyhow::Result<Result<Redis, String>> {
    if explicit_redis(args) {
        args.settings()?;
        return Ok(match probe(args).await {
            Ok(shown) => Ok(Redis {
                args: args.clone(),
                shown,
                server: None,
            }),
            Err(e) => Err(format!("Redis at REDIS_URL cannot be used: {e}")),
        });
    }
    let mut local = args.clone();
    local.redis_url = Some("redis://127.0.0.1:6379".into());
    match probe(&local).await {
        Ok(shown) => {
            return Ok(Ok(Redis {
                args: local,
                shown,
                server: None,
            }))
        }
        Err(e) => tracing::debug!("no usable Redis on 127.0.0.1:6379: {e}"),
    }
    let redis_dir = dir.join("redis");
    let server = match tokio::task::spawn_blocking(move || RedisServer::start(Some(&redis_dir))).await? {
        Ok(s) => s,
        Err(e) => {
            return Ok(Err(format!(
                "no Redis: none answers on 127.0.0.1:6379 and none could be started ({e}); install it (apt-get install redis-server) or set REDIS_URL"
            )))
        }
    };
    local.redis_url = Some(server.url());
    Ok(match probe(&local).await {
        Ok(shown) => Ok(Redis {
            args: local,
            shown,
            server: Some(server),
        }),
        Err(e) => Err(format!("the private Redis cannot be used: {e}")),
    })
}

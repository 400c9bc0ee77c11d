//! The Redis sink: one script call per partition batch, pipelined.

use super::aggregate::Deltas;
use super::keys::{topic_named, Keys, Resolution, OFFSETS_TTL, ROLLING, ROLLING_TTL};
use crate::config::ConfigError;
use crate::sink::{Batch, Sink, SinkError, StoredOffset, TopicPartition, WriteOutcome};
use agentbus_client::Topic;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::warn;

const APPLY: &str = include_str!("apply.lua");

/// Where Redis is, and how the aggregator lays out its keys.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `REDIS_URL` (wins when set), e.g. `redis://:password@host:6379/0`.
    pub url: Option<String>,
    /// `REDIS_HOST` (`localhost`).
    pub host: Option<String>,
    /// `REDIS_PORT` (6379).
    pub port: Option<u16>,
    /// `REDIS_PASSWORD`.
    pub password: Option<String>,
    /// `REDIS_KEY_PREFIX`: put before every key (one Redis, several deployments).
    pub prefix: String,
    /// `WINDOW_SIZE_SECONDS` (5).
    pub window_seconds: u32,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: None,
            host: None,
            port: None,
            password: None,
            prefix: String::new(),
            window_seconds: 5,
        }
    }
}

impl RedisSettings {
    /// The connection URL, or the setting that is wrong.
    pub fn url(&self) -> Result<String, ConfigError> {
        if let Some(url) = self.url.as_deref().filter(|u| !u.trim().is_empty()) {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(ConfigError::new(
                    "REDIS_URL",
                    "must start with redis:// or rediss://",
                ));
            }
            redis::Client::open(url)
                .map_err(|e| ConfigError::new("REDIS_URL", format!("not a Redis URL: {e}")))?;
            return Ok(url.to_string());
        }
        let host = self.host.as_deref().unwrap_or("localhost");
        if host.trim().is_empty() || host.contains(['/', '@', ' ']) {
            return Err(ConfigError::new(
                "REDIS_HOST",
                format!("{host:?} is not a host"),
            ));
        }
        let port = self.port.unwrap_or(6379);
        Ok(match &self.password {
            Some(p) => format!("redis://:{}@{host}:{port}", percent(p)),
            None => format!("redis://{host}:{port}"),
        })
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.url()?;
        let w = self.window_seconds;
        if w == 0 || 60 % w != 0 {
            return Err(ConfigError::new(
                "WINDOW_SIZE_SECONDS",
                format!(
                    "{w} does not divide a minute (use 1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30 or 60)"
                ),
            ));
        }
        if self.prefix.contains(['{', '}']) {
            return Err(ConfigError::new(
                "REDIS_KEY_PREFIX",
                "must not hold { or } (they would change the keys' hash slot)",
            ));
        }
        Ok(())
    }
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Redis errors: a refused login or a key of the wrong type need a person; the rest
/// (connections, timeouts, a read-only replica during failover, memory full) is an
/// outage to wait out.
pub(super) fn classify(e: redis::RedisError) -> SinkError {
    use redis::ErrorKind;
    let message = e.to_string();
    let fatal = matches!(e.kind(), ErrorKind::AuthenticationFailed)
        || message.contains("WRONGTYPE")
        || message.contains("NOAUTH")
        || message.contains("WRONGPASS")
        || message.contains("NOPERM");
    if fatal {
        SinkError::Fatal(format!("REDIS_URL: {message}"))
    } else {
        SinkError::Unavailable(message)
    }
}

/// Stops on a server where effectively-once cannot hold: one that may evict keys (an
/// evicted offsets hash would make every window of its topic count again), or a
/// cluster (the client speaks to one server; MOVED answers would look like an outage
/// for ever). A server that hides `CONFIG` gets a warning instead.
async fn refuse_unsafe_server(conn: &mut ConnectionManager) -> Result<(), SinkError> {
    let info: String = redis::cmd("INFO")
        .arg("cluster")
        .query_async(conn)
        .await
        .map_err(classify)?;
    if info.lines().any(|l| l.trim() == "cluster_enabled:1") {
        return Err(SinkError::Fatal(
            "REDIS_URL: the server runs in cluster mode, which the metrics-aggregator does not support yet; point it at a standalone Redis (a primary, with replicas if you like)".into(),
        ));
    }
    let config = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory*")
        .query_async::<std::collections::HashMap<String, String>>(conn)
        .await;
    match config {
        Ok(c) => {
            let limit = c.get("maxmemory").and_then(|v| v.parse::<u64>().ok());
            let policy = c.get("maxmemory-policy").map_or("", String::as_str);
            if limit.is_some_and(|l| l > 0) && policy != "noeviction" {
                return Err(SinkError::Fatal(format!(
                    "REDIS_URL: the server evicts keys (maxmemory {}, maxmemory-policy {policy}); an evicted offsets hash would count its topic's events again. Set maxmemory-policy noeviction (a full Redis then refuses writes, and the consumer waits), or maxmemory 0",
                    limit.unwrap_or(0)
                )));
            }
        }
        Err(e) => warn!(
            "cannot read the server's eviction settings ({e}); make sure maxmemory-policy is noeviction, or an evicted offsets hash counts its topic's events again"
        ),
    }
    Ok(())
}

/// The metrics-aggregator's sink.
pub struct RedisSink {
    client: redis::Client,
    conn: Option<ConnectionManager>,
    keys: Keys,
    window: u32,
    script: redis::Script,
    next_tick: Instant,
}

impl std::fmt::Debug for RedisSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSink")
            .field("window", &self.window)
            .finish()
    }
}

impl RedisSink {
    /// A sink for `settings` (connects on first use).
    pub fn new(settings: &RedisSettings) -> Result<Self, ConfigError> {
        settings.validate()?;
        let url = settings.url()?;
        let client = redis::Client::open(url.as_str())
            .map_err(|e| ConfigError::new("REDIS_URL", e.to_string()))?;
        Ok(Self {
            client,
            conn: None,
            keys: Keys::new(settings.prefix.clone()),
            window: settings.window_seconds,
            script: redis::Script::new(APPLY),
            next_tick: Instant::now(),
        })
    }

    /// Connects now: an unreachable server is `Unavailable`, one that is unsafe for
    /// effectively-once (evicting, cluster) is `Fatal`.
    pub async fn probe(&mut self) -> Result<(), SinkError> {
        self.conn().await.map(|_| ())
    }

    /// The key layout.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    async fn conn(&mut self) -> Result<ConnectionManager, SinkError> {
        if let Some(c) = &self.conn {
            return Ok(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(3)))
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_number_of_retries(1);
        let mut c = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(classify)?;
        refuse_unsafe_server(&mut c).await?;
        self.conn = Some(c.clone());
        Ok(c)
    }

    /// One EVALSHA per partition of the batch, in one round trip; the script is
    /// loaded again when Redis has forgotten it (a restart).
    async fn apply(&mut self, calls: &[redis::Cmd]) -> Result<Vec<(i64, String)>, SinkError> {
        let mut conn = self.conn().await?;
        for attempt in 0..2 {
            let mut pipe = redis::pipe();
            for c in calls {
                pipe.add_command(c.clone());
            }
            match pipe.query_async::<Vec<(i64, String)>>(&mut conn).await {
                Ok(r) => return Ok(r),
                Err(e)
                    if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
                        && attempt == 0 =>
                {
                    self.script
                        .prepare_invoke()
                        .load_async(&mut conn)
                        .await
                        .map_err(classify)?;
                }
                Err(e) => return Err(classify(e)),
            }
        }
        Err(SinkError::Unavailable(
            "the script could not be loaded".into(),
        ))
    }

    fn call(
        &self,
        group: &str,
        topic: Topic,
        partition: i32,
        range: &crate::sink::Range,
        deltas: &Deltas<'_>,
    ) -> redis::Cmd {
        let with_agents = !deltas.agents.is_empty();
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.script.get_hash())
            .arg(1 + deltas.buckets.len() + usize::from(with_agents))
            .arg(self.keys.offsets(topic, group));
        for id in deltas.buckets.keys() {
            cmd.arg(Deltas::key(&self.keys, topic, id));
        }
        if with_agents {
            cmd.arg(self.keys.agents(topic));
        }
        cmd.arg(partition)
            .arg(range.from.map(|f| f.to_string()).unwrap_or_default())
            .arg(range.next)
            .arg(range.topic_id.as_deref().unwrap_or(""))
            .arg(OFFSETS_TTL);
        for (id, fields) in &deltas.buckets {
            let updates = fields.updates();
            cmd.arg("h").arg(id.res.ttl_seconds()).arg(updates.len());
            for (field, op, v) in updates {
                cmd.arg(field).arg(op).arg(v);
            }
        }
        if with_agents {
            cmd.arg("s")
                .arg(Deltas::agents_ttl())
                .arg(deltas.agents.len());
            for a in &deltas.agents {
                cmd.arg(*a);
            }
        }
        cmd
    }

    /// Refreshes the rolling counts of every topic from the buckets: the windows
    /// whose start lies in the last span (the open one included); the hour from the
    /// minute rollups.
    async fn refresh_rolling(&mut self) -> Result<(), SinkError> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut reads = redis::pipe();
        let mut spans = Vec::new();
        for topic in Topic::ALL {
            for (name, secs) in ROLLING {
                let res = if secs >= 3600 {
                    Resolution::Minute
                } else {
                    Resolution::Window(self.window)
                };
                let last = res.bucket(now_ms);
                let n = secs / res.seconds();
                for i in 0..n {
                    let key = self.keys.bucket(topic, None, res, last - i * res.seconds());
                    reads.hget(key, "count");
                }
                spans.push((topic, name, n as usize));
            }
        }
        let mut conn = self.conn().await?;
        let counts: Vec<Option<i64>> = reads.query_async(&mut conn).await.map_err(classify)?;
        let mut writes = redis::pipe();
        let mut at = 0;
        for (topic, name, n) in spans {
            let total: i64 = counts[at..at + n].iter().flatten().sum();
            at += n;
            writes
                .set_ex(self.keys.rolling(topic, name), total, ROLLING_TTL as u64)
                .ignore();
        }
        writes.query_async::<()>(&mut conn).await.map_err(classify)
    }

    fn schedule_tick(&mut self) {
        let w = u64::from(self.window) * 1000;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let wait = w - now_ms % w;
        self.next_tick = Instant::now() + Duration::from_millis(wait);
    }
}

impl Sink for RedisSink {
    async fn stored_offsets(
        &mut self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, StoredOffset>, SinkError> {
        let mut topics: Vec<&str> = partitions.iter().map(|(t, _)| t.as_str()).collect();
        topics.dedup();
        let mut pipe = redis::pipe();
        let mut known = Vec::new();
        for t in topics {
            if let Some(topic) = topic_named(t) {
                pipe.hgetall(self.keys.offsets(topic, group));
                known.push(t);
            }
        }
        let mut conn = self.conn().await?;
        let hashes: Vec<BTreeMap<String, String>> =
            pipe.query_async(&mut conn).await.map_err(classify)?;
        let mut out = BTreeMap::new();
        for (t, hash) in known.into_iter().zip(hashes) {
            let topic_id = hash.get("topic_id").cloned();
            for (tp, _) in partitions
                .iter()
                .filter(|(pt, _)| pt == t)
                .map(|tp| (tp, ()))
            {
                if let Some(next) = hash.get(&tp.1.to_string()).and_then(|v| v.parse().ok()) {
                    out.insert(
                        tp.clone(),
                        StoredOffset {
                            next,
                            topic_id: topic_id.clone(),
                        },
                    );
                }
            }
        }
        Ok(out)
    }

    async fn write(&mut self, batch: &Batch<'_>) -> Result<WriteOutcome, SinkError> {
        let mut per_partition: BTreeMap<&TopicPartition, (Deltas<'_>, u64)> = batch
            .ranges
            .keys()
            .map(|tp| (tp, (Deltas::default(), 0)))
            .collect();
        for r in batch.records {
            let tp = (r.topic.name().to_string(), r.partition);
            if let Some((d, n)) = per_partition.get_mut(&tp) {
                d.add(self.window, r);
                *n += 1;
            }
        }
        let mut calls = Vec::with_capacity(per_partition.len());
        let mut order = Vec::with_capacity(per_partition.len());
        for (tp, (deltas, n)) in &per_partition {
            let Some(topic) = topic_named(&tp.0) else {
                return Err(SinkError::Fatal(format!(
                    "{} is not one of the eight topics",
                    tp.0
                )));
            };
            let Some(range) = batch.ranges.get(*tp) else {
                continue;
            };
            calls.push(self.call(batch.group, topic, tp.1, range, deltas));
            order.push(((*tp).clone(), *n));
        }
        let results = self.apply(&calls).await?;
        let mut outcome = WriteOutcome::default();
        for ((tp, n), (code, stored)) in order.into_iter().zip(results) {
            match code {
                0 => outcome.written += n,
                1 => outcome.duplicates += n,
                _ => {
                    outcome.mismatched.insert(tp, stored.parse().ok());
                }
            }
        }
        Ok(outcome)
    }

    fn deadline(&self) -> Option<Instant> {
        Some(self.next_tick)
    }

    async fn tick(&mut self) -> Result<(), SinkError> {
        self.schedule_tick();
        self.refresh_rolling().await
    }

    async fn reset_offsets(&mut self, group: &str, topics: &[String]) -> Result<u64, SinkError> {
        let mut conn = self.conn().await?;
        let mut removed = 0;
        for t in topics {
            let Some(topic) = topic_named(t) else {
                continue;
            };
            let key = self.keys.offsets(topic, group);
            let fields: Vec<String> = redis::cmd("HKEYS")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .map_err(classify)?;
            removed += fields.iter().filter(|f| f.as_str() != "topic_id").count() as u64;
            redis::cmd("DEL")
                .arg(&key)
                .query_async::<()>(&mut conn)
                .await
                .map_err(classify)?;
        }
        Ok(removed)
    }

    async fn check(&mut self) -> Result<(), SinkError> {
        let mut conn = self.conn().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
            .map_err(classify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_what_is_wrong() {
        let s = RedisSettings::default();
        assert_eq!(s.url().unwrap(), "redis://localhost:6379");
        let s = RedisSettings {
            host: Some("redis".into()),
            port: Some(6380),
            password: Some("p@ss".into()),
            ..Default::default()
        };
        assert_eq!(s.url().unwrap(), "redis://:p%40ss@redis:6380");
        let bad = RedisSettings {
            url: Some("http://x".into()),
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().setting, "REDIS_URL");
        let bad = RedisSettings {
            window_seconds: 7,
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().setting, "WINDOW_SIZE_SECONDS");
        let bad = RedisSettings {
            prefix: "{x}".into(),
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().setting, "REDIS_KEY_PREFIX");
    }
}

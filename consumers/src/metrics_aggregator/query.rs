//! Reading the windows back: `GET /api/metrics?topic=…&agent=…&window=…&from=…&to=…`
//! on the HTTP port, and the table `agentbus metrics` prints.

use super::aggregate::{LATENCY_BUCKETS, QUALITY_SCALE};
use super::keys::{short_name, topic_named, Keys, Resolution};
use agentbus_client::Topic;
use axum::extract::{Query as QueryParams, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use redis::aio::ConnectionManager;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

/// The most buckets one query may span.
pub const MAX_BUCKETS: i64 = 10_000;

/// One time series request.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The topic.
    pub topic: Topic,
    /// One agent's series, or the topic's.
    pub agent: Option<String>,
    /// The bucket size.
    pub resolution: Resolution,
    /// First bucket start (Unix seconds), inclusive.
    pub from: i64,
    /// Last instant (Unix seconds), inclusive.
    pub to: i64,
}

/// Why a query is refused; the message names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {message}")]
pub struct QueryError {
    /// The parameter (`topic`, `window`, `from`, `to`).
    pub param: &'static str,
    /// What is wrong.
    pub message: String,
}

fn query_error(param: &'static str, message: impl Into<String>) -> QueryError {
    QueryError {
        param,
        message: message.into(),
    }
}

/// An instant as RFC 3339 or Unix seconds.
pub fn parse_time(param: &'static str, s: &str) -> Result<i64, QueryError> {
    if let Ok(secs) = s.trim().parse::<i64>() {
        return Ok(secs);
    }
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.timestamp())
        .map_err(|_| query_error(param, format!("{s:?} is neither RFC 3339 nor Unix seconds")))
}

impl Query {
    /// From the parameters' text; `now` and `window` fill the defaults (the last 720
    /// buckets of the window size).
    pub fn parse(
        topic: Option<&str>,
        agent: Option<&str>,
        window: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
        window_seconds: u32,
        now: i64,
    ) -> Result<Self, QueryError> {
        let names = Topic::ALL.map(short_name).join(", ");
        let topic = topic.ok_or_else(|| {
            query_error(
                "topic",
                format!("is required (one of {names}, or a topic name)"),
            )
        })?;
        let topic = topic_named(topic)
            .ok_or_else(|| query_error("topic", format!("{topic:?} is not one of {names}")))?;
        let default_window = Resolution::Window(window_seconds).to_string();
        let w = window.unwrap_or(&default_window);
        let resolution = Resolution::parse(w, window_seconds).ok_or_else(|| {
            query_error(
                "window",
                format!("{w:?} is not one of {default_window}, 1m, 5m, 1h"),
            )
        })?;
        let to = to.map(|t| parse_time("to", t)).transpose()?.unwrap_or(now);
        let from = match from {
            Some(f) => parse_time("from", f)?,
            None => to - 719 * resolution.seconds(),
        };
        if from > to {
            return Err(query_error("from", "is after `to`"));
        }
        let buckets = (to - resolution.bucket(from * 1000)) / resolution.seconds() + 1;
        if buckets > MAX_BUCKETS {
            return Err(query_error(
                "from",
                format!("the range spans {buckets} buckets of {resolution}; at most {MAX_BUCKETS}"),
            ));
        }
        Ok(Self {
            topic,
            agent: agent.filter(|a| !a.is_empty()).map(str::to_string),
            resolution,
            from,
            to,
        })
    }

    fn starts(&self) -> impl Iterator<Item = i64> + '_ {
        let step = self.resolution.seconds();
        let first = self.resolution.bucket(self.from * 1000);
        (0..)
            .map(move |i| first + i * step)
            .take_while(move |s| *s <= self.to)
    }
}

/// One latency field of a bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latency {
    /// Events that had it.
    pub count: i64,
    /// Sum (ms).
    pub sum: i64,
    /// Smallest (ms).
    pub min: i64,
    /// Largest (ms).
    pub max: i64,
    /// Events per histogram bucket ([`LATENCY_BUCKETS`], then `+Inf`).
    pub buckets: Vec<i64>,
}

impl Latency {
    /// The `q` quantile (0..=1) estimated from the histogram by linear interpolation
    /// within the bucket, as Prometheus' `histogram_quantile` does; the `+Inf` bucket
    /// answers the largest value seen.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = q * self.count as f64;
        let mut below = 0.0;
        for (i, n) in self.buckets.iter().enumerate() {
            let n = *n as f64;
            if n > 0.0 && below + n >= rank {
                let Some(&upper) = LATENCY_BUCKETS.get(i) else {
                    return Some(self.max as f64);
                };
                let lower = if i == 0 { 0 } else { LATENCY_BUCKETS[i - 1] };
                let v = lower as f64 + (upper - lower) as f64 * ((rank - below) / n);
                return Some(v.min(self.max as f64).max(self.min as f64));
            }
            below += n;
        }
        Some(self.max as f64)
    }
}

/// One bucket of a series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Point {
    /// Start (Unix seconds).
    pub start: i64,
    /// Events.
    pub count: i64,
    /// Successes (events with an outcome).
    pub success: i64,
    /// Failures.
    pub failure: i64,
    /// Latency fields by name.
    pub latency: BTreeMap<String, Latency>,
    /// Events with a quality score, and the sum in millionths.
    pub quality: Option<(i64, i64)>,
    /// Router cache hits.
    pub cache_hits: i64,
}

impl Point {
    fn from_hash(start: i64, hash: &HashMap<String, i64>) -> Self {
        let get = |k: &str| hash.get(k).copied().unwrap_or(0);
        let mut latency: BTreeMap<String, Latency> = BTreeMap::new();
        for key in hash.keys() {
            if let Some(name) = key.strip_suffix(":count").filter(|n| *n != "quality") {
                let mut l = Latency {
                    count: get(key),
                    sum: get(&format!("{name}:sum")),
                    min: get(&format!("{name}:min")),
                    max: get(&format!("{name}:max")),
                    buckets: Vec::with_capacity(LATENCY_BUCKETS.len() + 1),
                };
                for b in 0..=LATENCY_BUCKETS.len() {
                    l.buckets.push(get(&format!("{name}:b{b}")));
                }
                latency.insert(name.to_string(), l);
            }
        }
        Point {
            start,
            count: get("count"),
            success: get("success"),
            failure: get("failure"),
            latency,
            quality: hash
                .get("quality:count")
                .map(|c| (*c, get("quality:sum_micro"))),
            cache_hits: get("cache_hit"),
        }
    }

    /// success / (success + failure), when the bucket has outcomes.
    pub fn success_rate(&self) -> Option<f64> {
        let n = self.success + self.failure;
        (n > 0).then(|| self.success as f64 / n as f64)
    }

    /// The mean quality score.
    pub fn quality_avg(&self) -> Option<f64> {
        self.quality
            .filter(|(c, _)| *c > 0)
            .map(|(c, s)| s as f64 / QUALITY_SCALE / c as f64)
    }

    /// The JSON of the API.
    pub fn json(&self) -> serde_json::Value {
        let round = |v: f64| (v * 10_000.0).round() / 10_000.0;
        let latency: serde_json::Map<String, serde_json::Value> = self
            .latency
            .iter()
            .map(|(name, l)| {
                let mut buckets = serde_json::Map::new();
                for (i, n) in l.buckets.iter().enumerate() {
                    let bound = LATENCY_BUCKETS
                        .get(i)
                        .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
                    buckets.insert(bound, (*n).into());
                }
                let v = serde_json::json!({
                    "count": l.count,
                    "sum": l.sum,
                    "min": l.min,
                    "max": l.max,
                    "avg": (l.count > 0).then(|| round(l.sum as f64 / l.count as f64)),
                    "p50": l.quantile(0.5).map(round),
                    "p95": l.quantile(0.95).map(round),
                    "p99": l.quantile(0.99).map(round),
                    "buckets": buckets,
                });
                (name.clone(), v)
            })
            .collect();
        serde_json::json!({
            "start": iso(self.start),
            "start_unix": self.start,
            "count": self.count,
            "success": self.success,
            "failure": self.failure,
            "success_rate": self.success_rate().map(round),
            "latency": latency,
            "quality": self.quality.map(|(c, _)| serde_json::json!({
                "count": c,
                "avg": self.quality_avg().map(round),
            })),
            "cache_hits": self.cache_hits,
        })
    }
}

fn iso(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The buckets of `query` that hold events, oldest first.
pub async fn series(
    conn: &mut ConnectionManager,
    keys: &Keys,
    query: &Query,
) -> Result<Vec<Point>, redis::RedisError> {
    let starts: Vec<i64> = query.starts().collect();
    let mut pipe = redis::pipe();
    for s in &starts {
        pipe.hgetall(keys.bucket(query.topic, query.agent.as_deref(), query.resolution, *s));
    }
    let hashes: Vec<HashMap<String, i64>> = pipe.query_async(conn).await?;
    Ok(starts
        .into_iter()
        .zip(hashes)
        .filter(|(_, h)| !h.is_empty())
        .map(|(s, h)| Point::from_hash(s, &h))
        .collect())
}

/// The buckets of `query` from Redis at `url` (one connection, for tools).
pub async fn fetch(url: &str, keys: &Keys, query: &Query) -> Result<Vec<Point>, redis::RedisError> {
    let client = redis::Client::open(url)?;
    let mut conn = ConnectionManager::new(client).await?;
    series(&mut conn, keys, query).await
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    Utc::now().timestamp()
}

/// The API's answer to `query`.
pub fn answer(query: &Query, points: &[Point]) -> serde_json::Value {
    serde_json::json!({
        "topic": query.topic.name(),
        "short_name": short_name(query.topic),
        "agent": query.agent,
        "window": query.resolution.to_string(),
        "from": iso(query.from),
        "to": iso(query.to),
        "series": points.iter().map(Point::json).collect::<Vec<_>>(),
    })
}

/// The table `agentbus metrics` prints.
pub fn table(query: &Query, points: &[Point]) -> String {
    let names: Vec<&String> = points
        .iter()
        .flat_map(|p| p.latency.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut out = String::new();
    let _ = write!(out, "{:<20} {:>8} {:>8}", "start (UTC)", "count", "success");
    for n in &names {
        let _ = write!(out, " {:>28}", format!("{n} avg/p95/max"));
    }
    let _ = writeln!(out, " {:>8}", "quality");
    for p in points {
        let rate = p
            .success_rate()
            .map_or_else(|| "-".to_string(), |r| format!("{:.1}%", r * 100.0));
        let _ = write!(out, "{:<20} {:>8} {:>8}", iso(p.start), p.count, rate);
        for n in &names {
            let cell = p.latency.get(*n).filter(|l| l.count > 0).map_or_else(
                || "-".to_string(),
                |l| {
                    format!(
                        "{:.1}/{:.0}/{}",
                        l.sum as f64 / l.count as f64,
                        l.quantile(0.95).unwrap_or(0.0),
                        l.max
                    )
                },
            );
            let _ = write!(out, " {cell:>28}");
        }
        let q = p
            .quality_avg()
            .map_or_else(|| "-".to_string(), |q| format!("{q:.3}"));
        let _ = writeln!(out, " {q:>8}");
    }
    if points.is_empty() {
        let _ = writeln!(
            out,
            "(no events of {} between {} and {})",
            query.topic,
            iso(query.from),
            iso(query.to)
        );
    }
    out
}

/// What the API route needs.
pub struct Api {
    client: redis::Client,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    keys: Keys,
    window: u32,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("window", &self.window).finish()
    }
}

impl Api {
    /// The API over Redis at `url`.
    pub fn new(url: &str, keys: Keys, window: u32) -> Result<Self, redis::RedisError> {
        Ok(Self {
            client: redis::Client::open(url)?,
            conn: tokio::sync::Mutex::new(None),
            keys,
            window,
        })
    }

    /// A connection (made on first use).
    pub async fn connection(&self) -> Result<ConnectionManager, redis::RedisError> {
        let mut c = self.conn.lock().await;
        if let Some(c) = c.as_ref() {
            return Ok(c.clone());
        }
        let made = ConnectionManager::new(self.client.clone()).await?;
        *c = Some(made.clone());
        Ok(made)
    }

    /// The `/api/metrics` route.
    pub fn router(self) -> Router {
        Router::new()
            .route("/api/metrics", axum::routing::get(api_metrics))
            .with_state(Arc::new(self))
    }
}

async fn api_metrics(
    State(api): State<Arc<Api>>,
    QueryParams(q): QueryParams<HashMap<String, String>>,
) -> Response {
    let now = Utc::now().timestamp();
    let get = |k: &str| q.get(k).map(String::as_str);
    let query = match Query::parse(
        get("topic"),
        get("agent"),
        get("window"),
        get("from"),
        get("to"),
        api.window,
        now,
    ) {
        Ok(query) => query,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "error": e.to_string(), "parameter": e.param })),
            )
                .into_response()
        }
    };
    let result = match api.connection().await {
        Ok(mut conn) => series(&mut conn, &api.keys, &query).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(points) => Json(answer(&query, &points)).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "error": format!("redis: {e}") })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_the_bad_parameter() {
        let p = |t, w, f| Query::parse(t, None, w, f, None, 5, 1_000_000);
        assert_eq!(p(None, None, None).unwrap_err().param, "topic");
        assert_eq!(p(Some("nope"), None, None).unwrap_err().param, "topic");
        assert_eq!(
            p(Some("routing"), Some("7s"), None).unwrap_err().param,
            "window"
        );
        assert_eq!(
            p(Some("routing"), None, Some("soon")).unwrap_err().param,
            "from"
        );
        assert_eq!(
            p(Some("routing"), None, Some("0")).unwrap_err().param,
            "from"
        );
        let q = p(Some("routing"), Some("1m"), None).unwrap();
        assert_eq!(q.topic, Topic::AgentRoutingDecisions);
        assert_eq!(q.starts().count(), 720);
        let q = Query::parse(
            Some("tasks"),
            None,
            None,
            Some("2025-10-20T18:30:00Z"),
            Some("2025-10-20T18:30:09Z"),
            5,
            0,
        )
        .unwrap();
        assert_eq!(q.starts().count(), 2);
    }

    #[test]
    fn quantiles_interpolate_within_a_bucket() {
        let mut l = Latency {
            count: 4,
            sum: 0,
            min: 1,
            max: 900,
            buckets: vec![0; LATENCY_BUCKETS.len() + 1],
        };
        l.buckets[0] = 2; // ≤ 5
        l.buckets[7] = 2; // ≤ 1000
        assert_eq!(l.quantile(0.5), Some(5.0));
        assert_eq!(l.quantile(0.75), Some(750.0));
        assert_eq!(l.quantile(1.0), Some(900.0));
    }
}

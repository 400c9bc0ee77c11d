//! The metrics-aggregator under test: events with known timestamps and figures, the
//! model of what Redis must hold (computed here from the events, by the README's key
//! layout), and Redis read back.
#![allow(dead_code)]

use super::db_writer::{self as dbw, Kind};
use agentbus_client::Topic;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub const GROUP: &str = "metrics-group";
/// Upper bounds of the latency histogram (README); the last bucket is `+Inf`.
const BOUNDS: [i64; 13] = [
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000,
];
const AGENTS: [&str; 3] = ["agent-alpha", "agent-beta", "agent:gamma"];

/// The short name of a topic in keys (the seeds' `metrics:routing:count:5min`).
pub fn short(topic: Topic) -> &'static str {
    agentbus_consumers::metrics_aggregator::short_name(topic)
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Event `i` of run `run`: most from the last 30 to 150 s before `now`, every tenth
/// two to three hours old; agents, latencies, outcomes and scores varying with `i`.
pub fn event(run: u32, i: usize, bad_every: usize, now: i64) -> dbw::Event {
    let mut e = dbw::event(run, i, bad_every);
    if e.kind != Kind::Good {
        return e;
    }
    let mut v: Value = serde_json::from_slice(&e.value).unwrap();
    let n = i as u64;
    let ts = if i.is_multiple_of(10) {
        now - 7_200_000 - ((n * 7919) % 3_600_000) as i64
    } else {
        now - 30_000 - ((n * 7919) % 120_000) as i64
    };
    v["timestamp"] = rfc3339(ts).into();
    let agent = AGENTS[(i / 8) % 3];
    match e.topic {
        Topic::AgentActions => {
            v["agent_name"] = agent.into();
            if i.is_multiple_of(4) {
                v.as_object_mut().unwrap().remove("duration_ms");
            } else {
                v["duration_ms"] = ((n * 37) % 5_000).into();
            }
        }
        Topic::AgentRoutingDecisions => {
            v["selected_agent"] = agent.into();
            v["routing_time_ms"] = ((n * 13) % 700).into();
        }
        Topic::AgentTransformationEvents => {
            v["target_agent"] = agent.into();
            v["transformation_duration_ms"] = ((n * 17) % 900).into();
            v["success"] = (!i.is_multiple_of(5)).into();
        }
        Topic::RouterPerformanceMetrics => {
            v["routing_duration_ms"] = ((n * 11) % 300).into();
            v["cache_hit"] = i.is_multiple_of(3).into();
        }
        Topic::TaskExecutions => {
            v["agent_name"] = agent.into();
            v["total_duration_ms"] = ((n * 101) % 70_000).into();
            v["success"] = (!i.is_multiple_of(4)).into();
            v["quality_score"] = (((n * 7) % 101) as f64 / 100.0).into();
        }
        Topic::CodeQualityMetrics => {
            v["quality_score"] = (((n * 3) % 101) as f64 / 100.0).into();
        }
        Topic::SuccessPatterns => {
            v["estimated_duration_ms"] = ((n * 3) % 20_000).into();
        }
        Topic::FailurePatterns => {
            v["time_to_resolve_ms"] = ((n * 5) % 100_000).into();
        }
        Topic::PatternTemplates | Topic::FixSuggestions | Topic::AgentAlerts => {}
    }
    e.value = serde_json::to_vec(&v).unwrap();
    e
}

/// Buckets: key (without the prefix) → field → value.
pub type Buckets = BTreeMap<String, BTreeMap<String, i64>>;

/// What Redis must hold after `events` (the good ones), with `window`-second windows.
#[derive(Debug, Default)]
pub struct Model {
    pub buckets: Buckets,
    pub agents: BTreeMap<String, BTreeSet<String>>,
}

impl Model {
    pub fn of(events: &[dbw::Event], window: i64) -> Self {
        let mut m = Model::default();
        for e in events.iter().filter(|e| e.kind == Kind::Good) {
            m.add(e, window);
        }
        m
    }

    fn add(&mut self, e: &dbw::Event, window: i64) {
        let v: Value = serde_json::from_slice(&e.value).unwrap();
        let ts = chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        let t = short(e.topic);
        let (agent, latency, success, quality, cache_hit) = match e.topic {
            Topic::AgentActions => (Some("agent_name"), Some("duration_ms"), None, None, None),
            Topic::AgentRoutingDecisions => (
                Some("selected_agent"),
                Some("routing_time_ms"),
                None,
                None,
                None,
            ),
            Topic::AgentTransformationEvents => (
                Some("target_agent"),
                Some("transformation_duration_ms"),
                Some("success"),
                None,
                None,
            ),
            Topic::RouterPerformanceMetrics => (
                None,
                Some("routing_duration_ms"),
                None,
                None,
                Some("cache_hit"),
            ),
            Topic::TaskExecutions => (
                Some("agent_name"),
                Some("total_duration_ms"),
                Some("success"),
                Some("quality_score"),
                None,
            ),
            Topic::CodeQualityMetrics => (None, None, None, Some("quality_score"), None),
            Topic::SuccessPatterns => (None, Some("estimated_duration_ms"), None, None, None),
            Topic::FailurePatterns => (None, Some("time_to_resolve_ms"), None, None, None),
            Topic::PatternTemplates | Topic::FixSuggestions | Topic::AgentAlerts => {
                (None, None, None, None, None)
            }
        };
        let agent = agent.and_then(|f| v[f].as_str()).map(str::to_string);
        if let Some(a) = &agent {
            self.agents
                .entry(format!("metrics:{{{t}}}:agents"))
                .or_default()
                .insert(a.clone());
        }
        let resolutions = [
            (format!("{window}s"), window),
            ("1m".into(), 60),
            ("5m".into(), 300),
            ("1h".into(), 3600),
        ];
        for (res, secs) in resolutions {
            let start = ts.div_euclid(1000).div_euclid(secs) * secs;
            let mut keys = vec![format!("metrics:{{{t}}}:{res}:{start}")];
            if let Some(a) = &agent {
                keys.push(format!("metrics:{{{t}}}:agent:{a}:{res}:{start}"));
            }
            for key in keys {
                let b = self.buckets.entry(key).or_default();
                *b.entry("count".into()).or_default() += 1;
                if let Some(ms) = latency.and_then(|f| v[f].as_i64()) {
                    let name = latency.unwrap();
                    *b.entry(format!("{name}:count")).or_default() += 1;
                    *b.entry(format!("{name}:sum")).or_default() += ms;
                    let min = b.entry(format!("{name}:min")).or_insert(ms);
                    *min = (*min).min(ms);
                    let max = b.entry(format!("{name}:max")).or_insert(ms);
                    *max = (*max).max(ms);
                    let i = BOUNDS.iter().position(|x| ms <= *x).unwrap_or(BOUNDS.len());
                    *b.entry(format!("{name}:b{i}")).or_default() += 1;
                }
                if let Some(ok) = success.and_then(|f| v[f].as_bool()) {
                    *b.entry(if ok { "success" } else { "failure" }.into())
                        .or_default() += 1;
                }
                if let Some(q) = quality.and_then(|f| v[f].as_f64()) {
                    *b.entry("quality:count".into()).or_default() += 1;
                    *b.entry("quality:sum_micro".into()).or_default() += (q * 1e6).round() as i64;
                }
                if cache_hit.and_then(|f| v[f].as_bool()) == Some(true) {
                    *b.entry("cache_hit".into()).or_default() += 1;
                }
            }
        }
    }

    /// Good events of `topic` whose timestamp lies in the last `secs` before `at`.
    pub fn recent(events: &[dbw::Event], topic: Topic, at_ms: i64, secs: i64) -> usize {
        events
            .iter()
            .filter(|e| e.kind == Kind::Good && e.topic == topic)
            .filter(|e| {
                let v: Value = serde_json::from_slice(&e.value).unwrap();
                let ts = chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str().unwrap())
                    .unwrap()
                    .timestamp_millis();
                ts > at_ms - secs * 1000 && ts <= at_ms
            })
            .count()
    }
}

/// A synchronous connection to the test's Redis.
pub fn connect(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .expect("REDIS_URL")
        .get_connection()
        .expect("connect to redis")
}

fn scan(conn: &mut redis::Connection, pattern: &str) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(conn).expect("KEYS");
    keys.sort();
    keys
}

/// Every window and rollup under `prefix`, as the model has them.
pub fn buckets(conn: &mut redis::Connection, prefix: &str) -> Buckets {
    let keys: Vec<String> = scan(conn, &format!("{prefix}metrics:{{*}}:*"))
        .into_iter()
        .filter(|k| !k.contains(":offsets:") && !k.ends_with(":agents"))
        .collect();
    let mut out = Buckets::new();
    for chunk in keys.chunks(500) {
        let mut pipe = redis::pipe();
        for k in chunk {
            pipe.hgetall(k);
        }
        let hashes: Vec<BTreeMap<String, i64>> = pipe.query(conn).expect("HGETALL");
        for (k, h) in chunk.iter().zip(hashes) {
            out.insert(k.strip_prefix(prefix).unwrap().to_string(), h);
        }
    }
    out
}

/// The agents sets under `prefix`.
pub fn agents(conn: &mut redis::Connection, prefix: &str) -> BTreeMap<String, BTreeSet<String>> {
    scan(conn, &format!("{prefix}metrics:{{*}}:agents"))
        .into_iter()
        .map(|k| {
            let members: BTreeSet<String> = redis::cmd("SMEMBERS").arg(&k).query(conn).unwrap();
            (k.strip_prefix(prefix).unwrap().to_string(), members)
        })
        .collect()
}

/// The group's stored offsets under `prefix`: (topic, partition) → next.
pub fn stored_offsets(conn: &mut redis::Connection, prefix: &str) -> BTreeMap<(String, i32), i64> {
    let mut out = BTreeMap::new();
    for t in Topic::ALL {
        let key = format!("{prefix}metrics:{{{}}}:offsets:{GROUP}", short(t));
        let h: BTreeMap<String, String> = redis::cmd("HGETALL").arg(&key).query(conn).unwrap();
        for (field, v) in h {
            if let (Ok(p), Ok(next)) = (field.parse::<i32>(), v.parse::<i64>()) {
                out.insert((t.name().to_string(), p), next);
            }
        }
    }
    out
}

/// Compares Redis with the model of `events`; a readable diff on failure.
pub fn assert_matches_model(conn: &mut redis::Connection, prefix: &str, events: &[dbw::Event]) {
    let model = Model::of(events, 5);
    let actual = buckets(conn, prefix);
    let missing: Vec<&String> = model
        .buckets
        .keys()
        .filter(|k| !actual.contains_key(*k))
        .collect();
    let extra: Vec<&String> = actual
        .keys()
        .filter(|k| !model.buckets.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "buckets missing: {missing:?}\nextra: {extra:?}"
    );
    for (k, want) in &model.buckets {
        assert_eq!(&actual[k], want, "bucket {k}");
    }
    assert_eq!(agents(conn, prefix), model.agents);
}

fn secs(res: &str) -> i64 {
    match res {
        "1m" => 60,
        "5m" => 300,
        "1h" => 3600,
        _ => 5,
    }
}

/// Asks `/api/metrics` (through `get`) for every topic's series and every agent's at
/// each resolution over `from..=to`, and compares each point with the model: counts,
/// outcomes, every latency field (count, sum, min, max, histogram) and quality.
/// Returns how many points were compared.
pub fn assert_api_matches_model(
    get: impl Fn(&str) -> (u16, String),
    model: &Model,
    from: i64,
    to: i64,
) -> usize {
    let mut compared = 0;
    for t in Topic::ALL {
        let s = short(t);
        let agents = model.agents.get(&format!("metrics:{{{s}}}:agents"));
        let series = std::iter::once(None).chain(agents.into_iter().flatten().map(Some));
        for agent in series {
            for res in ["5s", "1m", "5m", "1h"] {
                let (prefix, param) = match agent {
                    None => (format!("metrics:{{{s}}}:{res}:"), String::new()),
                    Some(a) => (
                        format!("metrics:{{{s}}}:agent:{a}:{res}:"),
                        format!("&agent={}", a.replace(':', "%3A")),
                    ),
                };
                let mut expected: Vec<(i64, &BTreeMap<String, i64>)> = model
                    .buckets
                    .iter()
                    .filter_map(|(k, f)| Some((k.strip_prefix(&prefix)?.parse().ok()?, f)))
                    .filter(|(start, _)| start + secs(res) > from && *start <= to)
                    .collect();
                expected.sort_by_key(|(start, _)| *start);
                let path =
                    format!("/api/metrics?topic={s}{param}&window={res}&from={from}&to={to}");
                let (status, body) = get(&path);
                assert_eq!(status, 200, "{path}: {body}");
                let api: Value = serde_json::from_str(&body).unwrap();
                let points = api["series"].as_array().unwrap();
                assert_eq!(points.len(), expected.len(), "{path}: {body}");
                for (point, (start, fields)) in points.iter().zip(&expected) {
                    let at = format!("{path} at {start}");
                    let field = |name: &str| fields.get(name).copied().unwrap_or(0);
                    assert_eq!(point["start_unix"], *start, "{at}");
                    assert_eq!(point["count"], field("count"), "{at}");
                    assert_eq!(point["success"], field("success"), "{at}");
                    assert_eq!(point["failure"], field("failure"), "{at}");
                    assert_eq!(point["cache_hits"], field("cache_hit"), "{at}");
                    let names: BTreeSet<&str> = fields
                        .keys()
                        .filter_map(|k| k.strip_suffix(":sum"))
                        .filter(|n| *n != "quality")
                        .collect();
                    let latency = point["latency"].as_object().unwrap();
                    let shown: BTreeSet<&str> = latency
                        .iter()
                        .filter(|(_, l)| l["count"].as_i64() > Some(0))
                        .map(|(n, _)| n.as_str())
                        .collect();
                    assert_eq!(shown, names, "{at}");
                    for name in names {
                        let l = &latency[name];
                        for part in ["count", "sum", "min", "max"] {
                            assert_eq!(l[part], field(&format!("{name}:{part}")), "{at} {name}");
                        }
                        let buckets = l["buckets"].as_object().unwrap();
                        for (i, bound) in BOUNDS
                            .iter()
                            .map(|b| b.to_string())
                            .chain(["+Inf".to_string()])
                            .enumerate()
                        {
                            let n = field(&format!("{name}:b{i}"));
                            assert_eq!(buckets[&bound], n, "{at} {name} le={bound}");
                        }
                    }
                    match fields.get("quality:count") {
                        Some(c) => {
                            assert_eq!(point["quality"]["count"], *c, "{at}");
                            let avg = field("quality:sum_micro") as f64 / 1e6 / *c as f64;
                            let got = point["quality"]["avg"].as_f64().unwrap();
                            assert!((got - avg).abs() < 1e-4, "{at}: quality {got} vs {avg}");
                        }
                        None => assert!(point["quality"].is_null(), "{at}"),
                    }
                    compared += 1;
                }
            }
        }
    }
    compared
}

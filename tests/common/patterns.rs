//! The pattern-extractor's tests: a history of executions and failures of known
//! structure, the model of what it must publish, and read_committed readers.
#![allow(dead_code)]

use super::db_writer::{Event, Kind};
use agentbus_client::Topic;
use agentbus_consumers::pattern_extractor::templates::NAMESPACE;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// A small deterministic generator (SplitMix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// True with probability `p` (in hundredths).
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

pub fn uuid(a: u32, b: u64) -> String {
    format!("{a:08x}-0000-4000-8000-{b:012x}")
}

/// What a sequence is made to do against the default thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Qualifies: 95 % success, quality about 0.92.
    Qualifies,
    /// Only 4 executions (5 needed).
    TooFew,
    /// 70 % success (80 % needed).
    Unreliable,
    /// Mean quality 0.80 (0.85 needed).
    Mediocre,
}

/// One step sequence of one fingerprint in the generated history.
#[derive(Debug, Clone)]
pub struct SeqSpec {
    pub fingerprint: String,
    pub actions: Vec<String>,
    pub plan: Plan,
    /// Whether step 2's file names vary (`api/{{entity}}.py`).
    pub varies: bool,
    pub task_type: String,
    pub domain: String,
}

/// One generated execution, as the model sees it.
#[derive(Debug, Clone)]
pub struct Exec {
    pub seq: usize,
    pub success: bool,
    pub quality_micros: u64,
    pub duration: u64,
    pub entity: &'static str,
    pub correlation_id: String,
    pub timestamp: String,
}

/// Entities whose first and last letters all differ: two different ones share exactly
/// `api/` and `.py`.
const ENTITIES: [&str; 5] = ["user", "item", "cart", "blog", "deal"];

/// `executions` task executions over 40 fingerprints, in production order.
pub fn executions(run: u32, executions: usize) -> (Vec<SeqSpec>, Vec<Exec>, Vec<Event>) {
    let mut rng = Rng::new(u64::from(run) * 7919 + 1);
    let mut specs = Vec::new();
    for f in 0..40u64 {
        let fingerprint = uuid(run + 10, f);
        for s in 0..3u64 {
            let plan = match (f + s) % 6 {
                0..=2 => Plan::Qualifies,
                3 => Plan::TooFew,
                4 => Plan::Unreliable,
                _ => Plan::Mediocre,
            };
            let mut actions = vec!["rag_query".to_string(), format!("generate_{s}")];
            if s == 2 {
                actions.push("validate".into());
            }
            specs.push(SeqSpec {
                fingerprint: fingerprint.clone(),
                actions,
                plan,
                varies: (f + s) % 2 == 0,
                task_type: ["code_generation", "refactoring"][(f % 2) as usize].into(),
                domain: format!("domain_{}", f % 4),
            });
        }
    }
    let few: Vec<usize> = (0..specs.len())
        .filter(|i| specs[*i].plan == Plan::TooFew)
        .collect();
    let many: Vec<usize> = (0..specs.len())
        .filter(|i| specs[*i].plan != Plan::TooFew)
        .collect();
    // Four executions for each "too few" sequence, the rest spread over the others.
    let mut order: Vec<usize> = few.iter().flat_map(|i| [*i; 4]).collect();
    while order.len() < executions {
        order.push(many[rng.below(many.len() as u64) as usize]);
    }
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut execs = Vec::new();
    let mut events = Vec::new();
    for (n, seq) in order.into_iter().enumerate() {
        let spec = &specs[seq];
        let (success, quality) = match spec.plan {
            Plan::Qualifies | Plan::TooFew => (rng.chance(95), 88 + rng.below(9)),
            Plan::Unreliable => (rng.chance(70), 88 + rng.below(9)),
            Plan::Mediocre => (rng.chance(95), 76 + rng.below(9)),
        };
        let entity = if spec.varies {
            ENTITIES[rng.below(ENTITIES.len() as u64) as usize]
        } else {
            ENTITIES[0]
        };
        let duration = 1000 + rng.below(20_000);
        let e = Exec {
            seq,
            success,
            quality_micros: quality * 10_000,
            duration,
            entity,
            correlation_id: uuid(run + 11, n as u64),
            timestamp: format!("2025-10-20T18:{:02}:{:02}.000Z", (n / 60) % 60, n % 60),
        };
        let steps: Vec<Value> = spec
            .actions
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut s = json!({"step_number": i + 1, "action": a, "duration_ms": 100});
                if i == 1 {
                    s["files"] = json!([format!("api/{}.py", e.entity)]);
                }
                s
            })
            .collect();
        let id = uuid(run + 12, n as u64);
        let v = json!({
            "event_id": id,
            "correlation_id": e.correlation_id,
            "fingerprint_id": spec.fingerprint,
            "task_hash": "h",
            "original_prompt": format!("do {}", e.entity),
            "task_type": spec.task_type,
            "domain": spec.domain,
            "agent_name": "agent-api-architect",
            "success": e.success,
            "quality_score": quality as f64 / 100.0,
            "steps": steps,
            "total_duration_ms": e.duration,
            "timestamp": e.timestamp,
        });
        events.push(Event {
            topic: Topic::TaskExecutions,
            key: spec.fingerprint.clone(),
            value: serde_json::to_vec(&v).unwrap(),
            id,
            kind: Kind::Good,
        });
        execs.push(e);
    }
    (specs, execs, events)
}

/// One template version the model expects (what a test compares).
pub type Version = (String, u64, String, u64, f64, f64, u64, Value);

/// The template versions of the history, by the rules: published when a sequence
/// first qualifies, when its files start to vary, when its occurrences double, and
/// (withdrawn) when it stops qualifying.
pub fn model_templates(specs: &[SeqSpec], execs: &[Exec]) -> BTreeSet<(String, u64)> {
    model_template_versions(specs, execs)
        .into_iter()
        .map(|v| (v.0, v.1))
        .collect()
}

pub fn model_template_versions(specs: &[SeqSpec], execs: &[Exec]) -> Vec<Version> {
    struct S {
        count: u64,
        ok: u64,
        q: u64,
        dur: u64,
        first: Option<&'static str>,
        varied: bool,
        published: Option<(u64, u64, bool, bool)>, // version, occurrences, varied, withdrawn
    }
    let mut state: Vec<S> = specs
        .iter()
        .map(|_| S {
            count: 0,
            ok: 0,
            q: 0,
            dur: 0,
            first: None,
            varied: false,
            published: None,
        })
        .collect();
    let mut out = Vec::new();
    for e in execs {
        let s = &mut state[e.seq];
        s.count += 1;
        s.ok += u64::from(e.success);
        s.q += e.quality_micros;
        s.dur += e.duration;
        let first = *s.first.get_or_insert(e.entity);
        s.varied |= first != e.entity;
        let q = s.count >= 5
            && s.ok as f64 >= 0.8 * s.count as f64
            && s.q as f64 >= 0.85 * 1e6 * s.count as f64;
        let due = match s.published {
            None => q,
            Some((_, _, _, true)) => q,
            Some((_, occ, varied, false)) => !q || varied != s.varied || s.count >= 2 * occ,
        };
        if !due {
            continue;
        }
        let version = s.published.map_or(1, |p| p.0 + 1);
        s.published = Some((version, s.count, s.varied, !q));
        let spec = &specs[e.seq];
        let name = format!("{}\u{1f}{}", spec.fingerprint, spec.actions.join("\u{1f}"));
        let pattern_id = uuid::Uuid::new_v5(&NAMESPACE, name.as_bytes()).to_string();
        let file = if s.varied {
            "api/{{entity}}.py".to_string()
        } else {
            format!("api/{first}.py")
        };
        let steps: Vec<Value> = spec
            .actions
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if i == 1 {
                    json!({"action": a, "files": [file]})
                } else {
                    json!({"action": a})
                }
            })
            .collect();
        let r4 = |x: f64| (x * 10_000.0).round() / 10_000.0;
        out.push((
            pattern_id,
            version,
            if q { "active" } else { "withdrawn" }.to_string(),
            s.count,
            r4(s.ok as f64 / s.count as f64),
            r4(s.q as f64 / 1e6 / s.count as f64),
            s.dur / s.count,
            Value::Array(steps),
        ));
    }
    out
}

/// The fields of a published template a [`Version`] holds.
pub fn version_of(v: &Value) -> Version {
    (
        v["pattern_id"].as_str().unwrap_or_default().to_string(),
        v["version"].as_u64().unwrap_or_default(),
        v["status"].as_str().unwrap_or_default().to_string(),
        v["occurrences"].as_u64().unwrap_or_default(),
        v["success_rate"].as_f64().unwrap_or_default(),
        v["mean_quality_score"].as_f64().unwrap_or_default(),
        v["estimated_duration_ms"].as_u64().unwrap_or_default(),
        v["pattern_template"]["steps"].clone(),
    )
}

/// One generated failure, as the model sees it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub failure_id: String,
    pub family: usize,
    pub category: String,
    pub resolution: Option<(String, bool)>,
}

/// Message families: within one, occurrences differ only in what normalization strips;
/// between them, in most words.
const FAMILIES: [&str; 6] = [
    "Expected str, got int for field '{q}' in {p} line {n}",
    "Connection to database host db-{n} refused after {n} retries on port {n}",
    "Timeout waiting for lock on table '{q}' held by transaction {id}",
    "Module {p} has no attribute '{q}' imported from package root",
    "Assertion failed: expected {n} rows but query returned {n} rows for tenant {id}",
    "Permission denied while writing cache file {p} as user '{q}'",
];

/// `count` failures of six families in three categories (two families each, one
/// category only through `failure_type`), some with resolutions.
pub fn failures(run: u32, count: usize) -> (Vec<Failure>, Vec<Event>) {
    let mut rng = Rng::new(u64::from(run) * 104_729 + 3);
    let mut out = Vec::new();
    let mut events = Vec::new();
    for n in 0..count {
        let family = rng.below(FAMILIES.len() as u64) as usize;
        let category = ["type_error", "connection_error", "concurrency"][family % 3].to_string();
        let message = FAMILIES[family]
            .replace("{q}", ["user_id", "order_id", "sku"][rng.below(3) as usize])
            .replace(
                "{p}",
                ["models/product.py", "api/users.py", "/srv/app/cache.bin"][rng.below(3) as usize],
            )
            .replace("{id}", &uuid(run + 20, rng.below(1000)))
            .replace("{n}", &(rng.below(5000)).to_string());
        let resolution = rng.chance(25).then(|| {
            let which = if rng.chance(70) { 0 } else { 1 };
            (
                format!("fix {which} for family {family}"),
                which == 0 || rng.chance(50),
            )
        });
        let failure_id = uuid(run + 21, n as u64);
        let id = uuid(run + 22, n as u64);
        let mut v = json!({
            "event_id": id,
            "correlation_id": uuid(run + 23, n as u64),
            "failure_id": failure_id,
            "failure_type": category,
            "error_message": message,
            "timestamp": "2025-10-20T18:30:00.123Z",
        });
        // The third category is known only by failure_type.
        if family % 3 != 2 {
            v["error_category"] = json!(category);
        }
        if let Some((text, automated)) = &resolution {
            v["resolution"] = json!(text);
            v["resolution_steps"] = json!([{"action": "identify_root_cause", "duration_ms": 1200}]);
            v["prevention_strategy"] =
                json!({"strategy": "s", "automated_fix_possible": automated});
        }
        events.push(Event {
            topic: Topic::FailurePatterns,
            key: failure_id.clone(),
            value: serde_json::to_vec(&v).unwrap(),
            id,
            kind: Kind::Good,
        });
        out.push(Failure {
            failure_id,
            family,
            category,
            resolution,
        });
    }
    (out, events)
}

/// The suggestions of failures seen in `order` (the repartition topic's order):
/// failure_id → (resolution, its count, automated, occurrences of the group).
pub fn model_suggestions(
    failures: &BTreeMap<String, Failure>,
    order: &[String],
) -> BTreeMap<String, (String, u64, bool, u64)> {
    #[derive(Default)]
    struct G {
        count: u64,
        resolutions: Vec<(String, u64, bool)>,
    }
    let mut groups: BTreeMap<usize, G> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for id in order {
        let f = &failures[id];
        let g = groups.entry(f.family).or_default();
        g.count += 1;
        match &f.resolution {
            Some((text, automated)) => match g.resolutions.iter_mut().find(|r| &r.0 == text) {
                Some(r) => {
                    r.1 += 1;
                    r.2 &= automated;
                }
                None => g.resolutions.push((text.clone(), 1, *automated)),
            },
            None => {
                let mut best: Option<&(String, u64, bool)> = None;
                for r in &g.resolutions {
                    if best.is_none_or(|b| r.1 > b.1) {
                        best = Some(r);
                    }
                }
                if let Some(b) = best {
                    out.insert(id.clone(), (b.0.clone(), b.1, b.2, g.count));
                }
            }
        }
    }
    out
}

/// The fields of a suggestion the model predicts.
pub fn suggestion_of(v: &Value) -> (String, (String, u64, bool, u64)) {
    (
        v["failure_id"].as_str().unwrap_or_default().to_string(),
        (
            v["suggested_resolution"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            v["resolution_count"].as_u64().unwrap_or_default(),
            v["automated_fix_possible"].as_bool().unwrap_or_default(),
            v["group_occurrences"].as_u64().unwrap_or_default(),
        ),
    )
}

/// Every committed record of `topic` (read_committed, to the end of each partition):
/// per partition, (key, value) in log order.
pub fn read_committed(bootstrap: &str, topic: &str) -> BTreeMap<i32, Vec<(String, Vec<u8>)>> {
    read_committed_at(bootstrap, topic)
        .into_iter()
        .map(|(p, records)| (p, records.into_iter().map(|(_, k, v)| (k, v)).collect()))
        .collect()
}

/// [`read_committed`] with each record's offset.
pub fn read_committed_at(
    bootstrap: &str,
    topic: &str,
) -> BTreeMap<i32, Vec<(i64, String, Vec<u8>)>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "pattern-tests-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .expect("reader");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions: Vec<i32> = md.topics()[0].partitions().iter().map(|p| p.id()).collect();
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut open: BTreeSet<i32> = partitions.iter().copied().collect();
    let mut out: BTreeMap<i32, Vec<(i64, String, Vec<u8>)>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !open.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{topic}: partitions {open:?} not read to the end"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.entry(m.partition()).or_default().push((
                m.offset(),
                String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                m.payload().unwrap_or_default().to_vec(),
            )),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            // A stopped broker of a cluster: librdkafka reconnects elsewhere.
            Some(Err(e)) => eprintln!("{topic}: {e}"),
            None => {}
        }
    }
    out
}

/// The JSON values of every committed record of `topic`.
pub fn values(bootstrap: &str, topic: &str) -> Vec<Value> {
    read_committed(bootstrap, topic)
        .into_values()
        .flatten()
        .map(|(_, v)| serde_json::from_slice(&v).expect("JSON"))
        .collect()
}

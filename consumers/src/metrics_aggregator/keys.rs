//! The key layout in Redis (README, "metrics-aggregator"): every key of one topic
//! shares the hash tag `{<short name>}`, so that the one script that moves a partition's
//! offsets and its windows stays in one slot once Redis Cluster is supported (the sink
//! refuses a cluster node today).
//!
//! | key | type | what | TTL |
//! |---|---|---|---|
//! | `metrics:{<t>}:<res>:<start>` | hash | a window or rollup of topic `t` | by resolution |
//! | `metrics:{<t>}:agent:<agent>:<res>:<start>` | hash | the same for one agent | by resolution |
//! | `metrics:{<t>}:agents` | set | agents seen | 30 d |
//! | `metrics:{<t>}:offsets:<group>` | hash | next offset per partition, `topic_id` | 32 d |
//! | `metrics:<t>:count:<span>` | string | events of the last `span` (1min, 5min, 1h) | 1 h |
//!
//! `<res>` is the window (`5s` for `WINDOW_SIZE_SECONDS=5`) or a rollup (`1m`, `5m`,
//! `1h`); `<start>` is the bucket's start in Unix seconds (UTC).

use agentbus_client::Topic;
use std::fmt;

/// The short name of a topic in keys and queries (`routing` for
/// `agent-routing-decisions`, as the seeds' `metrics:routing:count:5min`).
pub fn short_name(topic: Topic) -> &'static str {
    match topic {
        Topic::AgentActions => "actions",
        Topic::AgentRoutingDecisions => "routing",
        Topic::AgentTransformationEvents => "transformations",
        Topic::RouterPerformanceMetrics => "router",
        Topic::TaskExecutions => "tasks",
        Topic::CodeQualityMetrics => "quality",
        Topic::SuccessPatterns => "successes",
        Topic::FailurePatterns => "failures",
        Topic::PatternTemplates => "templates",
        Topic::FixSuggestions => "fixes",
        Topic::AgentAlerts => "alerts",
    }
}

/// A topic by its name, `log` subcommand or short name.
pub fn topic_named(name: &str) -> Option<Topic> {
    name.parse::<Topic>()
        .ok()
        .or_else(|| Topic::ALL.into_iter().find(|t| short_name(*t) == name))
}

/// The span of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resolution {
    /// The tumbling window (`WINDOW_SIZE_SECONDS`).
    Window(u32),
    /// One minute.
    Minute,
    /// Five minutes.
    FiveMinutes,
    /// One hour.
    Hour,
}

impl Resolution {
    /// The window and the three rollups.
    pub fn all(window: u32) -> [Resolution; 4] {
        [
            Resolution::Window(window),
            Resolution::Minute,
            Resolution::FiveMinutes,
            Resolution::Hour,
        ]
    }

    /// Seconds per bucket.
    pub fn seconds(self) -> i64 {
        match self {
            Resolution::Window(s) => i64::from(s),
            Resolution::Minute => 60,
            Resolution::FiveMinutes => 300,
            Resolution::Hour => 3600,
        }
    }

    /// How long a bucket of this resolution is kept.
    pub fn ttl_seconds(self) -> i64 {
        match self {
            Resolution::Window(_) => 86_400,
            Resolution::Minute | Resolution::FiveMinutes => 7 * 86_400,
            Resolution::Hour => 30 * 86_400,
        }
    }

    /// The start (Unix seconds) of the bucket holding `ms`.
    pub fn bucket(self, ms: i64) -> i64 {
        ms.div_euclid(1000).div_euclid(self.seconds()) * self.seconds()
    }

    /// `5s`, `1m`, `5m`, `1h`, or `window` as written in a query.
    pub fn parse(s: &str, window: u32) -> Option<Resolution> {
        match s {
            "1m" => Some(Resolution::Minute),
            "5m" => Some(Resolution::FiveMinutes),
            "1h" => Some(Resolution::Hour),
            _ if s == Resolution::Window(window).to_string() => Some(Resolution::Window(window)),
            _ => None,
        }
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resolution::Window(s) => write!(f, "{s}s"),
            Resolution::Minute => f.write_str("1m"),
            Resolution::FiveMinutes => f.write_str("5m"),
            Resolution::Hour => f.write_str("1h"),
        }
    }
}

/// TTL of the agents set.
pub const AGENTS_TTL: i64 = 30 * 86_400;
/// TTL of the offsets hash: longer than any bucket's, so that offsets never expire
/// before the data they account for (a replay would count it twice).
pub const OFFSETS_TTL: i64 = 32 * 86_400;
/// TTL of the rolling counts (refreshed every window).
pub const ROLLING_TTL: i64 = 3600;

/// Rolling spans of `metrics:<t>:count:<span>`, in seconds.
pub const ROLLING: [(&str, i64); 3] = [("1min", 60), ("5min", 300), ("1h", 3600)];

/// Builds key names under one prefix (`REDIS_KEY_PREFIX`).
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// A bucket of `topic` (of `agent`, when given).
    pub fn bucket(&self, topic: Topic, agent: Option<&str>, res: Resolution, start: i64) -> String {
        let p = &self.prefix;
        let t = short_name(topic);
        match agent {
            Some(a) => format!("{p}metrics:{{{t}}}:agent:{a}:{res}:{start}"),
            None => format!("{p}metrics:{{{t}}}:{res}:{start}"),
        }
    }

    /// The set of agents seen on `topic`.
    pub fn agents(&self, topic: Topic) -> String {
        format!("{}metrics:{{{}}}:agents", self.prefix, short_name(topic))
    }

    /// The offsets of `group` on `topic`.
    pub fn offsets(&self, topic: Topic, group: &str) -> String {
        format!(
            "{}metrics:{{{}}}:offsets:{group}",
            self.prefix,
            short_name(topic)
        )
    }

    /// The seeds' rolling count, e.g. `metrics:routing:count:5min`.
    pub fn rolling(&self, topic: Topic, span: &str) -> String {
        format!("{}metrics:{}:count:{span}", self.prefix, short_name(topic))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_layout() {
        let k = Keys::new("");
        assert_eq!(
            k.rolling(Topic::AgentRoutingDecisions, "5min"),
            "metrics:routing:count:5min"
        );
        assert_eq!(
            k.bucket(
                Topic::AgentActions,
                None,
                Resolution::Window(5),
                1_700_000_000
            ),
            "metrics:{actions}:5s:1700000000"
        );
        assert_eq!(
            k.bucket(Topic::TaskExecutions, Some("a1"), Resolution::Hour, 3600),
            "metrics:{tasks}:agent:a1:1h:3600"
        );
        assert_eq!(
            Keys::new("p:").offsets(Topic::AgentActions, "metrics-group"),
            "p:metrics:{actions}:offsets:metrics-group"
        );
        assert_eq!(Resolution::Window(5).bucket(12_345), 10);
        assert_eq!(Resolution::Minute.bucket(-1), -60);
        assert_eq!(Resolution::parse("5s", 5), Some(Resolution::Window(5)));
        assert_eq!(Resolution::parse("10s", 5), None);
        assert_eq!(topic_named("routing"), Some(Topic::AgentRoutingDecisions));
        assert_eq!(topic_named("task-executions"), Some(Topic::TaskExecutions));
    }
}

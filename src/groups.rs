//! `agentbus groups`: list, describe and delete consumer groups and reset their committed
//! offsets, like Kafka's `kafka-consumer-groups`. Only standard Kafka APIs are used (through
//! librdkafka: ListGroups/DescribeGroups, FindCoordinator, OffsetFetch/OffsetCommit,
//! ListOffsets, Metadata, DeleteGroups), so it works against agentbus and any Kafka.
//!
//! Every network call is bounded by `--timeout-ms`; the one librdkafka call that takes no
//! timeout (a synchronous offset commit) runs on its own thread behind a deadline.

use anyhow::Context as _;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub(crate) struct GroupsArgs {
    #[command(flatten)]
    cluster: crate::cluster_args::ClusterArgs,
    /// Output format: `text` (an aligned table) or `json`.
    #[arg(long, global = true, default_value = "text")]
    output: Output,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// List the consumer groups: group id, protocol type and state.
    List,
    /// Show a group's committed offsets, log-end offsets, lag and owning members.
    Describe {
        /// The group id.
        group: String,
    },
    /// Delete a group and its committed offsets (only when it has no active members).
    Delete {
        /// The group id.
        group: String,
    },
    /// Compute new committed offsets for a group; commit them with `--execute`.
    ///
    /// Without `--execute` this is a dry run that only prints the plan. Kafka accepts the
    /// commit only while the group has no active members.
    ResetOffsets(ResetArgs),
}

#[derive(Debug, clap::Args)]
struct ResetArgs {
    /// The group id.
    group: String,
    /// Topic to reset: `TOPIC` (all partitions) or `TOPIC:0,1,2`. Repeatable.
    #[arg(long = "topic", value_name = "TOPIC[:PARTITIONS]", required = true)]
    topics: Vec<TopicSpec>,
    #[command(flatten)]
    to: ResetTo,
    /// Commit the new offsets (otherwise only print the plan).
    #[arg(long)]
    execute: bool,
    /// Only print the plan (the default).
    #[arg(long, conflicts_with = "execute")]
    dry_run: bool,
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct ResetTo {
    /// Reset to the earliest available offset (the log start).
    #[arg(long)]
    to_earliest: bool,
    /// Reset to the log-end offset.
    #[arg(long)]
    to_latest: bool,
    /// Reset to the first offset whose timestamp is at or after this RFC 3339 time
    /// (e.g. 2026-01-31T12:00:00Z); the log end if there is none.
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339_millis)]
    to_datetime: Option<i64>,
    /// Reset to this offset (clamped to the available range).
    #[arg(long, value_name = "OFFSET")]
    to_offset: Option<i64>,
    /// Move the committed offset by N (may be negative), clamped to the available range.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    shift_by: Option<i64>,
}

/// `TOPIC` or `TOPIC:0,1,2`.
#[derive(Debug, Clone)]
struct TopicSpec {
    topic: String,
    partitions: Option<Vec<i32>>,
}

impl std::str::FromStr for TopicSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (topic, partitions) = match s.rsplit_once(':') {
            None => (s, None),
            Some((topic, list)) => {
                let parts = list
                    .split(',')
                    .map(|p| {
                        p.trim()
                            .parse::<i32>()
                            .ok()
                            .filter(|p| *p >= 0)
                            .ok_or_else(|| format!("bad partition {p:?} in {s:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (topic, Some(parts))
            }
        };
        if topic.is_empty() {
            return Err("empty topic name".into());
        }
        Ok(TopicSpec {
            topic: topic.to_string(),
            partitions,
        })
    }
}

/// What went wrong, in terms a user of the command can act on.
#[derive(Debug)]
pub(crate) enum GroupsError {
    /// The group is not known to the cluster (and has no committed offsets).
    GroupNotFound(String),
    /// DeleteGroups refused: the group still has members.
    GroupNotEmpty(String),
    /// Offsets can only be reset while a group has no active members.
    GroupActive {
        group: String,
        state: String,
        members: usize,
    },
    UnknownTopic(String),
    UnknownPartition {
        topic: String,
        partition: i32,
    },
    NoCommittedOffset {
        topic: String,
        partition: i32,
    },
    /// A call that takes no timeout of its own did not finish in time.
    Timeout {
        what: String,
        ms: u64,
    },
    /// A request failed; `what` says which.
    Kafka {
        what: String,
        source: KafkaError,
    },
    /// A local failure (e.g. a thread could not start).
    Internal(String),
    /// The cluster answered a commit without error but the offsets read back differ.
    CommitNotApplied {
        topic: String,
        partition: i32,
        wanted: i64,
        found: Option<i64>,
    },
}

impl fmt::Display for GroupsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::GroupNotFound(g) => write!(f, "consumer group '{g}' does not exist"),
            Self::GroupNotEmpty(g) => write!(
                f,
                "cannot delete consumer group '{g}': it is not empty (it has active members); \
                 stop its consumers first"
            ),
            Self::GroupActive {
                group,
                state,
                members,
            } => write!(
                f,
                "cannot reset offsets of consumer group '{group}': it has {members} active \
                 member(s) (state {state}); offsets can only be reset while the group is \
                 inactive, so stop its consumers first"
            ),
            Self::UnknownTopic(t) => write!(f, "topic '{t}' does not exist"),
            Self::UnknownPartition { topic, partition } => {
                write!(f, "partition {partition} of topic '{topic}' does not exist")
            }
            Self::NoCommittedOffset { topic, partition } => write!(
                f,
                "cannot shift the offset of {topic}-{partition}: the group has no committed \
                 offset there"
            ),
            Self::Timeout { what, ms } => write!(f, "{what}: no answer within {ms} ms"),
            // The code alone: KafkaError's own text repeats it ("…: X (…): X (…)").
            Self::Kafka { what, source } => match error_code(source) {
                Some(
                    code @ (RDKafkaErrorCode::OperationTimedOut
                    | RDKafkaErrorCode::AllBrokersDown
                    | RDKafkaErrorCode::BrokerTransportFailure),
                ) => write!(f, "{what}: {code} (is a Kafka broker reachable there?)"),
                Some(code) => write!(f, "{what}: {code}"),
                None => write!(f, "{what}: {source}"),
            },
            Self::Internal(what) => f.write_str(what),
            Self::CommitNotApplied {
                topic,
                partition,
                wanted,
                found,
            } => write!(
                f,
                "the commit of {topic}-{partition} to offset {wanted} was not applied \
                 (committed offset is now {})",
                found.map_or("none".to_string(), |o| o.to_string())
            ),
        }
    }
}

fn error_code(e: &KafkaError) -> Option<RDKafkaErrorCode> {
    match e {
        KafkaError::AdminOp(code) => Some(*code),
        e => e.rdkafka_error_code(),
    }
}

/// The Kafka error is part of the message (see `Display`), so it is not also a `source`.
impl std::error::Error for GroupsError {}

fn kafka(what: impl Into<String>) -> impl FnOnce(KafkaError) -> GroupsError {
    let what = what.into();
    move |source| GroupsError::Kafka { what, source }
}

/// A malformed ConsumerProtocolAssignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError(&'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed consumer assignment: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes a ConsumerProtocolAssignment (versions 0–3; all share this layout):
/// `version: i16`, `[topic: string (i16 length), [partition: i32]]`, `user_data: bytes`.
/// An empty buffer means "no assignment". The user data is not needed and may be absent.
pub(crate) fn decode_assignment(buf: &[u8]) -> Result<Vec<(String, Vec<i32>)>, DecodeError> {
    struct Reader<'a>(&'a [u8]);
    impl Reader<'_> {
        fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
            if self.0.len() < n {
                return Err(DecodeError("truncated"));
            }
            let (head, tail) = self.0.split_at(n);
            self.0 = tail;
            Ok(head)
        }
        fn i16(&mut self) -> Result<i16, DecodeError> {
            let b = self.take(2)?;
            Ok(i16::from_be_bytes([b[0], b[1]]))
        }
        fn i32(&mut self) -> Result<i32, DecodeError> {
            let b = self.take(4)?;
            Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        }
        fn count(&mut self) -> Result<usize, DecodeError> {
            let n = self.i32()?;
            match n {
                -1 => Ok(0),
                n if n < 0 => Err(DecodeError("negative array length")),
                // Each element takes at least 2 bytes: refuse counts the buffer cannot hold.
                n if n as usize > self.0.len() => Err(DecodeError("array length exceeds data")),
                n => Ok(n as usize),
            }
        }
    }

    if buf.is_empty() {
        return Ok(Vec::new());
    }
    let mut r = Reader(buf);
    let version = r.i16()?;
    if version < 0 {
        return Err(DecodeError("negative version"));
    }
    let topics = r.count()?;
    let mut out = Vec::with_capacity(topics);
    for _ in 0..topics {
        let len = r.i16()?;
        if len < 0 {
            return Err(DecodeError("null topic name"));
        }
        let name = std::str::from_utf8(r.take(len as usize)?)
            .map_err(|_| DecodeError("topic name is not UTF-8"))?
            .to_string();
        let n = r.count()?;
        let mut partitions = Vec::with_capacity(n);
        for _ in 0..n {
            partitions.push(r.i32()?);
        }
        out.push((name, partitions));
    }
    // user_data (nullable bytes) follows; tolerate it missing, reject it truncated.
    if !r.0.is_empty() {
        let len = r.i32()?;
        if len > 0 {
            r.take(len as usize)?;
        }
    }
    Ok(out)
}

/// Parses an RFC 3339 timestamp (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`) into
/// milliseconds since the Unix epoch.
pub(crate) fn parse_rfc3339_millis(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not an RFC 3339 time such as 2026-01-31T12:00:00Z");
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let part = s.get(range).ok_or_else(bad)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse::<i64>().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut millis = 0;
    if b[i] == b'.' {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        if end == start {
            return Err(bad());
        }
        let digits = &s[start..end.min(start + 3)];
        millis = digits.parse::<i64>().map_err(|_| bad())? * 10_i64.pow(3 - digits.len() as u32);
        i = end;
    }
    let offset_minutes = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let total = h * 60 + m;
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return Err(bad()),
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Ok(secs * 1000 + millis)
}

/// Sends librdkafka's log lines and error callbacks to `tracing` at debug level, so a
/// failing command prints one line, not librdkafka's retries (`AGENTBUS_LOG=debug` shows them).
#[derive(Debug, Clone, Copy)]
struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        tracing::debug!(target: "librdkafka", ?level, "{fac} {log_message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", "{error}: {reason}");
    }
}

impl ConsumerContext for Quiet {}

type Client = BaseConsumer<Quiet>;

#[derive(Debug, Clone)]
struct Cluster {
    bootstrap: String,
    timeout: Duration,
}

impl Cluster {
    fn config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap)
            .set("client.id", "agentbus-groups");
        c
    }

    /// A consumer that never subscribes: with `group` set it can fetch and commit that
    /// group's offsets without joining it.
    fn consumer(&self, group: Option<&str>) -> Result<Client, GroupsError> {
        let mut c = self.config();
        c.set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("allow.auto.create.topics", "false");
        if let Some(g) = group {
            c.set("group.id", g);
        }
        c.create_with_context(Quiet)
            .map_err(kafka("cannot create a Kafka client"))
    }
}

/// What DescribeGroups said about a group.
#[derive(Debug, Clone)]
struct GroupSnapshot {
    name: String,
    protocol_type: String,
    state: String,
    members: Vec<MemberSnapshot>,
}

#[derive(Debug, Clone)]
struct MemberSnapshot {
    id: String,
    client_id: String,
    host: String,
    assignment: Vec<(String, Vec<i32>)>,
}

impl GroupSnapshot {
    /// Kafka lists offsets-only groups as `Empty`; a `Dead` group is gone.
    fn exists(&self) -> bool {
        !self.state.eq_ignore_ascii_case("dead")
    }

    fn is_active(&self) -> bool {
        let inactive = self.state.eq_ignore_ascii_case("empty") || !self.exists();
        !self.members.is_empty() || !inactive
    }
}

fn snapshot(info: &rdkafka::groups::GroupInfo) -> GroupSnapshot {
    let consumer_protocol = matches!(info.protocol_type(), "consumer" | "");
    let members = info
        .members()
        .iter()
        .map(|m| {
            let assignment = match m.assignment() {
                Some(bytes) if consumer_protocol => decode_assignment(bytes).unwrap_or_else(|e| {
                    tracing::warn!(member = m.id(), "{e}");
                    Vec::new()
                }),
                _ => Vec::new(),
            };
            MemberSnapshot {
                id: m.id().to_string(),
                client_id: m.client_id().to_string(),
                host: m.client_host().to_string(),
                assignment,
            }
        })
        .collect();
    GroupSnapshot {
        name: info.name().to_string(),
        protocol_type: info.protocol_type().to_string(),
        state: info.state().to_string(),
        members,
    }
}

fn list_groups(cluster: &Cluster, client: &Client) -> Result<Vec<GroupSnapshot>, GroupsError> {
    let list = client
        .fetch_group_list(None, cluster.timeout)
        .map_err(kafka(format!(
            "cannot list consumer groups from {}",
            cluster.bootstrap
        )))?;
    let mut groups: Vec<GroupSnapshot> = list.groups().iter().map(snapshot).collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(groups)
}

fn find_group(
    cluster: &Cluster,
    client: &Client,
    group: &str,
) -> Result<Option<GroupSnapshot>, GroupsError> {
    let list = client
        .fetch_group_list(Some(group), cluster.timeout)
        .map_err(kafka(format!(
            "cannot describe consumer group '{group}' at {}",
            cluster.bootstrap
        )))?;
    Ok(list
        .groups()
        .iter()
        .find(|g| g.name() == group)
        .map(snapshot)
        .filter(GroupSnapshot::exists))
}

/// Topic → partition ids, for every non-internal topic in the cluster.
fn topics(cluster: &Cluster, client: &Client) -> Result<BTreeMap<String, Vec<i32>>, GroupsError> {
    let md = client
        .fetch_metadata(None, cluster.timeout)
        .map_err(kafka(format!(
            "cannot fetch metadata from {}",
            cluster.bootstrap
        )))?;
    Ok(md
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .filter(|t| !matches!(t.name(), "__consumer_offsets" | "__transaction_state"))
        .map(|t| {
            let mut ps: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
            ps.sort_unstable();
            (t.name().to_string(), ps)
        })
        .collect())
}

type Tp = (String, i32);

/// The group's committed offset for each of `partitions` that has one.
fn committed(
    cluster: &Cluster,
    client: &Client,
    group: &str,
    partitions: &BTreeSet<Tp>,
) -> Result<BTreeMap<Tp, i64>, GroupsError> {
    if partitions.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut tpl = TopicPartitionList::new();
    for (t, p) in partitions {
        tpl.add_partition(t, *p);
    }
    let tpl = client
        .committed_offsets(tpl, cluster.timeout)
        .map_err(kafka(format!(
            "cannot fetch the committed offsets of group '{group}'"
        )))?;
    let mut out = BTreeMap::new();
    for e in tpl.elements() {
        e.error().map_err(kafka(format!(
            "cannot fetch the committed offset of {}-{} for group '{group}'",
            e.topic(),
            e.partition()
        )))?;
        if let Offset::Offset(o) = e.offset() {
            if o >= 0 {
                out.insert((e.topic().to_string(), e.partition()), o);
            }
        }
    }
    Ok(out)
}

fn watermarks(cluster: &Cluster, client: &Client, tp: &Tp) -> Result<(i64, i64), GroupsError> {
    client
        .fetch_watermarks(&tp.0, tp.1, cluster.timeout)
        .map_err(kafka(format!(
            "cannot fetch the offsets of {}-{}",
            tp.0, tp.1
        )))
}

/// One line of `describe`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DescribeRow {
    topic: Option<String>,
    partition: Option<i32>,
    current_offset: Option<i64>,
    log_end_offset: Option<i64>,
    lag: Option<i64>,
    consumer_id: Option<String>,
    host: Option<String>,
    client_id: Option<String>,
}

#[derive(Debug)]
struct Description {
    group: String,
    state: Option<String>,
    members: usize,
    rows: Vec<DescribeRow>,
}

impl Description {
    fn total_lag(&self) -> i64 {
        self.rows.iter().filter_map(|r| r.lag).sum()
    }
}

fn describe(cluster: &Cluster, group: &str) -> Result<Description, GroupsError> {
    let client = cluster.consumer(Some(group))?;
    let info = find_group(cluster, &client, group)?;
    let all = topics(cluster, &client)?;

    // Partitions the members own, per their assignments.
    let mut owners: BTreeMap<Tp, &MemberSnapshot> = BTreeMap::new();
    let members: &[MemberSnapshot] = info.as_ref().map_or(&[][..], |g| g.members.as_slice());
    for m in members {
        for (t, ps) in &m.assignment {
            for p in ps {
                owners.insert((t.clone(), *p), m);
            }
        }
    }
    // Committed offsets: ask for every partition in the cluster (OffsetFetch for "all
    // topics" is not exposed by librdkafka) plus the assigned ones.
    let mut ask: BTreeSet<Tp> = all
        .iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
        .collect();
    ask.extend(owners.keys().cloned());
    let offsets = committed(cluster, &client, group, &ask)?;

    if info.is_none() && offsets.is_empty() {
        return Err(GroupsError::GroupNotFound(group.to_string()));
    }

    let shown: BTreeSet<&Tp> = offsets.keys().chain(owners.keys()).collect();
    let mut rows = Vec::with_capacity(shown.len());
    for tp in shown {
        let end = if all.get(&tp.0).is_some_and(|ps| ps.contains(&tp.1)) {
            Some(watermarks(cluster, &client, tp)?.1)
        } else {
            None
        };
        let current = offsets.get(tp).copied();
        let owner = owners.get(tp);
        rows.push(DescribeRow {
            topic: Some(tp.0.clone()),
            partition: Some(tp.1),
            current_offset: current,
            log_end_offset: end,
            lag: current.zip(end).map(|(c, e)| e - c),
            consumer_id: owner.map(|m| m.id.clone()),
            host: owner.map(|m| m.host.clone()),
            client_id: owner.map(|m| m.client_id.clone()),
        });
    }
    for m in members
        .iter()
        .filter(|m| m.assignment.iter().all(|(_, ps)| ps.is_empty()))
    {
        rows.push(DescribeRow {
            topic: None,
            partition: None,
            current_offset: None,
            log_end_offset: None,
            lag: None,
            consumer_id: Some(m.id.clone()),
            host: Some(m.host.clone()),
            client_id: Some(m.client_id.clone()),
        });
    }
    Ok(Description {
        group: group.to_string(),
        state: info.as_ref().map(|g| g.state.clone()),
        members: members.len(),
        rows,
    })
}

/// How to compute the new offsets.
#[derive(Debug, Clone, Copy)]
enum Target {
    Earliest,
    Latest,
    Datetime(i64),
    Offset(i64),
    ShiftBy(i64),
}

impl Target {
    fn from_args(to: &ResetTo) -> Self {
        if to.to_earliest {
            Self::Earliest
        } else if let Some(ts) = to.to_datetime {
            Self::Datetime(ts)
        } else if let Some(o) = to.to_offset {
            Self::Offset(o)
        } else if let Some(n) = to.shift_by {
            Self::ShiftBy(n)
        } else {
            // `--to-latest`; clap requires exactly one of these flags.
            debug_assert!(to.to_latest);
            Self::Latest
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PlanRow {
    topic: String,
    partition: i32,
    current_offset: Option<i64>,
    new_offset: i64,
}

fn plan_reset(
    cluster: &Cluster,
    client: &Client,
    group: &str,
    specs: &[TopicSpec],
    target: Target,
) -> Result<Vec<PlanRow>, GroupsError> {
    let all = topics(cluster, client)?;
    let mut tps: BTreeSet<Tp> = BTreeSet::new();
    for spec in specs {
        let existing = all
            .get(&spec.topic)
            .filter(|ps| !ps.is_empty())
            .ok_or_else(|| GroupsError::UnknownTopic(spec.topic.clone()))?;
        match &spec.partitions {
            None => tps.extend(existing.iter().map(|p| (spec.topic.clone(), *p))),
            Some(ps) => {
                for p in ps {
                    if !existing.contains(p) {
                        return Err(GroupsError::UnknownPartition {
                            topic: spec.topic.clone(),
                            partition: *p,
                        });
                    }
                    tps.insert((spec.topic.clone(), *p));
                }
            }
        }
    }
    let current = committed(cluster, client, group, &tps)?;
    let by_time: BTreeMap<Tp, Offset> = match target {
        Target::Datetime(ts) => {
            let mut tpl = TopicPartitionList::new();
            for (t, p) in &tps {
                tpl.add_partition_offset(t, *p, Offset::Offset(ts))
                    .map_err(kafka("cannot build the offset lookup"))?;
            }
            let found = client
                .offsets_for_times(tpl, cluster.timeout)
                .map_err(kafka("cannot look up offsets by time"))?;
            let mut out = BTreeMap::new();
            for e in found.elements() {
                e.error().map_err(kafka(format!(
                    "cannot look up the offset by time of {}-{}",
                    e.topic(),
                    e.partition()
                )))?;
                out.insert((e.topic().to_string(), e.partition()), e.offset());
            }
            out
        }
        _ => BTreeMap::new(),
    };
    let mut rows = Vec::with_capacity(tps.len());
    for tp in tps {
        let (low, high) = watermarks(cluster, client, &tp)?;
        let clamp = |o: i64| o.clamp(low, high.max(low));
        let cur = current.get(&tp).copied();
        let new_offset = match target {
            Target::Earliest => low,
            Target::Latest => high,
            Target::Offset(o) => clamp(o),
            Target::ShiftBy(n) => {
                let c = cur.ok_or_else(|| GroupsError::NoCommittedOffset {
                    topic: tp.0.clone(),
                    partition: tp.1,
                })?;
                clamp(c.saturating_add(n))
            }
            // No record at or after the time: the log end, as Kafka's tool does.
            Target::Datetime(_) => match by_time.get(&tp) {
                Some(Offset::Offset(o)) if *o >= 0 => clamp(*o),
                _ => high,
            },
        };
        rows.push(PlanRow {
            topic: tp.0,
            partition: tp.1,
            current_offset: cur,
            new_offset,
        });
    }
    Ok(rows)
}

/// Commits `plan` as `group`'s offsets and reads them back. librdkafka's synchronous commit
/// takes no timeout, so it runs on its own thread and is abandoned after the deadline.
fn commit_plan(cluster: &Cluster, group: &str, plan: &[PlanRow]) -> Result<(), GroupsError> {
    let mut tpl = TopicPartitionList::new();
    for r in plan {
        tpl.add_partition_offset(&r.topic, r.partition, Offset::Offset(r.new_offset))
            .map_err(kafka("cannot build the offset commit"))?;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let worker_cluster = cluster.clone();
    let worker_group = group.to_string();
    std::thread::Builder::new()
        .name("groups-commit".into())
        .spawn(move || {
            let _ = tx.send(commit_and_read_back(&worker_cluster, &worker_group, &tpl));
        })
        .map_err(|e| GroupsError::Internal(format!("cannot start a thread: {e}")))?;
    let deadline = cluster.timeout * 2 + Duration::from_secs(1);
    let now = rx
        .recv_timeout(deadline)
        .map_err(|_| GroupsError::Timeout {
            what: format!("committing the offsets of group '{group}'"),
            ms: deadline.as_millis() as u64,
        })??;
    for r in plan {
        let found = now.get(&(r.topic.clone(), r.partition)).copied();
        if found != Some(r.new_offset) {
            return Err(GroupsError::CommitNotApplied {
                topic: r.topic.clone(),
                partition: r.partition,
                wanted: r.new_offset,
                found,
            });
        }
    }
    Ok(())
}

fn commit_and_read_back(
    cluster: &Cluster,
    group: &str,
    tpl: &TopicPartitionList,
) -> Result<BTreeMap<Tp, i64>, GroupsError> {
    let client = cluster.consumer(Some(group))?;
    client.commit(tpl, CommitMode::Sync).map_err(|e| {
        // What Kafka answers a member-less commit to a group that (meanwhile) has members.
        match e.rdkafka_error_code() {
            Some(
                RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::RebalanceInProgress,
            ) => GroupsError::Kafka {
                what: format!(
                    "cannot commit the offsets of group '{group}': it has active members; \
                     stop its consumers first"
                ),
                source: e,
            },
            _ => kafka(format!("cannot commit the offsets of group '{group}'"))(e),
        }
    })?;
    for e in tpl.elements() {
        e.error().map_err(kafka(format!(
            "cannot commit the offset of {}-{} for group '{group}'",
            e.topic(),
            e.partition()
        )))?;
    }
    let asked: BTreeSet<Tp> = tpl
        .elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect();
    committed(cluster, &client, group, &asked)
}

fn reset(cluster: &Cluster, args: &ResetArgs, output: Output) -> anyhow::Result<()> {
    let group = args.group.as_str();
    let client = cluster.consumer(Some(group))?;
    let target = Target::from_args(&args.to);
    let execute = args.execute && !args.dry_run;
    if execute {
        // Kafka's own tool refuses up front too; the commit would fail anyway.
        if let Some(g) = find_group(cluster, &client, group)? {
            if g.is_active() {
                return Err(GroupsError::GroupActive {
                    group: group.to_string(),
                    state: g.state,
                    members: g.members.len(),
                }
                .into());
            }
        }
    }
    let plan = plan_reset(cluster, &client, group, &args.topics, target)?;
    if execute {
        commit_plan(cluster, group, &plan)?;
    }
    match output {
        Output::Text => {
            let rows: Vec<Vec<String>> = plan
                .iter()
                .map(|r| {
                    vec![
                        group.to_string(),
                        r.topic.clone(),
                        r.partition.to_string(),
                        dash(r.current_offset),
                        r.new_offset.to_string(),
                    ]
                })
                .collect();
            emit(&table(
                &[
                    "GROUP",
                    "TOPIC",
                    "PARTITION",
                    "CURRENT-OFFSET",
                    "NEW-OFFSET",
                ],
                &rows,
            ))?;
            if execute {
                eprintln!(
                    "committed new offsets for {} partition(s) of group '{group}'",
                    plan.len()
                );
            } else {
                eprintln!("dry run: nothing was committed; add --execute to apply this plan");
            }
        }
        Output::Json => {
            let rows: Vec<String> = plan
                .iter()
                .map(|r| {
                    format!(
                        "{{\"group\":{},\"topic\":{},\"partition\":{},\"current_offset\":{},\"new_offset\":{}}}",
                        json_str(group),
                        json_str(&r.topic),
                        r.partition,
                        json_num(r.current_offset),
                        r.new_offset
                    )
                })
                .collect();
            emit(&format!(
                "{{\"group\":{},\"executed\":{},\"partitions\":[{}]}}\n",
                json_str(group),
                execute,
                rows.join(",")
            ))?;
        }
    }
    Ok(())
}

async fn delete(cluster: &Cluster, group: &str, output: Output) -> anyhow::Result<()> {
    let admin: AdminClient<Quiet> = cluster
        .config()
        .create_with_context(Quiet)
        .map_err(kafka("cannot create a Kafka admin client"))?;
    let opts = AdminOptions::new()
        .request_timeout(Some(cluster.timeout))
        .operation_timeout(Some(cluster.timeout));
    let deadline = cluster.timeout + Duration::from_secs(1);
    let results = tokio::time::timeout(deadline, admin.delete_groups(&[group], &opts))
        .await
        .map_err(|_| GroupsError::Timeout {
            what: format!("deleting consumer group '{group}'"),
            ms: deadline.as_millis() as u64,
        })?
        .map_err(kafka(format!(
            "cannot delete consumer group '{group}' at {}",
            cluster.bootstrap
        )))?;
    for r in results {
        match r {
            Ok(name) => match output {
                Output::Text => emit(&format!("deleted consumer group '{name}'\n"))?,
                Output::Json => emit(&format!(
                    "{{\"group\":{},\"deleted\":true}}\n",
                    json_str(&name)
                ))?,
            },
            Err((name, code)) => {
                return Err(match code {
                    RDKafkaErrorCode::NonEmptyGroup => GroupsError::GroupNotEmpty(name),
                    RDKafkaErrorCode::GroupIdNotFound => GroupsError::GroupNotFound(name),
                    code => GroupsError::Kafka {
                        what: format!(
                            "cannot delete consumer group '{name}' at {}",
                            cluster.bootstrap
                        ),
                        source: KafkaError::AdminOp(code),
                    },
                }
                .into())
            }
        }
    }
    Ok(())
}

fn list(cluster: &Cluster, output: Output) -> anyhow::Result<()> {
    let client = cluster.consumer(None)?;
    let groups = list_groups(cluster, &client)?;
    match output {
        Output::Text => {
            let rows: Vec<Vec<String>> = groups
                .iter()
                .map(|g| vec![g.name.clone(), or_dash(&g.protocol_type), or_dash(&g.state)])
                .collect();
            emit(&table(&["GROUP", "PROTOCOL-TYPE", "STATE"], &rows))
        }
        Output::Json => {
            let items: Vec<String> = groups
                .iter()
                .map(|g| {
                    format!(
                        "{{\"group\":{},\"protocol_type\":{},\"state\":{},\"members\":{}}}",
                        json_str(&g.name),
                        json_str(&g.protocol_type),
                        json_str(&g.state),
                        g.members.len()
                    )
                })
                .collect();
            emit(&format!("[{}]\n", items.join(",")))
        }
    }
}

fn print_description(d: &Description, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Text => {
            if d.members == 0 {
                eprintln!("Consumer group '{}' has no active members.", d.group);
            }
            let rows: Vec<Vec<String>> = d
                .rows
                .iter()
                .map(|r| {
                    vec![
                        d.group.clone(),
                        r.topic.clone().unwrap_or_else(|| "-".into()),
                        dash(r.partition),
                        dash(r.current_offset),
                        dash(r.log_end_offset),
                        dash(r.lag),
                        r.consumer_id.clone().unwrap_or_else(|| "-".into()),
                        r.host.clone().unwrap_or_else(|| "-".into()),
                        r.client_id.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            emit(&table(
                &[
                    "GROUP",
                    "TOPIC",
                    "PARTITION",
                    "CURRENT-OFFSET",
                    "LOG-END-OFFSET",
                    "LAG",
                    "CONSUMER-ID",
                    "HOST",
                    "CLIENT-ID",
                ],
                &rows,
            ))
        }
        Output::Json => {
            let rows: Vec<String> = d
                .rows
                .iter()
                .map(|r| {
                    format!(
                        "{{\"group\":{},\"topic\":{},\"partition\":{},\"current_offset\":{},\
                         \"log_end_offset\":{},\"lag\":{},\"consumer_id\":{},\"host\":{},\
                         \"client_id\":{}}}",
                        json_str(&d.group),
                        json_opt_str(r.topic.as_deref()),
                        json_num(r.partition),
                        json_num(r.current_offset),
                        json_num(r.log_end_offset),
                        json_num(r.lag),
                        json_opt_str(r.consumer_id.as_deref()),
                        json_opt_str(r.host.as_deref()),
                        json_opt_str(r.client_id.as_deref()),
                    )
                })
                .collect();
            emit(&format!(
                "{{\"group\":{},\"state\":{},\"members\":{},\"total_lag\":{},\"partitions\":[{}]}}\n",
                json_str(&d.group),
                json_opt_str(d.state.as_deref()),
                d.members,
                d.total_lag(),
                rows.join(",")
            ))
        }
    }
}

fn dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

/// Left-aligned columns separated by two spaces, header first.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    table_line(&mut out, &widths, header.iter().copied());
    for row in rows {
        table_line(&mut out, &widths, row.iter().map(String::as_str));
    }
    out
}

fn table_line<'a>(out: &mut String, widths: &[usize], cells: impl Iterator<Item = &'a str>) {
    let start = out.len();
    for (i, (cell, w)) in cells.zip(widths).enumerate() {
        if i > 0 {
            out.push_str("  ");
        }
        out.push_str(cell);
        let pad = w.saturating_sub(cell.chars().count());
        out.extend(std::iter::repeat_n(' ', pad));
    }
    let end = start + out[start..].trim_end().len();
    out.truncate(end);
    out.push('\n');
}

fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn json_opt_str(s: Option<&str>) -> String {
    s.map_or_else(|| "null".to_string(), json_str)
}

fn json_num<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "null".to_string(), |v| v.to_string())
}

use crate::emit;

pub(crate) async fn run(args: GroupsArgs) -> anyhow::Result<()> {
    let cluster = Cluster {
        timeout: args.cluster.timeout(),
        bootstrap: args.cluster.bootstrap_server,
    };
    let output = args.output;
    match args.action {
        Action::Delete { group } => delete(&cluster, &group, output).await,
        action => tokio::task::spawn_blocking(move || match action {
            Action::List => list(&cluster, output),
            Action::Describe { group } => print_description(&describe(&cluster, &group)?, output),
            Action::ResetOffsets(reset_args) => reset(&cluster, &reset_args, output),
            Action::Delete { .. } => Ok(()),
        })
        .await
        .context("the groups command failed unexpectedly")?,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(version: i16, topics: &[(&str, &[i32])], user_data: Option<&[u8]>) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&version.to_be_bytes());
        b.extend_from_slice(&(topics.len() as i32).to_be_bytes());
        for (t, ps) in topics {
            b.extend_from_slice(&(t.len() as i16).to_be_bytes());
            b.extend_from_slice(t.as_bytes());
            b.extend_from_slice(&(ps.len() as i32).to_be_bytes());
            for p in *ps {
                b.extend_from_slice(&p.to_be_bytes());
            }
        }
        match user_data {
            None => b.extend_from_slice(&(-1_i32).to_be_bytes()),
            Some(d) => {
                b.extend_from_slice(&(d.len() as i32).to_be_bytes());
                b.extend_from_slice(d);
            }
        }
        b
    }

    #[test]
    fn decodes_assignments() {
        let b = encode(0, &[("orders", &[0, 2]), ("audit", &[1])], None);
        assert_eq!(
            decode_assignment(&b).unwrap(),
            vec![
                ("orders".to_string(), vec![0, 2]),
                ("audit".to_string(), vec![1])
            ]
        );
        let b = encode(3, &[("t", &[5])], Some(b"sticky"));
        assert_eq!(
            decode_assignment(&b).unwrap(),
            vec![("t".to_string(), vec![5])]
        );
        // Empty assignment bytes, an empty topic list, and a missing user-data field.
        assert!(decode_assignment(&[]).unwrap().is_empty());
        assert!(decode_assignment(&encode(1, &[], None)).unwrap().is_empty());
        let mut b = encode(0, &[("t", &[0])], None);
        b.truncate(b.len() - 4);
        assert_eq!(
            decode_assignment(&b).unwrap(),
            vec![("t".to_string(), vec![0])]
        );
    }

    #[test]
    fn rejects_malformed_assignments() {
        let b = encode(0, &[("orders", &[0, 2])], Some(b"xyz"));
        // Any cut fails except right before the (optional) user data.
        let before_user_data = b.len() - 4 - 3;
        for cut in (1..b.len()).filter(|c| *c != before_user_data) {
            assert!(decode_assignment(&b[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode_assignment(&b[..before_user_data]).is_ok());
        // A huge array count must not allocate or loop.
        let mut b = 0_i16.to_be_bytes().to_vec();
        b.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_assignment(&b).is_err());
        let mut b = 0_i16.to_be_bytes().to_vec();
        b.extend_from_slice(&(-5_i32).to_be_bytes());
        assert!(decode_assignment(&b).is_err());
    }

    #[test]
    fn parses_rfc3339() {
        assert_eq!(parse_rfc3339_millis("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339_millis("2024-02-29T12:34:56.789Z"),
            Ok(1_709_210_096_789)
        );
        assert_eq!(
            parse_rfc3339_millis("2024-02-29T14:34:56.7+02:00"),
            Ok(1_709_210_096_700)
        );
        assert_eq!(
            parse_rfc3339_millis("2024-02-29t07:04:56.123456-05:30"),
            Ok(1_709_210_096_123)
        );
        assert_eq!(parse_rfc3339_millis("1969-12-31T23:59:59Z"), Ok(-1000));
        for bad in [
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+0200",
            "2024-01-01T00:00:00Zjunk",
            "yesterday",
        ] {
            assert!(parse_rfc3339_millis(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_topic_specs() {
        let s: TopicSpec = "orders".parse().unwrap();
        assert_eq!((s.topic.as_str(), s.partitions), ("orders", None));
        let s: TopicSpec = "orders:0,2".parse().unwrap();
        assert_eq!(s.partitions, Some(vec![0, 2]));
        assert!("orders:x".parse::<TopicSpec>().is_err());
        assert!(":1".parse::<TopicSpec>().is_err());
    }

    #[test]
    fn formats_tables_and_json() {
        let t = table(
            &["A", "BB"],
            &[vec!["xyz".into(), "1".into()], vec!["q".into(), "-".into()]],
        );
        assert_eq!(t, "A    BB\nxyz  1\nq    -\n");
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }

    #[test]
    fn active_groups_are_detected() {
        let g = |state: &str, members: usize| GroupSnapshot {
            name: "g".into(),
            protocol_type: "consumer".into(),
            state: state.into(),
            members: vec![
                MemberSnapshot {
                    id: "m".into(),
                    client_id: "c".into(),
                    host: "/127.0.0.1".into(),
                    assignment: Vec::new(),
                };
                members
            ],
        };
        assert!(!g("Empty", 0).is_active());
        assert!(!g("Dead", 0).is_active());
        assert!(g("Stable", 1).is_active());
        assert!(g("PreparingRebalance", 0).is_active());
        assert!(!g("Dead", 0).exists());
    }
}

//! What went wrong, in terms a user of the command can act on.

use super::*;

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

pub(super) fn error_code(e: &KafkaError) -> Option<RDKafkaErrorCode> {
    match e {
        KafkaError::AdminOp(code) => Some(*code),
        e => e.rdkafka_error_code(),
    }
}

/// The Kafka error is part of the message (see `Display`), so it is not also a `source`.
impl std::error::Error for GroupsError {}

pub(super) fn kafka(what: impl Into<String>) -> impl FnOnce(KafkaError) -> GroupsError {
    let what = what.into();
    move |source| GroupsError::Kafka { what, source }
}

//! Why a topic operation failed, as the Kafka error code and message a client gets, and
//! Kafka's rules for topic names.

use crate::log::LogError;
use crate::meta::MetaError;
use crate::topic_config::TopicConfigError;
use kafka_protocol::error::ResponseError;

/// Why a topic operation failed; each maps to a Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("Topic '{0}' already exists.")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("Number of partitions must be larger than 0 (got {0}).")]
    InvalidPartitions(i32),
    #[error("{0}")]
    PartitionsNotIncreased(String),
    #[error("Replication factor must be larger than 0, or -1 to use the default value.")]
    InvalidReplicationFactor(i16),
    #[error("Unable to replicate the partition {0} time(s): The target replication factor of {0} cannot be reached because only {1} broker(s) are registered.")]
    ReplicationFactorAboveBrokers(i16, usize),
    #[error(transparent)]
    InvalidConfig(#[from] TopicConfigError),
    #[error("This server does not host this topic-partition.")]
    Unknown,
    #[error("metadata store: {0}")]
    Meta(#[from] MetaError),
    #[error("log: {0}")]
    Log(#[from] LogError),
}

impl TopicError {
    pub fn code(&self) -> ResponseError {
        match self {
            TopicError::AlreadyExists(_) => ResponseError::TopicAlreadyExists,
            TopicError::InvalidName(_) => ResponseError::InvalidTopicException,
            TopicError::InvalidPartitions(_) | TopicError::PartitionsNotIncreased(_) => {
                ResponseError::InvalidPartitions
            }
            TopicError::InvalidReplicationFactor(_)
            | TopicError::ReplicationFactorAboveBrokers(..) => {
                ResponseError::InvalidReplicationFactor
            }
            TopicError::InvalidConfig(_) => ResponseError::InvalidConfig,
            TopicError::Unknown => ResponseError::UnknownTopicOrPartition,
            TopicError::Meta(_) | TopicError::Log(_) => ResponseError::KafkaStorageError,
        }
    }
}

/// Checks a topic name as Kafka does.
pub(crate) fn validate_topic_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::InvalidName(
            "Topic name is illegal, it can't be empty".into(),
        ));
    }
    if name == "." || name == ".." {
        return Err(TopicError::InvalidName(format!(
            "Topic name cannot be \".\" or \"..\" (got {name})"
        )));
    }
    if name.len() > 249 {
        return Err(TopicError::InvalidName(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        )));
    }
    if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-')
    {
        return Err(TopicError::InvalidName(format!(
            "Topic name {name} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

//! Kafka releases agentbus can present itself as (`--as-kafka`): what each advertised in
//! ApiVersions, and what changed between them.

/// One Kafka release.
#[derive(Debug)]
pub(crate) struct Release {
    /// `2.8`, `3.9`, `4.0`, …
    pub(crate) name: &'static str,
    /// (api key, min, max) as the release's brokers advertise them.
    pub(crate) apis: &'static [(i16, i16, i16)],
    /// ApiVersions v3+ supported features: (name, min, max).
    pub(crate) features: &'static [(&'static str, i16, i16)],
    /// ApiVersions v3+ finalized features of a new cluster of that release: (name, level).
    pub(crate) finalized: &'static [(&'static str, i16)],
    /// What a client sees change against the release before it, for the README.
    pub(crate) changes: &'static str,
}

/// The release named `name`, if agentbus can present it.
pub(crate) fn release(name: &str) -> Option<&'static Release> {
    RELEASES.iter().find(|r| r.name == name)
}

/// Every release, oldest first.
pub(crate) fn all() -> &'static [Release] {
    RELEASES
}

/// Every release's name, oldest first.
pub(crate) fn names() -> Vec<&'static str> {
    RELEASES.iter().map(|r| r.name).collect()
}

// The ranges below are those of the APIs agentbus implements (the others are never
// offered, so not listed), from the message definitions' history in Kafka's
// `clients/src/main/resources/common/message/*.json` and the KIPs that bumped them.
// Features: what a new cluster of that release reports (2.8 ran ZooKeeper: none).

/// Keys, for reading the tables.
mod key {
    pub(super) const PRODUCE: i16 = 0;
    pub(super) const FETCH: i16 = 1;
    pub(super) const LIST_OFFSETS: i16 = 2;
    pub(super) const METADATA: i16 = 3;
    pub(super) const OFFSET_COMMIT: i16 = 8;
    pub(super) const OFFSET_FETCH: i16 = 9;
    pub(super) const FIND_COORDINATOR: i16 = 10;
    pub(super) const JOIN_GROUP: i16 = 11;
    pub(super) const HEARTBEAT: i16 = 12;
    pub(super) const LEAVE_GROUP: i16 = 13;
    pub(super) const SYNC_GROUP: i16 = 14;
    pub(super) const DESCRIBE_GROUPS: i16 = 15;
    pub(super) const LIST_GROUPS: i16 = 16;
    pub(super) const API_VERSIONS: i16 = 18;
    pub(super) const CREATE_TOPICS: i16 = 19;
    pub(super) const DELETE_TOPICS: i16 = 20;
    pub(super) const DELETE_RECORDS: i16 = 21;
    pub(super) const INIT_PRODUCER_ID: i16 = 22;
    pub(super) const OFFSET_FOR_LEADER_EPOCH: i16 = 23;
    pub(super) const ADD_PARTITIONS_TO_TXN: i16 = 24;
    pub(super) const ADD_OFFSETS_TO_TXN: i16 = 25;
    pub(super) const END_TXN: i16 = 26;
    pub(super) const TXN_OFFSET_COMMIT: i16 = 28;
    pub(super) const DESCRIBE_CONFIGS: i16 = 32;
    pub(super) const ALTER_CONFIGS: i16 = 33;
    pub(super) const DESCRIBE_LOG_DIRS: i16 = 35;
    pub(super) const CREATE_PARTITIONS: i16 = 37;
    pub(super) const DELETE_GROUPS: i16 = 42;
    pub(super) const INCREMENTAL_ALTER_CONFIGS: i16 = 44;
    pub(super) const OFFSET_DELETE: i16 = 47;
    pub(super) const DESCRIBE_CLUSTER: i16 = 60;
    pub(super) const DESCRIBE_PRODUCERS: i16 = 61;
    pub(super) const DESCRIBE_TRANSACTIONS: i16 = 65;
    pub(super) const LIST_TRANSACTIONS: i16 = 66;
    pub(super) const CONSUMER_GROUP_HEARTBEAT: i16 = 68;
    pub(super) const CONSUMER_GROUP_DESCRIBE: i16 = 69;
    pub(super) const SASL_HANDSHAKE: i16 = 17;
    pub(super) const SASL_AUTHENTICATE: i16 = 36;
    pub(super) const DESCRIBE_USER_SCRAM_CREDENTIALS: i16 = 50;
    pub(super) const ALTER_USER_SCRAM_CREDENTIALS: i16 = 51;
    pub(super) const DESCRIBE_ACLS: i16 = 29;
    pub(super) const CREATE_ACLS: i16 = 30;
    pub(super) const DELETE_ACLS: i16 = 31;
}
use key::*;

const KAFKA_2_8: &[(i16, i16, i16)] = &[
    (PRODUCE, 0, 9),
    (FETCH, 0, 12),
    (LIST_OFFSETS, 0, 6),
    (METADATA, 0, 11),
    (OFFSET_COMMIT, 0, 8),
    (OFFSET_FETCH, 0, 7),
    (FIND_COORDINATOR, 0, 3),
    (JOIN_GROUP, 0, 7),
    (HEARTBEAT, 0, 4),
    (LEAVE_GROUP, 0, 4),
    (SYNC_GROUP, 0, 5),
    (DESCRIBE_GROUPS, 0, 5),
    (LIST_GROUPS, 0, 4),
    (API_VERSIONS, 0, 3),
    (CREATE_TOPICS, 0, 6),
    (DELETE_TOPICS, 0, 6),
    (DELETE_RECORDS, 0, 2),
    (INIT_PRODUCER_ID, 0, 4),
    (OFFSET_FOR_LEADER_EPOCH, 0, 4),
    (ADD_PARTITIONS_TO_TXN, 0, 3),
    (ADD_OFFSETS_TO_TXN, 0, 3),
    (END_TXN, 0, 3),
    (TXN_OFFSET_COMMIT, 0, 3),
    (DESCRIBE_CONFIGS, 0, 4),
    (ALTER_CONFIGS, 0, 2),
    (DESCRIBE_LOG_DIRS, 0, 2),
    (CREATE_PARTITIONS, 0, 3),
    (DELETE_GROUPS, 0, 2),
    (INCREMENTAL_ALTER_CONFIGS, 0, 1),
    (OFFSET_DELETE, 0, 0),
    (DESCRIBE_CLUSTER, 0, 0),
    // The same in every release here (SaslAuthenticate v2 from 2.5, KIP-554 from 2.7,
    // the ACL APIs' v2 (flexible) from 2.4 and v3 (USER resources) from 2.8).
    (SASL_HANDSHAKE, 0, 1),
    (SASL_AUTHENTICATE, 0, 2),
    (DESCRIBE_USER_SCRAM_CREDENTIALS, 0, 0),
    (ALTER_USER_SCRAM_CREDENTIALS, 0, 0),
    (DESCRIBE_ACLS, 0, 3),
    (CREATE_ACLS, 0, 3),
    (DELETE_ACLS, 0, 3),
];

const KAFKA_3_6: &[(i16, i16, i16)] = &[
    (PRODUCE, 0, 9),
    (FETCH, 0, 15),
    (LIST_OFFSETS, 0, 8),
    (METADATA, 0, 12),
    (OFFSET_COMMIT, 0, 8),
    (OFFSET_FETCH, 0, 8),
    (FIND_COORDINATOR, 0, 4),
    (JOIN_GROUP, 0, 9),
    (HEARTBEAT, 0, 4),
    (LEAVE_GROUP, 0, 5),
    (SYNC_GROUP, 0, 5),
    (DESCRIBE_GROUPS, 0, 5),
    (LIST_GROUPS, 0, 4),
    (API_VERSIONS, 0, 3),
    (CREATE_TOPICS, 0, 7),
    (DELETE_TOPICS, 0, 6),
    (DELETE_RECORDS, 0, 2),
    (INIT_PRODUCER_ID, 0, 4),
    (OFFSET_FOR_LEADER_EPOCH, 0, 4),
    (ADD_PARTITIONS_TO_TXN, 0, 4),
    (ADD_OFFSETS_TO_TXN, 0, 3),
    (END_TXN, 0, 3),
    (TXN_OFFSET_COMMIT, 0, 3),
    (DESCRIBE_CONFIGS, 0, 4),
    (ALTER_CONFIGS, 0, 2),
    (DESCRIBE_LOG_DIRS, 0, 4),
    (CREATE_PARTITIONS, 0, 3),
    (DELETE_GROUPS, 0, 2),
    (INCREMENTAL_ALTER_CONFIGS, 0, 1),
    (OFFSET_DELETE, 0, 0),
    (DESCRIBE_CLUSTER, 0, 0),
    (DESCRIBE_PRODUCERS, 0, 0),
    (DESCRIBE_TRANSACTIONS, 0, 0),
    (LIST_TRANSACTIONS, 0, 0),
    // The same in every release here (SaslAuthenticate v2 from 2.5, KIP-554 from 2.7,
    // the ACL APIs' v2 (flexible) from 2.4 and v3 (USER resources) from 2.8).
    (SASL_HANDSHAKE, 0, 1),
    (SASL_AUTHENTICATE, 0, 2),
    (DESCRIBE_USER_SCRAM_CREDENTIALS, 0, 0),
    (ALTER_USER_SCRAM_CREDENTIALS, 0, 0),
    (DESCRIBE_ACLS, 0, 3),
    (CREATE_ACLS, 0, 3),
    (DELETE_ACLS, 0, 3),
];

const KAFKA_3_9: &[(i16, i16, i16)] = &[
    (PRODUCE, 0, 11),
    (FETCH, 0, 17),
    (LIST_OFFSETS, 0, 9),
    (METADATA, 0, 12),
    (OFFSET_COMMIT, 0, 9),
    (OFFSET_FETCH, 0, 9),
    (FIND_COORDINATOR, 0, 6),
    (JOIN_GROUP, 0, 9),
    (HEARTBEAT, 0, 4),
    (LEAVE_GROUP, 0, 5),
    (SYNC_GROUP, 0, 5),
    (DESCRIBE_GROUPS, 0, 5),
    (LIST_GROUPS, 0, 5),
    (API_VERSIONS, 0, 4),
    (CREATE_TOPICS, 0, 7),
    (DELETE_TOPICS, 0, 6),
    (DELETE_RECORDS, 0, 2),
    (INIT_PRODUCER_ID, 0, 5),
    (OFFSET_FOR_LEADER_EPOCH, 0, 4),
    (ADD_PARTITIONS_TO_TXN, 0, 5),
    (ADD_OFFSETS_TO_TXN, 0, 4),
    (END_TXN, 0, 4),
    (TXN_OFFSET_COMMIT, 0, 4),
    (DESCRIBE_CONFIGS, 0, 4),
    (ALTER_CONFIGS, 0, 2),
    (DESCRIBE_LOG_DIRS, 0, 4),
    (CREATE_PARTITIONS, 0, 3),
    (DELETE_GROUPS, 0, 2),
    (INCREMENTAL_ALTER_CONFIGS, 0, 1),
    (OFFSET_DELETE, 0, 0),
    (DESCRIBE_CLUSTER, 0, 1),
    (DESCRIBE_PRODUCERS, 0, 0),
    (DESCRIBE_TRANSACTIONS, 0, 0),
    (LIST_TRANSACTIONS, 0, 1),
    // The same in every release here (SaslAuthenticate v2 from 2.5, KIP-554 from 2.7,
    // the ACL APIs' v2 (flexible) from 2.4 and v3 (USER resources) from 2.8).
    (SASL_HANDSHAKE, 0, 1),
    (SASL_AUTHENTICATE, 0, 2),
    (DESCRIBE_USER_SCRAM_CREDENTIALS, 0, 0),
    (ALTER_USER_SCRAM_CREDENTIALS, 0, 0),
    (DESCRIBE_ACLS, 0, 3),
    (CREATE_ACLS, 0, 3),
    (DELETE_ACLS, 0, 3),
];

/// KIP-896 removed the versions older than Kafka 2.1 spoke.
const KAFKA_4_0: &[(i16, i16, i16)] = &[
    (PRODUCE, 3, 12),
    (FETCH, 4, 17),
    (LIST_OFFSETS, 1, 10),
    (METADATA, 0, 13),
    (OFFSET_COMMIT, 2, 9),
    (OFFSET_FETCH, 1, 9),
    (FIND_COORDINATOR, 0, 6),
    (JOIN_GROUP, 0, 9),
    (HEARTBEAT, 0, 4),
    (LEAVE_GROUP, 0, 5),
    (SYNC_GROUP, 0, 5),
    (DESCRIBE_GROUPS, 0, 6),
    (LIST_GROUPS, 0, 5),
    (API_VERSIONS, 0, 4),
    (CREATE_TOPICS, 2, 7),
    (DELETE_TOPICS, 1, 6),
    (DELETE_RECORDS, 0, 2),
    (INIT_PRODUCER_ID, 0, 5),
    (OFFSET_FOR_LEADER_EPOCH, 2, 4),
    (ADD_PARTITIONS_TO_TXN, 0, 5),
    (ADD_OFFSETS_TO_TXN, 0, 4),
    (END_TXN, 0, 5),
    (TXN_OFFSET_COMMIT, 0, 5),
    (DESCRIBE_CONFIGS, 1, 4),
    (ALTER_CONFIGS, 0, 2),
    (DESCRIBE_LOG_DIRS, 1, 4),
    (CREATE_PARTITIONS, 0, 3),
    (DELETE_GROUPS, 0, 2),
    (INCREMENTAL_ALTER_CONFIGS, 0, 1),
    (OFFSET_DELETE, 0, 0),
    (DESCRIBE_CLUSTER, 0, 2),
    (DESCRIBE_PRODUCERS, 0, 0),
    (DESCRIBE_TRANSACTIONS, 0, 0),
    (LIST_TRANSACTIONS, 0, 1),
    (CONSUMER_GROUP_HEARTBEAT, 0, 1),
    (CONSUMER_GROUP_DESCRIBE, 0, 1),
    // The same in every release here (SaslAuthenticate v2 from 2.5, KIP-554 from 2.7,
    // the ACL APIs' v2 (flexible) from 2.4 and v3 (USER resources) from 2.8).
    (SASL_HANDSHAKE, 0, 1),
    (SASL_AUTHENTICATE, 0, 2),
    (DESCRIBE_USER_SCRAM_CREDENTIALS, 0, 0),
    (ALTER_USER_SCRAM_CREDENTIALS, 0, 0),
    (DESCRIBE_ACLS, 0, 3),
    (CREATE_ACLS, 0, 3),
    (DELETE_ACLS, 0, 3),
];

const KAFKA_4_1: &[(i16, i16, i16)] = &[
    (PRODUCE, 3, 13),
    (FETCH, 4, 18),
    (LIST_OFFSETS, 1, 10),
    (METADATA, 0, 13),
    (OFFSET_COMMIT, 2, 10),
    (OFFSET_FETCH, 1, 10),
    (FIND_COORDINATOR, 0, 6),
    (JOIN_GROUP, 0, 9),
    (HEARTBEAT, 0, 4),
    (LEAVE_GROUP, 0, 5),
    (SYNC_GROUP, 0, 5),
    (DESCRIBE_GROUPS, 0, 6),
    (LIST_GROUPS, 0, 5),
    (API_VERSIONS, 0, 4),
    (CREATE_TOPICS, 2, 7),
    (DELETE_TOPICS, 1, 6),
    (DELETE_RECORDS, 0, 2),
    (INIT_PRODUCER_ID, 0, 6),
    (OFFSET_FOR_LEADER_EPOCH, 2, 4),
    (ADD_PARTITIONS_TO_TXN, 0, 5),
    (ADD_OFFSETS_TO_TXN, 0, 4),
    (END_TXN, 0, 5),
    (TXN_OFFSET_COMMIT, 0, 5),
    (DESCRIBE_CONFIGS, 1, 4),
    (ALTER_CONFIGS, 0, 2),
    (DESCRIBE_LOG_DIRS, 1, 4),
    (CREATE_PARTITIONS, 0, 3),
    (DELETE_GROUPS, 0, 2),
    (INCREMENTAL_ALTER_CONFIGS, 0, 1),
    (OFFSET_DELETE, 0, 0),
    (DESCRIBE_CLUSTER, 0, 2),
    (DESCRIBE_PRODUCERS, 0, 0),
    (DESCRIBE_TRANSACTIONS, 0, 0),
    (LIST_TRANSACTIONS, 0, 2),
    (CONSUMER_GROUP_HEARTBEAT, 0, 1),
    (CONSUMER_GROUP_DESCRIBE, 0, 1),
    // The same in every release here (SaslAuthenticate v2 from 2.5, KIP-554 from 2.7,
    // the ACL APIs' v2 (flexible) from 2.4 and v3 (USER resources) from 2.8).
    (SASL_HANDSHAKE, 0, 1),
    (SASL_AUTHENTICATE, 0, 2),
    (DESCRIBE_USER_SCRAM_CREDENTIALS, 0, 0),
    (ALTER_USER_SCRAM_CREDENTIALS, 0, 0),
    (DESCRIBE_ACLS, 0, 3),
    (CREATE_ACLS, 0, 3),
    (DELETE_ACLS, 0, 3),
];

const RELEASES: &[Release] = &[
    Release {
        name: "2.8",
        apis: KAFKA_2_8,
        features: &[],
        finalized: &[],
        changes: "message formats v0/v1 (Produce v0–2, Fetch v0–3, ListOffsets v0, OffsetCommit v0–1, OffsetFetch v0) for clients that skip ApiVersions; no transaction admin APIs, no KIP-848 groups, no features",
    },
    Release {
        name: "3.6",
        apis: KAFKA_3_6,
        features: &[("metadata.version", 1, 14)],
        finalized: &[("metadata.version", 14)],
        changes: "message formats v0/v1 as 2.8; no KIP-848 groups",
    },
    Release {
        name: "3.9",
        apis: KAFKA_3_9,
        features: &[("metadata.version", 1, 21), ("kraft.version", 0, 1)],
        finalized: &[("metadata.version", 21)],
        changes: "message formats v0/v1 as 2.8; KIP-848 groups were a preview, off by default: not offered",
    },
    Release {
        name: "4.0",
        apis: KAFKA_4_0,
        features: &[
            ("metadata.version", 7, 25),
            ("kraft.version", 0, 1),
            ("group.version", 0, 1),
            ("transaction.version", 0, 2),
            ("eligible.leader.replicas.version", 0, 1),
        ],
        // transaction.version 2 (KIP-890) is not finalized: agentbus does not implement
        // Produce v12 / EndTxn v5, and a client would switch to them on seeing it.
        finalized: &[("metadata.version", 25), ("group.version", 1)],
        changes: "KIP-896: the versions before Kafka 2.1 are gone — a client that skips ApiVersions with an old fallback is disconnected; KIP-848 groups",
    },
    Release {
        name: "4.1",
        apis: KAFKA_4_1,
        features: &[
            ("metadata.version", 7, 27),
            ("kraft.version", 0, 1),
            ("group.version", 0, 1),
            ("transaction.version", 0, 2),
            ("eligible.leader.replicas.version", 0, 1),
        ],
        finalized: &[("metadata.version", 27), ("group.version", 1)],
        changes: "as 4.0",
    },
];

//! Authorized operations (KIP-430): the bit set of ACL operations a client may perform on
//! a resource, answered where a request asks for it (Metadata, DescribeCluster,
//! DescribeGroups, ConsumerGroupDescribe). With no authorizer Kafka answers every
//! operation the resource type supports (`AclEntry.supportedOperations`), and so does
//! agentbus; with one, `authz::narrow_operations` keeps those the ACLs allow.

/// Sent when authorized operations were not asked for.
pub(crate) const OMITTED: i32 = i32::MIN;

// Kafka's AclOperation codes.
const READ: u8 = 3;
const WRITE: u8 = 4;
const CREATE: u8 = 5;
const DELETE: u8 = 6;
const ALTER: u8 = 7;
const DESCRIBE: u8 = 8;
const CLUSTER_ACTION: u8 = 9;
const DESCRIBE_CONFIGS: u8 = 10;
const ALTER_CONFIGS: u8 = 11;
const IDEMPOTENT_WRITE: u8 = 12;

const TOPIC: &[u8] = &[
    READ,
    WRITE,
    CREATE,
    DESCRIBE,
    DELETE,
    ALTER,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
];
const GROUP: &[u8] = &[READ, DESCRIBE, DELETE, DESCRIBE_CONFIGS, ALTER_CONFIGS];
const CLUSTER: &[u8] = &[
    CREATE,
    CLUSTER_ACTION,
    DESCRIBE_CONFIGS,
    ALTER_CONFIGS,
    IDEMPOTENT_WRITE,
    ALTER,
    DESCRIBE,
];

fn bits(requested: bool, operations: &[u8]) -> i32 {
    if !requested {
        return OMITTED;
    }
    operations.iter().fold(0, |acc, op| acc | 1 << op)
}

pub(crate) fn topic(requested: bool) -> i32 {
    bits(requested, TOPIC)
}

pub(crate) fn group(requested: bool) -> i32 {
    bits(requested, GROUP)
}

pub(crate) fn cluster(requested: bool) -> i32 {
    bits(requested, CLUSTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_sets_without_an_authorizer() {
        assert_eq!(topic(true), 3576);
        assert_eq!(group(true), 3400);
        assert_eq!(cluster(true), 8096);
        assert_eq!(topic(false), i32::MIN);
    }
}

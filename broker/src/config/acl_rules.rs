//! ACLs given at start (`--acl`, `acls = [...]` in the file, testkit's `.acls(...)`), one
//! rule per string in the order `kafka-acls` reads them:
//! `allow|deny PRINCIPAL OPERATION RESOURCE[@HOST]`, e.g.
//! `allow User:writer Write topic:agent-*` (a trailing `*` is a prefix; `topic:*` alone is
//! every topic), `deny User:writer Read topic:audit-log`, `allow User:ops All cluster`.

use super::ConfigError;

/// Kafka's wire codes for resource types, pattern types, operations and permissions.
pub(crate) mod code {
    pub(crate) const ANY: i8 = 1;
    pub(crate) const TOPIC: i8 = 2;
    pub(crate) const GROUP: i8 = 3;
    pub(crate) const CLUSTER: i8 = 4;
    pub(crate) const TRANSACTIONAL_ID: i8 = 5;
    pub(crate) const DELEGATION_TOKEN: i8 = 6;
    pub(crate) const USER: i8 = 7;
    pub(crate) const MATCH: i8 = 2;
    pub(crate) const LITERAL: i8 = 3;
    pub(crate) const PREFIXED: i8 = 4;
    pub(crate) const ALL: i8 = 2;
    pub(crate) const READ: i8 = 3;
    pub(crate) const WRITE: i8 = 4;
    pub(crate) const CREATE: i8 = 5;
    pub(crate) const DELETE: i8 = 6;
    pub(crate) const ALTER: i8 = 7;
    pub(crate) const DESCRIBE: i8 = 8;
    pub(crate) const CLUSTER_ACTION: i8 = 9;
    pub(crate) const DESCRIBE_CONFIGS: i8 = 10;
    pub(crate) const ALTER_CONFIGS: i8 = 11;
    pub(crate) const IDEMPOTENT_WRITE: i8 = 12;
    pub(crate) const DENY: i8 = 2;
    pub(crate) const ALLOW: i8 = 3;
}
use code::*;

/// The name of the cluster resource.
pub(crate) const CLUSTER_NAME: &str = "kafka-cluster";

const OPERATIONS: &[(&str, i8)] = &[
    ("all", ALL),
    ("read", READ),
    ("write", WRITE),
    ("create", CREATE),
    ("delete", DELETE),
    ("alter", ALTER),
    ("describe", DESCRIBE),
    ("clusteraction", CLUSTER_ACTION),
    ("describeconfigs", DESCRIBE_CONFIGS),
    ("alterconfigs", ALTER_CONFIGS),
    ("idempotentwrite", IDEMPOTENT_WRITE),
];

/// One ACL (as given at start, or created with CreateAcls).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct AclRule {
    pub resource_type: i8,
    pub name: String,
    pub pattern: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

/// The name of an operation code, as `kafka-acls` prints it.
pub fn operation_name(op: i8) -> &'static str {
    match op {
        ALL => "All",
        READ => "Read",
        WRITE => "Write",
        CREATE => "Create",
        DELETE => "Delete",
        ALTER => "Alter",
        DESCRIBE => "Describe",
        CLUSTER_ACTION => "ClusterAction",
        DESCRIBE_CONFIGS => "DescribeConfigs",
        ALTER_CONFIGS => "AlterConfigs",
        IDEMPOTENT_WRITE => "IdempotentWrite",
        _ => "Unknown",
    }
}

pub fn operation_code(name: &str) -> Option<i8> {
    let key = name.to_ascii_lowercase().replace(['-', '_'], "");
    OPERATIONS.iter().find(|(n, _)| *n == key).map(|(_, c)| *c)
}

/// `topic:NAME`, `group:NAME`, `transactional-id:NAME`, `cluster`, `user:NAME`: the type,
/// name and pattern (a trailing `*` on a longer name is a prefix).
pub fn parse_resource(s: &str) -> Option<(i8, String, i8)> {
    if s.eq_ignore_ascii_case("cluster") {
        return Some((CLUSTER, CLUSTER_NAME.into(), LITERAL));
    }
    let (kind, name) = s.split_once(':')?;
    let rt = match kind.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
        "topic" => TOPIC,
        "group" => GROUP,
        "transactionalid" => TRANSACTIONAL_ID,
        "user" => USER,
        "delegationtoken" => DELEGATION_TOKEN,
        _ => return None,
    };
    match name.strip_suffix('*') {
        Some(prefix) if !prefix.is_empty() => Some((rt, prefix.to_string(), PREFIXED)),
        _ if name.is_empty() => None,
        _ => Some((rt, name.to_string(), LITERAL)),
    }
}

pub fn parse_acl(rule: &str) -> Result<AclRule, ConfigError> {
    let bad = |why: &str| {
        ConfigError::new(
            "acl",
            format!("`{rule}`: {why} (expected `allow|deny PRINCIPAL OPERATION RESOURCE[@HOST]`, as `allow User:writer Write topic:agent-*`)"),
        )
    };
    let words: Vec<&str> = rule.split_whitespace().collect();
    let [permission, principal, operation, resource] = words[..] else {
        return Err(bad("four words"));
    };
    let permission = match permission.to_ascii_lowercase().as_str() {
        "allow" => ALLOW,
        "deny" => DENY,
        _ => return Err(bad("the first word is allow or deny")),
    };
    if !principal.contains(':') {
        return Err(bad("the principal is TYPE:NAME, as User:writer"));
    }
    let operation = operation_code(operation).ok_or_else(|| bad("unknown operation"))?;
    let (resource, host) = match resource.rsplit_once('@') {
        Some((r, h)) => (r, h.to_string()),
        None => (resource, "*".to_string()),
    };
    let (resource_type, name, pattern) =
        parse_resource(resource).ok_or_else(|| bad("unknown resource"))?;
    Ok(AclRule {
        resource_type,
        name,
        pattern,
        principal: principal.to_string(),
        host,
        operation,
        permission,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_as_kafka_acls_writes_them() {
        let r = parse_acl("allow User:writer Write topic:agent-*").unwrap();
        assert_eq!(
            (r.resource_type, r.name.as_str(), r.pattern),
            (TOPIC, "agent-", PREFIXED)
        );
        assert_eq!(
            (r.operation, r.permission, r.host.as_str()),
            (WRITE, ALLOW, "*")
        );
        let r = parse_acl("deny User:* All topic:*@10.0.0.1").unwrap();
        assert_eq!(
            (r.name.as_str(), r.pattern, r.host.as_str()),
            ("*", LITERAL, "10.0.0.1")
        );
        assert_eq!(
            parse_acl("allow User:ops alter-configs cluster")
                .unwrap()
                .operation,
            ALTER_CONFIGS
        );
        for bad in [
            "allow User:x Write",
            "permit User:x Write topic:a",
            "allow x Write topic:a",
            "allow User:x Fly topic:a",
            "allow User:x Read table:a",
        ] {
            assert_eq!(parse_acl(bad).unwrap_err().setting, "acl", "{bad}");
        }
    }
}

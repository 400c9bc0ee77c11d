//! ACLs as Kafka's StandardAuthorizer keeps and applies them: bindings of a resource
//! pattern (literal, `*`, or prefixed) to a principal, host, operation and allow/deny,
//! kept in the metadata store (table `acls`). A deny beats an allow; READ, WRITE, DELETE
//! and ALTER imply DESCRIBE, ALTER_CONFIGS implies DESCRIBE_CONFIGS; a resource no ACL
//! names is allowed only with `allow.everyone.if.no.acl.found`.

use crate::meta::{MetaError, MetaStore, Table, Write};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

const ACLS: Table = "acls";

use crate::config::acl_rules::code::*;
pub(crate) use crate::config::acl_rules::CLUSTER_NAME;
use crate::config::AclRule;

/// One ACL: the rules given at start and the ones created over the wire alike.
pub(crate) type AclBinding = AclRule;

impl AclBinding {
    /// Why Kafka would refuse to create it, if it would.
    pub(crate) fn invalid(&self) -> Option<String> {
        if !(TOPIC..=USER).contains(&self.resource_type) {
            return Some("Invalid resource type".into());
        }
        if !matches!(self.pattern, LITERAL | PREFIXED) {
            return Some("Invalid pattern type: must be LITERAL or PREFIXED".into());
        }
        if !(ALL..=14).contains(&self.operation) {
            return Some("Invalid operation".into());
        }
        if !matches!(self.permission, ALLOW | DENY) {
            return Some("Invalid permission type".into());
        }
        if self.name.is_empty() {
            return Some("Resource name must not be empty".into());
        }
        if self.resource_type == CLUSTER && self.name != CLUSTER_NAME {
            return Some(format!(
                "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
            ));
        }
        if !self.principal.contains(':') {
            return Some(format!("Could not parse principal from `{}` (no colon is present separating the principal type from the principal name)", self.principal));
        }
        None
    }

    fn key(&self) -> String {
        format!(
            "{}/{}/{}/{}/{}/{}/{}",
            self.resource_type,
            self.pattern,
            self.name,
            self.principal,
            self.host,
            self.operation,
            self.permission
        )
    }

    /// Whether this ACL's pattern covers the resource `name`.
    fn covers(&self, name: &str) -> bool {
        match self.pattern {
            LITERAL => self.name == name || self.name == "*",
            PREFIXED => name.starts_with(&self.name),
            _ => false,
        }
    }
}

/// A DescribeAcls or DeleteAcls filter.
#[derive(Debug, Clone)]
pub(crate) struct AclFilter {
    pub resource_type: i8,
    pub name: Option<String>,
    pub pattern: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission: i8,
}

impl AclFilter {
    pub(crate) fn matches(&self, b: &AclBinding) -> bool {
        let any = |filter: i8, value: i8| filter == ANY || filter == value;
        let name_ok = match (&self.name, self.pattern) {
            (None, _) => true,
            // MATCH: every ACL that would apply to this exact name.
            (Some(n), MATCH) => b.covers(n),
            (Some(n), _) => &b.name == n,
        };
        let pattern_ok = matches!(self.pattern, ANY | MATCH) || self.pattern == b.pattern;
        any(self.resource_type, b.resource_type)
            && name_ok
            && pattern_ok
            && self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && any(self.operation, b.operation)
            && any(self.permission, b.permission)
    }
}

/// Who asks, from where.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    pub principal: &'a str,
    /// The client's IP address, as ACL hosts name it.
    pub host: &'a str,
}

/// The ACLs, and whether they are enforced at all.
#[derive(Debug)]
pub(crate) struct Authorizer {
    meta: Arc<MetaStore>,
    acls: RwLock<BTreeMap<String, AclBinding>>,
    /// No authorizer configured: everything is allowed and the ACL APIs answer
    /// SECURITY_DISABLED, as Kafka without `authorizer.class.name`.
    pub enabled: bool,
    super_users: Vec<String>,
    allow_if_no_acl: bool,
}

impl Authorizer {
    pub(crate) fn open(
        meta: Arc<MetaStore>,
        enabled: bool,
        super_users: Vec<String>,
        allow_if_no_acl: bool,
    ) -> Result<Self, MetaError> {
        let acls = meta.load_json(ACLS)?.into_iter().collect();
        Ok(Self {
            meta,
            acls: RwLock::new(acls),
            enabled,
            super_users,
            allow_if_no_acl,
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, AclBinding>> {
        self.acls.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `who` may do `operation` on the resource.
    pub(crate) fn allowed(
        &self,
        who: Subject<'_>,
        operation: i8,
        resource_type: i8,
        name: &str,
    ) -> bool {
        if !self.enabled || self.super_users.iter().any(|s| s == who.principal) {
            return true;
        }
        let acls = self.read();
        let on_resource: Vec<&AclBinding> = acls
            .values()
            .filter(|b| b.resource_type == resource_type && b.covers(name))
            .collect();
        if on_resource.is_empty() {
            return self.allow_if_no_acl;
        }
        let applies = |b: &&&AclBinding| {
            (b.principal == who.principal || b.principal == "User:*")
                && (b.host == "*" || b.host == who.host)
        };
        let denied = on_resource
            .iter()
            .filter(applies)
            .any(|b| b.permission == DENY && (b.operation == ALL || b.operation == operation));
        if denied {
            return false;
        }
        // What an allowed operation implies (AclEntry's implied operations).
        let grants = |acl_op: i8| {
            acl_op == ALL
                || acl_op == operation
                || match operation {
                    DESCRIBE => matches!(acl_op, READ | WRITE | DELETE | ALTER),
                    DESCRIBE_CONFIGS => acl_op == ALTER_CONFIGS,
                    _ => false,
                }
        };
        on_resource
            .iter()
            .filter(applies)
            .any(|b| b.permission == ALLOW && grants(b.operation))
    }

    /// Whether `who` may do `operation` on some resource of the type (WRITE on any topic
    /// lets a producer be idempotent, as Kafka checks it).
    pub(crate) fn allowed_on_any(
        &self,
        who: Subject<'_>,
        operation: i8,
        resource_type: i8,
    ) -> bool {
        if !self.enabled || self.super_users.iter().any(|s| s == who.principal) {
            return true;
        }
        self.read().values().any(|b| {
            b.resource_type == resource_type
                && b.permission == ALLOW
                && (b.operation == ALL || b.operation == operation)
                && (b.principal == who.principal || b.principal == "User:*")
                && (b.host == "*" || b.host == who.host)
        }) && !self.read().values().any(|b| {
            b.resource_type == resource_type
                && b.permission == DENY
                && b.pattern == LITERAL
                && b.name == "*"
                && (b.operation == ALL || b.operation == operation)
                && (b.principal == who.principal || b.principal == "User:*")
        })
    }

    pub(crate) fn describe(&self, filter: &AclFilter) -> Vec<AclBinding> {
        self.read()
            .values()
            .filter(|b| filter.matches(b))
            .cloned()
            .collect()
    }

    pub(crate) fn create(&self, bindings: &[AclBinding]) -> Result<(), MetaError> {
        let writes = bindings
            .iter()
            .map(|b| self.meta.put_json(ACLS, b.key(), b))
            .collect::<Result<Vec<_>, _>>()?;
        self.meta.apply(&writes)?;
        let mut acls = self.acls.write().unwrap_or_else(|p| p.into_inner());
        for b in bindings {
            acls.insert(b.key(), b.clone());
        }
        Ok(())
    }

    /// Deletes what each filter matches; the deleted bindings per filter.
    pub(crate) fn delete(&self, filters: &[AclFilter]) -> Result<Vec<Vec<AclBinding>>, MetaError> {
        let mut acls = self.acls.write().unwrap_or_else(|p| p.into_inner());
        let per_filter: Vec<Vec<AclBinding>> = filters
            .iter()
            .map(|f| acls.values().filter(|b| f.matches(b)).cloned().collect())
            .collect();
        let writes: Vec<Write> = per_filter
            .iter()
            .flatten()
            .map(|b| Write::Delete {
                table: ACLS,
                key: b.key(),
            })
            .collect();
        self.meta.apply(&writes)?;
        for b in per_filter.iter().flatten() {
            acls.remove(&b.key());
        }
        Ok(per_filter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(rt: i8, name: &str, pattern: i8, principal: &str, op: i8, perm: i8) -> AclBinding {
        AclBinding {
            resource_type: rt,
            name: name.into(),
            pattern,
            principal: principal.into(),
            host: "*".into(),
            operation: op,
            permission: perm,
        }
    }

    #[test]
    fn prefixed_allows_deny_wins_and_describe_is_implied() {
        let a = Authorizer::open(
            Arc::new(MetaStore::memory()),
            true,
            vec!["User:admin".into()],
            false,
        )
        .unwrap();
        a.create(&[
            acl(TOPIC, "agent-", PREFIXED, "User:writer", WRITE, ALLOW),
            acl(TOPIC, "agent-secret", LITERAL, "User:writer", ALL, DENY),
            acl(TOPIC, "audit-", PREFIXED, "User:reader", READ, ALLOW),
        ])
        .unwrap();
        let w = Subject {
            principal: "User:writer",
            host: "127.0.0.1",
        };
        assert!(a.allowed(w, WRITE, TOPIC, "agent-actions"));
        assert!(
            a.allowed(w, DESCRIBE, TOPIC, "agent-actions"),
            "WRITE implies DESCRIBE"
        );
        assert!(!a.allowed(w, READ, TOPIC, "agent-actions"));
        assert!(
            !a.allowed(w, WRITE, TOPIC, "agent-secret"),
            "a deny beats an allow"
        );
        assert!(!a.allowed(w, READ, TOPIC, "audit-log"));
        assert!(
            !a.allowed(w, WRITE, TOPIC, "other"),
            "no ACL: denied by default"
        );
        let admin = Subject {
            principal: "User:admin",
            host: "127.0.0.1",
        };
        assert!(a.allowed(admin, ALTER, CLUSTER, CLUSTER_NAME));
        assert!(a.allowed_on_any(w, WRITE, TOPIC));
        let filter = AclFilter {
            resource_type: TOPIC,
            name: Some("agent-x".into()),
            pattern: MATCH,
            principal: None,
            host: None,
            operation: ANY,
            permission: ANY,
        };
        assert_eq!(a.describe(&filter).len(), 1);
        let removed = a.delete(&[filter]).unwrap();
        assert_eq!(removed[0].len(), 1);
        assert!(!a.allowed(w, WRITE, TOPIC, "agent-actions"));
    }
}

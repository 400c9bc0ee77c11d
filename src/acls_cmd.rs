//! `agentbus acls add|list|remove`: ACLs over CreateAcls, DescribeAcls and DeleteAcls,
//! with `kafka-acls`' flags, against agentbus or any Kafka.

use crate::cluster_args::ClusterArgs;
use agentbus_broker::{operation_code, operation_name};
use agentbus_consumers::wire::WireClient;
use anyhow::{bail, Context};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;

#[derive(Debug, clap::Args)]
pub(crate) struct AclsArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Add ACLs: each principal × operation on the resource.
    Add(Spec),
    /// List the ACLs matching the resource and principal given (all without them).
    List(Spec),
    /// Remove the ACLs matching what is given.
    Remove(Spec),
}

/// The resource, principals, hosts and operations, as `kafka-acls` takes them.
#[derive(Debug, clap::Args)]
struct Spec {
    #[arg(long)]
    topic: Option<String>,
    #[arg(long)]
    group: Option<String>,
    #[arg(long)]
    transactional_id: Option<String>,
    #[arg(long)]
    cluster: bool,
    /// literal, prefixed (add); also any and match (list, remove).
    #[arg(long, default_value = "literal")]
    resource_pattern_type: String,
    #[arg(long)]
    allow_principal: Vec<String>,
    #[arg(long)]
    deny_principal: Vec<String>,
    /// list and remove: ACLs of this principal, allow or deny.
    #[arg(long)]
    principal: Option<String>,
    #[arg(long)]
    allow_host: Vec<String>,
    #[arg(long)]
    deny_host: Vec<String>,
    /// Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs,
    /// AlterConfigs, IdempotentWrite, All (repeatable).
    #[arg(long)]
    operation: Vec<String>,
}

const RESOURCE_TYPES: [(i8, &str); 5] = [
    (1, "ANY"),
    (2, "TOPIC"),
    (3, "GROUP"),
    (4, "CLUSTER"),
    (5, "TRANSACTIONAL_ID"),
];

fn pattern_code(s: &str) -> anyhow::Result<i8> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "any" => 1,
        "match" => 2,
        "literal" => 3,
        "prefixed" => 4,
        other => bail!("--resource-pattern-type {other}: literal, prefixed, any or match"),
    })
}

fn pattern_name(code: i8) -> &'static str {
    match code {
        3 => "LITERAL",
        4 => "PREFIXED",
        _ => "UNKNOWN",
    }
}

impl Spec {
    /// The resource type and name; none given: any.
    fn resource(&self) -> anyhow::Result<(i8, Option<String>)> {
        let given: Vec<(i8, Option<String>)> = [
            self.topic.clone().map(|t| (2, Some(t))),
            self.group.clone().map(|g| (3, Some(g))),
            self.cluster.then(|| (4, Some("kafka-cluster".to_string()))),
            self.transactional_id.clone().map(|t| (5, Some(t))),
        ]
        .into_iter()
        .flatten()
        .collect();
        match given.len() {
            0 => Ok((1, None)),
            1 => Ok(given.into_iter().next().unwrap_or((1, None))),
            _ => bail!("give one of --topic, --group, --transactional-id, --cluster"),
        }
    }

    fn operations(&self) -> anyhow::Result<Vec<i8>> {
        self.operation
            .iter()
            .map(|o| {
                operation_code(o).with_context(|| format!("--operation {o}: not an ACL operation"))
            })
            .collect()
    }

    /// (principal, host, permission) entries: allow ones, then deny ones.
    fn entries(&self) -> Vec<(String, String, i8)> {
        let hosts = |h: &[String]| {
            if h.is_empty() {
                vec!["*".to_string()]
            } else {
                h.to_vec()
            }
        };
        let mut out = Vec::new();
        for p in &self.allow_principal {
            for h in hosts(&self.allow_host) {
                out.push((p.clone(), h, 3));
            }
        }
        for p in &self.deny_principal {
            for h in hosts(&self.deny_host) {
                out.push((p.clone(), h, 2));
            }
        }
        out
    }
}

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

fn error(code: i16, message: Option<StrBytes>) -> anyhow::Error {
    anyhow::anyhow!(
        "{}",
        message
            .map(|m| m.to_string())
            .unwrap_or_else(|| format!("error code {code}"))
    )
}

pub(crate) async fn run(args: AclsArgs) -> anyhow::Result<()> {
    let props = agentbus_client::kafka_props::process();
    let timeout = args.cluster.timeout();
    let brokers = args.cluster.bootstrap_server.clone();
    let work = async move {
        let mut client = WireClient::connect_any(&brokers, props, "agentbus-acls").await?;
        match args.action {
            Action::Add(spec) => add(&mut client, spec).await,
            Action::List(spec) => list(&mut client, spec).await,
            Action::Remove(spec) => remove(&mut client, spec).await,
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .context("agentbus acls: no answer in time (--timeout-ms)")?
}

async fn add(client: &mut WireClient, spec: Spec) -> anyhow::Result<()> {
    let (resource_type, name) = spec.resource()?;
    let Some(name) = name else {
        bail!("acls add: give --topic, --group, --transactional-id or --cluster");
    };
    let pattern = pattern_code(&spec.resource_pattern_type)?;
    let operations = spec.operations()?;
    let entries = spec.entries();
    if operations.is_empty() || entries.is_empty() {
        bail!("acls add: give --operation and --allow-principal or --deny-principal");
    }
    let mut req = CreateAclsRequest::default();
    for (principal, host, permission) in &entries {
        for op in &operations {
            let mut c = AclCreation::default();
            c.resource_type = resource_type;
            c.resource_name = s(name.clone());
            c.resource_pattern_type = pattern;
            c.principal = s(principal.clone());
            c.host = s(host.clone());
            c.operation = *op;
            c.permission_type = *permission;
            req.creations.push(c);
        }
    }
    let resp = client.call(3, &req).await?;
    for r in resp.results {
        if r.error_code != 0 {
            return Err(error(r.error_code, r.error_message));
        }
    }
    crate::emit(&format!("added {} ACL(s)\n", req.creations.len()))
}

async fn list(client: &mut WireClient, spec: Spec) -> anyhow::Result<()> {
    let (resource_type, name) = spec.resource()?;
    let mut req = DescribeAclsRequest::default();
    req.resource_type_filter = resource_type;
    req.resource_name_filter = name.map(s);
    req.pattern_type_filter =
        if spec.resource_pattern_type == "literal" && req.resource_name_filter.is_none() {
            1
        } else {
            pattern_code(&spec.resource_pattern_type)?
        };
    req.principal_filter = spec.principal.clone().map(s);
    req.host_filter = None;
    req.operation = 1;
    req.permission_type = 1;
    let resp = client.call(3, &req).await?;
    if resp.error_code != 0 {
        return Err(error(resp.error_code, resp.error_message));
    }
    let mut out = String::new();
    for r in resp.resources {
        let kind = RESOURCE_TYPES
            .iter()
            .find(|(c, _)| *c == r.resource_type)
            .map_or("UNKNOWN", |(_, n)| n);
        out.push_str(&format!(
            "Current ACLs for resource `ResourcePattern(resourceType={kind}, name={}, patternType={})`:\n",
            r.resource_name,
            pattern_name(r.pattern_type)
        ));
        for a in r.acls {
            out.push_str(&format!(
                " \t(principal={}, host={}, operation={}, permissionType={})\n",
                a.principal,
                a.host,
                operation_name(a.operation).to_ascii_uppercase(),
                if a.permission_type == 3 {
                    "ALLOW"
                } else {
                    "DENY"
                }
            ));
        }
        out.push('\n');
    }
    crate::emit(&out)
}

async fn remove(client: &mut WireClient, spec: Spec) -> anyhow::Result<()> {
    let (resource_type, name) = spec.resource()?;
    let pattern = pattern_code(&spec.resource_pattern_type)?;
    let operations = spec.operations()?;
    let operations = if operations.is_empty() {
        vec![1]
    } else {
        operations
    };
    let mut entries: Vec<(Option<String>, Option<String>, i8)> = spec
        .entries()
        .into_iter()
        .map(|(p, h, perm)| (Some(p), (h != "*").then_some(h), perm))
        .collect();
    if entries.is_empty() {
        entries.push((spec.principal.clone(), None, 1));
    }
    let mut req = DeleteAclsRequest::default();
    for (principal, host, permission) in &entries {
        for op in &operations {
            let mut f = DeleteAclsFilter::default();
            f.resource_type_filter = resource_type;
            f.resource_name_filter = name.clone().map(s);
            f.pattern_type_filter = pattern;
            f.principal_filter = principal.clone().map(s);
            f.host_filter = host.clone().map(s);
            f.operation = *op;
            f.permission_type = *permission;
            req.filters.push(f);
        }
    }
    let resp = client.call(3, &req).await?;
    let mut removed = 0;
    for r in resp.filter_results {
        if r.error_code != 0 {
            return Err(error(r.error_code, r.error_message));
        }
        removed += r.matching_acls.len();
    }
    crate::emit(&format!("removed {removed} ACL(s)\n"))
}

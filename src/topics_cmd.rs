//! `agentbus topics apply FILE`: make the cluster's topics match a topics file
//! (`deploy/topics.toml`), idempotently, with standard Kafka admin APIs only (Metadata,
//! CreateTopics, CreatePartitions, DescribeConfigs, AlterConfigs), so it works against
//! agentbus and any Kafka.
//!
//! For each topic in the file: create it if missing; add partitions if it has fewer
//! (Kafka cannot remove partitions: more is a warning); and when its explicitly set configs
//! differ from the file's, set them to exactly the file's (AlterConfigs replaces a topic's
//! whole config set). The replication factor is capped at the cluster's broker count, and
//! `min.insync.replicas` at the replication factor, each with a warning, so the file made
//! for a 3-broker cluster also works on a laptop. A second run changes nothing.

use agentbus_client::catalog::{self, TopicSpec};
use anyhow::Context as _;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub(crate) struct TopicsArgs {
    #[command(flatten)]
    cluster: crate::cluster_args::ClusterArgs,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Create or update the topics of a topics file (e.g. deploy/topics.toml).
    Apply {
        /// The topics file.
        file: std::path::PathBuf,
        /// Only print what would change.
        #[arg(long)]
        dry_run: bool,
    },
}

/// librdkafka's logs at debug level: a failing command prints one line, not its retries.
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

/// What the cluster has for one topic.
#[derive(Debug)]
struct Existing {
    partitions: i32,
}

/// The file's topic adjusted to the cluster (replication capped).
fn effective(
    spec: &TopicSpec,
    brokers: usize,
    warnings: &mut Vec<String>,
) -> (i16, BTreeMap<String, String>) {
    let max_rf = i16::try_from(brokers.max(1)).unwrap_or(i16::MAX);
    let rf = if spec.replication_factor > max_rf {
        warnings.push(format!(
            "{}: replication factor {} capped at {max_rf} (the cluster has {brokers} broker{})",
            spec.name,
            spec.replication_factor,
            if brokers == 1 { "" } else { "s" }
        ));
        max_rf
    } else {
        spec.replication_factor
    };
    let mut configs = spec.all_configs();
    if let Some(v) = configs.get_mut("min.insync.replicas") {
        if v.trim().parse::<i16>().is_ok_and(|n| n > rf) {
            warnings.push(format!(
                "{}: min.insync.replicas {v} capped at {rf} (the replication factor)",
                spec.name
            ));
            *v = rf.to_string();
        }
    }
    (rf, configs)
}

/// Where `apply` reports what it did: printed for `topics apply`, in the debug log for
/// `agentbus dev` (whose single broker caps every replication factor).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Report {
    line: fn(&str),
    warning: fn(&str),
}

impl Report {
    pub(crate) const PRINT: Report = Report {
        line: |l| println!("{l}"),
        warning: |w| eprintln!("warning: {w}"),
    };
    pub(crate) const QUIET: Report = Report {
        line: |l| tracing::debug!("{l}"),
        warning: |w| tracing::debug!("{w}"),
    };
}

async fn apply(
    bootstrap: &str,
    timeout: Duration,
    file: &std::path::Path,
    dry_run: bool,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let specs = catalog::from_toml(&text).with_context(|| format!("{}", file.display()))?;
    apply_specs(bootstrap, timeout, &specs, dry_run, Report::PRINT).await
}

/// Creates or updates the topics of `specs` (see the module's comment).
pub(crate) async fn apply_specs(
    bootstrap: &str,
    timeout: Duration,
    specs: &[TopicSpec],
    dry_run: bool,
    report: Report,
) -> anyhow::Result<()> {
    let print = report.line;

    let admin: AdminClient<Quiet> = agentbus_client::kafka_props::client_config()
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "agentbus-topics")
        .create_with_context(Quiet)
        .context("cannot create a Kafka admin client")?;
    let opts = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));

    // Metadata: broker count and the topics that exist (a blocking call, off the runtime).
    let (brokers, existing) = tokio::task::block_in_place(|| {
        admin.inner().fetch_metadata(None, timeout).map(|md| {
            let topics: BTreeMap<String, Existing> = md
                .topics()
                .iter()
                .filter(|t| t.error().is_none())
                .map(|t| {
                    (
                        t.name().to_string(),
                        Existing {
                            partitions: t.partitions().len() as i32,
                        },
                    )
                })
                .collect();
            (md.brokers().len(), topics)
        })
    })
    .with_context(|| format!("cannot read the cluster's metadata from {bootstrap}"))?;

    let mut warnings = Vec::new();
    let mut failures = Vec::new();
    let plans: Vec<(&TopicSpec, i16, BTreeMap<String, String>)> = specs
        .iter()
        .map(|s| {
            let (rf, configs) = effective(s, brokers, &mut warnings);
            (s, rf, configs)
        })
        .collect();
    for w in &warnings {
        (report.warning)(w);
    }

    // 1. Create the missing topics, with their configs.
    let missing: Vec<NewTopic<'_>> = plans
        .iter()
        .filter(|(s, _, _)| !existing.contains_key(&s.name))
        .map(|(s, rf, configs)| {
            configs.iter().fold(
                NewTopic::new(
                    &s.name,
                    s.partitions,
                    TopicReplication::Fixed(i32::from(*rf)),
                ),
                |t, (k, v)| t.set(k, v),
            )
        })
        .collect();
    if !missing.is_empty() {
        if dry_run {
            for t in &missing {
                print(&format!("would create {}", t.name));
            }
        } else {
            let results = admin
                .create_topics(&missing, &opts)
                .await
                .context("CreateTopics failed")?;
            for r in results {
                match r {
                    Ok(name) => {
                        let (s, rf, configs) = plans
                            .iter()
                            .find(|(s, _, _)| s.name == name)
                            .context("the broker answered for a topic not asked about")?;
                        print(&format!(
                            "created {name}: {} partitions, replication factor {rf}, {}",
                            s.partitions,
                            describe(configs)
                        ));
                    }
                    Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                        print(&format!("{name}: created concurrently by someone else; run again to check its settings"));
                    }
                    Err((name, code)) => failures.push(format!("cannot create {name}: {code}")),
                }
            }
        }
    }

    // 2. Add partitions where there are fewer than the file says.
    let grow: Vec<NewPartitions<'_>> = plans
        .iter()
        .filter_map(|(s, _, _)| {
            let e = existing.get(&s.name)?;
            if e.partitions > s.partitions {
                eprintln!(
                    "warning: {}: has {} partitions, the file says {}; Kafka cannot remove partitions",
                    s.name, e.partitions, s.partitions
                );
            }
            (e.partitions < s.partitions)
                .then(|| NewPartitions::new(&s.name, s.partitions as usize))
        })
        .collect();
    if !grow.is_empty() {
        if dry_run {
            for g in &grow {
                print(&format!("would add partitions to {}", g.topic_name));
            }
        } else {
            let results = admin
                .create_partitions(&grow, &opts)
                .await
                .context("CreatePartitions failed")?;
            for r in results {
                match r {
                    Ok(name) => print(&format!(
                        "{name}: partitions increased to {}",
                        specs
                            .iter()
                            .find(|s| s.name == name)
                            .map_or(0, |s| s.partitions)
                    )),
                    Err((name, code)) => {
                        failures.push(format!("cannot add partitions to {name}: {code}"))
                    }
                }
            }
        }
    }

    // 3. Configs of the topics that existed: compare the explicitly set ones with the file.
    let present: Vec<&(&TopicSpec, i16, BTreeMap<String, String>)> = plans
        .iter()
        .filter(|(s, _, _)| existing.contains_key(&s.name))
        .collect();
    if !present.is_empty() {
        let resources: Vec<ResourceSpecifier<'_>> = present
            .iter()
            .map(|(s, _, _)| ResourceSpecifier::Topic(&s.name))
            .collect();
        let described = admin
            .describe_configs(&resources, &opts)
            .await
            .context("DescribeConfigs failed (cannot read the configs of existing topics)")?;
        let mut alters = Vec::new();
        for ((s, _, want), r) in present.iter().zip(described) {
            let current: BTreeMap<String, String> = match r {
                Ok(res) => res
                    .entries
                    .iter()
                    .filter(|e| e.source == ConfigSource::DynamicTopic)
                    .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
                    .collect(),
                Err(code) => {
                    failures.push(format!("cannot read the configs of {}: {code}", s.name));
                    continue;
                }
            };
            if &current == want {
                print(&format!("unchanged {}", s.name));
                continue;
            }
            let changes = diff(&current, want);
            if dry_run {
                print(&format!("would update {}: {changes}", s.name));
                continue;
            }
            alters.push((s.name.as_str(), want, changes));
        }
        if !alters.is_empty() {
            let configs: Vec<AlterConfig<'_>> = alters
                .iter()
                .map(|(name, want, _)| {
                    want.iter().fold(
                        AlterConfig::new(ResourceSpecifier::Topic(name)),
                        |a, (k, v)| a.set(k, v),
                    )
                })
                .collect();
            let results = admin
                .alter_configs(&configs, &opts)
                .await
                .context("AlterConfigs failed")?;
            for ((name, _, changes), r) in alters.iter().zip(results) {
                match r {
                    Ok(_) => print(&format!("updated {name}: {changes}")),
                    Err((_, code)) => {
                        failures.push(format!("cannot update the configs of {name}: {code}"))
                    }
                }
            }
        }
    }

    if failures.is_empty() {
        Ok(())
    } else {
        for f in &failures[..failures.len() - 1] {
            eprintln!("error: {f}");
        }
        Err(anyhow::anyhow!(failures
            .last()
            .cloned()
            .unwrap_or_default()))
    }
}

fn describe(configs: &BTreeMap<String, String>) -> String {
    configs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `key: old → new` for every difference.
fn diff(current: &BTreeMap<String, String>, want: &BTreeMap<String, String>) -> String {
    let mut out = Vec::new();
    for (k, v) in want {
        match current.get(k) {
            Some(old) if old == v => {}
            Some(old) => out.push(format!("{k}: {old} -> {v}")),
            None => out.push(format!("{k}: (default) -> {v}")),
        }
    }
    for (k, old) in current {
        if !want.contains_key(k) {
            out.push(format!("{k}: {old} -> (default)"));
        }
    }
    out.join(", ")
}

pub(crate) async fn run(args: TopicsArgs) -> anyhow::Result<()> {
    let timeout = args.cluster.timeout();
    match args.action {
        Action::Apply { file, dry_run } => {
            apply(&args.cluster.bootstrap_server, timeout, &file, dry_run).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_is_capped_at_the_broker_count() {
        let spec = catalog::catalog().remove(0);
        let mut w = Vec::new();
        let (rf, configs) = effective(&spec, 1, &mut w);
        assert_eq!(rf, 1);
        assert_eq!(configs["min.insync.replicas"], "1");
        assert_eq!(configs["retention.ms"], "604800000");
        assert_eq!(w.len(), 2, "{w:?}");
        let mut w = Vec::new();
        let (rf, configs) = effective(&spec, 3, &mut w);
        assert_eq!((rf, configs["min.insync.replicas"].as_str()), (3, "2"));
        assert!(w.is_empty());
    }

    #[test]
    fn diffs_list_each_change() {
        let a = BTreeMap::from([("retention.ms".to_string(), "1".to_string())]);
        let b = BTreeMap::from([
            ("retention.ms".to_string(), "2".to_string()),
            ("x".to_string(), "y".to_string()),
        ]);
        assert_eq!(diff(&a, &b), "retention.ms: 1 -> 2, x: (default) -> y");
    }
}

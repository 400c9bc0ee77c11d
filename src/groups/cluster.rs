//! The Kafka calls the commands make, each bounded by the timeout.

use super::*;

/// Sends librdkafka's log lines and error callbacks to `tracing` at debug level, so a
/// failing command prints one line, not librdkafka's retries (`AGENTBUS_LOG=debug` shows them).
#[derive(Debug, Clone, Copy)]
pub(super) struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        tracing::debug!(target: "librdkafka", ?level, "{fac} {log_message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", "{error}: {reason}");
    }
}

impl ConsumerContext for Quiet {}

pub(super) type Client = BaseConsumer<Quiet>;

#[derive(Debug, Clone)]
pub(super) struct Cluster {
    pub(super) bootstrap: String,
    pub(super) timeout: Duration,
}

impl Cluster {
    pub(super) fn config(&self) -> ClientConfig {
        let mut c = agentbus_client::kafka_props::client_config();
        c.set("bootstrap.servers", &self.bootstrap)
            .set("client.id", "agentbus-groups");
        c
    }

    /// A consumer that never subscribes: with `group` set it can fetch and commit that
    /// group's offsets without joining it.
    pub(super) fn consumer(&self, group: Option<&str>) -> Result<Client, GroupsError> {
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
pub(super) struct GroupSnapshot {
    pub(super) name: String,
    pub(super) protocol_type: String,
    pub(super) state: String,
    pub(super) members: Vec<MemberSnapshot>,
}

#[derive(Debug, Clone)]
pub(super) struct MemberSnapshot {
    pub(super) id: String,
    pub(super) client_id: String,
    pub(super) host: String,
    pub(super) assignment: Vec<(String, Vec<i32>)>,
}

impl GroupSnapshot {
    /// Kafka lists offsets-only groups as `Empty`; a `Dead` group is gone.
    pub(super) fn exists(&self) -> bool {
        !self.state.eq_ignore_ascii_case("dead")
    }

    pub(super) fn is_active(&self) -> bool {
        let inactive = self.state.eq_ignore_ascii_case("empty") || !self.exists();
        !self.members.is_empty() || !inactive
    }
}

pub(super) fn snapshot(info: &rdkafka::groups::GroupInfo) -> GroupSnapshot {
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

pub(super) fn list_groups(
    cluster: &Cluster,
    client: &Client,
) -> Result<Vec<GroupSnapshot>, GroupsError> {
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

pub(super) fn find_group(
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
pub(super) fn topics(
    cluster: &Cluster,
    client: &Client,
) -> Result<BTreeMap<String, Vec<i32>>, GroupsError> {
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

pub(super) type Tp = (String, i32);

/// The group's committed offset for each of `partitions` that has one.
pub(super) fn committed(
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

pub(super) fn watermarks(
    cluster: &Cluster,
    client: &Client,
    tp: &Tp,
) -> Result<(i64, i64), GroupsError> {
    client
        .fetch_watermarks(&tp.0, tp.1, cluster.timeout)
        .map_err(kafka(format!(
            "cannot fetch the offsets of {}-{}",
            tp.0, tp.1
        )))
}

#[cfg(test)]
mod tests {
    use super::*;

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

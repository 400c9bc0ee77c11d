//! `groups reset-offsets`: the plan, and its commit with `--execute`.

use super::*;

/// How to compute the new offsets.
#[derive(Debug, Clone, Copy)]
pub(super) enum Target {
    Earliest,
    Latest,
    Datetime(i64),
    Offset(i64),
    ShiftBy(i64),
}

impl Target {
    pub(super) fn from_args(to: &ResetTo) -> Self {
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

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(super) struct PlanRow {
    pub(super) topic: String,
    pub(super) partition: i32,
    pub(super) current_offset: Option<i64>,
    pub(super) new_offset: i64,
}

pub(super) fn plan_reset(
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
pub(super) fn commit_plan(
    cluster: &Cluster,
    group: &str,
    plan: &[PlanRow],
) -> Result<(), GroupsError> {
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

pub(super) fn commit_and_read_back(
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

pub(super) fn reset(cluster: &Cluster, args: &ResetArgs, output: Output) -> anyhow::Result<()> {
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
        Output::Json => emit_json(&PlanJson {
            group,
            executed: execute,
            partitions: plan.iter().map(|row| PlanRowJson { group, row }).collect(),
        })?,
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct PlanJson<'a> {
    group: &'a str,
    executed: bool,
    partitions: Vec<PlanRowJson<'a>>,
}

#[derive(serde::Serialize)]
struct PlanRowJson<'a> {
    group: &'a str,
    #[serde(flatten)]
    row: &'a PlanRow,
}

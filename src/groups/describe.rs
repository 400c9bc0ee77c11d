//! `groups describe`: committed offsets, log-end offsets, lag and owners.

use super::*;

/// One line of `describe`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(super) struct DescribeRow {
    pub(super) topic: Option<String>,
    pub(super) partition: Option<i32>,
    pub(super) current_offset: Option<i64>,
    pub(super) log_end_offset: Option<i64>,
    pub(super) lag: Option<i64>,
    pub(super) consumer_id: Option<String>,
    pub(super) host: Option<String>,
    pub(super) client_id: Option<String>,
}

#[derive(Debug)]
pub(super) struct Description {
    pub(super) group: String,
    pub(super) state: Option<String>,
    pub(super) members: usize,
    pub(super) rows: Vec<DescribeRow>,
}

impl Description {
    pub(super) fn total_lag(&self) -> i64 {
        self.rows.iter().filter_map(|r| r.lag).sum()
    }
}

pub(super) fn describe(cluster: &Cluster, group: &str) -> Result<Description, GroupsError> {
    let client = cluster.consumer(Some(group))?;
    let info = find_group(cluster, &client, group)?;
    let all = topics(cluster, &client)?;

    // Partitions the members own, per their assignments.
    let mut owners: BTreeMap<Tp, &MemberSnapshot> = BTreeMap::new();
    let members: &[MemberSnapshot] = info.as_ref().map_or(&[][..], |g| g.members.as_slice());
    for m in members {
        for (t, ps) in &m.assignment {
            for p in ps {
                owners.insert((t.clone(), *p), m);
            }
        }
    }
    // Committed offsets: ask for every partition in the cluster (OffsetFetch for "all
    // topics" is not exposed by librdkafka) plus the assigned ones.
    let mut ask: BTreeSet<Tp> = all
        .iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
        .collect();
    ask.extend(owners.keys().cloned());
    let offsets = committed(cluster, &client, group, &ask)?;

    if info.is_none() && offsets.is_empty() {
        return Err(GroupsError::GroupNotFound(group.to_string()));
    }

    let shown: BTreeSet<&Tp> = offsets.keys().chain(owners.keys()).collect();
    let mut rows = Vec::with_capacity(shown.len());
    for tp in shown {
        let end = if all.get(&tp.0).is_some_and(|ps| ps.contains(&tp.1)) {
            Some(watermarks(cluster, &client, tp)?.1)
        } else {
            None
        };
        let current = offsets.get(tp).copied();
        let owner = owners.get(tp);
        rows.push(DescribeRow {
            topic: Some(tp.0.clone()),
            partition: Some(tp.1),
            current_offset: current,
            log_end_offset: end,
            lag: current.zip(end).map(|(c, e)| e - c),
            consumer_id: owner.map(|m| m.id.clone()),
            host: owner.map(|m| m.host.clone()),
            client_id: owner.map(|m| m.client_id.clone()),
        });
    }
    for m in members
        .iter()
        .filter(|m| m.assignment.iter().all(|(_, ps)| ps.is_empty()))
    {
        rows.push(DescribeRow {
            topic: None,
            partition: None,
            current_offset: None,
            log_end_offset: None,
            lag: None,
            consumer_id: Some(m.id.clone()),
            host: Some(m.host.clone()),
            client_id: Some(m.client_id.clone()),
        });
    }
    Ok(Description {
        group: group.to_string(),
        state: info.as_ref().map(|g| g.state.clone()),
        members: members.len(),
        rows,
    })
}

pub(super) fn print_description(d: &Description, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Text => {
            if d.members == 0 {
                eprintln!("Consumer group '{}' has no active members.", d.group);
            }
            let rows: Vec<Vec<String>> = d
                .rows
                .iter()
                .map(|r| {
                    vec![
                        d.group.clone(),
                        r.topic.clone().unwrap_or_else(|| "-".into()),
                        dash(r.partition),
                        dash(r.current_offset),
                        dash(r.log_end_offset),
                        dash(r.lag),
                        r.consumer_id.clone().unwrap_or_else(|| "-".into()),
                        r.host.clone().unwrap_or_else(|| "-".into()),
                        r.client_id.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            emit(&table(
                &[
                    "GROUP",
                    "TOPIC",
                    "PARTITION",
                    "CURRENT-OFFSET",
                    "LOG-END-OFFSET",
                    "LAG",
                    "CONSUMER-ID",
                    "HOST",
                    "CLIENT-ID",
                ],
                &rows,
            ))
        }
        Output::Json => emit_json(&DescriptionJson {
            group: &d.group,
            state: d.state.as_deref(),
            members: d.members,
            total_lag: d.total_lag(),
            partitions: d
                .rows
                .iter()
                .map(|r| RowJson {
                    group: &d.group,
                    row: r,
                })
                .collect(),
        }),
    }
}

#[derive(serde::Serialize)]
struct DescriptionJson<'a> {
    group: &'a str,
    state: Option<&'a str>,
    members: usize,
    total_lag: i64,
    partitions: Vec<RowJson<'a>>,
}

/// One row, with its group first, as `--output json` has always printed it.
#[derive(serde::Serialize)]
struct RowJson<'a> {
    group: &'a str,
    #[serde(flatten)]
    row: &'a DescribeRow,
}

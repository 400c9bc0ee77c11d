//! `groups list`.

use super::*;

pub(super) fn list(cluster: &Cluster, output: Output) -> anyhow::Result<()> {
    let client = cluster.consumer(None)?;
    let groups = list_groups(cluster, &client)?;
    match output {
        Output::Text => {
            let rows: Vec<Vec<String>> = groups
                .iter()
                .map(|g| vec![g.name.clone(), or_dash(&g.protocol_type), or_dash(&g.state)])
                .collect();
            emit(&table(&["GROUP", "PROTOCOL-TYPE", "STATE"], &rows))
        }
        Output::Json => {
            let rows: Vec<ListRow<'_>> = groups
                .iter()
                .map(|g| ListRow {
                    group: &g.name,
                    protocol_type: &g.protocol_type,
                    state: &g.state,
                    members: g.members.len(),
                })
                .collect();
            emit_json(&rows)
        }
    }
}

#[derive(serde::Serialize)]
struct ListRow<'a> {
    group: &'a str,
    protocol_type: &'a str,
    state: &'a str,
    members: usize,
}

//! `groups delete`.

use super::*;

pub(super) async fn delete(cluster: &Cluster, group: &str, output: Output) -> anyhow::Result<()> {
    let admin: AdminClient<Quiet> = cluster
        .config()
        .create_with_context(Quiet)
        .map_err(kafka("cannot create a Kafka admin client"))?;
    let opts = AdminOptions::new()
        .request_timeout(Some(cluster.timeout))
        .operation_timeout(Some(cluster.timeout));
    let deadline = cluster.timeout + Duration::from_secs(1);
    let results = tokio::time::timeout(deadline, admin.delete_groups(&[group], &opts))
        .await
        .map_err(|_| GroupsError::Timeout {
            what: format!("deleting consumer group '{group}'"),
            ms: deadline.as_millis() as u64,
        })?
        .map_err(kafka(format!(
            "cannot delete consumer group '{group}' at {}",
            cluster.bootstrap
        )))?;
    for r in results {
        match r {
            Ok(name) => match output {
                Output::Text => emit(&format!("deleted consumer group '{name}'\n"))?,
                Output::Json => emit_json(&serde_json::json!({"group": name, "deleted": true}))?,
            },
            Err((name, code)) => {
                return Err(match code {
                    RDKafkaErrorCode::NonEmptyGroup => GroupsError::GroupNotEmpty(name),
                    RDKafkaErrorCode::GroupIdNotFound => GroupsError::GroupNotFound(name),
                    code => GroupsError::Kafka {
                        what: format!(
                            "cannot delete consumer group '{name}' at {}",
                            cluster.bootstrap
                        ),
                        source: KafkaError::AdminOp(code),
                    },
                }
                .into())
            }
        }
    }
    Ok(())
}

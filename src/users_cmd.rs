//! `agentbus users`: SCRAM users over DescribeUserScramCredentials and
//! AlterUserScramCredentials, against agentbus or any Kafka (as `kafka-configs
//! --entity-type users --alter --add-config 'SCRAM-SHA-512=[password=…]'` does).

use crate::cluster_args::ClusterArgs;
use agentbus_consumers::wire::{random_salt, salted_password, WireClient};
use anyhow::{bail, Context};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;

#[derive(Debug, clap::Args)]
pub(crate) struct UsersArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Give NAME a SCRAM credential (a new one replaces the old).
    Add {
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
        /// The password (the broker receives only a salted form of it).
        #[arg(long, env = "AGENTBUS_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// PBKDF2 iterations (Kafka accepts 4096–16384).
        #[arg(long, default_value_t = 4096)]
        iterations: u32,
    },
    /// The users with SCRAM credentials (all, or the ones named).
    List { names: Vec<String> },
    /// Remove NAME's credential for a mechanism.
    Delete {
        name: String,
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
    },
}

fn mechanism_code(m: &str) -> anyhow::Result<i8> {
    match m.to_ascii_uppercase().as_str() {
        "SCRAM-SHA-256" => Ok(1),
        "SCRAM-SHA-512" => Ok(2),
        other => bail!("--mechanism {other}: SCRAM-SHA-256 or SCRAM-SHA-512"),
    }
}

fn mechanism_name(code: i8) -> &'static str {
    match code {
        1 => "SCRAM-SHA-256",
        2 => "SCRAM-SHA-512",
        _ => "UNKNOWN",
    }
}

pub(crate) async fn run(args: UsersArgs) -> anyhow::Result<()> {
    let props = agentbus_client::kafka_props::process();
    let timeout = args.cluster.timeout();
    let brokers = args.cluster.bootstrap_server.clone();
    let work = async move {
        let mut client = WireClient::connect_any(&brokers, props, "agentbus-users").await?;
        match args.action {
            Action::Add {
                name,
                mechanism,
                password,
                iterations,
            } => {
                let code = mechanism_code(&mechanism)?;
                let salt = random_salt();
                let salted = salted_password(mechanism_name(code), &password, &salt, iterations)
                    .context("--iterations must be at least 1")?;
                let mut u = ScramCredentialUpsertion::default();
                u.name = StrBytes::from_string(name.clone());
                u.mechanism = code;
                u.iterations = iterations as i32;
                u.salt = salt.into();
                u.salted_password = salted.into();
                let mut req = AlterUserScramCredentialsRequest::default();
                req.upsertions = vec![u];
                alter(&mut client, req).await?;
                crate::emit(&format!(
                    "{name}: {} credential set\n",
                    mechanism_name(code)
                ))
            }
            Action::Delete { name, mechanism } => {
                let mut d = ScramCredentialDeletion::default();
                d.name = StrBytes::from_string(name.clone());
                d.mechanism = mechanism_code(&mechanism)?;
                let mut req = AlterUserScramCredentialsRequest::default();
                req.deletions = vec![d];
                alter(&mut client, req).await?;
                crate::emit(&format!(
                    "{name}: {} credential removed\n",
                    mechanism.to_ascii_uppercase()
                ))
            }
            Action::List { names } => {
                let mut req = DescribeUserScramCredentialsRequest::default();
                req.users = (!names.is_empty()).then(|| {
                    names
                        .iter()
                        .map(|n| {
                            let mut u = UserName::default();
                            u.name = StrBytes::from_string(n.clone());
                            u
                        })
                        .collect()
                });
                let resp = client.call(0, &req).await?;
                if resp.error_code != 0 {
                    bail!(
                        "{}",
                        resp.error_message
                            .map(|m| m.to_string())
                            .unwrap_or_else(|| format!("error {}", resp.error_code))
                    );
                }
                let mut out = String::new();
                for r in resp.results {
                    if r.error_code != 0 {
                        out.push_str(&format!(
                            "{}: {}\n",
                            r.user,
                            r.error_message.map(|m| m.to_string()).unwrap_or_default()
                        ));
                        continue;
                    }
                    let creds: Vec<String> = r
                        .credential_infos
                        .iter()
                        .map(|c| {
                            format!(
                                "{} (iterations {})",
                                mechanism_name(c.mechanism),
                                c.iterations
                            )
                        })
                        .collect();
                    out.push_str(&format!("{}: {}\n", r.user, creds.join(", ")));
                }
                crate::emit(&out)
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .context("agentbus users: no answer in time (--timeout-ms)")?
}

async fn alter(
    client: &mut WireClient,
    req: AlterUserScramCredentialsRequest,
) -> anyhow::Result<()> {
    let resp = client.call(0, &req).await?;
    for r in resp.results {
        if r.error_code != 0 {
            bail!(
                "{}: {}",
                r.user,
                r.error_message
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| format!("error {}", r.error_code))
            );
        }
    }
    Ok(())
}

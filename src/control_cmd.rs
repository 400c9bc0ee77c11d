//! `agentbus control`: the control API of a broker started with `--control`, from the
//! shell. Each subcommand is one request; the answer is printed as JSON.

use anyhow::Context;
use serde_json::{json, Value};

#[derive(Debug, clap::Args)]
pub(crate) struct ControlArgs {
    /// The control API's address, as the broker's ready line prints it.
    #[arg(
        long,
        env = "AGENTBUS_CONTROL_URL",
        default_value = "http://127.0.0.1:9644"
    )]
    url: String,
    #[command(subcommand)]
    command: ControlCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ControlCommand {
    /// The presented nodes, which are up, and the controller.
    Cluster,
    /// Stop a node: its connections drop, its leaders and coordinators move.
    StopNode { id: i32 },
    /// Start a stopped node again on its port.
    StartNode { id: i32 },
    /// The leader of a partition; `--to NODE` moves it (its leader epoch bumps).
    Leader {
        topic: String,
        partition: i32,
        #[arg(long)]
        to: Option<i32>,
    },
    /// The coordinator of a group or transactional id; `--to NODE` moves it.
    Coordinator {
        key: String,
        #[arg(long)]
        to: Option<i32>,
    },
    /// Inject a fault for an API: an error (Kafka's name or code), a delay or a disconnect.
    Inject {
        /// The API, by Kafka's name (`Produce`, `JoinGroup`) or key.
        #[arg(long)]
        api: String,
        /// Answer with this error (`NOT_LEADER_OR_FOLLOWER`, or a code).
        #[arg(long, conflicts_with_all = ["delay_ms", "disconnect"], required_unless_present_any = ["delay_ms", "disconnect"])]
        error: Option<String>,
        /// Hold each request this long before serving it.
        #[arg(long, conflicts_with = "disconnect")]
        delay_ms: Option<u64>,
        /// Close the connection instead of answering.
        #[arg(long)]
        disconnect: bool,
        /// Only on this node.
        #[arg(long)]
        node: Option<i32>,
        /// Only for the next N requests (else until removed).
        #[arg(long)]
        times: Option<usize>,
    },
    /// The injected faults still in force.
    Faults,
    /// Remove one injected fault, or `--all`.
    Remove {
        #[arg(required_unless_present = "all")]
        id: Option<u64>,
        #[arg(long)]
        all: bool,
    },
    /// Move the broker's clock forward (session timeouts, transaction timeouts,
    /// retention) and run its timers.
    Advance {
        /// How far, in milliseconds.
        ms: u64,
    },
    /// Record requests (`on`) or stop (`off`).
    Record {
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// The recorded requests (API, version, client id, node); `--clear` forgets them.
    Requests {
        #[arg(long)]
        clear: bool,
    },
    /// What strict mode recorded: requests for what agentbus does not implement.
    Violations,
}

pub(crate) async fn run(args: ControlArgs) -> anyhow::Result<()> {
    use reqwest::Method;
    use ControlCommand as C;
    let (method, path, body) = match args.command {
        C::Cluster => (Method::GET, "/v1/cluster".to_string(), None),
        C::StopNode { id } => (Method::POST, format!("/v1/nodes/{id}/stop"), None),
        C::StartNode { id } => (Method::POST, format!("/v1/nodes/{id}/start"), None),
        C::Leader {
            topic,
            partition,
            to,
        } => {
            let path = format!("/v1/partitions/{topic}/{partition}/leader");
            match to {
                None => (Method::GET, path, None),
                Some(node) => (Method::PUT, path, Some(json!({ "node": node }))),
            }
        }
        C::Coordinator { key, to } => {
            let path = format!("/v1/coordinators/{key}");
            match to {
                None => (Method::GET, path, None),
                Some(node) => (Method::PUT, path, Some(json!({ "node": node }))),
            }
        }
        C::Inject {
            api,
            error,
            delay_ms,
            disconnect,
            node,
            times,
        } => {
            let api = api.parse::<i64>().map_or(json!(api), Value::from);
            let mut body = json!({ "api": api, "node": node, "times": times });
            if let Some(e) = error {
                body["error"] = e.parse::<i64>().map_or(json!(e), Value::from);
            } else if let Some(ms) = delay_ms {
                body["delay_ms"] = json!(ms);
            } else if disconnect {
                body["disconnect"] = json!(true);
            }
            (Method::POST, "/v1/faults".to_string(), Some(body))
        }
        C::Faults => (Method::GET, "/v1/faults".to_string(), None),
        C::Remove { id: Some(id), .. } => (Method::DELETE, format!("/v1/faults/{id}"), None),
        C::Remove { id: None, .. } => (Method::DELETE, "/v1/faults".to_string(), None),
        C::Advance { ms } => (
            Method::POST,
            "/v1/clock/advance".to_string(),
            Some(json!({ "ms": ms })),
        ),
        C::Record { state } => (
            Method::PUT,
            "/v1/requests/recording".to_string(),
            Some(json!({ "on": state == "on" })),
        ),
        C::Requests { clear: false } => (Method::GET, "/v1/requests".to_string(), None),
        C::Requests { clear: true } => (Method::DELETE, "/v1/requests".to_string(), None),
        C::Violations => (Method::GET, "/v1/violations".to_string(), None),
    };
    let url = format!("{}{path}", args.url.trim_end_matches('/'));
    let client = reqwest::Client::new();
    let mut request = client.request(method, &url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.with_context(|| {
        format!(
            "no control API at {} (start the broker with --control ADDR)",
            args.url
        )
    })?;
    let status = response.status();
    let answer: Value = response
        .json()
        .await
        .with_context(|| format!("{url} did not answer JSON ({status})"))?;
    if !status.is_success() {
        let why = answer["error"].as_str().unwrap_or("refused");
        anyhow::bail!("{why} ({status})");
    }
    crate::emit(&format!("{}\n", serde_json::to_string_pretty(&answer)?))
}

//! `agentbus consume alert-manager`: the router (`alert-group`), the rules
//! (`alert-group-rules`) and the delivery loop (`alert-group-delivery`) in one process,
//! behind one HTTP listener.

use crate::consume_cmd::RuntimeArgs;
use agentbus_consumers::alert_manager::destinations::{Destination, PAGERDUTY_EVENTS_URL};
use agentbus_consumers::alert_manager::{
    self, AlertSettings, AlertSink, DeliverySettings, DeliverySink, Rules,
};
use agentbus_consumers::config::ConfigError;
use agentbus_consumers::metrics::Metrics;
use agentbus_consumers::{Service, StartFrom};
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub(crate) struct AlertManagerArgs {
    #[command(flatten)]
    pub(crate) runtime: RuntimeArgs,
    #[command(flatten)]
    pub(crate) alerts: AlertArgs,
}

/// The rules, the destinations and the rate limit.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AlertArgs {
    /// The rules: a TOML file (built-in defaults that match the seeds without it).
    #[arg(long, env = "ALERT_RULES")]
    pub(crate) rules: Option<String>,
    /// Failures of one fingerprint or signature that may fall in the window before the
    /// repeated-failure rule fires (it fires above it).
    #[arg(long, env = "FAILURE_THRESHOLD", default_value = "3")]
    pub(crate) failure_threshold: String,
    /// PagerDuty Events API v2 routing (integration) key; PagerDuty gets no alerts
    /// without it.
    #[arg(long, env = "PAGERDUTY_API_KEY", hide_env_values = true)]
    pub(crate) pagerduty_api_key: Option<String>,
    /// PagerDuty's events endpoint.
    #[arg(long, env = "PAGERDUTY_EVENTS_URL", default_value = PAGERDUTY_EVENTS_URL)]
    pub(crate) pagerduty_events_url: String,
    /// A Slack incoming webhook.
    #[arg(long, env = "SLACK_WEBHOOK_URL", hide_env_values = true)]
    pub(crate) slack_webhook_url: Option<String>,
    /// Any endpoint that takes the alert event as JSON.
    #[arg(long, env = "ALERT_WEBHOOK_URL")]
    pub(crate) alert_webhook_url: Option<String>,
    /// A link shown with every alert; `{dedup_key}` is filled in.
    #[arg(long, env = "ALERT_LINK_URL")]
    pub(crate) alert_link_url: Option<String>,
    /// Most triggers sent per minute (0: no limit); the rest are held back and summed up.
    #[arg(long, env = "ALERT_RATE_LIMIT", default_value_t = 30)]
    pub(crate) rate_limit: u32,
    /// This instance's name, stable across its restarts: the transactional id is
    /// `alert-manager-<instance>` (default: the host name).
    #[arg(long, env = "INSTANCE_ID")]
    pub(crate) instance: Option<String>,
}

fn url(setting: &'static str, value: &str) -> Result<String, ConfigError> {
    let v = value.trim();
    if v.starts_with("http://") || v.starts_with("https://") {
        Ok(v.to_string())
    } else {
        Err(ConfigError::new(
            setting,
            format!("{v:?} is not an http:// or https:// URL"),
        ))
    }
}

impl AlertArgs {
    pub(crate) fn destinations(&self) -> Result<Vec<Destination>, ConfigError> {
        fn set(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|s| !s.trim().is_empty())
        }
        let mut out = Vec::new();
        if let Some(key) = set(&self.pagerduty_api_key) {
            out.push(Destination::PagerDuty {
                url: url("PAGERDUTY_EVENTS_URL", &self.pagerduty_events_url)?,
                routing_key: key.trim().to_string(),
            });
        }
        if let Some(u) = set(&self.slack_webhook_url) {
            out.push(Destination::Slack {
                url: url("SLACK_WEBHOOK_URL", u)?,
            });
        }
        if let Some(u) = set(&self.alert_webhook_url) {
            out.push(Destination::Webhook {
                url: url("ALERT_WEBHOOK_URL", u)?,
            });
        }
        Ok(out)
    }
}

/// Adds the three groups; their metrics.
pub(crate) async fn add(
    all: &AlertManagerArgs,
    service: &mut Service,
) -> anyhow::Result<Vec<Arc<Metrics>>> {
    let args = &all.alerts;
    let threshold: u64 = args.failure_threshold.trim().parse().map_err(|_| {
        ConfigError::new(
            "FAILURE_THRESHOLD",
            format!("{:?} is not a whole number", args.failure_threshold),
        )
    })?;
    let rules = Rules::load(args.rules.as_deref(), threshold)?;
    let destinations = args.destinations()?;
    let link = match args
        .alert_link_url
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        Some(u) => Some(url("ALERT_LINK_URL", u)?),
        None => None,
    };
    // Three groups, each on its own consumer thread (and core): the router keys the
    // watched events by subject, the rules group evaluates them, the delivery group
    // sends the alerts.
    let mut route = all.runtime.config(
        alert_manager::GROUP,
        "alert-manager",
        alert_manager::topics(&rules),
    )?;
    let mut evaluate = all.runtime.config(
        alert_manager::RULES_GROUP,
        "alert-manager",
        vec![alert_manager::SUBJECTS.to_string()],
    )?;
    evaluate.group_id = format!("{}-rules", route.group_id);
    evaluate.tagged = vec![alert_manager::SUBJECTS.to_string()];
    evaluate.reset_sink_offsets.clear();
    // The keyed copies are the router's: all of them count.
    evaluate.start_from = StartFrom::Earliest;
    let mut deliver = all.runtime.config(
        alert_manager::DELIVERY_GROUP,
        "alert-manager",
        vec![alert_manager::ALERTS.to_string()],
    )?;
    deliver.group_id = format!("{}-delivery", route.group_id);
    deliver.reset_sink_offsets.clear();
    // An alert crosses three batches (the keyed copy, the evaluation, the delivery):
    // shorter waits than the runtime's 500 ms keep an event within a second of its page.
    // Busy streams fill their batches by size anyway.
    if !all.runtime.batch_timeout_given() {
        route.batch_timeout = Duration::from_millis(100);
        evaluate.batch_timeout = Duration::from_millis(100);
        deliver.batch_timeout = Duration::from_millis(20);
    }
    // A new alerting group does not page for a year of history.
    if all.runtime.start_from.is_none() {
        route.start_from = StartFrom::NotOlderThan(Duration::from_secs(3600));
        deliver.start_from = route.start_from;
    }
    if destinations.is_empty() {
        tracing::warn!("no PAGERDUTY_API_KEY, SLACK_WEBHOOK_URL or ALERT_WEBHOOK_URL: alerts are logged and kept in agent-alerts");
    }
    let instance = match args.instance.clone().filter(|i| !i.trim().is_empty()) {
        Some(i) => i,
        None => crate::consume_cmd::hostname(),
    };
    tracing::info!(
        rules = %rules.rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(","),
        destinations = %destinations.iter().map(Destination::name).collect::<Vec<_>>().join(","),
        "alert-manager starting"
    );
    let router = AlertSink::new(AlertSettings {
        brokers: route.brokers.clone(),
        instance: format!("{instance}-route"),
        rules: rules.clone(),
    })
    .await
    .context("KAFKA_BROKERS: cannot start the transactional producer")?;
    let sink = AlertSink::new(AlertSettings {
        brokers: evaluate.brokers.clone(),
        instance,
        rules,
    })
    .await
    .context("KAFKA_BROKERS: cannot start the transactional producer")?;
    let delivery = DeliverySink::new(DeliverySettings {
        destinations,
        link,
        rate_per_minute: args.rate_limit,
        request_timeout: Duration::from_secs(10),
    })?;
    let (evaluator_stats, delivery_stats) = (sink.stats(), delivery.stats());
    let routed = service.add(route, router);
    let evaluated = service.add(evaluate, sink);
    evaluated.attach_alerts(evaluator_stats);
    let delivered = service.add(deliver, delivery);
    delivered.attach_alerts(delivery_stats);
    Ok(vec![routed, evaluated, delivered])
}

//! Where alerts go, and the JSON each destination expects: PagerDuty Events API v2,
//! Slack incoming webhooks (Block Kit), and a generic JSON webhook (the alert event as
//! it is in `agent-alerts`).

use agentbus_client::alert::{AgentAlert, AlertAction, AlertKind};
use serde_json::{json, Value};
use std::time::Duration;

/// PagerDuty's Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// One destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// PagerDuty Events API v2.
    PagerDuty {
        /// `PAGERDUTY_EVENTS_URL`.
        url: String,
        /// `PAGERDUTY_API_KEY`: the integration's routing key.
        routing_key: String,
    },
    /// A Slack incoming webhook (`SLACK_WEBHOOK_URL`).
    Slack {
        /// The webhook URL.
        url: String,
    },
    /// Any endpoint that takes the alert event as JSON (`ALERT_WEBHOOK_URL`).
    Webhook {
        /// The URL.
        url: String,
    },
}

impl Destination {
    /// `pagerduty`, `slack` or `webhook` (the `destination` label).
    pub fn name(&self) -> &'static str {
        match self {
            Destination::PagerDuty { .. } => "pagerduty",
            Destination::Slack { .. } => "slack",
            Destination::Webhook { .. } => "webhook",
        }
    }

    /// The URL requests go to.
    pub fn url(&self) -> &str {
        match self {
            Destination::PagerDuty { url, .. }
            | Destination::Slack { url }
            | Destination::Webhook { url } => url,
        }
    }

    /// Whether this destination gets `alert` (PagerDuty opens incidents: it gets no
    /// suppression summaries).
    pub fn wants(&self, alert: &AgentAlert) -> bool {
        !(matches!(self, Destination::PagerDuty { .. }) && alert.kind == AlertKind::Suppressed)
    }

    /// The request body for `alert`; `link` is the `ALERT_LINK_URL` with `{dedup_key}`
    /// filled in.
    pub fn body(&self, alert: &AgentAlert, link: Option<&str>) -> Value {
        match self {
            Destination::PagerDuty { routing_key, .. } => pagerduty(routing_key, alert, link),
            Destination::Slack { .. } => slack(alert, link),
            // Serializing the event cannot fail.
            Destination::Webhook { .. } => serde_json::to_value(alert).unwrap_or(Value::Null),
        }
    }
}

/// The PagerDuty Events API v2 event: `trigger` with the payload, or `resolve` by
/// `dedup_key`.
pub fn pagerduty(routing_key: &str, alert: &AgentAlert, link: Option<&str>) -> Value {
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": alert.action.as_str(),
        "dedup_key": alert.dedup_key,
    });
    if alert.action == AlertAction::Trigger {
        event["payload"] = json!({
            "summary": truncate(&alert.summary, 1024),
            "source": alert.agent_name.clone().unwrap_or_else(|| "agentbus alert-manager".to_string()),
            "severity": alert.severity.as_str(),
            "timestamp": alert.timestamp.as_str(),
            "component": alert.subject,
            "group": alert.rule,
            "class": alert.kind.as_str(),
            "custom_details": custom_details(alert),
        });
        event["client"] = json!("agentbus");
        if let Some(href) = link {
            event["links"] = json!([{ "href": href, "text": "agentbus" }]);
        }
    }
    event
}

fn custom_details(alert: &AgentAlert) -> Value {
    let mut d = json!({
        "rule": alert.rule,
        "subject": alert.subject,
        "occurrences": alert.occurrences,
        "window_seconds": alert.window_seconds,
        "first_seen": alert.first_seen.as_str(),
        "last_seen": alert.last_seen.as_str(),
        "correlation_id": alert.correlation_id.as_str(),
    });
    if let (Some(obj), Value::Object(extra)) = (d.as_object_mut(), &alert.details) {
        for (k, v) in extra {
            obj.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    d
}

/// A Slack Block Kit message: a header, the summary, the facts as fields, and a link.
pub fn slack(alert: &AgentAlert, link: Option<&str>) -> Value {
    let icon = match (alert.action, alert.kind) {
        (AlertAction::Resolve, _) => ":white_check_mark:",
        (_, AlertKind::Suppressed) => ":mute:",
        _ => match alert.severity {
            agentbus_client::alert::Severity::Critical => ":rotating_light:",
            agentbus_client::alert::Severity::Error => ":red_circle:",
            agentbus_client::alert::Severity::Warning => ":warning:",
            agentbus_client::alert::Severity::Info => ":information_source:",
        },
    };
    let title = format!(
        "{icon} [{}] {} {}",
        alert.severity.as_str().to_uppercase(),
        alert.rule,
        if alert.action == AlertAction::Resolve {
            "resolved"
        } else {
            "firing"
        }
    );
    let field = |name: &str, value: String| json!({ "type": "mrkdwn", "text": format!("*{name}*\n{value}") });
    let mut fields = vec![
        field("Subject", alert.subject.clone()),
        field("Occurrences", alert.occurrences.to_string()),
        field("First seen", alert.first_seen.as_str().to_string()),
        field("Last seen", alert.last_seen.as_str().to_string()),
        field("Window", format!("{} s", alert.window_seconds)),
        field("Dedup key", format!("`{}`", alert.dedup_key)),
    ];
    if let Some(agent) = &alert.agent_name {
        fields.push(field("Agent", agent.clone()));
    }
    if let Some(href) = link {
        fields.push(field("Link", format!("<{href}|open in agentbus>")));
    }
    fields.truncate(10);
    json!({
        "text": format!("{title}: {}", alert.summary),
        "blocks": [
            { "type": "header", "text": { "type": "plain_text", "text": truncate(&title, 150), "emoji": true } },
            { "type": "section", "text": { "type": "mrkdwn", "text": truncate(&alert.summary, 3000) } },
            { "type": "section", "fields": fields },
            { "type": "context", "elements": [
                { "type": "mrkdwn", "text": format!("agentbus alert-manager · {} · {}", alert.kind.as_str(), alert.timestamp.as_str()) }
            ] }
        ]
    })
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx.
    Accepted,
    /// Worth another try: a network error, a timeout, 429 or 5xx; `Retry-After` when
    /// the answer said.
    Retry {
        /// What happened.
        reason: String,
        /// The server's `Retry-After`.
        after: Option<Duration>,
    },
    /// Refused for good (another 4xx): the status and the answer.
    Refused(String),
}

/// Sends `body` to `url`.
pub async fn send(client: &reqwest::Client, url: &str, body: &Value) -> Outcome {
    let response = match client.post(url).json(body).send().await {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Retry {
                reason: e.to_string(),
                after: None,
            }
        }
    };
    let status = response.status();
    let after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    if status.is_success() {
        return Outcome::Accepted;
    }
    let text: String = response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(500)
        .collect();
    let reason = format!("HTTP {}: {}", status.as_u16(), text.trim());
    if status.as_u16() == 429 || status.is_server_error() {
        Outcome::Retry { reason, after }
    } else {
        Outcome::Refused(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(action: AlertAction) -> AgentAlert {
        let mut a: AgentAlert = serde_json::from_str(agentbus_client::examples::json(
            agentbus_client::Topic::AgentAlerts,
        ))
        .unwrap();
        a.action = action;
        a
    }

    #[test]
    fn pagerduty_events_have_the_v2_shape() {
        let t = pagerduty("key", &alert(AlertAction::Trigger), Some("http://x/y"));
        assert_eq!(t["event_action"], "trigger");
        assert_eq!(t["routing_key"], "key");
        assert_eq!(t["payload"]["severity"], "critical");
        assert!(t["payload"]["summary"]
            .as_str()
            .unwrap()
            .contains("4 failures"));
        assert_eq!(t["payload"]["custom_details"]["threshold"], 3);
        let r = pagerduty("key", &alert(AlertAction::Resolve), None);
        assert_eq!(r["event_action"], "resolve");
        assert_eq!(r["dedup_key"], t["dedup_key"]);
        assert!(r.get("payload").is_none());
    }

    #[test]
    fn slack_messages_are_block_kit() {
        let m = slack(&alert(AlertAction::Trigger), Some("http://x/y"));
        assert!(m["text"].as_str().unwrap().contains("repeated-failures"));
        assert_eq!(m["blocks"][0]["type"], "header");
        let fields = m["blocks"][2]["fields"].as_array().unwrap();
        assert!(fields
            .iter()
            .any(|f| f["text"].as_str().unwrap().starts_with("*Link*")));
    }
}

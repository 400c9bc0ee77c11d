//! The control API of `agentbus broker --control ADDR`: HTTP/JSON on its own port, so a
//! test suite in any language can do what testkit does in Rust — stop and start a
//! presented node, move a leader or a coordinator, inject an error, a delay or a
//! disconnect for an API, move the broker's clock, read the requests it saw.
//!
//! Errors and APIs are named as Kafka names them (`NOT_LEADER_OR_FOLLOWER`, `Produce`),
//! or given as numbers.

use agentbus_broker::{Broker, Fault, InjectedFault, Inspector};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use kafka_protocol::error::ParseResponseErrorCode;
use kafka_protocol::messages::ApiKey;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The broker, shared with the command that stops it at the end.
pub(crate) type SharedBroker = Arc<Mutex<Option<Broker>>>;

#[derive(Clone)]
struct Ctl {
    broker: SharedBroker,
    inspect: Inspector,
}

/// A refused control request: 400 (or 404) with `{"error": …}`.
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad(message: impl Into<String>) -> Refused {
    Refused(StatusCode::BAD_REQUEST, message.into())
}

type Reply = Result<Json<Value>, Refused>;

/// Kafka's name of an error code: `NotLeaderOrFollower` → `NOT_LEADER_OR_FOLLOWER`.
pub(crate) fn error_name(code: i16) -> String {
    let Some(e) = code.err() else {
        return "NONE".into();
    };
    let camel = format!("{e:?}");
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// An error code from its Kafka name or its number.
fn error_code(v: &Value) -> Result<i16, Refused> {
    if let Some(n) = v.as_i64() {
        return i16::try_from(n).map_err(|_| bad(format!("error code {n} is out of range")));
    }
    let name = v
        .as_str()
        .ok_or_else(|| bad("`error` is a Kafka error name or code"))?;
    (-1..=200)
        .find(|c| *c != 0 && error_name(*c) == name.to_ascii_uppercase())
        .ok_or_else(|| bad(format!("unknown Kafka error `{name}`")))
}

fn api_name(key: i16) -> String {
    ApiKey::try_from(key).map_or_else(|_| key.to_string(), |k| format!("{k:?}"))
}

/// An API key from its name (`Produce`, `produce`) or its number.
fn api_key(v: &Value) -> Result<i16, Refused> {
    if let Some(n) = v.as_i64() {
        return i16::try_from(n).map_err(|_| bad(format!("API key {n} is out of range")));
    }
    let name = v
        .as_str()
        .ok_or_else(|| bad("`api` is a Kafka API name or key"))?;
    ApiKey::iter()
        .find(|k| format!("{k:?}").eq_ignore_ascii_case(name))
        .map(|k| k as i16)
        .ok_or_else(|| bad(format!("unknown Kafka API `{name}`")))
}

fn node_json(n: agentbus_broker::NodeInfo) -> Value {
    json!({ "id": n.id, "host": n.host, "port": n.port, "rack": n.rack, "up": n.up })
}

async fn cluster(State(c): State<Ctl>) -> Json<Value> {
    let auth = c.inspect.authentications();
    Json(json!({
        "controller": c.inspect.controller(),
        "nodes": c.inspect.nodes().into_iter().map(node_json).collect::<Vec<_>>(),
        "connections": {
            "refused": c.inspect.connections_refused(),
            "authenticated": auth.succeeded,
            "failed_authentications": auth.failed,
        },
    }))
}

fn known_node(c: &Ctl, id: i32) -> Result<(), Refused> {
    if c.inspect.nodes().iter().any(|n| n.id == id) {
        Ok(())
    } else {
        Err(Refused(StatusCode::NOT_FOUND, format!("no node {id}")))
    }
}

async fn stop_node(State(c): State<Ctl>, Path(id): Path<i32>) -> Reply {
    known_node(&c, id)?;
    if c.inspect.nodes().iter().filter(|n| n.up).count() == 1
        && c.inspect.nodes().iter().any(|n| n.id == id && n.up)
    {
        return Err(bad("the last node up cannot be stopped"));
    }
    let mut broker = c.broker.lock().await;
    let broker = broker
        .as_mut()
        .ok_or_else(|| bad("the broker is stopping"))?;
    broker.stop_node(id);
    tracing::info!(node = id, "node stopped through the control API");
    Ok(Json(json!({ "node": id, "up": false })))
}

async fn start_node(State(c): State<Ctl>, Path(id): Path<i32>) -> Reply {
    known_node(&c, id)?;
    let mut broker = c.broker.lock().await;
    let broker = broker
        .as_mut()
        .ok_or_else(|| bad("the broker is stopping"))?;
    broker
        .start_node(id)
        .await
        .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    tracing::info!(node = id, "node started through the control API");
    Ok(Json(json!({ "node": id, "up": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveTo {
    node: i32,
}

fn known_partition(c: &Ctl, topic: &str, partition: i32) -> Result<(), Refused> {
    match c.inspect.topic(topic) {
        Some(t) if (0..t.partitions).contains(&partition) => Ok(()),
        _ => Err(Refused(
            StatusCode::NOT_FOUND,
            format!("no partition {topic}-{partition}"),
        )),
    }
}

async fn leader(State(c): State<Ctl>, Path((topic, partition)): Path<(String, i32)>) -> Reply {
    known_partition(&c, &topic, partition)?;
    let leader = c.inspect.leader(&topic, partition);
    Ok(Json(
        json!({ "topic": topic, "partition": partition, "leader": leader }),
    ))
}

async fn move_leader(
    State(c): State<Ctl>,
    Path((topic, partition)): Path<(String, i32)>,
    Json(to): Json<MoveTo>,
) -> Reply {
    known_node(&c, to.node)?;
    known_partition(&c, &topic, partition)?;
    c.inspect
        .move_leader(&topic, partition, to.node)
        .map_err(|e| bad(e.to_string()))?;
    Ok(Json(
        json!({ "topic": topic, "partition": partition, "leader": to.node }),
    ))
}

async fn coordinator(State(c): State<Ctl>, Path(key): Path<String>) -> Json<Value> {
    Json(json!({ "key": key, "coordinator": c.inspect.coordinator(&key) }))
}

async fn move_coordinator(
    State(c): State<Ctl>,
    Path(key): Path<String>,
    Json(to): Json<MoveTo>,
) -> Reply {
    known_node(&c, to.node)?;
    c.inspect.move_coordinator(&key, to.node);
    Ok(Json(json!({ "key": key, "coordinator": to.node })))
}

/// `{"api": "Produce", "error": "NOT_LEADER_OR_FOLLOWER"}`, or `"delay_ms": 500`, or
/// `"disconnect": true`; `"node"` and `"times"` optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewFault {
    api: Value,
    node: Option<i32>,
    times: Option<usize>,
    error: Option<Value>,
    delay_ms: Option<u64>,
    #[serde(default)]
    disconnect: bool,
}

fn fault_json(f: InjectedFault) -> Value {
    let fault = match f.fault {
        Fault::Error(code) => json!({ "error": error_name(code), "code": code }),
        Fault::Delay(d) => json!({ "delay_ms": d.as_millis() as u64 }),
        Fault::Disconnect => json!({ "disconnect": true }),
    };
    json!({
        "id": f.id,
        "api": api_name(f.api_key),
        "api_key": f.api_key,
        "node": f.node,
        "fault": fault,
        "remaining": f.remaining,
    })
}

async fn inject(State(c): State<Ctl>, Json(f): Json<NewFault>) -> Reply {
    let api = api_key(&f.api)?;
    let fault = match (&f.error, f.delay_ms, f.disconnect) {
        (Some(e), None, false) => Fault::Error(error_code(e)?),
        (None, Some(ms), false) => Fault::Delay(Duration::from_millis(ms)),
        (None, None, true) => Fault::Disconnect,
        _ => return Err(bad("give exactly one of `error`, `delay_ms`, `disconnect`")),
    };
    if let Some(n) = f.node {
        known_node(&c, n)?;
    }
    if f.times == Some(0) {
        return Err(bad(
            "`times` is at least 1 (leave it out for until removed)",
        ));
    }
    let id = c.inspect.inject(api, f.node, fault, f.times);
    let made = c.inspect.faults().into_iter().find(|r| r.id == id);
    Ok(Json(made.map_or_else(|| json!({ "id": id }), fault_json)))
}

async fn faults(State(c): State<Ctl>) -> Json<Value> {
    Json(Value::from(
        c.inspect
            .faults()
            .into_iter()
            .map(fault_json)
            .collect::<Vec<_>>(),
    ))
}

async fn remove_fault(State(c): State<Ctl>, Path(id): Path<u64>) -> Reply {
    if c.inspect.remove_fault(id) {
        Ok(Json(json!({ "removed": id })))
    } else {
        Err(Refused(StatusCode::NOT_FOUND, format!("no fault {id}")))
    }
}

async fn clear_faults(State(c): State<Ctl>) -> Json<Value> {
    c.inspect.clear_faults();
    Json(json!({ "removed": "all" }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    ms: u64,
}

async fn advance(State(c): State<Ctl>, Json(a): Json<Advance>) -> Json<Value> {
    c.inspect.advance(Duration::from_millis(a.ms));
    Json(json!({ "now_ms": c.inspect.now_ms() }))
}

async fn clock(State(c): State<Ctl>) -> Json<Value> {
    Json(json!({ "now_ms": c.inspect.now_ms() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Recording {
    on: bool,
}

async fn recording(State(c): State<Ctl>, Json(r): Json<Recording>) -> Json<Value> {
    c.inspect.set_recording(r.on);
    Json(json!({ "recording": r.on }))
}

async fn requests(State(c): State<Ctl>) -> Json<Value> {
    Json(Value::from(
        c.inspect
            .recorded()
            .into_iter()
            .map(|r| {
                json!({
                    "api": api_name(r.api_key),
                    "api_key": r.api_key,
                    "version": r.version,
                    "client_id": r.client_id,
                    "node": r.node_id,
                })
            })
            .collect::<Vec<_>>(),
    ))
}

async fn clear_requests(State(c): State<Ctl>) -> Json<Value> {
    c.inspect.clear_recorded();
    Json(json!({ "cleared": true }))
}

async fn violations(State(c): State<Ctl>) -> Json<Value> {
    Json(Value::from(c.inspect.violations()))
}

fn router(ctl: Ctl) -> Router {
    Router::new()
        .route("/v1/cluster", get(cluster))
        .route("/v1/nodes/{id}/stop", post(stop_node))
        .route("/v1/nodes/{id}/start", post(start_node))
        .route(
            "/v1/partitions/{topic}/{partition}/leader",
            get(leader).put(move_leader),
        )
        .route(
            "/v1/coordinators/{key}",
            get(coordinator).put(move_coordinator),
        )
        .route("/v1/faults", get(faults).post(inject).delete(clear_faults))
        .route("/v1/faults/{id}", axum::routing::delete(remove_fault))
        .route("/v1/clock", get(clock))
        .route("/v1/clock/advance", post(advance))
        .route("/v1/requests", get(requests).delete(clear_requests))
        .route("/v1/requests/recording", put(recording))
        .route("/v1/violations", get(violations))
        .with_state(ctl)
}

/// Binds `addr` and serves the control API until the process ends; returns the address.
pub(crate) async fn serve(addr: &str, broker: SharedBroker) -> anyhow::Result<SocketAddr> {
    let inspect = match broker.lock().await.as_ref() {
        Some(b) => b.inspect(),
        None => anyhow::bail!("the broker is not running"),
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("invalid setting `control`: cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let app = router(Ctl { broker, inspect });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "control API stopped");
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_and_apis_by_kafkas_names() {
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_code(&json!("NOT_LEADER_OR_FOLLOWER")).ok(), Some(6));
        assert_eq!(error_code(&json!("request_timed_out")).ok(), Some(7));
        assert_eq!(error_code(&json!(15)).ok(), Some(15));
        assert!(error_code(&json!("NO_SUCH_ERROR")).is_err());
        assert_eq!(api_key(&json!("Produce")).ok(), Some(0));
        assert_eq!(api_key(&json!("joingroup")).ok(), Some(11));
        assert!(api_key(&json!("Nope")).is_err());
        assert_eq!(api_name(3), "Metadata");
    }
}

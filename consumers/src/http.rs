//! `/health`, `/ready`, `/metrics` (Prometheus text) and `/metrics.json`, for every
//! consumer group of the process behind one listener, plus the routes a group adds
//! (the metrics-aggregator's `/api/metrics`).

use crate::metrics::{self, Metrics};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::{Json, Router};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The groups one process runs.
type Groups = Arc<Vec<Arc<Metrics>>>;

/// The router over `groups`, merged with `extra`.
pub fn router(groups: Vec<Arc<Metrics>>, extra: Router) -> Router {
    Router::new()
        .route("/health", routing::get(health))
        .route("/ready", routing::get(ready))
        .route("/metrics", routing::get(prometheus))
        .route("/metrics.json", routing::get(json))
        .with_state(Arc::new(groups))
        .merge(extra)
}

/// Serves the endpoints on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    groups: Vec<Arc<Metrics>>,
    extra: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(groups, extra))
        .with_graceful_shutdown(shutdown)
        .await
}

fn status(ok: bool) -> StatusCode {
    if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn health(State(groups): State<Groups>) -> Response {
    let healthy = groups.iter().all(|m| m.healthy());
    let ready = groups.iter().all(|m| m.ready());
    let each: serde_json::Map<String, serde_json::Value> = groups
        .iter()
        .map(|m| {
            let v = serde_json::json!({ "healthy": m.healthy(), "ready": m.ready() });
            (m.group().to_string(), v)
        })
        .collect();
    let body = serde_json::json!({
        "status": if healthy { "healthy" } else { "shutting_down" },
        "consumer": if healthy { "running" } else { "stopping" },
        "ready": ready,
        "groups": each,
    });
    (status(healthy), Json(body)).into_response()
}

async fn ready(State(groups): State<Groups>) -> Response {
    let ready = !groups.is_empty() && groups.iter().all(|m| m.ready());
    (status(ready), Json(serde_json::json!({ "ready": ready }))).into_response()
}

async fn prometheus(State(groups): State<Groups>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(&groups),
    )
        .into_response()
}

/// One group's fields (`?group=` picks it; with one group it is the answer), else
/// every group's under `groups`.
async fn json(State(groups): State<Groups>, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(name) = q.get("group") {
        return match groups.iter().find(|m| m.group() == name) {
            Some(m) => Json(m.json()).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                Json(serde_json::json!({ "error": format!("no consumer group {name:?} here") })),
            )
                .into_response(),
        };
    }
    if let [only] = groups.as_slice() {
        return Json(only.json()).into_response();
    }
    let each: serde_json::Map<String, serde_json::Value> = groups
        .iter()
        .map(|m| (m.group().to_string(), m.json()))
        .collect();
    let healthy = groups.iter().all(|m| m.healthy());
    Json(serde_json::json!({
        "status": if healthy { "healthy" } else { "shutting_down" },
        "groups": each,
    }))
    .into_response()
}

/// A blocking `GET path` on `127.0.0.1:port`, for probes, tests and benchmarks: the
/// status code and the body.
pub fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    s.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

//! `/health`, `/ready`, `/metrics` (Prometheus text) and `/metrics.json`.

use crate::metrics::Metrics;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::{Json, Router};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The router over `metrics`.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/health", routing::get(health))
        .route("/ready", routing::get(ready))
        .route("/metrics", routing::get(prometheus))
        .route("/metrics.json", routing::get(json))
        .with_state(metrics)
}

/// Serves the endpoints on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn health(State(m): State<Arc<Metrics>>) -> Response {
    let code = if m.healthy() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if m.healthy() { "healthy" } else { "shutting_down" },
        "consumer": if m.healthy() { "running" } else { "stopping" },
        "ready": m.ready(),
    });
    (code, Json(body)).into_response()
}

async fn ready(State(m): State<Arc<Metrics>>) -> Response {
    let ready = m.ready();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(serde_json::json!({ "ready": ready }))).into_response()
}

async fn prometheus(State(m): State<Arc<Metrics>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.prometheus(),
    )
        .into_response()
}

async fn json(State(m): State<Arc<Metrics>>) -> Response {
    Json(m.json()).into_response()
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

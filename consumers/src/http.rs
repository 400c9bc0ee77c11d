//! `/health`, `/ready`, `/metrics` (Prometheus text) and `/metrics.json`.

use crate::metrics::Metrics;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The router over `metrics`.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(prometheus))
        .route("/metrics.json", get(json))
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

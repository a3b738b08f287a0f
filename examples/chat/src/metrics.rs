//! `GET /metrics`: the gateways' metrics (see `ws_gateway::telemetry`) in Prometheus's
//! text format, through `metrics-exporter-prometheus`.

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};

/// Installs the process-wide Prometheus recorder. Call once, at start.
///
/// # Errors
///
/// A recorder is already installed.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    PrometheusBuilder::new().install_recorder()
}

/// The `/metrics` route.
pub fn routes(handle: PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move { handle.render() }
        }),
    )
}

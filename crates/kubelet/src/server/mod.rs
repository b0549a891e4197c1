//! The kubelet's unauthenticated HTTP endpoints (upstream `pkg/kubelet/server`): the healthz port
//! (10248) and the read-only port (10255).
//!
//! Owns routing, response formats and listener lifetimes. It knows nothing about how pods or
//! health are tracked: callers hand in a [`PodLister`] and a [`HealthChecker`]. The authenticated
//! port (10250: exec, logs, port-forward) is [`secure`].

mod healthz;
pub mod kubelet_metrics;
pub mod metrics_routes;
mod read_only;
pub mod secure;
mod stats_routes;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::core::v1::Pod;
use tokio::net::TcpListener;

use crate::stats::StatsSource;

/// The pods the kubelet is managing, each with its current status filled in.
///
/// Called from request handlers: it must be cheap and must not block on I/O (read a store).
pub trait PodLister: Send + Sync + 'static {
    /// Every pod the kubelet manages, with `status` as the kubelet last computed it.
    fn pods(&self) -> Vec<Pod>;

    /// Every pod the kubelet manages, as its source gave it (its `status` is not the
    /// kubelet's), with the start time the kubelet reports: for readers of specs, which then
    /// share the pods instead of copying them.
    fn pod_specs(&self) -> Vec<SharedPod> {
        self.pods()
            .into_iter()
            .map(|p| SharedPod { start_time: p.status.as_ref().and_then(|s| s.start_time.clone()), pod: std::sync::Arc::new(p) })
            .collect()
    }
}

/// A pod as its source gave it ([`PodLister::pod_specs`]).
#[derive(Debug, Clone)]
pub struct SharedPod {
    /// The pod (its `status` is the source's, not the kubelet's).
    pub pod: std::sync::Arc<Pod>,
    /// `status.startTime` as the kubelet reports it.
    pub start_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}

/// A set of metrics served in the Prometheus text format (e.g. `/metrics/probes`). Must be
/// cheap and must not block on I/O.
pub trait MetricsSource: Send + Sync + 'static {
    /// The metrics as Prometheus text exposition (`# HELP`/`# TYPE` lines and samples).
    fn render(&self) -> String;
}

/// The kubelet's liveness, served as the `syncloop` health check (e.g. the sync loop iterated and
/// PLEG relisted recently). `Err` carries why it is unhealthy: the aggregated `/healthz`
/// withholds it (`reason withheld`); the single check `/healthz/syncloop` answers with it.
pub trait HealthChecker: Send + Sync + 'static {
    /// `Ok` when the kubelet is healthy; otherwise `Err` with the reason.
    fn healthy(&self) -> Result<(), String>;
}

/// The router for the healthz port: `/healthz`, `/healthz/ping`, `/healthz/log`,
/// `/healthz/syncloop`.
pub fn healthz_router(health: Arc<dyn HealthChecker>) -> Router {
    healthz::routes(health).fallback(not_found)
}

/// The optional endpoints of the read-only port.
#[derive(Default)]
pub struct ReadOnlyExtras {
    /// `/stats/summary`, `/metrics/resource`, `/metrics/cadvisor`.
    pub stats: Option<Arc<dyn StatsSource>>,
    /// `/metrics`, `/metrics/probes`.
    pub metrics: Option<Arc<metrics_routes::MetricsEndpoints>>,
}

/// The router for the read-only port: healthz, `GET /pods` and the stats and metrics endpoints
/// it is given.
pub fn read_only_router(pods: Arc<dyn PodLister>, health: Arc<dyn HealthChecker>, extras: ReadOnlyExtras) -> Router {
    let mut router = healthz::routes(health).merge(read_only::routes(pods));
    if let Some(s) = extras.stats {
        router = router.merge(stats_routes::routes(s));
    }
    if let Some(m) = extras.metrics {
        router = router.merge(metrics_routes::routes(m));
    }
    router.fallback(not_found)
}

/// Serves the healthz endpoints on `addr` until `shutdown` completes.
pub async fn serve_healthz(
    addr: SocketAddr,
    health: Arc<dyn HealthChecker>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = bind(addr).await?;
    serve_on(listener, healthz_router(health), shutdown).await
}

/// Serves the read-only port on `addr` until `shutdown` completes.
pub async fn serve_read_only(
    addr: SocketAddr,
    pods: Arc<dyn PodLister>,
    health: Arc<dyn HealthChecker>,
    extras: ReadOnlyExtras,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = bind(addr).await?;
    serve_on(listener, read_only_router(pods, health, extras), shutdown).await
}

async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| io::Error::new(e.kind(), format!("failed to listen on {addr}: {e}")))
}

/// Serves `router` on an already bound listener; in-flight requests finish after `shutdown`.
pub async fn serve_on(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving HTTP");
    // As Go's listeners: no Nagle (a small final write would wait for a delayed ACK).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("serving on {addr}: {e}")))
}

/// A plain-text response as Go's `http.Error` and `fmt.Fprint` produce them.
pub(crate) fn text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")], body).into_response()
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 page not found\n".to_string())
}

#[cfg(test)]
mod tests;

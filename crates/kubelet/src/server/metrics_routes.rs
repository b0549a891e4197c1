//! `/metrics` (the kubelet's own metrics: node name, running pods and containers, and what the
//! [`KubeletMetrics`](crate::metrics::KubeletMetrics) recorded) and `/metrics/probes`, on the
//! authenticated and the read-only port alike, as upstream's default handlers.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::stats_routes::PROMETHEUS_TEXT;
use super::{MetricsSource, PodLister};

/// What the two endpoints render.
pub struct MetricsEndpoints {
    /// This node's name, the `node` label of `kubelet_node_name` on `/metrics`.
    pub node_name: String,
    /// The managed pods, counted into the running pod and container gauges on `/metrics`.
    pub pods: Arc<dyn PodLister>,
    /// Appended to `/metrics`.
    pub kubelet: Option<Arc<dyn MetricsSource>>,
    /// `/metrics/probes`; 404 when `None`.
    pub probes: Option<Arc<dyn MetricsSource>>,
}

pub(super) fn routes<S>(m: Arc<MetricsEndpoints>) -> Router<S> {
    Router::new().route("/metrics", get(kubelet_metrics)).route("/metrics/probes", get(probe_metrics)).with_state(m)
}

async fn kubelet_metrics(State(m): State<Arc<MetricsEndpoints>>) -> Response {
    let mut body = super::kubelet_metrics::render(&m.node_name, &m.pods.pods());
    if let Some(k) = &m.kubelet {
        body.push_str(&k.render());
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, PROMETHEUS_TEXT)], body).into_response()
}

async fn probe_metrics(State(m): State<Arc<MetricsEndpoints>>) -> Response {
    match &m.probes {
        Some(p) => (StatusCode::OK, [(header::CONTENT_TYPE, PROMETHEUS_TEXT)], p.render()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

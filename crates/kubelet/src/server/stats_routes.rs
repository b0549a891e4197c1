//! The stats endpoints, on the authenticated and the read-only port alike (upstream
//! `InstallDefaultHandlers`): `/stats/summary` (JSON; `?only_cpu_and_memory=true` trims it),
//! `/metrics/resource` and `/metrics/cadvisor` (Prometheus text). All read the collector's
//! latest snapshot; before the first one, the summary answers 503 and the metrics report a
//! scrape error.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::text;
use crate::stats::{StatsSource, cadvisor_metrics, resource_metrics, summary_json};

/// The Prometheus text exposition's content type.
pub(crate) const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) fn routes<S>(stats: Arc<dyn StatsSource>) -> Router<S> {
    Router::new()
        .route("/stats/summary", get(summary).post(summary))
        .route("/metrics/resource", get(resource))
        .route("/metrics/cadvisor", get(cadvisor))
        .with_state(stats)
}

async fn summary(State(stats): State<Arc<dyn StatsSource>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let only = match q.get("only_cpu_and_memory").map(String::as_str) {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("Error parsing only_cpu_and_memory: strconv.ParseBool: parsing {other:?}: invalid syntax\n"),
            );
        }
    };
    match stats.latest() {
        Some(s) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], summary_json(&s, only)).into_response(),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "Internal Error: stats are not collected yet\n".into()),
    }
}

async fn resource(State(stats): State<Arc<dyn StatsSource>>) -> Response {
    let s = stats.latest();
    (StatusCode::OK, [(header::CONTENT_TYPE, PROMETHEUS_TEXT)], resource_metrics::render(s.as_deref())).into_response()
}

async fn cadvisor(State(stats): State<Arc<dyn StatsSource>>) -> Response {
    let s = stats.latest();
    (StatusCode::OK, [(header::CONTENT_TYPE, PROMETHEUS_TEXT)], cadvisor_metrics::render(s.as_deref())).into_response()
}

//! The read-only port's pod listing (upstream `Server.getPods`): `GET /pods` → `v1.PodList`.
//!
//! Serves whatever the [`PodLister`] returns, unfiltered and unauthenticated, as upstream does.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use k8s_openapi::List;
use k8s_openapi::api::core::v1::Pod;

use super::{PodLister, text};

pub(super) fn routes<S>(pods: Arc<dyn PodLister>) -> Router<S> {
    Router::new().route("/pods", get(list_pods)).route("/pods/", get(list_pods)).with_state(pods)
}

async fn list_pods(State(pods): State<Arc<dyn PodLister>>) -> Response {
    let list: List<Pod> = List { items: pods.pods(), metadata: Default::default() };
    match serde_json::to_vec(&list) {
        Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "encoding pod list");
            text(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to encode pods: {e}\n"))
        }
    }
}

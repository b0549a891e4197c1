//! The kubelet's authenticated HTTPS server on `port` (10250; upstream `pkg/kubelet/server`
//! `Server` with its auth filter): `/healthz`, `/pods`, `/runningpods/`, `/configz`,
//! `/containerLogs`, `/exec`, `/attach`, `/portForward`, `/logs/`, `/metrics`, `/metrics/probes`,
//! and the stats endpoints (`/stats/summary`, `/metrics/resource`, `/metrics/cadvisor`).
//!
//! Every request is authenticated ([`authn`]) and authorized ([`authz`]) as a subresource of the
//! node ([`attributes`]) before it reaches a handler: 401 `Unauthorized`, 403 `Forbidden (...)`.
//! TLS lives in [`tls`]; the listener hands each handshaken connection's verified client
//! certificate user to the auth filter.

pub mod attributes;
pub mod authn;
pub mod authz;
mod container_logs;
pub mod cri_log;
mod listener;
pub mod node_log_query;
mod node_log_query_serve;
pub mod node_logs;
pub mod runtime_lookup;
pub mod setup;
pub mod streaming;
pub mod tls;
mod ttl_cache;
pub mod x509_subject;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use k8s_openapi::api::core::v1::Pod;
use kubelet_config::KubeletConfiguration;
use kubelet_cri::RuntimeService;
use kubelet_types::review::{AccessReviewer, Reviewer, TokenReviewer};

pub use authn::{Authenticator, Credentials};
pub use authz::Authorizer;
pub use listener::{PeerIdentity, TlsListener};

use super::{HealthChecker, PodLister, healthz, read_only, text};

/// What the handlers and the auth filter need.
pub struct SecureContext {
    /// This node's name: the `name` of the `nodes` subresource requests are authorized against.
    pub node_name: String,
    /// The managed pods, served by `/pods` and looked up by the log and streaming handlers.
    pub pods: Arc<dyn PodLister>,
    /// The kubelet's liveness, served by the `/healthz` endpoints.
    pub health: Arc<dyn HealthChecker>,
    /// The CRI runtime service: `/runningpods/`, exec, attach, port-forward and container logs.
    pub runtime: Arc<dyn RuntimeService>,
    /// Who is calling (client certificate, bearer token or anonymous), from `authentication`.
    pub authenticator: Authenticator,
    /// Whether the caller may reach the node subresource, from `authorization.mode`.
    pub authorizer: Authorizer,
    /// Served under `/logs/` (`/var/log`).
    pub node_log_dir: PathBuf,
    /// `enableSystemLogQuery`: `/logs/?query=…` answers node log queries.
    pub log_query: bool,
    /// The body of `/configz`: `{"kubeletconfig": <the KubeletConfiguration in force>}`.
    pub configz: Arc<Vec<u8>>,
    /// The kubelet's own metrics, appended to `/metrics` (pod worker, PLEG, CRI operations,
    /// process).
    pub kubelet_metrics: Option<Arc<dyn super::MetricsSource>>,
    /// `/metrics/probes` (prober_probe_total); not served when `None`.
    pub probe_metrics: Option<Arc<dyn super::MetricsSource>>,
    /// `/stats/summary`, `/metrics/resource`, `/metrics/cadvisor`; not served when `None`.
    pub stats: Option<Arc<dyn crate::stats::StatsSource>>,
}

/// The `/configz` body for `cfg`, as upstream's configz handler writes it (the v1beta1
/// configuration under `kubeletconfig`).
pub fn configz_body(cfg: &KubeletConfiguration) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "kubeletconfig": cfg })).unwrap_or_else(|_| b"{}".to_vec())
}

impl SecureContext {
    /// The managed pod `namespace/name`.
    pub fn find_pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        self.pods
            .pods()
            .into_iter()
            .find(|p| p.metadata.namespace.as_deref().unwrap_or("default") == namespace && p.metadata.name.as_deref() == Some(name))
    }
}

/// Why the server's auth could not be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    /// `authentication.webhook.enabled` is set but there is no API client to send TokenReviews.
    #[error("no client provided, cannot use webhook authentication (authentication.webhook.enabled needs --kubeconfig)")]
    NoClientForAuthentication,
    /// `authorization.mode` is `Webhook` but there is no API client to send SubjectAccessReviews.
    #[error("no client provided, cannot use webhook authorization (authorization.mode Webhook needs --kubeconfig)")]
    NoClientForAuthorization,
    /// `authorization.mode` is neither `AlwaysAllow` nor `Webhook`; holds the configured value.
    #[error("authorization.mode: unknown mode {0:?} (AlwaysAllow or Webhook)")]
    UnknownMode(String),
}

/// The authenticator and authorizer of `authentication` / `authorization`, as upstream's
/// `BuildAuth`: webhooks need an API client (`reviewer`).
pub fn build_auth(cfg: &KubeletConfiguration, reviewer: Option<Arc<dyn Reviewer>>) -> Result<(Authenticator, Authorizer), AuthSetupError> {
    let a = &cfg.authentication;
    let tokens: Option<Arc<dyn TokenReviewer>> = match (a.webhook.enabled, &reviewer) {
        (false, _) => None,
        (true, Some(r)) => Some(r.clone() as Arc<dyn TokenReviewer>),
        (true, None) => return Err(AuthSetupError::NoClientForAuthentication),
    };
    let authenticator = Authenticator::new(tokens, a.webhook.cache_ttl, a.anonymous.enabled);
    let z = &cfg.authorization;
    let authorizer = match (z.mode.as_str(), reviewer) {
        ("AlwaysAllow", _) => Authorizer::AlwaysAllow,
        ("Webhook", Some(r)) => {
            Authorizer::webhook(r as Arc<dyn AccessReviewer>, z.webhook.cache_authorized_ttl, z.webhook.cache_unauthorized_ttl)
        }
        ("Webhook", None) => return Err(AuthSetupError::NoClientForAuthorization),
        (other, _) => return Err(AuthSetupError::UnknownMode(other.into())),
    };
    Ok((authenticator, authorizer))
}

/// The router of the authenticated port; every route (and the 404 fallback) behind the auth filter.
pub fn secure_router(ctx: Arc<SecureContext>) -> Router {
    let handlers = Router::new()
        .route("/runningpods/", get(running_pods))
        .route("/runningpods", get(running_pods))
        .route("/containerLogs/{namespace}/{pod}/{container}", get(container_logs::container_logs))
        .route("/exec/{namespace}/{pod}/{container}", get(streaming::exec).post(streaming::exec))
        .route("/exec/{namespace}/{pod}/{uid}/{container}", get(streaming::exec).post(streaming::exec))
        .route("/attach/{namespace}/{pod}/{container}", get(streaming::attach).post(streaming::attach))
        .route("/attach/{namespace}/{pod}/{uid}/{container}", get(streaming::attach).post(streaming::attach))
        .route("/portForward/{namespace}/{pod}", get(streaming::port_forward).post(streaming::port_forward))
        .route("/portForward/{namespace}/{pod}/{uid}", get(streaming::port_forward).post(streaming::port_forward))
        .route("/configz", get(configz))
        .route("/logs", get(node_logs::root))
        .route("/logs/", get(node_logs::root))
        .route("/logs/{*path}", get(node_logs::file))
        .with_state(ctx.clone());
    let metrics = Arc::new(super::metrics_routes::MetricsEndpoints {
        node_name: ctx.node_name.clone(),
        pods: ctx.pods.clone(),
        kubelet: ctx.kubelet_metrics.clone(),
        probes: ctx.probe_metrics.clone(),
    });
    let handlers = handlers.merge(super::metrics_routes::routes(metrics));
    let handlers = match &ctx.stats {
        Some(s) => handlers.merge(super::stats_routes::routes(s.clone())),
        None => handlers,
    };
    healthz::routes(ctx.health.clone())
        .merge(read_only::routes(ctx.pods.clone()))
        .merge(handlers)
        .fallback(|| async { text(StatusCode::NOT_FOUND, "404 page not found\n".into()) })
        .layer(axum::middleware::from_fn_with_state(ctx, auth_filter))
}

/// Upstream's `InstallAuthFilter`: authenticate, build the attributes, authorize.
async fn auth_filter(State(ctx): State<Arc<SecureContext>>, req: Request, next: Next) -> Response {
    let certificate_user = req.extensions().get::<ConnectInfo<PeerIdentity>>().and_then(|c| c.0.user.clone());
    let authorization = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let creds = Credentials { certificate_user, authorization };
    let Some(user) = ctx.authenticator.authenticate(&creds).await else {
        return text(StatusCode::UNAUTHORIZED, "Unauthorized".into());
    };
    let attrs = attributes::request_attributes(req.method().as_str(), req.uri().path(), &ctx.node_name);
    // Allowed when any of the attributes is (the fine-grained subresource, then the coarse one).
    for a in &attrs {
        match ctx.authorizer.authorize(&user, a).await {
            Ok(true) => return next.run(req).await,
            Ok(false) => {}
            Err(e) => {
                let msg = attributes::authorization_error_message(&user, a);
                tracing::warn!("{msg}: {e}");
                return text(StatusCode::INTERNAL_SERVER_ERROR, msg);
            }
        }
    }
    let msg = attributes::forbidden_message(&user, &attrs);
    tracing::debug!("{}", msg.trim_end());
    text(StatusCode::FORBIDDEN, msg)
}

async fn configz(State(ctx): State<Arc<SecureContext>>) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], ctx.configz.as_ref().clone()).into_response()
}

async fn running_pods(State(ctx): State<Arc<SecureContext>>) -> Response {
    match runtime_lookup::running_pods(ctx.runtime.as_ref()).await {
        Ok(items) => {
            let list = k8s_openapi::List { items, metadata: Default::default() };
            match serde_json::to_vec(&list) {
                Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to encode pods: {e}\n")),
            }
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to list running pods: {e}\n")),
    }
}

/// Serves the authenticated port on `addr` over TLS until `shutdown` completes.
pub async fn serve_secure(
    addr: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    ctx: Arc<SecureContext>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = TlsListener::bind(addr, tls, Duration::from_secs(10)).await?;
    serve_secure_on(listener, ctx, shutdown).await
}

/// Serves on an already bound TLS listener (tests bind port 0).
pub async fn serve_secure_on(
    listener: TlsListener,
    ctx: Arc<SecureContext>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.addr();
    tracing::info!(%addr, "serving HTTPS (kubelet server)");
    let app = secure_router(ctx).into_make_service_with_connect_info::<PeerIdentity>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("serving on {addr}: {e}")))
}

#[cfg(test)]
mod tests;

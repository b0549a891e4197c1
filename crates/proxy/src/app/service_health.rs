//! Health-check node port servers for `externalTrafficPolicy: Local`
//! services (upstream `ServiceHealthServer`): one HTTP listener per
//! `healthCheckNodePort`, answering 200 when this node has a ready local
//! endpoint and the proxier is healthy, 503 otherwise, so load balancers
//! send traffic only to nodes that can serve it. Started and stopped as the
//! services come and go; the counts are shared with the listeners.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use super::health::ProxierHealth;
use super::proxier::HealthCheck;
use crate::service::NamespacedName;

type Counts = Arc<Mutex<BTreeMap<NamespacedName, usize>>>;

/// The running health-check servers.
pub struct ServiceHealthServers {
    bind_ip: IpAddr,
    health: Arc<ProxierHealth>,
    counts: Counts,
    servers: BTreeMap<NamespacedName, (u16, CancellationToken)>,
}

/// The body upstream writes.
pub fn body(name: &NamespacedName, local_endpoints: usize, healthy: bool) -> String {
    serde_json::json!({
        "service": {"namespace": name.namespace, "name": name.name},
        "localEndpoints": local_endpoints,
        "serviceProxyHealthy": healthy,
    })
    .to_string()
}

impl ServiceHealthServers {
    /// Listeners bind `bind_ip` (upstream: every address, or the nodePortAddresses).
    pub fn new(health: Arc<ProxierHealth>) -> Self {
        ServiceHealthServers { bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED), health, counts: Counts::default(), servers: BTreeMap::new() }
    }

    /// Binds the listeners to `ip` rather than every IPv4 address (`0.0.0.0`).
    pub fn with_bind_ip(mut self, ip: IpAddr) -> Self {
        self.bind_ip = ip;
        self
    }

    /// Starts, stops and updates servers to match `checks`.
    pub async fn sync(&mut self, checks: &BTreeMap<NamespacedName, HealthCheck>) {
        {
            let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            counts.clear();
            counts.extend(checks.iter().map(|(n, c)| (n.clone(), c.local_endpoints)));
        }
        let stale: Vec<NamespacedName> =
            self.servers.iter().filter(|(n, (port, _))| checks.get(*n).is_none_or(|c| c.port != *port)).map(|(n, _)| n.clone()).collect();
        for n in stale {
            if let Some((_, token)) = self.servers.remove(&n) {
                token.cancel();
            }
        }
        for (name, check) in checks {
            if self.servers.contains_key(name) {
                continue;
            }
            let addr = SocketAddr::new(self.bind_ip, check.port);
            let listener = match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!("cannot serve the health check of {name} on {addr}: {e}");
                    continue;
                }
            };
            let token = CancellationToken::new();
            let app = Router::new().fallback(handle).with_state((name.clone(), self.counts.clone(), self.health.clone()));
            let stop = token.clone();
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await }).await;
            });
            tracing::info!("serving the health check of {name} on {addr}");
            self.servers.insert(name.clone(), (check.port, token));
        }
    }

    /// Stops every server.
    pub fn shutdown(&mut self) {
        for (_, (_, token)) in std::mem::take(&mut self.servers) {
            token.cancel();
        }
    }
}

async fn handle(State((name, counts, health)): State<(NamespacedName, Counts, Arc<ProxierHealth>)>) -> Response {
    let count = counts.lock().unwrap_or_else(|p| p.into_inner()).get(&name).copied().unwrap_or(0);
    let healthy = health.status(SystemTime::now()).healthy;
    let code = if count > 0 && healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut resp = (code, body(&name, count, healthy)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(v) = HeaderValue::from_str(&count.to_string()) {
        h.insert("X-Load-Balancing-Endpoint-Weight", v);
    }
    resp
}

//! The kubelet's HTTP servers (upstream `kubelet/server`): `/healthz`, the read-only port and
//! the authenticated port (with its serving certificate from a signing request when
//! `serverTLSBootstrap` asks for one), and the client certificate's rotation, each an owned task.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use kubelet::server::{self, HealthChecker, MetricsSource};
use kubelet::status_manager::StatusManager;
use kubelet::supervisor::{Stage, Supervisor};
use kubelet_cluster::KubeApi;
use kubelet_config::KubeletOptions;
use kubelet_cri::RuntimeService;

use crate::{AppError, certificates};

/// What the servers serve.
pub(crate) struct ServerParts<'a> {
    pub opts: &'a KubeletOptions,
    pub node_name: &'a str,
    pub host_ip: IpAddr,
    /// The API client in cluster mode (certificates are signed through it).
    pub api: Option<&'a KubeApi>,
    /// Token and access reviews for the authenticated port, in cluster mode.
    pub reviewer: Option<Arc<dyn kubelet_types::review::Reviewer>>,
    pub health: Arc<dyn HealthChecker>,
    pub status: StatusManager,
    pub runtime: Arc<dyn RuntimeService>,
    pub kubelet_metrics: Arc<dyn MetricsSource>,
    /// Where certificate rotation reports (`kubelet_certificate_manager_*`).
    pub certificates: Arc<dyn kubelet_types::certificate_metrics::CertificateObserver>,
    pub probe_metrics: Arc<dyn MetricsSource>,
    pub stats: Arc<dyn kubelet::stats::StatsSource>,
}

fn socket_addr(field: &'static str, host: &str, port: i32) -> Result<SocketAddr, AppError> {
    let ip: IpAddr = host.parse().map_err(|_| AppError::Address { field, value: host.into() })?;
    let port = u16::try_from(port).map_err(|_| AppError::Address { field, value: port.to_string() })?;
    Ok(SocketAddr::new(ip, port))
}

/// Spawns the servers (stage `Serve`) and the certificate rotations (stage `Report`).
pub(crate) fn spawn(tasks: &mut Supervisor<AppError>, p: ServerParts<'_>) -> Result<(), AppError> {
    let (serve_stop, report_stop) = (tasks.token(Stage::Serve), tasks.token(Stage::Report));
    if p.opts.config.healthz_port > 0 {
        let addr = socket_addr("healthzBindAddress", &p.opts.config.healthz_bind_address, p.opts.config.healthz_port)?;
        let (health, stop) = (p.health.clone(), serve_stop.clone());
        tasks.spawn_fallible(Stage::Serve, "healthz server", async move {
            server::serve_healthz(addr, health, async move { stop.cancelled().await }).await.map_err(|source| AppError::Serve {
                what: "healthz server",
                addr,
                source,
            })
        });
    }
    if p.opts.config.read_only_port > 0 {
        let addr = socket_addr("address", &p.opts.config.address, p.opts.config.read_only_port)?;
        let (health, stop) = (p.health.clone(), serve_stop.clone());
        let lister: Arc<dyn server::PodLister> = Arc::new(p.status.clone());
        let extras = server::ReadOnlyExtras {
            stats: Some(p.stats.clone()),
            metrics: Some(Arc::new(server::metrics_routes::MetricsEndpoints {
                node_name: p.node_name.to_string(),
                pods: lister.clone(),
                kubelet: Some(p.kubelet_metrics.clone()),
                probes: Some(p.probe_metrics.clone()),
            })),
        };
        tasks.spawn_fallible(Stage::Serve, "read-only server", async move {
            server::serve_read_only(addr, lister, health, extras, async move { stop.cancelled().await })
                .await
                .map_err(|source| AppError::Serve { what: "read-only server", addr, source })
        });
    }
    // The authenticated kubelet server (port 10250): logs, exec, attach, port-forward.
    // serverTLSBootstrap: port 10250's certificate from a kubelet-serving request, rotated.
    let serving_resolver = match p.api {
        Some(api) if p.opts.config.server_tls_bootstrap && p.opts.config.tls_cert_file.is_empty() => {
            let resolver = certificates::ServingCertResolver::new(&p.opts.flags.cert_dir);
            let hostname = p.node_name.to_string();
            let rotation = certificates::serving_rotation(
                api,
                p.node_name,
                hostname,
                vec![p.host_ip],
                &p.opts.flags.cert_dir,
                resolver.clone(),
                p.certificates.clone(),
            );
            let stop = report_stop.clone();
            tasks.spawn(Stage::Report, "serving certificate rotation", async move {
                let _ = rotation.run(stop).await;
            });
            Some(resolver as Arc<dyn rustls::server::ResolvesServerCert>)
        }
        _ => None,
    };
    if let Some(rotation) = p.api.and_then(|api| certificates::client_rotation(p.opts, p.node_name, api, p.certificates.clone())) {
        let stop = report_stop.clone();
        tasks.spawn_fallible(Stage::Report, "client certificate rotation", async move {
            rotation.run(stop).await.map_err(AppError::CertificateExpired)
        });
    }
    let secure = server::secure::setup::prepare(server::secure::setup::SecureServerInputs {
        config: &p.opts.config,
        cert_dir: &p.opts.flags.cert_dir,
        node_name: p.node_name,
        node_ip: p.host_ip,
        reviewer: p.reviewer,
        pods: Arc::new(p.status.clone()),
        health: p.health.clone(),
        runtime: p.runtime,
        probe_metrics: Some(p.probe_metrics),
        kubelet_metrics: Some(p.kubelet_metrics.clone()),
        stats: Some(p.stats),
        serving_resolver,
    });
    let port_addr = SocketAddr::new(IpAddr::from([0, 0, 0, 0]), u16::try_from(p.opts.config.port).unwrap_or(0));
    if let Some(p) = secure.map_err(|source| AppError::Serve { what: "kubelet server", addr: port_addr, source })? {
        let stop = serve_stop.clone();
        tasks.spawn_fallible(Stage::Serve, "kubelet server", async move {
            server::secure::serve_secure(p.addr, p.tls, p.ctx, async move { stop.cancelled().await })
                .await
                .map_err(|source| AppError::Serve { what: "kubelet server", addr: p.addr, source })
        });
    }
    Ok(())
}

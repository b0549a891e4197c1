//! Builds the authenticated server from the kubelet's configuration (upstream `BuildAuth` and
//! `InitializeTLS`), for `kubelet-app` to run.
//!
//! Without an API client, webhook authentication or authorization cannot work; upstream refuses
//! to start then. Here the kubelet starts without port 10250 and says why, so a standalone
//! kubelet with a config file's defaults (webhook on) still runs its static pods.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use kubelet_config::KubeletConfiguration;
use kubelet_cri::RuntimeService;
use kubelet_types::review::Reviewer;

use super::tls::{TlsOptions, server_config};
use super::{AuthSetupError, SecureContext, build_auth};
use crate::server::{HealthChecker, PodLister};

/// A server ready to run with [`super::serve_secure`].
pub struct PreparedServer {
    /// Where to listen: `address`:`port` of the KubeletConfiguration (default `0.0.0.0:10250`).
    pub addr: SocketAddr,
    /// The serving certificate, client CA and TLS versions and cipher suites to serve with.
    pub tls: Arc<rustls::ServerConfig>,
    /// What the handlers and the auth filter use.
    pub ctx: Arc<SecureContext>,
}

/// What the server is built from.
pub struct SecureServerInputs<'a> {
    /// The KubeletConfiguration in force: `address`, `port`, TLS, `authentication`,
    /// `authorization`, `enableSystemLogQuery`, and the `/configz` body.
    pub config: &'a KubeletConfiguration,
    /// `--cert-dir`: where the self-signed serving certificate is kept.
    pub cert_dir: &'a Path,
    /// This node's name: the node requests are authorized against and a SAN of the self-signed
    /// certificate.
    pub node_name: &'a str,
    /// The node's IP, a SAN of the self-signed certificate.
    pub node_ip: IpAddr,
    /// The API client for TokenReviews and SubjectAccessReviews; `None` without a kubeconfig, in
    /// which case webhook authentication or authorization leaves the port unserved.
    pub reviewer: Option<Arc<dyn Reviewer>>,
    /// The managed pods, for `/pods` and the log and streaming handlers.
    pub pods: Arc<dyn PodLister>,
    /// The kubelet's liveness, for `/healthz`.
    pub health: Arc<dyn HealthChecker>,
    /// The CRI runtime service, for `/runningpods/`, exec, attach, port-forward and container logs.
    pub runtime: Arc<dyn RuntimeService>,
    /// `/metrics/probes`; not served when `None`.
    pub probe_metrics: Option<Arc<dyn crate::server::MetricsSource>>,
    /// The kubelet's own metrics, appended to `/metrics`.
    pub kubelet_metrics: Option<Arc<dyn crate::server::MetricsSource>>,
    /// `/stats/summary`, `/metrics/resource`, `/metrics/cadvisor`; not served when `None`.
    pub stats: Option<Arc<dyn crate::stats::StatsSource>>,
    /// `serverTLSBootstrap`'s certificate resolver.
    pub serving_resolver: Option<Arc<dyn rustls::server::ResolvesServerCert>>,
}

/// `Ok(None)`: not served (`port` 0, or webhooks configured without a client). `Err` names the
/// bad field or file.
pub fn prepare(i: SecureServerInputs<'_>) -> Result<Option<PreparedServer>, std::io::Error> {
    let cfg = i.config;
    if cfg.port <= 0 {
        return Ok(None);
    }
    let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, msg);
    let ip: IpAddr = cfg.address.parse().map_err(|_| invalid(format!("address: invalid IP {:?}", cfg.address)))?;
    let port = u16::try_from(cfg.port).map_err(|_| invalid(format!("port: invalid port {}", cfg.port)))?;
    let (authenticator, authorizer) = match build_auth(cfg, i.reviewer) {
        Ok(a) => a,
        Err(e @ (AuthSetupError::NoClientForAuthentication | AuthSetupError::NoClientForAuthorization)) => {
            tracing::warn!(
                "not serving port {port}: {e}; set authentication.webhook.enabled=false and authorization.mode=AlwaysAllow to serve it without an API server"
            );
            return Ok(None);
        }
        Err(e) => return Err(invalid(e.to_string())),
    };
    let tls_opts = TlsOptions {
        cert_file: cfg.tls_cert_file.clone(),
        key_file: cfg.tls_private_key_file.clone(),
        cipher_suites: cfg.tls_cipher_suites.clone(),
        min_version: cfg.tls_min_version.clone(),
        client_ca_file: cfg.authentication.x509.client_ca_file.clone(),
        cert_dir: i.cert_dir.to_path_buf(),
        node_name: i.node_name.to_string(),
        node_ips: vec![i.node_ip],
        serving_resolver: i.serving_resolver,
    };
    let tls = server_config(&tls_opts).map_err(|e| invalid(e.to_string()))?;
    let ctx = SecureContext {
        node_name: i.node_name.to_string(),
        pods: i.pods,
        health: i.health,
        runtime: i.runtime,
        authenticator,
        authorizer,
        node_log_dir: "/var/log".into(),
        log_query: cfg.enable_system_log_query,
        configz: Arc::new(super::configz_body(cfg)),
        probe_metrics: i.probe_metrics,
        kubelet_metrics: i.kubelet_metrics,
        stats: i.stats,
    };
    Ok(Some(PreparedServer { addr: SocketAddr::new(ip, port), tls, ctx: Arc::new(ctx) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::FakeRuntime;

    struct NoPods;
    impl PodLister for NoPods {
        fn pods(&self) -> Vec<k8s_openapi::api::core::v1::Pod> {
            Vec::new()
        }
    }
    struct Healthy;
    impl HealthChecker for Healthy {
        fn healthy(&self) -> Result<(), String> {
            Ok(())
        }
    }

    fn inputs<'a>(config: &'a KubeletConfiguration, cert_dir: &'a Path) -> SecureServerInputs<'a> {
        SecureServerInputs {
            config,
            cert_dir,
            node_name: "n1",
            node_ip: "127.0.0.1".parse().unwrap(),
            reviewer: None,
            pods: Arc::new(NoPods),
            health: Arc::new(Healthy),
            runtime: Arc::new(FakeRuntime::new()),
            probe_metrics: None,
            kubelet_metrics: None,
            stats: None,
            serving_resolver: None,
        }
    }

    #[test]
    fn standalone_serves_only_without_webhooks() {
        let d = tempfile::tempdir().unwrap();
        // Config-file defaults (webhook authn and authz) need an API client: not served.
        let cfg = KubeletConfiguration::default();
        assert!(prepare(inputs(&cfg, d.path())).unwrap().is_none());
        assert!(!d.path().join("kubelet.key").exists());
        // Flag-only defaults (anonymous, AlwaysAllow) are served, with a self-signed certificate.
        let cfg = kubelet_config::defaults::flag_only_defaults();
        let p = prepare(inputs(&cfg, d.path())).unwrap().unwrap();
        assert_eq!(p.addr, "0.0.0.0:10250".parse().unwrap());
        assert!(d.path().join("kubelet.key").is_file());
        let mut cfg = kubelet_config::defaults::flag_only_defaults();
        cfg.port = 0;
        assert!(prepare(inputs(&cfg, d.path())).unwrap().is_none());
        cfg.port = 10250;
        cfg.address = "not-an-ip".into();
        let e = prepare(inputs(&cfg, d.path())).err().unwrap().to_string();
        assert_eq!(e, "address: invalid IP \"not-an-ip\"");
        cfg.address = "127.0.0.1".into();
        cfg.authorization.mode = "RBAC".into();
        let e = prepare(inputs(&cfg, d.path())).err().unwrap().to_string();
        assert!(e.starts_with("authorization.mode: unknown mode \"RBAC\""), "{e}");
    }
}

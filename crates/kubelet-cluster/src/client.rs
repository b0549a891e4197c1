//! Builds the API clients from the `--kubeconfig` file: its current context, cluster CA, client
//! certificate or token, over rustls. Request rate limits come from kubeAPIQPS / kubeAPIBurst.
//!
//! The object watches ([`crate::object_watch`]) get clients of their own: kube's stack over a
//! connector that offers HTTP/2 first, one client (so one connection) per watch lane. Those watches are
//! long-lived, one per Secret or ConfigMap the node's pods read; over HTTP/1.1 each held a TLS
//! connection of its own (with 200 watched objects, 200 connections and about 8 MiB more
//! kubelet memory than over HTTP/2), where a lane's connection carries up to 90 as streams, as
//! upstream's client multiplexes its requests. kube-apiserver allows 100 streams a connection
//! by default, and hyper does not open a second connection when one is full (Go's client
//! does): a request over the limit would wait for a stream to end. So the lanes bound the
//! streams, and every other request stays on kube's own HTTP/1.1 client, where nothing can
//! queue behind watches.

use std::path::{Path, PathBuf};

use kube::client::ConfigExt as _;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::api::KubeApi;
use kubelet_types::rate_limit::RateLimiter;

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The kubeconfig could not be read or resolved (context, cluster, credentials).
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The kubeconfig file.
        path: PathBuf,
        /// kube's error.
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig was read but no client could be made from it (TLS setup, ...).
    #[error("kubeconfig {path}: building the client: {source}")]
    Build {
        /// The kubeconfig file.
        path: PathBuf,
        /// kube's error.
        source: kube::Error,
    },
}

/// Connection settings from the kubelet's options.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The `--kubeconfig` file.
    pub kubeconfig: PathBuf,
    /// `kubeAPIQPS`: sustained requests per second to the API server (default 50).
    pub qps: i32,
    /// `kubeAPIBurst`: the most requests sent at once (the token bucket's size; default 100).
    pub burst: i32,
}

/// The clients built from one kubeconfig.
#[derive(Clone)]
pub struct Clients {
    /// Every request but the object watches (HTTP/1.1).
    pub main: kube::Client,
    /// The object watches, one client (one HTTP/2 connection) per lane.
    pub watches: Vec<kube::Client>,
}

/// Reads the kubeconfig and builds a rate-limited client. No request is sent yet.
pub async fn connect(opts: &ClientOptions) -> Result<KubeApi, ClientError> {
    let clients = clients_from_kubeconfig(&opts.kubeconfig).await?;
    Ok(KubeApi::new(clients.main, RateLimiter::new(f64::from(opts.qps), opts.burst)).with_watch_clients(clients.watches))
}

async fn read_config(path: &Path) -> Result<kube::Config, ClientError> {
    let kubeconfig = Kubeconfig::read_from(path).map_err(|source| ClientError::Kubeconfig { path: path.into(), source })?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|source| ClientError::Kubeconfig { path: path.into(), source })
}

fn host_of(config: &kube::Config) -> String {
    config.cluster_url.authority().map(|a| a.to_string()).unwrap_or_default()
}

/// A plain `kube::Client` from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client, ClientError> {
    let config = read_config(path).await?;
    main_client(config).map_err(|source| ClientError::Build { path: path.into(), source })
}

/// Both clients from a kubeconfig file (see the module's documentation).
pub async fn clients_from_kubeconfig(path: &Path) -> Result<Clients, ClientError> {
    let config = read_config(path).await?;
    let build = |source| ClientError::Build { path: path.into(), source };
    // The TLS configuration (certificates and keys parsed) is made once for every lane.
    let tls = config.rustls_client_config().map_err(build)?;
    let watches = (0..crate::object_watch::LANES).map(|_| watch_client(&config, tls.clone())).collect::<Result<_, _>>().map_err(build)?;
    Ok(Clients { watches, main: main_client(config).map_err(build)? })
}

fn main_client(config: kube::Config) -> Result<kube::Client, kube::Error> {
    // Every request is counted and timed (`rest_client_*`, see [`crate::rest_metrics`]).
    let host = host_of(&config);
    let builder = kube::client::ClientBuilder::try_from(config)?;
    Ok(builder.with_layer(&crate::rest_metrics::RestMetricsLayer::new(host)).build())
}

/// kube's stack (base URI, authentication, extra headers, the `rest_client_*` metrics) over a
/// connector that offers HTTP/2 first: its pooled connection carries its lane's watches as
/// streams.
fn watch_client(config: &kube::Config, tls: rustls::ClientConfig) -> Result<kube::Client, kube::Error> {
    use tower::ServiceBuilder;
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(config.connect_timeout);
    let mut tls = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http();
    if let Some(name) = &config.tls_server_name {
        let name = rustls_pki_types::ServerName::try_from(name.clone())
            .map_err(|e| kube::Error::Service(format!("tls-server-name {name:?}: {e}").into()))?;
        tls = tls.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name));
    }
    // HTTP/1.1 stays offered: a server with HTTP/2 off still serves the watches (a connection
    // each, as before). Pings every 30 s find a connection that died without a word, as Go's
    // client's health checks do; its streams then fail and their watches list again.
    let connector = tls.enable_all_versions().wrap_connector(http);
    let client: hyper_util::client::legacy::Client<_, kube::client::Body> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .http2_keep_alive_interval(std::time::Duration::from_secs(30))
            .http2_keep_alive_timeout(std::time::Duration::from_secs(15))
            .http2_keep_alive_while_idle(true)
            .build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(|e: hyper_util::client::legacy::Error| -> tower::BoxError { Box::new(e) })
        .service(client);
    Ok(kube::client::ClientBuilder::new(service, config.default_namespace.clone())
        .with_layer(&crate::rest_metrics::RestMetricsLayer::new(host_of(config)))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:6443
    insecure-skip-tls-verify: true
users:
- name: node
  user:
    token: abc
contexts:
- name: ctx
  context: {cluster: local, user: node}
current-context: ctx
"#;

    #[tokio::test]
    async fn builds_a_client_from_a_kubeconfig_file() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("kubeconfig");
        std::fs::write(&path, KUBECONFIG).unwrap();
        let api = connect(&ClientOptions { kubeconfig: path, qps: 50, burst: 100 }).await.unwrap();
        assert_eq!(api.client().default_namespace(), "default");
    }

    #[tokio::test]
    async fn names_the_file_on_errors() {
        let err = connect(&ClientOptions { kubeconfig: "/nonexistent/kc".into(), qps: 5, burst: 10 }).await.err().unwrap();
        assert!(err.to_string().starts_with("kubeconfig /nonexistent/kc: "), "{err}");
    }
}

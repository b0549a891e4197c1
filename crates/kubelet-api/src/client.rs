//! Builds the API client from the `--kubeconfig` file: its current context, cluster CA, client
//! certificate or token, over rustls. Request rate limits come from kubeAPIQPS / kubeAPIBurst.

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::api::KubeApi;
use crate::rate_limit::RateLimiter;

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig { path: PathBuf, source: kube::config::KubeconfigError },
    #[error("kubeconfig {path}: building the client: {source}")]
    Build { path: PathBuf, source: kube::Error },
}

/// Connection settings from the kubelet's options.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub kubeconfig: PathBuf,
    pub qps: i32,
    pub burst: i32,
}

/// Reads the kubeconfig and builds a rate-limited client. No request is sent yet.
pub async fn connect(opts: &ClientOptions) -> Result<KubeApi, ClientError> {
    let client = client_from_kubeconfig(&opts.kubeconfig).await?;
    Ok(KubeApi::new(client, RateLimiter::new(f64::from(opts.qps), opts.burst)))
}

/// A plain `kube::Client` from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client, ClientError> {
    let kubeconfig = Kubeconfig::read_from(path).map_err(|source| ClientError::Kubeconfig { path: path.into(), source })?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|source| ClientError::Kubeconfig { path: path.into(), source })?;
    // Every request is counted and timed (`rest_client_*`, see [`crate::rest_metrics`]).
    let host = config.cluster_url.authority().map(|a| a.to_string()).unwrap_or_default();
    let builder = kube::client::ClientBuilder::try_from(config).map_err(|source| ClientError::Build { path: path.into(), source })?;
    Ok(builder.with_layer(&crate::rest_metrics::RestMetricsLayer::new(host)).build())
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

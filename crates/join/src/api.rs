//! The API calls of joining and checking a node: the `cluster-info` fetch (first without
//! trusting the server, then pinned to the CA it names), the cluster's kubelet configuration,
//! the Node object, and the API server's clock.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::{Api, Client, Config};

/// Why a call to the API server (or preparing a client for it) failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The API server address, as given, is neither `host:port` nor an `https://` URL.
    #[error("API server address {0:?}: expected host:port or https://host:port")]
    BadServer(String),
    /// No connection could be made (DNS, TCP or TLS failure).
    #[error("cannot reach the API server at {server}: {reason}")]
    Unreachable {
        /// The API server URL, or the request that could not reach it.
        server: String,
        /// The client's error.
        reason: String,
    },
    /// The server answered with an error, or the request or kubeconfig was unusable.
    #[error("{what}: {reason}")]
    Request {
        /// What was being done (`get configmap kube-public/cluster-info`, `kubeconfig <path>`).
        what: String,
        /// The error, as text.
        reason: String,
    },
    /// The CA bundle is not PEM or holds no certificate; the parser's message.
    #[error("the CA bundle: {0}")]
    BadCa(String),
}

/// `host:port` (kubeadm's form) or an `https://` URL, as an `https://` URL.
pub fn server_url(text: &str) -> Result<String, ApiError> {
    let url = if text.starts_with("https://") {
        text.to_owned()
    } else if text.contains("://") {
        return Err(ApiError::BadServer(text.into()));
    } else {
        format!("https://{text}")
    };
    url.parse::<http::Uri>().ok().filter(|u| u.host().is_some()).ok_or_else(|| ApiError::BadServer(text.into()))?;
    Ok(url.trim_end_matches('/').to_owned())
}

fn config(server: &str, ca_pem: Option<&[u8]>) -> Result<Config, ApiError> {
    let uri = server.parse::<http::Uri>().map_err(|_| ApiError::BadServer(server.into()))?;
    let mut config = Config::new(uri);
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(10));
    match ca_pem {
        Some(pem) => config.root_cert = Some(ca_der(pem)?),
        // Token discovery's first fetch: the server is not trusted yet; what it returns is
        // trusted only after its signature and CA hash check out.
        None => config.accept_invalid_certs = true,
    }
    Ok(config)
}

/// The DER certificates of a PEM bundle.
pub fn ca_der(pem: &[u8]) -> Result<Vec<Vec<u8>>, ApiError> {
    let mut out = Vec::new();
    for item in x509_parser::pem::Pem::iter_from_buffer(pem) {
        out.push(item.map_err(|e| ApiError::BadCa(e.to_string()))?.contents);
    }
    if out.is_empty() {
        return Err(ApiError::BadCa("no certificate".into()));
    }
    Ok(out)
}

fn client(config: Config, server: &str) -> Result<Client, ApiError> {
    Client::try_from(config).map_err(|e| ApiError::Unreachable { server: server.into(), reason: e.to_string() })
}

/// An anonymous client: unverified (`ca_pem` None) or verified against the CA.
pub fn anonymous(server: &str, ca_pem: Option<&[u8]>) -> Result<Client, ApiError> {
    client(config(server, ca_pem)?, server)
}

/// A client from a kubeconfig file (the kubelet's, once it has its certificate).
pub async fn from_kubeconfig(path: &std::path::Path) -> Result<Client, ApiError> {
    let what = format!("kubeconfig {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| ApiError::Request { what: what.clone(), reason: e.to_string() })?;
    from_kubeconfig_yaml(&text, &what).await
}

/// A client from a kubeconfig's text (the bootstrap kubeconfig join renders); `what` names it
/// in errors.
pub async fn from_kubeconfig_yaml(text: &str, what: &str) -> Result<Client, ApiError> {
    let kc = kube::config::Kubeconfig::from_yaml(text).map_err(|e| ApiError::Request { what: what.into(), reason: e.to_string() })?;
    let config = Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .map_err(|e| ApiError::Request { what: what.into(), reason: e.to_string() })?;
    let server = config.cluster_url.to_string();
    client(config, &server)
}

fn request_error(what: &str, e: kube::Error) -> ApiError {
    match e {
        kube::Error::HyperError(_) | kube::Error::Service(_) => ApiError::Unreachable { server: what.into(), reason: e.to_string() },
        e => ApiError::Request { what: what.into(), reason: e.to_string() },
    }
}

/// `kube-public/cluster-info`'s data.
pub async fn cluster_info(client: &Client) -> Result<BTreeMap<String, String>, ApiError> {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), "kube-public")
        .get("cluster-info")
        .await
        .map_err(|e| request_error("get configmap kube-public/cluster-info", e))?;
    Ok(cm.data.unwrap_or_default())
}

/// The cluster's KubeletConfiguration (`kube-system/kubelet-config`, key `kubelet`), if the
/// cluster publishes one.
pub async fn kubelet_config(client: &Client) -> Result<Option<String>, ApiError> {
    match Api::<ConfigMap>::namespaced(client.clone(), "kube-system").get_opt("kubelet-config").await {
        Ok(cm) => Ok(cm.and_then(|c| c.data).and_then(|mut d| d.remove("kubelet"))),
        Err(kube::Error::Api(s)) if s.code == 403 => Ok(None),
        Err(e) => Err(request_error("get configmap kube-system/kubelet-config", e)),
    }
}

/// The Node of this name, if any (`None` too when the credentials may not read nodes).
pub async fn node(client: &Client, name: &str) -> Result<Option<Node>, ApiError> {
    match Api::<Node>::all(client.clone()).get_opt(name).await {
        Ok(node) => Ok(node),
        Err(kube::Error::Api(s)) if s.code == 403 => Ok(None),
        Err(e) => Err(request_error(&format!("get node {name}"), e)),
    }
}

/// Whether a Node's `Ready` condition is `True`.
pub fn is_ready(node: &Node) -> bool {
    node.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The API server's clock: the `Date` header of its `/healthz` answer.
pub async fn server_time(client: &Client) -> Result<SystemTime, ApiError> {
    let request = http::Request::get("/healthz")
        .body(Vec::new())
        .map_err(|e| ApiError::Request { what: "GET /healthz".into(), reason: e.to_string() })?;
    let response = client.send(request.map(Into::into)).await.map_err(|e| request_error("GET /healthz", e))?;
    let date = response
        .headers()
        .get(http::header::DATE)
        .and_then(|d| d.to_str().ok())
        .ok_or_else(|| ApiError::Request { what: "GET /healthz".into(), reason: "no Date header".into() })?;
    httpdate::parse_http_date(date).map_err(|e| ApiError::Request { what: "the Date header".into(), reason: e.to_string() })
}

//! TLS bootstrap (upstream `pkg/kubelet/certificate/bootstrap.LoadClientCert`): before the
//! kubelet builds its API client, a `--kubeconfig` whose client certificate is missing, expired
//! or not yet valid is replaced using `--bootstrap-kubeconfig`'s credentials: a key is made (or
//! the one left by an interrupted attempt, `kubelet-client.key.tmp`, reused), a
//! `kubernetes.io/kube-apiserver-client-kubelet` request is sent and waited for, the certificate
//! and key go to `--cert-dir` (`kubelet-client-<time>.pem`, `kubelet-client-current.pem`), and
//! the kubeconfig is written pointing at them, with the bootstrap kubeconfig's server and CA.
//! A valid kubeconfig is left alone: a restart sends no new request.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use kube::config::Kubeconfig;

use super::CsrApi;
use super::csr::{self, CsrError, Request};
use super::store::{self, CertStore, StoreError};

/// The key of a request still being waited for.
pub const TMP_KEY_FILE: &str = "kubelet-client.key.tmp";

/// Upstream waits an hour for the bootstrap certificate.
pub const BOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(3600);

/// Why the kubelet could not get its client certificate.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// `--bootstrap-kubeconfig` is unreadable or names no usable cluster (server, CA).
    #[error("unable to load bootstrap kubeconfig {path}: {message}")]
    BootstrapKubeconfig {
        /// The bootstrap kubeconfig's path.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Making the key or getting the CSR signed failed.
    #[error("{0}")]
    Csr(#[from] CsrError),
    /// Writing the certificate and key to `--cert-dir` failed.
    #[error("certificate store: {0}")]
    Store(#[from] StoreError),
    /// Writing the pending key or the kubeconfig failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory being written.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The certificate the signer issued cannot be parsed.
    #[error("the signed certificate is not valid: {0}")]
    Certificate(String),
}

/// Whether `path` is a kubeconfig whose current user's client certificate is valid at `now`
/// (upstream's `isClientConfigStillValid`); `Err` says why not, for the log.
pub fn client_config_still_valid(path: &Path, now: i64) -> Result<(), String> {
    if !path.exists() {
        return Err("it does not exist".into());
    }
    let kubeconfig = Kubeconfig::read_from(path).map_err(|e| format!("unable to read it: {e}"))?;
    let cert_pem = current_client_cert(&kubeconfig, path)?;
    match store::validity(&cert_pem) {
        Ok((_, not_after)) if now > not_after => Err(format!("its client certificate expired at {}", unix(not_after))),
        Ok((not_before, _)) if now < not_before => Err(format!("its client certificate is not valid before {}", unix(not_before))),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("unable to read its client certificate: {e}")),
    }
}

fn unix(seconds: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(seconds).map(|t| t.to_string()).unwrap_or_else(|_| seconds.to_string())
}

/// The current context's client certificate (inline data or file, relative to the kubeconfig).
fn current_client_cert(k: &Kubeconfig, path: &Path) -> Result<Vec<u8>, String> {
    let context = k.current_context.as_deref().ok_or("no current context")?;
    let ctx = k
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .ok_or_else(|| format!("context {context:?} not found"))?;
    let user = ctx.user.as_deref().ok_or("the current context names no user")?;
    let auth = k
        .auth_infos
        .iter()
        .find(|a| a.name == user)
        .and_then(|a| a.auth_info.as_ref())
        .ok_or_else(|| format!("user {user:?} not found"))?;
    if let Some(data) = &auth.client_certificate_data {
        return base64::engine::general_purpose::STANDARD.decode(data.trim()).map_err(|e| format!("client-certificate-data: {e}"));
    }
    let file = auth.client_certificate.as_deref().ok_or("no client certificate")?;
    let file = path.parent().unwrap_or(Path::new("/")).join(file);
    std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))
}

/// The bootstrap kubeconfig's server and CA (PEM), for the kubeconfig written after bootstrap.
fn bootstrap_cluster(path: &Path) -> Result<(String, Option<Vec<u8>>, bool), BootstrapError> {
    let err = |message: String| BootstrapError::BootstrapKubeconfig { path: path.into(), message };
    let k = Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
    let context = k.current_context.as_deref().ok_or_else(|| err("no current context".into()))?;
    let cluster_name = k
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .ok_or_else(|| err(format!("context {context:?} not found")))?;
    let cluster = k
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(|| err(format!("cluster {cluster_name:?} not found")))?;
    let server = cluster.server.clone().ok_or_else(|| err(format!("cluster {cluster_name:?} has no server")))?;
    let ca = match (&cluster.certificate_authority_data, &cluster.certificate_authority) {
        (Some(data), _) => Some(
            base64::engine::general_purpose::STANDARD.decode(data.trim()).map_err(|e| err(format!("certificate-authority-data: {e}")))?,
        ),
        (None, Some(file)) => {
            let file = path.parent().unwrap_or(Path::new("/")).join(file);
            Some(std::fs::read(&file).map_err(|e| err(format!("{}: {e}", file.display())))?)
        }
        (None, None) => None,
    };
    Ok((server, ca, cluster.insecure_skip_tls_verify.unwrap_or(false)))
}

/// The kubeconfig upstream writes after bootstrapping: one cluster, one user whose certificate
/// and key are both `pem_path`, one context in namespace `default`.
pub fn kubeconfig_text(server: &str, ca_pem: Option<&[u8]>, insecure: bool, pem_path: &Path) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let ca = ca_pem
        .map(|c| format!("    certificate-authority-data: {}\n", base64::engine::general_purpose::STANDARD.encode(c)))
        .unwrap_or_default();
    let insecure = if insecure { "    insecure-skip-tls-verify: true\n" } else { "" };
    let pem = q(&pem_path.display().to_string());
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n{ca}{insecure}    server: {}\n  name: default-cluster\ncontexts:\n- context:\n    cluster: default-cluster\n    namespace: default\n    user: default-auth\n  name: default-context\ncurrent-context: default-context\npreferences: {{}}\nusers:\n- name: default-auth\n  user:\n    client-certificate: {pem}\n    client-key: {pem}\n",
        q(server)
    )
}

fn write_private(path: &Path, text: &str) -> Result<(), BootstrapError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| BootstrapError::Io { path: path.into(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| BootstrapError::Io { path: dir.into(), source })?;
    }
    let tmp = path.with_extension("tmp-write");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// What bootstrap needs to know.
pub struct Bootstrap<'a> {
    /// `--kubeconfig`: checked, and rewritten to use the new certificate.
    pub kubeconfig: &'a Path,
    /// `--bootstrap-kubeconfig`: the server, CA and (bootstrap token) credentials to request with.
    pub bootstrap_kubeconfig: &'a Path,
    /// `--cert-dir`, where the client certificate and key go.
    pub cert_dir: &'a Path,
    /// The node's name, the certificate's `system:node:<name>` subject.
    pub node_name: &'a str,
    /// How long to wait for the request to be signed ([`BOOTSTRAP_TIMEOUT`] upstream).
    pub timeout: Duration,
}

impl Bootstrap<'_> {
    /// Makes `kubeconfig` usable (see the module); `api` is a client built from the bootstrap
    /// kubeconfig, used only when a certificate must be requested.
    pub async fn load_client_cert(&self, api: &dyn CsrApi) -> Result<bool, BootstrapError> {
        let now = k8s_openapi::jiff::Timestamp::now().as_second();
        match client_config_still_valid(self.kubeconfig, now) {
            Ok(()) => {
                tracing::info!(kubeconfig = %self.kubeconfig.display(), "kubeconfig exists and is valid; skipping TLS bootstrap");
                return Ok(false);
            }
            Err(why) => {
                tracing::info!(kubeconfig = %self.kubeconfig.display(), "TLS bootstrap with {}: the kubeconfig cannot be used: {why}", self.bootstrap_kubeconfig.display())
            }
        }
        let (server, ca, insecure) = bootstrap_cluster(self.bootstrap_kubeconfig)?;
        let store = CertStore::client(self.cert_dir);
        let tmp_key = self.cert_dir.join(TMP_KEY_FILE);
        // The key of the current certificate, else the one of an interrupted attempt, else new.
        let key_pem = match store.current() {
            Ok(Some(pair)) => pair.key_pem,
            _ => match std::fs::read_to_string(&tmp_key).ok().filter(|k| rcgen::KeyPair::from_pem(k).is_ok()) {
                Some(k) => k,
                None => {
                    let k = csr::new_key_pem()?;
                    write_private(&tmp_key, &k)?;
                    k
                }
            },
        };
        let cert_pem = csr::request_certificate(api, &Request::client(self.node_name), &key_pem, self.timeout).await?;
        store::validity(cert_pem.as_bytes()).map_err(BootstrapError::Certificate)?;
        let file = store.update(&cert_pem, &key_pem, &store::timestamp_now())?;
        tracing::info!(cert = %file.display(), "client certificate issued");
        let _ = std::fs::remove_file(&tmp_key);
        write_private(self.kubeconfig, &kubeconfig_text(&server, ca.as_deref(), insecure, &store.current_path()))?;
        Ok(true)
    }
}

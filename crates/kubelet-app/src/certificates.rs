//! The kubelet's certificates from the cluster, wired into start-up: TLS bootstrap before the
//! API client exists (`--bootstrap-kubeconfig`), client certificate rotation
//! (`rotateCertificates`) that swaps the API client, and the serving certificate from a
//! `kubernetes.io/kubelet-serving` request (`serverTLSBootstrap`) that port 10250 serves
//! through a reloadable resolver. The logic lives in `kubelet_cluster::certificate`.

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};

use kubelet_cluster::api::KubeApi;
use kubelet_cluster::certificate::CsrApi;
use kubelet_cluster::certificate::bootstrap::{BOOTSTRAP_TIMEOUT, Bootstrap, BootstrapError};
use kubelet_cluster::certificate::csr::Request;
use kubelet_cluster::certificate::rotation::{RENEWAL_TIMEOUT, Rotation};
use kubelet_cluster::certificate::store::CertStore;
use kubelet_config::KubeletOptions;
use kubelet_types::certificate_metrics::{CertificateKind, CertificateObserver};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why start-up could not get the kubelet's certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("--bootstrap-kubeconfig needs --kubeconfig (where the bootstrapped credentials are written)")]
    NoKubeconfig,
    #[error("TLS bootstrap: {0}")]
    Bootstrap(#[from] BootstrapError),
    #[error("TLS bootstrap: bootstrap kubeconfig: {0}")]
    Client(#[from] kubelet_cluster::ClientError),
}

/// Runs TLS bootstrap when `--bootstrap-kubeconfig` is given and the kubeconfig is not usable.
pub async fn bootstrap_if_needed(opts: &KubeletOptions, node_name: &str) -> Result<(), CertificateError> {
    let Some(bootstrap) = opts.flags.bootstrap_kubeconfig.as_deref() else { return Ok(()) };
    let kubeconfig = opts.flags.kubeconfig.as_deref().ok_or(CertificateError::NoKubeconfig)?;
    let b =
        Bootstrap { kubeconfig, bootstrap_kubeconfig: bootstrap, cert_dir: &opts.flags.cert_dir, node_name, timeout: BOOTSTRAP_TIMEOUT };
    let client = kubelet_cluster::client::client_from_kubeconfig(bootstrap).await?;
    let api = KubeApi::new(client, kubelet_types::rate_limit::RateLimiter::unlimited());
    b.load_client_cert(&api).await?;
    Ok(())
}

/// Whether the kubeconfig's client certificate is the store's current one (it was written by
/// bootstrap): only then does rotating the store change what the client presents.
fn kubeconfig_uses_store(kubeconfig: &Path, store: &CertStore) -> bool {
    std::fs::read_to_string(kubeconfig).is_ok_and(|t| t.contains(&store.current_path().display().to_string()))
}

/// The client certificate's rotation (`rotateCertificates`), rebuilding `api`'s client from
/// the kubeconfig after each renewal; `None` when the kubeconfig does not use the store.
pub fn client_rotation(opts: &KubeletOptions, node_name: &str, api: &KubeApi, observer: Arc<dyn CertificateObserver>) -> Option<Rotation> {
    let kubeconfig = opts.flags.kubeconfig.clone()?;
    let store = CertStore::client(&opts.flags.cert_dir);
    if !opts.config.rotate_certificates {
        return None;
    }
    if !kubeconfig_uses_store(&kubeconfig, &store) {
        tracing::warn!(kubeconfig = %kubeconfig.display(), "rotateCertificates: the kubeconfig's client certificate is not {}; not rotating it", store.current_path().display());
        return None;
    }
    let node = node_name.to_string();
    let swap = api.clone();
    Some(Rotation {
        api: Arc::new(api.clone()),
        store,
        request: Arc::new(move || Request::client(&node)),
        on_rotate: Arc::new(move |_file: &Path| {
            let (swap, kubeconfig) = (swap.clone(), kubeconfig.clone());
            tokio::spawn(async move {
                match kubelet_cluster::client::clients_from_kubeconfig(&kubeconfig).await {
                    Ok(clients) => {
                        swap.replace_clients(clients);
                        tracing::info!("API client switched to the rotated client certificate");
                    }
                    Err(e) => tracing::error!("rebuilding the API client after rotation: {e}"),
                }
            });
        }),
        timeout: RENEWAL_TIMEOUT,
        exit_after_expiry: Some(std::time::Duration::from_secs(5 * 60)),
        kind: CertificateKind::Client,
        observer: Some(observer),
    })
}

/// The serving certificate of port 10250 from the `kubelet-server` store, reloaded after each
/// rotation; until the first one is issued handshakes fail, as upstream's.
#[derive(Debug)]
pub struct ServingCertResolver {
    store: CertStore,
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl ServingCertResolver {
    pub fn new(cert_dir: &Path) -> Arc<Self> {
        let r = Arc::new(Self { store: CertStore::server(cert_dir), current: RwLock::new(None) });
        r.reload();
        r
    }

    /// Reads the store's current pair again.
    pub fn reload(&self) {
        let loaded = self.store.current().map_err(|e| e.to_string()).and_then(|pair| {
            let Some(pair) = pair else { return Ok(None) };
            let certs =
                CertificateDer::pem_slice_iter(pair.cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
            let key = PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes()).map_err(|e| e.to_string())?;
            let key = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| e.to_string())?;
            Ok(Some(Arc::new(CertifiedKey::new(certs, key))))
        });
        match loaded {
            Ok(k) => {
                if k.is_some() {
                    tracing::info!(cert = %self.store.current_path().display(), "serving certificate loaded");
                }
                *self.current.write().expect("serving cert lock") = k;
            }
            Err(e) => tracing::error!(cert = %self.store.current_path().display(), "serving certificate: {e}"),
        }
    }
}

impl ResolvesServerCert for ServingCertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self.current.read().expect("serving cert lock").clone();
        if current.is_none() {
            tracing::debug!("no serving certificate yet (serverTLSBootstrap: waiting for the kubelet-serving request to be approved)");
        }
        current
    }
}

/// The serving certificate's requests and rotation (`serverTLSBootstrap`), reloading
/// `resolver` after each.
pub fn serving_rotation(
    api: &KubeApi,
    node_name: &str,
    hostname: String,
    ips: Vec<IpAddr>,
    cert_dir: &Path,
    resolver: Arc<ServingCertResolver>,
    observer: Arc<dyn CertificateObserver>,
) -> Rotation {
    let node = node_name.to_string();
    let names = vec![hostname];
    Rotation {
        api: Arc::new(api.clone()) as Arc<dyn CsrApi>,
        store: CertStore::server(cert_dir),
        request: Arc::new(move || Request::serving(&node, names.clone(), ips.clone())),
        on_rotate: Arc::new(move |_file: &Path| resolver.reload()),
        timeout: RENEWAL_TIMEOUT,
        exit_after_expiry: None,
        kind: CertificateKind::Serving,
        observer: Some(observer),
    }
}

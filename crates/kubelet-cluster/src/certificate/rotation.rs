//! Certificate rotation (upstream's certificate manager with `rotateCertificates` /
//! `serverTLSBootstrap`): a certificate is renewed at a random point between 70 % and 90 % of
//! its lifetime, with a new key and a signing request authenticated by the current client
//! certificate; the new pair goes to the store and the caller switches to it without a restart
//! (the API client is rebuilt, the server's certificate resolver reloads).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kubelet_types::certificate_metrics::{CertificateKind, CertificateObserver};
use tokio_util::sync::CancellationToken;

use super::CsrApi;
use super::csr::{self, Request};
use super::store::{self, CertStore};

/// How long a renewal waits for its certificate (upstream's certificate manager uses 15 min).
pub const RENEWAL_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// The wait after a failed renewal before the next attempt.
const RETRY: Duration = Duration::from_secs(30);

/// When a certificate valid from `not_before` to `not_after` (Unix seconds) is renewed:
/// `not_before + lifetime × (0.7 + 0.2 × jitter)`, `jitter` in `[0, 1)`.
pub fn rotation_deadline(not_before: i64, not_after: i64, jitter: f64) -> i64 {
    let lifetime = (not_after - not_before).max(0) as f64;
    not_before + (lifetime * (0.7 + 0.2 * jitter.clamp(0.0, 1.0))).round() as i64
}

/// A random number in `[0, 1)`.
pub fn jitter() -> f64 {
    let mut b = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// Called with the new certificate file after each renewal.
pub type OnRotate = Arc<dyn Fn(&std::path::Path) + Send + Sync>;

/// Renews one certificate of the store before it expires.
pub struct Rotation {
    /// Where renewal requests are sent, authenticated by the current client certificate.
    pub api: Arc<dyn CsrApi>,
    /// The `--cert-dir` files of the certificate (`kubelet-client` or `kubelet-server`).
    pub store: CertStore,
    /// What to request (the client or the serving certificate of this node).
    pub request: Arc<dyn Fn() -> Request + Send + Sync>,
    /// Switches the caller to the new certificate (rebuilds the API client, reloads the server's).
    pub on_rotate: OnRotate,
    /// How long a renewal waits for its certificate ([`RENEWAL_TIMEOUT`]).
    pub timeout: Duration,
    /// The client certificate: stop (so the kubelet exits and a restart bootstraps again) when
    /// it has been expired this long without a renewal, as upstream's transport does.
    pub exit_after_expiry: Option<Duration>,
    /// Which certificate this is, for the metrics.
    pub kind: CertificateKind,
    /// Told of the certificate in use, failed renewals and rotations (`/metrics`).
    pub observer: Option<Arc<dyn CertificateObserver>>,
}

/// Why rotation gave up.
#[derive(Debug, thiserror::Error)]
#[error("the certificate {path} expired at {expired} and could not be renewed for {waited:?}; exiting so that a restart bootstraps again")]
pub struct ExpiredError {
    /// The store's `<prefix>-current.pem`.
    pub path: PathBuf,
    /// When the certificate expired (`notAfter`, RFC 3339).
    pub expired: String,
    /// How long past expiry renewal kept failing ([`Rotation::exit_after_expiry`]).
    pub waited: Duration,
}

impl Rotation {
    /// One renewal: a new key, a request, the new pair stored. Returns the new file.
    pub async fn renew(&self) -> Result<PathBuf, String> {
        let key_pem = csr::new_key_pem().map_err(|e| e.to_string())?;
        let cert_pem =
            csr::request_certificate(self.api.as_ref(), &(self.request)(), &key_pem, self.timeout).await.map_err(|e| e.to_string())?;
        store::validity(cert_pem.as_bytes())?;
        self.store.update(&cert_pem, &key_pem, &store::timestamp_now()).map_err(|e| e.to_string())
    }

    /// Renews at each deadline until `shutdown`. With no certificate in the store yet (a
    /// serving certificate before its first request) it requests one at once.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ExpiredError> {
        let observer = self.observer.as_deref();
        if let Some(o) = observer {
            o.rotating(self.kind);
        }
        loop {
            let now = k8s_openapi::jiff::Timestamp::now().as_second();
            let current = self.store.current();
            let not_before = current.as_ref().ok().and_then(|c| c.as_ref()).map(|pair| pair.not_before);
            let wait = match current {
                Ok(Some(pair)) => {
                    if let Some(o) = observer {
                        o.current(self.kind, pair.not_after);
                    }
                    if let Some(grace) = self.exit_after_expiry
                        && now > pair.not_after + grace.as_secs() as i64
                    {
                        let expired = k8s_openapi::jiff::Timestamp::from_second(pair.not_after).map(|t| t.to_string()).unwrap_or_default();
                        return Err(ExpiredError { path: self.store.current_path(), expired, waited: grace });
                    }
                    let deadline = rotation_deadline(pair.not_before, pair.not_after, jitter());
                    tracing::info!(store = %self.store.current_path().display(), expires = pair.not_after, deadline, "certificate rotation deadline");
                    Duration::from_secs(u64::try_from(deadline - now).unwrap_or(0))
                }
                Ok(None) => Duration::ZERO,
                Err(e) => {
                    tracing::warn!("certificate rotation: {e}; requesting a new certificate");
                    Duration::ZERO
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
            match self.renew().await {
                Ok(file) => {
                    tracing::info!(cert = %file.display(), "certificate rotated");
                    if let (Some(o), Some(not_before)) = (observer, not_before) {
                        o.rotated(self.kind, (k8s_openapi::jiff::Timestamp::now().as_second() - not_before) as f64);
                    }
                    (self.on_rotate)(&file);
                }
                Err(e) => {
                    if let Some(o) = observer {
                        o.renewal_failed(self.kind);
                    }
                    tracing::error!("certificate rotation failed: {e}; retrying in {RETRY:?}");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(RETRY) => {}
                    }
                }
            }
        }
    }
}

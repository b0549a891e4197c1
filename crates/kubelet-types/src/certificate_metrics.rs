//! What certificate rotation reports for `/metrics` (upstream's `kubelet_certificate_manager_*`
//! and `kubelet_server_expiration_renew_errors`): the kubelet's metrics implement
//! [`CertificateObserver`], the cluster-mode crate's rotation calls it.

/// Which of the kubelet's certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateKind {
    /// The client certificate (`rotateCertificates`, store prefix `kubelet-client`).
    Client,
    /// The serving certificate of port 10250 (`serverTLSBootstrap`, store prefix
    /// `kubelet-server`).
    Serving,
}

/// Receives what a certificate's rotation does.
pub trait CertificateObserver: Send + Sync + 'static {
    /// `kind` is rotated by this kubelet (its metrics are served from now on).
    fn rotating(&self, kind: CertificateKind);
    /// The certificate of `kind` in use expires at `not_after` (Unix seconds).
    fn current(&self, kind: CertificateKind, not_after: i64);
    /// A renewal of `kind` failed.
    fn renewal_failed(&self, kind: CertificateKind);
    /// A certificate of `kind` was replaced `lived_seconds` after its `notBefore`.
    fn rotated(&self, kind: CertificateKind, lived_seconds: f64);
}

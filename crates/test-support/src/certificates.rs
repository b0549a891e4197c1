//! [`RecordingCertificates`]: a [`CertificateObserver`] that keeps every report, for tests of
//! certificate rotation.

use std::sync::Mutex;

use kubelet_types::certificate_metrics::{CertificateKind, CertificateObserver};

/// One report of a rotation.
#[derive(Debug, Clone, PartialEq)]
pub enum CertificateReport {
    /// `rotating(kind)`.
    Rotating(CertificateKind),
    /// `current(kind, not_after)`.
    Current(CertificateKind, i64),
    /// `renewal_failed(kind)`.
    RenewalFailed(CertificateKind),
    /// `rotated(kind, lived_seconds)`.
    Rotated(CertificateKind, f64),
}

/// Keeps every report, in order.
#[derive(Debug, Default)]
pub struct RecordingCertificates(Mutex<Vec<CertificateReport>>);

impl RecordingCertificates {
    /// The reports so far.
    pub fn reports(&self) -> Vec<CertificateReport> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn push(&self, r: CertificateReport) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(r);
    }
}

impl CertificateObserver for RecordingCertificates {
    fn rotating(&self, kind: CertificateKind) {
        self.push(CertificateReport::Rotating(kind));
    }

    fn current(&self, kind: CertificateKind, not_after: i64) {
        self.push(CertificateReport::Current(kind, not_after));
    }

    fn renewal_failed(&self, kind: CertificateKind) {
        self.push(CertificateReport::RenewalFailed(kind));
    }

    fn rotated(&self, kind: CertificateKind, lived_seconds: f64) {
        self.push(CertificateReport::Rotated(kind, lived_seconds));
    }
}

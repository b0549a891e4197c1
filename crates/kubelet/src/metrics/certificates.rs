//! The certificate families of `/metrics`, under upstream's names: for the client certificate
//! (`rotateCertificates`) `kubelet_certificate_manager_client_ttl_seconds` and
//! `kubelet_certificate_manager_client_expiration_renew_errors`; for the serving certificate
//! (`serverTLSBootstrap`) `kubelet_certificate_manager_server_ttl_seconds`,
//! `kubelet_certificate_manager_server_rotation_seconds` and
//! `kubelet_server_expiration_renew_errors`. As upstream, a certificate's families appear only
//! when this kubelet rotates it; a TTL is the seconds until `notAfter` at render time
//! (negative once expired, `+Inf` while no certificate is known).

use std::fmt::Write as _;
use std::sync::Mutex;

use kubelet_types::certificate_metrics::CertificateKind;

use super::families::HistogramVec;

/// Upstream's buckets of `kubelet_certificate_manager_server_rotation_seconds`: a minute, an
/// hour, 4 hours, a day, a week, 30 days, 90 days, 180 days, a year, 4 years.
const ROTATION_BUCKETS: &[f64] = &[60.0, 3600.0, 14400.0, 86400.0, 604800.0, 2592000.0, 7776000.0, 15552000.0, 31104000.0, 124416000.0];

/// What is known of one certificate.
#[derive(Debug, Default, Clone, Copy)]
struct CertState {
    rotating: bool,
    not_after: Option<i64>,
    renew_errors: u64,
}

/// The certificate families.
pub struct CertificateMetrics {
    client: Mutex<CertState>,
    serving: Mutex<CertState>,
    /// `kubelet_certificate_manager_server_rotation_seconds`.
    serving_rotation: HistogramVec,
}

impl Default for CertificateMetrics {
    fn default() -> Self {
        CertificateMetrics {
            client: Mutex::default(),
            serving: Mutex::default(),
            serving_rotation: HistogramVec::new(
                "kubelet_certificate_manager_server_rotation_seconds",
                "Histogram of the number of seconds the previous certificate lived before being rotated.",
                "ALPHA",
                &[],
                ROTATION_BUCKETS.to_vec(),
            ),
        }
    }
}

impl CertificateMetrics {
    fn state(&self, kind: CertificateKind) -> std::sync::MutexGuard<'_, CertState> {
        match kind {
            CertificateKind::Client => &self.client,
            CertificateKind::Serving => &self.serving,
        }
        .lock()
        .unwrap_or_else(|e| e.into_inner())
    }

    /// Marks `kind` as rotated by this kubelet.
    pub fn rotating(&self, kind: CertificateKind) {
        self.state(kind).rotating = true;
    }

    /// The certificate of `kind` in use expires at `not_after` (Unix seconds).
    pub fn current(&self, kind: CertificateKind, not_after: i64) {
        self.state(kind).not_after = Some(not_after);
    }

    /// Counts a failed renewal of `kind`.
    pub fn renewal_failed(&self, kind: CertificateKind) {
        self.state(kind).renew_errors += 1;
    }

    /// Records a replaced certificate's life (upstream observes it for the serving certificate
    /// only).
    pub fn rotated(&self, kind: CertificateKind, lived_seconds: f64) {
        if kind == CertificateKind::Serving {
            self.serving_rotation.observe(&[], lived_seconds);
        }
    }

    /// Appends the client certificate's families to `out` (they sort before the others).
    pub fn render_client(&self, now: i64, out: &mut String) {
        let client = *self.state(CertificateKind::Client);
        if !client.rotating {
            return;
        }
        let _ = writeln!(
            out,
            "# HELP kubelet_certificate_manager_client_expiration_renew_errors [ALPHA] Counter of certificate renewal errors.\n# TYPE kubelet_certificate_manager_client_expiration_renew_errors counter\nkubelet_certificate_manager_client_expiration_renew_errors {}",
            client.renew_errors
        );
        let _ = writeln!(
            out,
            "# HELP kubelet_certificate_manager_client_ttl_seconds [ALPHA] Gauge of the TTL (time-to-live) of the Kubelet's client certificate. The value is in seconds until certificate expiry (negative if already expired). If client certificate is invalid or unused, the value will be +INF.\n# TYPE kubelet_certificate_manager_client_ttl_seconds gauge\nkubelet_certificate_manager_client_ttl_seconds {}",
            ttl(client.not_after, now)
        );
    }

    /// Appends the serving certificate's rotation and TTL families to `out`.
    pub fn render_serving(&self, now: i64, out: &mut String) {
        let serving = *self.state(CertificateKind::Serving);
        if !serving.rotating {
            return;
        }
        self.serving_rotation.render(out);
        let _ = writeln!(
            out,
            "# HELP kubelet_certificate_manager_server_ttl_seconds [ALPHA] Gauge of the shortest TTL (time-to-live) of the Kubelet's serving certificate. The value is in seconds until certificate expiry (negative if already expired). If serving certificate is invalid or unused, the value will be +INF.\n# TYPE kubelet_certificate_manager_server_ttl_seconds gauge\nkubelet_certificate_manager_server_ttl_seconds {}",
            ttl(serving.not_after, now)
        );
    }

    /// Appends `kubelet_server_expiration_renew_errors` to `out` (it sorts after the runtime
    /// families).
    pub fn render_server_errors(&self, out: &mut String) {
        let serving = *self.state(CertificateKind::Serving);
        if !serving.rotating {
            return;
        }
        let _ = writeln!(
            out,
            "# HELP kubelet_server_expiration_renew_errors [ALPHA] Counter of certificate renewal errors.\n# TYPE kubelet_server_expiration_renew_errors counter\nkubelet_server_expiration_renew_errors {}",
            serving.renew_errors
        );
    }
}

/// Seconds from `now` to `not_after`, `+Inf` when unknown.
fn ttl(not_after: Option<i64>, now: i64) -> String {
    match not_after {
        Some(t) => (t - now).to_string(),
        None => "+Inf".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_appear_once_rotating_with_ttl_errors_and_rotation_age() {
        let m = CertificateMetrics::default();
        let mut out = String::new();
        m.render_client(1000, &mut out);
        m.render_serving(1000, &mut out);
        m.render_server_errors(&mut out);
        assert!(out.is_empty(), "nothing before rotation is on: {out}");

        m.rotating(CertificateKind::Client);
        m.render_client(1000, &mut out);
        assert!(out.contains("\nkubelet_certificate_manager_client_ttl_seconds +Inf\n"), "{out}");
        assert!(out.contains("\nkubelet_certificate_manager_client_expiration_renew_errors 0\n"), "{out}");

        m.current(CertificateKind::Client, 4600);
        m.renewal_failed(CertificateKind::Client);
        m.rotating(CertificateKind::Serving);
        m.current(CertificateKind::Serving, 900);
        m.rotated(CertificateKind::Serving, 7200.0);
        m.rotated(CertificateKind::Client, 7200.0);
        let mut out = String::new();
        m.render_client(1000, &mut out);
        m.render_serving(1000, &mut out);
        m.render_server_errors(&mut out);
        assert!(out.contains("\nkubelet_certificate_manager_client_ttl_seconds 3600\n"), "{out}");
        assert!(out.contains("\nkubelet_certificate_manager_client_expiration_renew_errors 1\n"), "{out}");
        assert!(out.contains("\nkubelet_certificate_manager_server_ttl_seconds -100\n"), "expired: negative: {out}");
        assert!(out.contains("kubelet_certificate_manager_server_rotation_seconds_bucket{le=\"3600\"} 0\n"), "{out}");
        assert!(out.contains("kubelet_certificate_manager_server_rotation_seconds_bucket{le=\"14400\"} 1\n"), "{out}");
        assert!(out.contains("kubelet_certificate_manager_server_rotation_seconds_count 1\n"), "only the serving rotation: {out}");
        assert!(out.contains("\nkubelet_server_expiration_renew_errors 0\n"), "{out}");
    }
}

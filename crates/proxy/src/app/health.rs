//! The proxier's health (upstream `ProxierHealthServer`) and the HTTP
//! servers on `healthzBindAddress` (`/healthz`, `/livez`) and
//! `metricsBindAddress` (`/metrics`, `/healthz`). Healthy unless a queued
//! sync has waited longer than the timeout (upstream: twice `syncPeriod`).
//! Time is passed in, so the state is testable without a clock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::metrics::Metrics;

#[derive(Debug, Default, Clone, Copy)]
struct Times {
    last_updated: Option<SystemTime>,
    oldest_queued: Option<SystemTime>,
}

/// Written by the sync loop; read by the health servers.
#[derive(Debug)]
pub struct ProxierHealth {
    timeout: Duration,
    times: Mutex<Times>,
}

/// What `/healthz` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthStatus {
    /// False when a queued change has waited at least the timeout for a sync.
    pub healthy: bool,
    /// When the last sync succeeded; `None` before the first.
    pub last_updated: Option<SystemTime>,
    /// The time the status was taken at.
    pub current_time: SystemTime,
}

impl ProxierHealth {
    /// Health that turns unhealthy once a queued change waits `timeout` (upstream: twice
    /// `syncPeriod`) without a successful sync.
    pub fn new(timeout: Duration) -> Self {
        ProxierHealth { timeout, times: Mutex::default() }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Times) -> R) -> R {
        f(&mut self.times.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A change arrived that a sync must apply (upstream `QueuedUpdate`).
    pub fn queued(&self, now: SystemTime) {
        self.with(|t| {
            t.oldest_queued.get_or_insert(now);
        });
    }

    /// A sync succeeded (upstream `Updated`).
    pub fn updated(&self, now: SystemTime) {
        self.with(|t| {
            t.last_updated = Some(now);
            t.oldest_queued = None;
        });
    }

    /// The health as of `now`: `/healthz`'s answer and body fields.
    pub fn status(&self, now: SystemTime) -> HealthStatus {
        let t = self.with(|t| *t);
        let stale = t.oldest_queued.is_some_and(|q| now.duration_since(q).unwrap_or_default() >= self.timeout);
        HealthStatus { healthy: !stale, last_updated: t.last_updated, current_time: now }
    }
}

/// Go's `time.Time.String()` in UTC: `2006-01-02 15:04:05.999999999 +0000 UTC`
/// (the zero time when `None`).
pub fn go_time(t: Option<SystemTime>) -> String {
    let Some(t) = t else {
        return "0001-01-01 00:00:00 +0000 UTC".to_string();
    };
    match jiff::Timestamp::try_from(t) {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%M:%S%.f +0000 UTC").to_string(),
        Err(_) => "0001-01-01 00:00:00 +0000 UTC".to_string(),
    }
}

/// The `/healthz` body, as upstream writes it.
pub fn healthz_body(s: &HealthStatus) -> String {
    format!(
        "{{\"lastUpdated\": {:?},\"currentTime\": {:?}, \"nodeEligible\": true}}",
        go_time(s.last_updated),
        go_time(Some(s.current_time))
    )
}

async fn healthz(State(health): State<Arc<ProxierHealth>>) -> Response {
    let status = health.status(SystemTime::now());
    let code = if status.healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, [(header::CONTENT_TYPE, "application/json"), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")], healthz_body(&status)).into_response()
}

/// `/healthz` and `/livez` on `healthzBindAddress`.
pub fn healthz_router(health: Arc<ProxierHealth>) -> Router {
    Router::new().route("/healthz", get(healthz)).route("/livez", get(healthz)).with_state(health)
}

/// `/metrics` (and a plain `/healthz`) on `metricsBindAddress`.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(m): State<Arc<Metrics>>| async move {
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], m.render())
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .with_state(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_when_a_queued_sync_waits_too_long() {
        let h = ProxierHealth::new(Duration::from_secs(60));
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert!(h.status(t0).healthy);
        h.queued(t0);
        assert!(h.status(t0 + Duration::from_secs(59)).healthy);
        h.queued(t0 + Duration::from_secs(30));
        assert!(!h.status(t0 + Duration::from_secs(60)).healthy);
        h.updated(t0 + Duration::from_secs(61));
        let s = h.status(t0 + Duration::from_secs(62));
        assert!(s.healthy);
        assert_eq!(
            healthz_body(&s),
            "{\"lastUpdated\": \"2023-11-14 22:14:21 +0000 UTC\",\"currentTime\": \"2023-11-14 22:14:22 +0000 UTC\", \"nodeEligible\": true}"
        );
        assert_eq!(go_time(Some(t0 + Duration::from_millis(1500))), "2023-11-14 22:13:21.5 +0000 UTC");
    }
}

//! `/healthz` as upstream's `k8s.io/apiserver/pkg/server/healthz` serves it.
//!
//! Checks: `ping` and `log` (always pass) and `syncloop` (the injected [`HealthChecker`]). The
//! aggregate answers `ok`, or 500 listing the checks with failure reasons withheld; `?verbose`
//! lists the checks on success too; `?exclude=name` skips a check. `/healthz/<name>` runs one.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use super::{HealthChecker, text};

const CHECKS: [&str; 3] = ["ping", "log", "syncloop"];

pub(super) fn routes<S>(health: Arc<dyn HealthChecker>) -> Router<S> {
    Router::new()
        .route("/healthz", get(aggregate))
        .route("/healthz/", get(aggregate))
        .route("/healthz/{check}", get(single))
        .with_state(health)
}

fn run(health: &dyn HealthChecker, check: &str) -> Result<(), String> {
    match check {
        "syncloop" => health.healthy(),
        _ => Ok(()),
    }
}

async fn aggregate(State(health): State<Arc<dyn HealthChecker>>, RawQuery(query): RawQuery) -> Response {
    let params = parse_query(query.as_deref().unwrap_or(""));
    let mut excluded: BTreeSet<&str> =
        params.iter().filter(|(k, _)| k == "exclude").flat_map(|(_, v)| v.split(',')).map(str::trim).filter(|v| !v.is_empty()).collect();
    let mut output = String::new();
    let mut failed = false;
    for check in CHECKS {
        if excluded.remove(check) {
            output.push_str(&format!("[+]{check} excluded: ok\n"));
            continue;
        }
        match run(health.as_ref(), check) {
            Ok(()) => output.push_str(&format!("[+]{check} ok\n")),
            Err(reason) => {
                tracing::info!(check, %reason, "healthz check failed");
                output.push_str(&format!("[-]{check} failed: reason withheld\n"));
                failed = true;
            }
        }
    }
    if !excluded.is_empty() {
        let names: Vec<String> = excluded.iter().map(|n| format!("{n:?}")).collect();
        output.push_str(&format!("warn: some health checks cannot be excluded: no matches for {}\n", names.join(",")));
    }
    if failed {
        return text(StatusCode::INTERNAL_SERVER_ERROR, format!("{output}healthz check failed\n"));
    }
    if params.iter().any(|(k, _)| k == "verbose") {
        return text(StatusCode::OK, format!("{output}healthz check passed\n"));
    }
    text(StatusCode::OK, "ok".to_string())
}

async fn single(State(health): State<Arc<dyn HealthChecker>>, Path(check): Path<String>) -> Response {
    if !CHECKS.contains(&check.as_str()) {
        return text(StatusCode::NOT_FOUND, "404 page not found\n".to_string());
    }
    match run(health.as_ref(), &check) {
        Ok(()) => text(StatusCode::OK, "ok".to_string()),
        Err(reason) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("internal server error: {reason}\n")),
    }
}

/// `a=1&b&c=2` → pairs; no percent-decoding (check names never need it), never fails.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect()
}

use std::net::SocketAddr;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;

use super::*;
use crate::probe::ProbeOutcomeKind;

async fn serve() -> SocketAddr {
    let app = Router::new()
        .route("/ok", get(|| async { "fine" }))
        .route("/fail", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "broken") }))
        .route("/to-ok", get(|| async { Redirect::temporary("/ok") }))
        .route("/to-fail", get(|| async { Redirect::temporary("/fail") }))
        .route("/away", get(|| async { Redirect::temporary("http://elsewhere.invalid/ok") }))
        .route("/loop", get(|| async { Redirect::temporary("/loop") }))
        .route("/big", get(|| async { "x".repeat(100_000) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/headers",
            get(|headers: HeaderMap| async move {
                let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
                format!("ua={} accept={} host={} x={}", h("user-agent"), h("accept"), h("host"), h("x-custom")).into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn target(addr: SocketAddr, path: &str) -> HttpTarget {
    HttpTarget { scheme: "http".into(), host: addr.ip().to_string(), port: addr.port(), path: path.into(), headers: vec![] }
}

#[tokio::test]
async fn status_codes_decide_and_same_host_redirects_are_followed() {
    let addr = serve().await;
    let t = Duration::from_secs(2);
    let ok = check(&target(addr, "/ok"), t).await;
    assert_eq!((ok.kind, ok.output.as_str()), (ProbeOutcomeKind::Success, "fine"));
    let fail = check(&target(addr, "/fail"), t).await;
    assert_eq!((fail.kind, fail.output.as_str()), (ProbeOutcomeKind::Failure, "HTTP probe failed with statuscode: 500"));
    assert_eq!(check(&target(addr, "/to-ok"), t).await.kind, ProbeOutcomeKind::Success);
    assert_eq!(check(&target(addr, "/to-fail"), t).await.kind, ProbeOutcomeKind::Failure);
    // A redirect to another host is not followed: it passes with a warning.
    let away = check(&target(addr, "/away"), t).await;
    assert_eq!(away.kind, ProbeOutcomeKind::Warning, "{away:?}");
    assert!(away.output.starts_with("Probe terminated redirects"), "{away:?}");
    let looped = check(&target(addr, "/loop"), t).await;
    assert_eq!(looped.kind, ProbeOutcomeKind::Failure, "{looped:?}");
    assert_eq!(check(&target(addr, "/big"), t).await.output.len(), MAX_PROBE_OUTPUT);
}

#[tokio::test]
async fn default_and_custom_headers() {
    let addr = serve().await;
    let out = check(&target(addr, "/headers"), Duration::from_secs(2)).await;
    assert_eq!(out.output, format!("ua=kube-probe/1.37 accept=*/* host={addr} x=-"));
    let mut t = target(addr, "/headers");
    t.headers = vec![("Host".into(), "example.test".into()), ("X-Custom".into(), "1".into()), ("User-Agent".into(), "mine".into())];
    let out = check(&t, Duration::from_secs(2)).await;
    assert_eq!(out.output, "ua=mine accept=*/* host=example.test x=1");
}

#[tokio::test]
async fn timeouts_and_refused_connections_fail() {
    let addr = serve().await;
    let slow = check(&target(addr, "/slow"), Duration::from_millis(200)).await;
    assert_eq!(slow.kind, ProbeOutcomeKind::Failure);
    assert!(slow.output.contains("deadline exceeded"), "{slow:?}");
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let refused = check(&HttpTarget { port, ..target(addr, "/ok") }, Duration::from_secs(1)).await;
    assert_eq!(refused.kind, ProbeOutcomeKind::Failure);
    assert!(refused.output.contains("dial tcp"), "{refused:?}");
}

#[test]
fn redirect_locations() {
    let from = HttpTarget { scheme: "http".into(), host: "198.18.0.5".into(), port: 8080, path: "/a".into(), headers: vec![] };
    assert_eq!(redirect_target(&from, "/b?x=1").unwrap().path, "/b?x=1");
    let abs = redirect_target(&from, "https://198.18.0.5/c").unwrap();
    assert_eq!((abs.scheme.as_str(), abs.port, abs.path.as_str()), ("https", 443, "/c"));
    let v6 = redirect_target(&from, "http://[fd00::1]:81/").unwrap();
    assert_eq!((v6.host.as_str(), v6.port), ("fd00::1", 81));
    assert!(redirect_target(&from, "not a url").is_none());
    assert!(redirect_target(&from, "ftp://198.18.0.5/x").is_none());
    assert!(redirect_target(&from, "http://:80/").is_none());
    assert!(redirect_target(&from, "https://198.18.0.9:8rea?dy").is_none(), "a port that is not a number");
    assert_eq!(redirect_target(&from, "https://198.18.0.9?x").unwrap().path, "/?x");
}

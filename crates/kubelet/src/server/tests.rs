//! Spins the routers on 127.0.0.1:0 and talks raw HTTP/1.1 to them.

use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;

struct FakeHealth(Mutex<Result<(), String>>);

impl HealthChecker for FakeHealth {
    fn healthy(&self) -> Result<(), String> {
        self.0.lock().unwrap().clone()
    }
}

struct FakePods(Vec<Pod>);

impl PodLister for FakePods {
    fn pods(&self) -> Vec<Pod> {
        self.0.clone()
    }
}

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl Running {
    async fn start(router: Router) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_on(listener, router, async move {
            let _ = rx.await;
        }));
        Self { addr, stop, task }
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

async fn raw(addr: SocketAddr, request: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Reply { status, headers: head.to_ascii_lowercase(), body: body.to_string() }
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    raw(addr, &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")).await
}

fn health(result: Result<(), String>) -> Arc<FakeHealth> {
    Arc::new(FakeHealth(Mutex::new(result)))
}

#[tokio::test]
async fn healthz_ok_and_failing() {
    let h = health(Ok(()));
    let server = Running::start(healthz_router(h.clone())).await;
    let r = get(server.addr, "/healthz").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    assert!(r.headers.contains("content-type: text/plain; charset=utf-8"), "{}", r.headers);
    assert!(r.headers.contains("x-content-type-options: nosniff"));
    for path in ["/healthz/ping", "/healthz/log", "/healthz/syncloop"] {
        let r = get(server.addr, path).await;
        assert_eq!((r.status, r.body.as_str()), (200, "ok"), "{path}");
    }
    let r = get(server.addr, "/healthz?verbose").await;
    assert_eq!(r.body, "[+]ping ok\n[+]log ok\n[+]syncloop ok\nhealthz check passed\n");

    *h.0.lock().unwrap() = Err("PLEG is not healthy: last relist 5m ago".into());
    let r = get(server.addr, "/healthz").await;
    assert_eq!(r.status, 500);
    assert_eq!(r.body, "[+]ping ok\n[+]log ok\n[-]syncloop failed: reason withheld\nhealthz check failed\n");
    let r = get(server.addr, "/healthz/syncloop").await;
    assert_eq!((r.status, r.body.as_str()), (500, "internal server error: PLEG is not healthy: last relist 5m ago\n"));
    assert_eq!(get(server.addr, "/healthz/ping").await.status, 200);
    // Excluding the failing check makes the aggregate pass.
    let r = get(server.addr, "/healthz?exclude=syncloop&exclude=nope&verbose=1").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        "[+]ping ok\n[+]log ok\n[+]syncloop excluded: ok\n\
         warn: some health checks cannot be excluded: no matches for \"nope\"\nhealthz check passed\n"
    );
    // The healthz port serves nothing else.
    assert_eq!(get(server.addr, "/pods").await.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn read_only_port_lists_pods() {
    let pod = Pod {
        metadata: ObjectMeta { name: Some("web".into()), namespace: Some("default".into()), ..Default::default() },
        status: Some(k8s_openapi::api::core::v1::PodStatus { phase: Some("Running".into()), ..Default::default() }),
        ..Default::default()
    };
    let server = Running::start(read_only_router(Arc::new(FakePods(vec![pod])), health(Ok(())), Default::default())).await;
    for path in ["/pods", "/pods/"] {
        let r = get(server.addr, path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.headers.contains("content-type: application/json"), "{}", r.headers);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["kind"], "PodList");
        assert_eq!(v["apiVersion"], "v1");
        assert_eq!(v["metadata"], serde_json::json!({}));
        assert_eq!(v["items"][0]["metadata"]["name"], "web");
        assert_eq!(v["items"][0]["status"]["phase"], "Running");
    }
    assert_eq!(get(server.addr, "/healthz").await.body, "ok");
    server.stop().await;
}

#[tokio::test]
async fn empty_pod_list_and_bad_requests() {
    let server = Running::start(read_only_router(Arc::new(FakePods(vec![])), health(Ok(())), Default::default())).await;
    let r = get(server.addr, "/pods").await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["items"], serde_json::json!([]));

    let r = get(server.addr, "/spec/").await;
    assert_eq!((r.status, r.body.as_str()), (404, "404 page not found\n"));
    assert_eq!(get(server.addr, "/healthz/nope").await.status, 404);
    assert_eq!(get(server.addr, "/healthz?%zz=%%&&=").await.status, 200);
    let r = raw(server.addr, "DELETE /pods HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(r.status, 405);
    // Garbage instead of HTTP: the connection is answered or dropped, the server survives.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"\x00\x01garbage\r\n\r\n").await.unwrap();
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink).await;
    assert_eq!(get(server.addr, "/healthz").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn bind_error_names_the_address() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let err = serve_healthz(addr, health(Ok(())), std::future::pending()).await.unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
}

#[tokio::test]
async fn serve_functions_stop_on_shutdown() {
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_read_only(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(FakePods(vec![])),
        health(Ok(())),
        Default::default(),
        async move {
            let _ = rx.await;
        },
    ));
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
}

struct FixedMetrics(&'static str);
impl MetricsSource for FixedMetrics {
    fn render(&self) -> String {
        self.0.to_string()
    }
}

struct NoSnapshot;
impl crate::stats::StatsSource for NoSnapshot {
    fn latest(&self) -> Option<Arc<crate::stats::StatsSnapshot>> {
        None
    }
}

#[tokio::test]
async fn read_only_port_serves_metrics_and_stats_when_given() {
    let extras = ReadOnlyExtras {
        stats: Some(Arc::new(NoSnapshot)),
        metrics: Some(Arc::new(metrics_routes::MetricsEndpoints {
            node_name: "node-a".into(),
            pods: Arc::new(FakePods(vec![])),
            kubelet: Some(Arc::new(FixedMetrics("kubelet_pleg_relist_duration_seconds_count 3\n"))),
            probes: Some(Arc::new(FixedMetrics("prober_probe_total{} 1\n"))),
        })),
    };
    let server = Running::start(read_only_router(Arc::new(FakePods(vec![])), health(Ok(())), extras)).await;
    let r = get(server.addr, "/metrics").await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("kubelet_node_name{node=\"node-a\"} 1\n") && r.body.ends_with("kubelet_pleg_relist_duration_seconds_count 3\n"),
        "{}",
        r.body
    );
    assert_eq!(get(server.addr, "/metrics/probes").await.body, "prober_probe_total{} 1\n");
    // Before the first stats sample: the summary is unavailable, the metrics say so.
    assert_eq!(get(server.addr, "/stats/summary").await.status, 503);
    assert!(get(server.addr, "/metrics/resource").await.body.contains("resource_scrape_error 1\n"));
    assert!(get(server.addr, "/metrics/cadvisor").await.body.contains("container_scrape_error 1\n"));
    assert_eq!(get(server.addr, "/stats/summary?only_cpu_and_memory=maybe").await.status, 400);
}

//! The authenticated server end to end in-process: real TLS (rustls both sides), client
//! certificates from a test CA, a fake API server for token and access reviews, the fake runtime.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kubelet_cri::api;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use test_support::FakeRuntime;
use test_support::auth::FakeReviewer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::tls::{TlsOptions, server_config};
use super::*;

struct Pods(Vec<Pod>);
impl PodLister for Pods {
    fn pods(&self) -> Vec<Pod> {
        self.0.clone()
    }
}
struct Healthy;
impl HealthChecker for Healthy {
    fn healthy(&self) -> Result<(), String> {
        Ok(())
    }
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().unwrap();
    let pem = p.self_signed(&key).unwrap().pem();
    Ca { issuer: Issuer::new(p, key), pem }
}

/// A client certificate (CN, O) signed by `ca`: (chain, key).
fn client_cert(ca: &Ca, cn: &str, org: &str) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name.push(DnType::OrganizationName, org);
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca.issuer).unwrap();
    (vec![cert.der().clone()], PrivatePkcs8KeyDer::from(key.serialize_der()).into())
}

struct Fixture {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    server_ca: rustls::RootCertStore,
    ca: Ca,
    reviewer: Arc<FakeReviewer>,
    runtime: Arc<FakeRuntime>,
}

fn pod(name: &str, uid: &str) -> Pod {
    Pod {
        metadata: ObjectMeta { name: Some(name.into()), namespace: Some("default".into()), uid: Some(uid.into()), ..Default::default() },
        spec: Some(PodSpec { containers: vec![Container { name: "main".into(), ..Default::default() }], ..Default::default() }),
        ..Default::default()
    }
}

async fn start_container(rt: &FakeRuntime, logs: &std::path::Path, attempt: u32, lines: &str) {
    let labels: std::collections::HashMap<String, String> =
        [("io.kubernetes.pod.name", "web"), ("io.kubernetes.pod.namespace", "default"), ("io.kubernetes.pod.uid", "uid-1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let sandbox = api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata { name: "web".into(), namespace: "default".into(), uid: "uid-1".into(), attempt: 0 }),
        labels: labels.clone(),
        log_directory: logs.display().to_string(),
        ..Default::default()
    };
    let sid = match rt.sandbox_ids().first() {
        Some(id) => id.clone(),
        None => rt.run_pod_sandbox(sandbox.clone(), "").await.unwrap(),
    };
    let mut clabels = labels;
    clabels.insert("io.kubernetes.container.name".into(), "main".into());
    let config = api::ContainerConfig {
        metadata: Some(api::ContainerMetadata { name: "main".into(), attempt }),
        image: Some(api::ImageSpec { image: "busybox".into(), ..Default::default() }),
        labels: clabels,
        log_path: format!("main/{attempt}.log"),
        ..Default::default()
    };
    std::fs::create_dir_all(logs.join("main")).unwrap();
    std::fs::write(logs.join(format!("main/{attempt}.log")), lines).unwrap();
    let id = rt.create_container(&sid, config, sandbox).await.unwrap();
    rt.start_container(&id).await.unwrap();
    // Creation times must differ for newest-first ordering.
    tokio::time::sleep(Duration::from_millis(5)).await;
}

async fn fixture(anonymous: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("test-ca");
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let opts = TlsOptions {
        client_ca_file: ca_file.display().to_string(),
        cert_dir: dir.path().join("pki"),
        node_name: "node-1".into(),
        node_ips: vec!["127.0.0.1".parse().unwrap()],
        ..Default::default()
    };
    let tls = server_config(&opts).unwrap();
    let mut server_ca = rustls::RootCertStore::empty();
    let served = std::fs::read(dir.path().join("pki/kubelet.crt")).unwrap();
    use rustls_pki_types::pem::PemObject;
    server_ca.add(CertificateDer::from_pem_slice(&served).unwrap()).unwrap();

    let reviewer = Arc::new(FakeReviewer::default());
    reviewer.add_token("good-token", "bob", &[]);
    reviewer.allow("alice", "get", "proxy");
    reviewer.allow("bob", "get", "log");
    let runtime = Arc::new(FakeRuntime::with_images(["busybox"]));
    let logs = dir.path().join("var-log");
    std::fs::create_dir_all(logs.join("pods")).unwrap();
    std::fs::write(logs.join("syslog"), "hello from syslog\n").unwrap();
    let ctx = SecureContext {
        node_name: "node-1".into(),
        pods: Arc::new(Pods(vec![pod("web", "uid-1")])),
        health: Arc::new(Healthy),
        runtime: runtime.clone(),
        authenticator: Authenticator::new(Some(reviewer.clone()), Duration::from_secs(60), anonymous),
        authorizer: Authorizer::webhook(reviewer.clone(), Duration::from_secs(60), Duration::from_secs(60)),
        node_log_dir: logs,
        log_query: true,
        configz: Arc::new(super::configz_body(&kubelet_config::KubeletConfiguration::default())),
        probe_metrics: None,
        kubelet_metrics: None,
        stats: None,
    };
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = TlsListener::from_tcp(tcp, tls, Duration::from_secs(5));
    tokio::spawn(serve_secure_on(listener, Arc::new(ctx), std::future::pending()));
    Fixture { addr, dir, server_ca, ca, reviewer, runtime }
}

impl Fixture {
    fn client(&self, cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(self.server_ca.clone());
        Arc::new(match cert {
            Some((chain, key)) => b.with_client_auth_cert(chain, key).unwrap(),
            None => b.with_no_client_auth(),
        })
    }

    /// Sends one request; (status, body). Err when TLS fails.
    async fn send(&self, client: Arc<rustls::ClientConfig>, method: &str, path: &str, headers: &str) -> Result<(u16, String), String> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let name = ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into());
        let mut tls = tokio_rustls::TlsConnector::from(client).connect(name, tcp).await.map_err(|e| e.to_string())?;
        let req = format!("{method} {path} HTTP/1.1\r\nHost: node-1\r\nConnection: close\r\n{headers}\r\n");
        tls.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        let _ = tls.read_to_end(&mut buf).await;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| format!("no response: {text:?}"))?;
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or("bad status")?;
        Ok((status, dechunk(head, body)))
    }
}

fn dechunk(head: &str, body: &str) -> String {
    if !head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
}

#[tokio::test]
async fn unauthenticated_is_401_and_unauthorized_is_403() {
    let f = fixture(false).await;
    let anon = f.client(None);
    assert_eq!(f.send(anon.clone(), "GET", "/pods", "").await.unwrap(), (401, "Unauthorized".into()));
    assert_eq!(f.send(anon.clone(), "GET", "/pods", "Authorization: Bearer wrong\r\n").await.unwrap().0, 401);
    let (status, body) = f.send(anon.clone(), "GET", "/pods", "Authorization: Bearer good-token\r\n").await.unwrap();
    assert_eq!((status, body.as_str()), (403, "Forbidden (user=bob, verb=get, resource=nodes, subresource(s)=[pods proxy])\n"));
    let (status, body) = f.send(anon.clone(), "GET", "/logs/syslog", "Authorization: Bearer good-token\r\n").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "hello from syslog\n"));
    // Node log query (enableSystemLogQuery): a service no journal knows is read from its file;
    // bad input is named in the answer; a query with a path is refused.
    let auth = "Authorization: Bearer good-token\r\n";
    let (status, body) = f.send(anon.clone(), "GET", "/logs/?query=syslog", auth).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "hello from syslog\n"));
    let (status, body) = f.send(anon.clone(), "GET", "/logs/?query=nothing-here", auth).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "\nlog not found for nothing-here\n"));
    let (status, body) = f.send(anon.clone(), "GET", "/logs/?query=syslog&tailLines=abc", auth).await.unwrap();
    assert_eq!((status, body.as_str()), (400, "tailLines: Invalid value: \"abc\": strconv.Atoi: parsing \"abc\": invalid syntax\n"));
    let (status, body) = f.send(anon.clone(), "GET", "/logs/?query=../../etc/shadow", auth).await.unwrap();
    assert_eq!(status, 406, "{body}");
    assert_eq!(
        f.send(anon.clone(), "GET", "/logs/syslog?query=syslog", auth).await.unwrap(),
        (406, "path not allowed in query mode\n".into())
    );
    let alice = f.client(Some(client_cert(&f.ca, "alice", "ops")));
    let (status, body) = f.send(alice.clone(), "GET", "/pods", "").await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"uid\":\"uid-1\""), "{body}");
    let (user, attrs) = f.reviewer.last_access_review().unwrap();
    assert_eq!(user.groups, vec!["ops".to_string(), "system:authenticated".into()]);
    assert_eq!((attrs.verb.as_str(), attrs.name.as_str()), ("get", "node-1"));
    // alice may not POST (create) and the 404 fallback is authorized like everything else.
    assert_eq!(f.send(alice.clone(), "POST", "/exec/default/web/main?command=ls&stdout=1", "").await.unwrap().0, 403);
    assert_eq!(f.send(alice.clone(), "GET", "/nope", "").await.unwrap().0, 404);
    assert_eq!(f.send(alice, "GET", "/healthz", "").await.unwrap(), (200, "ok".into()));
    // A certificate from another CA does not get through the handshake.
    let mallory = f.client(Some(client_cert(&ca("other-ca"), "alice", "ops")));
    assert!(f.send(mallory, "GET", "/pods", "").await.is_err());
}

#[tokio::test]
async fn anonymous_requests_are_authorized_as_system_anonymous() {
    let f = fixture(true).await;
    let (status, body) = f.send(f.client(None), "POST", "/runningpods/", "").await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (403, "Forbidden (user=system:anonymous, verb=create, resource=nodes, subresource(s)=[pods proxy])\n")
    );
    f.reviewer.allow("system:anonymous", "get", "proxy");
    start_container(&f.runtime, &f.dir.path().join("pod-logs"), 0, "").await;
    let (status, body) = f.send(f.client(None), "GET", "/runningpods/", "").await.unwrap();
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["items"][0]["metadata"]["name"], "web");
    assert_eq!(v["items"][0]["spec"]["containers"][0]["name"], "main");
}

#[tokio::test]
async fn fine_grained_subresources_open_pods_healthz_and_configz() {
    let f = fixture(false).await;
    let carol = f.client(Some(client_cert(&f.ca, "carol", "ops")));
    // Denied on both the fine-grained and the coarse subresource.
    let (status, body) = f.send(carol.clone(), "GET", "/configz", "").await.unwrap();
    assert_eq!((status, body.as_str()), (403, "Forbidden (user=carol, verb=get, resource=nodes, subresource(s)=[configz proxy])\n"));
    // nodes/configz alone is enough for /configz, and nothing else (a fresh user: denials are
    // cached for the webhook's unauthorized TTL, as upstream's).
    f.reviewer.allow("dave", "get", "configz");
    let dave = f.client(Some(client_cert(&f.ca, "dave", "ops")));
    let (status, body) = f.send(dave.clone(), "GET", "/configz", "").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["kubeletconfig"]["kind"], "KubeletConfiguration");
    assert_eq!(v["kubeletconfig"]["syncFrequency"], "1m0s");
    assert_eq!(f.send(dave.clone(), "GET", "/pods", "").await.unwrap().0, 403);
    // nodes/pods opens /pods and /runningpods/, not the proxy subresource's endpoints.
    f.reviewer.allow("erin", "get", "pods");
    f.reviewer.allow("erin", "get", "healthz");
    let erin = f.client(Some(client_cert(&f.ca, "erin", "ops")));
    assert_eq!(f.send(erin.clone(), "GET", "/pods", "").await.unwrap().0, 200);
    assert_eq!(f.send(erin.clone(), "GET", "/runningpods/", "").await.unwrap().0, 200);
    assert_eq!(f.send(erin.clone(), "GET", "/containerLogs/default/web/main", "").await.unwrap().0, 403);
    assert_eq!(f.send(erin, "GET", "/healthz", "").await.unwrap(), (200, "ok".into()));
}

#[tokio::test]
async fn metrics_needs_nodes_metrics_and_serves_the_kubelet_gauges() {
    let f = fixture(false).await;
    let carol = f.client(Some(client_cert(&f.ca, "carol", "ops")));
    let (status, body) = f.send(carol, "GET", "/metrics", "").await.unwrap();
    assert_eq!((status, body.as_str()), (403, "Forbidden (user=carol, verb=get, resource=nodes, subresource(s)=[metrics])\n"));
    f.reviewer.allow("frank", "get", "metrics");
    let frank = f.client(Some(client_cert(&f.ca, "frank", "ops")));
    let (status, body) = f.send(frank, "GET", "/metrics", "").await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("kubelet_node_name{node=\"node-1\"} 1\n"), "{body}");
    assert!(body.contains("# TYPE kubelet_running_pods gauge\n"), "{body}");
}

#[tokio::test]
async fn container_logs_current_previous_tail_and_errors() {
    let f = fixture(false).await;
    let logs = f.dir.path().join("pod-logs");
    start_container(&f.runtime, &logs, 0, "2024-01-01T00:00:01Z stdout F first run\n").await;
    let first = f.runtime.container_ids();
    f.runtime.exit_container(&first[0], 1);
    start_container(&f.runtime, &logs, 1, "2024-01-01T00:01:00Z stdout F a\n2024-01-01T00:01:01Z stderr F b\n2024-01-01T00:01:02Z stdout P c\n2024-01-01T00:01:02Z stdout F c\n").await;
    let alice = f.client(Some(client_cert(&f.ca, "alice", "ops")));
    let get = |path: &'static str| {
        let (f, alice) = (&f, alice.clone());
        async move { f.send(alice, "GET", path, "").await.unwrap() }
    };
    assert_eq!(get("/containerLogs/default/web/main").await, (200, "a\nb\ncc\n".into()));
    assert_eq!(get("/containerLogs/default/web/main?previous=true").await, (200, "first run\n".into()));
    assert_eq!(get("/containerLogs/default/web/main?tailLines=2").await, (200, "cc\n".into()));
    assert_eq!(
        get("/containerLogs/default/web/main?tailLines=3&timestamps=true").await,
        (200, "2024-01-01T00:01:01Z b\n2024-01-01T00:01:02Z c2024-01-01T00:01:02Z c\n".into())
    );
    assert_eq!(get("/containerLogs/default/web/main?limitBytes=3").await, (200, "a\nb".into()));
    assert_eq!(get("/containerLogs/default/web/main?sinceTime=2024-01-01T00:01:01Z").await, (200, "b\ncc\n".into()));
    // Following a running container streams until the client goes; a stopped one ends at once.
    let current = f.runtime.container_ids().into_iter().find(|id| *id != first[0]).unwrap();
    let (rt, log) = (f.runtime.clone(), logs.join("main/1.log"));
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let mut text = std::fs::read_to_string(&log).unwrap();
        text.push_str("2024-01-01T00:01:03Z stdout F d\n");
        std::fs::write(&log, text).unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        rt.exit_container(&current, 0);
    });
    // tailLines counts raw lines, as upstream: the partial `c` is a line of its own.
    let (status, body) = get("/containerLogs/default/web/main?follow=true&tailLines=1").await;
    assert_eq!((status, body.as_str()), (200, "c\nd\n"));

    let (status, body) = get("/containerLogs/default/nope/main").await;
    assert_eq!((status, body.as_str()), (404, "pod \"nope\" does not exist\n"));
    let (status, body) = get("/containerLogs/default/web/sidecar").await;
    assert_eq!((status, body.as_str()), (404, "container \"sidecar\" not found in pod \"web\"\n"));
    let (status, body) = get("/containerLogs/default/web/main?tailLines=-1").await;
    assert_eq!(status, 400);
    assert!(body.contains("tailLines: invalid value \"-1\""), "{body}");
    assert_eq!(get("/containerLogs/default/web/main?sinceSeconds=5&sinceTime=2024-01-01T00:00:00Z").await.0, 400);
}

/// A stand-in for the runtime's streaming server: answers one upgrade with 101 plus `hello`,
/// then echoes upper-cased. Sends the request head it saw on `seen`.
async fn fake_streaming_server() -> (String, tokio::sync::oneshot::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let (tx, seen) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            if s.read(&mut b).await.unwrap() == 0 {
                return;
            }
            head.push(b[0]);
        }
        let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
        s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\nhello").await.unwrap();
        let mut buf = [0u8; 64];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 || s.write_all(&buf[..n].to_ascii_uppercase()).await.is_err() {
                return;
            }
        }
    });
    (base, seen)
}

#[tokio::test]
async fn exec_is_proxied_to_the_runtime_streaming_server() {
    let f = fixture(false).await;
    start_container(&f.runtime, &f.dir.path().join("pod-logs"), 0, "").await;
    let (base, seen) = fake_streaming_server().await;
    f.runtime.set_streaming_base(&base);
    f.reviewer.allow("alice", "create", "proxy");
    let client = f.client(Some(client_cert(&f.ca, "alice", "ops")));

    // Bad requests never reach the runtime.
    let up = "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n";
    let (status, body) = f.send(client.clone(), "POST", "/exec/default/web/main?stdout=1", up).await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("missing command"), "{body}");
    let (status, body) = f.send(client.clone(), "POST", "/exec/default/web/main?command=ls", up).await.unwrap();
    assert_eq!((status, body.as_str()), (400, "you must specify at least 1 of stdin, stdout, stderr\n"));
    let (status, body) = f.send(client.clone(), "POST", "/exec/default/ghost/main?command=ls&stdout=1", up).await.unwrap();
    assert_eq!((status, body.as_str()), (404, "pod \"ghost\" does not exist\n"));
    let (status, body) = f.send(client.clone(), "POST", "/exec/default/web/main?command=ls&stdout=1", "").await.unwrap();
    assert_eq!((status, body.as_str()), (400, "Upgrade request required\n"));
    assert!(f.runtime.calls_of("Exec").is_empty());

    let tcp = TcpStream::connect(f.addr).await.unwrap();
    let name = ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into());
    let mut tls = tokio_rustls::TlsConnector::from(client).connect(name, tcp).await.unwrap();
    let req = "POST /exec/default/web/main?command=sh&stdin=1&stdout=1 HTTP/1.1\r\nHost: node-1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nAuthorization: Bearer not-for-the-runtime\r\n\r\n";
    tls.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    while !got.windows(5).any(|w| w == b"hello") {
        let mut b = [0u8; 256];
        let n = tls.read(&mut b).await.unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&b[..n]);
    }
    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 101"), "{text}");
    assert!(text.contains("upgrade: spdy/3.1") && text.contains("x-stream-protocol-version: v4.channel.k8s.io"), "{text}");
    tls.write_all(b"abc").await.unwrap();
    let mut echo = [0u8; 3];
    tls.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ABC");

    let head = seen.await.unwrap();
    let id = &f.runtime.container_ids()[0];
    assert!(head.starts_with(&format!("POST /exec/{id} HTTP/1.1\r\n")), "{head}");
    assert!(!head.to_ascii_lowercase().contains("authorization"), "the token must not reach the runtime: {head}");
    assert_eq!(f.runtime.calls_of("Exec").len(), 1);
}

//! End-to-end against the real 1.37 control plane (`hack/control-plane.sh
//! up`): the `kube-proxy` binary runs with no mode configured — so in
//! nftables mode, removing the iptables mode's leftovers — inside a network
//! namespace (reaching the API server at 198.18.255.1 through a veth; no
//! other route), a Service and a `discovery.k8s.io/v1` EndpointSlice
//! are created with kubectl, and traffic from the namespace to the cluster
//! IP reaches a backend in a second namespace. Also checks `/healthz`,
//! `/metrics`, and that removing the endpoints makes the service refuse.
//! Skips (passing) when no control plane is up.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Netns, Outcome, ProxyProcess, connect, serve_local_addr, sh, veth};

const ADMIN_KUBECONFIG: &str = "/var/lib/knode/control-plane/admin.kubeconfig";
const API_SERVER_IP: &str = "198.18.255.1";

fn kubectl(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    // Upstream's kubectl of the harness release (hack/test.sh exports KNODE_KUBECTL).
    let bin = std::env::var("KNODE_KUBECTL").unwrap_or_else(|_| "/var/cache/knode/k8s-1.37.2/bin/kubectl".into());
    let mut cmd = Command::new(bin);
    cmd.arg("--kubeconfig").arg(ADMIN_KUBECONFIG).args(args);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    if let Some(s) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(s.as_bytes()).map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A Kubernetes namespace deleted on drop.
struct KubeNamespace(String);

impl Drop for KubeNamespace {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "namespace", &self.0, "--wait=false"], None);
    }
}

/// Polls `f` every 200 ms for up to `secs` seconds.
fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

fn http_get(ns: &Netns, path: &str, port: u16) -> String {
    ns.exec(&["/usr/bin/busybox", "wget", "-q", "-O", "-", &format!("http://127.0.0.1:{port}{path}")])
}

#[test]
#[ignore = "needs root: run hack/test.sh"]
fn kube_proxy_binary_against_the_control_plane() {
    if !std::path::Path::new(ADMIN_KUBECONFIG).exists() || kubectl(&["get", "--raw", "/readyz"], None).is_err() {
        // hack/test.sh starts the control plane and requires this test to run.
        assert!(
            std::env::var("KNODE_CONTROL_PLANE").as_deref() != Ok("required"),
            "the control plane is not up although hack/test.sh started it"
        );
        eprintln!("skipping: no control plane (run hack/control-plane.sh up)");
        return;
    }
    let pid = std::process::id() % 100_000;
    // node ns <-> host (to reach the API server only), node ns <-> backend ns.
    let node = Netns::new("cn");
    let backend = Netns::new("cb");
    let host_if = format!("kvh{pid}");
    sh(&["ip", "link", "add", &host_if, "type", "veth", "peer", "name", &format!("kvc{pid}"), "netns", &node.name]);
    struct HostLink(String);
    impl Drop for HostLink {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["link", "del", &self.0]).output();
        }
    }
    let _host_link = HostLink(host_if.clone());
    sh(&["ip", "addr", "add", "198.18.136.1/30", "dev", &host_if]);
    sh(&["ip", "link", "set", &host_if, "up"]);
    node.exec(&["ip", "addr", "add", "198.18.136.2/30", "dev", &format!("kvc{pid}")]);
    node.exec(&["ip", "link", "set", &format!("kvc{pid}"), "up"]);
    node.exec(&["ip", "route", "add", &format!("{API_SERVER_IP}/32"), "via", "198.18.136.1"]);
    veth(&node, &format!("kvn{pid}"), "198.18.137.1/24", &backend, &format!("kvb{pid}"), &["198.18.137.2/24"]);
    // The control plane's service range goes towards the backend link.
    node.exec(&["ip", "route", "add", "198.19.0.0/16", "dev", &format!("kvn{pid}")]);
    serve_local_addr(&backend, 8080);
    // Leftovers of an iptables-mode kube-proxy, which the default
    // (nftables) mode removes at start-up.
    node.exec(&["iptables", "-t", "nat", "-N", "KUBE-SERVICES"]);
    node.exec(&["iptables", "-t", "nat", "-N", "KUBE-SEP-LEFTOVER"]);
    node.exec(&[
        "iptables",
        "-t",
        "nat",
        "-A",
        "OUTPUT",
        "-m",
        "comment",
        "--comment",
        "kubernetes service portals",
        "-j",
        "KUBE-SERVICES",
    ]);

    let child = Command::new("ip")
        .args(["netns", "exec", &node.name, env!("CARGO_BIN_EXE_kube-proxy")])
        .args(["--kubeconfig", ADMIN_KUBECONFIG, "--hostname-override", "knode-e2e-proxy"])
        .args(["--healthz-bind-address", "127.0.0.1:10256", "--metrics-bind-address", "127.0.0.1:10249", "--v", "4"])
        .stdin(Stdio::null())
        .spawn()
        .expect("start kube-proxy");
    let _proxy = ProxyProcess(child);

    let ns = format!("kp-e2e-{pid}");
    kubectl(&["create", "namespace", &ns], None).expect("create namespace");
    let _kns = KubeNamespace(ns.clone());
    let svc = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: {ns}}}\nspec:\n  ports: [{{name: p80, port: 80, protocol: TCP, targetPort: 8080}}]\n"
    );
    kubectl(&["apply", "-f", "-"], Some(&svc)).expect("create service");
    let slice = |ips: &str| {
        format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: web-1, namespace: {ns}, labels: {{kubernetes.io/service-name: web}}}}\naddressType: IPv4\nports: [{{name: p80, port: 8080, protocol: TCP}}]\nendpoints: [{ips}]\n"
        )
    };
    kubectl(&["apply", "-f", "-"], Some(&slice("{addresses: [198.18.137.2], conditions: {ready: true}}"))).expect("create slice");
    let ip = kubectl(&["get", "service", "web", "-n", &ns, "-o", "jsonpath={.spec.clusterIP}"], None).unwrap();
    let vip = format!("{}:80", ip.trim());

    let answer = eventually(30, || match connect(&node, &vip).0 {
        Outcome::Answer(a) => Some(a),
        _ => None,
    });
    assert_eq!(answer.as_deref(), Some("198.18.137.2:8080"), "cluster IP {vip} reaches the backend");

    assert!(node.exec(&["nft", "list", "tables"]).contains("kube-proxy"), "an empty mode runs nftables");
    let saved = node.exec(&["iptables-save"]);
    assert!(!saved.contains("KUBE-"), "iptables leftovers kept:\n{saved}");

    let healthz = http_get(&node, "/healthz", 10256);
    assert!(healthz.contains("\"lastUpdated\"") && healthz.contains("\"currentTime\""), "{healthz}");
    let metrics = http_get(&node, "/metrics", 10249);
    for name in [
        "kubeproxy_sync_proxy_rules_duration_seconds_bucket",
        "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
        "kubeproxy_network_programming_duration_seconds_count",
    ] {
        assert!(metrics.contains(name), "missing {name}");
    }

    kubectl(&["apply", "-f", "-"], Some(&slice(""))).expect("empty the slice");
    let refused = eventually(30, || (connect(&node, &vip).0 == Outcome::Refused).then_some(()));
    assert!(refused.is_some(), "a service without endpoints refuses");
}

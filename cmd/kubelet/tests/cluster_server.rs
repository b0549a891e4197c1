//! End-to-end, cluster mode: the authenticated kubelet server on 198.18.255.1:10250 as the API
//! server and real `kubectl` use it — `kubectl logs` (`-f`, `--tail`, `--previous`, and over a
//! WebSocket as the conformance spec reads it),
//! `kubectl exec` (with and without stdin), `kubectl port-forward` — and its 401/403 answers to
//! callers without credentials or without RBAC. Real control plane, containerd and kubectl.

mod cluster_support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use cluster_support::*;
use e2e::{TestNode, busybox_image, http_get, wait_for};
use k8s_openapi::api::core::v1::Pod;

const POD: &str = "e2e-server";

fn pod_yaml() -> String {
    let image = busybox_image();
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {POD}, namespace: default}}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {image}
    imagePullPolicy: Never
    command: ["sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done; sleep 3600"]
  - name: crash
    image: {image}
    imagePullPolicy: Never
    command: ["sh", "-c", "echo crash-run; sleep 1; exit 3"]
  - name: web
    image: {image}
    imagePullPolicy: Never
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 8080 -h /www"]
"#
    )
}

fn container_restarts(p: &Pod, name: &str) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == name))
        .map(|c| c.restart_count)
        .unwrap_or(0)
}

use e2e::free_port;

/// `curl` to the kubelet server; returns (HTTP status, body).
fn curl(extra: &[&str], path: &str) -> (String, String) {
    let url = format!("https://{NODE_IP}:10250{path}");
    let out =
        Command::new("curl").args(["-sk", "--max-time", "10", "-w", "\n%{http_code}"]).args(extra).arg(&url).output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.to_string(), body.to_string())
}

/// A pod's log read through the API server over a WebSocket (`binary.k8s.io`), as upstream's
/// "should support retrieving logs from the container over websockets" spec reads it: the binary
/// frames' payloads joined. curl does the upgrade; the frames are parsed here.
fn websocket_log(pod: &str, container: &str) -> String {
    let pki = format!("{CP_DIR}/pki");
    let url = format!("https://198.18.255.1:6443/api/v1/namespaces/default/pods/{pod}/log?container={container}");
    let out = Command::new("curl")
        .args(["-sk", "--http1.1", "-N", "--max-time", "5", "--cert", &format!("{pki}/admin.crt"), "--key", &format!("{pki}/admin.key")])
        .args(["-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13"])
        .args(["-H", "Sec-WebSocket-Key: a25vZGUtZTJlLXdzLWxvZ3M=", "-H", "Sec-WebSocket-Protocol: binary.k8s.io", "-D", "-"])
        .arg(&url)
        .output()
        .expect("run curl");
    let raw = out.stdout;
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP response head") + 4;
    let head = String::from_utf8_lossy(&raw[..head_end]);
    assert!(head.starts_with("HTTP/1.1 101"), "WebSocket upgrade refused: {head}");
    // Server frames are unmasked: FIN|opcode, then a 7-bit length (126: 16-bit, 127: 64-bit).
    let (mut text, mut at, mut rest) = (Vec::new(), head_end, &raw[head_end..]);
    while rest.len() >= 2 {
        let opcode = rest[0] & 0x0f;
        let (len, skip) = match rest[1] & 0x7f {
            126 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
            127 => (u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize, 10),
            n => (n as usize, 2),
        };
        let payload = &rest[skip..skip + len];
        match opcode {
            2 => text.extend_from_slice(payload),
            8 => break,
            other => panic!("unexpected WebSocket opcode {other} at byte {at}"),
        }
        at += skip + len;
        rest = &rest[skip + len..];
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// A client certificate for `cn` signed by the cluster CA (no RBAC binding anywhere).
fn user_cert(dir: &std::path::Path, cn: &str) -> (String, String) {
    let (key, csr, crt) = (dir.join(format!("{cn}.key")), dir.join(format!("{cn}.csr")), dir.join(format!("{cn}.crt")));
    let run =
        |args: &[&str]| assert!(Command::new("openssl").args(args).stderr(Stdio::null()).status().unwrap().success(), "openssl {args:?}");
    run(&["genrsa", "-out", key.to_str().unwrap(), "2048"]);
    run(&["req", "-new", "-key", key.to_str().unwrap(), "-subj", &format!("/CN={cn}"), "-out", csr.to_str().unwrap()]);
    let (ca, ca_key) = (format!("{CP_DIR}/pki/ca.crt"), format!("{CP_DIR}/pki/ca.key"));
    // An X.509 v3 certificate: rustls (webpki) refuses v1 certificates, which Go accepts.
    let ext = dir.join("client-ext.cnf");
    std::fs::write(&ext, "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        csr.to_str().unwrap(),
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-CAserial",
        dir.join("ca.srl").to_str().unwrap(),
        "-days",
        "1",
        "-extfile",
        ext.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
    ]);
    (crt.display().to_string(), key.display().to_string())
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn kubectl_logs_exec_port_forward_and_auth() {
    control_plane_ready().await;
    let node = TestNode::new();
    secure_config(&node);
    let kubelet = start_cluster_kubelet(&node).await;
    wait_node_ready(Duration::from_secs(60)).await;

    kubectl(&["delete", "pod", POD, "--ignore-not-found", "--grace-period=0", "--force"]);
    let file = node.dir.path().join("pod.yaml");
    std::fs::write(&file, pod_yaml()).unwrap();
    let (ok, _, err) = kubectl(&["apply", "-f", file.to_str().unwrap()]);
    assert!(ok, "kubectl apply: {err}");
    // Running, and the crashing container restarted at least once.
    wait_for("pod Running with a restarted crash container", Duration::from_secs(90), || async {
        let p: Pod = kubectl_json(&["get", "pod", POD])?;
        (p.status.as_ref()?.phase.as_deref() == Some("Running") && container_restarts(&p, "crash") >= 1).then_some(())
    })
    .await;

    // kubectl logs, --tail, --previous.
    let (ok, out, err) = kubectl(&["logs", POD, "-c", "main"]);
    assert!(ok, "kubectl logs: {err}");
    assert_eq!(out, "line 1\nline 2\nline 3\nline 4\nline 5\n");
    let (ok, out, err) = kubectl(&["logs", POD, "-c", "main", "--tail=2"]);
    assert!(ok, "kubectl logs --tail: {err}");
    assert_eq!(out, "line 4\nline 5\n");
    let (ok, out, err) = kubectl(&["logs", POD, "-c", "crash", "--previous"]);
    assert!(ok, "kubectl logs --previous: {err}");
    assert_eq!(out, "crash-run\n");
    // Over a WebSocket through the API server: the log whole, not an empty stream (the API server
    // dropped the last read's data when it came with the end of the body).
    assert_eq!(websocket_log(POD, "main"), "line 1\nline 2\nline 3\nline 4\nline 5\n");
    let (ok, _, err) = kubectl(&["logs", POD, "-c", "nope"]);
    assert!(!ok && err.contains("nope"), "{err}");

    // kubectl logs -f keeps streaming until killed.
    let mut follow = Command::new(kubectl_bin())
        .env("KUBECONFIG", format!("{CP_DIR}/admin.kubeconfig"))
        .args(["logs", "-f", POD, "-c", "main", "--timestamps"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(follow.try_wait().unwrap().is_none(), "kubectl logs -f ended while the container runs");
    follow.kill().unwrap();
    let out = follow.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().count() == 5 && text.lines().all(|l| l.contains("Z line ")), "{text}");

    // kubectl exec, then with stdin.
    let (ok, out, err) = kubectl(&["exec", POD, "-c", "main", "--", "echo", "hi"]);
    assert!(ok, "kubectl exec: {err}");
    assert_eq!(out, "hi\n");
    let (ok, _, err) = kubectl(&["exec", POD, "-c", "main", "--", "sh", "-c", "exit 7"]);
    assert!(!ok && err.contains("exit code 7"), "{err}");
    let mut exec = Command::new(kubectl_bin())
        .env("KUBECONFIG", format!("{CP_DIR}/admin.kubeconfig"))
        .args(["exec", "-i", POD, "-c", "main", "--", "sh", "-c", "tr a-z A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    exec.stdin.take().unwrap().write_all(b"from stdin\n").unwrap();
    let out = exec.wait_with_output().unwrap();
    assert!(out.status.success(), "kubectl exec -i: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "FROM STDIN\n");

    // kubectl port-forward on 127.0.0.1 to the pod's httpd.
    let port = free_port();
    let mut pf = Command::new(kubectl_bin())
        .env("KUBECONFIG", format!("{CP_DIR}/admin.kubeconfig"))
        .args(["port-forward", "--address", "127.0.0.1", &format!("pod/{POD}"), &format!("{port}:8080")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let body = wait_for("port-forward answers", Duration::from_secs(20), || async {
        match http_get(&addr, "/").await {
            Ok((200, body)) => Some(body),
            _ => None,
        }
    })
    .await;
    let _ = pf.kill();
    let _ = pf.wait();
    assert_eq!(body, "hello-from-pod\n");

    // No credentials: 401. A CA-signed user without RBAC: 403. The API server's identity: 200.
    assert_eq!(curl(&[], "/pods"), ("401".into(), "Unauthorized".into()));
    let (crt, key) = user_cert(node.dir.path(), "e2e-nobody");
    let (code, body) = curl(&["--cert", &crt, "--key", &key], "/pods");
    assert_eq!(
        (code.as_str(), body.as_str()),
        ("403", "Forbidden (user=e2e-nobody, verb=get, resource=nodes, subresource(s)=[pods proxy])\n")
    );
    let (code, body) = curl(&["--cert", &crt, "--key", &key], "/logs/");
    assert_eq!((code.as_str(), body.as_str()), ("403", "Forbidden (user=e2e-nobody, verb=get, resource=nodes, subresource(s)=[log])\n"));
    // Fine-grained authorization (upstream 1.36+): RBAC on nodes/pods alone opens /pods and
    // /runningpods/, not the proxy subresource's endpoints.
    kubectl(&["delete", "clusterrolebinding", "knode-e2e-pods-reader", "--ignore-not-found"]);
    kubectl(&["delete", "clusterrole", "knode-e2e-pods-reader", "--ignore-not-found"]);
    assert!(kubectl(&["create", "clusterrole", "knode-e2e-pods-reader", "--verb=get", "--resource=nodes/pods"]).0);
    assert!(
        kubectl(&["create", "clusterrolebinding", "knode-e2e-pods-reader", "--clusterrole=knode-e2e-pods-reader", "--user=e2e-podreader"])
            .0
    );
    let (crt, key) = user_cert(node.dir.path(), "e2e-podreader");
    let reader = ["--cert", crt.as_str(), "--key", key.as_str()];
    let pods_ok = wait_for("nodes/pods RBAC to reach the kubelet", Duration::from_secs(45), || async {
        let (code, body) = curl(&reader, "/pods");
        (code == "200").then_some(body)
    })
    .await;
    assert!(pods_ok.contains(POD), "{pods_ok}");
    assert_eq!(curl(&reader, "/runningpods/").0, "200");
    let (code, body) = curl(&reader, "/containerLogs/default/e2e-server/main");
    assert_eq!(
        (code.as_str(), body.as_str()),
        ("403", "Forbidden (user=e2e-podreader, verb=get, resource=nodes, subresource(s)=[proxy])\n")
    );
    kubectl(&["delete", "clusterrolebinding", "knode-e2e-pods-reader"]);
    kubectl(&["delete", "clusterrole", "knode-e2e-pods-reader"]);
    let (pki, pod_path) = (format!("{CP_DIR}/pki"), "/containerLogs/default/e2e-server/main?tailLines=1");
    let (admin_crt, admin_key) = (format!("{pki}/apiserver-kubelet-client.crt"), format!("{pki}/apiserver-kubelet-client.key"));
    let admin = ["--cert", admin_crt.as_str(), "--key", admin_key.as_str()];
    assert_eq!(curl(&admin, pod_path), ("200".into(), "line 5\n".into()));
    let (code, body) = curl(&admin, "/containerLogs/default/e2e-server/main?tailLines=-3");
    assert_eq!(code, "400", "{body}");

    kubectl(&["delete", "pod", POD, "--grace-period=0", "--force"]);
    teardown(kubelet).await;
}

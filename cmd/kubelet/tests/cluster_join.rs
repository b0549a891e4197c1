//! End-to-end, cluster mode: joining the 1.37 harness as operators do, with the files laid out
//! under a temporary root (`--root`; kubeadm's `--rootfs`) so the machine's own `/etc` and
//! `/var/lib/kubelet` stay untouched. The harness publishes what `kubeadm init` would
//! (`cluster-info` signed by the bootstrapsigner, `kubeadm-config`, `kubelet-config`, RBAC).
//! - `knode join` with a token and the CA hash: discovery, preflight, files and modes, the
//!   kubelet started from the shipped units (no systemd here), Ready; a pod runs; a second join
//!   under the same name is refused; `knode doctor` passes; `knode reset` stops the kubelet and
//!   leaves no credential behind.
//! - Refusals, each provoked for real: a wrong CA hash, a wrong token secret, an unknown token,
//!   a port in use, an unreachable runtime, a missing CNI configuration, an expired client
//!   certificate (doctor) — nothing is written when join refuses.
//! - `kubeadm join` (upstream 1.37) with our kubelet started exactly as kubeadm's drop-in
//!   starts it.

mod cluster_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use cluster_support::*;
use e2e::wait_for;
use knode_join::layout::Layout;

const SERVER: &str = "198.18.255.1:6443";

fn knode() -> PathBuf {
    let path = Path::new(KUBELET).with_file_name("knode");
    assert!(path.exists(), "{} is missing: build it (cargo build -p knode-cmd; hack/test.sh builds the workspace)", path.display());
    path
}

fn ca_hash() -> String {
    let ca = std::fs::read(format!("{CP_DIR}/pki/ca.crt")).unwrap();
    knode_join::discovery::ca_cert_hashes(&ca).unwrap().remove(0)
}

fn cni_conf_dir() -> String {
    std::env::var("KNODE_CNI_CONF_DIR").unwrap_or_else(|_| "/etc/knode/cni/net.d".into())
}

fn cri_socket() -> String {
    format!("unix://{}", e2e::containerd_socket())
}

/// A temporary root; on drop, `knode reset` stops any kubelet left running under it.
struct Root(tempfile::TempDir);

impl Root {
    fn new() -> Self {
        Self(tempfile::Builder::new().prefix("knode-join-").tempdir().unwrap())
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
    fn layout(&self) -> Layout {
        Layout::new(self.path())
    }
    fn at(&self, abs: &str) -> PathBuf {
        self.layout().path(abs)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = Command::new(Path::new(KUBELET).with_file_name("knode"))
            .args(["reset", "--root"])
            .arg(self.path())
            .args(["--cri-socket", &cri_socket()])
            .output();
    }
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(knode()).args(args).output().expect("run knode");
    eprintln!("knode {}\n{}{}", args.join(" "), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn join(root: &Root, token: &str, hash: &str, extra: &[&str]) -> Output {
    let root_arg = root.path().display().to_string();
    let (cri, cni) = (cri_socket(), cni_conf_dir());
    let mut args =
        vec!["join", SERVER, "--token", token, "--ca-cert-hash", hash, "--node-name", NODE, "--node-ip", NODE_IP, "--root", &root_arg];
    args.extend(["--cri-socket", &cri, "--cni-conf-dir", &cni, "--kubelet-binary", KUBELET, "--service", "process", "--timeout", "90s"]);
    args.extend_from_slice(extra);
    run(&args)
}

/// Every file under `dir` whose content contains `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() && std::fs::read(&path).is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle)) => {
                    found.push(path)
                }
                _ => {}
            }
        }
    }
    found
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn knode_join_doctor_and_reset() {
    control_plane_ready().await;
    let root = Root::new();
    let out = join(&root, &token(), &ca_hash(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "join failed: {}", text(&out));
    for step in [
        "signed by token knode0 and its CA matches the pinned hash",
        "from the cluster's kube-system/kubelet-config",
        "preflight: 11 checks, 0 problem(s)",
        "started the kubelet as the units would",
        "TLS bootstrap done",
        "node knode-node is Ready",
    ] {
        assert!(stdout.contains(step), "step {step:?} reported: {stdout}");
    }
    // Files, with upstream's modes, and the kubelet's client certificate from the CSR.
    assert_eq!(mode(&root.at("/etc/kubernetes/bootstrap-kubelet.conf")), 0o600);
    assert_eq!(mode(&root.at("/etc/kubernetes/kubelet.conf")), 0o600);
    assert_eq!(mode(&root.at("/etc/kubernetes/pki/ca.crt")), 0o644);
    assert_eq!(mode(&root.at("/var/lib/kubelet/config.yaml")), 0o644);
    let flags = std::fs::read_to_string(root.at("/var/lib/kubelet/kubeadm-flags.env")).unwrap();
    assert!(flags.starts_with("KUBELET_KUBEADM_ARGS=\"--hostname-override=knode-node --node-ip=198.18.255.1"), "{flags}");
    let config = std::fs::read_to_string(root.at("/var/lib/kubelet/config.yaml")).unwrap();
    assert!(
        config.contains("cgroupDriver: cgroupfs")
            && config.contains(&format!("clientCAFile: {}", root.at("/etc/kubernetes/pki/ca.crt").display())),
        "{config}"
    );
    let current = root.at("/var/lib/kubelet/pki/kubelet-client-current.pem");
    assert_eq!(mode(&std::fs::read_link(&current).expect("the current-certificate link")), 0o600);
    wait_node_ready(Duration::from_secs(10)).await;

    // A pod with the service account token volume runs on the joined node.
    let manifest = root.path().join("pod.yaml");
    std::fs::write(&manifest, format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: joined, namespace: default}}\nspec:\n  nodeName: {NODE}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: {}\n    imagePullPolicy: Never\n    command: [sh, -c, 'ls /var/run/secrets/kubernetes.io/serviceaccount/token && sleep 3600']\n", e2e::busybox_image())).unwrap();
    let (ok, _, err) = kubectl(&["apply", "-f", manifest.to_str().unwrap()]);
    assert!(ok, "{err}");
    pod_running("joined", Duration::from_secs(60)).await;

    // A second machine claiming the same name is refused before anything is written.
    let other = Root::new();
    let out = join(&other, &token(), &ca_hash(), &[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("[ERROR NodeName] a Ready node named knode-node already exists"), "{}", text(&out));
    assert!(!other.at("/etc/kubernetes/bootstrap-kubelet.conf").exists(), "nothing written on refusal");

    // Doctor on the joined node: every check passes, the ports are the kubelet's.
    let root_arg = root.path().display().to_string();
    let out = run(&[
        "doctor",
        "--root",
        &root_arg,
        "--node-name",
        NODE,
        "--cri-socket",
        &cri_socket(),
        "--cni-conf-dir",
        &cni_conf_dir(),
        "--kubelet-binary",
        KUBELET,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report = text(&out);
    assert!(
        report.contains("[ok Port-10250] port 10250 is the kubelet's")
            && report.contains("[ok ClientCertificate]")
            && report.contains("[ok ClockSkew]"),
        "{report}"
    );

    // Reset: kubelet stopped, pods gone, no token or key left.
    let pid: i32 = std::fs::read_to_string(root.at("/run/knode/kubelet.pid")).unwrap().trim().parse().unwrap();
    let out = run(&["reset", "--root", &root_arg, "--cri-socket", &cri_socket()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z"),
        "the kubelet stopped"
    );
    assert!(e2e::sandboxes_of("joined").await.is_empty(), "the pod's sandbox is removed");
    let secret = token().split('.').nth(1).unwrap().to_string();
    assert_eq!(files_containing(root.path(), secret.as_bytes()), Vec::<PathBuf>::new(), "the token's secret is gone");
    assert_eq!(files_containing(root.path(), b"PRIVATE KEY"), Vec::<PathBuf>::new(), "private keys are gone");
    kubectl(&["delete", "pod", "joined", "--force", "--grace-period=0", "--wait=false"]);
    kubectl(&["delete", "node", NODE, "--wait=false"]);
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn knode_join_refuses_what_it_cannot_trust_or_run_on() {
    control_plane_ready().await;
    let written =
        |root: &Root| root.at("/etc/kubernetes/bootstrap-kubelet.conf").exists() || root.at("/var/lib/kubelet/config.yaml").exists();
    let (good_token, good_hash) = (token(), ca_hash());
    let id = good_token.split('.').next().unwrap().to_string();
    let wrong_hash = format!("sha256:{}", "0".repeat(64));
    let cases: Vec<(String, String, Vec<String>, &str)> = vec![
        (good_token.clone(), wrong_hash, vec![], "refusing to trust https://198.18.255.1:6443"),
        (format!("{id}.0000000000000000"), good_hash.clone(), vec![], "does not verify: the token's secret is wrong"),
        // Not signed yet is waited for (the bootstrapsigner may be behind), up to --timeout.
        (
            "zzzzzz.0000000000000000".into(),
            good_hash.clone(),
            vec!["--timeout".into(), "3s".into()],
            "is not signed for token id \"zzzzzz\"",
        ),
        ("not-a-token".into(), good_hash.clone(), vec![], "--token: the bootstrap token must look like"),
        (
            good_token.clone(),
            good_hash.clone(),
            vec!["--cri-socket".into(), "unix:///run/knode-nonexistent.sock".into()],
            "[ERROR CRI] the container runtime at unix:///run/knode-nonexistent.sock does not answer",
        ),
    ];
    for (token, hash, extra, want) in cases {
        let root = Root::new();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let out = join(&root, &token, &hash, &extra);
        assert!(!out.status.success(), "join must fail ({want})");
        assert!(text(&out).contains(want), "wanted {want:?} in: {}", text(&out));
        assert!(!text(&out).contains(good_token.split('.').nth(1).unwrap()), "the token's secret is never printed");
        assert!(!written(&root), "nothing written ({want})");
    }

    // A port in use (the kubelet's healthz port) and a missing CNI configuration.
    let holder = std::net::TcpListener::bind("127.0.0.1:10248").expect("port 10248 free for the test");
    let root = Root::new();
    let empty = tempfile::tempdir().unwrap();
    let empty_arg = empty.path().display().to_string();
    let out = join(&root, &good_token, &good_hash, &["--cni-conf-dir", &empty_arg]);
    drop(holder);
    let report = text(&out);
    assert!(!out.status.success());
    assert!(report.contains("[ERROR Port-10248] port 10248 on 127.0.0.1 is in use by another process"), "{report}");
    assert!(report.contains(&format!("[WARNING CNIConfig] no CNI network configuration in {empty_arg}")), "{report}");
    assert!(report.contains("preflight found 1 error(s)"), "{report}");
    assert!(!written(&root));

    // Doctor with an expired client certificate.
    let root = Root::new();
    let pki = root.at("/var/lib/kubelet/pki");
    std::fs::create_dir_all(&pki).unwrap();
    std::fs::write(pki.join("kubelet-client-current.pem"), expired_client_cert()).unwrap();
    let current = pki.join("kubelet-client-current.pem").display().to_string();
    std::fs::create_dir_all(root.at("/etc/kubernetes")).unwrap();
    std::fs::write(
        root.at("/etc/kubernetes/kubelet.conf"),
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"https://{SERVER}\", certificate-authority: {CP_DIR}/pki/ca.crt}}\nusers:\n- name: u\n  user: {{client-certificate: {current}, client-key: {current}}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"),
    )
    .unwrap();
    let root_arg = root.path().display().to_string();
    let out = run(&[
        "doctor",
        "--root",
        &root_arg,
        "--cri-socket",
        &cri_socket(),
        "--cni-conf-dir",
        &cni_conf_dir(),
        "--kubelet-binary",
        KUBELET,
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("[ERROR ClientCertificate] the kubelet's client certificate") && text(&out).contains("expired"),
        "{}",
        text(&out)
    );
}

/// A node client certificate from the harness CA that expired an hour ago, with its key.
fn expired_client_cert() -> String {
    harness_client_cert(&format!("system:node:{NODE}"), Some("system:nodes"), -7200, -3600)
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn kubeadm_join_with_our_kubelet_started_as_its_drop_in_does() {
    control_plane_ready().await;
    let root = Root::new();
    let layout = root.layout();
    // kubeadm runs chrooted into the root (--rootfs); the kubelet writes host paths (under
    // the root) into kubelet.conf, which kubeadm reads: a link makes them resolve in there.
    let inside = root.at(&root.path().display().to_string());
    std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/", &inside).unwrap();
    // The operator's extra flags, as /etc/default/kubelet carries them.
    let kubelet_dir = root.at("/var/lib/kubelet");
    std::fs::create_dir_all(root.at("/etc/default")).unwrap();
    std::fs::write(
        root.at("/etc/default/kubelet"),
        format!(
            "KUBELET_EXTRA_ARGS=\"--node-ip={NODE_IP} --root-dir={} --cert-dir={}/pki\"\n",
            kubelet_dir.display(),
            kubelet_dir.display()
        ),
    )
    .unwrap();

    let kubeadm = Path::new(&kubectl_bin()).with_file_name("kubeadm");
    let mut join = tokio::process::Command::new(&kubeadm)
        .args(["join", SERVER, "--rootfs"])
        .arg(root.path())
        .args([
            "--token",
            &token(),
            "--discovery-token-ca-cert-hash",
            &ca_hash(),
            "--node-name",
            NODE,
            "--cri-socket",
            &cri_socket(),
            "--ignore-preflight-errors=all",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run kubeadm");
    // kubeadm writes config.yaml, then kubeadm-flags.env, then waits for the kubelet.
    wait_for("kubeadm's kubeadm-flags.env", Duration::from_secs(60), || async {
        root.at("/var/lib/kubelet/kubeadm-flags.env").exists().then_some(())
    })
    .await;
    let config_path = root.at("/var/lib/kubelet/config.yaml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(&config_path, layout.rewrite(&config)).unwrap();
    let argv = knode_join::service::kubelet_command(&layout, Path::new(KUBELET)).unwrap();
    assert!(argv.contains(&format!("--bootstrap-kubeconfig={}", root.at("/etc/kubernetes/bootstrap-kubelet.conf").display())), "{argv:?}");
    assert!(argv.contains(&"--hostname-override=knode-node".to_string()), "kubeadm's flags file: {argv:?}");
    let log = std::fs::File::create(root.path().join("kubelet.log")).unwrap();
    let mut kubelet = tokio::process::Command::new(&argv[0]).args(&argv[1..]).stderr(log).kill_on_drop(true).spawn().unwrap();

    let out = tokio::time::timeout(Duration::from_secs(120), async {
        let mut stdout = String::new();
        let mut stderr = String::new();
        use tokio::io::AsyncReadExt;
        join.stdout.take().unwrap().read_to_string(&mut stdout).await.unwrap();
        join.stderr.take().unwrap().read_to_string(&mut stderr).await.unwrap();
        (join.wait().await.unwrap(), stdout, stderr)
    })
    .await
    .expect("kubeadm join finished within 120 s");
    assert!(
        out.0.success() && out.1.contains("This node has joined the cluster"),
        "kubeadm join: {}\n{}\nkubelet log: {}",
        out.1,
        out.2,
        std::fs::read_to_string(root.path().join("kubelet.log")).unwrap_or_default()
    );
    wait_node_ready(Duration::from_secs(30)).await;
    let csr_user = client_csr_users();
    assert!(csr_user.iter().any(|u| u == "system:bootstrap:knode0"), "{csr_user:?}");

    let _ = kubelet.start_kill();
    let _ = kubelet.wait().await;
    e2e::remove_all_pods().await;
    kubectl(&["delete", "node", NODE, "--wait=false"]);
}

//! End-to-end, cluster mode: seed 004's manual node deployment, step by step, against the 1.37
//! harness, with `/opt/kubernetes` and `/var/lib/kubelet` moved under a temporary root. The
//! seed's own files are the inputs: its KubeletConfiguration and its `kubelet.service`
//! (kept verbatim as fixtures of kubelet-config), its bootstrap token Secret and its RBAC.
//!
//! 1–3. the bootstrap kubeconfig, made with the real `kubectl config` commands of the seed;
//! 4. the seed's KubeletConfiguration, with a `--config-dir` drop-in for what this machine
//!    needs (the shared containerd's socket, no QoS cgroups on this cgroup v1 host, no
//!    disk-based eviction or image GC on a shared disk, the harness's cluster DNS);
//! 6. the seed's unit: its command line as systemd would run it. As written it is refused —
//!    kubelets since 1.16 may not set `node-role.kubernetes.io/*` labels — with upstream's
//!    message; the operator drops that flag and labels the node with kubectl instead;
//! 7–8. the seed's token Secret and RBAC for CSR auto-approval;
//! 9. the kubelet starts, bootstraps its certificate and the node is Ready.

mod cluster_support;

use std::process::Command;
use std::time::Duration;

use cluster_support::*;

const SEED_TOKEN: &str = "be8dad.da8a699a46edc482";

fn fixture(name: &str) -> String {
    let path = repo_root().join("crates/kubelet-config/tests/fixtures/seeds").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The seed's step 7 and 8 manifests (the token Secret, the bootstrap RBAC), as written there.
fn seed_cluster_objects() -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bootstrap-token-be8dad\n  namespace: kube-system\ntype: bootstrap.kubernetes.io/token\nstringData:\n  token-id: be8dad\n  token-secret: da8a699a46edc482\n  usage-bootstrap-authentication: \"true\"\n  usage-bootstrap-signing: \"true\"\n  auth-extra-groups: system:bootstrappers:default-node-token\n\
         ---\n{}---\n{}---\n{}",
        binding("kubelet-bootstrap", "system:node-bootstrapper", "system:bootstrappers:default-node-token"),
        binding(
            "node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            "system:bootstrappers:default-node-token"
        ),
        binding(
            "node-autoapprove-certificate-rotation",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            "system:nodes"
        ),
    )
}

fn binding(name: &str, role: &str, group: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: {name}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: {role}\nsubjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: Group\n  name: {group}\n"
    )
}

fn kubectl_ok(args: &[&str]) {
    let (ok, out, err) = kubectl(args);
    assert!(ok, "kubectl {}: {out}{err}", args.join(" "));
}

fn run_kubelet_expecting_failure(argv: &[String]) -> String {
    let out = Command::new(&argv[0]).args(&argv[1..]).output().expect("run the kubelet");
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
#[ignore = "needs root, containerd and the control plane: run hack/test.sh"]
async fn seed_004_manual_deployment_step_by_step() {
    control_plane_ready().await;
    let root = tempfile::Builder::new().prefix("knode-seed004-").tempdir().unwrap();
    let opt = root.path().join("opt/kubernetes");
    let moved = |text: &str| text.replace("/opt/kubernetes/", &format!("{}/", opt.display()));
    for dir in ["cfg", "ssl", "manifests", "log", "cfg/kubelet.conf.d"] {
        std::fs::create_dir_all(opt.join(dir)).unwrap();
    }
    std::fs::copy(format!("{CP_DIR}/pki/ca.crt"), opt.join("ssl/ca.pem")).unwrap();

    // Steps 1–3: the bootstrap kubeconfig, with the seed's kubectl commands.
    let bootstrap = opt.join("cfg/kubelet-bootstrap.kubeconfig").display().to_string();
    let kc = |args: &[&str]| {
        let out = Command::new(kubectl_bin()).args(args).arg(format!("--kubeconfig={bootstrap}")).output().expect("kubectl config");
        assert!(out.status.success(), "kubectl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    };
    let ca = opt.join("ssl/ca.pem").display().to_string();
    kc(&[
        "config",
        "set-cluster",
        "kubernetes",
        &format!("--certificate-authority={ca}"),
        "--embed-certs=true",
        &format!("--server=https://{NODE_IP}:6443"),
    ]);
    kc(&["config", "set-credentials", "tls-bootstrap-token-user", &format!("--token={SEED_TOKEN}")]);
    kc(&["config", "set-context", "tls-bootstrap-token-user@kubernetes", "--cluster=kubernetes", "--user=tls-bootstrap-token-user"]);
    kc(&["config", "use-context", "tls-bootstrap-token-user@kubernetes"]);

    // Step 4: the seed's configuration, and this machine's drop-in over it.
    std::fs::write(opt.join("cfg/kubelet-conf.yaml"), moved(&fixture("004-kubelet-conf.yaml"))).unwrap();
    std::fs::write(
        opt.join("cfg/kubelet.conf.d/50-this-machine.conf"),
        format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncontainerRuntimeEndpoint: unix://{}\n\
             cgroupsPerQOS: false\nenforceNodeAllocatable: [none]\nmakeIPTablesUtilChains: false\nreadOnlyPort: 0\nclusterDNS: [198.19.0.10]\n\
             evictionHard: {{memory.available: 100Mi, nodefs.available: \"0%\", nodefs.inodesFree: \"0%\", imagefs.available: \"0%\"}}\n\
             imageGCHighThresholdPercent: 100\nimageGCLowThresholdPercent: 99\n",
            e2e::containerd_socket()
        ),
    )
    .unwrap();

    // Step 6: the seed's unit, as systemd would run it, binary and paths moved.
    let unit = moved(&fixture("004-kubelet.service"));
    let mut argv = knode_join::unit::exec_start(&[&unit], |_| None).unwrap();
    argv[0] = KUBELET.to_string();
    argv.retain(|a| !a.starts_with("--hostname-override="));
    let kubelet_dir = root.path().join("var/lib/kubelet");
    argv.extend([
        format!("--hostname-override={NODE}"),
        format!("--node-ip={NODE_IP}"),
        format!("--root-dir={}", kubelet_dir.display()),
        format!("--config-dir={}", opt.join("cfg/kubelet.conf.d").display()),
    ]);
    let refused = run_kubelet_expecting_failure(&argv);
    assert!(
        refused.contains("unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: [node-role.kubernetes.io/master]"),
        "{refused}"
    );
    argv.retain(|a| !a.starts_with("--node-labels="));

    // Steps 7–8: the token Secret and the RBAC.
    let objects = root.path().join("seed-objects.yaml");
    std::fs::write(&objects, seed_cluster_objects()).unwrap();
    kubectl(&["delete", "-f", objects.to_str().unwrap(), "--ignore-not-found"]);
    kubectl_ok(&["create", "-f", objects.to_str().unwrap()]);

    // Step 9: start it.
    let log = root.path().join("kubelet.log");
    let mut kubelet = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let node = tokio::time::timeout(Duration::from_secs(90), wait_node_ready(Duration::from_secs(90))).await;
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(node.is_ok(), "node Ready; kubelet log:\n{log_text}");
    for removed in ["--network-plugin", "--allow-privileged", "--alsologtostderr"] {
        assert!(log_text.contains(removed), "a warning names the removed flag {removed}");
    }
    // The certificate is where the seed's --cert-dir says, issued for the seed's token.
    let current = opt.join("ssl/kubelet-client-current.pem");
    assert!(std::fs::read_link(&current).is_ok(), "{} is a link", current.display());
    assert!(opt.join("cfg/kubelet.kubeconfig").exists());
    let users = client_csr_users();
    assert!(users.iter().any(|u| u == "system:bootstrap:be8dad"), "{users:?}");
    // The role label, the operator's way.
    kubectl_ok(&["label", "node", NODE, "node-role.kubernetes.io/master=linux-node1", "--overwrite"]);

    let _ = kubelet.start_kill();
    let _ = kubelet.wait().await;
    // The kubelet bind-mounts its root directory on itself; detach it so the directory goes.
    let _ = Command::new("umount").arg("--lazy").arg(&kubelet_dir).status();
    e2e::remove_all_pods().await;
    kubectl(&["delete", "-f", objects.to_str().unwrap(), "--ignore-not-found"]);
    kubectl(&["delete", "node", NODE, "--wait=false"]);
}

//! The kubelet binary's command line: bad options give one clear line and a non-zero exit,
//! before anything touches the node. No container runtime needed.

use std::process::Command;

const KUBELET: &str = env!("CARGO_BIN_EXE_kubelet");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(KUBELET).args(args).output().expect("run kubelet");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn missing_config_file_is_named() {
    let (code, _, err) = run(&["--config=/nonexistent/kubelet.yaml"]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/kubelet.yaml"), "{err}");
}

#[test]
fn bad_field_names_file_field_and_expectation() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(&dir, "k.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nsyncFrequency: 10 seconds\n");
    let (code, _, err) = run(&["--config", &cfg]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&cfg) && err.contains("syncFrequency") && err.contains("duration"), "{err}");

    let cfg = write(
        &dir,
        "q.yaml",
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nevictionHard:\n  memory.available: lots\n",
    );
    let (code, _, err) = run(&["--config", &cfg]);
    assert_eq!(code, 1);
    assert!(err.contains("evictionHard") && err.contains("lots"), "{err}");

    let cfg = write(&dir, "t.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: many\n");
    let (code, _, err) = run(&["--config", &cfg]);
    assert_eq!(code, 1);
    assert!(err.contains("maxPods"), "{err}");
}

#[test]
fn wrong_kind_and_garbage_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(&dir, "k.yaml", "apiVersion: v1\nkind: Pod\n");
    let (code, _, err) = run(&["--config", &cfg]);
    assert_eq!(code, 1);
    assert!(err.contains("KubeletConfiguration"), "{err}");
    let cfg = write(&dir, "g.yaml", "\u{0}\u{1}: [");
    let (code, _, err) = run(&["--config", &cfg]);
    assert_eq!(code, 1);
    assert!(err.contains(&cfg), "{err}");
}

#[test]
fn unknown_flags_and_restricted_node_labels_are_refused() {
    let (code, _, err) = run(&["--no-such-flag=1"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown flag: --no-such-flag"), "{err}");
    let (code, _, err) = run(&["--node-labels=node-role.kubernetes.io/master="]);
    assert_eq!(code, 1);
    assert!(err.contains("node-role.kubernetes.io/master"), "{err}");
}

#[test]
fn help_and_version_exit_zero() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--pod-manifest-path"), "{out}");
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("Kubernetes v"), "{out}");
}

//! The systemd units in `deploy/systemd` pass `systemd-analyze verify` (where systemd's tools
//! are installed; the test says so and passes trivially otherwise), and a broken copy does not —
//! so the check can fail. The binaries they start are pointed at `/bin/true` in a temporary
//! copy: `verify` requires an executable there.

use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/systemd")
}

fn have_systemd_analyze() -> bool {
    Command::new("systemd-analyze").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Copies the units into a temporary directory with the binaries replaced, applies `edit`
/// to the kubelet's drop-in, and runs `systemd-analyze verify`: (success, output).
fn verify(edit: impl Fn(String) -> String) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("kubelet.service.d")).unwrap();
    let copy = |name: &str, edit: &dyn Fn(String) -> String| {
        let text = std::fs::read_to_string(deploy().join(name))
            .unwrap()
            .replace("/usr/bin/kubelet", "/bin/true")
            .replace("/usr/bin/kube-proxy", "/bin/true");
        std::fs::write(dir.path().join(name), edit(text)).unwrap();
    };
    copy("kubelet.service", &|t| t);
    copy("kube-proxy.service", &|t| t);
    copy("kubelet.service.d/10-kubeadm.conf", &edit);
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.path().join("kubelet.service"))
        .arg(dir.path().join("kube-proxy.service"))
        .current_dir(dir.path())
        .output()
        .expect("run systemd-analyze");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // Anything said about our units is a finding, even with a zero exit status.
    let ours = text
        .lines()
        .filter(|l| l.contains("kubelet.service") || l.contains("kube-proxy.service") || l.contains("10-kubeadm.conf"))
        .collect::<Vec<_>>()
        .join("\n");
    (out.status.success() && ours.is_empty(), text)
}

#[test]
fn shipped_units_pass_systemd_analyze_verify() {
    if !have_systemd_analyze() {
        eprintln!("systemd-analyze is not installed: the units are not verified here");
        return;
    }
    let (ok, text) = verify(|t| t);
    assert!(ok, "systemd-analyze verify: {text}");
    let (ok, text) = verify(|t| t.replace("ExecStart=/bin/true", "ExecStart=bin/true"));
    assert!(!ok, "a relative ExecStart must be reported: {text}");
}

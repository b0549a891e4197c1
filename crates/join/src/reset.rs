//! `knode reset`: undoes a join. Stops the kubelet (systemd or the process `knode join`
//! started), removes the pods it ran from the runtime (as `kubeadm reset` does), unmounts
//! what the kubelet mounted under its directory, and removes every file the join and the
//! kubelet wrote — the bootstrap token, the client certificates and keys, the configuration —
//! so nothing secret stays behind. The Node object stays: remove it with `kubectl delete node`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kubelet_cri::RuntimeService;

use crate::join::ServiceMode;
use crate::layout::{BOOTSTRAP_KUBECONFIG, CA_CERT, KUBELET_DIR, KUBELET_KUBECONFIG, Layout, MANIFESTS, PID_FILE};
use crate::report::Report;
use crate::service;

/// What `knode reset` was asked to do.
pub struct ResetOptions {
    /// Where the node's files are (`--root`, default `/`).
    pub layout: Layout,
    /// The container runtime's CRI endpoint, for removing the pods.
    pub cri_socket: String,
    /// How the kubelet was started, so it is stopped the same way.
    pub service: ServiceMode,
    /// Stop and remove every pod sandbox in the runtime (off with `--keep-pods`).
    pub remove_pods: bool,
}

/// Why `knode reset` stopped.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// A step failed (a path could not be removed).
    #[error("{what}: {reason}")]
    Failed {
        /// What was being done (`remove <path>`).
        what: String,
        /// The error, as text.
        reason: String,
    },
}

/// Runs the reset, reporting each step: stops the kubelet, removes the pods, unmounts and
/// removes the node's files and units.
pub async fn reset<W: Write>(opts: &ResetOptions, report: &mut Report<W>) -> Result<(), ResetError> {
    let layout = &opts.layout;
    let units = service::unit_paths(layout);
    let systemd = match opts.service {
        ServiceMode::Auto => service::systemd_runs() && units[0].exists(),
        ServiceMode::Systemd => true,
        ServiceMode::Process => false,
    };
    if systemd {
        let r = service::systemctl(&["disable", "--now", "kubelet"]);
        report.step(format!("systemctl disable --now kubelet: {}", r.map_or_else(|e| e.to_string(), |_| "done".into())));
    } else {
        match service::stop_process(layout, Duration::from_secs(20)) {
            Some(pid) => report.step(format!("stopped the kubelet (pid {pid})")),
            None => report.step("no kubelet process of ours is running"),
        }
    }

    if opts.remove_pods {
        match remove_pods(&opts.cri_socket).await {
            Ok(n) => report.step(format!("removed {n} pod sandbox(es) and their containers from the runtime")),
            Err(e) => report
                .step(format!("could not remove the pods from the runtime at {}: {e} (remove them with crictl rmp -fa)", opts.cri_socket)),
        }
    }

    let kubelet_dir = layout.path(KUBELET_DIR);
    let unmounted = unmount_under(&kubelet_dir);
    if unmounted > 0 {
        report.step(format!("unmounted {unmounted} mount(s) under {}", kubelet_dir.display()));
    }
    // Never delete through a mount point (a volume's data): what is still mounted stays.
    let still_mounted = mounts_under(&kubelet_dir);

    let mut removed = Vec::new();
    for path in [BOOTSTRAP_KUBECONFIG, KUBELET_KUBECONFIG, CA_CERT, PID_FILE].map(|p| layout.path(p)).into_iter().chain(units.clone()) {
        if remove(&path)? {
            removed.push(path);
        }
    }
    let kubelet_parts = if still_mounted.is_empty() {
        vec![kubelet_dir.clone()]
    } else {
        report.step(format!("{} is left in place, these are still mounted (unmount them and remove it):", kubelet_dir.display()));
        for m in &still_mounted {
            report.detail(m.display().to_string());
        }
        // Its credentials and configuration go all the same.
        ["pki", "config.yaml", "kubeadm-flags.env", "instance-config.yaml"].iter().map(|p| kubelet_dir.join(p)).collect()
    };
    for dir in kubelet_parts.into_iter().chain([layout.path(MANIFESTS)]) {
        if remove(&dir)? {
            removed.push(dir);
        }
    }
    // The drop-in directory only if it held nothing but ours.
    let drop_ins = units[1].parent().expect("drop-in dir");
    if std::fs::remove_dir(drop_ins).is_ok() {
        removed.push(drop_ins.to_path_buf());
    }
    if systemd {
        let _ = service::systemctl(&["daemon-reload"]);
    }
    report.step(format!("removed {} path(s)", removed.len()));
    for p in &removed {
        report.detail(p.display().to_string());
    }
    report.step("reset done; the Node object stays in the cluster: kubectl delete node <name> removes it");
    Ok(())
}

/// Removes a file or a directory tree; whether it existed.
fn remove(path: &Path) -> Result<bool, ResetError> {
    let result = match std::fs::symlink_metadata(path) {
        Err(_) => return Ok(false),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    result.map(|_| true).map_err(|e| ResetError::Failed { what: format!("remove {}", path.display()), reason: e.to_string() })
}

async fn remove_pods(socket: &str) -> Result<usize, String> {
    let rt = kubelet_cri::RemoteRuntime::connect(socket, Duration::from_secs(30)).map_err(|e| e.to_string())?;
    let sandboxes = rt.list_pod_sandbox(None).await.map_err(|e| e.to_string())?;
    for s in &sandboxes {
        rt.stop_pod_sandbox(&s.id).await.map_err(|e| e.to_string())?;
        rt.remove_pod_sandbox(&s.id).await.map_err(|e| e.to_string())?;
    }
    Ok(sandboxes.len())
}

/// The mount points at or under `dir`, deepest first, each once.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return Vec::new() };
    let mut points: Vec<PathBuf> = info.lines().filter_map(|l| l.split(' ').nth(4)).map(unescape).filter(|p| p.starts_with(dir)).collect();
    points.sort_by(|a, b| b.components().count().cmp(&a.components().count()).then_with(|| a.cmp(b)));
    points.dedup();
    points
}

/// Lazily unmounts every mount point at or under `dir`, deepest first (stacked mounts need
/// one unmount each: a few passes); how many unmounts succeeded.
fn unmount_under(dir: &Path) -> usize {
    let mut n = 0;
    for _ in 0..4 {
        let points = mounts_under(dir);
        let before = n;
        n += unmount_all(&points);
        if points.is_empty() || n == before {
            break;
        }
    }
    n
}

fn unmount_all(points: &[PathBuf]) -> usize {
    let mut n = 0;
    for p in points {
        let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else { continue };
        // SAFETY: c is a valid NUL-terminated path.
        if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
            n += 1;
        }
    }
    n
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> PathBuf {
    let mut out = String::new();
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        match u8::from_str_radix(rest.get(at + 1..at + 4).unwrap_or(""), 8) {
            Ok(b) => {
                out.push(b as char);
                rest = &rest[at + 4..];
            }
            Err(_) => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    PathBuf::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape("/var/lib/kubelet/pods/a\\040b"), PathBuf::from("/var/lib/kubelet/pods/a b"));
        assert_eq!(unescape("/plain"), PathBuf::from("/plain"));
    }

    #[tokio::test]
    async fn reset_removes_what_join_wrote_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        for p in [
            BOOTSTRAP_KUBECONFIG,
            KUBELET_KUBECONFIG,
            CA_CERT,
            "/var/lib/kubelet/pki/kubelet-client-current.pem",
            "/var/lib/kubelet/config.yaml",
            "/etc/kubernetes/manifests/x.yaml",
            "/etc/kubernetes/admin.conf",
        ] {
            crate::files::write(&layout.path(p), "x", 0o600).unwrap();
        }
        let opts = ResetOptions {
            layout: layout.clone(),
            cri_socket: "unix:///nonexistent.sock".into(),
            service: ServiceMode::Process,
            remove_pods: false,
        };
        let mut out = Vec::new();
        reset(&opts, &mut Report::new(&mut out)).await.unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("no kubelet process of ours is running"), "{text}");
        for p in [BOOTSTRAP_KUBECONFIG, KUBELET_KUBECONFIG, CA_CERT, KUBELET_DIR, MANIFESTS] {
            assert!(!layout.path(p).exists(), "{p} removed");
        }
        assert!(layout.path("/etc/kubernetes/admin.conf").exists(), "files join did not write stay");
    }
}

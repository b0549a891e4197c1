//! Where a joined node's files live: upstream's paths (kubeadm's and the kubelet's defaults),
//! optionally under a root directory (`--root`, for tests and for preparing an image). With a
//! root, the files also name each other under it, so the node works as laid out.

use std::path::{Path, PathBuf};

/// The bootstrap kubeconfig (API server, CA, bootstrap token) the kubelet's TLS bootstrap uses.
pub const BOOTSTRAP_KUBECONFIG: &str = "/etc/kubernetes/bootstrap-kubelet.conf";
/// The kubelet's own kubeconfig, written by the kubelet once its client certificate is issued.
pub const KUBELET_KUBECONFIG: &str = "/etc/kubernetes/kubelet.conf";
/// The cluster CA certificate (PEM); also the kubelet's `clientCAFile`.
pub const CA_CERT: &str = "/etc/kubernetes/pki/ca.crt";
/// The static pod directory (`staticPodPath`).
pub const MANIFESTS: &str = "/etc/kubernetes/manifests";
/// The kubelet's root directory (`--root-dir`).
pub const KUBELET_DIR: &str = "/var/lib/kubelet";
/// The kubelet's KubeletConfiguration file (`--config`).
pub const KUBELET_CONFIG: &str = "/var/lib/kubelet/config.yaml";
/// This node's kubelet flags (`KUBELET_KUBEADM_ARGS`), read by the kubeadm drop-in.
pub const KUBEADM_FLAGS: &str = "/var/lib/kubelet/kubeadm-flags.env";
/// The kubelet's certificate directory (`--cert-dir`).
pub const KUBELET_PKI: &str = "/var/lib/kubelet/pki";
/// The kubelet's current client certificate and key (PEM), issued by TLS bootstrap.
pub const CLIENT_CERT: &str = "/var/lib/kubelet/pki/kubelet-client-current.pem";
/// Operators' extra flags (`KUBELET_EXTRA_ARGS`): RPM-based and Debian-based systems.
pub const EXTRA_ARGS_FILES: [&str; 2] = ["/etc/sysconfig/kubelet", "/etc/default/kubelet"];
/// Where `knode join` installs the units when systemd runs.
pub const UNIT_DIR: &str = "/etc/systemd/system";
/// The kubelet started without systemd: its pid and its log.
pub const PID_FILE: &str = "/run/knode/kubelet.pid";
/// Where the kubelet started without systemd writes its output.
pub const LOG_FILE: &str = "/var/log/knode/kubelet.log";

/// Prefixes that name a joined node's own files (rewritten under a root).
const ROOTED: [&str; 5] = ["/etc/kubernetes/", "/var/lib/kubelet", "/etc/sysconfig/", "/etc/default/", "/run/knode/"];

/// The root directory a node's files are laid out under (`/` on a real node).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Default for Layout {
    fn default() -> Self {
        Self { root: PathBuf::from("/") }
    }
}

impl Layout {
    /// The layout under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory upstream's paths are placed under (`/` on the host).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// True when the root is `/`: the files go where upstream puts them.
    pub fn is_host(&self) -> bool {
        self.root == Path::new("/")
    }

    /// Where upstream path `abs` is under this layout.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    /// `text` with every path of a joined node's own files moved under the root.
    pub fn rewrite(&self, text: &str) -> String {
        if self.is_host() {
            return text.to_owned();
        }
        let root = self.root.display().to_string();
        let root = root.trim_end_matches('/');
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        'scan: while !rest.is_empty() {
            for prefix in ROOTED {
                if rest.starts_with(prefix) && !out.ends_with(|c: char| c.is_alphanumeric() || c == '/' || c == '_' || c == '.') {
                    out.push_str(root);
                    out.push_str(prefix);
                    rest = &rest[prefix.len()..];
                    continue 'scan;
                }
            }
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_text_move_under_a_root() {
        let host = Layout::default();
        assert_eq!(host.path(KUBELET_CONFIG), Path::new("/var/lib/kubelet/config.yaml"));
        assert_eq!(host.rewrite("--config=/var/lib/kubelet/config.yaml"), "--config=/var/lib/kubelet/config.yaml");
        let t = Layout::new("/tmp/n1");
        assert_eq!(t.path(KUBELET_CONFIG), Path::new("/tmp/n1/var/lib/kubelet/config.yaml"));
        assert_eq!(
            t.rewrite("a --kubeconfig=/etc/kubernetes/kubelet.conf\nEnvironmentFile=-/etc/default/kubelet x /usr/bin/kubelet /opt/etc/kubernetes/x"),
            "a --kubeconfig=/tmp/n1/etc/kubernetes/kubelet.conf\nEnvironmentFile=-/tmp/n1/etc/default/kubelet x /usr/bin/kubelet /opt/etc/kubernetes/x"
        );
        assert_eq!(t.rewrite("clientCAFile: /etc/kubernetes/pki/ca.crt"), "clientCAFile: /tmp/n1/etc/kubernetes/pki/ca.crt");
        // Already under the root: unchanged.
        assert_eq!(t.rewrite("/tmp/n1/var/lib/kubelet/pki"), "/tmp/n1/var/lib/kubelet/pki");
    }
}

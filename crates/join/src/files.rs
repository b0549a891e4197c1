//! The files `knode join` writes, rendered as kubeadm renders them, and written atomically with
//! upstream's modes (kubeconfigs holding credentials 0600, the rest 0644).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::layout::{CA_CERT, Layout, MANIFESTS};
use crate::token::BootstrapToken;

/// Why a node file could not be rendered or written.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The cluster's KubeletConfiguration is not YAML, not a mapping, or of another `kind`.
    #[error("the cluster's kubelet configuration (kube-system/kubelet-config, key kubelet): {0}")]
    ClusterConfig(String),
    /// A file or directory could not be written.
    #[error("write {path}: {source}")]
    Write {
        /// The path under the layout's root.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// `bootstrap-kubelet.conf`: the API server, the CA (embedded, as kubeadm does) and the token.
pub fn bootstrap_kubeconfig(server: &str, ca_pem: &[u8], token: &BootstrapToken) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kubernetes\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\n\
         contexts:\n- name: tls-bootstrap-token-user@kubernetes\n  context:\n    cluster: kubernetes\n    user: tls-bootstrap-token-user\n\
         current-context: tls-bootstrap-token-user@kubernetes\nusers:\n- name: tls-bootstrap-token-user\n  user:\n    token: {token}\n",
        ca = STANDARD.encode(ca_pem),
        token = token.bearer(),
    )
}

/// `kubeadm-flags.env`: this node's own kubelet flags, in `KUBELET_KUBEADM_ARGS`.
pub fn kubeadm_flags_env(flags: &[String]) -> String {
    format!("KUBELET_KUBEADM_ARGS=\"{}\"\n", flags.join(" "))
}

/// `config.yaml`: the cluster's KubeletConfiguration (or an empty one), completed as kubeadm
/// completes it for a joining node — the cluster CA as the client CA, the static pod
/// directory, client certificate rotation — and this node's runtime endpoint (kubeadm's
/// per-instance configuration). Paths move under the layout's root.
pub fn kubelet_config(cluster: Option<&str>, cri_socket: &str, layout: &Layout) -> Result<String, FilesError> {
    let mut config: Map<String, Value> = match cluster {
        Some(text) => serde_saphyr::from_str(text).map_err(|e| FilesError::ClusterConfig(e.to_string()))?,
        None => Map::new(),
    };
    if let Some(kind) = config.get("kind").and_then(Value::as_str).filter(|k| *k != "KubeletConfiguration") {
        return Err(FilesError::ClusterConfig(format!("kind is {kind:?}, expected KubeletConfiguration")));
    }
    config.insert("apiVersion".into(), json!("kubelet.config.k8s.io/v1beta1"));
    config.insert("kind".into(), json!("KubeletConfiguration"));
    let auth = config.entry("authentication").or_insert_with(|| json!({}));
    let Some(auth) = auth.as_object_mut() else {
        return Err(FilesError::ClusterConfig("authentication is not a mapping".into()));
    };
    let x509 = auth.entry("x509").or_insert_with(|| json!({}));
    if let Some(x509) = x509.as_object_mut() {
        x509.entry("clientCAFile").or_insert_with(|| json!(CA_CERT));
    }
    config.entry("staticPodPath").or_insert_with(|| json!(MANIFESTS));
    config.entry("rotateCertificates").or_insert(json!(true));
    config.insert("containerRuntimeEndpoint".into(), json!(cri_socket));
    let text = serde_saphyr::to_string(&config).map_err(|e| FilesError::ClusterConfig(e.to_string()))?;
    Ok(layout.rewrite(&text))
}

/// Writes `contents` to `path` with `mode` (temporary file and rename), creating its
/// directories (0755).
pub fn write(path: &Path, contents: &str, mode: u32) -> Result<(), FilesError> {
    let err = |source| FilesError::Write { path: path.display().to_string(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("knode-tmp");
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp).map_err(err)?;
    file.write_all(contents.as_bytes()).and_then(|_| file.sync_all()).map_err(err)?;
    // The mode of an existing file is not changed by open(): set it.
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_config_is_completed_and_rooted() {
        let cluster = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: cgroupfs\nauthentication:\n  webhook: {enabled: true}\nstaticPodPath: /srv/manifests\n";
        let text = kubelet_config(Some(cluster), "unix:///run/containerd/containerd.sock", &Layout::new("/tmp/r")).unwrap();
        let v: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(v["cgroupDriver"], "cgroupfs");
        assert_eq!(v["authentication"]["webhook"]["enabled"], true);
        assert_eq!(v["authentication"]["x509"]["clientCAFile"], "/tmp/r/etc/kubernetes/pki/ca.crt");
        assert_eq!(v["staticPodPath"], "/srv/manifests", "the cluster's own value stays");
        assert_eq!(v["rotateCertificates"], true);
        assert_eq!(v["containerRuntimeEndpoint"], "unix:///run/containerd/containerd.sock");
        let none = kubelet_config(None, "unix:///x.sock", &Layout::default()).unwrap();
        let v: Value = serde_saphyr::from_str(&none).unwrap();
        assert_eq!(v["kind"], "KubeletConfiguration");
        assert_eq!(v["staticPodPath"], "/etc/kubernetes/manifests");
    }

    #[test]
    fn a_broken_cluster_config_is_named() {
        for bad in ["kind: KubeProxyConfiguration\n", "authentication: 3\n", "[1, 2"] {
            let err = kubelet_config(Some(bad), "unix:///x.sock", &Layout::default()).unwrap_err().to_string();
            assert!(err.contains("kube-system/kubelet-config"), "{bad}: {err}");
        }
    }

    #[test]
    fn kubeconfig_and_flags_render_and_files_get_their_modes() {
        let token = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        let kc = bootstrap_kubeconfig("https://198.18.255.1:6443", b"PEM", &token);
        assert!(kc.contains("token: abcdef.0123456789abcdef") && kc.contains(&STANDARD.encode("PEM")));
        assert_eq!(
            kubeadm_flags_env(&["--node-ip=198.18.0.5".into(), "--hostname-override=n".into()]),
            "KUBELET_KUBEADM_ARGS=\"--node-ip=198.18.0.5 --hostname-override=n\"\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/kubernetes/bootstrap-kubelet.conf");
        write(&path, &kc, 0o600).unwrap();
        write(&path, &kc, 0o600).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), kc);
    }
}

//! The per-pod directories under the kubelet root (upstream layout):
//! `<root>/pods/<uid>/{etc-hosts, containers/<name>/<id>, volumes/kubernetes.io~empty-dir/<vol>}`.
//!
//! Also prepares the volumes this kubelet supports on its own (`emptyDir`, `hostPath`) and writes
//! the kubelet-managed hosts file. Everything takes the root as a parameter so tests use temp dirs.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;

use super::sandbox::{pod_hostname, pod_subdomain};

/// Paths of one pod's directory tree.
#[derive(Clone, Debug)]
pub struct PodDirs {
    /// The pod's directory, `<root>/pods/<uid>`.
    pub pod_dir: PathBuf,
}

/// Errors preparing a pod's directories or volumes; they carry the path.
#[derive(Debug, thiserror::Error)]
pub enum PodDirError {
    /// A file system operation on a pod directory or file failed.
    #[error("{path}: {source}")]
    Io {
        /// The directory or file operated on.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A volume of a type this kubelet cannot prepare on its own.
    #[error("volume {volume:?}: volume type not supported by this kubelet yet (emptyDir and hostPath are)")]
    UnsupportedVolume {
        /// The volume's name in the pod spec.
        volume: String,
    },
    /// A `hostPath` volume that fails its `type` check or could not be made.
    #[error("volume {volume:?}: {source}")]
    HostPath {
        /// The volume's name in the pod spec.
        volume: String,
        /// Why the host path is refused.
        #[source]
        source: HostPathError,
    },
}

/// Why a `hostPath` is refused by upstream's `type` checks (`check_host_path`).
#[derive(Debug, thiserror::Error)]
pub enum HostPathError {
    /// The path is missing or not of the declared type.
    #[error("hostPath type check failed: {} is not a {expected}", path.display())]
    TypeMismatch {
        /// The host path.
        path: PathBuf,
        /// What the `type` wants (`directory`, `file`, `socket`, `character device`, `block device`).
        expected: &'static str,
    },
    /// A `DirectoryOrCreate` or `FileOrCreate` path could not be made.
    #[error("{}: {source}", path.display())]
    Create {
        /// The host path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A `type` that is none of upstream's.
    #[error("unknown hostPath type {0:?}")]
    UnknownType(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PodDirError + '_ {
    move |source| PodDirError::Io { path: path.to_path_buf(), source }
}

fn mkdir(path: &Path) -> Result<(), PodDirError> {
    std::fs::create_dir_all(path).map_err(io_err(path))?;
    // Upstream creates pod directories 0750.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o750)).map_err(io_err(path))
}

impl PodDirs {
    /// The directories of the pod with UID `uid` under the kubelet root `root_dir` (nothing is created).
    pub fn new(root_dir: &Path, uid: &str) -> Self {
        Self { pod_dir: root_dir.join("pods").join(uid) }
    }

    /// Creates `<pod>/`, `containers/`, `volumes/` and `plugins/`.
    pub fn create(&self) -> Result<(), PodDirError> {
        for sub in ["containers", "volumes", "plugins"] {
            mkdir(&self.pod_dir.join(sub))?;
        }
        Ok(())
    }

    /// The kubelet-managed hosts file mounted at the containers' `/etc/hosts`, `<pod>/etc-hosts`.
    pub fn etc_hosts(&self) -> PathBuf {
        self.pod_dir.join("etc-hosts")
    }

    /// Creates an empty termination-message file (mode 0666) for a new container instance.
    pub fn termination_log(&self, container: &str, instance: &str) -> Result<PathBuf, PodDirError> {
        let dir = self.pod_dir.join("containers").join(container);
        mkdir(&dir)?;
        let path = dir.join(instance);
        std::fs::write(&path, b"").map_err(io_err(&path))?;
        // 0666 whatever the umask, as upstream: a container running as any user writes it.
        let mode = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o666);
        std::fs::set_permissions(&path, mode).map_err(io_err(&path))?;
        Ok(path)
    }

    /// Removes the whole pod directory; refuses while a volume is still mounted (the volume
    /// manager unmounts first), so removal never descends into a mount.
    pub fn remove(&self) -> Result<(), PodDirError> {
        // Removing through a mount would delete the volume's (or, for a hostPath sub path, the
        // host's) files. A bind mount from the same file system shares its parent's device:
        // mountinfo is asked as well.
        let resolved = std::fs::canonicalize(&self.pod_dir).unwrap_or_else(|_| self.pod_dir.clone());
        let listed = super::orphans::mounts_under(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(), &resolved);
        let by_device = crate::volumemanager::volume_dirs(&self.pod_dir)
            .into_iter()
            .find(|d| crate::volumemanager::mount::is_mount_point(d).unwrap_or(true));
        if let Some(mounted) = by_device.or(listed.into_iter().next()) {
            return Err(PodDirError::Io {
                path: mounted,
                source: io::Error::other("volume still mounted; not removing the pod directory"),
            });
        }
        match std::fs::remove_dir_all(&self.pod_dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(PodDirError::Io { path: self.pod_dir.clone(), source: e }),
            _ => Ok(()),
        }
    }

    /// Prepares every volume of the pod; returns volume name → host path.
    pub fn prepare_volumes(&self, pod: &Pod) -> Result<HashMap<String, PathBuf>, PodDirError> {
        let mut out = HashMap::new();
        for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
            let fail = |source| PodDirError::HostPath { volume: v.name.clone(), source };
            let path = if v.empty_dir.is_some() {
                let p = self.pod_dir.join("volumes/kubernetes.io~empty-dir").join(&v.name);
                mkdir(&p)?;
                p
            } else if let Some(h) = &v.host_path {
                let p = PathBuf::from(&h.path);
                check_host_path(&p, h.type_.as_deref().unwrap_or("")).map_err(fail)?;
                p
            } else {
                return Err(PodDirError::UnsupportedVolume { volume: v.name.clone() });
            };
            out.insert(v.name.clone(), path);
        }
        Ok(out)
    }

    /// Writes the kubelet-managed `/etc/hosts` for the pod (upstream `ensureHostsFile`). A pod
    /// with a `subdomain` gets `<hostname>.<subdomain>.<namespace>.svc.<cluster_domain>`, as
    /// upstream, and only its hostname when the kubelet has no `clusterDomain`.
    pub fn write_etc_hosts(&self, pod: &Pod, pod_ips: &[String], host_hosts: &Path, cluster_domain: &str) -> Result<PathBuf, PodDirError> {
        let path = self.etc_hosts();
        let spec = pod.spec.as_ref();
        let mut content = if spec.and_then(|s| s.host_network).unwrap_or(false) {
            let host = std::fs::read_to_string(host_hosts).unwrap_or_default();
            format!("# Kubernetes-managed hosts file (host network).\n{host}")
        } else {
            let mut s = String::from(
                "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
                 fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
            );
            let hostname = pod_hostname(pod);
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            let fqdn = pod_subdomain(pod)
                .filter(|_| !cluster_domain.is_empty())
                .map(|sub| format!("{hostname}.{sub}.{ns}.svc.{cluster_domain}\t{hostname}"))
                .unwrap_or_else(|| hostname.clone());
            for ip in pod_ips {
                s.push_str(&format!("{ip}\t{fqdn}\n"));
            }
            s
        };
        // Host aliases follow either content, the node's hosts file too.
        let aliases = spec.and_then(|s| s.host_aliases.as_ref());
        if aliases.is_some_and(|a| !a.is_empty()) {
            content.push_str("\n# Entries added by HostAliases.\n");
            for a in aliases.into_iter().flatten() {
                content.push_str(&format!("{}\t{}\n", a.ip, a.hostnames.as_deref().unwrap_or_default().join("\t")));
            }
        }
        std::fs::write(&path, content).map_err(io_err(&path))?;
        Ok(path)
    }
}

/// Upstream's hostPath type checks (`DirectoryOrCreate`, `File`, `Socket`, ...).
pub(crate) fn check_host_path(p: &Path, kind: &str) -> Result<(), HostPathError> {
    let meta = std::fs::metadata(p);
    let want = |ok: bool, expected: &'static str| {
        if ok { Ok(()) } else { Err(HostPathError::TypeMismatch { path: p.to_path_buf(), expected }) }
    };
    let create_err = |source| HostPathError::Create { path: p.to_path_buf(), source };
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" => match meta {
            Ok(m) => want(m.is_dir(), "directory"),
            Err(_) => std::fs::create_dir_all(p).map_err(create_err),
        },
        "FileOrCreate" => match meta {
            Ok(m) => want(m.is_file(), "file"),
            Err(_) => std::fs::OpenOptions::new().create(true).append(true).open(p).map(|_| ()).map_err(create_err),
        },
        "Directory" => want(meta.is_ok_and(|m| m.is_dir()), "directory"),
        "File" => want(meta.is_ok_and(|m| m.is_file()), "file"),
        "Socket" => want(meta.is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type())), "socket"),
        "CharDevice" => want(meta.is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_char_device(&m.file_type())), "character device"),
        "BlockDevice" => want(meta.is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_block_device(&m.file_type())), "block device"),
        other => Err(HostPathError::UnknownType(other.to_string())),
    }
}

/// Upstream's limit on the length of a `/var/log/containers` symlink name.
const MAX_SYMLINK_NAME: usize = 251;

/// The legacy `/var/log/containers/<pod>_<namespace>_<container>-<id>.log` symlink path that log
/// shippers read (upstream `legacyLogSymlink`), with the pod name cut so the name fits.
pub fn legacy_log_symlink(dir: &Path, pod: &str, namespace: &str, container: &str, id: &str) -> PathBuf {
    let suffix = format!("_{namespace}_{container}-{id}.log");
    let keep = MAX_SYMLINK_NAME.saturating_sub(suffix.len()).min(pod.len());
    let pod: String = pod.chars().take(keep).collect();
    dir.join(format!("{pod}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, HostPathVolumeSource, PodSpec, Volume};

    #[test]
    fn legacy_symlink_names_follow_upstream() {
        let p = legacy_log_symlink(Path::new("/var/log/containers"), "web-node1", "default", "main", "abc");
        assert_eq!(p, Path::new("/var/log/containers/web-node1_default_main-abc.log"));
        let long = legacy_log_symlink(Path::new("/l"), &"p".repeat(300), "ns", "c", &"f".repeat(64));
        assert_eq!(long.file_name().unwrap().len(), MAX_SYMLINK_NAME);
    }

    #[test]
    fn termination_log_is_writable_by_any_user() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dirs = PodDirs::new(root.path(), "u1");
        dirs.create().unwrap();
        let path = dirs.termination_log("app", "0a1b2c3d").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o666);
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn prepares_dirs_volumes_and_hosts_file() {
        let root = tempfile::tempdir().unwrap();
        let dirs = PodDirs::new(root.path(), "u1");
        dirs.create().unwrap();
        let mut pod = Pod::default();
        pod.metadata.name = Some("web".into());
        let host_dir = root.path().join("host");
        pod.spec = Some(PodSpec {
            volumes: Some(vec![
                Volume { name: "scratch".into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() },
                Volume {
                    name: "h".into(),
                    host_path: Some(HostPathVolumeSource {
                        path: host_dir.to_string_lossy().into(),
                        type_: Some("DirectoryOrCreate".into()),
                    }),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        });
        let v = dirs.prepare_volumes(&pod).unwrap();
        assert!(v["scratch"].ends_with("pods/u1/volumes/kubernetes.io~empty-dir/scratch") && v["scratch"].is_dir());
        assert!(host_dir.is_dir());
        let hosts = dirs.write_etc_hosts(&pod, &["198.18.0.7".into()], Path::new("/etc/hosts"), "cluster.local").unwrap();
        let text = std::fs::read_to_string(&hosts).unwrap();
        assert!(text.starts_with("# Kubernetes-managed hosts file.\n") && text.ends_with("198.18.0.7\tweb\n"));
        // A subdomain gets the FQDN under the kubelet's clusterDomain, whatever it is.
        pod.spec.as_mut().unwrap().subdomain = Some("backend".into());
        dirs.write_etc_hosts(&pod, &["198.18.0.7".into()], Path::new("/etc/hosts"), "corp.example").unwrap();
        let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let text = std::fs::read_to_string(&hosts).unwrap();
        assert!(text.ends_with(&format!("198.18.0.7\tweb.backend.{ns}.svc.corp.example\tweb\n")), "{text}");
        dirs.write_etc_hosts(&pod, &["198.18.0.7".into()], Path::new("/etc/hosts"), "").unwrap();
        assert!(std::fs::read_to_string(&hosts).unwrap().ends_with("198.18.0.7\tweb\n"));
        pod.spec.as_mut().unwrap().subdomain = None;

        // Host network: the node's hosts file, then the host aliases (as for any pod).
        let node_hosts = root.path().join("node-hosts");
        std::fs::write(&node_hosts, "127.0.0.1 localhost\n").unwrap();
        let spec = pod.spec.as_mut().unwrap();
        spec.host_network = Some(true);
        spec.host_aliases = Some(vec![k8s_openapi::api::core::v1::HostAlias {
            ip: "123.45.67.89".into(),
            hostnames: Some(vec!["foo".into(), "bar".into()]),
        }]);
        dirs.write_etc_hosts(&pod, &[], &node_hosts, "cluster.local").unwrap();
        assert_eq!(
            std::fs::read_to_string(&hosts).unwrap(),
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n\n# Entries added by HostAliases.\n123.45.67.89\tfoo\tbar\n"
        );
        let spec = pod.spec.as_mut().unwrap();
        (spec.host_network, spec.host_aliases) = (None, None);

        pod.spec.as_mut().unwrap().volumes.as_mut().unwrap()[1].host_path.as_mut().unwrap().type_ = Some("File".into());
        let err = dirs.prepare_volumes(&pod).unwrap_err();
        assert!(
            matches!(&err, PodDirError::HostPath { volume, source: HostPathError::TypeMismatch { expected: "file", .. } } if volume == "h"),
            "{err}"
        );
        assert_eq!(err.to_string(), format!("volume \"h\": hostPath type check failed: {} is not a file", host_dir.display()));
        dirs.remove().unwrap();
        assert!(!root.path().join("pods/u1").exists());
    }
}

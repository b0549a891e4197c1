//! [`AppError`]: why the kubelet could not start, or stopped.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::certificates;

/// Why the kubelet could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The CRI runtime could not be connected to, or its `Version` or `Status` call failed.
    #[error("container runtime {endpoint}: {source}")]
    Runtime {
        /// The CRI endpoint (`--container-runtime-endpoint`, `unix:///run/containerd/containerd.sock`).
        endpoint: String,
        /// The CRI call's error.
        source: kubelet_cri::CriError,
    },
    /// The runtime answered, but its `RuntimeReady` condition is false.
    #[error("container runtime {endpoint} is not ready: {reason}")]
    RuntimeNotReady {
        /// The CRI endpoint (`--container-runtime-endpoint`, `unix:///run/containerd/containerd.sock`).
        endpoint: String,
        /// The false conditions, as `RuntimeReady: <reason> <message>`, joined by `; `.
        reason: String,
    },
    /// No usable cgroup driver: the runtime's (CRI `RuntimeConfig`) or `cgroupDriver` of the
    /// KubeletConfiguration.
    #[error(transparent)]
    CgroupDriver(#[from] kubelet::cm::driver::DriverError),
    /// A server (healthz, read-only or the kubelet's HTTPS server) could not bind or failed.
    #[error("{what} on {addr}: {source}")]
    Serve {
        /// Which server: `healthz server`, `read-only server` or `kubelet server`.
        what: &'static str,
        /// The address it listens on.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A configured bind address or port does not parse.
    #[error("invalid {field} {value:?}")]
    Address {
        /// The KubeletConfiguration field (`address`, `healthzBindAddress`, ...).
        field: &'static str,
        /// The value found there.
        value: String,
    },
    /// No API client could be built from `--kubeconfig`.
    #[error("{0}")]
    ApiClient(#[from] kubelet_cluster::ClientError),
    /// `allowedUnsafeSysctls` of the KubeletConfiguration names a sysctl that cannot be allowed.
    #[error("allowedUnsafeSysctls: {0}")]
    Sysctls(#[from] kubelet::sysctl::SysctlError),
    /// The root directory (`--root-dir`) could not be created or made a shared mount.
    #[error("configuring root directory {}: {source}", path.display())]
    RootDir {
        /// The root directory (`/var/lib/kubelet` by default).
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The node's QoS cgroups (`kubepods`, `burstable`, `besteffort`) could not be set up.
    #[error("cgroupsPerQOS: {0}")]
    Cgroups(#[from] kubelet::cm::CgroupError),
    /// TLS bootstrap of the client certificate failed.
    #[error("{0}")]
    Certificate(#[from] certificates::CertificateError),
    /// The client certificate expired and could not be renewed: a restart bootstraps again.
    #[error("{0}")]
    CertificateExpired(kubelet_cluster::certificate::rotation::ExpiredError),
    /// The image credential provider plugins (`--image-credential-provider-config`) cannot be used.
    #[error("{0}")]
    CredentialPlugins(#[from] kubelet::kuberuntime::credential_plugins::PluginError),
    /// The host IDs for pods' user namespaces are unusable (`userNamespaces.idsPerPod` out of
    /// range or not a multiple of 65536, or the `kubelet` user's subordinate IDs not fitting it).
    #[error("user namespaces: {0}")]
    UserNamespaces(#[from] kubelet::kuberuntime::userns::UserNsError),
    /// `userNamespaces.idsPerPod` does not fit a 32-bit ID count.
    #[error("user namespaces: userNamespaces.idsPerPod {0} is out of range")]
    IdsPerPodOutOfRange(i64),
    /// Swap is on and `failSwapOn` is true, or `/proc/swaps` could not be read.
    #[error(transparent)]
    Swap(#[from] kubelet::cm::swap::SwapError),
    /// A supervised kubelet task panicked.
    #[error("kubelet task {task:?} panicked: {message}")]
    TaskPanicked {
        /// The task's name.
        task: &'static str,
        /// The panic's message.
        message: String,
    },
}

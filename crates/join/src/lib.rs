//! The core of the `knode` CLI: joining this machine to a cluster as `kubeadm join` does, and
//! checking or undoing that.
//!
//! - [`discovery`]: kubeadm's token discovery — the `cluster-info` ConfigMap, its JWS signature
//!   by the bootstrap token and the pinned hash of the cluster CA's public key.
//! - [`layout`] and [`files`]: the files a joined node has, with upstream's paths and modes
//!   (`/etc/kubernetes/bootstrap-kubelet.conf`, `/var/lib/kubelet/config.yaml`,
//!   `kubeadm-flags.env`, …), all under an optional root directory.
//! - [`unit`](mod@unit): the systemd units this repository ships, and the kubelet command line they give
//!   (used to start the kubelet exactly as systemd would where systemd does not run).
//! - [`preflight`]: the checks `knode join` runs first and `knode doctor` runs on a node, each
//!   failure with its fix; [`facts`] gathers what they look at.
//! - [`join`], [`reset`]: the two procedures, step by step, and [`service`] for starting and
//!   stopping the kubelet under systemd or as a plain process.

pub mod api;
pub mod discovery;
pub mod facts;
pub mod files;
pub mod join;
pub mod layout;
pub mod preflight;
pub mod report;
pub mod reset;
pub mod service;
pub mod token;
pub mod unit;

/// The units shipped in `deploy/systemd`, built into the binary so `knode join` can install
/// them.
pub mod units {
    /// `kubelet.service`: the kubelet's systemd unit.
    pub const KUBELET_SERVICE: &str = include_str!("../../../deploy/systemd/kubelet.service");
    /// `kubelet.service.d/10-kubeadm.conf`: kubeadm's drop-in giving the kubelet its
    /// kubeconfigs, `--config` and the flags in `kubeadm-flags.env`.
    pub const KUBEADM_DROP_IN: &str = include_str!("../../../deploy/systemd/kubelet.service.d/10-kubeadm.conf");
    /// `kube-proxy.service`: kube-proxy's systemd unit.
    pub const KUBE_PROXY_SERVICE: &str = include_str!("../../../deploy/systemd/kube-proxy.service");
}

# shellcheck shell=bash
# Shared variables for knode's hack/ scripts. Source it; it exports nothing on
# its own beyond what is listed here and has no side effects.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"

KNODE_REPO_ROOT="${KNODE_REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"

# Our own containerd instance: never the machine's default one.
KNODE_CONTAINERD_SOCK="${KNODE_CONTAINERD_SOCK:-/run/knode/containerd/containerd.sock}"
KNODE_CONTAINERD_TTRPC_SOCK="${KNODE_CONTAINERD_TTRPC_SOCK:-/run/knode/containerd/containerd.sock.ttrpc}"
KNODE_CONTAINERD_ROOT="${KNODE_CONTAINERD_ROOT:-/var/lib/knode/containerd}"
KNODE_CONTAINERD_STATE="${KNODE_CONTAINERD_STATE:-/run/knode/containerd}"
KNODE_CONTAINERD_CONFIG="${KNODE_CONTAINERD_CONFIG:-/etc/knode/containerd/config.toml}"
KNODE_CONTAINERD_PIDFILE="${KNODE_CONTAINERD_PIDFILE:-/run/knode/containerd.pid}"
KNODE_CONTAINERD_NAMESPACE="${KNODE_CONTAINERD_NAMESPACE:-k8s.io}"
KNODE_LOG_DIR="${KNODE_LOG_DIR:-/var/log/knode}"

# CNI: Debian's containernetworking-plugins live in /usr/lib/cni.
KNODE_CNI_BIN_DIR="${KNODE_CNI_BIN_DIR:-/usr/lib/cni}"
KNODE_CNI_CONF_DIR="${KNODE_CNI_CONF_DIR:-/etc/knode/cni/net.d}"
KNODE_POD_SUBNET="${KNODE_POD_SUBNET:-198.18.0.0/24}"
KNODE_POD_GATEWAY="${KNODE_POD_GATEWAY:-198.18.0.1}"
KNODE_POD_ROUTE="${KNODE_POD_ROUTE:-198.18.0.0/15}"
KNODE_BRIDGE="${KNODE_BRIDGE:-knode0}"

# Caches (images built locally, cargo target dir).
KNODE_CACHE="${KNODE_CACHE:-/var/cache/knode}"
KNODE_IMAGE_CACHE="${KNODE_IMAGE_CACHE:-$KNODE_CACHE/images}"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$KNODE_CACHE/target}"

# Locally built images (no registry is reachable from this machine).
KNODE_BUSYBOX_IMAGE="${KNODE_BUSYBOX_IMAGE:-localhost/knode/busybox:1.35}"
KNODE_PAUSE_IMAGE="${KNODE_PAUSE_IMAGE:-localhost/knode/pause:3.9}"

# Kubelet standalone defaults.
KNODE_KUBELET_ROOT="${KNODE_KUBELET_ROOT:-/var/lib/knode/kubelet}"

# ctr against our containerd, in the CRI namespace.
knode_ctr() {
    ctr -a "$KNODE_CONTAINERD_SOCK" -n "$KNODE_CONTAINERD_NAMESPACE" "$@"
}

# containerd 2, built from its Go module by hack/build-containerd.sh (Debian's
# 1.6 stays available: KNODE_CONTAINERD_FLAVOUR=debian runs node-env on it).
KNODE_CONTAINERD_VERSION="${KNODE_CONTAINERD_VERSION:-2.4.2}"
KNODE_CONTAINERD_BUILD_DIR="${KNODE_CONTAINERD_BUILD_DIR:-$KNODE_CACHE/containerd-$KNODE_CONTAINERD_VERSION}"
KNODE_CONTAINERD_FLAVOUR="${KNODE_CONTAINERD_FLAVOUR:-module}"
# A current runc, built from its Go module next to containerd, for the runtime
# handler "runc-userns" only: Debian's runc 1.1 (the default handler) has no
# ID-mapped mounts, so containerd reports no user namespace support for it.
KNODE_RUNC_VERSION="${KNODE_RUNC_VERSION:-1.4.4}"
KNODE_RUNC_BIN="${KNODE_RUNC_BIN:-$KNODE_CACHE/runc-$KNODE_RUNC_VERSION/bin/runc}"
KNODE_CONTAINERD_LOG="${KNODE_CONTAINERD_LOG:-$KNODE_LOG_DIR/containerd.log}"
# Registry host configs (hosts.toml per registry: mirrors to the loopback test registry).
KNODE_REGISTRY_HOSTS_DIR="${KNODE_REGISTRY_HOSTS_DIR:-/etc/knode/containerd/certs.d}"

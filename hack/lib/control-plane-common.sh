# shellcheck shell=bash
# Shared variables and small helpers for hack/control-plane.sh and
# hack/build-upstream.sh. Source it after hack/lib/env.sh; it has no side
# effects.
#
# Network rule: everything binds to 127.0.0.1 or to addresses in
# 198.18.0.0/15 on interfaces the harness creates itself.

KNODE_K8S_VERSION="${KNODE_K8S_VERSION:-1.37.2}"
KNODE_K8S_DIR="${KNODE_K8S_DIR:-$KNODE_CACHE/k8s-$KNODE_K8S_VERSION}"
KNODE_K8S_BIN_DIR="${KNODE_K8S_BIN_DIR:-$KNODE_K8S_DIR/bin}"

KNODE_CP_DIR="${KNODE_CP_DIR:-/var/lib/knode/control-plane}"
KNODE_CP_PKI="${KNODE_CP_PKI:-$KNODE_CP_DIR/pki}"
KNODE_CP_ETCD_DATA="${KNODE_CP_ETCD_DATA:-$KNODE_CP_DIR/etcd}"
KNODE_CP_LOG_DIR="${KNODE_CP_LOG_DIR:-$KNODE_LOG_DIR/control-plane}"
KNODE_CP_RUN_DIR="${KNODE_CP_RUN_DIR:-/run/knode/control-plane}"

# Ports (non-default, so nothing else on the machine clashes).
KNODE_CP_ETCD_CLIENT_PORT="${KNODE_CP_ETCD_CLIENT_PORT:-23790}"
KNODE_CP_ETCD_PEER_PORT="${KNODE_CP_ETCD_PEER_PORT:-23800}"
KNODE_CP_APISERVER_PORT="${KNODE_CP_APISERVER_PORT:-6443}"
KNODE_CP_CONTROLLER_MANAGER_PORT="${KNODE_CP_CONTROLLER_MANAGER_PORT:-10257}"
KNODE_CP_SCHEDULER_PORT="${KNODE_CP_SCHEDULER_PORT:-10259}"

# Addresses: all inside 198.18.0.0/15 (benchmarking range, never routed here).
KNODE_CP_SERVICE_CIDR="${KNODE_CP_SERVICE_CIDR:-198.19.0.0/16}"
KNODE_CP_SERVICE_FIRST_IP="${KNODE_CP_SERVICE_FIRST_IP:-198.19.0.1}"
KNODE_CP_CLUSTER_CIDR="${KNODE_CP_CLUSTER_CIDR:-198.18.0.0/16}"
KNODE_CP_NODE_CIDR_MASK="${KNODE_CP_NODE_CIDR_MASK:-24}"
KNODE_CP_NODE_NAME="${KNODE_CP_NODE_NAME:-knode-node}"
KNODE_CP_NODE_IFACE="${KNODE_CP_NODE_IFACE:-knode-node0}"
KNODE_CP_NODE_IP="${KNODE_CP_NODE_IP:-198.18.255.1}"
KNODE_CP_NODE_IP_PREFIX="${KNODE_CP_NODE_IP_PREFIX:-32}"
KNODE_CP_CLUSTER_DNS="${KNODE_CP_CLUSTER_DNS:-198.19.0.10}"
KNODE_CP_CLUSTER_DOMAIN="${KNODE_CP_CLUSTER_DOMAIN:-cluster.local}"

# The apiserver listens on the node address (not 127.0.0.1): it advertises
# that address as the endpoint of the `kubernetes` Service (endpoints may not be
# loopback), so pods reaching 198.19.0.1:443 through a proxy must find it there.
KNODE_CP_APISERVER_BIND="${KNODE_CP_APISERVER_BIND:-$KNODE_CP_NODE_IP}"
KNODE_CP_APISERVER_URL="${KNODE_CP_APISERVER_URL:-https://$KNODE_CP_APISERVER_BIND:$KNODE_CP_APISERVER_PORT}"

# metrics-server (hack/build-metrics-server.sh, hack/metrics-server.sh): a host
# process on the node address, reached by the apiserver's aggregator.
KNODE_METRICS_SERVER_VERSION="${KNODE_METRICS_SERVER_VERSION:-0.8.0}"
KNODE_METRICS_SERVER_DIR="${KNODE_METRICS_SERVER_DIR:-$KNODE_CACHE/metrics-server-$KNODE_METRICS_SERVER_VERSION}"
KNODE_METRICS_SERVER_BIN="${KNODE_METRICS_SERVER_BIN:-$KNODE_METRICS_SERVER_DIR/bin/metrics-server}"
KNODE_METRICS_SERVER_PORT="${KNODE_METRICS_SERVER_PORT:-4443}"

# Kubeconfigs written by `control-plane.sh up`.
KNODE_CP_ADMIN_KUBECONFIG="${KNODE_CP_ADMIN_KUBECONFIG:-$KNODE_CP_DIR/admin.kubeconfig}"
KNODE_CP_NODE_KUBECONFIG="${KNODE_CP_NODE_KUBECONFIG:-$KNODE_CP_DIR/node.kubeconfig}"

# A bootstrap token (for TLS-bootstrap tests): id.secret, [a-z0-9]{6}.[a-z0-9]{16}.
KNODE_CP_BOOTSTRAP_TOKEN_ID="${KNODE_CP_BOOTSTRAP_TOKEN_ID:-knode0}"

say() { printf '==> %s\n' "$*"; }
warn() { printf '==> WARNING: %s\n' "$*" >&2; }
die() { printf '==> ERROR: %s\n' "$*" >&2; exit 1; }

#!/usr/bin/env bash
# A real Kubernetes 1.37 control plane on this machine, for tests and users:
# etcd (Debian), kube-apiserver, kube-controller-manager and kube-scheduler
# (built from source by hack/build-upstream.sh), our own CA and certificates,
# and a node address on a bridge the harness creates. Everything binds to
# 127.0.0.1 or to 198.18.255.1 on that bridge. See docs/control-plane.md.
#
# Usage:
#   hack/control-plane.sh up             start whatever is not running, wait until ready
#   hack/control-plane.sh down [--purge] stop everything (--purge: also wipe etcd data)
#   hack/control-plane.sh status         show what runs
#   hack/control-plane.sh env            print `export KUBECONFIG=...` lines (eval them)
#   hack/control-plane.sh kubelet-up     run the UPSTREAM kubelet 1.37 as node
#                                        knode-node against our containerd (baseline)
#   hack/control-plane.sh kubelet-down   stop it and remove the pods it left in containerd
#   hack/control-plane.sh apiserver-stop stop only kube-apiserver (an API outage; `up` ends it)
set -euo pipefail

# shellcheck source=hack/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
# shellcheck source=hack/lib/control-plane-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/control-plane-common.sh"
# shellcheck source=hack/lib/control-plane-pki.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/control-plane-pki.sh"
# shellcheck source=hack/lib/control-plane-proc.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/control-plane-proc.sh"
# shellcheck source=hack/lib/control-plane-components.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/control-plane-components.sh"
# shellcheck source=hack/lib/control-plane-kubelet.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/control-plane-kubelet.sh"
# shellcheck source=hack/lib/control-plane-metrics-server.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/control-plane-metrics-server.sh"
# shellcheck source=hack/lib/control-plane-kubeadm.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/control-plane-kubeadm.sh"

usage() { sed -n '8,16p' "$0" | sed 's/^# \{0,1\}//'; }

cmd=${1:-}
[[ -n $cmd ]] || { usage >&2; exit 2; }
shift
PURGE=false
for arg in "$@"; do
    case "$arg" in
        --purge) PURGE=true ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $arg" ;;
    esac
done
if $PURGE && [[ $cmd != down ]]; then die "--purge only goes with down"; fi

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root"; }

case "$cmd" in
    up) need_root; cp_up ;;
    down) need_root; cp_down "$PURGE" ;;
    status) cp_status ;;
    env) cp_env ;;
    kubelet-up) need_root; upstream_kubelet_up ;;
    kubelet-down) need_root; upstream_kubelet_down ;;
    apiserver-stop) need_root; proc_stop kube-apiserver "$CP_APISERVER_BIN" "$CP_APISERVER_MARKER" ;;
    -h|--help|help) usage ;;
    *) usage >&2; die "unknown command: $cmd" ;;
esac

#!/usr/bin/env bash
# metrics-server (the release pinned in hack/lib/control-plane-common.sh, built
# by hack/build-metrics-server.sh) as a host process beside the control plane
# of hack/control-plane.sh, registered as APIService v1beta1.metrics.k8s.io, so
# `kubectl top node|pod` works against a kubelet on knode-node. It listens on
# 198.18.255.1:4443; see docs/control-plane.md.
#
# Usage:
#   hack/metrics-server.sh up      build if missing, start it, apply RBAC, Service,
#                                  EndpointSlice and APIService, wait until Available
#   hack/metrics-server.sh down    delete those API objects and stop it
#   hack/metrics-server.sh status  process, /livez, APIService condition (exit 3: not ready)
#
# Needs a running control plane (`hack/control-plane.sh up`) whose apiserver has
# the API-aggregation flags (one started before they existed: `down && up` once).
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

usage() { sed -n '8,15p' "$0" | sed 's/^# \{0,1\}//'; }
need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root"; }

cmd=${1:-}
[[ -n $cmd ]] || { usage >&2; exit 2; }
shift
(($# == 0)) || { usage >&2; die "unexpected arguments: $*"; }

case "$cmd" in
    up) need_root; ms_up ;;
    down) need_root; ms_down ;;
    status) ms_status ;;
    -h|--help|help) usage ;;
    *) usage >&2; die "unknown command: $cmd" ;;
esac

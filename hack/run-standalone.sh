#!/usr/bin/env bash
# The "main job": knode's kubelet in standalone mode (no API server) against our
# own containerd, running the static pods in examples/static-pods.
#
# Usage: hack/run-standalone.sh [extra kubelet flags...]
#   Extra flags come last, so they override the defaults below, e.g.
#   hack/run-standalone.sh --v=4 --pod-manifest-path=/tmp/my-pods
# Environment: KNODE_SKIP_BUILD=1 reuses the last build; KNODE_CARGO_PROFILE=dev
# builds a debug binary instead of --release.
set -euo pipefail

# shellcheck source=hack/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$KNODE_REPO_ROOT"

echo "==> preparing the node environment (hack/node-env.sh)"
hack/node-env.sh

export CARGO_TARGET_DIR
export PROTOC="${PROTOC:-/usr/bin/protoc}"
profile=${KNODE_CARGO_PROFILE:-release}
if [[ $profile == release ]]; then profile_dir=release; build_flags=(--release); else profile_dir=debug; build_flags=(); fi
kubelet_bin="$CARGO_TARGET_DIR/$profile_dir/kubelet"
if [[ -z ${KNODE_SKIP_BUILD:-} ]]; then
    echo "==> cargo build ${build_flags[*]} -p kubelet-cmd --bin kubelet"
    cargo build "${build_flags[@]}" -p kubelet-cmd --bin kubelet
fi
[[ -x $kubelet_bin ]] || { echo "==> ERROR: $kubelet_bin was not built" >&2; exit 1; }

mkdir -p "$KNODE_KUBELET_ROOT" /var/log/pods /var/log/containers

cat <<INFO
==> starting $kubelet_bin (foreground; Ctrl-C stops it, pods keep running in containerd)
    static pods:   $KNODE_REPO_ROOT/examples/static-pods
    pods (kubelet read-only API):  curl -s 127.0.0.1:10255/pods | jq '.items[].metadata.name'
    containers:    ctr -a $KNODE_CONTAINERD_SOCK -n k8s.io containers ls
    tasks:         ctr -a $KNODE_CONTAINERD_SOCK -n k8s.io tasks ls
    logs:          ls /var/log/pods/  (one directory per pod: <namespace>_<name>_<uid>/<container>/0.log)
    pod network:   ip -br addr show $KNODE_BRIDGE   (pods get 198.18.0.0/24 addresses, no default route)
    clean up:      hack/node-env.sh --stop --purge
INFO

exec "$kubelet_bin" \
    --container-runtime-endpoint="unix://$KNODE_CONTAINERD_SOCK" \
    --pod-manifest-path="$KNODE_REPO_ROOT/examples/static-pods" \
    --root-dir="$KNODE_KUBELET_ROOT" \
    --read-only-port=10255 \
    --address=127.0.0.1 \
    --fail-swap-on=false \
    --cgroups-per-qos=false \
    --enforce-node-allocatable= \
    --cgroup-driver=cgroupfs \
    --v=2 \
    "$@"

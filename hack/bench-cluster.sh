#!/usr/bin/env bash
# Benchmark: our kubelet in cluster mode against upstream kubelet 1.37, side by side on
# this machine, the shared control plane (hack/control-plane.sh) and our containerd. Each
# kubelet in turn registers as node knode-node (node IP 198.18.255.1); N bare pods are
# created through the API and timed to Running; RSS and CPU are sampled idle and with the
# pods, then CPU and the node's API requests (from the API server's audit log) over a steady
# window, then the latency of GET /stats/summary, /metrics/cadvisor and /metrics/resource on
# the kubelet's port 10250. See docs/benchmarks.md. A benchmark, not a test: run it on a quiet
# machine; with the defaults (2 rounds of each, 120 s steady windows) it takes about 16 minutes.
#
# Every run holds /tmp/knode-e2e.lock (the node name and containerd are shared with the
# end-to-end tests); the lock is released between runs.
#
# Usage: hack/bench-cluster.sh [--rounds N] [cluster-bench run flags...]
#   e.g. hack/bench-cluster.sh --rounds 3 --pods 100 --idle-wait 20 --settle 10 --steady 120
# Environment: KNODE_SKIP_BUILD=1 reuses the last release builds;
#              KNODE_CLUSTER_BENCH_OUT (default /tmp/knode-cluster-bench) keeps logs and results.
set -euo pipefail

# shellcheck source=hack/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$KNODE_REPO_ROOT"

ROUNDS=2
ARGS=()
while (($#)); do
    case "$1" in
        --rounds) ROUNDS=${2:?--rounds needs a value}; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) ARGS+=("$1"); shift ;;
    esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "==> ERROR: --rounds must be a positive integer, not '$ROUNDS'" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "==> ERROR: must run as root (containerd socket, kubelets)" >&2; exit 1; }
OUT=${KNODE_CLUSTER_BENCH_OUT:-/tmp/knode-cluster-bench}
LOCK=/tmp/knode-e2e.lock

export CARGO_TARGET_DIR KNODE_CONTAINERD_SOCK KNODE_CONTAINERD_PIDFILE KNODE_BUSYBOX_IMAGE KNODE_REPO_ROOT
export PROTOC="${PROTOC:-/usr/bin/protoc}"
if [[ -z ${KNODE_SKIP_BUILD:-} ]]; then
    # Two invocations, so cargo does not unify features into the measured kubelet.
    echo "==> cargo build --release -p kubelet-cmd; cargo build --release -p knode-bench --bin cluster-bench"
    cargo build --release -p kubelet-cmd --bin kubelet
    cargo build --release -p knode-bench --bin cluster-bench
fi
BENCH=$CARGO_TARGET_DIR/release/cluster-bench
for bin in kubelet cluster-bench; do
    [[ -x $CARGO_TARGET_DIR/release/$bin ]] || { echo "==> ERROR: $CARGO_TARGET_DIR/release/$bin was not built" >&2; exit 1; }
done

echo "==> preparing the node environment and the control plane (under $LOCK)"
flock -o "$LOCK" bash -c 'hack/node-env.sh >/dev/null && hack/control-plane.sh up >/dev/null'
bash hack/build-upstream.sh

rm -rf "$OUT"
mkdir -p "$OUT"
echo "==> machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "==> containerd $(ctr -a "$KNODE_CONTAINERD_SOCK" version 2>/dev/null | awk '/Version:/ {v = $2} END {print v}') (server)"
for ((round = 1; round <= ROUNDS; round++)); do
    for kubelet in ours upstream; do
        echo "==> round $round: $kubelet kubelet (waiting for $LOCK)"
        flock -o "$LOCK" "$BENCH" run --kubelet "$kubelet" --round "$round" --out "$OUT" "${ARGS[@]}" >"$OUT/$kubelet-round$round.txt"
        cat "$OUT/$kubelet-round$round.txt"
    done
done
echo "==> all rounds (logs and per-run JSON in $OUT)"
"$BENCH" report --out "$OUT"

#!/usr/bin/env bash
# Benchmark: time from the node crossing a memory eviction threshold to the first eviction,
# our kubelet against upstream kubelet 1.37, side by side on this machine (the shared control
# plane and containerd, node knode-node). Each round sets evictionHard memory.available 1 GiB
# below what the machine has available, runs one pod, then fills a file in /dev/shm until the
# threshold is crossed (nothing is exhausted; the file is removed after the round) and times
# the API showing the pod Evicted. See docs/benchmarks.md. A benchmark, not a test: run it on a
# quiet machine (other memory use moves the figures); 3 rounds of each take about 8 minutes.
#
# Usage: hack/bench-eviction.sh [--rounds N]
# Environment: KNODE_SKIP_BUILD=1 reuses the last release builds;
#              KNODE_EVICTION_BENCH_OUT (default /tmp/knode-eviction-bench) keeps logs and results.
set -euo pipefail

# shellcheck source=hack/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$KNODE_REPO_ROOT"

ROUNDS=3
while (($#)); do
    case "$1" in
        --rounds) ROUNDS=${2:?--rounds needs a value}; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "==> ERROR: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "==> ERROR: --rounds must be a positive integer, not '$ROUNDS'" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "==> ERROR: must run as root (containerd socket, kubelets)" >&2; exit 1; }
OUT=${KNODE_EVICTION_BENCH_OUT:-/tmp/knode-eviction-bench}
LOCK=/tmp/knode-e2e.lock

export CARGO_TARGET_DIR KNODE_CONTAINERD_SOCK KNODE_CONTAINERD_PIDFILE KNODE_BUSYBOX_IMAGE KNODE_REPO_ROOT
export PROTOC="${PROTOC:-/usr/bin/protoc}"
if [[ -z ${KNODE_SKIP_BUILD:-} ]]; then
    echo "==> cargo build --release -p kubelet-cmd; cargo build --release -p knode-bench --bin cluster-bench"
    cargo build --release -p kubelet-cmd --bin kubelet
    cargo build --release -p knode-bench --bin cluster-bench
fi
BENCH=$CARGO_TARGET_DIR/release/cluster-bench
echo "==> preparing the node environment and the control plane (under $LOCK)"
flock -o "$LOCK" bash -c 'hack/node-env.sh >/dev/null && hack/control-plane.sh up >/dev/null'
bash hack/build-upstream.sh

rm -rf "$OUT"
mkdir -p "$OUT"
echo "==> machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for ((round = 1; round <= ROUNDS; round++)); do
    for kubelet in ours upstream; do
        echo "==> round $round: $kubelet kubelet (waiting for $LOCK)"
        flock -o "$LOCK" "$BENCH" eviction --kubelet "$kubelet" --round "$round" --out "$OUT"
    done
done
echo "==> all rounds (logs and per-run JSON in $OUT)"
"$BENCH" eviction-report --out "$OUT"

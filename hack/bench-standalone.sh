#!/usr/bin/env bash
# Benchmark: the standalone kubelet against bare CRI calls on our containerd.
# Measures the time from N static-pod manifests written until all their containers
# run (against the same sandboxes and containers created directly over CRI), and the
# kubelet's RSS idle and with N pods. See docs/benchmarks.md. A benchmark, not a
# test: run it on a quiet machine; it takes about 3 minutes with the defaults.
#
# Usage: hack/bench-standalone.sh [standalone-bench flags...]
#   e.g. hack/bench-standalone.sh --runs 5 --pods 50
# Environment: KNODE_SKIP_BUILD=1 reuses the last release build.
set -euo pipefail

# shellcheck source=hack/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$KNODE_REPO_ROOT"

echo "==> preparing the node environment (hack/node-env.sh)"
hack/node-env.sh >/dev/null

export CARGO_TARGET_DIR KNODE_CONTAINERD_SOCK KNODE_CONTAINERD_PIDFILE KNODE_BUSYBOX_IMAGE
export PROTOC="${PROTOC:-/usr/bin/protoc}"
if [[ -z ${KNODE_SKIP_BUILD:-} ]]; then
    # Two invocations: built together, cargo would unify features (tokio's "process") and
    # the kubelet measured would not be the one `cargo build --release -p kubelet-cmd` makes.
    echo "==> cargo build --release -p kubelet-cmd; cargo build --release -p knode-bench"
    cargo build --release -p kubelet-cmd --bin kubelet
    cargo build --release -p knode-bench --bin standalone-bench
fi
for bin in kubelet standalone-bench; do
    [[ -x $CARGO_TARGET_DIR/release/$bin ]] || { echo "==> ERROR: $CARGO_TARGET_DIR/release/$bin was not built" >&2; exit 1; }
done

echo "==> machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "==> $(ctr -a "$KNODE_CONTAINERD_SOCK" version 2>/dev/null | awk '/Version:/ {print "containerd " $2; exit}')"
exec "$CARGO_TARGET_DIR/release/standalone-bench" --kubelet "$CARGO_TARGET_DIR/release/kubelet" "$@"

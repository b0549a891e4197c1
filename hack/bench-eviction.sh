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
#
set -euo pipefail

# shellcheck source=hack/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
# shellcheck source=hack/lib/cluster-bench.sh
source "$KNODE_REPO_ROOT/hack/lib/cluster-bench.sh"
cd "$KNODE_REPO_ROOT"
cluster_bench_rounds eviction 3 "${KNODE_EVICTION_BENCH_OUT:-/tmp/knode-eviction-bench}" "$@"

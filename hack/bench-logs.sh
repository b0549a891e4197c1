#!/usr/bin/env bash
# Benchmark: `kubectl logs --tail=100` (the API's pods/log with tailLines=100) of a container
# whose log file holds more than 1 GiB, our kubelet against upstream kubelet 1.37, side by
# side on this machine (the shared control plane and containerd, node knode-node): the time of
# each read and the kubelet's resident memory. See docs/benchmarks.md. A benchmark, not a
# test; each round writes a 1.5 GiB log (removed with its pod); 1 round of each takes about
# 4 minutes.
#
# Usage: hack/bench-logs.sh [--rounds N]
# Environment: KNODE_SKIP_BUILD=1 reuses the last release builds;
#              KNODE_LOGS_BENCH_OUT (default /tmp/knode-logs-bench) keeps logs and results.
#
set -euo pipefail

# shellcheck source=hack/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
# shellcheck source=hack/lib/cluster-bench.sh
source "$KNODE_REPO_ROOT/hack/lib/cluster-bench.sh"
cd "$KNODE_REPO_ROOT"
cluster_bench_rounds logs 1 "${KNODE_LOGS_BENCH_OUT:-/tmp/knode-logs-bench}" "$@"

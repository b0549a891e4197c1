# Shared by the side-by-side cluster benchmarks (hack/bench-eviction.sh, hack/bench-logs.sh;
# hack/bench-pulls.sh uses cluster_bench_prepare with its own rounds; hack/bench-join.sh uses
# bench_parse_rounds only):
# `cluster_bench_rounds COMMAND ROUNDS_DEFAULT OUT_DEFAULT "$@"` parses --rounds, builds the
# release kubelet and cluster-bench (unless KNODE_SKIP_BUILD), brings up the node environment,
# the control plane and upstream's build, then runs `cluster-bench COMMAND` for ours and
# upstream in turn each round (under the e2e lock) and prints `cluster-bench COMMAND-report`.
# The caller sources hack/lib/env.sh first; its header comment (from line 2, the
# comment block before `set -euo pipefail`) is its --help.

# `bench_parse_rounds SCRIPT DEFAULT "$@"`: a benchmark's arguments, `--rounds N` (set in
# BENCH_ROUNDS, checked) or `-h`/`--help` (SCRIPT's header comment); anything else exits 2.
bench_parse_rounds() {
    local script=$1
    BENCH_ROUNDS=$2
    shift 2
    while (($#)); do
        case "$1" in
            --rounds) BENCH_ROUNDS=${2:?--rounds needs a value}; shift 2 ;;
            -h|--help) sed -n '2,/^set -euo/p' "$script" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
            *) echo "==> ERROR: unknown argument '$1'" >&2; exit 2 ;;
        esac
    done
    [[ $BENCH_ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "==> ERROR: --rounds must be a positive integer, not '$BENCH_ROUNDS'" >&2; exit 2; }
}

# `cluster_bench_prepare OUT`: builds the release kubelet and cluster-bench (unless
# KNODE_SKIP_BUILD), brings up the node environment, the control plane and upstream's build,
# and empties OUT; sets `bench` to the cluster-bench binary.
cluster_bench_prepare() {
    local out=$1 lock=/tmp/knode-e2e.lock
    [[ $(id -u) -eq 0 ]] || { echo "==> ERROR: must run as root (containerd socket, kubelets)" >&2; exit 1; }
    export CARGO_TARGET_DIR KNODE_CONTAINERD_SOCK KNODE_CONTAINERD_PIDFILE KNODE_BUSYBOX_IMAGE KNODE_REPO_ROOT
    export PROTOC="${PROTOC:-/usr/bin/protoc}"
    if [[ -z ${KNODE_SKIP_BUILD:-} ]]; then
        echo "==> cargo build --release -p kubelet-cmd; cargo build --release -p knode-bench --bin cluster-bench"
        cargo build --release -p kubelet-cmd --bin kubelet
        cargo build --release -p knode-bench --bin cluster-bench
    fi
    bench=$CARGO_TARGET_DIR/release/cluster-bench
    echo "==> preparing the node environment and the control plane (under $lock)"
    flock -o "$lock" bash -c 'hack/node-env.sh >/dev/null && hack/control-plane.sh up >/dev/null'
    bash hack/build-upstream.sh
    rm -rf "$out"
    mkdir -p "$out"
    echo "==> machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

cluster_bench_rounds() {
    local command=$1 rounds out=$3 script=${BASH_SOURCE[1]}
    bench_parse_rounds "$script" "$2" "${@:4}"
    rounds=$BENCH_ROUNDS
    local lock=/tmp/knode-e2e.lock bench round kubelet
    cluster_bench_prepare "$out"
    for ((round = 1; round <= rounds; round++)); do
        for kubelet in ours upstream; do
            echo "==> round $round: $kubelet kubelet (waiting for $lock)"
            flock -o "$lock" "$bench" "$command" --kubelet "$kubelet" --round "$round" --out "$out"
        done
    done
    echo "==> all rounds (logs and per-run JSON in $out)"
    "$bench" "$command-report" --out "$out"
}

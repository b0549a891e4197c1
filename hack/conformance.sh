#!/usr/bin/env bash
# Run upstream's conformance specs against ONE node run by either kubelet:
# knode's (ours) or upstream's of the pinned release, on our containerd and the
# harness control plane (hack/control-plane.sh), with the test images served
# from the loopback registry (hack/build-test-images.sh). See docs/conformance.md.
#
# Usage:
#   hack/conformance.sh --kubelet ours|upstream --suite node|cluster [options]
#     --focus RE      ginkgo focus (default: the suite's, see below)
#     --skip RE       ginkgo skip  (default: \[Serial\]|\[Slow\]|\[Flaky\]|\[Disruptive\]|\[Feature:)
#     --procs N       parallel ginkgo processes (default 2: this machine has 2 cores)
#     --timeout DUR   ginkgo's bound on the whole run (default 150m)
#     --keep          leave the kubelet (and kube-proxy) running afterwards
#     --configz-shim  (ours only) serve the /configz knode lacks from its config file
#                     (hack/lib/conformance-configz-shim.sh); without it the node
#                     suite stops in its BeforeSuite
#
# node:    e2e_node.test, focus \[NodeConformance\], against the running node (no
#          services started by the test), bearer token of a cluster-admin service account
# cluster: e2e.test, focus \[NodeConformance\] plus sig-network's Services
#          [Conformance] specs; also runs a kube-proxy (knode's with --kubelet
#          ours, upstream's with upstream)
#
# Results: $KNODE_LOG_DIR/conformance/<suite>-<kubelet>-<time>/ (results.txt: one
# line per spec, then "N passed, N failed, N skipped"; failures.txt; ginkgo's
# report.json and output; the kubelet's log), and the latest results.txt as
# $KNODE_LOG_DIR/conformance/<suite>-<kubelet>.results. Exits 0 when the run
# completed (whatever failed), non-zero when it could not run.
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
# shellcheck source=hack/lib/conformance-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/conformance-common.sh"
# shellcheck source=hack/lib/go.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/go.sh"
# shellcheck source=hack/lib/conformance-configz-shim.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/conformance-configz-shim.sh"
# shellcheck source=hack/lib/conformance-kubelet.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/conformance-kubelet.sh"
# shellcheck source=hack/lib/conformance-proxy.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/conformance-proxy.sh"
# shellcheck source=hack/lib/conformance-report.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/conformance-report.sh"

usage() { sed -n '8,19p' "$0" | sed 's/^# \{0,1\}//'; }

KUBELET=""
SUITE=""
FOCUS=""
SKIP='\[Serial\]|\[Slow\]|\[Flaky\]|\[Disruptive\]|\[Feature:'
PROCS=2
TIMEOUT=150m
KEEP=false
while (($#)); do
    case "$1" in
        --kubelet) KUBELET=${2:-}; shift 2 ;;
        --suite) SUITE=${2:-}; shift 2 ;;
        --focus) FOCUS=${2:-}; shift 2 ;;
        --skip) SKIP=${2:-}; shift 2 ;;
        --procs) PROCS=${2:-}; shift 2 ;;
        --timeout) TIMEOUT=${2:-}; shift 2 ;;
        --keep) KEEP=true; shift ;;
        --configz-shim) CONFORMANCE_CONFIGZ_SHIM=true; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
case "$KUBELET" in ours|upstream) ;; *) usage >&2; die "--kubelet must be ours or upstream" ;; esac
case "$SUITE" in
    node) FOCUS=${FOCUS:-'\[NodeConformance\]'} ;;
    cluster) FOCUS=${FOCUS:-'\[NodeConformance\]|\[sig-network\] Services .*\[Conformance\]'} ;;
    *) usage >&2; die "--suite must be node or cluster" ;;
esac
if $CONFORMANCE_CONFIGZ_SHIM && [[ $KUBELET != ours ]]; then die "--configz-shim goes with --kubelet ours only"; fi
[[ $PROCS =~ ^[1-9][0-9]*$ ]] || die "--procs must be a positive number"
[[ $(id -u) -eq 0 ]] || die "must run as root"

# ---------------------------------------------------------------------------
# What the run needs: binaries, images, containerd, the control plane.
# ---------------------------------------------------------------------------
bash "$KNODE_REPO_ROOT/hack/build-upstream.sh" --e2e
bash "$KNODE_REPO_ROOT/hack/build-test-images.sh"
if ! timeout 5 ctr -a "$KNODE_CONTAINERD_SOCK" version >/dev/null 2>&1; then
    bash "$KNODE_REPO_ROOT/hack/node-env.sh"
fi
bash "$KNODE_REPO_ROOT/hack/control-plane.sh" up
CP_KUBECTL=$(cp_kubectl_bin) || die "no kubectl"

# The node name and containerd are shared with the end-to-end tests and
# hack/bench-cluster.sh: hold their lock for the whole run.
LOCK=/tmp/knode-e2e.lock
exec 9>"$LOCK"
if ! flock -n 9; then
    say "waiting (up to 15 min) for $LOCK (another test or benchmark uses node $KNODE_CP_NODE_NAME)"
    flock -w 900 9 || die "$LOCK still held after 15 min"
fi
# Ad-hoc test runs do not take the lock: wait (bounded) until no other kubelet runs.
for ((i = 0; i < 120; i++)); do
    reason=$(conformance_node_busy 2>&1) || break
    ((i == 0)) && say "node $KNODE_CP_NODE_NAME is in use ($reason); waiting up to 20 min"
    sleep 10
done
if reason=$(conformance_node_busy 2>&1); then
    die "node $KNODE_CP_NODE_NAME is still in use: $reason"
fi
conformance_clean_api

# A cluster-admin service account: e2e_node.test talks to the API server with
# a bearer token only (no kubeconfig), and asks it for the kubelet's /configz.
conformance_token() {
    kc -n kube-system create serviceaccount knode-conformance --dry-run=client -o yaml | kc apply -f - >/dev/null
    kc create clusterrolebinding knode-conformance --clusterrole=cluster-admin \
        --serviceaccount=kube-system:knode-conformance --dry-run=client -o yaml | kc apply -f - >/dev/null
    kc -n kube-system create token knode-conformance --duration=24h
}
TOKEN=$(conformance_token) || die "cannot create the conformance service account token"

LABEL=$KUBELET
if $CONFORMANCE_CONFIGZ_SHIM; then LABEL=$KUBELET-configz-shim; fi
RUN_ID="$SUITE-$LABEL-$(date +%Y%m%d-%H%M%S)"
OUT="$KNODE_CONFORMANCE_LOG_DIR/$RUN_ID"
mkdir -p "$OUT" "$KNODE_CONFORMANCE_DIR"

cleanup() {
    local rc=$?
    if $KEEP; then
        say "--keep: leaving the $KUBELET kubelet running"
    else
        if [[ $SUITE == cluster ]]; then conformance_proxy_down "$KUBELET" || true; fi
        conformance_kubelet_down "$KUBELET" || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

LOG_START=$(wc -c <"$(conformance_kubelet_log)" 2>/dev/null || echo 0)

conformance_kubelet_up "$KUBELET"
if [[ $SUITE == cluster ]]; then conformance_proxy_up "$KUBELET"; fi

# ---------------------------------------------------------------------------
# The run.
# ---------------------------------------------------------------------------
BIN=$KNODE_K8S_BIN_DIR
COMMON_ARGS=(
    --report-dir="$OUT"
    --kubectl-path="$BIN/kubectl"
    --container-runtime-endpoint="unix://$KNODE_CONTAINERD_SOCK"
    --container-runtime-pid-file="$KNODE_CONTAINERD_PIDFILE"
    --dns-domain="$KNODE_CP_CLUSTER_DOMAIN"
    --v=2
)
case "$SUITE" in
    node)
        TEST_BIN=$BIN/e2e_node.test
        TEST_ARGS=(
            --start-services=false --stop-services=false
            --node-name="$KNODE_CP_NODE_NAME"
            --host="$KNODE_CP_APISERVER_URL"
            --bearer-token="$TOKEN"
            --prepull-images=false
            "${COMMON_ARGS[@]}"
        )
        ;;
    cluster)
        TEST_BIN=$BIN/e2e.test
        TEST_ARGS=(
            --kubeconfig="$KNODE_CP_ADMIN_KUBECONFIG"
            --provider=skeleton
            --node-os-distro=debian
            --allowed-not-ready-nodes=0
            --kubelet-root-dir="$CONFORMANCE_KUBELET_ROOT"
            --e2e-output-dir="$OUT"
            "${COMMON_ARGS[@]}"
        )
        ;;
esac

say "running $(basename "$TEST_BIN") against the $KUBELET kubelet: focus '$FOCUS', skip '$SKIP'," \
    "$PROCS process(es), timeout $TIMEOUT (output: $OUT)"
start=$(date +%s)
# ginkgo in the background, so that an interrupt reaches it (it then stops the
# running specs, cleans up and still writes its report).
(cd "$OUT" && exec "$BIN/ginkgo" run --procs="$PROCS" --timeout="$TIMEOUT" \
    --focus="$FOCUS" --skip="$SKIP" \
    --json-report=report.json --output-dir="$OUT" \
    --no-color --silence-skips --poll-progress-after=10m \
    "$TEST_BIN" -- "${TEST_ARGS[@]}") >"$OUT/ginkgo.log" 2>&1 &
GINKGO_PID=$!
trap 'say "interrupted: stopping ginkgo"; kill -INT "$GINKGO_PID" 2>/dev/null' INT TERM
ginkgo_rc=0
while kill -0 "$GINKGO_PID" 2>/dev/null; do
    wait "$GINKGO_PID" && ginkgo_rc=0 || ginkgo_rc=$?
done
trap 'exit 130' INT TERM
say "ginkgo exited $ginkgo_rc after $(($(date +%s) - start)) s"
tail -c +"$((LOG_START + 1))" "$(conformance_kubelet_log)" >"$OUT/kubelet.log" 2>/dev/null || true

if [[ ! -s $OUT/report.json ]] || [[ $(jq '[.[] | .SpecReports[]?] | length' "$OUT/report.json") == 0 ]]; then
    grep -v '^        --' "$OUT/ginkgo.log" | tail -n 40 >&2
    die "ginkgo ran no spec (see $OUT/ginkgo.log)"
fi
conformance_results "$OUT/report.json" "$FOCUS" "$SKIP" "$OUT/results.txt" "$OUT/failures.txt"
cp "$OUT/results.txt" "$KNODE_CONFORMANCE_LOG_DIR/$SUITE-$LABEL.results"
say "results: $OUT/results.txt (failures: $OUT/failures.txt)"
tail -n 1 "$OUT/results.txt"

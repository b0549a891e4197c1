#!/usr/bin/env bash
# The one command that runs knode's whole test suite, end-to-end tests included.
#
# Plain `cargo test` runs only the tests that need nothing from the machine; the
# end-to-end tests are `#[ignore = "..."]` because they need root and a running
# containerd. This script prepares both (hack/node-env.sh) and runs everything.
#
# Usage: hack/test.sh [extra args for cargo nextest run / cargo test]
#   e.g. hack/test.sh -p kubelet-cri
#        KNODE_SKIP_NODE_ENV=1 hack/test.sh     (containerd already prepared)
set -euo pipefail

# shellcheck source=hack/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$KNODE_REPO_ROOT"

if [[ -z ${KNODE_SKIP_NODE_ENV:-} ]]; then
    echo "==> preparing the node environment (hack/node-env.sh)"
    hack/node-env.sh
fi

export KNODE_CONTAINERD_SOCK KNODE_BUSYBOX_IMAGE KNODE_PAUSE_IMAGE KNODE_CNI_CONF_DIR KNODE_CNI_BIN_DIR
export CARGO_TARGET_DIR
export PROTOC="${PROTOC:-/usr/bin/protoc}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-$([[ -t 1 ]] && echo auto || echo never)}"

echo "==> KNODE_CONTAINERD_SOCK=$KNODE_CONTAINERD_SOCK CARGO_TARGET_DIR=$CARGO_TARGET_DIR"

# One user of node knode-node and of our containerd at a time: the tests, hack/bench-cluster.sh
# and hack/conformance.sh all hold this lock while they run.
exec 9>/tmp/knode-e2e.lock
if ! flock -n 9; then
    echo "==> waiting (up to 60 min) for /tmp/knode-e2e.lock (a benchmark or conformance run uses the node)"
    flock -w 3600 9 || { echo "==> ERROR: /tmp/knode-e2e.lock still held after 60 min" >&2; exit 1; }
fi

# The cluster-mode tests need the control plane (hack/control-plane.sh up, idempotent; the first run
# builds upstream 1.37 from its Go module, about 25 minutes cold); stop it afterwards unless it was already running.
cp_was_running=
if hack/control-plane.sh status >/dev/null 2>&1; then cp_was_running=1; fi
# Bring it up before the tests, so tests in parallel groups find it ready; they must not skip.
echo "==> starting the control plane (hack/control-plane.sh up)"
hack/control-plane.sh up
export KNODE_CONTROL_PLANE=required
# Upstream's kubectl of the harness release, for the tests (hack/build-upstream.sh built it).
KNODE_KUBECTL="${KNODE_KUBECTL:-$(hack/build-upstream.sh --print-bin-dir)/kubectl}"
export KNODE_KUBECTL
# metrics-server, the real consumer of the stats endpoints in cluster_stats (built from its Go
# module once, about 3 minutes cold; cached outside the clone).
echo "==> building metrics-server (hack/build-metrics-server.sh, cached)"
hack/build-metrics-server.sh

# cargo-nextest runs each test in its own process and, with the test groups in
# .config/nextest.toml, the end-to-end tests one at a time. A machine without it gets it
# from crates.io, installed once under $KNODE_CACHE/cargo-tools (outside the clone).
NEXTEST_ROOT="$KNODE_CACHE/cargo-tools"
export PATH="$NEXTEST_ROOT/bin:$PATH"
if ! cargo nextest --version >/dev/null 2>&1; then
    echo "==> installing cargo-nextest from crates.io into $NEXTEST_ROOT (once; a few minutes)"
    if ! cargo install --locked --root "$NEXTEST_ROOT" cargo-nextest; then
        echo "==> ERROR: could not install cargo-nextest; the end-to-end tests must not run in parallel," >&2
        echo "==> so the plain \`cargo test\` fallback is not used." >&2
        exit 1
    fi
fi

rc=0
echo "==> cargo nextest run --workspace --run-ignored all $*"
nextest_log=$(mktemp /tmp/knode-nextest.XXXXXX)
cargo nextest run --workspace --run-ignored all --no-fail-fast --no-tests=warn "$@" 2>&1 | tee "$nextest_log" || rc=$?
# "Summary [...] N tests run: N passed, N failed, N skipped" (failed/skipped only when non-zero).
summary=$(grep -E '^ *Summary \[' "$nextest_log" | tail -n1 || true)
passed=$(sed -nE 's/.* ([0-9]+) passed.*/\1/p' <<<"$summary"); passed=${passed:-0}
failed=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$summary"); failed=${failed:-0}
skipped=$(sed -nE 's/.* ([0-9]+) skipped.*/\1/p' <<<"$summary"); skipped=${skipped:-0}
rm -f "$nextest_log"
exec 9>&-   # the node is free again; fuzzing needs neither it nor containerd
if [[ -z $summary && $rc -ne 0 ]]; then failed=$((failed + 1)); fi

# Static checks, one count each: the workspace's format (rustfmt.toml; fuzz/ too) and clippy with
# every warning an error. KNODE_LINT=0 skips them (e.g. with extra args for one crate).
if [[ ${KNODE_LINT:-1} != 0 ]]; then
    echo "==> cargo fmt --all --check (and fuzz/)"
    if cargo fmt --all --check && cargo fmt --manifest-path fuzz/Cargo.toml --all --check; then
        passed=$((passed + 1))
    else
        echo "==> FAILED: rustfmt (run \`cargo fmt --all\` and \`cargo fmt --manifest-path fuzz/Cargo.toml --all\`)" >&2
        failed=$((failed + 1)); rc=1
    fi
    echo "==> cargo clippy --workspace --all-targets -- -D warnings"
    if cargo clippy --workspace --all-targets -- -D warnings; then
        passed=$((passed + 1))
    else
        echo "==> FAILED: clippy" >&2
        failed=$((failed + 1)); rc=1
    fi
fi

# Every fuzz target briefly (KNODE_FUZZ_SECONDS each, default 15; 0 skips): a crash fails
# the run. cargo-fuzz comes from crates.io, cached like nextest.
fuzz_seconds=${KNODE_FUZZ_SECONDS:-15}
if [[ $fuzz_seconds != 0 ]]; then
    if ! command -v cargo-fuzz >/dev/null 2>&1; then
        echo "==> installing cargo-fuzz from crates.io into $NEXTEST_ROOT (once)"
        cargo install --locked --root "$NEXTEST_ROOT" cargo-fuzz || rc=1
    fi
    echo "==> hack/fuzz.sh $fuzz_seconds (every fuzz target for ${fuzz_seconds} s)"
    fuzz_log=$(mktemp /tmp/knode-fuzz.XXXXXX)
    hack/fuzz.sh "$fuzz_seconds" 2>&1 | tee "$fuzz_log" || true
    fuzz_line=$(grep -E '^fuzz targets: [0-9]+ passed, [0-9]+ failed' "$fuzz_log" | tail -n1 || true)
    rm -f "$fuzz_log"
    if [[ $fuzz_line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
        passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2]))
        if ((BASH_REMATCH[2] > 0)); then rc=1; fi
    else
        echo "==> ERROR: hack/fuzz.sh did not finish" >&2
        failed=$((failed + 1)); rc=1
    fi
fi

if [[ -z $cp_was_running ]] && hack/control-plane.sh status >/dev/null 2>&1; then
    echo "==> stopping the control plane the tests started (hack/control-plane.sh down)"
    hack/control-plane.sh down >/dev/null || echo "==> WARNING: hack/control-plane.sh down failed" >&2
fi
# One closing line for everything: the nextest tests, the two static checks and the fuzz targets.
echo "total: $passed passed, $failed failed, $skipped skipped"
exit "$rc"

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

# The cluster-mode tests need the control plane (hack/control-plane.sh up, idempotent; the first run
# builds upstream 1.20.2, about 20 minutes); stop it afterwards unless it was already running.
cp_was_running=
if hack/control-plane.sh status >/dev/null 2>&1; then cp_was_running=1; fi
# Bring it up before the tests, so tests in parallel groups find it ready; they must not skip.
echo "==> starting the control plane (hack/control-plane.sh up)"
hack/control-plane.sh up
export KNODE_CONTROL_PLANE=required

rc=0
if cargo nextest --version >/dev/null 2>&1; then
    echo "==> cargo nextest run --workspace --run-ignored all $*"
    cargo nextest run --workspace --run-ignored all --no-fail-fast --no-tests=warn "$@" || rc=$?
else
    echo "==> cargo-nextest not found; falling back to: cargo test --workspace $* -- --include-ignored"
    cargo test --workspace --no-fail-fast "$@" -- --include-ignored || rc=$?
fi

if [[ -z $cp_was_running ]] && hack/control-plane.sh status >/dev/null 2>&1; then
    echo "==> stopping the control plane the tests started (hack/control-plane.sh down)"
    hack/control-plane.sh down >/dev/null || echo "==> WARNING: hack/control-plane.sh down failed" >&2
fi
exit "$rc"

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
if cargo nextest --version >/dev/null 2>&1; then
    echo "==> cargo nextest run --workspace --run-ignored all $*"
    exec cargo nextest run --workspace --run-ignored all --no-fail-fast --no-tests=warn "$@"
else
    echo "==> cargo-nextest not found; falling back to: cargo test --workspace $* -- --include-ignored"
    exec cargo test --workspace --no-fail-fast "$@" -- --include-ignored
fi

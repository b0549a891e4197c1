#!/usr/bin/env bash
# Build containerd 2 (containerd, containerd-shim-runc-v2, ctr) from its Go
# module through the Go module proxy: upstream's kubelet 1.36+ needs containerd
# 2 and Debian bookworm ships 1.6. The default runc and the CNI plugins stay
# Debian's; a current runc (KNODE_RUNC_VERSION, with seccomp: needs
# libseccomp-dev) is built too, for the user-namespace runtime handler only.
#
# Usage:
#   hack/build-containerd.sh                 build if missing (idempotent)
#   hack/build-containerd.sh --force         rebuild
#   hack/build-containerd.sh --print-bin-dir print the binary directory and exit
#
# Binaries go to $KNODE_CACHE/containerd-<version>/bin (version pinned by
# KNODE_CONTAINERD_VERSION in hack/lib/env.sh); log in $KNODE_CACHE/containerd-build.log.
set -euo pipefail

# shellcheck source=hack/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
# shellcheck source=hack/lib/control-plane-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/control-plane-common.sh"
# shellcheck source=hack/lib/go.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/go.sh"

VERSION="$KNODE_CONTAINERD_VERSION"
BIN_DIR="$KNODE_CONTAINERD_BUILD_DIR/bin"
LOG="$KNODE_CACHE/containerd-build.log"
CMDS=(containerd containerd-shim-runc-v2 ctr)
FORCE=false
usage() { sed -n '6,9p' "$0" | sed 's/^# \{0,1\}//'; }
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=true ;;
        --print-bin-dir) echo "$BIN_DIR"; exit 0 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $arg" ;;
    esac
done

STAMP="$BIN_DIR/.stamp"
complete() {
    local c
    [[ -f $STAMP && "$(<"$STAMP")" == "containerd v$VERSION" ]] || return 1
    for c in "${CMDS[@]}"; do [[ -x $BIN_DIR/$c ]] || return 1; done
}
RUNC_STAMP="$(dirname "$KNODE_RUNC_BIN")/.stamp"
runc_complete() { [[ -x $KNODE_RUNC_BIN && -f $RUNC_STAMP && "$(<"$RUNC_STAMP")" == "runc v$KNODE_RUNC_VERSION" ]]; }
build_runc() {
    $FORCE || ! runc_complete || return 0
    go_env_setup
    mkdir -p "$(dirname "$KNODE_RUNC_BIN")"
    say "building runc v$KNODE_RUNC_VERSION (log: $LOG)"
    if ! GOBIN="$(dirname "$KNODE_RUNC_BIN")" CGO_ENABLED=1 go install -trimpath -tags seccomp \
        "github.com/opencontainers/runc@v$KNODE_RUNC_VERSION" >>"$LOG" 2>&1; then
        tail -n 30 "$LOG" >&2
        die "building runc failed; log in $LOG"
    fi
    echo "runc v$KNODE_RUNC_VERSION" >"$RUNC_STAMP"
}

if ! $FORCE && complete; then
    say "containerd v$VERSION already built: $BIN_DIR"
    build_runc
    exit 0
fi

go_env_setup
mkdir -p "$BIN_DIR"
: >"$LOG"
start=$SECONDS
pkg=github.com/containerd/containerd/v2
ldflags="-s -w -X $pkg/version.Version=v$VERSION -X $pkg/version.Revision=knode-module-build -X $pkg/version.Package=github.com/containerd/containerd/v2"
for c in "${CMDS[@]}"; do
    say "building $c v$VERSION (log: $LOG)"
    # GOBIN install of a module at a version: go.mod has no replaces, so this works as is.
    # Static (no cgo): the btrfs snapshotter, which needs cgo, is left out.
    if ! GOBIN="$BIN_DIR" CGO_ENABLED=0 go install -trimpath -tags "no_btrfs" -ldflags "$ldflags" "$pkg/cmd/$c@v$VERSION" >>"$LOG" 2>&1; then
        tail -n 30 "$LOG" >&2
        die "building $c failed; log in $LOG"
    fi
done
echo "containerd v$VERSION" >"$STAMP"
build_runc
say "done in $((SECONDS - start)) s: $("$BIN_DIR/containerd" --version)"

#!/usr/bin/env bash
# Build metrics-server (sigs.k8s.io/metrics-server) from its Go module through
# the Go module proxy, with the machine's Go, for hack/metrics-server.sh
# (`kubectl top` against a kubelet). Its go.mod has no replaces, so a plain
# `go install <cmd>@<version>` builds it; the version is stamped into
# k8s.io/client-go/pkg/version as upstream's Makefile does.
#
# Usage:
#   hack/build-metrics-server.sh             build if missing (idempotent)
#   hack/build-metrics-server.sh --force     rebuild
#   hack/build-metrics-server.sh --print-bin print the binary's path and exit
#
# Binary: $KNODE_CACHE/metrics-server-<version>/bin/metrics-server (version pinned
# by KNODE_METRICS_SERVER_VERSION in hack/lib/control-plane-common.sh); log in
# $KNODE_CACHE/metrics-server-<version>/build.log. Go caches: hack/lib/go.sh.
set -euo pipefail

# shellcheck source=hack/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
# shellcheck source=hack/lib/control-plane-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/control-plane-common.sh"
# shellcheck source=hack/lib/go.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/go.sh"

VERSION="$KNODE_METRICS_SERVER_VERSION"
BIN="$KNODE_METRICS_SERVER_BIN"
BIN_DIR=$(dirname "$BIN")
LOG="$KNODE_METRICS_SERVER_DIR/build.log"
# Bump when the recipe below changes: the binary is rebuilt.
BUILD_RECIPE_VERSION=1
FORCE=false
usage() { sed -n '8,11p' "$0" | sed 's/^# \{0,1\}//'; }
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=true ;;
        --print-bin) echo "$BIN"; exit 0 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $arg" ;;
    esac
done

STAMP="$BIN_DIR/.metrics-server.stamp"
stamp_of() { printf 'metrics-server v%s recipe %s\n' "$VERSION" "$BUILD_RECIPE_VERSION"; }
if ! $FORCE && [[ -x $BIN && -f $STAMP && "$(<"$STAMP")" == "$(stamp_of)" ]]; then
    say "metrics-server v$VERSION already built: $BIN"
    exit 0
fi

go_env_setup
mkdir -p "$BIN_DIR"
: >"$LOG"
start=$SECONDS
mod=sigs.k8s.io/metrics-server
# The release's commit, for the version stamp (the proxy records it).
commit=$( (cd "$KNODE_METRICS_SERVER_DIR" && go mod download -json "$mod@v$VERSION") 2>>"$LOG" |
    jq -r '.Origin.Hash // empty' 2>/dev/null) || commit=""
pkg=k8s.io/client-go/pkg/version
ldflags="-s -w -X $pkg.gitVersion=v$VERSION -X $pkg.gitTreeState=clean"
ldflags+=" -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
if [[ -n $commit ]]; then ldflags+=" -X $pkg.gitCommit=$commit"; fi
say "building metrics-server v$VERSION (log: $LOG)"
# Static (no cgo), like upstream's release images.
if ! GOBIN="$BIN_DIR" CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" \
    "$mod/cmd/metrics-server@v$VERSION" >>"$LOG" 2>&1; then
    tail -n 30 "$LOG" >&2
    die "building metrics-server failed; log in $LOG"
fi
stamp_of >"$STAMP"
say "done in $((SECONDS - start)) s: $("$BIN" --version 2>/dev/null | head -n1) ($BIN)"

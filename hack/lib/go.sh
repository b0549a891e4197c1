# shellcheck shell=bash
# Go toolchain settings shared by the scripts that build upstream code from Go
# modules (hack/build-upstream.sh, hack/build-containerd.sh, the e2e images).
# Source it after hack/lib/env.sh and control-plane-common.sh (for say/die).
#
# Caches live under $KNODE_CACHE, outside any clone: the module cache
# ($KNODE_CACHE/go/pkg/mod) and the build cache ($KNODE_CACHE/go-build).

# go_env_setup: exports the cache locations and checks the toolchain.
go_env_setup() {
    local go_bin
    for go_bin in go /usr/local/go/bin/go; do
        if command -v "$go_bin" >/dev/null 2>&1; then break; fi
    done
    command -v "$go_bin" >/dev/null 2>&1 || die "Go is not installed (Go ${KNODE_GO_MIN:-1.26} or newer is needed)"
    if [[ $go_bin == /usr/local/go/bin/go ]]; then export PATH="/usr/local/go/bin:$PATH"; fi
    export GOPATH="$KNODE_CACHE/go"
    export GOMODCACHE="$KNODE_CACHE/go/pkg/mod"
    export GOCACHE="$KNODE_CACHE/go-build"
    export GOTOOLCHAIN=local
    export GOFLAGS=-buildvcs=false
    unset GO111MODULE
    mkdir -p "$GOMODCACHE" "$GOCACHE"
    local have want=${KNODE_GO_MIN:-1.26}
    have=$(go env GOVERSION | sed 's/^go//')
    if [[ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1)" != "$want" ]]; then
        die "Go $have is too old: $want or newer is needed"
    fi
    command -v jq >/dev/null 2>&1 || {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null 2>&1 ||
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null; }
    }
}

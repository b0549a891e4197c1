#!/usr/bin/env bash
# Build upstream Kubernetes 1.20.2 (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, kube-proxy, kubectl) from Debian bookworm's
# `kubernetes` SOURCE package, with Debian's Go. The binaries are cached in
# $KNODE_CACHE/k8s-1.20.2/bin; once they and the stamp file exist, a run does
# nothing but say so (seconds). A cold build takes ~20-30 minutes on 2 cores.
#
# Usage:
#   hack/build-upstream.sh            build whatever is missing (idempotent)
#   hack/build-upstream.sh --force    rebuild even if the cache is complete
#   hack/build-upstream.sh --print-bin-dir
#                                     print the binary directory and exit
#
# The build log goes to $KNODE_CACHE/k8s-build.log (the full `make` output).
set -euo pipefail

# shellcheck source=hack/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
# shellcheck source=hack/lib/control-plane-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/control-plane-common.sh"

K8S_VERSION="$KNODE_K8S_VERSION"
# Debian's source package that carries 1.20.2 (a "really" version).
DEB_SRC_PACKAGE=kubernetes
DEB_SRC_VERSION_GLOB="*really${K8S_VERSION}*"
SRC_PARENT="$KNODE_CACHE/src"
BIN_DIR="$KNODE_K8S_BIN_DIR"
STAMP="$KNODE_K8S_DIR/.built"
BUILD_LOG="$KNODE_CACHE/k8s-build.log"
# Bump when the build recipe below changes: the cache is rebuilt.
BUILD_RECIPE_VERSION=1
WHAT_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
ALL_BINS=("${WHAT_BINS[@]}" knode-cri-rmp)
DEB_SRC_LIST=/etc/apt/sources.list.d/knode-deb-src.sources

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

FORCE=false
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=true ;;
        --print-bin-dir) echo "$BIN_DIR"; exit 0 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $arg" ;;
    esac
done

stamp_text() {
    printf 'kubernetes %s recipe %s bins %s\n' "$K8S_VERSION" "$BUILD_RECIPE_VERSION" "${ALL_BINS[*]}"
}

cache_complete() {
    local b
    [[ -f $STAMP && "$(<"$STAMP")" == "$(stamp_text)" ]] || return 1
    for b in "${ALL_BINS[@]}"; do
        [[ -x $BIN_DIR/$b ]] || return 1
    done
}

if ! $FORCE && cache_complete; then
    say "upstream Kubernetes $K8S_VERSION already built: $BIN_DIR (${ALL_BINS[*]})"
    exit 0
fi

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages with apt-get)"

# ---------------------------------------------------------------------------
# 1. Source package
# ---------------------------------------------------------------------------
# A deb-src entry for bookworm main, mirroring the machine's deb entry.
ensure_deb_src() {
    if apt-cache showsrc "$DEB_SRC_PACKAGE" 2>/dev/null | grep -q "^Version: .*really${K8S_VERSION}"; then
        return 0
    fi
    if [[ ! -f $DEB_SRC_LIST ]]; then
        say "adding a deb-src entry for bookworm ($DEB_SRC_LIST)"
        cat >"$DEB_SRC_LIST" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    say "apt-get update (for the source index)"
    apt-get update -qq
    apt-cache showsrc "$DEB_SRC_PACKAGE" | grep -q "^Version: .*really${K8S_VERSION}" ||
        die "apt has no source of $DEB_SRC_PACKAGE ${K8S_VERSION}: check $DEB_SRC_LIST"
}

ensure_build_deps() {
    local missing=() p
    for p in golang-go rsync dpkg-dev jq make; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    if ((${#missing[@]})); then
        say "installing build dependencies: ${missing[*]}"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        fi
    fi
}

# Prints the unpacked source tree, fetching and unpacking it if needed.
source_tree() {
    local tree
    mkdir -p "$SRC_PARENT"
    tree=$(find "$SRC_PARENT" -maxdepth 1 -type d -name "${DEB_SRC_PACKAGE}-${DEB_SRC_VERSION_GLOB}" | head -n1)
    if [[ -z $tree || ! -f $tree/Makefile || ! -d $tree/vendor ]]; then
        # dpkg-source will not unpack over a half-unpacked tree.
        if [[ -n $tree ]]; then rm -rf "$tree"; fi
        say "fetching Debian source package $DEB_SRC_PACKAGE into $SRC_PARENT" >&2
        (cd "$SRC_PARENT" && apt-get source -qq "$DEB_SRC_PACKAGE" >/dev/null 2>&1) ||
            die "apt-get source $DEB_SRC_PACKAGE failed"
        tree=$(find "$SRC_PARENT" -maxdepth 1 -type d -name "${DEB_SRC_PACKAGE}-${DEB_SRC_VERSION_GLOB}" | head -n1)
        [[ -n $tree ]] || die "unpacked source of $DEB_SRC_PACKAGE not found under $SRC_PARENT"
    fi
    echo "$tree"
}

ensure_deb_src
ensure_build_deps
TREE=$(source_tree)
say "source tree: $TREE ($(go version | awk '{print $3}'))"

# ---------------------------------------------------------------------------
# 2. Build with the tree's own make rules (they run the code generators, e.g.
#    the OpenAPI definitions the apiserver needs; plain `go build` lacks them).
# ---------------------------------------------------------------------------
# The tree's hack/lib/golang.sh sets GOPATH and GOCACHE to _output/local/go
# inside the tree (itself under $KNODE_CACHE); these cover any other go call.
export GOPATH="$KNODE_CACHE/go"
export GOCACHE="$KNODE_CACHE/go-build"
# The tree's hack/lib/init.sh forces GO111MODULE=off (GOPATH mode over a
# symlinked tree, vendor/ on the path): GOFLAGS=-mod=vendor would break it.
unset GOFLAGS GO111MODULE
export GOTOOLCHAIN=local
export GOPROXY=off
export CGO_ENABLED=0
export KUBE_BUILD_PLATFORMS=linux/amd64
case "$(uname -m)" in
    aarch64) KUBE_BUILD_PLATFORMS=linux/arm64 ;;
esac
# The tree stamps the version from git; there is no .git in a source package.
export KUBE_GIT_VERSION="v${K8S_VERSION}"
export KUBE_GIT_TREE_STATE=clean
export KUBE_GIT_MAJOR=1
export KUBE_GIT_MINOR="${K8S_VERSION#1.}"; KUBE_GIT_MINOR="${KUBE_GIT_MINOR%%.*}"
mkdir -p "$GOPATH" "$GOCACHE"

# Only what is missing is built (make reuses the tree's build cache).
missing=()
for b in "${WHAT_BINS[@]}"; do
    $FORCE || [[ ! -x $BIN_DIR/$b ]] || continue
    missing+=("$b")
done
mkdir -p "$BIN_DIR"
start=$(date +%s)
if ((${#missing[@]})); then
    what=()
    for b in "${missing[@]}"; do what+=("cmd/$b"); done
    say "building ${missing[*]} (log: $BUILD_LOG; ~20-30 min cold on 2 cores)"
    if ! (cd "$TREE" && env HOME="$KNODE_CACHE/home" make WHAT="${what[*]}") >"$BUILD_LOG" 2>&1; then
        tail -n 30 "$BUILD_LOG" >&2
        die "make failed after $(($(date +%s) - start)) s; full log in $BUILD_LOG"
    fi
    out="$TREE/_output/local/bin/${KUBE_BUILD_PLATFORMS}"
    for b in "${missing[@]}"; do
        [[ -x $out/$b ]] || die "build finished but $out/$b is missing (see $BUILD_LOG)"
        install -m 0755 "$out/$b" "$BIN_DIR/$b"
    done
fi

# knode-cri-rmp: a tiny CRI client (the vendored cri-api + grpc of this tree)
# that lists pod sandboxes and stops/removes those of given pod UIDs. Debian
# has no crictl; removing sandboxes with ctr would leave stale CRI state.
if $FORCE || [[ ! -x $BIN_DIR/knode-cri-rmp ]]; then
    say "building knode-cri-rmp (CRI sandbox cleanup helper)"
    mkdir -p "$TREE/cmd/knode-cri-rmp"
    cat >"$TREE/cmd/knode-cri-rmp/main.go" <<'GO'
// knode-cri-rmp lists pod sandboxes of a CRI runtime, or stops and removes
// the sandboxes (and their containers) that belong to the given pod UIDs.
//
//	knode-cri-rmp -endpoint /run/x.sock -list
//	knode-cri-rmp -endpoint /run/x.sock UID...
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1alpha2"
)

func main() {
	endpoint := flag.String("endpoint", "/run/knode/containerd/containerd.sock", "CRI socket path")
	list := flag.Bool("list", false, "list sandboxes (id, pod uid, namespace/name, state) and exit")
	flag.Parse()
	uids := map[string]bool{}
	for _, u := range flag.Args() {
		uids[u] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, err := grpc.DialContext(ctx, *endpoint, grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", addr)
		}))
	if err != nil {
		fmt.Fprintf(os.Stderr, "knode-cri-rmp: dial %s: %v\n", *endpoint, err)
		os.Exit(1)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	resp, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "knode-cri-rmp: list sandboxes: %v\n", err)
		os.Exit(1)
	}
	failed := false
	for _, s := range resp.Items {
		m := s.GetMetadata()
		if *list {
			fmt.Printf("%s\t%s\t%s/%s\t%s\n", s.Id, m.GetUid(), m.GetNamespace(), m.GetName(), s.State)
			continue
		}
		if !uids[m.GetUid()] {
			continue
		}
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: s.Id}); err != nil {
			fmt.Fprintf(os.Stderr, "knode-cri-rmp: stop %s: %v\n", s.Id, err)
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: s.Id}); err != nil {
			fmt.Fprintf(os.Stderr, "knode-cri-rmp: remove %s: %v\n", s.Id, err)
			failed = true
			continue
		}
		fmt.Printf("removed sandbox %s (pod %s/%s, uid %s)\n", s.Id, m.GetNamespace(), m.GetName(), m.GetUid())
	}
	if failed {
		os.Exit(1)
	}
}
GO
    if ! (cd "$TREE" && env HOME="$KNODE_CACHE/home" hack/run-in-gopath.sh \
        go build -o "$BIN_DIR/knode-cri-rmp" ./cmd/knode-cri-rmp) >>"$BUILD_LOG" 2>&1; then
        tail -n 20 "$BUILD_LOG" >&2
        die "building knode-cri-rmp failed; log in $BUILD_LOG"
    fi
fi
elapsed=$(($(date +%s) - start))
stamp_text >"$STAMP"
say "done in ${elapsed} s: $("$BIN_DIR/kube-apiserver" --version 2>&1 | head -n1)"
say "binaries: $BIN_DIR"

#!/usr/bin/env bash
# Build the container images upstream's e2e specs run (agnhost, busybox, nginx,
# nonroot, nonewprivs, ipc-utils, glibc-dns-testing, pause) locally, push them
# to a registry on loopback and point our containerd at it: nothing is pulled
# from the internet. Tags are the ones the pinned release's e2e framework asks
# for (test/utils/image/manifest.go of k8s.io/kubernetes).
#
# Usage:
#   hack/build-test-images.sh            build what is missing, start the registry, push, write hosts.toml
#   hack/build-test-images.sh --force    rebuild every image (and the Go binaries)
#   hack/build-test-images.sh --stop     stop the registry (images stay in its storage)
#   hack/build-test-images.sh --list     print the image references it provides
#
# agnhost and nnp are built from the k8s.io/kubernetes module (in a copy of
# hack/build-upstream.sh's wrapper module); the rest comes from Debian (busybox-static,
# catatonit, util-linux, hostname). Images are OCI layouts made with umoci under
# $KNODE_CACHE/test-images-<version>, pushed with skopeo to Debian's
# docker-registry on $KNODE_REGISTRY_ADDR (config and storage in
# /var/lib/knode/registry), each stored as <registry>/<path>:<tag>. One
# hosts.toml per registry in $KNODE_REGISTRY_HOSTS_DIR makes containerd fetch
# registry.k8s.io/e2e-test-images/agnhost:2.66.1 from
# http://127.0.0.1:5050/v2/registry.k8s.io/e2e-test-images/agnhost (no
# restart needed); _default sends every other registry there too, where the
# image is missing, so a pull fails without leaving the machine.
set -euo pipefail

# shellcheck source=hack/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
# shellcheck source=hack/lib/control-plane-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/control-plane-common.sh"
# shellcheck source=hack/lib/go.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/go.sh"
# shellcheck source=hack/lib/control-plane-components.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/control-plane-components.sh"
# shellcheck source=hack/lib/conformance-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/conformance-common.sh"
# shellcheck source=hack/lib/rootfs.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/rootfs.sh"
# shellcheck source=hack/lib/conformance-images.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/conformance-images.sh"

# Bump when a recipe in hack/lib/conformance-images.sh changes: images are rebuilt.
RECIPE_VERSION=7
UPSTREAM_MOD_DIR="$KNODE_K8S_DIR/module"
MOD_DIR="$KNODE_TEST_IMAGES_DIR/module"

usage() { sed -n '8,12p' "$0" | sed 's/^# \{0,1\}//'; }

FORCE=false
STOP=false
LIST=false
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=true ;;
        --stop) STOP=true ;;
        --list) LIST=true ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $arg" ;;
    esac
done

# ---------------------------------------------------------------------------
# The image table: manifest.go's ImageID, the populate function, umoci config.
# ---------------------------------------------------------------------------
IMAGE_IDS=(Agnhost AgnhostPrev BusyBox Nginx NginxNew NonRoot Nonewprivs IpcUtils GlibcDnsTesting Pause)
image_recipe() {
    case "$1" in
        Agnhost|AgnhostPrev) echo "populate_agnhost --config.entrypoint /agnhost --config.cmd pause" ;;
        BusyBox) echo "populate_busybox --config.cmd sh" ;;
        Nginx|NginxNew) echo "populate_nginx --config.cmd nginx --config.exposedports 80/tcp" ;;
        NonRoot) echo "populate_nonroot --config.cmd sh --config.user 1234" ;;
        Nonewprivs) echo "populate_nonewprivs --config.cmd nnp" ;;
        IpcUtils) echo "populate_ipc_utils --config.cmd sh" ;;
        GlibcDnsTesting) echo "populate_glibc_dns --config.cmd sh" ;;
        Pause) echo "populate_pause --config.entrypoint /pause --config.entrypoint -P --config.user 65535:65535" ;;
        *) die "no recipe for image $1" ;;
    esac
}

# manifest_ref ID: the image reference manifest.go gives ImageID ID, e.g.
# registry.k8s.io/e2e-test-images/agnhost:2.66.1.
manifest_ref() {
    local id=$1 manifest line field reg name tag prefix
    manifest="$(conformance_k8s_src)/test/utils/image/manifest.go"
    line=$(grep -E "^[[:space:]]*configs\[$id\] = Config\{" "$manifest") || die "ImageID $id not in $manifest"
    field=$(sed -E 's/.*Config\{list\.([A-Za-z0-9]+), "([^"]+)", "([^"]+)"\}.*/\1 \2 \3/' <<<"$line")
    read -r reg name tag <<<"$field"
    prefix=$(sed -nE "s/^[[:space:]]*$reg:[[:space:]]*\"([^\"]+)\",.*/\1/p" "$manifest" | head -n1)
    [[ -n $prefix && -n $name && -n $tag ]] || die "cannot read ImageID $id from $manifest"
    echo "$prefix/$name:$tag"
}

ensure_module_source() {
    [[ -f "$(conformance_k8s_src)/test/utils/image/manifest.go" ]] && return 0
    say "downloading k8s.io/kubernetes@v$KNODE_K8S_VERSION's source into the module cache"
    (cd /tmp && go mod download "k8s.io/kubernetes@v$KNODE_K8S_VERSION") ||
        die "go mod download k8s.io/kubernetes@v$KNODE_K8S_VERSION failed"
}

if $LIST; then
    go_env_setup
    ensure_module_source
    for id in "${IMAGE_IDS[@]}"; do manifest_ref "$id"; done
    exit 0
fi

[[ $(id -u) -eq 0 ]] || die "must run as root"

# ---------------------------------------------------------------------------
# The registry process.
# ---------------------------------------------------------------------------
registry_pid() {
    local pid
    [[ -f $KNODE_REGISTRY_PIDFILE ]] || return 1
    pid=$(<"$KNODE_REGISTRY_PIDFILE")
    [[ $pid =~ ^[0-9]+$ && -e /proc/$pid ]] || return 1
    [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$(readlink -m "$KNODE_REGISTRY_BIN")" ]] || return 1
    tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF "$KNODE_REGISTRY_DIR/config.yml" || return 1
    echo "$pid"
}

stop_registry() {
    local pid i
    if ! pid=$(registry_pid); then
        say "registry not running"
        rm -f "$KNODE_REGISTRY_PIDFILE"
        return 0
    fi
    say "stopping registry (pid $pid)"
    kill -TERM "$pid"
    for ((i = 0; i < 100; i++)); do
        [[ -e /proc/$pid ]] || break
        sleep 0.1
    done
    [[ -e /proc/$pid ]] && kill -KILL "$pid" 2>/dev/null
    rm -f "$KNODE_REGISTRY_PIDFILE"
}

if $STOP; then
    stop_registry
    exit 0
fi

write_registry_config() {
    mkdir -p "$KNODE_REGISTRY_DIR/storage"
    cat >"$KNODE_REGISTRY_DIR/config.yml.new" <<EOF
# Written by hack/build-test-images.sh: the e2e test images on loopback only.
version: 0.1
log:
  level: warn
  fields:
    service: knode-registry
storage:
  filesystem:
    rootdirectory: $KNODE_REGISTRY_DIR/storage
  delete:
    enabled: true
http:
  addr: $KNODE_REGISTRY_ADDR
  headers:
    X-Content-Type-Options: [nosniff]
EOF
    if cmp -s "$KNODE_REGISTRY_DIR/config.yml.new" "$KNODE_REGISTRY_DIR/config.yml" 2>/dev/null; then
        rm -f "$KNODE_REGISTRY_DIR/config.yml.new"
        return 1
    fi
    mv "$KNODE_REGISTRY_DIR/config.yml.new" "$KNODE_REGISTRY_DIR/config.yml"
    return 0
}

start_registry() {
    local changed=false pid i
    write_registry_config && changed=true
    if pid=$(registry_pid); then
        if ! $changed && registry_answers; then
            say "registry already running on $KNODE_REGISTRY_ADDR (pid $pid)"
            return 0
        fi
        stop_registry
    fi
    if registry_answers; then
        die "something else answers on $KNODE_REGISTRY_ADDR; set KNODE_REGISTRY_ADDR to a free loopback port"
    fi
    mkdir -p "$(dirname "$KNODE_REGISTRY_PIDFILE")" "$(dirname "$KNODE_REGISTRY_LOG")"
    printf '\n===== %s started by hack/build-test-images.sh\n' "$(date -Is)" >>"$KNODE_REGISTRY_LOG"
    # Started without the caller's other descriptors: a held `flock` fd (a test or
    # conformance run holding /tmp/knode-e2e.lock) would stay locked for the registry's life.
    (
        for fd in /proc/"$BASHPID"/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
        done
        exec setsid "$KNODE_REGISTRY_BIN" serve "$KNODE_REGISTRY_DIR/config.yml" </dev/null >>"$KNODE_REGISTRY_LOG" 2>&1
    ) &
    pid=$!
    echo "$pid" >"$KNODE_REGISTRY_PIDFILE"
    for ((i = 0; i < 100; i++)); do
        registry_answers && { say "registry up on $KNODE_REGISTRY_ADDR (pid $pid, log $KNODE_REGISTRY_LOG)"; return 0; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$KNODE_REGISTRY_LOG" >&2
    die "the registry did not come up on $KNODE_REGISTRY_ADDR"
}

# ---------------------------------------------------------------------------
# 1. packages (no service may start: docker-registry's would take :5000)
# ---------------------------------------------------------------------------
PACKAGES=(docker-registry skopeo umoci busybox-static catatonit util-linux hostname bash netcat-openbsd jq curl)
missing=()
for p in "${PACKAGES[@]}"; do
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true) == installed ]] || missing+=("$p")
done
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    cp_apt_install_no_start "${missing[@]}"
else
    say "packages already installed (${PACKAGES[*]})"
fi

go_env_setup
ensure_module_source
mkdir -p "$KNODE_TEST_IMAGES_DIR/bin" "$KNODE_TEST_IMAGES_DIR/oci"

# ---------------------------------------------------------------------------
# 2. Go binaries from the k8s.io/kubernetes module (the wrapper module of
#    hack/build-upstream.sh, whose replace list makes the module buildable)
# ---------------------------------------------------------------------------
build_go_binaries() {
    local stamp="$KNODE_TEST_IMAGES_DIR/bin/.stamp" want
    want="kubernetes v$KNODE_K8S_VERSION agnhost nnp nmeter knode-sh recipe $RECIPE_VERSION"
    if ! $FORCE && [[ -x $KNODE_TEST_IMAGES_DIR/bin/agnhost && -x $KNODE_TEST_IMAGES_DIR/bin/nnp &&
        -x $KNODE_TEST_IMAGES_DIR/bin/nmeter && -x $KNODE_TEST_IMAGES_DIR/bin/knode-sh &&
        -f $stamp && $(<"$stamp") == "$want" ]]; then
        say "agnhost, nnp and nmeter already built ($KNODE_TEST_IMAGES_DIR/bin)"
        return 0
    fi
    # A copy of hack/build-upstream.sh's wrapper module (its replace list makes
    # k8s.io/kubernetes buildable), so that builds here never edit that one.
    [[ -f $UPSTREAM_MOD_DIR/go.mod.base ]] || bash "$KNODE_REPO_ROOT/hack/build-upstream.sh"
    mkdir -p "$MOD_DIR"
    if ! cmp -s "$UPSTREAM_MOD_DIR/go.mod.base" "$MOD_DIR/go.mod.base" 2>/dev/null; then
        cp "$UPSTREAM_MOD_DIR/go.mod.base" "$MOD_DIR/go.mod.base"
        sed 's|^module .*|module knode.local/upstream-k8s-test-images|' "$MOD_DIR/go.mod.base" >"$MOD_DIR/go.mod"
        if [[ -f $UPSTREAM_MOD_DIR/go.sum ]]; then cp "$UPSTREAM_MOD_DIR/go.sum" "$MOD_DIR/go.sum"; fi
    fi
    local log="$KNODE_TEST_IMAGES_DIR/build.log" t0=$SECONDS
    say "building agnhost and nnp from k8s.io/kubernetes@v$KNODE_K8S_VERSION, and nmeter (log: $log)"
    write_nmeter_source "$MOD_DIR/cmd/nmeter"
    write_knode_sh_source "$MOD_DIR/cmd/knode-sh"
    (
        cd "$MOD_DIR"
        go get "k8s.io/kubernetes/test/images/agnhost@v$KNODE_K8S_VERSION" \
            "k8s.io/kubernetes/test/images/nonewprivs@v$KNODE_K8S_VERSION"
        CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$KNODE_TEST_IMAGES_DIR/bin/agnhost" \
            k8s.io/kubernetes/test/images/agnhost
        CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$KNODE_TEST_IMAGES_DIR/bin/nnp" \
            k8s.io/kubernetes/test/images/nonewprivs
        CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$KNODE_TEST_IMAGES_DIR/bin/nmeter" ./cmd/nmeter
        CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$KNODE_TEST_IMAGES_DIR/bin/knode-sh" ./cmd/knode-sh
    ) >"$log" 2>&1 || { tail -n 30 "$log" >&2; die "building agnhost/nnp failed (log: $log)"; }
    echo "$want" >"$stamp"
    say "  agnhost, nnp and nmeter built in $((SECONDS - t0)) s"
}
build_go_binaries

# ---------------------------------------------------------------------------
# 3. OCI images with umoci, one layout per image
# ---------------------------------------------------------------------------
pkg_version() { dpkg-query -W -f='${Version}' "$1"; }

# image_key REF RECIPE: what the cached image was built from.
image_key() {
    local ref=$1 recipe=$2 extra=""
    extra="nmeter=$(sha256sum <"$KNODE_TEST_IMAGES_DIR/bin/nmeter" | cut -c1-16)"
    extra+=" knode-sh=$(sha256sum <"$KNODE_TEST_IMAGES_DIR/bin/knode-sh" | cut -c1-16)"
    case "$recipe" in
        populate_agnhost*) extra+=" agnhost=$(sha256sum <"$KNODE_TEST_IMAGES_DIR/bin/agnhost" | cut -c1-16)" ;;
        populate_nonewprivs*) extra+=" nnp=$(sha256sum <"$KNODE_TEST_IMAGES_DIR/bin/nnp" | cut -c1-16)" ;;
    esac
    echo "recipe=$RECIPE_VERSION ref=$ref $recipe busybox=$(pkg_version busybox-static)" \
        "catatonit=$(pkg_version catatonit) util-linux=$(pkg_version util-linux)" \
        "hostname=$(pkg_version hostname) bash=$(pkg_version bash) curl=$(pkg_version curl)" \
        "netcat=$(pkg_version netcat-openbsd)" \
        "umoci=$(pkg_version umoci) $extra"
}

# layout_of REF: the OCI layout directory of an image.
layout_of() { echo "$KNODE_TEST_IMAGES_DIR/oci/$(tr '/:' '__' <<<"$1")"; }

build_image() {
    local ref=$1 recipe=$2 populate key layout tag work
    read -r populate _ <<<"$recipe"
    # shellcheck disable=SC2206 # the recipe's umoci arguments are single words
    local config_args=(${recipe#"$populate"})
    layout=$(layout_of "$ref")
    tag=${ref##*:}
    key=$(image_key "$ref" "$recipe")
    if ! $FORCE && [[ -f $layout/index.json && -f $layout.stamp && $(<"$layout.stamp") == "$key" ]]; then
        say "image $ref already built"
        return 0
    fi
    say "building image $ref"
    work=$(mktemp -d "$KNODE_TEST_IMAGES_DIR/.build.XXXXXX")
    oci_image_build "$work" "$tag" "$populate" "${config_args[@]}"
    rm -rf "$layout"
    mv "$work/oci" "$layout"
    echo "$key" >"$layout.stamp"
    rm -rf "$work"
    say "  built $ref ($(du -sh "$layout" | cut -f1))"
}

REFS=()
for id in "${IMAGE_IDS[@]}"; do
    ref=$(manifest_ref "$id")
    REFS+=("$ref")
    build_image "$ref" "$(image_recipe "$id")"
done

# ---------------------------------------------------------------------------
# 4. the registry, and the images in it as <registry>/<path>:<tag>
# ---------------------------------------------------------------------------
start_registry

push_image() {
    local ref=$1 layout tag want have
    layout=$(layout_of "$ref")
    tag=${ref##*:}
    want=$(jq -r '.manifests[0].digest' "$layout/index.json")
    have=$(skopeo inspect --raw --tls-verify=false "docker://$KNODE_REGISTRY_ADDR/$ref" 2>/dev/null |
        sha256sum | awk '{print "sha256:" $1}') || have=""
    if [[ $have == "$want" ]]; then
        say "$ref already in the registry ($want)"
        return 0
    fi
    say "pushing $ref"
    skopeo copy --quiet --dest-tls-verify=false "oci:$layout:$tag" "docker://$KNODE_REGISTRY_ADDR/$ref" ||
        die "pushing $ref to $KNODE_REGISTRY_ADDR failed"
}
for ref in "${REFS[@]}"; do push_image "$ref"; done

# A rebuilt image must not hide behind an old copy in containerd (pods pull
# IfNotPresent): drop every name that points at another manifest.
drop_stale_in_containerd() {
    local ref=$1 want have
    timeout 5 ctr -a "$KNODE_CONTAINERD_SOCK" version >/dev/null 2>&1 || return 0
    want=$(jq -r '.manifests[0].digest' "$(layout_of "$ref")/index.json")
    have=$(knode_ctr images ls 2>/dev/null | awk -v r="$ref" '$1 == r { print $3 }')
    [[ -n $have && $have != "$want" ]] || return 0
    say "removing the stale $ref ($have) from containerd"
    knode_ctr images ls 2>/dev/null | awk -v d="$have" 'NR > 1 && $3 == d { print $1 }' |
        xargs -r ctr -a "$KNODE_CONTAINERD_SOCK" -n "$KNODE_CONTAINERD_NAMESPACE" images rm >/dev/null
}
for ref in "${REFS[@]}"; do drop_stale_in_containerd "$ref"; done

# ---------------------------------------------------------------------------
# 5. containerd: one hosts.toml per registry. `server` (not a [host] mirror)
#    so that containerd has no real registry to fall back to.
# ---------------------------------------------------------------------------
write_hosts_toml() {
    local dir=$1 server=$2 what=$3 path tmp
    path="$KNODE_REGISTRY_HOSTS_DIR/$dir/hosts.toml"
    mkdir -p "$(dirname "$path")"
    tmp=$(mktemp "$path.XXXXXX")
    cat >"$tmp" <<EOF
# Written by hack/build-test-images.sh: $what
# is served by the loopback test registry; nothing goes to the internet.
server = "$server"
override_path = true
skip_verify = true
capabilities = ["pull", "resolve"]
EOF
    chmod 0644 "$tmp"
    if cmp -s "$tmp" "$path" 2>/dev/null; then rm -f "$tmp"; return 0; fi
    mv "$tmp" "$path"
    say "wrote $path"
}
for r in "${KNODE_TEST_REGISTRIES[@]}"; do
    write_hosts_toml "$r" "http://$KNODE_REGISTRY_ADDR/v2/$r" "$r"
done
write_hosts_toml _default "http://$KNODE_REGISTRY_ADDR/v2/unknown-registry" "every other registry"
# The registry itself, by its own address (hosts dir name: host_port_).
write_hosts_toml "${KNODE_REGISTRY_ADDR%:*}_${KNODE_REGISTRY_ADDR##*:}_" "http://$KNODE_REGISTRY_ADDR/v2" "$KNODE_REGISTRY_ADDR"

say "test images ready: ${#REFS[@]} images on $KNODE_REGISTRY_ADDR, hosts.toml in $KNODE_REGISTRY_HOSTS_DIR"

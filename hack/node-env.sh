#!/usr/bin/env bash
# Prepare this machine to run knode: packages, local OCI images, and our OWN
# containerd instance (its own root, state, socket and CNI config, never the
# machine's default containerd). Idempotent: a second run does nothing but check.
#
# Usage:
#   hack/node-env.sh            install/build/start whatever is missing
#   hack/node-env.sh --stop     stop our containerd (shims of running pods stay)
#   hack/node-env.sh --stop --purge
#                               remove all pods/containers/images/state of our
#                               containerd, its CNI state and bridge, then stop it
#
# Other scripts: `source hack/lib/env.sh` for the shared variables.
set -euo pipefail

# shellcheck source=hack/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
# shellcheck source=hack/lib/rootfs.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/rootfs.sh"

# Bump when the image recipes below change: cached images are rebuilt.
IMAGE_RECIPE_VERSION=5
CNI_NETWORK_NAME="${KNODE_CNI_NETWORK:-knode}"

say() { printf '==> %s\n' "$*"; }
warn() { printf '==> WARNING: %s\n' "$*" >&2; }
die() { printf '==> ERROR: %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

STOP=false
PURGE=false
for arg in "$@"; do
    case "$arg" in
        --stop) STOP=true ;;
        --purge) PURGE=true ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $arg" ;;
    esac
done
if $PURGE && ! $STOP; then die "--purge only goes with --stop"; fi

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and runs containerd)"

# ---------------------------------------------------------------------------
# containerd process helpers
# ---------------------------------------------------------------------------
containerd_answers() {
    [[ -S $KNODE_CONTAINERD_SOCK ]] &&
        timeout 5 ctr -a "$KNODE_CONTAINERD_SOCK" version >/dev/null 2>&1
}

containerd_pid() {
    local pid
    [[ -f $KNODE_CONTAINERD_PIDFILE ]] || return 1
    pid=$(<"$KNODE_CONTAINERD_PIDFILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "containerd --config $KNODE_CONTAINERD_CONFIG" || return 1
    if [[ ${1:-} == --binary ]]; then readlink "/proc/$pid/exe"; return 0; fi
    echo "$pid"
}

stop_containerd() {
    local pid i
    if ! pid=$(containerd_pid); then
        if containerd_answers; then
            die "something answers on $KNODE_CONTAINERD_SOCK but it is not the process in $KNODE_CONTAINERD_PIDFILE; not touching it"
        fi
        say "containerd ($KNODE_CONTAINERD_SOCK) is not running: nothing to stop"
        rm -f "$KNODE_CONTAINERD_PIDFILE"
        return 0
    fi
    say "stopping containerd (pid $pid)"
    kill -TERM "$pid"
    for ((i = 0; i < 200; i++)); do
        [[ -e /proc/$pid ]] || break
        sleep 0.1
    done
    if [[ -e /proc/$pid ]]; then
        warn "containerd (pid $pid) did not exit in 20 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$KNODE_CONTAINERD_PIDFILE"
    say "containerd stopped"
}

# Remove every container, task and image our containerd knows, the network
# namespaces and IP allocations of its pods, and its on-disk state.
purge_containerd() {
    local ns id netns pid

    if containerd_answers; then
        for ns in $(ctr -a "$KNODE_CONTAINERD_SOCK" namespaces ls -q); do
            say "purging containerd namespace $ns"
            # Remember pod network namespaces (bind mounts in /var/run/netns)
            # before the sandbox containers that record them are gone.
            for id in $(ctr -a "$KNODE_CONTAINERD_SOCK" -n "$ns" containers ls -q); do
                netns=$(ctr -a "$KNODE_CONTAINERD_SOCK" -n "$ns" containers info "$id" 2>/dev/null |
                    jq -r '.Spec.linux.namespaces[]? | select(.type == "network") | .path // empty' 2>/dev/null || true)
                if [[ $netns == /var/run/netns/* || $netns == /run/netns/* ]]; then
                    PURGE_NETNS+=("$netns")
                fi
            done
            for id in $(ctr -a "$KNODE_CONTAINERD_SOCK" -n "$ns" tasks ls -q 2>/dev/null); do
                ctr -a "$KNODE_CONTAINERD_SOCK" -n "$ns" tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true
            done
            sleep 0.5
            for id in $(ctr -a "$KNODE_CONTAINERD_SOCK" -n "$ns" tasks ls -q 2>/dev/null); do
                ctr -a "$KNODE_CONTAINERD_SOCK" -n "$ns" tasks rm -f "$id" >/dev/null 2>&1 || true
            done
            for id in $(ctr -a "$KNODE_CONTAINERD_SOCK" -n "$ns" containers ls -q); do
                ctr -a "$KNODE_CONTAINERD_SOCK" -n "$ns" containers rm "$id" >/dev/null 2>&1 ||
                    warn "could not remove container $id in namespace $ns"
            done
        done
    fi

    stop_containerd

    # Shims outlive containerd by design; kill those started for our instance.
    for pid in $(pgrep -f -- "containerd-shim.*-address $KNODE_CONTAINERD_SOCK" || true); do
        say "killing leftover shim pid $pid"
        kill -KILL "$pid" 2>/dev/null || true
    done

    for netns in "${PURGE_NETNS[@]}"; do
        if [[ -e $netns ]]; then
            say "removing pod network namespace $netns"
            umount "$netns" 2>/dev/null || true
            rm -f "$netns"
        fi
    done
    if [[ -d /var/lib/cni/networks/$CNI_NETWORK_NAME ]]; then
        say "releasing IP allocations in /var/lib/cni/networks/$CNI_NETWORK_NAME"
        rm -rf "/var/lib/cni/networks/$CNI_NETWORK_NAME"
    fi
    if ip link show "$KNODE_BRIDGE" >/dev/null 2>&1; then
        say "deleting bridge $KNODE_BRIDGE"
        ip link del "$KNODE_BRIDGE"
    fi

    local dir
    for dir in "$KNODE_CONTAINERD_STATE" "$KNODE_CONTAINERD_ROOT"; do
        [[ -d $dir ]] || continue
        # Unmount anything left below our directories, deepest first.
        awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
            while read -r m; do umount -l "$m" 2>/dev/null || true; done
        say "removing $dir"
        rm -rf "$dir"
    done
    say "purge done (cached image tarballs in $KNODE_IMAGE_CACHE kept)"
}

if $STOP; then
    PURGE_NETNS=()
    if $PURGE; then purge_containerd; else stop_containerd; fi
    exit 0
fi

# ---------------------------------------------------------------------------
# 1. packages
# ---------------------------------------------------------------------------
# prometheus: the scraper cmd/kubelet/tests/cluster_autoscaling.rs runs itself; its packaged
# service stays stopped (see no_service_starts below).
# docker-registry, skopeo, apache2-utils (htpasswd): the image pull tests
# (cmd/kubelet/tests/cluster_images.rs) run an open and an authenticated registry on loopback.
PACKAGES=(containerd runc containernetworking-plugins umoci busybox-static catatonit
    protobuf-compiler nftables iptables conntrack iproute2 jq procps prometheus
    docker-registry skopeo apache2-utils libseccomp-dev)
OPTIONAL_PACKAGES=()

pkg_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

missing=()
for p in "${PACKAGES[@]}"; do pkg_installed "$p" || missing+=("$p"); done
missing_optional=()
for p in "${OPTIONAL_PACKAGES[@]}"; do pkg_installed "$p" || missing_optional+=("$p"); done

# Packaged daemons (prometheus, docker-registry) must not run: tests start their own. A policy-rc.d that
# forbids every action keeps the maintainer scripts' invoke-rc.d/deb-systemd-invoke from
# starting them (one already in place, as in Docker images, is kept); whatever runs as the
# service user afterwards is stopped, and the systemd unit disabled where systemd runs.
POLICY_RC_D=/usr/sbin/policy-rc.d
no_service_starts() {
    if [[ -e $POLICY_RC_D ]]; then return 0; fi
    printf '#!/bin/sh\n# hack/node-env.sh: no service starts during apt-get install\nexit 101\n' >"$POLICY_RC_D"
    chmod 0755 "$POLICY_RC_D"
    trap 'rm -f "$POLICY_RC_D"' EXIT
    OUR_POLICY_RC_D=true
}
services_allowed_again() {
    if ${OUR_POLICY_RC_D:-false}; then
        rm -f "$POLICY_RC_D"
        trap - EXIT
    fi
}
stop_packaged_daemons() {
    local unit pid
    if [[ -d /run/systemd/system ]]; then
        for unit in prometheus prometheus-node-exporter docker-registry; do
            if systemctl list-unit-files "$unit.service" >/dev/null 2>&1; then
                systemctl disable --now "$unit.service" >/dev/null 2>&1 || true
            fi
        done
    fi
    # The packages' service user runs nothing else; a test's prometheus runs as root.
    for pid in $(pgrep -u prometheus -x 'prometheus|prometheus-node' 2>/dev/null || true) \
        $(pgrep -u docker-registry -x docker-registry 2>/dev/null || true); do
        say "stopping packaged daemon pid $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true))"
        kill -TERM "$pid" 2>/dev/null || true
    done
}

if ((${#missing[@]} + ${#missing_optional[@]} > 0)); then
    say "installing packages: ${missing[*]} ${missing_optional[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    no_service_starts
    if ((${#missing[@]} > 0)); then
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if ((${#missing_optional[@]} > 0)); then
        apt-get install -y -qq --no-install-recommends "${missing_optional[@]}" >/dev/null ||
            warn "optional packages not installed: ${missing_optional[*]}"
    fi
    services_allowed_again
    stop_packaged_daemons
else
    say "packages already installed (${#PACKAGES[@]} required + ${#OPTIONAL_PACKAGES[@]} optional)"
fi

# containerd itself: 2.x built from its Go module (the default), or Debian's 1.6.
case "$KNODE_CONTAINERD_FLAVOUR" in
    module)
        bash "$KNODE_REPO_ROOT/hack/build-containerd.sh"
        CONTAINERD_BIN_DIR="$KNODE_CONTAINERD_BUILD_DIR/bin"
        CONTAINERD_CONFIG_VERSION=4
        ;;
    debian)
        CONTAINERD_BIN_DIR=/usr/bin
        CONTAINERD_CONFIG_VERSION=2
        ;;
    *) die "KNODE_CONTAINERD_FLAVOUR must be module or debian, not '$KNODE_CONTAINERD_FLAVOUR'" ;;
esac
CONTAINERD_BIN="$CONTAINERD_BIN_DIR/containerd"
[[ -x $CONTAINERD_BIN ]] || die "$CONTAINERD_BIN is missing"
say "containerd: $("$CONTAINERD_BIN" --version | awk '{print $3}') ($CONTAINERD_BIN)"

mkdir -p "$KNODE_CONTAINERD_ROOT" "$KNODE_CONTAINERD_STATE" "$(dirname "$KNODE_CONTAINERD_CONFIG")" \
    "$KNODE_CNI_CONF_DIR" "$KNODE_LOG_DIR" "$KNODE_IMAGE_CACHE" "$(dirname "$KNODE_CONTAINERD_PIDFILE")"

# ---------------------------------------------------------------------------
# 2. snapshotter: overlayfs if this kernel/filesystem can mount it, else native
# ---------------------------------------------------------------------------
overlay_works() {
    local d rc=1
    d=$(mktemp -d "$KNODE_CONTAINERD_ROOT/.overlay-probe.XXXXXX")
    mkdir -p "$d/lower" "$d/upper" "$d/work" "$d/merged"
    if mount -t overlay overlay -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work" "$d/merged" 2>/dev/null; then
        umount "$d/merged"
        rc=0
    fi
    rm -rf "$d"
    return $rc
}

if [[ -n ${KNODE_SNAPSHOTTER:-} ]]; then
    SNAPSHOTTER=$KNODE_SNAPSHOTTER
elif overlay_works; then
    SNAPSHOTTER=overlayfs
else
    SNAPSHOTTER=native
    warn "overlayfs cannot be mounted under $KNODE_CONTAINERD_ROOT; using the native snapshotter"
fi

# ---------------------------------------------------------------------------
# 3. local OCI images, built with umoci (no registry is reachable)
# ---------------------------------------------------------------------------
pkg_version() { dpkg-query -W -f='${Version}' "$1"; }

# Copies a dynamically linked binary's libraries into a rootfs (not needed for
# static binaries; kept so the recipe survives a non-static package build).
copy_libs() {
    local bin=$1 rootfs=$2 lib
    for lib in $(ldd "$bin" 2>/dev/null | grep -oE '/[^ ]+' || true); do
        mkdir -p "$rootfs$(dirname "$lib")"
        cp -L "$lib" "$rootfs$lib"
    done
}

is_static() { file -L "$1" 2>/dev/null | grep -q 'statically linked' || ! ldd "$1" >/dev/null 2>&1; }


populate_busybox() {
    local rootfs=$1 applet
    write_etc "$rootfs"
    mkdir -p "$rootfs/bin" "$rootfs/sbin" "$rootfs/usr/bin" "$rootfs/usr/sbin" "$rootfs/var/www"
    install -m 0755 /bin/busybox "$rootfs/bin/busybox"
    is_static /bin/busybox || copy_libs /bin/busybox "$rootfs"
    # Every applet, at the path busybox itself reports (bin/sh, usr/bin/wget, ...).
    while read -r applet; do
        [[ -n $applet && $applet != bin/busybox && $applet != linuxrc ]] || continue
        mkdir -p "$rootfs/$(dirname "$applet")"
        ln -sf /bin/busybox "$rootfs/$applet"
    done < <(/bin/busybox --list-full)
    echo '<h1>hello from knode</h1>' >"$rootfs/var/www/index.html"
}

populate_pause() {
    local rootfs=$1
    write_etc "$rootfs"
    mkdir -p "$rootfs/usr/bin"
    install -m 0755 /usr/bin/catatonit "$rootfs/usr/bin/catatonit"
    if ! is_static /usr/bin/catatonit; then
        warn "/usr/bin/catatonit is not static; copying its libraries into the pause image"
        copy_libs /usr/bin/catatonit "$rootfs"
    fi
}

# build_image NAME:TAG CACHE_BASENAME POPULATE_FN UMOCI_CONFIG_ARGS...
# Produces $KNODE_IMAGE_CACHE/<base>.tar (an OCI layout archive) and <base>.stamp.
build_image() {
    local ref=$1 base=$2 populate=$3
    shift 3
    local tag=${ref##*:}
    local tar="$KNODE_IMAGE_CACHE/$base.tar" stamp="$KNODE_IMAGE_CACHE/$base.stamp"
    local key
    key="recipe=$IMAGE_RECIPE_VERSION ref=$ref busybox=$(pkg_version busybox-static) catatonit=$(pkg_version catatonit) umoci=$(pkg_version umoci)"

    if [[ -f $tar && -f $stamp && $(<"$stamp") == "$key" ]]; then
        say "image $ref already built ($tar)"
        return 0
    fi
    say "building image $ref with umoci"
    local work
    work=$(mktemp -d "$KNODE_IMAGE_CACHE/.build-$base.XXXXXX")
    oci_image_build "$work" "$tag" "$populate" "$@"
    # Name the manifest with the full image reference, so that a plain
    # `ctr images import` files it under that name.
    jq --arg ref "$ref" '.manifests[0].annotations["org.opencontainers.image.ref.name"] = $ref' \
        "$work/oci/index.json" >"$work/index.json"
    mv "$work/index.json" "$work/oci/index.json"
    tar -C "$work/oci" -cf "$tar.tmp" oci-layout index.json blobs
    mv "$tar.tmp" "$tar"
    echo "$key" >"$stamp"
    rm -rf "$work"
    say "built $ref -> $tar ($(du -h "$tar" | cut -f1))"
}

build_image "$KNODE_BUSYBOX_IMAGE" busybox populate_busybox --config.cmd sh
build_image "$KNODE_PAUSE_IMAGE" pause populate_pause \
    --config.entrypoint /usr/bin/catatonit --config.entrypoint -P --config.user 65534:65534

# ---------------------------------------------------------------------------
# 4. containerd config (version 2) for our own instance
# ---------------------------------------------------------------------------
write_if_changed() {
    local path=$1 what=$2 tmp
    tmp=$(mktemp "$path.XXXXXX")
    cat >"$tmp"
    if [[ -f $path ]] && cmp -s "$tmp" "$path"; then
        rm -f "$tmp"
        say "$what already up to date ($path)"
        return 1
    fi
    chmod 0644 "$tmp"
    mv "$tmp" "$path"
    say "wrote $what ($path)"
    return 0
}

# containerd 2.4 reads version 4 (and migrates older versions at every start,
# with a warning); Debian's 1.6 reads version 2.
containerd_config_v4() {
    cat <<EOF
# Written by hack/node-env.sh: knode's own containerd, separate from any other.
version = 4
root = "$KNODE_CONTAINERD_ROOT"
state = "$KNODE_CONTAINERD_STATE"
oom_score = 0

[debug]
  level = "info"

[plugins]
  [plugins.'io.containerd.server.v1.grpc']
    address = "$KNODE_CONTAINERD_SOCK"

  [plugins.'io.containerd.server.v1.grpc-tcp']
    address = ""

  [plugins.'io.containerd.server.v1.ttrpc']
    address = "$KNODE_CONTAINERD_TTRPC_SOCK"

  [plugins.'io.containerd.server.v1.debug']
    address = ""

  [plugins.'io.containerd.server.v1.metrics']
    address = ""

  [plugins.'io.containerd.internal.v1.opt']
    path = "$KNODE_CONTAINERD_ROOT/opt"

  [plugins.'io.containerd.grpc.v1.cri']
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"

  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "$SNAPSHOTTER"
    disable_snapshot_annotations = true

    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = "$KNODE_PAUSE_IMAGE"

    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = "$KNODE_REGISTRY_HOSTS_DIR"

  [plugins.'io.containerd.cri.v1.runtime']
    # Root here lacks CAP_SYS_RESOURCE: lowering oom_score_adj fails, and
    # without this every sandbox fails to start.
    restrict_oom_score_adj = true
    enable_selinux = false
    disable_apparmor = true
    max_container_log_line_size = 16384

    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "runc"

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"

        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          SystemdCgroup = false

      # A second handler for RuntimeClass tests (upstream's node e2e names it test-handler).
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.test-handler]
        runtime_type = "io.containerd.runc.v2"

      # A current runc with ID-mapped mounts: user namespace pods (hostUsers: false).
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc-userns]
        runtime_type = "io.containerd.runc.v2"

        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc-userns.options]
          BinaryName = "$KNODE_RUNC_BIN"
          SystemdCgroup = false

    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ["$KNODE_CNI_BIN_DIR"]
      conf_dir = "$KNODE_CNI_CONF_DIR"
      max_conf_num = 1
EOF
}

containerd_config_v2() {
    cat <<EOF
# Written by hack/node-env.sh: knode's own containerd, separate from any other.
version = 2
root = "$KNODE_CONTAINERD_ROOT"
state = "$KNODE_CONTAINERD_STATE"
oom_score = 0

[grpc]
  address = "$KNODE_CONTAINERD_SOCK"
  tcp_address = ""

[ttrpc]
  address = "$KNODE_CONTAINERD_TTRPC_SOCK"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$KNODE_CONTAINERD_ROOT/opt"

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$KNODE_PAUSE_IMAGE"
    # Root here lacks CAP_SYS_RESOURCE: lowering oom_score_adj fails, and
    # without this every sandbox fails to start.
    restrict_oom_score_adj = true
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false
    disable_apparmor = true
    max_container_log_line_size = 16384

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "$SNAPSHOTTER"
      default_runtime_name = "runc"
      disable_snapshot_annotations = true

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.test-handler]
        runtime_type = "io.containerd.runc.v2"

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "$KNODE_CNI_BIN_DIR"
      conf_dir = "$KNODE_CNI_CONF_DIR"
      max_conf_num = 1

    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "$KNODE_REGISTRY_HOSTS_DIR"
EOF
}

mkdir -p "$KNODE_REGISTRY_HOSTS_DIR"
CONFIG_CHANGED=false
"containerd_config_v$CONTAINERD_CONFIG_VERSION" |
    write_if_changed "$KNODE_CONTAINERD_CONFIG" "containerd config (version $CONTAINERD_CONFIG_VERSION)" && CONFIG_CHANGED=true

# ---------------------------------------------------------------------------
# 5. CNI network: a host-only bridge, no default route, no masquerade
# ---------------------------------------------------------------------------
[[ -x $KNODE_CNI_BIN_DIR/bridge && -x $KNODE_CNI_BIN_DIR/portmap && -x $KNODE_CNI_BIN_DIR/host-local ]] ||
    die "CNI plugins not found in $KNODE_CNI_BIN_DIR"
CNI_VERSION=$(CNI_COMMAND=VERSION "$KNODE_CNI_BIN_DIR/bridge" </dev/null |
    jq -r 'if (.supportedVersions | index("1.0.0")) then "1.0.0" else "0.4.0" end')

write_if_changed "$KNODE_CNI_CONF_DIR/10-knode.conflist" "CNI config (cniVersion $CNI_VERSION)" <<EOF || true
{
  "cniVersion": "$CNI_VERSION",
  "name": "$CNI_NETWORK_NAME",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$KNODE_BRIDGE",
      "isGateway": true,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$KNODE_POD_SUBNET", "gateway": "$KNODE_POD_GATEWAY" }]],
        "routes": [{ "dst": "$KNODE_POD_ROUTE" }]
      }
    },
    {
      "type": "portmap",
      "capabilities": { "portMappings": true }
    }
  ]
}
EOF

# ---------------------------------------------------------------------------
# 6. start our containerd
# ---------------------------------------------------------------------------
print_log_tail() {
    echo "---- last lines of $KNODE_CONTAINERD_LOG ----" >&2
    tail -n 40 "$KNODE_CONTAINERD_LOG" >&2 || true
    echo "----" >&2
}

start_containerd() {
    local i pid
    if pid=$(containerd_pid); then
        warn "containerd pid $pid does not answer on $KNODE_CONTAINERD_SOCK; restarting it"
        stop_containerd
    fi
    say "starting containerd (log: $KNODE_CONTAINERD_LOG)"
    {
        echo
        echo "==== $(date -Is) started by hack/node-env.sh ===="
    } >>"$KNODE_CONTAINERD_LOG"
    # Its bin dir first on PATH, so it starts the shim of its own release.
    PATH="$CONTAINERD_BIN_DIR:$PATH" setsid "$CONTAINERD_BIN" --config "$KNODE_CONTAINERD_CONFIG" </dev/null >>"$KNODE_CONTAINERD_LOG" 2>&1 &
    pid=$!
    echo "$pid" >"$KNODE_CONTAINERD_PIDFILE"
    for ((i = 0; i < 300; i++)); do
        if containerd_answers; then
            say "containerd is up (pid $pid) after $((i / 10)).$((i % 10)) s"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            print_log_tail
            rm -f "$KNODE_CONTAINERD_PIDFILE"
            die "containerd exited during startup"
        fi
        sleep 0.1
    done
    print_log_tail
    die "containerd did not answer on $KNODE_CONTAINERD_SOCK within 30 s"
}

if containerd_answers; then
    if $CONFIG_CHANGED; then
        if containerd_pid >/dev/null; then
            say "containerd config changed: restarting containerd"
            stop_containerd
            start_containerd
        else
            warn "config changed but the containerd on $KNODE_CONTAINERD_SOCK was not started by this script; restart it yourself"
        fi
    elif running_bin=$(containerd_pid --binary) && [[ $running_bin != "$CONTAINERD_BIN" ]]; then
        say "containerd runs $running_bin, not $CONTAINERD_BIN: restarting it"
        stop_containerd
        start_containerd
    else
        say "containerd already running on $KNODE_CONTAINERD_SOCK (pid $(containerd_pid || echo '?'))"
    fi
else
    start_containerd
fi

# The CRI plugin must have loaded: `ctr plugins ls` prints "ok" or "error".
cri_status=$(ctr -a "$KNODE_CONTAINERD_SOCK" plugins ls | awk '$1 == "io.containerd.grpc.v1" && $2 == "cri" { print $NF }')
if [[ $cri_status != ok ]]; then
    print_log_tail
    die "containerd's CRI plugin did not load (status: '${cri_status:-missing}')"
fi
say "CRI plugin loaded (snapshotter $SNAPSHOTTER)"

# ---------------------------------------------------------------------------
# 7. import the images into our containerd's k8s.io namespace
# ---------------------------------------------------------------------------
import_image() {
    local ref=$1 base=$2
    local tar="$KNODE_IMAGE_CACHE/$base.tar" want have
    want=$(tar -xOf "$tar" index.json | jq -r '.manifests[0].digest')
    have=$(knode_ctr images ls | awk -v r="$ref" '$1 == r { print $3 }')
    if [[ $have == "$want" ]]; then
        say "image $ref already in containerd ($want)"
        return 0
    fi
    if [[ -n $have ]]; then
        # A rebuilt image: drop every name (including the CRI's sha256:<id>
        # alias) that still points at the old manifest.
        say "replacing stale $ref ($have) in containerd"
        knode_ctr images ls | awk -v d="$have" 'NR > 1 && $3 == d { print $1 }' |
            xargs -r ctr -a "$KNODE_CONTAINERD_SOCK" -n "$KNODE_CONTAINERD_NAMESPACE" images rm >/dev/null
    fi
    say "importing $ref into containerd namespace $KNODE_CONTAINERD_NAMESPACE"
    knode_ctr images import --snapshotter "$SNAPSHOTTER" "$tar" >/dev/null
    have=$(knode_ctr images ls | awk -v r="$ref" '$1 == r { print $3 }')
    [[ $have == "$want" ]] || die "import of $ref failed: containerd has '${have:-nothing}', expected $want"
}

import_image "$KNODE_BUSYBOX_IMAGE" busybox
import_image "$KNODE_PAUSE_IMAGE" pause

say "ready: containerd socket $KNODE_CONTAINERD_SOCK (namespace $KNODE_CONTAINERD_NAMESPACE; images $KNODE_BUSYBOX_IMAGE, $KNODE_PAUSE_IMAGE)"
echo "$KNODE_CONTAINERD_SOCK"

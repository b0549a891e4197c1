# shellcheck shell=bash
# The node under test for hack/conformance.sh: either kubelet runs as node
# $KNODE_CP_NODE_NAME against our containerd and the harness control plane,
# started the same way for both: the same flags and the same
# KubeletConfiguration (upstream_kubelet_config of control-plane-kubelet.sh,
# i.e. the harness's upstream baseline) with what node e2e assumes on top:
# root dir /var/lib/kubelet, cgroup root / (the QoS specs look for /kubepods),
# the read-only port 10255 and a static pod directory. Source it after
# control-plane-{common,pki,proc,components,kubelet}.sh, conformance-common.sh
# and conformance-configz-shim.sh.
#
#   ours      $KNODE_KUBELET_BIN (default $CARGO_TARGET_DIR/release/kubelet)
#   upstream  $KNODE_K8S_BIN_DIR/kubelet (the pinned release)
#
# The process is "conformance-kubelet" (pidfile and log as the harness's
# components: $KNODE_CP_RUN_DIR, $KNODE_CP_LOG_DIR).

# Our kubelet is rebuilt (incrementally) before every run unless KNODE_KUBELET_BIN names one.
KNODE_KUBELET_BIN_GIVEN=${KNODE_KUBELET_BIN:+1}
KNODE_KUBELET_BIN="${KNODE_KUBELET_BIN:-$CARGO_TARGET_DIR/release/kubelet}"
CONFORMANCE_KUBELET_ROOT=$KNODE_CONFORMANCE_KUBELET_ROOT
CONFORMANCE_KUBELET_MARKER="--root-dir=$CONFORMANCE_KUBELET_ROOT"
CONFORMANCE_KUBELET_CONFIG="$KNODE_CONFORMANCE_DIR/kubelet-config.yaml"
CONFORMANCE_READ_ONLY_PORT=10255
# true: knode's kubelet listens on 127.0.0.1 and knode-configz-shim fronts it on
# the node address (hack/lib/conformance-configz-shim.sh).
CONFORMANCE_CONFIGZ_SHIM=${CONFORMANCE_CONFIGZ_SHIM:-false}

# node e2e's ContainerMetrics spec reads http://localhost:10255/metrics/cadvisor
# while both kubelets serve the read-only port on the node address: a loopback
# TCP forwarder (python3, for either kubelet) bridges the two for the run.
READ_ONLY_FORWARD_PY="$KNODE_CONFORMANCE_DIR/read-only-forward.py"
READ_ONLY_FORWARD_MARKER="--forward-marker=$KNODE_CONFORMANCE_DIR"

read_only_forward_up() {
    mkdir -p "$KNODE_CONFORMANCE_DIR"
    cat >"$READ_ONLY_FORWARD_PY" <<'PY'
# Forwards TCP connections from LISTEN_HOST:PORT to TO_HOST:PORT (both directions).
import asyncio
import sys

listen_host, listen_port, to_host, to_port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def handle(reader, writer):
    try:
        up_reader, up_writer = await asyncio.open_connection(to_host, to_port)
    except OSError:
        writer.close()
        return
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)


async def main():
    server = await asyncio.start_server(handle, listen_host, listen_port)
    async with server:
        await server.serve_forever()


asyncio.run(main())
PY
    proc_pid read-only-forward /usr/bin/python3 "$READ_ONLY_FORWARD_MARKER" >/dev/null && return 0
    proc_start read-only-forward /usr/bin/python3 "$READ_ONLY_FORWARD_PY" \
        127.0.0.1 "$CONFORMANCE_READ_ONLY_PORT" "$KNODE_CP_NODE_IP" "$CONFORMANCE_READ_ONLY_PORT" "$READ_ONLY_FORWARD_MARKER"
}

read_only_forward_down() {
    proc_stop read-only-forward /usr/bin/python3 "$READ_ONLY_FORWARD_MARKER"
}

conformance_kubelet_bin() {
    case "$1" in
        ours) echo "$KNODE_KUBELET_BIN" ;;
        upstream) echo "$KNODE_K8S_BIN_DIR/kubelet" ;;
    esac
}

conformance_kubelet_log() { echo "$KNODE_CP_LOG_DIR/conformance-kubelet.log"; }

# The KubeletConfiguration both kubelets get.
conformance_kubelet_config() {
    # shellcheck disable=SC2030,SC2034 # read by upstream_kubelet_config in this subshell
    (
        UPSTREAM_KUBELET_ROOT=$CONFORMANCE_KUBELET_ROOT
        UPSTREAM_KUBELET_CGROUP_ROOT=""
        if $CONFORMANCE_CONFIGZ_SHIM; then KNODE_CP_NODE_IP=127.0.0.1; fi
        KNODE_UPSTREAM_KUBELET_READ_ONLY_PORT=$CONFORMANCE_READ_ONLY_PORT
        KNODE_UPSTREAM_KUBELET_EXTRA_CONFIG="staticPodPath: $KNODE_CONFORMANCE_STATIC_PODS"
        upstream_kubelet_config
    )
}

conformance_kubelet_pid() {
    proc_pid conformance-kubelet "$(conformance_kubelet_bin "$1")" "$CONFORMANCE_KUBELET_MARKER"
}

# The kubepods trees the kubelets create (cgroup root /), in every hierarchy.
conformance_kubepods_cgroups() {
    local d
    if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
        echo /sys/fs/cgroup/kubepods
        return 0
    fi
    for d in /sys/fs/cgroup/*/; do
        d=${d%/}
        mountpoint -q "$d" && echo "$d/kubepods"
    done
}

# conformance_node_busy: fails (with a reason on stderr) when something else
# may be using node $KNODE_CP_NODE_NAME or our containerd's pods.
conformance_node_busy() {
    local p others=() nodes
    if upstream_kubelet_pid >/dev/null 2>&1; then
        echo "the harness's upstream kubelet runs (hack/control-plane.sh kubelet-down stops it)" >&2
        return 0
    fi
    for p in $(pgrep -x kubelet 2>/dev/null || true); do others+=("$p"); done
    if ((${#others[@]})); then
        echo "kubelet processes run: $(for p in "${others[@]}"; do tr '\0' ' ' <"/proc/$p/cmdline" | cut -c1-100; echo; done)" >&2
        return 0
    fi
    nodes=$(kc get nodes -o name 2>/dev/null || true)
    if [[ -n $nodes && $nodes != "node/$KNODE_CP_NODE_NAME" ]]; then
        echo "the cluster has other nodes ($(tr '\n' ' ' <<<"$nodes")); the node suite needs exactly one" >&2
        return 0
    fi
    return 1
}

# The test namespaces, RuntimeClass, API pods and Node object left by a run,
# and the node's static pods.
conformance_clean_api() {
    rm -rf "$KNODE_CONFORMANCE_STATIC_PODS"
    mkdir -p "$KNODE_CONFORMANCE_STATIC_PODS"
    if [[ -n $(kc get namespaces -l e2e-framework -o name 2>/dev/null) ]]; then
        say "deleting the e2e framework's namespaces left by a run"
        kc delete namespaces -l e2e-framework --wait=false >/dev/null 2>&1 || warn "could not delete e2e namespaces"
    fi
    # Node e2e's PodOverhead spec creates the cluster-scoped RuntimeClass
    # test-handler and leaves it; the next run's spec would fail to create it.
    if kc get runtimeclass test-handler >/dev/null 2>&1; then
        say "deleting the RuntimeClass test-handler left by a run"
        kc delete runtimeclass test-handler --wait=false >/dev/null 2>&1 || warn "could not delete RuntimeClass test-handler"
    fi
    if [[ -n $(kc get pods -A --field-selector "spec.nodeName=$KNODE_CP_NODE_NAME" -o name 2>/dev/null) ]]; then
        say "force-deleting the API pods bound to $KNODE_CP_NODE_NAME"
        kc delete pods -A --field-selector "spec.nodeName=$KNODE_CP_NODE_NAME" \
            --force --grace-period=0 --wait=false >/dev/null 2>&1 || warn "could not delete pods of $KNODE_CP_NODE_NAME"
    fi
    if kc get node "$KNODE_CP_NODE_NAME" >/dev/null 2>&1; then
        say "deleting Node $KNODE_CP_NODE_NAME"
        kc delete node "$KNODE_CP_NODE_NAME" --wait=true --timeout=60s >/dev/null || true
    fi
}

# shellcheck disable=SC2031 # the global KNODE_CP_NODE_IP, not conformance_kubelet_config's
conformance_kubelet_up() {
    local kind=$1 bin i
    bin=$(conformance_kubelet_bin "$kind")
    # A stale build of ours would measure old code: cargo decides what is up to date.
    if [[ ! -x $bin || ( $kind == ours && -z $KNODE_KUBELET_BIN_GIVEN ) ]]; then
        case "$kind" in
            ours)
                say "building knode's kubelet (cargo build --release -p kubelet-cmd)"
                (cd "$KNODE_REPO_ROOT" && CARGO_TARGET_DIR=$CARGO_TARGET_DIR cargo build --release -p kubelet-cmd) ||
                    die "cargo build --release -p kubelet-cmd failed"
                ;;
            upstream) bash "$KNODE_REPO_ROOT/hack/build-upstream.sh" ;;
        esac
    fi
    if conformance_kubelet_pid "$kind" >/dev/null; then
        say "$kind kubelet already running (pid $(conformance_kubelet_pid "$kind"))"
        return 0
    fi
    cp_ensure_node_iface
    mkdir -p "$CONFORMANCE_KUBELET_ROOT/volume-plugins" "$KNODE_CONFORMANCE_STATIC_PODS"
    conformance_kubelet_config >"$CONFORMANCE_KUBELET_CONFIG"
    if $CONFORMANCE_CONFIGZ_SHIM; then configz_shim_up "$CONFORMANCE_KUBELET_CONFIG"; fi
    proc_start conformance-kubelet "$bin" \
        "$CONFORMANCE_KUBELET_MARKER" \
        --config="$CONFORMANCE_KUBELET_CONFIG" \
        --kubeconfig="$KNODE_CP_NODE_KUBECONFIG" \
        --hostname-override="$KNODE_CP_NODE_NAME" \
        --node-ip="$KNODE_CP_NODE_IP" \
        --v=2
    if ! $CONFORMANCE_CONFIGZ_SHIM; then read_only_forward_up; fi
    say "waiting (up to 120 s) for node $KNODE_CP_NODE_NAME to be Ready ($kind kubelet)"
    for ((i = 0; i < 240; i++)); do
        upstream_kubelet_node_ready && break
        if ! conformance_kubelet_pid "$kind" >/dev/null; then
            tail -n 30 "$(conformance_kubelet_log)" >&2
            die "the $kind kubelet exited (log: $(conformance_kubelet_log))"
        fi
        sleep 0.5
    done
    upstream_kubelet_node_ready ||
        die "node $KNODE_CP_NODE_NAME not Ready after 120 s (log: $(conformance_kubelet_log))"
    say "node $KNODE_CP_NODE_NAME Ready ($kind kubelet)"
}

conformance_kubelet_down() {
    local kind=$1 bin uids=() d
    bin=$(conformance_kubelet_bin "$kind")
    # The pods it ran: its pod directories, and the API pods bound to the node.
    if [[ -d $CONFORMANCE_KUBELET_ROOT/pods ]]; then
        for d in "$CONFORMANCE_KUBELET_ROOT"/pods/*/; do
            [[ -d $d ]] && uids+=("$(basename "$d")")
        done
    fi
    mapfile -t -O "${#uids[@]}" uids < <(kc get pods -A --field-selector "spec.nodeName=$KNODE_CP_NODE_NAME" \
        -o jsonpath='{range .items[*]}{.metadata.uid}{"\n"}{end}' 2>/dev/null || true)
    if $CONFORMANCE_CONFIGZ_SHIM; then configz_shim_down; fi
    read_only_forward_down
    proc_stop conformance-kubelet "$bin" "$CONFORMANCE_KUBELET_MARKER"
    proc_kill_strays conformance-kubelet "$bin" "$CONFORMANCE_KUBELET_MARKER"
    if ((${#uids[@]})) && [[ -x $CRI_RMP_BIN ]]; then
        say "removing the sandboxes of the pods the $kind kubelet ran"
        "$CRI_RMP_BIN" -endpoint "$KNODE_CONTAINERD_SOCK" "${uids[@]}" | sed 's/^/    /' ||
            warn "some sandboxes could not be removed"
    fi
    kubelet_root_dir_remove "$CONFORMANCE_KUBELET_ROOT"
    # The (now empty) kubepods cgroups; nothing outside them.
    # shellcheck disable=SC2046 # one path per line, no spaces
    empty_cgroups_remove $(conformance_kubepods_cgroups)
    conformance_clean_api
    say "$kind kubelet stopped and cleaned up"
}

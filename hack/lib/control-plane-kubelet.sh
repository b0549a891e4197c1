# shellcheck shell=bash
# The UPSTREAM kubelet (the pinned release, 1.37) as node $KNODE_CP_NODE_NAME against our
# containerd: the baseline for side-by-side comparisons with knode. Source it
# after control-plane-{common,pki,proc}.sh and control-plane-components.sh.
#
# Its state stays apart from knode's: root dir $UPSTREAM_KUBELET_ROOT, cgroup
# root /$UPSTREAM_KUBELET_CGROUP_ROOT in every v1 hierarchy. kubelet-down stops it,
# removes the sandboxes of every pod it ran through CRI (knode-cri-rmp, built by
# hack/build-upstream.sh), unmounts and deletes its root dir and cgroups, and
# force-deletes the API pods bound to the node and deletes its Node object.

UPSTREAM_KUBELET_BIN="$KNODE_K8S_BIN_DIR/kubelet"
UPSTREAM_KUBELET_ROOT="${KNODE_UPSTREAM_KUBELET_ROOT:-/var/lib/knode/upstream-kubelet}"
UPSTREAM_KUBELET_CGROUP_ROOT="${KNODE_UPSTREAM_KUBELET_CGROUP_ROOT:-knode-upstream-kubelet}"
UPSTREAM_KUBELET_MARKER="--root-dir=$UPSTREAM_KUBELET_ROOT"
UPSTREAM_KUBELET_HEALTHZ_PORT=10248
CRI_RMP_BIN="$KNODE_K8S_BIN_DIR/knode-cri-rmp"

upstream_kubelet_pid() {
    proc_pid upstream-kubelet "$UPSTREAM_KUBELET_BIN" "$UPSTREAM_KUBELET_MARKER"
}

upstream_kubelet_strays() {
    proc_strays "$UPSTREAM_KUBELET_BIN" "$UPSTREAM_KUBELET_MARKER"
}

# The kubelet's cgroup root in every mounted hierarchy (cgroupfs driver; on
# this hybrid v1 host runc also creates it in the v2 "unified" one).
upstream_kubelet_cgroup_dirs() {
    local d
    if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
        echo "/sys/fs/cgroup/$UPSTREAM_KUBELET_CGROUP_ROOT"
        return 0
    fi
    for d in /sys/fs/cgroup/*/; do
        d=${d%/}
        mountpoint -q "$d" && echo "$d/$UPSTREAM_KUBELET_CGROUP_ROOT"
    done
}

upstream_kubelet_node_ready() {
    kc get node "$KNODE_CP_NODE_NAME" \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True
}

# The upstream kubelet's KubeletConfiguration: cgroupfs on this cgroup v1 host
# (1.35+ refuses v1 unless failCgroupV1 is false: set for upstream's kubelet only),
# TLS serving with our CA's certificate, webhook authn/authz, no read-only port
# (KNODE_UPSTREAM_KUBELET_READ_ONLY_PORT opens one; KNODE_UPSTREAM_KUBELET_EXTRA_CONFIG
# appends YAML lines; KNODE_UPSTREAM_KUBELET_MEMORY_AVAILABLE sets evictionHard's
# memory.available, 100Mi by default).
upstream_kubelet_config() {
    local p=$KNODE_CP_PKI
    cat <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
containerRuntimeEndpoint: unix://$KNODE_CONTAINERD_SOCK
runtimeRequestTimeout: 2m
cgroupDriver: cgroupfs
cgroupRoot: /$UPSTREAM_KUBELET_CGROUP_ROOT
failSwapOn: false
address: $KNODE_CP_NODE_IP
port: 10250
readOnlyPort: ${KNODE_UPSTREAM_KUBELET_READ_ONLY_PORT:-0}
healthzBindAddress: 127.0.0.1
healthzPort: $UPSTREAM_KUBELET_HEALTHZ_PORT
tlsCertFile: $p/kubelet-serving-$KNODE_CP_NODE_NAME.crt
tlsPrivateKeyFile: $p/kubelet-serving-$KNODE_CP_NODE_NAME.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $p/ca.crt}
authorization: {mode: Webhook}
clusterDNS: [$KNODE_CP_CLUSTER_DNS]
clusterDomain: $KNODE_CP_CLUSTER_DOMAIN
makeIPTablesUtilChains: false
volumePluginDir: $UPSTREAM_KUBELET_ROOT/volume-plugins
evictionHard:
  memory.available: ${KNODE_UPSTREAM_KUBELET_MEMORY_AVAILABLE:-100Mi}
  nodefs.available: "0%"
  nodefs.inodesFree: "0%"
  imagefs.available: "0%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
${KNODE_UPSTREAM_KUBELET_EXTRA_CONFIG:-}
EOF
}

upstream_kubelet_up() {
    local pid d p=$KNODE_CP_PKI i
    CP_KUBECTL=$(cp_kubectl_bin) || die "no kubectl"
    cp_apiserver_ready || die "the control plane is not up: run hack/control-plane.sh up first"
    bash "$KNODE_REPO_ROOT/hack/build-upstream.sh"
    if pid=$(upstream_kubelet_pid); then
        say "upstream kubelet already running (pid $pid)"
        return 0
    fi
    if ! timeout 5 ctr -a "$KNODE_CONTAINERD_SOCK" version >/dev/null 2>&1; then
        say "our containerd is not up: running hack/node-env.sh"
        bash "$KNODE_REPO_ROOT/hack/node-env.sh"
    fi
    cp_ensure_node_iface
    mkdir -p "$UPSTREAM_KUBELET_ROOT/volume-plugins"
    # --cgroup-root must exist in every hierarchy before the kubelet starts.
    for d in $(upstream_kubelet_cgroup_dirs); do mkdir -p "$d"; done
    upstream_kubelet_config >"$UPSTREAM_KUBELET_ROOT/config.yaml"
    proc_start upstream-kubelet "$UPSTREAM_KUBELET_BIN" \
        "$UPSTREAM_KUBELET_MARKER" \
        --config="$UPSTREAM_KUBELET_ROOT/config.yaml" \
        --kubeconfig="$KNODE_CP_NODE_KUBECONFIG" \
        --hostname-override="$KNODE_CP_NODE_NAME" \
        --node-ip="$KNODE_CP_NODE_IP" \
        --v=1
    say "waiting (up to 120 s) for node $KNODE_CP_NODE_NAME to be Ready"
    for ((i = 0; i < 240; i++)); do
        upstream_kubelet_node_ready && break
        if ! upstream_kubelet_pid >/dev/null; then
            tail -n 30 "$KNODE_CP_LOG_DIR/upstream-kubelet.log" >&2
            die "the upstream kubelet exited (log: $KNODE_CP_LOG_DIR/upstream-kubelet.log)"
        fi
        sleep 0.5
    done
    upstream_kubelet_node_ready ||
        die "node $KNODE_CP_NODE_NAME not Ready after 120 s (log: $KNODE_CP_LOG_DIR/upstream-kubelet.log)"
    say "node $KNODE_CP_NODE_NAME Ready (upstream kubelet $KNODE_K8S_VERSION)"
}

# kubelet_root_dir_remove ROOT: unmounts what a kubelet left below its root
# dir (volume mounts, secrets, projected tokens), deepest first, then the root
# dir itself (a kubelet bind-mounts it onto itself, maybe more than once), and
# deletes it. Shared by kubelet-down and hack/conformance.sh.
kubelet_root_dir_remove() {
    local root=$1
    [[ -d $root ]] || return 0
    awk -v r="$root" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts |
        sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
    while grep -q " $root " /proc/self/mounts; do
        umount -l "$root" || break
    done
    say "removing $root"
    rm -rf "$root"
}

# empty_cgroups_remove DIR...: removes each (now empty) cgroup tree, deepest first.
empty_cgroups_remove() {
    local d
    for d in "$@"; do
        [[ -d $d ]] || continue
        find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || warn "cgroup $d not empty: leaving it"
    done
}

upstream_kubelet_down() {
    local uids=() d
    proc_stop upstream-kubelet "$UPSTREAM_KUBELET_BIN" "$UPSTREAM_KUBELET_MARKER"
    proc_kill_strays upstream-kubelet "$UPSTREAM_KUBELET_BIN" "$UPSTREAM_KUBELET_MARKER"

    # Every pod the kubelet ran has a directory named by its UID.
    if [[ -d $UPSTREAM_KUBELET_ROOT/pods ]]; then
        for d in "$UPSTREAM_KUBELET_ROOT"/pods/*/; do
            [[ -d $d ]] && uids+=("$(basename "$d")")
        done
    fi
    if ((${#uids[@]})); then
        if [[ -x $CRI_RMP_BIN ]] && timeout 5 ctr -a "$KNODE_CONTAINERD_SOCK" version >/dev/null 2>&1; then
            say "removing the sandboxes of ${#uids[@]} pod(s) the upstream kubelet ran"
            "$CRI_RMP_BIN" -endpoint "$KNODE_CONTAINERD_SOCK" "${uids[@]}" | sed 's/^/    /' ||
                warn "some sandboxes could not be removed"
        else
            warn "containerd or $CRI_RMP_BIN unavailable: pod sandboxes of ${uids[*]} not removed"
        fi
    fi

    kubelet_root_dir_remove "$UPSTREAM_KUBELET_ROOT"
    # shellcheck disable=SC2046 # one path per line, no spaces
    empty_cgroups_remove $(upstream_kubelet_cgroup_dirs)

    # shellcheck disable=SC2034 # CP_KUBECTL is read by kc
    if CP_KUBECTL=$(cp_kubectl_bin) && [[ -f $KNODE_CP_ADMIN_KUBECONFIG ]] && cp_apiserver_ready; then
        # The pod GC would take a minute or more to drop pods of a deleted node:
        # force-delete them now (their controllers create Pending replacements).
        if [[ -n $(kc get pods -A --field-selector "spec.nodeName=$KNODE_CP_NODE_NAME" -o name 2>/dev/null) ]]; then
            say "force-deleting the API pods bound to $KNODE_CP_NODE_NAME"
            kc delete pods -A --field-selector "spec.nodeName=$KNODE_CP_NODE_NAME" \
                --force --grace-period=0 --wait=false >/dev/null 2>&1 || warn "could not delete pods of $KNODE_CP_NODE_NAME"
        fi
        if kc get node "$KNODE_CP_NODE_NAME" >/dev/null 2>&1; then
            say "deleting Node $KNODE_CP_NODE_NAME"
            kc delete node "$KNODE_CP_NODE_NAME" --wait=false >/dev/null
        fi
    fi
    say "upstream kubelet stopped and cleaned up"
}

# shellcheck shell=bash
# kube-proxy for the cluster suite of hack/conformance.sh: knode's
# ($CARGO_TARGET_DIR/release/kube-proxy) beside knode's kubelet, upstream's
# ($KNODE_K8S_BIN_DIR/kube-proxy) beside upstream's; the same
# KubeProxyConfiguration for both (nftables mode, node knode-node, health and
# metrics on loopback). Source it after control-plane-{common,proc}.sh and
# conformance-common.sh.

KNODE_PROXY_BIN="${KNODE_PROXY_BIN:-$CARGO_TARGET_DIR/release/kube-proxy}"
UPSTREAM_PROXY_BIN="$KNODE_K8S_BIN_DIR/kube-proxy"
CONFORMANCE_PROXY_CONFIG="$KNODE_CONFORMANCE_DIR/kube-proxy-config.yaml"
CONFORMANCE_PROXY_MARKER="--config=$CONFORMANCE_PROXY_CONFIG"

conformance_proxy_bin() {
    case "$1" in
        ours) echo "$KNODE_PROXY_BIN" ;;
        upstream) echo "$UPSTREAM_PROXY_BIN" ;;
    esac
}

conformance_proxy_config() {
    cat <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $KNODE_CP_ADMIN_KUBECONFIG
hostnameOverride: $KNODE_CP_NODE_NAME
clusterCIDR: $KNODE_CP_CLUSTER_CIDR
mode: nftables
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [$KNODE_CP_NODE_IP/32]
conntrack:
  maxPerCore: 0
EOF
}

conformance_proxy_up() {
    local kind=$1 bin pid
    bin=$(conformance_proxy_bin "$kind")
    if [[ ! -x $bin ]]; then
        case "$kind" in
            ours)
                say "building knode's kube-proxy (cargo build --release -p kube-proxy-cmd)"
                (cd "$KNODE_REPO_ROOT" && cargo build --release -p kube-proxy-cmd) ||
                    die "cargo build --release -p kube-proxy-cmd failed"
                ;;
            upstream) bash "$KNODE_REPO_ROOT/hack/build-upstream.sh" ;;
        esac
    fi
    if pid=$(proc_pid "$kind-kube-proxy" "$bin" "$CONFORMANCE_PROXY_MARKER"); then
        say "$kind kube-proxy already running (pid $pid)"
        return 0
    fi
    conformance_proxy_config >"$CONFORMANCE_PROXY_CONFIG"
    proc_start "$kind-kube-proxy" "$bin" "$CONFORMANCE_PROXY_MARKER" --v=2
    wait_for 60 curl -fsS --max-time 2 http://127.0.0.1:10256/healthz ||
        { tail -n 20 "$KNODE_CP_LOG_DIR/$kind-kube-proxy.log" >&2; die "$kind kube-proxy not healthy after 60 s"; }
    say "$kind kube-proxy healthy"
}

conformance_proxy_down() {
    local kind=$1 bin
    bin=$(conformance_proxy_bin "$kind")
    proc_stop "$kind-kube-proxy" "$bin" "$CONFORMANCE_PROXY_MARKER"
    proc_kill_strays "$kind-kube-proxy" "$bin" "$CONFORMANCE_PROXY_MARKER"
    # Leave no Service rules behind: both proxies clean up with --cleanup.
    "$bin" --cleanup >/dev/null 2>&1 || warn "$kind kube-proxy --cleanup failed"
}

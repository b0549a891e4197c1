# shellcheck shell=bash
# The control plane's components and the up/down/status/env commands of
# hack/control-plane.sh. Source it after control-plane-{common,pki,proc}.sh.

CP_ETCD_BIN=/usr/bin/etcd
CP_APISERVER_BIN="$KNODE_K8S_BIN_DIR/kube-apiserver"
CP_CM_BIN="$KNODE_K8S_BIN_DIR/kube-controller-manager"
CP_SCHED_BIN="$KNODE_K8S_BIN_DIR/kube-scheduler"
CP_ETCD_URL="http://127.0.0.1:$KNODE_CP_ETCD_CLIENT_PORT"

# Marker arguments: each identifies our instance of a component (see proc_pid).
CP_ETCD_MARKER="--data-dir=$KNODE_CP_ETCD_DATA"
CP_APISERVER_MARKER="--tls-cert-file=$KNODE_CP_PKI/apiserver.crt"
CP_CM_MARKER="--kubeconfig=$KNODE_CP_DIR/controller-manager.kubeconfig"
CP_SCHED_MARKER="--kubeconfig=$KNODE_CP_DIR/scheduler.kubeconfig"

# kubectl: $KNODE_KUBECTL, else upstream's of the pinned release (built by
# hack/build-upstream.sh), else the machine's.
cp_kubectl_bin() {
    if [[ -n ${KNODE_KUBECTL:-} ]]; then
        echo "$KNODE_KUBECTL"
    elif [[ -x $KNODE_K8S_BIN_DIR/kubectl ]]; then
        echo "$KNODE_K8S_BIN_DIR/kubectl"
    elif command -v kubectl >/dev/null 2>&1; then
        command -v kubectl
    else
        return 1
    fi
}

kc() { "$CP_KUBECTL" --kubeconfig "$KNODE_CP_ADMIN_KUBECONFIG" "$@"; }

# apt-get install without letting the packages start services: etcd-server's
# init script would otherwise start a second etcd on 127.0.0.1:2379.
cp_apt_install_no_start() {
    local policy=/usr/sbin/policy-rc.d ours=false rc=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# knode control-plane.sh: no service starts during install\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        ours=true
    fi
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1; then
        apt-get update -qq || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || rc=$?
    fi
    if $ours; then rm -f "$policy"; fi
    return "$rc"
}

cp_ensure_tools() {
    local missing=()
    [[ -x $CP_ETCD_BIN ]] || missing+=(etcd-server)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    if ((${#missing[@]})); then
        say "installing ${missing[*]}"
        cp_apt_install_no_start "${missing[@]}"
    fi
    # Idempotent: seconds when the cache is complete, ~8 min cold on 2 cores.
    bash "$KNODE_REPO_ROOT/hack/build-upstream.sh" --control-plane
    CP_KUBECTL=$(cp_kubectl_bin) || die "no kubectl found"
}

# The node's InternalIP lives on an empty bridge we create (this kernel has no
# dummy driver); nothing is attached to it, nothing routes off the machine.
cp_ensure_node_iface() {
    if ! ip link show "$KNODE_CP_NODE_IFACE" >/dev/null 2>&1; then
        say "creating bridge $KNODE_CP_NODE_IFACE for the node address"
        ip link add "$KNODE_CP_NODE_IFACE" type bridge
    fi
    ip link set "$KNODE_CP_NODE_IFACE" up
    if ! ip -4 -o addr show dev "$KNODE_CP_NODE_IFACE" | grep -qw "$KNODE_CP_NODE_IP"; then
        ip addr add "$KNODE_CP_NODE_IP/$KNODE_CP_NODE_IP_PREFIX" dev "$KNODE_CP_NODE_IFACE"
        say "node address $KNODE_CP_NODE_IP/$KNODE_CP_NODE_IP_PREFIX on $KNODE_CP_NODE_IFACE"
    fi
}

cp_etcd_healthy() { curl -fsS --max-time 2 "$CP_ETCD_URL/health" | grep -q '"health":"true"'; }
cp_apiserver_ready() { kc get --raw /readyz --request-timeout=3s 2>/dev/null | grep -qx ok; }
cp_secure_healthy() { curl -fsSk --max-time 2 "https://127.0.0.1:$1/healthz" | grep -qx ok; }

# Whether the running apiserver has the API-aggregation flags (an apiserver
# started before they were added has not: `up` does not restart a running one).
cp_apiserver_aggregation() {
    local pid args
    pid=$(proc_pid kube-apiserver "$CP_APISERVER_BIN" "$CP_APISERVER_MARKER") || return 1
    args=$(tr '\0' '\n' <"/proc/$pid/cmdline")
    grep -qxF -- --enable-aggregator-routing=true <<<"$args" &&
        grep -qxF -- "--proxy-client-cert-file=$KNODE_CP_PKI/front-proxy-client.crt" <<<"$args"
}

cp_start_etcd() {
    mkdir -p "$KNODE_CP_ETCD_DATA"
    chmod 0700 "$KNODE_CP_ETCD_DATA"
    proc_start etcd "$CP_ETCD_BIN" \
        --name=knode \
        "$CP_ETCD_MARKER" \
        --listen-client-urls="$CP_ETCD_URL" \
        --advertise-client-urls="$CP_ETCD_URL" \
        --listen-peer-urls="http://127.0.0.1:$KNODE_CP_ETCD_PEER_PORT" \
        --initial-advertise-peer-urls="http://127.0.0.1:$KNODE_CP_ETCD_PEER_PORT" \
        --initial-cluster="knode=http://127.0.0.1:$KNODE_CP_ETCD_PEER_PORT" \
        --initial-cluster-state=new \
        --snapshot-count=10000 \
        --logger=zap --log-outputs=stderr
}

# Audit: every request of a node (group system:nodes) once, when received, at
# Metadata level (user, verb, resource; no bodies: secrets never reach the log).
# The cluster benchmark counts one node's API requests per minute from it.
cp_write_audit_policy() {
    cat >"$KNODE_CP_DIR/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [ResponseStarted, ResponseComplete, Panic]
rules:
- level: Metadata
  userGroups: ["system:nodes"]
- level: None
EOF
}

# API aggregation (metrics-server, hack/metrics-server.sh): the front-proxy
# (requestheader) flags, and --enable-aggregator-routing so the aggregator dials
# an APIService's endpoint IP itself (no kube-proxy runs here).
cp_start_apiserver() {
    local p=$KNODE_CP_PKI
    cp_write_audit_policy
    proc_start kube-apiserver "$CP_APISERVER_BIN" \
        "$CP_APISERVER_MARKER" \
        --tls-private-key-file="$p/apiserver.key" \
        --bind-address="$KNODE_CP_APISERVER_BIND" \
        --advertise-address="$KNODE_CP_NODE_IP" \
        --secure-port="$KNODE_CP_APISERVER_PORT" \
        --etcd-servers="$CP_ETCD_URL" \
        --service-cluster-ip-range="$KNODE_CP_SERVICE_CIDR" \
        --authorization-mode=Node,RBAC \
        --enable-admission-plugins=NodeRestriction \
        --allow-privileged=true \
        --client-ca-file="$p/ca.crt" \
        --kubelet-client-certificate="$p/apiserver-kubelet-client.crt" \
        --kubelet-client-key="$p/apiserver-kubelet-client.key" \
        --kubelet-certificate-authority="$p/ca.crt" \
        --kubelet-preferred-address-types=InternalIP \
        --service-account-issuer="https://kubernetes.default.svc.$KNODE_CP_CLUSTER_DOMAIN" \
        --service-account-signing-key-file="$p/sa.key" \
        --service-account-key-file="$p/sa.pub" \
        --enable-bootstrap-token-auth=true \
        --requestheader-client-ca-file="$p/front-proxy-ca.crt" \
        --requestheader-allowed-names=front-proxy-client \
        --requestheader-extra-headers-prefix=X-Remote-Extra- \
        --requestheader-group-headers=X-Remote-Group \
        --requestheader-username-headers=X-Remote-User \
        --proxy-client-cert-file="$p/front-proxy-client.crt" \
        --proxy-client-key-file="$p/front-proxy-client.key" \
        --enable-aggregator-routing=true \
        --audit-policy-file="$KNODE_CP_DIR/audit-policy.yaml" \
        --audit-log-path="$KNODE_CP_LOG_DIR/audit-nodes.log" \
        --audit-log-maxsize=200 \
        --audit-log-maxbackup=1 \
        --profiling=false \
        --v=1
}

cp_start_controller_manager() {
    local p=$KNODE_CP_PKI kcfg="$KNODE_CP_DIR/controller-manager.kubeconfig"
    proc_start kube-controller-manager "$CP_CM_BIN" \
        "$CP_CM_MARKER" \
        --authentication-kubeconfig="$kcfg" \
        --authorization-kubeconfig="$kcfg" \
        --bind-address=127.0.0.1 \
        --secure-port="$KNODE_CP_CONTROLLER_MANAGER_PORT" \
        --cert-dir="$KNODE_CP_RUN_DIR/controller-manager-certs" \
        --leader-elect=false \
        --controllers='*,bootstrapsigner,tokencleaner' \
        --cluster-cidr="$KNODE_CP_CLUSTER_CIDR" \
        --allocate-node-cidrs=true \
        --node-cidr-mask-size="$KNODE_CP_NODE_CIDR_MASK" \
        --service-cluster-ip-range="$KNODE_CP_SERVICE_CIDR" \
        --root-ca-file="$p/ca.crt" \
        --service-account-private-key-file="$p/sa.key" \
        --use-service-account-credentials=true \
        --cluster-signing-cert-file="$p/ca.crt" \
        --cluster-signing-key-file="$p/ca.key" \
        --profiling=false \
        --v=1
}

cp_start_scheduler() {
    local kcfg="$KNODE_CP_DIR/scheduler.kubeconfig"
    proc_start kube-scheduler "$CP_SCHED_BIN" \
        "$CP_SCHED_MARKER" \
        --authentication-kubeconfig="$kcfg" \
        --authorization-kubeconfig="$kcfg" \
        --bind-address=127.0.0.1 \
        --secure-port="$KNODE_CP_SCHEDULER_PORT" \
        --cert-dir="$KNODE_CP_RUN_DIR/scheduler-certs" \
        --leader-elect=false \
        --profiling=false \
        --v=1
}

# cp_component NAME START_FN BIN MARKER HEALTH_FN WAIT_SECONDS [HEALTH_ARG]
cp_component() {
    local name=$1 start=$2 bin=$3 marker=$4 health=$5 secs=$6 arg=${7:-} pid
    if pid=$(proc_pid "$name" "$bin" "$marker"); then
        say "$name already running (pid $pid)"
    else
        proc_kill_strays "$name" "$bin" "$marker"
        "$start"
    fi
    if ! wait_for "$secs" "$health" ${arg:+"$arg"}; then
        tail -n 20 "$KNODE_CP_LOG_DIR/$name.log" >&2
        die "$name not healthy after $secs s (log: $KNODE_CP_LOG_DIR/$name.log)"
    fi
    say "$name healthy"
}

# RBAC for TLS bootstrap (as kubeadm sets it up) and the bootstrap token.
cp_apply_bootstrap() {
    local token id secret
    token=$(cat "$KNODE_CP_PKI/bootstrap-token")
    id=${token%%.*}
    secret=${token#*.}
    kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: bootstrap-token-$id
  namespace: kube-system
type: bootstrap.kubernetes.io/token
stringData:
  description: knode control-plane harness
  token-id: "$id"
  token-secret: "$secret"
  usage-bootstrap-authentication: "true"
  usage-bootstrap-signing: "true"
  auth-extra-groups: system:bootstrappers:knode
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: knode:kubelet-bootstrap
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:node-bootstrapper}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:bootstrappers}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: knode:node-autoapprove-bootstrap
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:certificates.k8s.io:certificatesigningrequests:nodeclient"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:bootstrappers}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: knode:node-autoapprove-certificate-rotation
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:nodes}]
EOF
    say "bootstrap token $id.* and TLS-bootstrap RBAC applied"
}

cp_all_running() {
    proc_pid etcd "$CP_ETCD_BIN" "$CP_ETCD_MARKER" >/dev/null &&
        proc_pid kube-apiserver "$CP_APISERVER_BIN" "$CP_APISERVER_MARKER" >/dev/null &&
        proc_pid kube-controller-manager "$CP_CM_BIN" "$CP_CM_MARKER" >/dev/null &&
        proc_pid kube-scheduler "$CP_SCHED_BIN" "$CP_SCHED_MARKER" >/dev/null
}

cp_up() {
    local start i
    start=$(date +%s)
    cp_ensure_tools
    mkdir -p "$KNODE_CP_DIR" "$KNODE_CP_LOG_DIR" "$KNODE_CP_RUN_DIR"
    ensure_pki
    cp_ensure_node_iface
    if cp_all_running && cp_apiserver_ready; then
        say "control plane already running and ready ($KNODE_CP_APISERVER_URL)"
        cp_apply_kubeadm
        cp_apiserver_aggregation ||
            warn "kube-apiserver was started without the API-aggregation flags (metrics-server needs them): run 'hack/control-plane.sh down && hack/control-plane.sh up' once"
        cp_print_env_hint
        return 0
    fi
    cp_component etcd cp_start_etcd "$CP_ETCD_BIN" "$CP_ETCD_MARKER" cp_etcd_healthy 30
    cp_component kube-apiserver cp_start_apiserver "$CP_APISERVER_BIN" "$CP_APISERVER_MARKER" cp_apiserver_ready 90
    cp_component kube-controller-manager cp_start_controller_manager "$CP_CM_BIN" "$CP_CM_MARKER" \
        cp_secure_healthy 60 "$KNODE_CP_CONTROLLER_MANAGER_PORT"
    cp_component kube-scheduler cp_start_scheduler "$CP_SCHED_BIN" "$CP_SCHED_MARKER" \
        cp_secure_healthy 60 "$KNODE_CP_SCHEDULER_PORT"
    say "waiting for the default service account"
    for ((i = 0; i < 120; i++)); do
        kc get serviceaccount default -n default >/dev/null 2>&1 && break
        sleep 0.5
    done
    kc get serviceaccount default -n default >/dev/null 2>&1 ||
        die "the default service account did not appear in 60 s (see $KNODE_CP_LOG_DIR/kube-controller-manager.log)"
    cp_apply_bootstrap
    cp_apply_kubeadm
    say "control plane ready in $(($(date +%s) - start)) s ($KNODE_CP_APISERVER_URL)"
    cp_print_env_hint
}

cp_print_env_hint() {
    say "use it with: eval \"\$(hack/control-plane.sh env)\"   (KUBECONFIG=$KNODE_CP_ADMIN_KUBECONFIG)"
}

cp_down() {
    local purge=$1
    if upstream_kubelet_pid >/dev/null 2>&1 || [[ -n $(upstream_kubelet_strays) ]]; then
        upstream_kubelet_down
    fi
    # metrics-server goes first, with its APIService, while the API still answers
    # (control-plane-metrics-server.sh; only control-plane.sh sources it).
    if declare -F ms_present >/dev/null && ms_present; then ms_down; fi
    proc_stop kube-scheduler "$CP_SCHED_BIN" "$CP_SCHED_MARKER"
    proc_stop kube-controller-manager "$CP_CM_BIN" "$CP_CM_MARKER"
    proc_stop kube-apiserver "$CP_APISERVER_BIN" "$CP_APISERVER_MARKER"
    proc_stop etcd "$CP_ETCD_BIN" "$CP_ETCD_MARKER"
    proc_kill_strays kube-scheduler "$CP_SCHED_BIN" "$CP_SCHED_MARKER"
    proc_kill_strays kube-controller-manager "$CP_CM_BIN" "$CP_CM_MARKER"
    proc_kill_strays kube-apiserver "$CP_APISERVER_BIN" "$CP_APISERVER_MARKER"
    proc_kill_strays etcd "$CP_ETCD_BIN" "$CP_ETCD_MARKER"
    if ip link show "$KNODE_CP_NODE_IFACE" >/dev/null 2>&1; then
        say "deleting bridge $KNODE_CP_NODE_IFACE"
        ip link del "$KNODE_CP_NODE_IFACE"
    fi
    if $purge && [[ -d $KNODE_CP_ETCD_DATA ]]; then
        say "wiping etcd data $KNODE_CP_ETCD_DATA"
        rm -rf "$KNODE_CP_ETCD_DATA"
    fi
    if $purge; then
        say "control plane stopped and purged (certificates kept in $KNODE_CP_PKI)"
    else
        say "control plane stopped (etcd data and certificates kept in $KNODE_CP_DIR)"
    fi
}

cp_status_line() {
    local name=$1 bin=$2 marker=$3 pid
    if pid=$(proc_pid "$name" "$bin" "$marker"); then
        printf '  %-24s running (pid %s)\n' "$name" "$pid"
    else
        printf '  %-24s stopped\n' "$name"
    fi
}

cp_status() {
    echo "control plane (Kubernetes $KNODE_K8S_VERSION, $KNODE_CP_APISERVER_URL):"
    cp_status_line etcd "$CP_ETCD_BIN" "$CP_ETCD_MARKER"
    cp_status_line kube-apiserver "$CP_APISERVER_BIN" "$CP_APISERVER_MARKER"
    cp_status_line kube-controller-manager "$CP_CM_BIN" "$CP_CM_MARKER"
    cp_status_line kube-scheduler "$CP_SCHED_BIN" "$CP_SCHED_MARKER"
    cp_status_line upstream-kubelet "$UPSTREAM_KUBELET_BIN" "$UPSTREAM_KUBELET_MARKER"
    if [[ -n ${MS_BIN:-} ]]; then cp_status_line metrics-server "$MS_BIN" "$MS_MARKER"; fi
    if ip -4 -o addr show dev "$KNODE_CP_NODE_IFACE" 2>/dev/null | grep -qw "$KNODE_CP_NODE_IP"; then
        printf '  %-24s %s on %s\n' "node address" "$KNODE_CP_NODE_IP" "$KNODE_CP_NODE_IFACE"
    else
        printf '  %-24s missing (%s on %s)\n' "node address" "$KNODE_CP_NODE_IP" "$KNODE_CP_NODE_IFACE"
    fi
    if CP_KUBECTL=$(cp_kubectl_bin) && [[ -f $KNODE_CP_ADMIN_KUBECONFIG ]] && cp_apiserver_ready; then
        printf '  %-24s ok\n' "/readyz"
        kc get nodes -o wide 2>/dev/null | sed 's/^/  /'
    else
        printf '  %-24s not ready\n' "/readyz"
        return 3
    fi
}

cp_env() {
    cat <<EOF
export KUBECONFIG=$KNODE_CP_ADMIN_KUBECONFIG
export KNODE_CP_NODE_KUBECONFIG=$KNODE_CP_NODE_KUBECONFIG
export KNODE_CP_BOOTSTRAP_KUBECONFIG=$KNODE_CP_DIR/bootstrap.kubeconfig
export KNODE_CP_NODE_NAME=$KNODE_CP_NODE_NAME
export KNODE_CP_NODE_IP=$KNODE_CP_NODE_IP
export KNODE_CP_PKI=$KNODE_CP_PKI
export KNODE_CP_APISERVER_URL=$KNODE_CP_APISERVER_URL
export KNODE_K8S_BIN_DIR=$KNODE_K8S_BIN_DIR
EOF
}

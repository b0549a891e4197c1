# shellcheck shell=bash
# metrics-server as a host process beside the control plane, reached by the
# apiserver's aggregator (`kubectl top`): the up/down/status commands of
# hack/metrics-server.sh, also used by `control-plane.sh down` and `status`.
# Source it after control-plane-{common,pki,proc,components}.sh.
#
# It listens on $KNODE_CP_NODE_IP:$KNODE_METRICS_SERVER_PORT with a serving
# certificate from our CA (the APIService's caBundle is that CA), talks to the
# API server and the kubelets as user knode-metrics-server (a client certificate
# from our CA), and checks the kubelets' serving certificates against our CA.
# Pidfile and log are the control plane's ($KNODE_CP_RUN_DIR, $KNODE_CP_LOG_DIR).

MS_BIN="$KNODE_METRICS_SERVER_BIN"
MS_KUBECONFIG="$KNODE_CP_DIR/metrics-server.kubeconfig"
# Marker argument: identifies our instance (see proc_pid).
MS_MARKER="--kubeconfig=$MS_KUBECONFIG"
MS_USER=knode-metrics-server
MS_URL="https://$KNODE_CP_NODE_IP:$KNODE_METRICS_SERVER_PORT"
MS_APISERVICE=v1beta1.metrics.k8s.io
# Every API object we create, in deletion order (the APIService first, so
# discovery stops sending requests to it before anything else goes away).
MS_OBJECTS=(
    "apiservice/$MS_APISERVICE"
    "-n kube-system endpointslice/metrics-server-knode"
    "-n kube-system service/metrics-server"
    "-n kube-system rolebinding/knode:metrics-server-auth-reader"
    "clusterrolebinding/knode:metrics-server:system:auth-delegator"
    "clusterrolebinding/knode:metrics-server"
    "clusterrole/knode:metrics-server"
    "clusterrole/system:aggregated-metrics-reader"
)

ms_pid() { proc_pid metrics-server "$MS_BIN" "$MS_MARKER"; }
ms_healthy() { curl -fsS --max-time 2 --cacert "$KNODE_CP_PKI/ca.crt" "$MS_URL/livez" 2>/dev/null | grep -qx ok; }
# Status of the APIService's Available condition (True/False/empty).
ms_available() {
    kc get apiservice "$MS_APISERVICE" --request-timeout=5s \
        -o jsonpath='{.status.conditions[?(@.type=="Available")].status}' 2>/dev/null
}

# Client certificate (the identity below), serving certificate for the node
# address and the Service's DNS names (the aggregator checks the latter), kubeconfig.
ms_ensure_pki() {
    [[ -f $KNODE_CP_PKI/ca.crt ]] || die "no CA in $KNODE_CP_PKI: run hack/control-plane.sh up first"
    pki_sign metrics-server "$MS_USER" "" "" clientAuth
    pki_sign metrics-server-serving metrics-server "" \
        "IP:$KNODE_CP_NODE_IP,IP:127.0.0.1,DNS:metrics-server.kube-system.svc,DNS:metrics-server.kube-system.svc.$KNODE_CP_CLUSTER_DOMAIN,DNS:metrics-server.kube-system,DNS:localhost" \
        serverAuth
    write_kubeconfig "$MS_KUBECONFIG" "$MS_USER" metrics-server
}

# RBAC: what metrics-server reads (nodes, pods; the kubelets' metrics and stats
# through their webhook authorization), delegated authn/authz
# (system:auth-delegator, the extension-apiserver-authentication ConfigMap),
# and a reader role for metrics.k8s.io aggregated into view/edit/admin.
ms_apply_rbac() {
    kc apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:aggregated-metrics-reader
  labels:
    app.kubernetes.io/managed-by: knode-harness
    rbac.authorization.k8s.io/aggregate-to-view: "true"
    rbac.authorization.k8s.io/aggregate-to-edit: "true"
    rbac.authorization.k8s.io/aggregate-to-admin: "true"
rules:
- apiGroups: [metrics.k8s.io]
  resources: [pods, nodes]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: knode:metrics-server
  labels: {app.kubernetes.io/managed-by: knode-harness}
rules:
- apiGroups: [""]
  resources: [nodes/metrics, nodes/stats]
  verbs: [get]
- apiGroups: [""]
  resources: [pods, nodes]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: knode:metrics-server
  labels: {app.kubernetes.io/managed-by: knode-harness}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "knode:metrics-server"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: $MS_USER}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: knode:metrics-server:system:auth-delegator
  labels: {app.kubernetes.io/managed-by: knode-harness}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:auth-delegator"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: $MS_USER}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: knode:metrics-server-auth-reader
  namespace: kube-system
  labels: {app.kubernetes.io/managed-by: knode-harness}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: extension-apiserver-authentication-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: $MS_USER}]
EOF
}

# A selectorless Service, its EndpointSlice (the host process on the node
# address: the aggregator dials it directly, --enable-aggregator-routing), and
# the APIService, whose caBundle is our CA.
ms_apply_api_objects() {
    local ca_data
    ca_data=$(base64 -w0 <"$KNODE_CP_PKI/ca.crt")
    kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata:
  name: metrics-server
  namespace: kube-system
  labels: {app.kubernetes.io/managed-by: knode-harness, app.kubernetes.io/name: metrics-server}
spec:
  ports:
  - {name: https, port: 443, protocol: TCP, targetPort: $KNODE_METRICS_SERVER_PORT}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: metrics-server-knode
  namespace: kube-system
  labels:
    app.kubernetes.io/managed-by: knode-harness
    kubernetes.io/service-name: metrics-server
    endpointslice.kubernetes.io/managed-by: knode-harness
addressType: IPv4
ports:
- {name: https, port: $KNODE_METRICS_SERVER_PORT, protocol: TCP}
endpoints:
- addresses: ["$KNODE_CP_NODE_IP"]
  conditions: {ready: true}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: $MS_APISERVICE
  labels: {app.kubernetes.io/managed-by: knode-harness, app.kubernetes.io/name: metrics-server}
spec:
  group: metrics.k8s.io
  version: v1beta1
  service: {name: metrics-server, namespace: kube-system, port: 443}
  caBundle: $ca_data
  groupPriorityMinimum: 100
  versionPriority: 100
EOF
}

ms_start() {
    local p=$KNODE_CP_PKI
    proc_start metrics-server "$MS_BIN" \
        "$MS_MARKER" \
        --authentication-kubeconfig="$MS_KUBECONFIG" \
        --authorization-kubeconfig="$MS_KUBECONFIG" \
        --bind-address="$KNODE_CP_NODE_IP" \
        --secure-port="$KNODE_METRICS_SERVER_PORT" \
        --tls-cert-file="$p/metrics-server-serving.crt" \
        --tls-private-key-file="$p/metrics-server-serving.key" \
        --kubelet-preferred-address-types=InternalIP \
        --kubelet-certificate-authority="$p/ca.crt" \
        --metric-resolution=15s \
        --profiling=false \
        --v=1
}

ms_up() {
    local start=$SECONDS pid i avail=""
    CP_KUBECTL=$(cp_kubectl_bin) || die "no kubectl found: run hack/control-plane.sh up first"
    if [[ ! -f $KNODE_CP_ADMIN_KUBECONFIG ]] || ! cp_apiserver_ready; then
        die "the API server is not ready: run hack/control-plane.sh up first"
    fi
    cp_apiserver_aggregation ||
        die "kube-apiserver runs without the API-aggregation flags (started before they were added): run 'hack/control-plane.sh down && hack/control-plane.sh up' once"
    bash "$KNODE_REPO_ROOT/hack/build-metrics-server.sh"
    mkdir -p "$KNODE_CP_RUN_DIR" "$KNODE_CP_LOG_DIR"
    ms_ensure_pki
    # RBAC before the process: its informers and delegated auth need it at once.
    ms_apply_rbac
    if pid=$(ms_pid); then
        say "metrics-server already running (pid $pid)"
    else
        proc_kill_strays metrics-server "$MS_BIN" "$MS_MARKER"
        ms_start
    fi
    if ! wait_for 30 ms_healthy; then
        tail -n 20 "$KNODE_CP_LOG_DIR/metrics-server.log" >&2
        die "metrics-server not healthy after 30 s (log: $KNODE_CP_LOG_DIR/metrics-server.log)"
    fi
    say "metrics-server healthy ($MS_URL)"
    ms_apply_api_objects
    say "waiting (up to 60 s) for APIService $MS_APISERVICE to be Available"
    for ((i = 0; i < 120; i++)); do
        avail=$(ms_available) || true
        [[ $avail == True ]] && break
        sleep 0.5
    done
    if [[ $avail != True ]]; then
        kc get apiservice "$MS_APISERVICE" -o jsonpath='{range .status.conditions[*]}{.type}={.status}: {.message}{"\n"}{end}' >&2 || true
        tail -n 20 "$KNODE_CP_LOG_DIR/metrics-server.log" >&2
        die "APIService $MS_APISERVICE not Available after 60 s (log: $KNODE_CP_LOG_DIR/metrics-server.log)"
    fi
    say "metrics-server ready in $((SECONDS - start)) s: APIService $MS_APISERVICE Available"
}

# Deletes our API objects (when the API server answers) and stops the process.
ms_down() {
    local o
    if CP_KUBECTL=$(cp_kubectl_bin) && [[ -f $KNODE_CP_ADMIN_KUBECONFIG ]] && cp_apiserver_ready; then
        say "deleting metrics-server's APIService, Service, EndpointSlice and RBAC"
        for o in "${MS_OBJECTS[@]}"; do
            # shellcheck disable=SC2086 # "-n ns kind/name" splits on purpose
            kc delete $o --ignore-not-found --wait=false >/dev/null
        done
    else
        warn "API server not ready: metrics-server's API objects left in place (run hack/metrics-server.sh down again once it is up)"
    fi
    proc_stop metrics-server "$MS_BIN" "$MS_MARKER"
    proc_kill_strays metrics-server "$MS_BIN" "$MS_MARKER"
    say "metrics-server stopped"
}

# Whether metrics-server runs or its APIService exists (for control-plane.sh
# down, which then runs ms_down before stopping the API server: a stale
# APIService would make discovery, and so namespace deletion, fail later).
ms_present() {
    ms_pid >/dev/null && return 0
    CP_KUBECTL=$(cp_kubectl_bin) && [[ -f $KNODE_CP_ADMIN_KUBECONFIG ]] || return 1
    [[ -n $(kc get apiservice "$MS_APISERVICE" --ignore-not-found -o name --request-timeout=5s 2>/dev/null) ]]
}

ms_status() {
    local pid avail rc=0
    echo "metrics-server v$KNODE_METRICS_SERVER_VERSION ($MS_URL):"
    if pid=$(ms_pid); then
        printf '  %-24s running (pid %s)\n' process "$pid"
    else
        printf '  %-24s stopped\n' process
        rc=3
    fi
    if ms_healthy; then printf '  %-24s ok\n' /livez; else printf '  %-24s not ok\n' /livez; rc=3; fi
    # shellcheck disable=SC2034 # CP_KUBECTL is kc's (control-plane-components.sh)
    if CP_KUBECTL=$(cp_kubectl_bin) && [[ -f $KNODE_CP_ADMIN_KUBECONFIG ]]; then
        avail=$(ms_available) || true
        printf '  %-24s Available=%s\n' "apiservice" "${avail:-absent}"
        [[ $avail == True ]] || rc=3
    fi
    return "$rc"
}

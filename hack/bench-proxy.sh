#!/usr/bin/env bash
# Benchmark: knode's kube-proxy (iptables and nftables modes) against upstream
# kube-proxy 1.37 (nftables and iptables modes) on this machine, at 1k and 10k Services
# (x 10 endpoints). Everything runs in a PRIVATE network namespace with its own
# etcd and kube-apiserver (127.0.0.1 inside it; data on tmpfs), so the
# benchmark's Services never reach the shared control plane and every rule
# lands in that namespace. Removed on exit, also on failure. See
# docs/benchmarks.md. A benchmark, not a test: run it on a quiet machine
# (about 15 minutes with the defaults).
#
# Usage: hack/bench-proxy.sh [--sizes "1000 10000"] [proxy-bench flags...]
#   e.g. hack/bench-proxy.sh --sizes 1000 --restarts 2 --changes 3
# Environment: KNODE_SKIP_BUILD=1 reuses the last release build.
#
# Addresses (198.18.0.0/15 only, nothing routed): node/advertise address
# 198.18.208.1 (on the namespace's lo), endpoints 198.18.160.1-198.18.191.250,
# changed endpoints 198.18.200-202.x, cluster IPs 198.19.0.0/16.
set -euo pipefail

# shellcheck source=hack/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
# shellcheck source=hack/lib/control-plane-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/control-plane-common.sh"
cd "$KNODE_REPO_ROOT"

SIZES="1000 10000"
if [[ ${1:-} == --sizes ]]; then
    SIZES=$2
    shift 2
fi
NS=knode-bench-proxy
DIR=/dev/shm/knode-bench-proxy
OUT=/tmp/knode-bench-proxy
NODE_IP=198.18.208.1
UPSTREAM="$KNODE_K8S_BIN_DIR/kube-proxy"
APISERVER="$KNODE_K8S_BIN_DIR/kube-apiserver"
PIDS=()

[[ $(id -u) -eq 0 ]] || die "must run as root (network namespace, iptables, nft)"
for b in "$UPSTREAM" "$APISERVER" /usr/bin/etcd; do
    [[ -x $b ]] || die "$b missing (hack/build-upstream.sh builds kube-proxy and kube-apiserver; etcd is Debian's etcd-server)"
done

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    # Anything else still in the namespace (a proxy left by a killed proxy-bench).
    for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export CARGO_TARGET_DIR
if [[ -z ${KNODE_SKIP_BUILD:-} ]]; then
    say "cargo build --release -p kube-proxy-cmd; cargo build --release -p knode-bench --bin proxy-bench"
    cargo build --release -p kube-proxy-cmd --bin kube-proxy
    cargo build --release -p knode-bench --bin proxy-bench
fi
OURS="$CARGO_TARGET_DIR/release/kube-proxy"
BENCH="$CARGO_TARGET_DIR/release/proxy-bench"
for b in "$OURS" "$BENCH"; do [[ -x $b ]] || die "$b was not built"; done

# --- namespace, PKI, etcd, kube-apiserver ----------------------------------
ip netns del "$NS" 2>/dev/null || true
rm -rf "$DIR"
mkdir -p "$DIR/pki" "$OUT"
chmod 0700 "$DIR"
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" addr add "$NODE_IP/32" dev lo
nsx() { ip netns exec "$NS" "$@"; }

say "certificates and a token in $DIR/pki"
p=$DIR/pki
openssl genrsa -out "$p/ca.key" 2048 2>/dev/null
openssl req -x509 -new -key "$p/ca.key" -subj /CN=knode-bench-ca -days 2 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,digitalSignature" \
    -out "$p/ca.crt" 2>/dev/null
openssl genrsa -out "$p/apiserver.key" 2048 2>/dev/null
openssl req -new -key "$p/apiserver.key" -subj /CN=kube-apiserver -out "$p/apiserver.csr" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:%s\n' \
    "$NODE_IP" >"$p/ext"
openssl x509 -req -in "$p/apiserver.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial -days 2 \
    -sha256 -extfile "$p/ext" -out "$p/apiserver.crt" 2>/dev/null
TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
echo "$TOKEN,knode-bench,knode-bench,system:masters" >"$p/tokens.csv"
cat >"$DIR/kubeconfig" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: bench
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: $(base64 -w0 <"$p/ca.crt")
users:
- name: bench
  user:
    token: $TOKEN
contexts:
- name: bench
  context: {cluster: bench, user: bench}
current-context: bench
KCFG
chmod 0600 "$DIR/kubeconfig"

say "etcd and kube-apiserver in network namespace $NS (logs in $OUT)"
ip netns exec "$NS" /usr/bin/etcd --name=bench --data-dir="$DIR/etcd" \
    --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
    --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
    --initial-cluster=bench=http://127.0.0.1:2380 --initial-cluster-state=new \
    --snapshot-count=100000 --quota-backend-bytes=4294967296 --logger=zap --log-outputs=stderr \
    >"$OUT/etcd.log" 2>&1 &
PIDS+=($!)
ip netns exec "$NS" "$APISERVER" --bind-address=127.0.0.1 --secure-port=6443 \
    --advertise-address="$NODE_IP" --etcd-servers=http://127.0.0.1:2379 \
    --service-cluster-ip-range=198.19.0.0/16 \
    --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
    --token-auth-file="$p/tokens.csv" --authorization-mode=AlwaysAllow \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-signing-key-file="$p/apiserver.key" --service-account-key-file="$p/apiserver.key" \
    --profiling=false --v=1 >"$OUT/kube-apiserver.log" 2>&1 &
PIDS+=($!)
ready=false
for _ in $(seq 120); do
    if nsx curl -fsS --max-time 2 --cacert "$p/ca.crt" -H "Authorization: Bearer $TOKEN" \
        https://127.0.0.1:6443/readyz 2>/dev/null | grep -qx ok; then
        ready=true
        break
    fi
    sleep 1
done
$ready || die "kube-apiserver not ready after 120 s (see $OUT/kube-apiserver.log)"

# --- the measurements --------------------------------------------------------
say "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
say "$(iptables --version), $(nft --version)"
for n in $SIZES; do
    say "$n Services (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    nsx "$BENCH" --netns "$NS" --kubeconfig "$DIR/kubeconfig" --services "$n" --upstream "$UPSTREAM" --ours "$OURS" \
        --out "$OUT" "$@"
done
say "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); tables also in $OUT/results-*svc.md"

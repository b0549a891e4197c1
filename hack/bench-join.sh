#!/usr/bin/env bash
# Time for a fresh node to join the 1.37 harness and be Ready, side by side in one run
# (docs/benchmarks.md), three ways each round:
#   knode             `knode join` (release build) starting our kubelet (release build)
#   kubeadm+ours      upstream `kubeadm join` 1.37, our kubelet started as its drop-in does
#   kubeadm+upstream  upstream `kubeadm join` 1.37, upstream's kubelet 1.37 started the same way
# Every run starts from nothing (files under a fresh temporary root, no Node object) and is
# timed from the join command's start to the Node's Ready condition (kubectl wait), and to the
# join command's exit. Without systemd, the kubelet of the kubeadm runs is started the moment
# kubeadm has written kubeadm-flags.env — when kubeadm's `systemctl restart kubelet` would.
#
# Usage: hack/bench-join.sh [--rounds N]   (default 3)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=hack/lib/env.sh
source hack/lib/env.sh
# shellcheck source=hack/lib/cluster-bench.sh
source hack/lib/cluster-bench.sh

bench_parse_rounds "$0" 3 "$@"
rounds=$BENCH_ROUNDS
[[ $(id -u) -eq 0 ]] || { echo "==> ERROR: must run as root" >&2; exit 1; }

export CARGO_TARGET_DIR PROTOC="${PROTOC:-/usr/bin/protoc}"
if [[ -z ${KNODE_SKIP_BUILD:-} ]]; then
    echo "==> cargo build --release -p kubelet-cmd -p knode-cmd"
    cargo build --release -p kubelet-cmd --bin kubelet -p knode-cmd --bin knode
fi
lock=/tmp/knode-e2e.lock
flock -o "$lock" bash -c 'hack/node-env.sh >/dev/null && hack/control-plane.sh up >/dev/null'
bash hack/build-upstream.sh
BIN=$(hack/build-upstream.sh --print-bin-dir)
OURS=$CARGO_TARGET_DIR/release/kubelet
KNODE=$CARGO_TARGET_DIR/release/knode
NODE=knode-node
NODE_IP=198.18.255.1
SERVER=$NODE_IP:6443
CRI=unix://$KNODE_CONTAINERD_SOCK
PKI=/var/lib/knode/control-plane/pki
TOKEN=$(cat "$PKI/bootstrap-token")
HASH=sha256:$(openssl x509 -pubkey -noout -in "$PKI/ca.crt" | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)
kc() { "$BIN/kubectl" --kubeconfig /var/lib/knode/control-plane/admin.kubeconfig "$@"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# Waits for the Node to exist, then for Ready; prints the time it was seen Ready.
wait_ready() {
    local i
    for ((i = 0; i < 1200; i++)); do
        kc get node "$NODE" >/dev/null 2>&1 && break
        sleep 0.05
    done
    kc wait --for=condition=Ready "node/$NODE" --timeout=120s >/dev/null
    now
}

# Everything a run leaves: the kubelet, its pods, mounts and files, the Node and CSRs.
clean() {
    local root=$1 pid
    if [[ -f $root/kubelet.pid ]]; then
        pid=$(cat "$root/kubelet.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    "$KNODE" reset --root "$root" --cri-socket "$CRI" >/dev/null
    umount --lazy "$root/var/lib/kubelet" 2>/dev/null || true
    rm -rf "$root"
    kc delete node "$NODE" --ignore-not-found --wait=true >/dev/null
    kc delete csr --all >/dev/null 2>&1 || true
}

run_knode() {
    local root=$1 start ready exited
    start=$(now)
    "$KNODE" join "$SERVER" --token "$TOKEN" --ca-cert-hash "$HASH" --node-name "$NODE" --node-ip "$NODE_IP" \
        --root "$root" --cri-socket "$CRI" --cni-conf-dir "$KNODE_CNI_CONF_DIR" --kubelet-binary "$OURS" \
        --service process --timeout 120s >"$root.join.log" 2>&1 &
    local join=$!
    ready=$(wait_ready)
    wait "$join"
    exited=$(now)
    echo "$(secs "$start" "$ready") $(secs "$start" "$exited")"
}

run_kubeadm() {
    local root=$1 kubelet=$2 start ready exited i
    mkdir -p "$root/etc/default" "$root$(dirname "$root")"
    ln -s / "$root$root"    # kubeadm runs chrooted; the kubelet writes host paths into kubelet.conf
    echo "KUBELET_EXTRA_ARGS=\"--node-ip=$NODE_IP --root-dir=$root/var/lib/kubelet --cert-dir=$root/var/lib/kubelet/pki\"" >"$root/etc/default/kubelet"
    start=$(now)
    "$BIN/kubeadm" join "$SERVER" --rootfs "$root" --token "$TOKEN" --discovery-token-ca-cert-hash "$HASH" \
        --node-name "$NODE" --cri-socket "$CRI" --ignore-preflight-errors=all >"$root.join.log" 2>&1 &
    local join=$!
    for ((i = 0; i < 6000; i++)); do [[ -f $root/var/lib/kubelet/kubeadm-flags.env ]] && break; sleep 0.01; done
    sed -i "s#/etc/kubernetes/#$root/etc/kubernetes/#g" "$root/var/lib/kubelet/config.yaml"
    (
        # shellcheck disable=SC1091
        source "$root/var/lib/kubelet/kubeadm-flags.env"
        # shellcheck disable=SC1091
        source "$root/etc/default/kubelet"
        # shellcheck disable=SC2086
        "$kubelet" --bootstrap-kubeconfig="$root/etc/kubernetes/bootstrap-kubelet.conf" \
            --kubeconfig="$root/etc/kubernetes/kubelet.conf" --config="$root/var/lib/kubelet/config.yaml" \
            $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS >"$root.kubelet.log" 2>&1 &
        echo $! >"$root/kubelet.pid"
    )
    ready=$(wait_ready)
    wait "$join"
    exited=$(now)
    echo "$(secs "$start" "$ready") $(secs "$start" "$exited")"
}

out=$(mktemp -d /tmp/knode-bench-join-XXXXXX)
echo "==> waiting for $lock (the end-to-end tests and other benches share the node name)"
exec 9>"$lock"
flock 9
echo "==> machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); logs in $out"
kc delete node "$NODE" --ignore-not-found --wait=true >/dev/null
declare -A ready_sum exit_sum
for ((round = 1; round <= rounds; round++)); do
    for way in knode kubeadm+ours kubeadm+upstream; do
        root=$out/$way-$round
        mkdir -p "$root"
        case $way in
            knode) result=$(run_knode "$root") ;;
            kubeadm+ours) result=$(run_kubeadm "$root" "$OURS") ;;
            kubeadm+upstream) result=$(run_kubeadm "$root" "$BIN/kubelet") ;;
        esac
        read -r ready exited <<<"$result"
        printf '==> round %d %-17s Ready after %6.2f s, join command done after %6.2f s\n' "$round" "$way" "$ready" "$exited"
        ready_sum[$way]=$(awk -v a="${ready_sum[$way]:-0}" -v b="$ready" 'BEGIN { print a + b }')
        exit_sum[$way]=$(awk -v a="${exit_sum[$way]:-0}" -v b="$exited" 'BEGIN { print a + b }')
        clean "$root"
    done
done
echo "==> mean of $rounds round(s): time to Ready / join command done"
for way in knode kubeadm+ours kubeadm+upstream; do
    printf '    %-17s %6.2f s / %6.2f s\n' "$way" "$(awk -v s="${ready_sum[$way]}" -v n="$rounds" 'BEGIN { print s / n }')" "$(awk -v s="${exit_sum[$way]}" -v n="$rounds" 'BEGIN { print s / n }')"
done
awk -v a="${ready_sum[knode]}" -v b="${ready_sum[kubeadm+upstream]}" 'BEGIN { printf "    ratio knode / kubeadm+upstream (time to Ready): %.2f\n", a / b }'

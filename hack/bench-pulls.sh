#!/usr/bin/env bash
# Benchmark: pulling 20 images, serialized (`serializeImagePulls: true`, the default) and in
# parallel (`serializeImagePulls: false`), our kubelet against upstream kubelet 1.37, side by
# side on this machine (the shared control plane and containerd, node knode-node). The images
# are busybox with a 4 MiB random layer each, in a docker-registry on loopback; each run
# removes them from containerd, creates 20 pods (one image each) and times them to Running.
# `registryPullQPS: 0` in every run, so the pull rate limit (5/s, burst 10) does not set the
# pace. See docs/benchmarks.md. A benchmark, not a test; 1 round (4 runs) takes about 3 minutes.
#
# Usage: hack/bench-pulls.sh [--rounds N]
# Environment: KNODE_SKIP_BUILD=1 reuses the last release builds;
#              KNODE_PULLS_BENCH_OUT (default /tmp/knode-pulls-bench) keeps logs and results.
#
set -euo pipefail

# shellcheck source=hack/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
# shellcheck source=hack/lib/cluster-bench.sh
source "$KNODE_REPO_ROOT/hack/lib/cluster-bench.sh"
cd "$KNODE_REPO_ROOT"
bench_parse_rounds "${BASH_SOURCE[0]}" 1 "$@"
out=${KNODE_PULLS_BENCH_OUT:-/tmp/knode-pulls-bench}
lock=/tmp/knode-e2e.lock
cluster_bench_prepare "$out"

# The registry, on a free loopback port, and containerd's hosts.toml for it.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
addr=127.0.0.1:$port
hosts_dir=$KNODE_REGISTRY_HOSTS_DIR/$addr
mkdir -p "$out/registry" "$hosts_dir"
printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' "$out/registry" "$addr" >"$out/registry.yml"
docker-registry serve "$out/registry.yml" >"$out/registry.log" 2>&1 &
registry_pid=$!
work=$(mktemp -d)
trap 'kill $registry_pid 2>/dev/null || true; rm -rf "$hosts_dir" "$work"' EXIT
printf 'server = "http://%s"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' "$addr" "$addr" >"$hosts_dir/hosts.toml"
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

echo "==> 20 images with a 4 MiB layer of their own, pushed to $addr"
mkdir "$work/oci"
tar -xf "$KNODE_IMAGE_CACHE/busybox.tar" -C "$work/oci"
base=$(jq -r '.manifests[0].annotations["org.opencontainers.image.ref.name"]' "$work/oci/index.json")
: >"$out/images.txt"
for i in $(seq -w 1 20); do
    umoci tag --image "$work/oci:$base" "pull$i"
    head -c 4194304 /dev/urandom >"$work/blob"
    umoci insert --image "$work/oci:pull$i" "$work/blob" "/pull-bench/blob$i" >/dev/null
    skopeo copy --quiet --dest-tls-verify=false "oci:$work/oci:pull$i" "docker://$addr/knode/pull-bench-$i:1.0"
    echo "$addr/knode/pull-bench-$i:1.0" >>"$out/images.txt"
done

for ((round = 1; round <= BENCH_ROUNDS; round++)); do
    for serialize in true false; do
        for kubelet in ours upstream; do
            echo "==> round $round: $kubelet kubelet, serializeImagePulls: $serialize (waiting for $lock)"
            flock -o "$lock" "$bench" pulls --kubelet "$kubelet" --round "$round" --serialize "$serialize" --images "$out/images.txt" --out "$out"
        done
    done
done
echo "==> all rounds (logs and per-run JSON in $out)"
"$bench" pulls-report --out "$out"

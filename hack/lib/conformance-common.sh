# shellcheck shell=bash
# Shared variables for hack/build-test-images.sh and hack/conformance.sh (the
# upstream e2e test images, the loopback registry that serves them, and the
# conformance runs). Source it after hack/lib/env.sh and control-plane-common.sh;
# it has no side effects.
#
# Network rule: the registry listens on 127.0.0.1 only; containerd reaches it
# through hosts.toml files that send every registry the specs name (and any
# other, through _default) to it, never to the internet.

# The loopback registry (Debian's docker-registry, our own config and storage;
# not the package's :5000 service).
KNODE_REGISTRY_ADDR="${KNODE_REGISTRY_ADDR:-127.0.0.1:5050}"
KNODE_REGISTRY_DIR="${KNODE_REGISTRY_DIR:-/var/lib/knode/registry}"
KNODE_REGISTRY_PIDFILE="${KNODE_REGISTRY_PIDFILE:-/run/knode/registry.pid}"
KNODE_REGISTRY_LOG="${KNODE_REGISTRY_LOG:-$KNODE_LOG_DIR/registry.log}"
KNODE_REGISTRY_BIN="${KNODE_REGISTRY_BIN:-/usr/bin/docker-registry}"

# Registries the e2e specs name (test/utils/image/manifest.go and literal image
# names in the specs). Each gets a hosts.toml that serves it from the loopback
# registry under /v2/<registry>/...; _default catches every other one.
# shellcheck disable=SC2034 # read by hack/build-test-images.sh
KNODE_TEST_REGISTRIES=(registry.k8s.io docker.io gcr.io k8s.gcr.io us.gcr.io quay.io ghcr.io
    invalid.registry.k8s.io)

# Test images: OCI layout and binaries built from the k8s.io/kubernetes module.
KNODE_TEST_IMAGES_DIR="${KNODE_TEST_IMAGES_DIR:-$KNODE_CACHE/test-images-$KNODE_K8S_VERSION}"

# Conformance runs.
KNODE_CONFORMANCE_DIR="${KNODE_CONFORMANCE_DIR:-/var/lib/knode/conformance}"
KNODE_CONFORMANCE_LOG_DIR="${KNODE_CONFORMANCE_LOG_DIR:-$KNODE_LOG_DIR/conformance}"
# Where the kubelet under test keeps its state: node e2e specs assume
# /var/lib/kubelet (services.KubeletRootDirectory).
KNODE_CONFORMANCE_KUBELET_ROOT="${KNODE_CONFORMANCE_KUBELET_ROOT:-/var/lib/kubelet}"
KNODE_CONFORMANCE_STATIC_PODS="${KNODE_CONFORMANCE_STATIC_PODS:-$KNODE_CONFORMANCE_DIR/manifests}"

# The k8s.io/kubernetes module source (for manifest.go and agnhost's files).
conformance_k8s_src() {
    echo "${GOMODCACHE:-$KNODE_CACHE/go/pkg/mod}/k8s.io/kubernetes@v$KNODE_K8S_VERSION"
}

registry_answers() {
    curl -fsS --max-time 2 "http://$KNODE_REGISTRY_ADDR/v2/" >/dev/null 2>&1
}

#!/usr/bin/env bash
# On-demand smoke test of knode against an OLDER supported Kubernetes release
# (default 1.35.4): builds that release's control plane from its Go module
# (hack/build-upstream.sh, cached per version), brings it up in place of the
# pinned one, and runs the end-to-end tests that prove registration, API pods
# and Services: our kubelet registering the node (Ready, node info, lease), an
# API pod and a static pod's mirror, and our kube-proxy serving a Service.
# Not part of CI (a cold build of another release takes ~12 minutes).
#
# Usage: hack/smoke-release.sh [VERSION]      e.g. hack/smoke-release.sh 1.36.3
#
# It stops the running control plane first (down --purge: a different release
# must not reuse another's etcd data) and stops its own again at the end; run
# `hack/control-plane.sh up` afterwards to get the pinned release back.
set -euo pipefail

# shellcheck source=hack/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$KNODE_REPO_ROOT"

VERSION=${1:-1.35.4}
[[ $VERSION =~ ^1\.[0-9]+\.[0-9]+$ ]] || { echo "usage: hack/smoke-release.sh [1.MINOR.PATCH]" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "must run as root" >&2; exit 1; }

echo "==> stopping the current control plane (down --purge)"
hack/control-plane.sh down --purge >/dev/null
export KNODE_K8S_VERSION=$VERSION
echo "==> building Kubernetes v$VERSION (cached after the first run)"
hack/build-upstream.sh
trap 'echo "==> stopping the v$VERSION control plane"; hack/control-plane.sh down --purge >/dev/null' EXIT
hack/control-plane.sh up
"$KNODE_CACHE/k8s-$VERSION/bin/kubectl" --kubeconfig /var/lib/knode/control-plane/admin.kubeconfig version 2>/dev/null | sed 's/^/    /'

# The tests below call `hack/control-plane.sh up` themselves; with KNODE_K8S_VERSION
# exported they find this release's control plane running and keep it.
KNODE_FUZZ_SECONDS=0 hack/test.sh -E \
    'binary(cluster_node) | test(api_pod_runs_and_static_pod_gets_a_mirror) | binary(control_plane)'
